// The gateway on the production path (scripts/topology.sh): dynalite, the
// KMS stand-in, two enclaves and the gateway (HTTPS + mTLS) on loopback.
//
//  - differential: every operation through the gateway answers what a
//    standalone signer answers for the same imported key, and ethers agrees
//  - the seed's request formats (aliases, envelope, routes) work unchanged
//  - DynamoDB holds sealed blobs only: a scan finds no key, secret or
//    credential
//  - mTLS: no certificate, a certificate not on the allowlist, and one from
//    another CA are all refused
//  - kill -9 of one enclave during a burst: every signature still answers
//    (they fail over); the restarted enclave rejoins
//  - kill -9 of the gateway during a burst of generate_key: every
//    acknowledged key_id is in DynamoDB and signs after the restart
//  - dynalite unreachable: 503 naming the keystore within the deadline,
//    /readyz false, recovery
//  - aws-kms (the default; ENCLAVE_SEALER=local skips these): generate_key
//    and sign with KMS behind the proxy; the KMS stand-in down: cached keys
//    sign, new keys get 503 naming KMS, recovery; a reference-wallet item
//    (written with the AWS SDK) signs, equal to ethers
//  - forward_credentials against a fake enclave: credentials, sealed record
//    and request id in the frame; nothing secret in the gateway's log
//  - per-client throttling: 429 with Retry-After over the bucket
//  - /rpc (the eth plugin's raw JSON-RPC op) through the gateway: the same
//    status, content type and body as standalone for the same key, and
//    ethers agrees on the signatures
//  - the health probe: answered 200 by the enclave, no log line for it
//  - the client's identity in the frame: wrong-secret bursts from one
//    client lock out that client only, not another with the right secret
//  - signer-bench through the gateway over HTTPS with mTLS for a few
//    seconds: zero errors
//
// Environment: SIGNER_SRCDIR, SIGNER_BUILDDIR (default: the source tree's
// build/), GATEWAY_TEST_TIME_LIMIT (seconds, default 240).

import { spawn, execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Wallet, Transaction, TypedDataEncoder, Signature, keccak256, getBytes } from 'ethers';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';

const NAME = 'gateway';
const here = path.dirname(new URL(import.meta.url).pathname);
const SRC = process.env.SIGNER_SRCDIR || path.resolve(here, '../..');
const BUILD = process.env.SIGNER_BUILDDIR && fs.existsSync(path.join(process.env.SIGNER_BUILDDIR, 'signerd'))
  ? process.env.SIGNER_BUILDDIR : path.join(SRC, 'build');
const TOPO = path.join(SRC, 'scripts', 'topology.sh');
const TOPO_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-topology.'));
const execFileP = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let passed = 0, failed = 0;
function check(ok, what, details) {
  if (ok) { passed++; console.log(`ok   ${what}`); }
  else { failed++; console.log(`FAIL ${what}`); if (details) console.log('     ', typeof details === 'function' ? JSON.stringify(details()) : details); }
  return ok;
}

// ---- topology ---------------------------------------------------------------

const topoEnv = { ...process.env, TOPOLOGY_DIR: TOPO_DIR, SIGNER_BUILDDIR: BUILD };
let env = {};
const children = [];

function down() {
  try { execFileSync(TOPO, ['down'], { env: topoEnv, stdio: 'ignore' }); } catch { /* ignore */ }
  for (const c of children) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
  fs.rmSync(TOPO_DIR, { recursive: true, force: true });
}
process.on('exit', down);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(1));
const limit = Number(process.env.GATEWAY_TEST_TIME_LIMIT || 240);
setTimeout(() => { console.log(`${NAME}: time limit ${limit}s reached`); console.log(`${NAME}: ${passed} passed, ${failed + 1} failed`); process.exit(1); }, limit * 1000).unref();

function pidsOf() {
  const out = {};
  for (const l of fs.readFileSync(env.PIDS_FILE, 'utf8').split('\n')) {
    const m = /^([a-z0-9]+)=(\d+)$/.exec(l.trim());
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

// Starts a topology process again (same config and environment), recorded
// in the PIDS_FILE by topology.sh.
function restart(name) {
  execFileSync(TOPO, ['restart', name], { env: topoEnv, stdio: 'ignore' });
  return pidsOf()[name];
}

// ---- clients ----------------------------------------------------------------

const tlsFiles = () => ({
  ca: fs.readFileSync(env.CA_FILE),
  cert: fs.readFileSync(env.CLIENT_CERT),
  key: fs.readFileSync(env.CLIENT_KEY),
});
let agent;

function request(url, { method = 'POST', body, tls = null, timeout = 10000, headers = {}, localAddress } = {}) {
  return new Promise((resolve) => {
    const u = new URL(url);
    const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const isHttps = u.protocol === 'https:';
    const opts = {
      method, hostname: u.hostname, port: u.port, path: u.pathname, timeout, localAddress,
      headers: { ...(data !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}), ...headers },
    };
    if (isHttps) Object.assign(opts, tls ?? { agent });
    const req = (isHttps ? https : http).request(opts, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json, result: json?.enclave_result });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, error: e.message, text: '' }));
    if (data !== undefined) req.write(data);
    req.end();
  });
}

const gw = (op, payload) => request(env.GATEWAY_URL, { body: { operation: op, payload } });
let standaloneUrl, standaloneFrames;

// One frame to a frames listener (HOST:PORT) and its answer, or null.
async function frameRoundTrip(addr, obj) {
  const net = await import('node:net');
  const [host, port] = addr.split(':');
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), host);
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => { sock.destroy(); resolve(null); }, 3000);
    sock.on('connect', () => {
      const f = Buffer.from(JSON.stringify(obj));
      const h = Buffer.alloc(4); h.writeUInt32BE(f.length);
      sock.write(Buffer.concat([h, f]));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        clearTimeout(t); sock.destroy();
        resolve(JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString()));
      }
    });
    sock.on('error', () => { clearTimeout(t); resolve(null); });
  });
}
const sa = (op, payload) => request(standaloneUrl, { body: { operation: op, payload } });

