// Integration test of the enclave role (docs/enclave.md): signerd with
// role = "enclave" (emulated NSM, frames on TCP 127.0.0.1), a second signerd
// with role = "proxy" (docs/proxy.md) relaying its KMS connections, and the
// KMS stand-in (tests/kms/kms_standin.py: HTTPS with a test CA, SigV4, a key
// policy naming the emulated PCR0) behind the proxy: enclave -> proxy ->
// stand-in, TLS end to end, everything on loopback, every process stopped by
// its PID.
//
//   node tests/integration/enclave/enclave.mjs
//
// Needs: signerd and plugins built (SIGNER_BUILDDIR), /usr/bin/python3 with
// cryptography and cbor2, openssl, and ethers (tests/interop/node_modules,
// installed by run.sh).  Prints "enclave: N passed, M failed" last.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { children, tempDirs, setup, watchdog } from '../../lib/procs.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRCDIR = path.resolve(process.env.SIGNER_SRCDIR || path.join(HERE, '..', '..', '..'));
const BUILDDIR = path.resolve(process.env.SIGNER_BUILDDIR || SRCDIR);
const SIGNERD = path.join(BUILDDIR, 'signerd');
const PLUGIN_DIR = path.join(BUILDDIR, 'plugins', '.libs');
const PY = process.env.KMS_PYTHON || '/usr/bin/python3';
const require = createRequire(path.join(SRCDIR, 'tests', 'interop', 'package.json'));
const { Wallet, Transaction } = require('ethers');

setup('enclave');
watchdog(Number(process.env.ENCLAVE_TEST_BUDGET || 240), 'enclave');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let passed = 0, failed = 0;
function check(ok, what, detail) {
  if (ok) { passed++; console.log(`ok   ${what}`); return true; }
  failed++;
  console.log(`FAIL ${what}${detail !== undefined ? ': ' + (typeof detail === 'function' ? JSON.stringify(detail()) : detail) : ''}`);
  return false;
}

const TTL = Number(process.env.ENCLAVE_TEST_TTL || 15);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'enclave-it-'));
tempDirs.add(dir);
const hex = (n) => crypto.randomBytes(n).toString('hex');
const PCR0 = hex(48), OTHER_PCR0 = hex(48);
const AKID = 'ASIAENCLAVETEST0001', AWS_SECRET = 'aws-secret-' + hex(16), TOKEN = 'session-token-' + hex(24);
const KMS_KEY = '1111-enclave';
const logLines = []; // every line signerd and the stand-in printed

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

