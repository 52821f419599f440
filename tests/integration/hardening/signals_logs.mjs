// Hardening item 6: signals, logs and secret hygiene.
//   sigterm   SIGTERM with requests in flight: every one of them completes
//             with 200 (and its key is stored), new connections are refused
//             at once, exit code 0; a too-long drain ends at
//             shutdown_timeout_ms and loses no acknowledged key
//   sighup    edit log_level (info -> debug) and limits, SIGHUP: a reload
//             line names the change and the new limits apply without a
//             restart; a broken file is refused and changes nothing
//   logs      every line of every run is one JSON object; request lines
//             carry request_id, operation, status, latency_ms
//   hygiene   a traffic mix at log level debug; no secret, private key
//             (hex with/without 0x, any case, raw, base64), sealed blob or
//             master key appears in the log or any answer; keys.db and its
//             WAL hold no private key or secret in plain
//
// Run: node signals_logs.mjs  (SIGNALS_ONLY=sigterm,sighup,hygiene)

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { hmacHex } from '../../lib/hmac.mjs';
import {
  Checks, watchdog, startSignerd, writeConfig, tempDir, call, request, rawRequest, rawHttp,
  openFrames, frame, metrics, keyCount, randomSecret, randomPrivKey, addressOf, sleep, sqlite,
  HAVE_SQLITE3, STANDALONE_CONF,
} from './common.mjs';

const NAME = 'signals_logs';
watchdog(45, NAME);
const checks = new Checks(NAME);
const allRuns = [];   // every signerd handle, for the log-format checks

function genBody(n, secret) {
  const b = JSON.stringify({ operation: 'generate_key', payload: { secret } });
  return b + ' '.repeat(Math.max(0, n - b.length));
}

function tryConnect(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => { s.destroy(); resolve('timeout'); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve('connected'); });
    s.once('error', (e) => { clearTimeout(t); resolve(e.code || String(e)); });
  });
}

// ---------------------------------------------------------------- SIGTERM