// The addresses signerd bound (its listeners on port 0), by protocol, read
// from its log's "listening on PROTO ADDR" lines: bounded (10 s), null if
// it did not get that far.  No port is picked and released first, so none
// can be taken in between.
async function boundAddrs(logFile, child, protos) {
  for (let i = 0; i < 100 && child.exitCode === null; i++) {
    const text = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
    const found = Object.fromEntries([...text.matchAll(/"listening on (\w+) (127\.0\.0\.1:\d+)"/g)].map((m) => [m[1], m[2]]));
    if (protos.every((p) => found[p])) return found;
    await sleep(100);
  }
  return null;
}

// A standalone signer on its own data dir: the reference for the differential.
async function startStandalone() {
  const dir = path.join(TOPO_DIR, 'standalone');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'standalone.conf'), `role = "standalone";
data_dir = "${dir}/data";
listen = ( { address = "127.0.0.1:0"; protocol = "http"; },
           { address = "127.0.0.1:0"; protocol = "frames"; } );
plugins = ( { name = "eth"; path = "eth.so"; } );
`);
  const log = fs.openSync(path.join(dir, 'log'), 'a');
  const child = spawn(path.join(BUILD, 'signerd'), ['-c', path.join(dir, 'standalone.conf'), '--io-loops', '1'],
    { stdio: ['ignore', log, log] });
  children.push(child);
  const bound = await boundAddrs(path.join(dir, 'log'), child, ['http', 'frames']);
  if (!bound) return false;
  standaloneUrl = `http://${bound.http}/`;
  standaloneFrames = bound.frames;
  for (let i = 0; i < 100; i++) {
    if ((await request(standaloneUrl + 'readyz', { method: 'GET' })).status === 200) return true;
    await sleep(100);
  }
  return false;
}

// ---- the checks -------------------------------------------------------------

const SECRET = 'gateway test secret 0123456789';
const TX = {
  to: '0xa5D3241A1591061F2a4bB69CA0215F66520E67cf', value: '0x2386f26fc10000', nonce: 7, type: 2, chainId: 11155111,
  gas: 21000, maxFeePerGas: '0x174876e800', maxPriorityFeePerGas: '0xb2d05e00', data: '0x',
};
const TYPED = {
  types: { EIP712Domain: [{ name: 'name', type: 'string' }, { name: 'chainId', type: 'uint256' }],
    Mail: [{ name: 'to', type: 'address' }, { name: 'contents', type: 'string' }] },
  primaryType: 'Mail', domain: { name: 'gw', chainId: 1 },
  message: { to: '0xa5D3241A1591061F2a4bB69CA0215F66520E67cf', contents: 'hello' },
};

async function differential(wallet) {
  const ethKey = wallet.privateKey.slice(2);
  const a = await gw('set_key', { eth_key: ethKey, secret: SECRET });
  const b = await sa('set_key', { eth_key: ethKey, secret: SECRET });
  check(a.status === 200 && b.status === 200 && a.result.address === b.result.address && a.result.address === wallet.address
    && a.result.sealed_key === undefined && a.result.key_chain === undefined,
  'set_key: same address through the gateway and standalone (ethers), no sealed_key in the answer', () => [a.text, b.text]);
  const ka = a.result?.key_id, kb = b.result?.key_id;
  const ops = [
    ['sign_transaction', { transaction_payload: TX }],
    ['sign_message', { message: 'gateway differential' }],
    ['sign_typed_data', { typed_data: TYPED }],
    ['sign_userop', { transaction_payload: { userOpHash: keccak256('0x1234').slice(2) } }],
    ['sign_authorization', { authorization: { chainId: 1, address: TX.to, nonce: 3 } }],
  ];
  for (const [op, p] of ops) {
    const x = await gw(op, { key_id: ka, secret: SECRET, ...p });
    const y = await sa(op, { key_id: kb, secret: SECRET, ...p });
    check(x.status === 200 && x.status === y.status && JSON.stringify(x.json) === JSON.stringify(y.json),
      `${op}: the gateway answers exactly what the standalone signer answers`, () => [x.text, y.text]);
  }
  const t = await gw('sign_transaction', { key_id: ka, secret: SECRET, transaction_payload: TX });
  const expected = await wallet.signTransaction({ ...TX, gasLimit: 21000n, value: BigInt(TX.value), data: '0x' });
  check(t.result?.transaction_signed === expected, 'sign_transaction through the gateway equals ethers Wallet.signTransaction',
    () => [t.text, expected]);
  const m = await gw('sign_message', { key_id: ka, secret: SECRET, message: 'gateway differential' });
  check(m.result?.signature === await wallet.signMessage('gateway differential'), 'sign_message equals ethers signMessage');
  const { EIP712Domain, ...types } = TYPED.types;
  const td = await gw('sign_typed_data', { key_id: ka, secret: SECRET, typed_data: TYPED });
  check(td.result?.signature === await wallet.signTypedData(TYPED.domain, types, TYPED.message),
    'sign_typed_data equals ethers signTypedData', () => td.text);
  const bad = await gw('sign_transaction', { key_id: ka, secret: 'wrong secret 0123456789xx', transaction_payload: TX });
  const badSa = await sa('sign_transaction', { key_id: kb, secret: 'wrong secret 0123456789xx', transaction_payload: TX });
  check(bad.status === 403 && bad.status === badSa.status && bad.text === badSa.text, 'a wrong secret: the same 403 as standalone',
    () => [bad.text, badSa.text]);
  const unknown = await gw('sign_message', { key_id: '7d0c7d8b-9a2b-4c7e-8f11-0123456789ab', secret: SECRET, message: 'x' });
  check(unknown.status === 404, 'an unknown key_id: 404', () => unknown.text);
  const inj = await gw('sign_message', { key_id: ka, secret: SECRET, message: 'x', sealed_key: 'AAAA' });
  check(inj.status === 400 && /sealed_key/.test(inj.result?.error ?? ''), 'a client-sent sealed_key is refused by name', () => inj.text);
  const badop = await gw('no_such_op', {});
  const badopSa = await sa('no_such_op', {});
  check(badop.status === 400 && badop.text === badopSa.text, 'an unknown operation: the same 400 as standalone');
  return { keyId: ka, ethKey, saKeyId: kb };
}

