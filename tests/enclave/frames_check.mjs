// Talks frames (4-byte big-endian length + JSON) to the signerd inside the
// booted enclave image (enclave role, emulated NSM, KMS stand-in) and
// checks its answers with ethers v6 and third-party attestation code.
//
//   node tests/enclave/frames_check.mjs PORT DEADLINE_SECONDS
//
// Environment (set by tests/enclave/boot.sh): BOOT_PCR0 (the emulated PCR0),
// BOOT_PKI_ROOT (the test root, DER), BOOT_WORK (a scratch directory),
// BOOT_AKID, BOOT_AWS_SECRET, BOOT_TOKEN (the stand-in's test credentials).
//
// 1. Waits for a real answer: qemu's user networking accepts a connection
//    before the guest listens and then closes it, so a connect() proves
//    nothing; we retry an attestation frame until one comes back or the
//    deadline passes.
// 2. attestation with a base64 nonce: the document verifies (COSE ES384,
//    chain to the test root, PCR0) and carries the nonce.
// 3. generate_key (credentials in the payload) -> sealed_key (KMS Encrypt);
//    sign_transaction with it (KMS Decrypt, PCR0 policy); ethers recovers
//    the generated address.
// 4. set_key with a known key; sign_transaction; the bytes must equal
//    ethers' Wallet.signTransaction (RFC 6979, so deterministic).
// 5. sign_userop; ethers' SigningKey must produce the same signature.
// 6. a wrong secret is refused.
// Prints "enclave-boot: N passed, M failed" and exits non-zero on failure.
import net from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Wallet, Transaction, SigningKey, getBytes } = require('ethers');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PY = process.env.KMS_PYTHON || '/usr/bin/python3';
const env = (n) => { if (!process.env[n]) throw new Error(`${n} not set (run tests/enclave/boot.sh)`); return process.env[n]; };
const port = Number(process.argv[2]);
const deadline = Date.now() + 1000 * Number(process.argv[3] || 120);
let passed = 0, failed = 0;
const check = (ok, what, detail) => {
  if (ok) { passed++; console.log(`ok   ${what}`); } else { failed++; console.log(`FAIL ${what}${detail ? `: ${detail}` : ''}`); }
};

/** Sends one frame on a new connection; resolves to the parsed answer or null. */
function exchange(obj, timeoutMs) {
  return new Promise((resolve) => {
    const body = Buffer.from(JSON.stringify(obj));
    const head = Buffer.alloc(4); head.writeUInt32BE(body.length);
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0), done = false;
    const finish = (v) => { if (!done) { done = true; sock.destroy(); resolve(v); } };
    sock.setTimeout(timeoutMs, () => finish(null));
    sock.on('connect', () => sock.write(Buffer.concat([head, body])));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        try { finish(JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString('utf8'))); } catch { finish(null); }
      }
    });
    sock.on('error', () => finish(null));
    sock.on('close', () => finish(null));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let nextId = 1;
async function call(operation, payload) {
  const id = nextId++;
  const r = await exchange({ id, operation, payload }, 30000);
  if (r && r.id !== id) throw new Error(`answer for id ${r.id}, expected ${id}`);
  return r;
}

const secret = crypto.randomBytes(32).toString('hex');
const tx = { value: 0.01, to: '0xa5D3241A1591061F2a4bB69CA0215F66520E67cf', nonce: 7, type: 2, chainId: 31337,
  gas: 21000, maxFeePerGas: 100000000000, maxPriorityFeePerGas: 3000000000 };
const ethersTx = { to: tx.to, value: 10000000000000000n, nonce: tx.nonce, type: 2, chainId: tx.chainId,
  gasLimit: tx.gas, maxFeePerGas: tx.maxFeePerGas, maxPriorityFeePerGas: tx.maxPriorityFeePerGas };

/** Fresh test credentials, as the gateway would pass them. */
function credentials() {
  return { access_key_id: env('BOOT_AKID'), secret_access_key: env('BOOT_AWS_SECRET'), session_token: env('BOOT_TOKEN'),
    expiration: new Date(Date.now() + 3600 * 1000).toISOString().replace(/\.\d+Z$/, 'Z') };
}

/** The payload of a key-using request in the enclave role. */
const withKey = (k, extra) => ({ key_id: k.key_id, secret, sealed_key: k.sealed_key, key_chain: k.key_chain,
  key_address: k.address, credentials: credentials(), ...extra });

/** Verifies an attestation document with cbor2 + cryptography; true when good. */
function verifyDocument(b64, nonce) {
  const file = path.join(env('BOOT_WORK'), 'doc.cbor');
  fs.writeFileSync(file, Buffer.from(b64, 'base64'));
  const v = spawnSync(PY, [path.join(HERE, '..', 'integration', 'enclave', 'verify_attestation.py'), '--doc', file,
    '--root', env('BOOT_PKI_ROOT'), '--pcr0', env('BOOT_PCR0'), '--nonce-hex', nonce.toString('hex')], { encoding: 'utf8' });
  if (v.status !== 0) console.log(v.stdout + v.stderr);
  return v.status === 0;
}