async function sigterm() {
  const dir = tempDir('sigterm');
  const conf = writeConfig(dir, { workers: 1, limits: { shutdown_timeout_ms: 15000 } });
  const dataDir = path.join(dir, 'data');
  let s = await startSignerd({ conf, dataDir });
  allRuns.push(s);
  const SECRET = randomSecret();
  const N = 150;
  const m0 = await metrics(s.port);
  const base = m0['signer_transport_requests_total{proto="http"}'];
  const pending = Array.from({ length: N }, () =>
    call(s.port, 'generate_key', { secret: SECRET }, { timeoutMs: 20000 })
      .catch((e) => ({ status: 0, text: String(e.code || e) })));
  // Wait (bounded) until signerd has taken all N requests; then SIGTERM.
  let inflight = 0;
  for (let i = 0; i < 400; i++) {
    const m = await metrics(s.port);
    inflight = m.signer_transport_inflight;
    if (m['signer_transport_requests_total{proto="http"}'] - base >= N) break;
    await sleep(2);
  }
  s.signal('SIGTERM');
  const tTerm = Date.now();
  await sleep(20);
  const aliveDuringDrain = s.alive;
  // The listeners close on the server thread once it sees the signal: poll
  // (bounded, 2 s) rather than bet on 20 ms of scheduling.
  let conn = 'none';
  for (const t1 = Date.now(); Date.now() - t1 < 2000; await sleep(20)) {
    conn = await tryConnect(s.port, 500);
    if (conn === 'ECONNREFUSED') break;
  }
  const rs = await Promise.all(pending);
  const exit = await Promise.race([s.exited, sleep(15000).then(() => null)]);
  const ms = Date.now() - tTerm;
  const n200 = rs.filter((r) => r.status === 200).length;
  checks.check(inflight > 0, `SIGTERM: requests were in flight when it arrived (${inflight} of ${N})`);
  checks.check(n200 === N, `SIGTERM: all ${N} requests taken before it complete with 200 (got ${n200})`,
    () => rs.filter((r) => r.status !== 200).slice(0, 3));
  checks.check(conn === 'ECONNREFUSED', `SIGTERM: a new connection is refused (${conn}; signerd ${aliveDuringDrain ? 'still draining' : 'already gone'})`);
  checks.check(exit && exit.code === 0 && exit.signal === null, `SIGTERM: exit code 0 (after ${ms} ms)`, exit);
  const sd = s.log.map((l) => { try { return JSON.parse(l); } catch { return {}; } })
    .find((j) => /^shutting down: \d+ connections, \d+ requests in flight/.test(j.msg || ''));
  checks.check(sd, 'SIGTERM: the log says it is shutting down, with the in-flight count', s.log.slice(-5).join('\n'));
  checks.check(s.log.some((l) => /"msg":"signerd stopped"/.test(l)), 'SIGTERM: the log says signerd stopped');

  // Restart on the same data dir: every acknowledged key is there.
  s = await startSignerd({ conf, dataDir });
  allRuns.push(s);
  const keys = await keyCount(s.port);
  checks.check(keys === n200, `SIGTERM: the ${n200} acknowledged keys are stored (signer_keys ${keys})`);
  await s.stop();

  // shutdown_timeout_ms bounds the drain; what was acknowledged is stored.
  const dir2 = tempDir('sigterm2');
  const conf2 = writeConfig(dir2, { workers: 1, limits: { shutdown_timeout_ms: 300 } });
  const dataDir2 = path.join(dir2, 'data');
  s = await startSignerd({ conf: conf2, dataDir: dataDir2 });
  allRuns.push(s);
  // 40 frames connections x 64 in flight (max_pipeline): a backlog of
  // seconds for one worker, plus some HTTP requests.
  const M = 40, PER = 75;
  const fcs = await Promise.all(Array.from({ length: M }, () => openFrames(s.framesPort)));
  fcs.forEach((f, c) => f.sendRaw(Buffer.concat(Array.from({ length: PER }, (_, i) =>
    frame({ id: c * 1000 + i, operation: 'generate_key', payload: { secret: SECRET } })))));
  const extraP = Promise.all(Array.from({ length: 30 }, () =>
    call(s.port, 'generate_key', { secret: SECRET }, { timeoutMs: 10000 }).catch(() => ({ status: 0 }))));
  await sleep(150);
  s.signal('SIGTERM');
  const t2 = Date.now();
  const exit2 = await Promise.race([s.exited, sleep(10000).then(() => null)]);
  const ms2 = Date.now() - t2;
  const extra = await extraP;
  await sleep(50);
  for (const f of fcs) f.destroy();
  const answers = fcs.flatMap((f) => f.answers);
  const acked = answers.filter((a) => a.enclave_status === 200).length + extra.filter((r) => r.status === 200).length;
  checks.check(answers.length < M * PER, `shutdown_timeout_ms 300: the backlog was still there at SIGTERM (${answers.length} of ${M * PER} answered)`);
  checks.check(exit2 && ms2 < 300 + 2000, `shutdown_timeout_ms 300: a long backlog ends the drain in time (${ms2} ms, exit ${JSON.stringify(exit2)})`);
  checks.check(exit2 && exit2.code === 0, 'shutdown_timeout_ms: exit code 0', exit2);
  checks.check(s.log.some((l) => /shutdown( timeout)?: giving up/.test(l)),
    'shutdown_timeout_ms: the log says it gave up on the rest', s.log.slice(-4).join('\n'));
  s = await startSignerd({ conf: conf2, dataDir: dataDir2 });
  allRuns.push(s);
  const keys2 = await keyCount(s.port);
  checks.check(keys2 >= acked, `shutdown_timeout_ms: every acknowledged key is stored (${acked} answered 200, ${keys2} stored)`);
  await s.stop();
}

// ----------------------------------------------------------------- SIGHUP

const FLOOD = 40;

/** FLOOD concurrent generate_key: counts of 200, 503 and anything else. */
async function flood(port, secret) {
  const rs = await Promise.all(Array.from({ length: FLOOD }, () =>
    call(port, 'generate_key', { secret }, { timeoutMs: 10000 }).catch(() => ({ status: 0 }))));
  const busy = rs.filter((r) => r.status === 503).length;
  const ok = rs.filter((r) => r.status === 200).length;
  return { ok, busy, other: FLOOD - ok - busy };
}