// /rpc: the same JSON-RPC requests through the gateway and a standalone
// signer, each with its own key_id for the same imported key (so only the
// Authorization header differs): same status, content type and body.
async function rpcDifferential(wallet, keyId, saKeyId) {
  const bearer = (k, s = SECRET) => ({ Authorization: `Bearer ${k}:${s}` });
  const basic = (k, s = SECRET) => ({ Authorization: 'Basic ' + Buffer.from(`${k}:${s}`).toString('base64') });
  const both = async (body, ga = bearer(keyId), sh = bearer(saKeyId)) => {
    const x = await request(env.GATEWAY_URL + 'rpc', { body, headers: ga });
    const y = await request(standaloneUrl + 'rpc', { body, headers: sh });
    return [x, y];
  };
  const same = (x, y) => x.status === y.status && x.text === y.text && x.headers['content-type'] === y.headers['content-type'];
  const tx = { to: TX.to, value: TX.value, nonce: '0x7', chainId: '0xaa36a7', gas: '0x5208',
    maxFeePerGas: TX.maxFeePerGas, maxPriorityFeePerGas: TX.maxPriorityFeePerGas, type: '0x2' };
  const data = '0x' + Buffer.from('gateway rpc').toString('hex');
  const { EIP712Domain, ...types } = TYPED.types;
  const cases = [
    ['eth_accounts', { jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] },
      (j) => j?.result?.[0] === wallet.address],
    ['eth_signTransaction', { jsonrpc: '2.0', id: 2, method: 'eth_signTransaction', params: [tx] },
      async (j) => j?.result === await wallet.signTransaction({ ...TX, gasLimit: 21000n, value: BigInt(TX.value), data: '0x' })],
    ['eth_sign', { jsonrpc: '2.0', id: 3, method: 'eth_sign', params: [wallet.address, data] },
      async (j) => j?.result === await wallet.signMessage(getBytes(data))],
    ['personal_sign', { jsonrpc: '2.0', id: 'p', method: 'personal_sign', params: [data, wallet.address] },
      async (j) => j?.result === await wallet.signMessage(getBytes(data))],
    ['eth_signTypedData_v4', { jsonrpc: '2.0', id: 5, method: 'eth_signTypedData_v4', params: [wallet.address, TYPED] },
      async (j) => j?.result === await wallet.signTypedData(TYPED.domain, types, TYPED.message)],
    ['an unknown method', { jsonrpc: '2.0', id: 6, method: 'eth_noSuchMethod', params: [] },
      (j) => j?.error?.code === -32601],
    ['a bad parameter', { jsonrpc: '2.0', id: 7, method: 'eth_sign', params: [wallet.address, 'not hex'] },
      (j) => j?.error?.code === -32602],
    ['a batch with a notification', [{ jsonrpc: '2.0', id: 'a', method: 'eth_accounts' },
      { jsonrpc: '2.0', method: 'eth_accounts' }, { jsonrpc: '2.0', id: 'b', method: 'personal_sign', params: [data, wallet.address] }],
    async (j) => Array.isArray(j) && j.length === 2 && j[1].result === await wallet.signMessage(getBytes(data))],
    ['malformed JSON', '{"jsonrpc": "2.0", "method"', (j) => j?.error?.code === -32700],
  ];
  for (const [what, body, ok] of cases) {
    const [x, y] = await both(body);
    check(x.status === 200 && same(x, y) && await ok(x.json),
      `/rpc ${what}: the gateway answers what the standalone signer answers (and ethers agrees)`, () => [x.status, x.text, y.status, y.text]);
  }
  const [n1, n2] = await both({ jsonrpc: '2.0', method: 'eth_accounts' });
  check(n1.status === 200 && n1.text === '' && same(n1, n2), '/rpc only a notification: 200 and an empty body, as standalone',
    () => [n1.status, n1.text, n2.status, n2.text]);
  const [b1, b2] = await both(cases[0][1], basic(keyId), basic(saKeyId));
  check(b1.status === 200 && same(b1, b2), '/rpc with Authorization: Basic, as standalone', () => [b1.text, b2.text]);
  const [w1, w2] = await both(cases[0][1], bearer(keyId, 'wrong secret 0123456789xx'), bearer(saKeyId, 'wrong secret 0123456789xx'));
  check(w1.status === 401 && same(w1, w2) && w1.json?.error?.code === -32001, '/rpc a wrong secret: the same 401 JSON-RPC error',
    () => [w1.text, w2.text]);
  const nobody = '7d0c7d8b-9a2b-4c7e-8f11-0123456789ab';
  const [u1, u2] = await both(cases[0][1], bearer(nobody), bearer(nobody));
  check(u1.status === 401 && same(u1, u2), '/rpc an unknown key_id: the same 401 JSON-RPC error', () => [u1.text, u2.text]);
  const [a1, a2] = await both(cases[0][1], {}, {});
  check(a1.status === 401 && same(a1, a2), '/rpc without Authorization: the same 401 JSON-RPC error', () => [a1.text, a2.text]);
  const rid = x => x.headers['x-request-id'];
  check(/^[0-9a-f]{16}$/.test(rid(a1) ?? ''), '/rpc answers carry X-Request-Id through the gateway');
}