async function main() {
  // 1. A real answer; 2. it is an attestation document bound to our nonce.
  let at = null, tries = 0, nonce = null;
  const t0 = Date.now();
  while (Date.now() < deadline) {
    tries++;
    nonce = crypto.randomBytes(32);
    at = await exchange({ id: 0, operation: 'attestation', payload: { nonce: nonce.toString('base64') } }, 10000);
    if (at) break;
    await sleep(500);
  }
  check(at !== null, `signerd in the guest answered a frame (${tries} tries, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (!at) return;
  check(at.id === 0 && at.enclave_status === 200 && typeof at.enclave_result?.document === 'string' &&
    verifyDocument(at.enclave_result.document, nonce),
    'attestation (base64 nonce): a document that verifies (chain, ES384, PCR0) carrying our nonce', JSON.stringify(at).slice(0, 300));
  const hexNonce = await call('attestation', { nonce: 'zz' + crypto.randomBytes(8).toString('hex') + '!' });
  check(hexNonce?.enclave_status === 400 && /nonce/.test(hexNonce.enclave_result?.error || ''),
    'attestation: a nonce that is not base64 is refused naming nonce', JSON.stringify(hexNonce));

  // 3. generate_key seals with KMS Encrypt; signing unseals with KMS Decrypt.
  const gen = await call('generate_key', { secret, credentials: credentials() });
  const g = gen?.enclave_result || {};
  check(gen?.enclave_status === 200 && /^0x[0-9a-fA-F]{40}$/.test(g.address || '') && typeof g.sealed_key === 'string' && g.key_chain,
    'generate_key: {key_id, address, sealed_key, key_chain}', JSON.stringify(gen));
  const s1 = await call('sign_transaction', withKey(g, { transaction_payload: tx }));
  let from = null;
  try { from = Transaction.from(s1.enclave_result.transaction_signed).from; } catch (e) { from = String(e); }
  check(s1?.enclave_status === 200 && from?.toLowerCase() === (g.address || '').toLowerCase(),
    'sign_transaction (generated, sealed key): ethers recovers the generated address', JSON.stringify({ s1, from }));
  if (s1?.enclave_status === 200) {
    const t = Transaction.from(s1.enclave_result.transaction_signed);
    check(t.hash === s1.enclave_result.transaction_hash && t.to === tx.to && t.nonce === tx.nonce &&
      t.value === ethersTx.value && t.chainId === BigInt(tx.chainId), 'signed transaction: fields and hash as requested');
  }

  // 4. A known key: byte-identical to ethers.
  const wallet = Wallet.createRandom();
  const imp = await call('set_key', { eth_key: wallet.privateKey.slice(2), secret, credentials: credentials() });
  const k2 = imp?.enclave_result || {};
  check(imp?.enclave_status === 200 && k2.address?.toLowerCase() === wallet.address.toLowerCase() && typeof k2.sealed_key === 'string',
    'set_key: the address ethers derives, a sealed_key', JSON.stringify(imp));
  const s2 = await call('sign_transaction', withKey(k2, { transaction_payload: tx }));
  const want = await wallet.signTransaction(ethersTx);
  check(s2?.enclave_status === 200 && s2.enclave_result.transaction_signed === want,
    'sign_transaction (imported key): byte-identical to ethers', JSON.stringify({ got: s2?.enclave_result, want }));

  // 5. userOp hash.
  const hash = '0x' + crypto.randomBytes(32).toString('hex');
  const u = await call('sign_userop', withKey(k2, { transaction_payload: { userOpHash: hash } }));
  const sig = new SigningKey(wallet.privateKey).sign(getBytes(hash)).serialized;
  check(u?.enclave_status === 200 && JSON.stringify(u.enclave_result).toLowerCase().includes(sig.slice(2).toLowerCase()),
    'sign_userop: the signature ethers makes', JSON.stringify({ got: u?.enclave_result, want: sig }));

  // 6. A wrong secret is refused inside the image too.
  const bad = await call('sign_transaction', { ...withKey(g, { transaction_payload: tx }), secret: secret + 'x' });
  check(bad && bad.enclave_status >= 400 && bad.enclave_status < 500, 'wrong secret: a 4xx answer', JSON.stringify(bad));
}

const watchdog = setTimeout(() => { console.log('FAIL watchdog: deadline passed'); failed++; done(); }, deadline - Date.now() + 60000);
function done() {
  clearTimeout(watchdog);
  console.log(`enclave-boot: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}
main().catch((e) => { failed++; console.log(`FAIL ${e.stack || e}`); }).finally(done);