function policy(pcr0) {
  return { Version: '2012-10-17', Statement: [
    { Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:Encrypt', Resource: '*' },
    { Effect: 'Allow', Principal: { AWS: '*' }, Action: 'kms:Decrypt', Resource: '*',
      Condition: { StringEqualsIgnoreCase: { 'kms:RecipientAttestation:ImageSha384': pcr0 } } }] };
}

function credentials(expiresInS = 3600) {
  return { access_key_id: AKID, secret_access_key: AWS_SECRET, session_token: TOKEN,
    expiration: new Date(Date.now() + expiresInS * 1000).toISOString().replace(/\.\d+Z$/, 'Z') };
}

/** Spawns cmd; resolves when a stdout/stderr line matches ready. */
function startProcess(name, cmd, args, ready, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const h = { child, pid: child.pid, lines: [], exited: false };
    let done = false;
    const t = setTimeout(() => { if (!done) { done = true; reject(new Error(`${name} not ready in ${timeoutMs} ms: ${h.lines.slice(-5).join(' | ')}`)); } }, timeoutMs);
    const onData = (buf) => {
      for (const line of buf.toString('utf8').split('\n')) {
        if (!line) continue;
        h.lines.push(line);
        logLines.push(line);
        if (process.env.ENCLAVE_VERBOSE === '1') console.log(`  [${name}] ${line}`);
        const m = !done && line.match(ready);
        if (m) { done = true; clearTimeout(t); h.match = m; resolve(h); }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', () => { h.closed = true; });
    child.on('exit', (code, sig) => {
      h.exited = true;
      children.delete(child);
      if (!done) { done = true; clearTimeout(t); reject(new Error(`${name} exited (${code ?? sig}): ${h.lines.slice(-5).join(' | ')}`)); }
    });
  });
}

function stopProcess(h, signal = 'SIGTERM') {
  return new Promise((resolve) => {
    if (h.closed) return resolve();
    h.child.once('close', () => resolve()); /* output drained too */
    try { process.kill(h.pid, signal); } catch { resolve(); }
  });
}

// ---- frames client: one connection, many requests in flight ----
class Frames {
  constructor(port) { this.port = port; this.next = 1; this.pending = new Map(); this.buf = Buffer.alloc(0); }
  connect() {
    return new Promise((resolve, reject) => {
      this.sock = net.connect({ host: '127.0.0.1', port: this.port }, resolve);
      this.sock.on('error', (e) => { for (const p of this.pending.values()) p.reject(e); this.pending.clear(); reject(e); });
      this.sock.on('data', (d) => this.onData(d));
    });
  }
  onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
      const n = this.buf.readUInt32BE(0);
      const msg = JSON.parse(this.buf.subarray(4, 4 + n).toString('utf8'));
      this.buf = this.buf.subarray(4 + n);
      const p = this.pending.get(msg.id);
      if (p) { this.pending.delete(msg.id); p.resolve(msg); }
    }
  }
  call(operation, payload, timeoutMs = 20000) {
    const id = this.next++;
    const body = Buffer.from(JSON.stringify({ id, operation, payload }));
    const head = Buffer.alloc(4); head.writeUInt32BE(body.length);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.pending.delete(id); reject(new Error(`${operation}: no answer in ${timeoutMs} ms`)); }, timeoutMs);
      this.pending.set(id, { resolve: (m) => { clearTimeout(t); resolve(m); }, reject });
      this.sock.write(Buffer.concat([head, body]));
    });
  }
  close() { if (this.sock) this.sock.destroy(); }
}

async function kmsStats(port) {
  const r = spawnSync('curl', ['-s', '--max-time', '5', '--cacert', path.join(dir, 'tls', 'ca.pem'),
    `https://127.0.0.1:${port}/__stats`], { encoding: 'utf8' });
  return JSON.parse(r.stdout);
}
function kmsPost(port, route, body) {
  const r = spawnSync('curl', ['-s', '--max-time', '5', '--cacert', path.join(dir, 'tls', 'ca.pem'),
    '-X', 'POST', '-H', 'Content-Type: application/json', '--data', JSON.stringify(body),
    `https://127.0.0.1:${port}${route}`], { encoding: 'utf8' });
  return r.status === 0;
}
const decrypts = (s) => (s.calls && s.calls.Decrypt) || 0;