// The gateway's pool probes idle enclaves with {"operation":"health"}: the
// enclave answers 200 itself (no plugin, no key) and logs nothing for it.
async function healthProbe() {
  const answer = await frameRoundTrip(env.ENCLAVE1, { id: 'probe-1', operation: 'health' });
  check(answer?.id === 'probe-1' && answer.enclave_status === 200 && answer.enclave_result?.status === 'ok'
    && typeof answer.enclave_result.attested === 'boolean' && answer.enclave_result.attestation === 'emulated',
  'health frame: the enclave answers 200 {status: ok, attestation, attested}', () => answer);
  // Idle for more than two probe intervals (health_ms = 2000 in topology.sh).
  await sleep(4500);
  const logs = ['enclave1', 'enclave2'].map((n) => fs.readFileSync(path.join(TOPO_DIR, `${n}.log`), 'utf8')).join('');
  const lines = logs.split('\n').filter((l) => /health|"level":"error"/.test(l));
  check(lines.length === 0, 'the enclave logs no line for the gateway\'s health probes (and no error)', () => lines.slice(0, 3));
}

// Wrong-secret bursts from client A (source 127.0.0.2) through the gateway
// lock A out in the enclaves; client B (127.0.0.3) with the right secret for
// the same key is still served, because the frame names the client.
async function clientLockout() {
  const A = '127.0.0.2', B = '127.0.0.3';
  const url = env.GATEWAY_HTTP_URL;
  const g = await request(url, { body: { operation: 'generate_key', payload: { secret: SECRET } }, localAddress: B });
  if (!check(g.status === 200, 'client B makes a key (over HTTP from 127.0.0.3)', () => g.text)) return;
  const keyId = g.result.key_id;
  const sign = (from, secret) => request(url, { body: { operation: 'sign_message',
    payload: { key_id: keyId, secret, message: 'lockout' } }, localAddress: from });
  const codes = [];
  for (let i = 0; i < 30; i++) {
    codes.push((await sign(A, 'wrong secret 0123456789xx')).status);
    if (codes.length >= 4 && codes.slice(-4).every((c) => c === 429)) break;
  }
  check(codes[0] === 403 && codes.slice(-4).every((c) => c === 429), `client A: wrong secrets answered 403, then 429 (${codes.join(',')})`);
  const b = [];
  for (let i = 0; i < 4; i++) b.push(await sign(B, SECRET));
  check(b.every((r) => r.status === 200), `client B with the right secret is served on every enclave meanwhile (${b.map((r) => r.status).join(',')})`,
    () => b.map((r) => r.text));
  const a = [];
  for (let i = 0; i < 2; i++) a.push(await sign(A, SECRET));
  check(a.every((r) => r.status === 429), `client A stays locked out even with the right secret (${a.map((r) => r.status).join(',')})`);
  const logs = ['enclave1', 'enclave2'].map((n) => fs.readFileSync(path.join(TOPO_DIR, `${n}.log`), 'utf8')).join('');
  check(!logs.includes(SECRET), 'the enclaves log no secret');
  // Only an enclave takes "client" from a frame: a standalone signer's
  // frames listener refuses it by name (nobody may pick their throttle).
  const f = await frameRoundTrip(standaloneFrames, { id: 1, operation: 'sign_message', client: B,
    payload: { key_id: keyId, secret: SECRET, message: 'x' } });
  check(f?.enclave_status === 400 && /^client: /.test(f.enclave_result?.error ?? ''),
    'a standalone signer refuses a frame\'s "client" (400 naming it)', () => f);
  const bad = await frameRoundTrip(env.ENCLAVE1, { id: 2, operation: 'sign_message', client: 'two words',
    payload: { key_id: keyId, secret: SECRET, message: 'x' } });
  check(bad?.enclave_status === 400 && /^client: must be/.test(bad.enclave_result?.error ?? ''),
    'an enclave refuses a malformed "client" (400 naming it)', () => bad);
}

async function seedFormats() {
  const SEED_SECRET = '5e618e009fe35ea092150ad1f2c24e3181b4cf6693dc7bbd9a09ea9c8144720d';
  const SEED_ETH_KEY = '6835311872e1c63b50a8edd16605e2253c2a9c58ef9bf41f1d1c0c724981931a';
  const SEED_TX = { value: 0.01, to: '0xa5D3241A1591061F2a4bB69CA0215F66520E67cf', nonce: 0, type: 2, chainId: 4,
    gas: 100000, maxFeePerGas: 100000000000, maxPriorityFeePerGas: 3000000000 };
  const SEED_SIGNED = '0x02f873048084b2d05e0085174876e800830186a094a5d3241a1591061f2a4bb69ca0215f66520e67cf872386f26fc1000080c001a0532545d1f03732f14e079ffa654af836a9cf1c119091f7c9bc3fd15874c5e05da01b40f921e10add034cec47e60c687c212de18fecd581288048ce173124960ab1';
  const g = await gw('ethereum-key-generator_generate_key', { secret: SEED_SECRET });
  check(g.status === 200 && /^[0-9a-f-]{36}$/.test(g.result?.key_id ?? '') && g.result.sealed_key === undefined,
    'seed: ethereum-key-generator_generate_key through the gateway', () => g.text);
  const s = await gw('ethereum-signer_set_key', { eth_key: SEED_ETH_KEY, secret: SEED_SECRET });
  check(s.status === 200, 'seed: ethereum-signer_set_key through the gateway', () => s.text);
  const t = await gw('ethereum-signer_sign_transaction', { transaction_payload: SEED_TX, key_id: s.result?.key_id, secret: SEED_SECRET });
  check(t.result?.transaction_signed === SEED_SIGNED, 'seed: ethereum-signer_sign_transaction reproduces the README answer', () => t.text);
  const r1 = await request(env.GATEWAY_URL + 'key', { body: { secret: SEED_SECRET } });
  check(r1.status === 200 && r1.result?.key_id && r1.headers['x-request-id']?.length === 16,
    'route POST /key generates (with X-Request-Id)', () => r1.text);
  const r2 = await request(env.GATEWAY_URL + 'key/import', { body: { eth_key: SEED_ETH_KEY, secret: SEED_SECRET } });
  check(r2.status === 200 && r2.result?.address === s.result?.address, 'route POST /key/import', () => r2.text);
  const r3 = await request(`${env.GATEWAY_URL}/key/${s.result?.key_id}/tx_signature`, { body: { transaction_payload: SEED_TX, secret: SEED_SECRET } });
  check(r3.result?.transaction_signed === SEED_SIGNED, 'route //key/{key_id}/tx_signature (double slash)', () => r3.text);
  const r4 = await request(env.GATEWAY_URL + 'nope', { body: {} });
  check(r4.status === 404, 'an unknown route: 404');
  // The enclave's log line carries the gateway's request id.
  await sleep(200);
  const rid = r3.headers['x-request-id'];
  const logs = ['enclave1', 'enclave2'].map((n) => fs.readFileSync(path.join(TOPO_DIR, `${n}.log`), 'utf8')).join('');
  check(rid && logs.includes(`"request_id":"${rid}"`), 'the enclave logs the request under the gateway\'s X-Request-Id');
  return { seedSecret: SEED_SECRET, seedKey: SEED_ETH_KEY };
}