async function sighup() {
  const dir = tempDir('sighup');
  const limitsA = { max_body: 65536, max_header: 16384 };
  const conf = writeConfig(dir, { logLevel: 'info', limits: limitsA });
  const s = await startSignerd({ conf, dataDir: path.join(dir, 'data') });
  allRuns.push(s);
  const SECRET = randomSecret();
  try {
    let r = await rawRequest(s.port, rawHttp('POST', '/', genBody(5000, SECRET)));
    checks.check(r.status === 200, 'SIGHUP: before, a 5000-byte body is accepted (max_body 65536)', r.text);
    checks.check(!s.log.some((l) => /"level":"debug"/.test(l)), 'SIGHUP: before, no debug lines at log_level info');
    let fl = await flood(s.port, SECRET);
    checks.check(fl.other === 0 && fl.busy === 0, `SIGHUP: before, a flood of ${FLOOD} gets no 503 (max_inflight default)`, fl);

    // info -> debug, max_body 65536 -> 4096, max_header 16384 -> 1024
    writeConfig(dir, { logLevel: 'debug', limits: { max_body: 4096, max_header: 1024, max_inflight: 1 } });
    let mark = s.log.length;
    s.signal('SIGHUP');
    const lvl = await s.waitLog((j) => j && /reload: log_level info -> debug/.test(j.msg), 3000, mark);
    checks.check(lvl, 'SIGHUP: a reload line names the log_level change (info -> debug)', s.log.slice(mark).join('\n'));
    await s.waitLog((j) => j && /reload done/.test(j.msg), 3000, mark);
    // One line per changed limit, naming old and new values; none for the
    // limits that did not change.
    const reloadLines = s.log.slice(mark).filter((l) => /reload: limits\./.test(l)).join('\n');
    checks.check(/limits\.max_body \d+ -> 4096/.test(reloadLines) && /limits\.max_header \d+ -> 1024/.test(reloadLines) &&
      /limits\.max_inflight \d+ -> 1\b/.test(reloadLines) && !/limits\.max_pipeline/.test(reloadLines),
      'SIGHUP: one reload line per changed limit (max_body -> 4096, max_header -> 1024, max_inflight -> 1), none for the others',
      reloadLines || s.log.slice(mark).join('\n'));
    r = await rawRequest(s.port, rawHttp('POST', '/', genBody(5000, SECRET)));
    checks.check(r.status === 413 && /too large/.test(r.json?.enclave_result?.error || ''), 'SIGHUP: the new max_body applies without a restart (413)', r.text);
    r = await rawRequest(s.port, rawHttp('POST', '/', genBody(4000, SECRET)));
    checks.check(r.status === 200, 'SIGHUP: a body under the new max_body is still served', r.text);
    r = await rawRequest(s.port, rawHttp('POST', '/', genBody(200, SECRET), `X-Pad: ${'a'.repeat(1500)}\r\n`));
    checks.check(r.status === 431, 'SIGHUP: the new max_header applies without a restart (431)', r.text);
    fl = await flood(s.port, SECRET);
    checks.check(fl.other === 0 && fl.busy > 0, `SIGHUP: the new max_inflight 1 applies without a restart (${fl.busy} of ${FLOOD} got 503)`, fl);
    await sleep(50);
    checks.check(s.log.slice(mark).some((l) => /"level":"debug"/.test(l)), 'SIGHUP: debug lines appear after the reload');

    // A broken file is refused; the running config stays.
    fs.writeFileSync(conf, 'log_level = "info";\nlimits = { max_body = "big"; };\nplugins = ( { name = "eth"; } );\n');
    mark = s.log.length;
    s.signal('SIGHUP');
    const refused = await s.waitLog((j) => j && /reload refused/.test(j.msg), 3000, mark);
    checks.check(refused && /signerd\.conf/.test(refused.msg), 'SIGHUP: a broken config is refused, naming the file', refused || s.log.slice(mark).join('\n'));
    r = await rawRequest(s.port, rawHttp('POST', '/', genBody(5000, SECRET)));
    checks.check(r.status === 413, 'SIGHUP: after a refused reload the previous limits stay', r.text);
    checks.check(s.alive, 'SIGHUP: signerd survives a broken config');

    // And back.
    writeConfig(dir, { logLevel: 'info', limits: limitsA });
    mark = s.log.length;
    s.signal('SIGHUP');
    const back = await s.waitLog((j) => j && /reload: log_level debug -> info/.test(j.msg), 3000, mark);
    checks.check(back, 'SIGHUP: log_level debug -> info is reported', s.log.slice(mark).join('\n'));
    await s.waitLog((j) => j && /reload done/.test(j.msg), 3000, mark);
    r = await rawRequest(s.port, rawHttp('POST', '/', genBody(5000, SECRET)));
    checks.check(r.status === 200, 'SIGHUP: max_body back to 65536 accepts 5000 bytes again', r.text);
    fl = await flood(s.port, SECRET);
    checks.check(fl.other === 0 && fl.busy === 0, 'SIGHUP: max_inflight back to the default: no 503', fl);
  } finally {
    const st = await s.stop();
    checks.check(st && st.code === 0, 'SIGHUP: exit code 0 after SIGTERM', st);
  }

  // --log-level on the command line vs SIGHUP (observation, not a check).
  const dir2 = tempDir('sighup2');
  const conf2 = writeConfig(dir2, { logLevel: 'info' });
  const s2 = await startSignerd({ conf: conf2, dataDir: path.join(dir2, 'data'), logLevel: 'debug' });
  allRuns.push(s2);
  writeConfig(dir2, { logLevel: 'info', limits: { max_body: 4096 } });   // only a limit changes
  const mark = s2.log.length;
  s2.signal('SIGHUP');
  await s2.waitLog((j) => j && /reload done/.test(j.msg), 3000, mark);
  const reverted = s2.log.slice(mark).some((l) => /reload: log_level debug -> info/.test(l));
  if (reverted) {
    checks.note('SIGHUP resets a --log-level given on the command line to the file\'s log_level although the file\'s log_level did not change (signerd --log-level debug, file log_level "info", SIGHUP after editing only a limit -> "reload: log_level debug -> info")');
  }
  await s2.stop();
}