// endpointPort is the proxy's relay listener (its allowlist names
// 127.0.0.1:kmsPort); host and ca_file name the stand-in, since TLS runs end
// to end through the proxy.
function writeConfigs(endpointPort, framesPort, httpPort, pcr0 = PCR0, name = 'enclave.conf') {
  const pki = path.join(dir, 'pki');
  const r = fs.existsSync(pki) ? { status: 0 } : spawnSync('bash', [path.join(SRCDIR, 'tests', 'attest', 'make_test_pki.sh'), pki], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error('make_test_pki.sh failed: ' + r.stderr);
  const standin = {
    region: 'us-east-1', account: '111122223333',
    credentials: [{ access_key_id: AKID, secret_access_key: AWS_SECRET, session_token: TOKEN,
      expiration: credentials(7200).expiration, principal: 'arn:aws:iam::111122223333:role/enclave' }],
    attestation: { root: path.join(pki, 'root.pem'), max_age_seconds: 300 },
    keys: [{ key_id: KMS_KEY, aliases: ['alias/signer'], key_material_hex: hex(32), policy: policy(PCR0) }],
  };
  if (!fs.existsSync(path.join(dir, 'standin.json')))
    fs.writeFileSync(path.join(dir, 'standin.json'), JSON.stringify(standin, null, 1));
  const conf = `role = "enclave";
data_dir = "${dir}/data";
log_level = "info";
listen = ( { address = "127.0.0.1:${framesPort}"; protocol = "frames"; },
           { address = "127.0.0.1:${httpPort}"; protocol = "http"; } );
keystore = { type = "none"; };
sealer = {
    type = "aws-kms";
    region = "us-east-1";
    kms_key_id = "alias/signer";
    endpoint = "tcp:127.0.0.1:${endpointPort}";
    host = "kms.us-east-1.amazonaws.com";
    ca_file = "${dir}/tls/ca.pem";
    timeout_ms = "3000";
};
attestation = "emulated";
emulated_nsm = {
    signing_key = "${pki}/leaf.key";
    certificate = "${pki}/leaf.pem";
    cabundle = "${pki}/cabundle.pem";
    pcrs = { pcr0 = "${pcr0}"; };
};
key_cache = { ttl_seconds = ${TTL}; max_entries = 64; };
plugins = ( { name = "eth"; } );
`;
  fs.writeFileSync(path.join(dir, name), conf);
}

/** A role = "proxy" config: relay on relayPort to upstreamPort, allowlisting allowPort. */
function writeProxyConf(name, relayPort, httpPort, upstreamPort, allowPort = upstreamPort) {
  fs.writeFileSync(path.join(dir, name), `role = "proxy";
log_level = "info";
listen = ( { address = "127.0.0.1:${relayPort}"; protocol = "relay"; upstream = "127.0.0.1:${upstreamPort}"; },
           { address = "127.0.0.1:${httpPort}"; protocol = "http"; } );
limits = { shutdown_timeout_ms = 2000; };
proxy = { allowlist = ( { address = "127.0.0.1"; port = ${allowPort}; } );
          connect_timeout_ms = 2000; idle_timeout_ms = 30000; };
`);
}

/** The proxy's counters from /metrics, by name (with labels). */
async function proxyMetrics(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = {};
  for (const l of text.split('\n')) {
    const m = l.match(/^(signer_proxy_[a-z_]+(?:\{[^}]*\})?) (\d+)$/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}
const up = (m) => m['signer_proxy_bytes_total{direction="up"}'] || 0;
const down = (m) => m['signer_proxy_bytes_total{direction="down"}'] || 0;
const accepted = (m) => m.signer_proxy_connections_accepted_total || 0;

const startProxy = (name = 'proxy.conf') => startProcess('proxy', SIGNERD, ['-c', path.join(dir, name), '--io-loops', '2'],
  /"signerd [^ ]+ ready: role proxy/);
const startKms = (port) => startProcess('kms', PY, [path.join(SRCDIR, 'tests', 'kms', 'kms_standin.py'),
  '--config', path.join(dir, 'standin.json'), '--tls-dir', path.join(dir, 'tls'), '--port', String(port)],
  /KMS_STANDIN_READY port=(\d+)/);
const startEnclave = (name = 'enclave.conf') => startProcess('signerd', SIGNERD, ['-c', path.join(dir, name),
  '--plugin-dir', PLUGIN_DIR, '--io-loops', '2'], /"signerd [^ ]+ ready/);

const tx = { value: 0.01, to: '0xa5D3241A1591061F2a4bB69CA0215F66520E67cf', nonce: 7, type: 2, chainId: 31337,
  gas: 21000, maxFeePerGas: 100000000000, maxPriorityFeePerGas: 3000000000 };
const ethersTx = { to: tx.to, value: 10000000000000000n, nonce: tx.nonce, type: 2, chainId: tx.chainId,
  gasLimit: tx.gas, maxFeePerGas: tx.maxFeePerGas, maxPriorityFeePerGas: tx.maxPriorityFeePerGas };
const short = (m) => JSON.stringify(m)?.slice(0, 400);

/** The payload of a key-using request in the enclave role. */
function withKey(k, extra = {}, creds = credentials()) {
  return { key_id: k.key_id, secret: k.secret, sealed_key: k.sealed_key, key_chain: k.key_chain,
    key_address: k.address, credentials: creds, ...extra };
}

async function main() {
  for (const f of [SIGNERD, PLUGIN_DIR]) if (!fs.existsSync(f)) throw new Error(`${f} missing: build first`);
  const kmsPort = await freePort(), framesPort = await freePort(), httpPort = await freePort();
  const relayPort = await freePort(), proxyHttp = await freePort();
  writeConfigs(relayPort, framesPort, httpPort);
  writeProxyConf('proxy.conf', relayPort, proxyHttp, kmsPort);
  let kms = await startKms(kmsPort);
  let proxy = await startProxy();
  const pm0 = await proxyMetrics(proxyHttp);
  let enc = await startEnclave();
  check(enc.lines.some((l) => /"level":"warn".*attestation.*EMULATED/.test(l)), 'start: emulated attestation logged as a warning');
  let fr = new Frames(framesPort);
  await fr.connect();
  const secret = 'Secret-' + hex(12);

  // 1. generate_key -> sealed_key -> sign; ethers recovers the address.
  const gen = await fr.call('generate_key', { secret, credentials: credentials() });
  const g = gen.enclave_result || {};
  check(gen.enclave_status === 200 && typeof g.sealed_key === 'string' && g.key_chain && /^0x[0-9a-fA-F]{40}$/.test(g.address || ''),
    'generate_key: {key_id, address, sealed_key, key_chain}', () => short(gen));
  const k1 = { ...g, secret };
  const s1 = await fr.call('sign_transaction', withKey(k1, { transaction_payload: tx }));
  let from = null;
  try { from = Transaction.from(s1.enclave_result.transaction_signed).from; } catch (e) { from = String(e); }
  check(s1.enclave_status === 200 && from?.toLowerCase() === k1.address.toLowerCase(),
    'sign_transaction (generated key, sealed_key from the request): ethers recovers its address', () => short({ s1, from }));

  // 2. An imported key: byte-identical to ethers.
  const wallet = Wallet.createRandom();
  const imp = await fr.call('set_key', { eth_key: wallet.privateKey.slice(2), secret, credentials: credentials() });
  const k2 = { ...(imp.enclave_result || {}), secret };
  const s2 = await fr.call('sign_transaction', withKey(k2, { transaction_payload: tx }));
  const want = await wallet.signTransaction(ethersTx);
  check(s2.enclave_status === 200 && s2.enclave_result.transaction_signed === want,
    'sign_transaction (imported key): byte-identical to ethers', () => short({ s2, want }));

  // 3. 1,000 signatures with one key: exactly one Decrypt.
  const k3 = { ...((await fr.call('generate_key', { secret, credentials: credentials() })).enclave_result || {}), secret };
  const before = decrypts(await kmsStats(kmsPort));
  const t0 = Date.now();
  let ok = 0;
  for (let batch = 0; batch < 20; batch++) {
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      fr.call('sign_transaction', withKey(k3, { transaction_payload: { ...tx, nonce: batch * 50 + i } }))));
    ok += rs.filter((r) => r.enclave_status === 200).length;
  }
  const dt = Date.now() - t0;
  const after = decrypts(await kmsStats(kmsPort));
  check(ok === 1000, `1,000 signatures with one key answered 200 (${dt} ms)`, ok);
  check(after - before === 1, '1,000 signatures with one key cost exactly one KMS Decrypt', after - before);
  if (dt > (TTL - 2) * 1000) console.log(`note: the 1,000 signatures took ${dt} ms, close to the TTL`);

  // 4. TTL expiry: one more Decrypt.
  await sleep(TTL * 1000 + 1200);
  const s4 = await fr.call('sign_transaction', withKey(k3, { transaction_payload: tx }));
  const afterTtl = decrypts(await kmsStats(kmsPort));
  check(s4.enclave_status === 200 && afterTtl - after === 1, 'after the TTL: one more Decrypt', () => ({ status: s4.enclave_status, decrypts: afterTtl - after }));

  // 4b. All of that went through the proxy: its counters moved both ways.
  const pm1 = await proxyMetrics(proxyHttp);
  const calls = Object.values((await kmsStats(kmsPort)).calls || {}).reduce((a, b) => a + b, 0);
  check(accepted(pm1) - accepted(pm0) >= 1 && up(pm1) - up(pm0) > 0 && down(pm1) - down(pm0) > 0,
    `proxy /metrics after the signing checks: ${accepted(pm1) - accepted(pm0)} connections accepted, ` +
    `${up(pm1) - up(pm0)} bytes up, ${down(pm1) - down(pm0)} bytes down`, () => pm1);
  // Each KMS call is a TLS exchange through the relay: more bytes up than the
  // request bodies alone (a floor of 1 KB a call is generous for SigV4 + TLS).
  check(calls > 0 && up(pm1) - up(pm0) >= 1024 * calls && down(pm1) - down(pm0) >= 1024,
    `proxy relayed at least 1 KB per KMS call (${calls} calls at the stand-in)`, () => ({ calls, up: up(pm1) - up(pm0), down: down(pm1) - down(pm0) }));

  // 4c. A proxy whose upstream is off its allowlist does not start.
  writeProxyConf('proxy-off.conf', await freePort(), await freePort(), kmsPort, kmsPort + 1 > 65535 ? kmsPort - 1 : kmsPort + 1);
  const off = spawnSync(SIGNERD, ['-c', path.join(dir, 'proxy-off.conf'), '--io-loops', '1'], { encoding: 'utf8', timeout: 15000 });
  const offOut = (off.stdout || '') + (off.stderr || '');
  for (const l of offOut.split('\n')) if (l) logLines.push(l);
  check(off.status !== null && off.status !== 0 && offOut.includes(`upstream 127.0.0.1:${kmsPort} is not on the allowlist`),
    'proxy with an upstream off the allowlist: exits non-zero naming "not on the allowlist"', () => ({ status: off.status, signal: off.signal, out: offOut.slice(-400) }));

  // 5. Expired credentials are refused (before any KMS call).
  const exp = await fr.call('sign_transaction', withKey(k1, { transaction_payload: tx }, credentials(-60)));
  check(exp.enclave_status === 403 && /credentials/.test(exp.enclave_result?.error || '') && /expired/.test(exp.enclave_result?.error || ''),
    'expired credentials: 403 naming credentials', () => short(exp));
  const noCreds = await fr.call('generate_key', { secret });
  check(noCreds.enclave_status === 400 && /credentials/.test(noCreds.enclave_result?.error || ''),
    'generate_key without credentials: 400 naming credentials', () => short(noCreds));

  // 6. A blob moved to another key_id does not open.
  const moved = await fr.call('sign_transaction', withKey({ ...k2, key_id: k1.key_id }, { transaction_payload: tx }));
  check(moved.enclave_status === 403 && /sealed_key/.test(moved.enclave_result?.error || ''),
    'a sealed_key presented under another key_id: 403', () => short(moved));

  // 7. A reference-wallet blob made by the stand-in signs (short eth_key).
  let refWallet;
  do { refWallet = Wallet.createRandom(); } while (!refWallet.privateKey.startsWith('0x0'));
  const refHex = refWallet.privateKey.slice(2).replace(/^0+/, '');
  const refSecret = 'ref-' + hex(8);
  const mk = spawnSync(PY, [path.join(SRCDIR, 'tests', 'kms', 'make_reference_blob.py'), '--config', path.join(dir, 'standin.json'),
    '--key-id', KMS_KEY, '--secret', refSecret, '--eth-key', refHex], { encoding: 'utf8' });
  const refKey = { key_id: crypto.randomUUID(), secret: refSecret, sealed_key: mk.stdout.trim(), key_chain: 'eth',
    address: refWallet.address.toLowerCase() };
  const sRef = await fr.call('sign_transaction', withKey(refKey, { transaction_payload: tx }));
  const wantRef = await refWallet.signTransaction(ethersTx);
  check(mk.status === 0 && sRef.enclave_status === 200 && sRef.enclave_result.transaction_signed === wantRef,
    `reference-wallet blob (eth_key of ${refHex.length} hex digits): signs, byte-identical to ethers`, () => short({ sRef, err: mk.stderr }));

  // 8. attestation frame: verified by third-party code, bound to our nonce.
  const nonce = crypto.randomBytes(32);
  const at = await fr.call('attestation', { nonce: nonce.toString('base64') });
  let verified = false;
  if (at.enclave_status === 200) {
    fs.writeFileSync(path.join(dir, 'doc.cbor'), Buffer.from(at.enclave_result.document, 'base64'));
    const v = spawnSync(PY, [path.join(HERE, 'verify_attestation.py'), '--doc', path.join(dir, 'doc.cbor'),
      '--root', path.join(dir, 'pki', 'root.der'), '--pcr0', PCR0, '--nonce-hex', nonce.toString('hex')], { encoding: 'utf8' });
    verified = v.status === 0;
    if (!verified) console.log(v.stdout + v.stderr);
  }
  check(verified, 'attestation frame: a document that verifies (chain, ES384, PCR0) carrying our nonce', () => short(at));
  const bigNonce = await fr.call('attestation', { nonce: crypto.randomBytes(513).toString('base64') });
  check(bigNonce.enclave_status === 400 && /nonce/.test(bigNonce.enclave_result?.error || ''), 'attestation: a nonce over 512 bytes is refused', () => short(bigNonce));

  // 9. The warnings in /metrics: emulated attestation (PCR0 is not zero).
  const met = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  check(/^signer_attestation_emulated 1$/m.test(met) && /^signer_attestation_debug_pcrs 0$/m.test(met),
    '/metrics: signer_attestation_emulated 1, signer_attestation_debug_pcrs 0', () => met.split('\n').filter((l) => l.includes('attestation')));
  // 10. kill -9 and restart: the same sealed keys sign (stateless).
  fr.close();
  await stopProcess(enc, 'SIGKILL');
  enc = await startEnclave();
  fr = new Frames(framesPort);
  await fr.connect();
  const s10 = await fr.call('sign_transaction', withKey(k2, { transaction_payload: tx }));
  check(s10.enclave_status === 200 && s10.enclave_result.transaction_signed === want,
    'after kill -9 and a restart: the same sealed key signs the same bytes', () => short(s10));

  // 11. The key policy names another PCR0: unseal refused, clearly.
  check(kmsPost(kmsPort, '/__policy', { key_id: KMS_KEY, policy: policy(OTHER_PCR0) }), 'stand-in: policy swapped to another PCR0');
  const s11 = await fr.call('sign_transaction', withKey(k1, { transaction_payload: tx }));
  const e11 = s11.enclave_result?.error || '';
  check(s11.enclave_status === 500 && /KMS/.test(e11) && /PCR0/.test(e11) && /AccessDenied/.test(e11),
    'policy for another PCR0: 500 naming KMS, AccessDenied and PCR0', () => short(s11));
  console.log(`  answer: ${e11}`);
  kmsPost(kmsPort, '/__policy', { key_id: KMS_KEY, policy: policy(PCR0) });

  // 11b. The proxy is down (the stand-in up): like the stand-in down, cached
  // keys sign and a new unseal gets 503 naming KMS; the proxy back, it opens.
  const warmP = await fr.call('sign_transaction', withKey(k3, { transaction_payload: tx }));
  await stopProcess(proxy);
  const pDownCached = await fr.call('sign_transaction', withKey(k3, { transaction_payload: tx }));
  check(warmP.enclave_status === 200 && pDownCached.enclave_status === 200, 'proxy down: a cached key still signs', () => short(pDownCached));
  const tp = Date.now();
  const pDown = await fr.call('sign_transaction', withKey(refKey, { transaction_payload: tx }));
  const ePDown = pDown.enclave_result?.error || '';
  check(pDown.enclave_status === 503 && /KMS/.test(ePDown) && /retry after/.test(ePDown),
    `proxy down: a key not cached gets 503 naming KMS with a retry hint (${Date.now() - tp} ms)`, () => short(pDown));
  console.log(`  answer: ${ePDown}`);
  proxy = await startProxy();
  const pBack = await fr.call('sign_transaction', withKey(refKey, { transaction_payload: tx }));
  const pm2 = await proxyMetrics(proxyHttp);
  check(pBack.enclave_status === 200 && pBack.enclave_result.transaction_signed === wantRef && accepted(pm2) >= 1 && down(pm2) > 0,
    'proxy back: the same key unseals through it and signs byte-identically to ethers', () => short({ pBack, pm2 }));

  // 12. The stand-in is down: cached keys sign, new unseals get 503 naming KMS.
  const warm = await fr.call('sign_transaction', withKey(k3, { transaction_payload: tx }));
  const pm3 = await proxyMetrics(proxyHttp);
  await stopProcess(kms);
  const s12a = await fr.call('sign_transaction', withKey(k3, { transaction_payload: tx }));
  check(warm.enclave_status === 200 && s12a.enclave_status === 200, 'KMS down: a cached key still signs', () => short(s12a));
  const t12 = Date.now();
  const s12b = await fr.call('sign_transaction', withKey(k1, { transaction_payload: tx }));
  check(s12b.enclave_status === 503 && /KMS/.test(s12b.enclave_result?.error || '') && /retry after/.test(s12b.enclave_result?.error || ''),
    `KMS down: a key not cached gets 503 naming KMS with a retry hint (${Date.now() - t12} ms)`, () => short(s12b));
  console.log(`  answer: ${s12b.enclave_result?.error}`);
  const pm4 = await proxyMetrics(proxyHttp);
  const cf = (m) => m.signer_proxy_upstream_connect_failures_total || 0;
  check(cf(pm4) > cf(pm3), `KMS down: the proxy counted ${cf(pm4) - cf(pm3)} failed upstream connects (the unseal went through it)`, () => pm4);

  fr.close();
  await stopProcess(enc);

  // 13. A debug-mode image (all-zero PCR0): warned at start and in /metrics.
  const dbgFrames = await freePort(), dbgHttp = await freePort();
  writeConfigs(relayPort, dbgFrames, dbgHttp, '0'.repeat(96), 'debug.conf');
  const dbg = await startEnclave('debug.conf');
  const dm = await (await fetch(`http://127.0.0.1:${dbgHttp}/metrics`)).text();
  check(dbg.lines.some((l) => /"level":"warn".*PCR0 is all zero/.test(l)) && /^signer_attestation_debug_pcrs 1$/m.test(dm),
    'all-zero PCR0: a warning at start and signer_attestation_debug_pcrs 1', () => dm.split('\n').filter((l) => l.includes('attestation')));
  await stopProcess(dbg);
  await stopProcess(proxy);

  // Sanitizer builds: nothing reported (leaks at exit included).
  const san = logLines.filter((l) => /AddressSanitizer|LeakSanitizer|runtime error:/.test(l));
  check(san.length === 0, 'no sanitizer report from signerd (enclave and proxy)', () => san.slice(0, 3));

  // 14. No log line holds a key, secret, credential or plaintext.
  const secrets = [secret, refSecret, AWS_SECRET, TOKEN, wallet.privateKey.slice(2), refHex];
  const leaks = logLines.filter((l) => secrets.some((s) => l.includes(s)));
  check(logLines.length > 0 && leaks.length === 0, `no log line (of ${logLines.length}) holds a key, secret, credential or plaintext`, () => leaks.slice(0, 3));
}

main().catch((e) => { failed++; console.log(`FAIL ${e.stack || e}`); }).finally(() => {
  console.log(`enclave: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
});