async function mtls() {
  const ca = fs.readFileSync(env.CA_FILE);
  const dir = path.dirname(env.CA_FILE);
  const tryWith = (name) => request(env.GATEWAY_URL + 'readyz', {
    method: 'GET',
    tls: name ? { ca, cert: fs.readFileSync(path.join(dir, `${name}.pem`)), key: fs.readFileSync(path.join(dir, `${name}.key`)), agent: false } : { ca, agent: false },
  });
  const ok = await tryWith('client');
  check(ok.status === 200, 'mTLS: the allowed client certificate is served', () => ok);
  for (const [name, what] of [[null, 'no certificate'], ['other', 'a certificate of the CA not on the allowlist'], ['rogue', 'a certificate from another CA with the allowed subject']]) {
    const r = await tryWith(name);
    check(r.status === 0, `mTLS: ${what} is refused`, () => r);
  }
}

async function scanTable(secrets) {
  const ddb = new DynamoDBClient({ region: env.AWS_REGION, endpoint: env.DYNAMODB_URL,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } });
  const items = [];
  let start;
  do {
    const out = await ddb.send(new ScanCommand({ TableName: env.DYNAMODB_TABLE, ExclusiveStartKey: start }));
    items.push(...out.Items);
    start = out.LastEvaluatedKey;
  } while (start);
  ddb.destroy();
  const text = JSON.stringify(items).toLowerCase();
  const found = secrets.filter((s) => text.includes(s.toLowerCase()));
  check(items.length > 5 && found.length === 0, `DynamoDB: ${items.length} items hold none of ${secrets.length} keys, secrets and credentials`, () => found);
  const keys = items.filter((i) => !i.key_id.S.startsWith('__'));
  const fields = new Set(keys.flatMap((i) => Object.keys(i)));
  check([...fields].every((f) => ['key_id', 'ciphertext', 'address', 'chain', 'format', 'created_at'].includes(f)),
    'DynamoDB items have the documented schema only', () => [...fields]);
  return keys.map((i) => i.key_id.S);
}

async function metric(name) {
  const r = await request(env.GATEWAY_HTTP_URL + 'metrics', { method: 'GET' });
  const out = {};
  for (const l of (r.text || '').split('\n')) if (l.startsWith(name)) out[l.split(' ')[0]] = Number(l.split(' ')[1]);
  return out;
}

async function burst(n, conc, fn) {
  const results = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < n) { const i = next++; results[i] = await fn(i); }
  }));
  return results;
}

async function enclaveFailover(keyId) {
  const pids = pidsOf();
  const payload = { key_id: keyId, secret: SECRET, message: 'failover' };
  let killed = false;
  const res = await burst(300, 8, async (i) => {
    if (i === 60 && !killed) { killed = true; process.kill(pids.enclave1, 'SIGKILL'); }
    return gw('sign_message', payload);
  });
  const bad = res.filter((r) => r.status !== 200);
  check(bad.length === 0, `kill -9 of one enclave during 300 signatures: all answered 200 (${bad.length} failed)`,
    () => bad.slice(0, 3).map((r) => r.text || r.error));
  const lost = await metric('signer_gateway_failovers_total');
  console.log(`     failovers counted: ${JSON.stringify(lost)}`);
  restart('enclave1');
  let up = false;
  const e1 = `signer_gateway_enclave_up{enclave="${env.ENCLAVE1}"}`;
  for (let i = 0; i < 60 && !up; i++) { await sleep(100); up = (await metric('signer_gateway_enclave_up'))[e1] === 1; }
  check(up, 'the restarted enclave rejoins (enclave_up = 1)');
  // enclave_up counts any of the gateway's connections to it; each event
  // loop of the gateway reconnects its own on its own timer, so the
  // enclave's share of the traffic comes back within a few reconnect
  // periods, not at the first request
  const answered = async () => (await metric('signer_gateway_enclave_answers_total'))[`signer_gateway_enclave_answers_total{enclave="${env.ENCLAVE1}"}`] ?? 0;
  const before = await answered();
  let after = before;
  for (let i = 0; i < 15 && after <= before; i++) {
    await burst(20, 4, () => gw('sign_message', payload));
    after = await answered();
    if (after <= before) await sleep(200);
  }
  check(after > before, 'the rejoined enclave answers requests again (within 15 bursts of 20)', () => [before, after]);
}