// ------------------------------------------------------------ log format

function logFormat() {
  const levels = new Set(['error', 'warn', 'info', 'debug']);
  let lines = 0, requests = 0;
  const bad = [], badReq = [], ids = new Set(), dupIds = [];
  for (const s of allRuns) {
    for (const l of s.log) {
      if (l === '') continue;
      lines++;
      let j;
      try { j = JSON.parse(l); } catch { bad.push(l); continue; }
      if (typeof j !== 'object' || j === null || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(j.ts) ||
          !levels.has(j.level) || typeof j.msg !== 'string') {
        bad.push(l);
        continue;
      }
      if (j.msg === 'request') {
        requests++;
        if (!/^[0-9a-f]{16}$/.test(j.request_id) || typeof j.operation !== 'string' ||
            !Number.isInteger(j.status) || j.status < 100 || j.status > 599 ||
            typeof j.latency_ms !== 'number' || !(j.latency_ms >= 0)) badReq.push(l);
        if (ids.has(j.request_id)) dupIds.push(j.request_id);
        ids.add(j.request_id);
      }
    }
  }
  checks.check(lines > 0 && bad.length === 0, `logs: all ${lines} lines are JSON objects with ts, level, msg`, bad.slice(0, 5).join('\n'));
  checks.check(requests > 0 && badReq.length === 0, `logs: all ${requests} request lines carry request_id, operation, status, latency_ms`, badReq.slice(0, 5).join('\n'));
  checks.check(dupIds.length === 0, 'logs: request ids are unique', dupIds.slice(0, 5));
}

// --------------------------------------------------------------- hygiene


/** Every textual form of a byte string worth grepping for. */
function forms(buf) {
  const hex = buf.toString('hex');
  return [
    hex, hex.toUpperCase(), `0x${hex}`, `0x${hex.toUpperCase()}`,
    buf.toString('base64'), buf.toString('base64url'),
    // a partial leak: the first and last 16 hex digits
    hex.slice(0, 16), hex.slice(-16), hex.slice(0, 16).toUpperCase(),
  ];
}

