// Hardening item 8: crash safety.  signerd runs on one data dir; 8 clients
// hammer it with generate_key and set_key (HTTP and frames); it is killed
// with SIGKILL at a random moment (100-400 ms into the burst) and restarted
// on the same data dir, 5 times.  Every key_id answered 200 is recorded with
// its secret (and, for set_key, the private key).  At the end:
//   - every recorded key signs (sign_message and sign_userop 200; the eth
//     plugin's verify_signatures recovers each signature and refuses to
//     answer unless it is the stored address);
//   - the address answered at creation equals the `address` column of
//     keys.db, and for set_key the address derived here from the private key
//     (node:crypto secp256k1 + Keccak-256);
//   - `PRAGMA integrity_check` is ok, right after a kill -9 (on a copy, with
//     the WAL as the crash left it) and at the end; no row has an empty
//     chain, address or sealed blob (no half-written record).
//
// Run: node crash.mjs  (CRASH_ROUNDS, CRASH_CLIENTS)

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  Checks, watchdog, startSignerd, writeConfig, tempDir, call, openFrames, keyCount,
  randomSecret, randomPrivKey, addressOf, sleep, sqlite, HAVE_SQLITE3, pool, UUID_RE,
} from './common.mjs';

const NAME = 'crash';
watchdog(55, NAME);
const checks = new Checks(NAME);
const ROUNDS = Number(process.env.CRASH_ROUNDS || 5);
const CLIENTS = Number(process.env.CRASH_CLIENTS || 8);

const recorded = new Map();   // key_id -> {secret, address, priv?, round, via}
let duplicateIds = 0;
let badAnswers = [];

function record(res, job, round, via) {
  const r = res.enclave_result || {};
  if (!UUID_RE.test(r.key_id || '') || !/^0x[0-9a-fA-F]{40}$/.test(r.address || '')) {
    badAnswers.push(res);
    return;
  }
  if (recorded.has(r.key_id)) duplicateIds++;
  recorded.set(r.key_id, { secret: job.secret, address: r.address, priv: job.priv, round, via });
}

function newJob(i) {
  const secret = randomSecret();
  if (i % 2 === 0) return { op: 'generate_key', payload: { secret }, secret };
  const priv = randomPrivKey();
  // every other import spells the key with 0x and in upper case
  const eth_key = i % 4 === 1 ? priv : `0x${priv.toUpperCase()}`;
  return { op: 'set_key', payload: { eth_key, secret }, secret, priv };
}

/** One HTTP client: requests back to back until stopped or refused. */
async function httpClient(s, round, stop) {
  let i = 0, errors = 0;
  while (!stop.v && errors < 3) {
    const job = newJob(i++);
    try {
      const r = await call(s.port, job.op, job.payload, { timeoutMs: 3000 });
      if (r.status === 200) record(r.json, job, round, 'http');
      else badAnswers.push(r.text);
    } catch {
      errors++;   // killed: connection reset or refused
    }
  }
}

/** One frames client: keeps 4 requests pipelined until stopped or closed. */
async function framesClient(s, round, stop) {
  let f;
  try { f = await openFrames(s.framesPort); } catch { return; }
  const jobs = new Map();
  let i = 0, seen = 0;
  const send = () => {
    const job = newJob(i);
    jobs.set(i, job);
    f.send({ id: i, operation: job.op, payload: job.payload });
    i++;
  };
  for (let k = 0; k < 4; k++) send();
  while (!stop.v && !f.closed) {
    await sleep(1);
    while (seen < f.answers.length) {
      const a = f.answers[seen++];
      const job = jobs.get(a.id);
      if (job && a.enclave_status === 200) record(a, job, round, 'frames');
      else badAnswers.push(a);
      if (!stop.v) send();
    }
  }
  // answers that arrived in the same tick as the kill
  while (seen < f.answers.length) {
    const a = f.answers[seen++];
    const job = jobs.get(a.id);
    if (job && a.enclave_status === 200) record(a, job, round, 'frames');
  }
  f.destroy();
}

function copyDb(dataDir, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const f of ['keys.db', 'keys.db-wal', 'keys.db-shm']) {
    const p = path.join(dataDir, f);
    if (fs.existsSync(p)) fs.copyFileSync(p, path.join(to, f));
  }
  return path.join(to, 'keys.db');
}

function dbChecks(dbFile, label) {
  const ic = sqlite(dbFile, 'PRAGMA integrity_check;', []).trim();
  checks.check(ic === 'ok', `${label}: PRAGMA integrity_check says ok`, ic);
  const bad = sqlite(dbFile, "SELECT count(*) FROM keys WHERE chain IS NULL OR chain = '' OR address IS NULL OR address = '' OR sealed IS NULL OR length(sealed) = 0 OR key_id IS NULL OR key_id = '';").trim();
  checks.check(bad === '0', `${label}: no row has an empty key_id, chain, address or sealed blob`, `${bad} rows`);
}