async function gatewayCrash() {
  const pids = pidsOf();
  const acked = [];
  let killed = false;
  await burst(120, 6, async (i) => {
    if (i === 50 && !killed) { killed = true; process.kill(pids.gateway, 'SIGKILL'); }
    const r = await gw('generate_key', { secret: SECRET });
    if (r.status === 200 && r.result?.key_id) acked.push(r.result);
    return r;
  });
  check(killed && acked.length >= 40, `kill -9 of the gateway during generate_key: ${acked.length} keys acknowledged before it died`);
  const gpid = restart('gateway');
  let ready = false;
  agent = new https.Agent({ keepAlive: true, maxSockets: 16, ...tlsFiles() });
  for (let i = 0; i < 100 && !ready; i++) { await sleep(100); ready = (await request(env.GATEWAY_URL + 'readyz', { method: 'GET' })).status === 200; }
  check(ready && gpid > 0, 'the gateway restarts and is ready');
  const res = await burst(acked.length, 6, (i) => gw('sign_message', { key_id: acked[i].key_id, secret: SECRET, message: 'after' }));
  const ok = res.filter((r, i) => r.status === 200 && (() => {
    try { return Signature.from(r.result.signature) && Wallet.prototype && true; } catch { return false; }
  })());
  let recovered = 0;
  const { verifyMessage } = await import('ethers');
  res.forEach((r, i) => { if (r.status === 200 && verifyMessage('after', r.result.signature) === acked[i].address) recovered++; });
  check(ok.length === acked.length && recovered === acked.length,
    `every acknowledged key_id (${acked.length}) is stored and signs after the restart (${recovered} verified by ethers)`);
  return acked;
}

async function keystoreDown(keyId) {
  const pid = pidsOf().dynalite;
  process.kill(pid, 'SIGSTOP');
  try {
    const t0 = Date.now();
    const r = await gw('sign_message', { key_id: keyId, secret: SECRET, message: 'x' });
    const dt = Date.now() - t0;
    check(r.status === 503 && /keystore/.test(r.result?.error ?? '') && r.headers['retry-after'] !== undefined && dt < 6000,
      `dynalite unreachable: 503 naming the keystore with Retry-After, in ${dt} ms`, () => r.text);
    const g = await gw('generate_key', { secret: SECRET });
    check(g.status === 503 && /keystore/.test(g.result?.error ?? ''), 'dynalite unreachable: a new key is not acknowledged (503, keystore)', () => g.text);
    let notReady = false;
    for (let i = 0; i < 40 && !notReady; i++) {
      notReady = (await request(env.GATEWAY_URL + 'readyz', { method: 'GET', timeout: 5000 })).status === 503;
      if (!notReady) await sleep(250);
    }
    check(notReady, '/readyz is 503 while the keystore is unreachable');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  let ok = false;
  for (let i = 0; i < 50 && !ok; i++) {
    ok = (await gw('sign_message', { key_id: keyId, secret: SECRET, message: 'x' })).status === 200;
    if (!ok) await sleep(200);
  }
  check(ok, 'the keystore back: signatures succeed again');
}

// A second gateway on the same enclaves with a small per-client bucket:
// the client over its budget gets 429 with Retry-After; /readyz is never
// throttled.
async function throttling() {
  const dir = path.join(TOPO_DIR, 'throttled');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'gw.conf'), `role = "gateway";
data_dir = "${dir}/data";
listen = ( { address = "127.0.0.1:0"; protocol = "http"; } );
sealer = { type = "none"; };
plugins = ( { name = "eth"; path = "eth.so"; } );
gateway = { enclaves = [ "${env.ENCLAVE1}", "${env.ENCLAVE2}" ]; client_rate = 1; client_burst = 3;
            forward_credentials = ${env.ENCLAVE_SEALER === 'aws-kms'}; };
`);
  const log = fs.openSync(path.join(dir, 'log'), 'a');
  // With aws-kms the enclaves need the stand-in's credentials from this
  // gateway too (the environment source, with an expiration).
  const expiration = new Date(Date.now() + 3600e3).toISOString().replace(/\.\d+Z$/, 'Z');
  const aws = { AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY,
    AWS_REGION: env.AWS_REGION, AWS_CREDENTIAL_EXPIRATION: expiration, AWS_EC2_METADATA_DISABLED: 'true' };
  const child = spawn(path.join(BUILD, 'signerd'), ['-c', path.join(dir, 'gw.conf'), '--io-loops', '1'],
    { stdio: ['ignore', log, log], env: { ...process.env, ...aws } });
  children.push(child);
  const bound = await boundAddrs(path.join(dir, 'log'), child, ['http']);
  const url = `http://${bound?.http ?? '127.0.0.1:1'}/`;
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) { ready = (await request(url + 'readyz', { method: 'GET' })).status === 200; if (!ready) await sleep(100); }
  check(ready, 'a second gateway (SQLite keystore, client_rate = 1, client_burst = 3) is ready');
  const res = [];
  for (let i = 0; i < 6; i++) res.push(await request(url, { body: { operation: 'generate_key', payload: { secret: SECRET } } }));
  const codes = res.map((r) => r.status);
  const t = res.find((r) => r.status === 429);
  check(codes.slice(0, 3).every((c) => c === 200) && t && Number(t.headers['retry-after']) >= 1 && /throttled/.test(t.result?.error ?? ''),
    `per-client token bucket: 3 answered, then 429 with Retry-After (${codes.join(',')})`, () => t?.text);
  await sleep(1100);
  const again = await request(url, { body: { operation: 'generate_key', payload: { secret: SECRET } } });
  check(again.status === 200, 'the bucket refills: served again after a second', () => again.text);
}