async function hygiene() {
  const dataDir = tempDir('hygiene');
  const s = await startSignerd({ conf: STANDALONE_CONF, dataDir, logLevel: 'debug' });
  allRuns.push(s);
  const answers = [];   // every response body
  const secrets = [];   // every secret sent, valid or not
  const privs = [];     // every private key sent, valid request or not (lowercase hex)
  let sent = 0;         // dispatched requests (each must have one request log line)
  const keys = [];      // {key_id, secret, address, priv?}

  const post = async (p, bodyObj) => {
    sent++;
    const r = await request(s.port, 'POST', p, bodyObj);
    answers.push(r.text);
    return r;
  };
  const op = (operation, payload) => post('/', { operation, payload });

  // Keys: generated, and imported with known private keys in every spelling.
  for (const how of ['/', '/key', 'alias']) {
    const secret = randomSecret();
    secrets.push(secret);
    const r = how === '/' ? await op('generate_key', { secret })
      : how === '/key' ? await post('/key', { secret })
        : await op('ethereum-key-generator_generate_key', { secret });
    checks.check(r.status === 200, `hygiene: generate_key via ${how}`, r.text);
    if (r.status === 200) keys.push({ ...r.json.enclave_result, secret });
  }
  const spellings = [(k) => k, (k) => k.toUpperCase(), (k) => `0x${k}`, (k) => `0x${k.slice(0, 32).toUpperCase()}${k.slice(32)}`];
  for (const [i, how] of ['/', '/key/import', 'alias', '/'].entries()) {
    const secret = randomSecret();
    const priv = randomPrivKey();
    secrets.push(secret);
    privs.push(priv);
    const eth_key = spellings[i](priv);
    const r = how === '/' ? await op('set_key', { eth_key, secret })
      : how === '/key/import' ? await post('/key/import', { eth_key, secret })
        : await op('ethereum-signer_set_key', { eth_key, secret });
    checks.check(r.status === 200 && r.json.enclave_result.address.toLowerCase() === addressOf(priv),
      `hygiene: set_key (${how}, spelling ${i}) answers the key's address`, r.text);
    if (r.status === 200) keys.push({ ...r.json.enclave_result, secret, priv });
  }
  // Frames: one generate_key and one set_key.
  {
    const f = await openFrames(s.framesPort);
    const secret = randomSecret(), secret2 = randomSecret(), priv = randomPrivKey();
    secrets.push(secret, secret2);
    privs.push(priv);
    f.send({ id: 1, operation: 'generate_key', payload: { secret } });
    f.send({ id: 2, operation: 'set_key', payload: { eth_key: priv, secret: secret2 } });
    sent += 2;
    await f.waitAnswers(2, 5000);
    f.destroy();
    for (const a of f.answers) answers.push(JSON.stringify(a));
    const a1 = f.answers.find((a) => a.id === 1), a2 = f.answers.find((a) => a.id === 2);
    checks.check(a1?.enclave_status === 200 && a2?.enclave_status === 200, 'hygiene: generate_key and set_key over frames', f.answers);
    if (a1?.enclave_status === 200) keys.push({ ...a1.enclave_result, secret });
    if (a2?.enclave_status === 200) keys.push({ ...a2.enclave_result, secret: secret2, priv });
  }

  // Signing, every way, for every key.
  const tx = { type: 2, chainId: 1, nonce: 3, to: '0xa5D3241A1591061F2a4bB69CA0215F66520E67cf', value: 0.01, gas: 21000, maxFeePerGas: 100000000000, maxPriorityFeePerGas: 3000000000 };
  let ok = 0, total = 0;
  for (const k of keys) {
    const uo = { userOpHash: crypto.randomBytes(32).toString('hex') };
    const rs = [
      await op('sign_transaction', { key_id: k.key_id, secret: k.secret, transaction_payload: tx }),
      await op('ethereum-signer_sign_transaction', { key_id: k.key_id, secret: k.secret, transaction_payload: { type: 0, chainId: 31337, nonce: 1, gas: 200000, gasPrice: '0x3b9aca00', value: '0', data: '0x600a600c600039600a6000f3' } }),
      await post(`/key/${k.key_id}/tx_signature`, { secret: k.secret, transaction_payload: tx }),
      await post(`/key/${k.key_id}/userop_signature`, { secret: k.secret, transaction_payload: uo }),
      await op('sign_userop', { key_id: k.key_id, secret: k.secret, transaction_payload: uo }),
      await op('sign_message', { key_id: k.key_id, secret: k.secret, message: 'hello from the hardening tests' }),
      await op('sign_message', { key_id: k.key_id, secret: k.secret, message: `0x${crypto.randomBytes(40).toString('hex')}` }),
    ];
    // HMAC mode: valid, then replayed, then wrong.
    const ts = Math.floor(Date.now() / 1000);
    const hm = hmacHex(k.secret, 'sign_userop', k.key_id, { transaction_payload: uo }, ts);
    rs.push(await op('sign_userop', { key_id: k.key_id, hmac: hm, timestamp: ts, transaction_payload: uo }));
    const replay = await op('sign_userop', { key_id: k.key_id, hmac: hm, timestamp: ts, transaction_payload: uo });
    checks.check(replay.status === 403, 'hygiene: a replayed HMAC is refused (403)', replay.text);
    const wrong = await op('sign_userop', { key_id: k.key_id, hmac: hmacHex(randomSecret(), 'sign_userop', k.key_id, { transaction_payload: uo }, ts), timestamp: ts, transaction_payload: uo });
    checks.check(wrong.status === 403, 'hygiene: a wrong HMAC is refused (403)', wrong.text);
    for (const r of rs) { total++; if (r.status === 200) ok++; else console.log(`  unexpected: ${r.text}`); }
    // Bad secrets: wrong, another key's.
    const wrongSecret = randomSecret();
    secrets.push(wrongSecret);
    const w = await op('sign_message', { key_id: k.key_id, secret: wrongSecret, message: 'x' });
    checks.check(w.status === 403, 'hygiene: a wrong secret is refused (403)', w.text);
    const other = keys.find((x) => x !== k);
    const o = await op('sign_userop', { key_id: k.key_id, secret: other.secret, transaction_payload: uo });
    checks.check(o.status === 403, "hygiene: another key's secret is refused (403)", o.text);
  }
  checks.check(ok === total, `hygiene: all ${total} signing requests answer 200 (${ok})`);

  // Bad requests carrying real-looking keys and secrets.
  for (const make of [
    (p) => ({ eth_key: p, secret: 'too short' }),
    (p, sc) => ({ eth_key: `${p}0`, secret: sc }),
    (p, sc) => ({ eth_key: p, secret: sc, note: p }),
    (p, sc) => ({ eth_key: `0x${p}`, secret: `${sc}\t` }),
    (p, sc) => ({ eth_key: p, secret: { value: sc } }),
  ]) {
    const p = randomPrivKey(), sc = randomSecret();
    privs.push(p);
    secrets.push(sc);
    const r = await op('set_key', make(p, sc));
    checks.check(r.status === 400, 'hygiene: a malformed set_key carrying a key is refused (400)', r.text);
  }
  {
    const sc = randomSecret();
    secrets.push(sc);
    const r = await op('generate_key', { secret: sc, extra: sc });
    checks.check(r.status === 400, 'hygiene: generate_key with an unknown field holding the secret is refused', r.text);
  }

  // The data files while signerd runs (the WAL is live), and the sealed blobs.
  const db = path.join(dataDir, 'keys.db');
  const files = () => ['keys.db', 'keys.db-wal', 'keys.db-shm', 'keys.db-journal']
    .map((f) => path.join(dataDir, f)).filter((f) => fs.existsSync(f))
    .map((f) => ({ name: path.basename(f), bytes: fs.readFileSync(f) }));
  const live = files();
  checks.check(live.some((f) => f.name === 'keys.db-wal' && f.bytes.length > 0), 'hygiene: a non-empty WAL exists while signerd runs', live.map((f) => `${f.name} ${f.bytes.length}`));
  let sealed = [];
  if (HAVE_SQLITE3) {
    const out = sqlite(db, 'SELECT key_id, hex(sealed) FROM keys;');
    sealed = out.trim().split('\n').filter(Boolean).map((l) => { const [id, h] = l.split('|'); return { id, blob: Buffer.from(h, 'hex') }; });
    checks.check(sealed.length === keys.length && sealed.every((x) => x.blob.length > 32),
      `hygiene: sqlite3 reads ${keys.length} sealed blobs`, out);
  } else {
    checks.note('sqlite3 CLI not found: sealed blobs are not grepped for');
  }
  const masterKey = fs.readFileSync(path.join(dataDir, 'master.key'));

  // Stop, so every log line is flushed.
  const st = await s.stop();
  checks.check(st && st.code === 0, 'hygiene: signerd exits 0', st);
  const after = files();

  // Needles.
  const needles = [];   // {what, text}  textual needles
  const bins = [];      // {what, bytes} binary needles
  for (const sc of secrets) needles.push({ what: `secret ${sc.slice(0, 6)}...`, text: sc });
  for (const p of privs) {
    for (const t of forms(Buffer.from(p, 'hex'))) needles.push({ what: `private key ${p.slice(0, 6)}...`, text: t });
    bins.push({ what: `private key ${p.slice(0, 6)}... (raw bytes)`, bytes: Buffer.from(p, 'hex') });
  }
  for (const x of sealed) {
    for (const t of forms(x.blob).slice(0, 6)) needles.push({ what: `sealed blob of ${x.id}`, text: t });
    // every 24-byte slice of the blob, hex: catches a logged part of it
    const h = x.blob.toString('hex');
    for (let i = 0; i + 48 <= h.length; i += 48) needles.push({ what: `part of the sealed blob of ${x.id}`, text: h.slice(i, i + 48) });
  }
  for (const t of forms(masterKey).slice(0, 6)) needles.push({ what: 'the master key', text: t });
  bins.push({ what: 'the master key (raw bytes)', bytes: masterKey });

  const logBuf = Buffer.concat(s.rawLog);
  const logText = logBuf.toString('latin1');
  const logHits = needles.filter((n) => logText.includes(n.text)).map((n) => n.what)
    .concat(bins.filter((b) => logBuf.includes(b.bytes)).map((b) => b.what));
  checks.check(logHits.length === 0, `hygiene: the log (${logBuf.length} bytes, ${s.log.length} lines) holds none of ${needles.length + bins.length} secret needles`, [...new Set(logHits)].slice(0, 10));
  checks.check(s.log.some((l) => /"level":"debug"/.test(l)), 'hygiene: the log is at debug level');
  const reqLines = s.log.filter((l) => /"msg":"request"/.test(l)).length;
  checks.check(reqLines === sent, `hygiene: one request line per dispatched request (${reqLines} lines, ${sent} requests)`);
  const ansText = answers.join('\n');
  const ansHits = needles.filter((n) => !n.what.startsWith('sealed') && !n.what.startsWith('part of') && ansText.includes(n.text)).map((n) => n.what);
  checks.check(ansHits.length === 0, `hygiene: no answer echoes a secret or private key (${answers.length} answers)`, [...new Set(ansHits)]);

  // Data files: no private key, secret or master key in plain, live or after shutdown.
  for (const [when, fl] of [['while running', live], ['after shutdown', after]]) {
    for (const f of fl) {
      const txt = f.bytes.toString('latin1');
      const hits = bins.filter((b) => f.bytes.includes(b.bytes)).map((b) => b.what)
        .concat(needles.filter((n) => n.what.startsWith('private key') || n.what.startsWith('secret') || n.what === 'the master key')
          .filter((n) => txt.includes(n.text)).map((n) => n.what));
      checks.check(hits.length === 0, `hygiene: ${f.name} (${when}, ${f.bytes.length} bytes) holds no private key, secret or master key in plain`, [...new Set(hits)]);
    }
  }
}

const groups = { sigterm, sighup, hygiene };
const only = process.env.SIGNALS_ONLY;
for (const [name, fn] of Object.entries(groups)) {
  if (only && !only.split(',').includes(name)) continue;
  const t = Date.now();
  await checks.run(`${name}: ran without an exception`, fn);
  console.log(`${NAME}: ${name} done in ${Date.now() - t} ms`);
}
logFormat();
process.exit(checks.finish());