async function main() {
  const dir = tempDir('crash');
  const conf = writeConfig(dir, { workers: 2 });
  const dataDir = path.join(dir, 'data');
  const stats = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const s = await startSignerd({ conf, dataDir });
    const before = recorded.size;
    const keysAtStart = await keyCount(s.port);
    checks.check(keysAtStart >= before, `round ${round}: after restart signer_keys ${keysAtStart} >= ${before} acknowledged so far`);
    const stop = { v: false };
    const clients = [];
    for (let c = 0; c < CLIENTS; c++) {
      clients.push(c % 4 === 3 ? framesClient(s, round, stop) : httpClient(s, round, stop));
    }
    const delay = 100 + crypto.randomInt(301);
    await sleep(delay);
    await s.kill9();
    stop.v = true;
    await Promise.all(clients);
    checks.check(s.exitInfo && s.exitInfo.signal === 'SIGKILL', `round ${round}: signerd was killed by SIGKILL after ${delay} ms`, s.exitInfo);
    stats.push(`round ${round}: killed after ${delay} ms, ${recorded.size - before} keys acknowledged`);
    if (round === ROUNDS && HAVE_SQLITE3) {
      // The files exactly as the kill left them (WAL not checkpointed).
      const copy = copyDb(dataDir, path.join(dir, 'after-kill'));
      dbChecks(copy, `after kill -9 (round ${round}, copy)`);
    }
  }
  console.log(stats.map((x) => `  ${x}`).join('\n'));
  checks.check(recorded.size >= ROUNDS * 5, `at least ${ROUNDS * 5} keys were acknowledged over ${ROUNDS} rounds (${recorded.size})`);
  checks.check(duplicateIds === 0, 'no key_id was handed out twice', `${duplicateIds} duplicates`);
  checks.check(badAnswers.length === 0, 'every answer before the kill was 200', badAnswers.slice(0, 3));

  // Restart once more: every acknowledged key still signs.
  const s = await startSignerd({ conf, dataDir });
  const failures = [];
  const ids = [...recorded.keys()];
  await pool(ids, 8, async (id) => {
    const k = recorded.get(id);
    const m = await call(s.port, 'sign_message', { key_id: id, secret: k.secret, message: `crash test ${id}` });
    const u = await call(s.port, 'sign_userop', { key_id: id, secret: k.secret, transaction_payload: { userOpHash: crypto.randomBytes(32).toString('hex') } });
    if (m.status !== 200 || u.status !== 200) failures.push({ id, round: k.round, via: k.via, sign_message: m.text, sign_userop: u.text });
  });
  checks.check(failures.length === 0, `all ${ids.length} acknowledged keys still sign after ${ROUNDS} kills (sign_message and sign_userop 200)`, failures.slice(0, 5));
  const imported = ids.filter((id) => recorded.get(id).priv);
  const wrongAddr = imported.filter((id) => recorded.get(id).address.toLowerCase() !== addressOf(recorded.get(id).priv));
  checks.check(imported.length > 0 && wrongAddr.length === 0, `set_key answered the address of the imported key (${imported.length} keys)`, wrongAddr.slice(0, 5));
  const total = await keyCount(s.port);
  checks.check(total >= ids.length, `signer_keys ${total} >= ${ids.length} acknowledged`);
  const st = await s.stop();
  checks.check(st && st.code === 0, 'final signerd exits 0 on SIGTERM', st);

  if (!HAVE_SQLITE3) {
    checks.note('sqlite3 CLI not found: keys.db is not inspected');
    return;
  }
  const db = path.join(dataDir, 'keys.db');
  dbChecks(db, 'at the end');
  const rows = new Map(sqlite(db, 'SELECT key_id, chain, address FROM keys;').trim().split('\n').filter(Boolean)
    .map((l) => { const [id, chain, address] = l.split('|'); return [id, { chain, address }]; }));
  const missing = ids.filter((id) => !rows.has(id));
  checks.check(missing.length === 0, `every acknowledged key_id is a row of keys.db (${rows.size} rows)`, missing.slice(0, 5));
  const mism = ids.filter((id) => rows.has(id) && (rows.get(id).address !== recorded.get(id).address || rows.get(id).chain !== 'eth'))
    .map((id) => ({ id, answered: recorded.get(id).address, stored: rows.get(id) }));
  checks.check(mism.length === 0, 'the answered address equals the address column (chain eth) for every key', mism.slice(0, 5));
}

await checks.run('crash main', main);
process.exit(checks.finish());