// A gateway with forward_credentials = true in front of a fake enclave that
// records the frames: what the gateway adds (credentials from the AWS
// chain, the sealed record, the request id), what it strips, and that
// neither the client's secret nor the credentials reach its log.
async function framesSeen() {
  const net = await import('node:net');
  const frames = [];
  const SEALED = Buffer.from('sealed blob for the test').toString('base64');
  const ADDR = '0x' + '11'.repeat(20);
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const f = JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString());
        buf = buf.subarray(4 + buf.readUInt32BE(0));
        if (f.operation === 'health') continue;
        frames.push(f);
        const result = f.operation === 'generate_key'
          ? { key_id: '0f8fad5b-d9cb-469f-a165-70867728950e', address: ADDR, sealed_key: SEALED, key_chain: 'eth' }
          : { signature: '0x00' };
        const out = Buffer.from(JSON.stringify({ id: f.id, enclave_status: 200, enclave_result: result }));
        const hdr = Buffer.alloc(4); hdr.writeUInt32BE(out.length);
        sock.write(Buffer.concat([hdr, out]));
      }
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const dir = path.join(TOPO_DIR, 'fwd');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'gw.conf'), `role = "gateway";
data_dir = "${dir}/data";
listen = ( { address = "127.0.0.1:0"; protocol = "http"; } );
sealer = { type = "none"; };
plugins = ( { name = "eth"; path = "eth.so"; } );
gateway = { enclaves = [ "127.0.0.1:${server.address().port}" ]; forward_credentials = true; };
`);
  const logFile = path.join(dir, 'log');
  const log = fs.openSync(logFile, 'a');
  const creds = { AWS_ACCESS_KEY_ID: 'AKIDFORWARDTEST', AWS_SECRET_ACCESS_KEY: 'forward/secret+key', AWS_SESSION_TOKEN: 'forward-session-token' };
  const child = spawn(path.join(BUILD, 'signerd'), ['-c', path.join(dir, 'gw.conf'), '--io-loops', '1'],
    { stdio: ['ignore', log, log], env: { ...process.env, ...creds, AWS_EC2_METADATA_DISABLED: 'true' } });
  children.push(child);
  const bound = await boundAddrs(logFile, child, ['http']);
  const url = `http://${bound?.http ?? '127.0.0.1:1'}/`;
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) { ready = (await request(url + 'readyz', { method: 'GET' })).status === 200; if (!ready) await sleep(100); }
  const g = await request(url, { body: { operation: 'generate_key', payload: { secret: SECRET } } });
  const m = await request(url, { body: { operation: 'sign_message', payload: { key_id: g.result?.key_id, secret: SECRET, message: 'hi' } } });
  const [f1, f2] = frames;
  check(ready && g.status === 200 && g.result.sealed_key === undefined && g.result.key_chain === undefined && g.result.address === ADDR,
    'fake enclave: the created key is answered without sealed_key/key_chain', () => g.text);
  const c = f1?.payload?.credentials;
  check(c && c.access_key_id === creds.AWS_ACCESS_KEY_ID && c.secret_access_key === creds.AWS_SECRET_ACCESS_KEY
    && c.session_token === creds.AWS_SESSION_TOKEN && 'expiration' in c,
  'forward_credentials: the frame carries credentials {access_key_id, secret_access_key, session_token, expiration}', () => f1);
  check(f1?.request_id === g.headers['x-request-id'] && f1?.payload?.secret === SECRET && f1?.payload?.sealed_key === undefined,
    'the frame carries the X-Request-Id and the client\'s secret, and no sealed_key for a new key', () => f1);
  check(f1?.client === '127.0.0.1' && f2?.client === '127.0.0.1',
    'the frame names the client (its source address without the port) for the enclave\'s auth throttle', () => [f1?.client, f2?.client]);
  check(m.status === 200 && f2?.payload?.sealed_key === SEALED && f2.payload.key_chain === 'eth' && f2.payload.key_address === ADDR,
    'a key-using frame carries the stored sealed_key, key_chain and key_address', () => f2);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  server.close();
  const text = fs.readFileSync(logFile, 'utf8');
  check(!text.includes(SECRET) && !text.includes(creds.AWS_SECRET_ACCESS_KEY) && !text.includes(creds.AWS_SESSION_TOKEN) && !text.includes(SEALED),
    'the gateway log holds no secret, credential or sealed key');
}

async function bench(keyId) {
  const tool = path.join(BUILD, 'signer-bench');
  try { execFileSync('make', ['-C', BUILD, 'signer-bench'], { stdio: 'ignore' }); } catch { /* checked below */ }
  if (!fs.existsSync(tool)) { check(false, 'signer-bench built'); return; }
  const r = await execFileP(tool, ['--url', env.GATEWAY_URL, '--cacert', env.CA_FILE, '--cert', env.CLIENT_CERT,
    '--key', env.CLIENT_KEY, '-c', '8', '-d', '3', '--key-id', keyId, '--secret', SECRET, '--json'],
    { timeout: 30000 }).then((o) => ({ code: 0, out: o.stdout, err: o.stderr }), (e) => ({ code: e.code, out: e.stdout, err: e.stderr }));
  let j = null;
  try { j = JSON.parse(r.out); } catch { /* below */ }
  check(r.code === 0 && j && j.errors === 0 && j.requests > 0, `signer-bench through the gateway over HTTPS (mTLS, keep-alive) for 3 s: zero errors (${j ? JSON.stringify(j).slice(0, 200) : r.err})`);
}

// ---- aws-kms (ENCLAVE_SEALER=aws-kms: the stand-in behind the proxy) -------

