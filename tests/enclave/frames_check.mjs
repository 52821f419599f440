// Talks frames (4-byte big-endian length + JSON) to the signerd inside the
// booted enclave image and checks its answers with ethers v6.
//
//   node tests/enclave/frames_check.mjs PORT DEADLINE_SECONDS
//
// 1. Waits for a real answer: qemu's user networking accepts a connection
//    before the guest listens and then closes it, so a connect() proves
//    nothing; we retry until a frame comes back or the deadline passes.
// 2. generate_key; sign_transaction with it; ethers recovers the signer and
//    it must be the generated address.
// 3. set_key with a known key; sign_transaction; the bytes must equal
//    ethers' Wallet.signTransaction (RFC 6979, so deterministic).
// 4. sign_userop; ethers' SigningKey must produce the same signature.
// 5. a wrong secret is refused.
// 6. BOOT_ATTESTATION=1: an attestation frame (see below).
// Prints "enclave-boot: N passed, M failed" and exits non-zero on failure.
import net from 'node:net';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Wallet, Transaction, SigningKey, getBytes } = require('ethers');

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

async function main() {
  // 1. A real answer.
  let gen = null, tries = 0;
  const t0 = Date.now();
  while (Date.now() < deadline) {
    tries++;
    gen = await exchange({ id: 0, operation: 'generate_key', payload: { secret } }, 5000);
    if (gen) break;
    await sleep(500);
  }
  check(gen !== null, `signerd in the guest answered a frame (${tries} tries, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (!gen) return;
  check(gen.id === 0 && gen.enclave_status === 200 && /^0x[0-9a-fA-F]{40}$/.test(gen.enclave_result?.address || ''),
    'generate_key: status 200, an address', JSON.stringify(gen));
  const keyId = gen.enclave_result?.key_id;

  // 2. Sign with the generated key; ethers recovers the signer.
  const s1 = await call('sign_transaction', { key_id: keyId, secret, transaction_payload: tx });
  let from = null;
  try { from = Transaction.from(s1.enclave_result.transaction_signed).from; } catch (e) { from = String(e); }
  check(s1?.enclave_status === 200 && from?.toLowerCase() === gen.enclave_result.address.toLowerCase(),
    'sign_transaction (generated key): ethers recovers the generated address', JSON.stringify({ s1, from }));
  if (s1?.enclave_status === 200) {
    const t = Transaction.from(s1.enclave_result.transaction_signed);
    check(t.hash === s1.enclave_result.transaction_hash && t.to === tx.to && t.nonce === tx.nonce &&
      t.value === ethersTx.value && t.chainId === BigInt(tx.chainId), 'signed transaction: fields and hash as requested');
  }

  // 3. A known key: byte-identical to ethers.
  const wallet = Wallet.createRandom();
  const imp = await call('set_key', { eth_key: wallet.privateKey.slice(2), secret });
  check(imp?.enclave_status === 200 && imp.enclave_result.address?.toLowerCase() === wallet.address.toLowerCase(),
    'set_key: the address ethers derives', JSON.stringify(imp?.enclave_result?.address));
  const s2 = await call('sign_transaction', { key_id: imp?.enclave_result?.key_id, secret, transaction_payload: tx });
  const want = await wallet.signTransaction(ethersTx);
  check(s2?.enclave_status === 200 && s2.enclave_result.transaction_signed === want,
    'sign_transaction (imported key): byte-identical to ethers', JSON.stringify({ got: s2?.enclave_result, want }));

  // 4. userOp hash.
  const hash = '0x' + crypto.randomBytes(32).toString('hex');
  const u = await call('sign_userop', { key_id: imp?.enclave_result?.key_id, secret, transaction_payload: { userOpHash: hash } });
  const sig = new SigningKey(wallet.privateKey).sign(getBytes(hash)).serialized;
  check(u?.enclave_status === 200 && JSON.stringify(u.enclave_result).toLowerCase().includes(sig.slice(2).toLowerCase()),
    'sign_userop: the signature ethers makes', JSON.stringify({ got: u?.enclave_result, want: sig }));

  // 6. (BOOT_ATTESTATION=1, once the image runs the enclave role with the
//    emulated NSM) an `attestation` frame with a fresh nonce answers a
//    COSE_Sign1 document (CBOR tag 18 or a 4-element array) carrying it.
async function attestation() {
  const nonce = crypto.randomBytes(32);
  const a = await call('attestation', { nonce: nonce.toString('hex') });
  const docs = Object.values(a?.enclave_result || {}).filter((v) => typeof v === 'string')
    .map((v) => Buffer.from(v, 'base64')).filter((b) => b.length > 100);
  check(a?.enclave_status === 200 && docs.some((d) => (d[0] === 0xd2 || d[0] === 0x84) && d.includes(nonce)),
    'attestation: a COSE_Sign1 document carrying our nonce', JSON.stringify(a)?.slice(0, 300));
}

// 5. A wrong secret is refused inside the image too.
  const bad = await call('sign_transaction', { key_id: keyId, secret: secret + 'x', transaction_payload: tx });
  check(bad && bad.enclave_status >= 400 && bad.enclave_status < 500, 'wrong secret: a 4xx answer', JSON.stringify(bad));
  if (process.env.BOOT_ATTESTATION === '1') await attestation();
}

const watchdog = setTimeout(() => { console.log('FAIL watchdog: deadline passed'); failed++; done(); }, deadline - Date.now() + 60000);
function done() {
  clearTimeout(watchdog);
  console.log(`enclave-boot: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}
main().catch((e) => { failed++; console.log(`FAIL ${e.stack || e}`); }).finally(done);