// generate_key and sign through the gateway, then the KMS stand-in stopped:
// keys the enclaves have cached still sign, a new key gets 503 naming KMS
// within the deadline, and everything works again once it is back.
async function kmsDown() {
  const { verifyMessage } = await import('ethers');
  const g = await gw('generate_key', { secret: SECRET });
  if (!check(g.status === 200 && /^[0-9a-f-]{36}$/.test(g.result?.key_id ?? '') && g.result.sealed_key === undefined,
    'aws-kms: generate_key through the gateway (sealed by KMS Encrypt)', () => g.text)) return;
  const { key_id: keyId, address } = g.result;
  const signs = async (msg) => (await burst(16, 4, () => gw('sign_message', { key_id: keyId, secret: SECRET, message: msg })))
    .filter((r) => r.status === 200 && verifyMessage(msg, r.result.signature) === address).length;
  const pre = await signs('kms up');
  check(pre === 16, `aws-kms: 16 signatures through the gateway (KMS Decrypt with attestation), ethers recovers the address: ${pre}`);
  const pid = pidsOf().kms;
  process.kill(pid, 'SIGTERM');
  let gone = false;
  for (let i = 0; i < 50 && !gone; i++) { try { process.kill(pid, 0); await sleep(100); } catch { gone = true; } }
  check(gone, 'the KMS stand-in is stopped');
  try {
    const cached = await signs('kms down');
    check(cached === 16, `KMS stand-in down: a cached key still signs (${cached}/16, verified by ethers)`);
    const t0 = Date.now();
    const n = await gw('generate_key', { secret: SECRET });
    const dt = Date.now() - t0;
    check(n.status === 503 && /KMS/.test(n.result?.error ?? '') && dt < 5000,
      `KMS stand-in down: generate_key gets 503 naming KMS, in ${dt} ms`, () => n.text);
  } finally {
    restart('kms');
  }
  let back = null;
  for (let i = 0; i < 50 && back?.status !== 200; i++) {
    back = await gw('generate_key', { secret: SECRET });
    if (back.status !== 200) await sleep(200);
  }
  const s = back?.status === 200
    ? await gw('sign_message', { key_id: back.result.key_id, secret: SECRET, message: 'kms back' }) : null;
  check(s?.status === 200 && verifyMessage('kms back', s.result.signature) === back.result.address,
    'the KMS stand-in back: a new key is made and signs', () => [back?.text, s?.text]);
}

// An item of the reference wallet's table (key_id, ciphertext, address only;
// the ciphertext a KMS blob of {"secret","eth_key"} without encryption
// context, eth_key unpadded as the reference kept it) written with the AWS
// SDK signs through the gateway, byte for byte what ethers signs.
async function referenceItem() {
  const crypto = await import('node:crypto');
  const { PutItemCommand } = await import('@aws-sdk/client-dynamodb');
  let w;
  do { w = Wallet.createRandom(); } while (!w.privateKey.startsWith('0x0'));
  const ethKey = w.privateKey.slice(2).replace(/^0+/, '');
  const secret = 'reference secret ' + crypto.randomBytes(8).toString('hex');
  let blob = '';
  try {
    blob = execFileSync('/usr/bin/python3', [path.join(SRC, 'tests', 'kms', 'make_reference_blob.py'), '--config', env.KMS_CONFIG,
      '--key-id', env.KMS_KEY_ID, '--secret', secret, '--eth-key', ethKey], { encoding: 'utf8' }).trim();
  } catch (e) { /* checked below */ }
  if (!check(/^[A-Za-z0-9+/]+=*$/.test(blob), 'tests/kms/make_reference_blob.py makes a KMS ciphertext')) return;
  const keyId = crypto.randomUUID();
  const ddb = new DynamoDBClient({ region: env.AWS_REGION, endpoint: env.DYNAMODB_URL,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } });
  await ddb.send(new PutItemCommand({ TableName: env.DYNAMODB_TABLE,
    Item: { key_id: { S: keyId }, ciphertext: { S: blob }, address: { S: w.address } } }));
  ddb.destroy();
  const t = await gw('sign_transaction', { key_id: keyId, secret, transaction_payload: TX });
  const expected = await w.signTransaction({ ...TX, gasLimit: 21000n, value: BigInt(TX.value), data: '0x' });
  check(t.status === 200 && t.result?.transaction_signed === expected,
    `a reference-wallet item (eth_key of ${ethKey.length} hex digits) signs through the gateway, equal to ethers`, () => t.text);
  const bad = await gw('sign_transaction', { key_id: keyId, secret: secret + 'x', transaction_payload: TX });
  check(bad.status === 403, 'a reference-wallet item with a wrong secret: 403', () => bad.text);
}

async function main() {
  const up = await execFileP(TOPO, ['up'], { env: topoEnv, timeout: 180000 }).catch((e) => e);
  for (const l of (up.stdout || '').split('\n')) { const m = /^([A-Z0-9_]+)=(.*)$/.exec(l); if (m) env[m[1]] = m[2]; }
  if (!check(env.GATEWAY_URL && env.PIDS_FILE, 'topology.sh up prints the NAME=value lines', () => up.stderr)) return;
  for (const k of ['GATEWAY_URL', 'CA_FILE', 'KMS_URL', 'KMS_KEY_ID', 'DYNAMODB_URL', 'DYNAMODB_TABLE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'PIDS_FILE'])
    check(env[k] !== undefined, `topology.sh prints ${k}`);
  agent = new https.Agent({ keepAlive: true, maxSockets: 16, ...tlsFiles() });
  check(await startStandalone(), 'a standalone signer for the differential');
  const wallet = Wallet.createRandom();
  const { keyId, ethKey, saKeyId } = await differential(wallet);
  await rpcDifferential(wallet, keyId, saKeyId);
  await healthProbe();
  await clientLockout();
  const kms = env.ENCLAVE_SEALER === 'aws-kms';
  check(kms || process.env.ENCLAVE_SEALER === 'local', `the enclaves seal with ${env.ENCLAVE_SEALER} (aws-kms unless ENCLAVE_SEALER=local)`);
  if (kms) await referenceItem();
  const seed = await seedFormats();
  await mtls();
  await enclaveFailover(keyId);
  const acked = await gatewayCrash();
  const ids = await scanTable([ethKey, SECRET, seed.seedSecret, seed.seedKey, env.AWS_SECRET_ACCESS_KEY]);
  check(acked.every((a) => ids.includes(a.key_id)), 'every acknowledged key_id is an item in DynamoDB');
  await keystoreDown(keyId);
  if (kms) await kmsDown();
  await throttling();
  await framesSeen();
  await bench(keyId);
}

main().catch((e) => { check(false, `uncaught: ${e.stack}`); }).finally(() => {
  console.log(`${NAME}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
});
