// Byte-for-byte comparison of signerd's eth plugin against ethers v6.
//
// For many random keys (seeded PRNG, seed printed; rerun with
// INTEROP_SEED=<seed>), import the key with set_key, sign a random
// transaction through the HTTP API and require transaction_signed and
// transaction_hash to equal ethers' Wallet.signTransaction and keccak256.
// Also userOp signatures (SigningKey.sign(hash).serialized), EIP-191 message
// signatures (Wallet.signMessage), the seed's documented requests and answer,
// the convenience routes, and bad input answered with 4xx.
//
// Environment: INTEROP_SEED (uint32), INTEROP_CASES (default 240),
// INTEROP_CONCURRENCY (default 4), INTEROP_VERBOSE=1, plus lib.mjs' paths.

import {
  Wallet, SigningKey, Transaction, keccak256, parseEther, getAddress, getBytes,
  verifyMessage, getCreateAddress,
} from 'ethers';
import crypto from 'node:crypto';
import {
  Checks, interopSeed, makeRng, pool, runMain, watchdog, withSignerd,
} from './lib.mjs';

const NAME = 'ethers_compare';
watchdog(Number(process.env.INTEROP_TIME_LIMIT || 280), NAME);

const SEED = interopSeed();
const NCASES = Math.max(1, Number(process.env.INTEROP_CASES || 240));
const CONCURRENCY = Math.max(1, Number(process.env.INTEROP_CONCURRENCY || 4));
console.log(`${NAME}: seed ${SEED} (rerun with INTEROP_SEED=${SEED}), ${NCASES} transaction cases`);

const N_SECP = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const U256_MAX = (1n << 256n) - 1n;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER); // 2^53 - 1
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
const HEX = (n) => new RegExp(`^0x[0-9a-f]{${n}}$`);

const rng = makeRng(SEED);

// ------------------------------------------------------------- generators

function randomKey() {
  for (;;) {
    const k = BigInt(rng.hex(32));
    if (k > 0n && k < N_SECP) return '0x' + k.toString(16).padStart(64, '0');
  }
}

function randomSecret() {
  if (rng.chance(0.5)) return rng.hex(32).slice(2); // the seed's style: 64 hex digits
  const len = 20 + rng.int(109);                    // 20..128 printable ASCII
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(0x21 + rng.int(0x7e - 0x21 + 1));
  return s;
}

function randomAddress() {
  const a = rng.hex(20);
  return rng.chance(0.5) ? getAddress(a) : a;       // checksummed or lowercase
}

/** An edge-heavy random bigint in [0, max]. */
function randomQty(max, edges = []) {
  const r = rng.int(10);
  if (r < 3 && edges.length) return rng.pick(edges.filter((e) => e <= max));
  if (r < 5) {                                       // around a power of two or 256^k
    const bits = 1 + rng.int(Math.min(256, max.toString(2).length));
    let v = (1n << BigInt(bits)) + BigInt(rng.int(3)) - 1n;
    if (v > max) v = max;
    return v < 0n ? 0n : v;
  }
  const bits = 1 + rng.int(max.toString(2).length);
  const v = rng.bigBits(bits);
  return v > max ? max : v;
}

/** Encodes a quantity as a JSON number (when safe), decimal or 0x string. */
function encQty(v, allowNumber = true) {
  const r = rng.int(3);
  if (r === 0 && allowNumber && v <= SAFE_MAX) return Number(v);
  if (r === 1 || (r === 0 && !(allowNumber && v <= SAFE_MAX))) return v.toString(10);
  return '0x' + (rng.chance(0.1) ? v.toString(16).toUpperCase() : v.toString(16));
}

const NONCE_EDGES = [0n, 1n, 127n, 128n, 255n, 256n, 65535n, 65536n, 0xffffffffn, SAFE_MAX];
const GAS_EDGES = [0n, 1n, 21000n, 30000000n, 0xffffffffn, SAFE_MAX, (1n << 64n) - 1n];
const FEE_EDGES = [0n, 1n, 1000000000n, 100000000000n, SAFE_MAX, SAFE_MAX + 1n, (1n << 64n) - 1n,
  (1n << 128n), U256_MAX];
const VALUE_EDGES = [0n, 1n, 10n ** 18n, 10n ** 16n, SAFE_MAX, SAFE_MAX + 1n, (1n << 255n), U256_MAX - 1n, U256_MAX];
const CHAIN_IDS = [1n, 4n, 5n, 10n, 56n, 137n, 8453n, 42161n, 31337n, 11155111n, 0xffffffffn, SAFE_MAX,
  SAFE_MAX + 1n, (1n << 64n) - 1n];

// JSON numbers meaning ether: each is written by JSON.stringify in its
// shortest form and ethers.parseEther gets the same shortest decimal.
const ETHER_NUMBERS = [0.01, 1.5, 0.000001, 0, 1, 2, 0.1, 0.3, 0.1 + 0.2, 123.456, 1e-7, 2.5e-10, 1e-18,
  0.123456789012345678, 1234567.891011, 9007199254740991, 4503599627370495.5, 1e-6, 33.333333333333336];

/** Shortest decimal text of a JS number, without exponent ("1e-7" -> "0.0000001"). */
function plainDecimal(x) {
  const s = JSON.stringify(x);
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/i.exec(s);
  if (!m) throw new Error(`unexpected number text ${s}`);
  const [, sign, ip, fp = '', ex = '0'] = m;
  let digits = ip + fp;
  let point = ip.length + Number(ex);
  if (point <= 0) { digits = '0'.repeat(1 - point) + digits; point = 1; }
  if (point > digits.length) digits += '0'.repeat(point - digits.length);
  let intPart = digits.slice(0, point).replace(/^0+(?=\d)/, '');
  let frac = digits.slice(point).replace(/0+$/, '');
  return sign + intPart + (frac ? '.' + frac : '');
}

function randomEtherNumber() {
  for (;;) {
    let x;
    if (rng.chance(0.5)) x = rng.pick(ETHER_NUMBERS);
    else {
      const mant = rng.int(1e9);
      x = mant / 10 ** rng.int(16);                    // shortest form, at most 24 digits
    }
    const plain = plainDecimal(x);
    const frac = plain.split('.')[1] || '';
    if (frac.length <= 18 && Number.isFinite(x) && x >= 0 && x <= Number.MAX_SAFE_INTEGER) return x;
  }
}

function randomData() {
  const r = rng.int(12);
  if (r === 0) return undefined;                          // absent
  if (r === 1) return '0x';                               // empty
  if (r === 2) return rng.pick(['0x00', '0x7f', '0x80', '0xff']); // RLP single-byte edges
  if (r === 3) return rng.hex(55);                        // RLP short/long string boundary
  if (r === 4) return rng.hex(56);
  if (r === 5) return rng.hex(10240);                     // 10 KB
  if (r === 6) return rng.hex(4 + 32 * rng.int(4));       // calldata-like
  return rng.hex(1 + rng.int(300));
}

function randomAccessList() {
  const n = rng.int(4);
  const out = [];
  for (let i = 0; i < n; i++) {
    const keys = [];
    const m = rng.int(4);
    for (let j = 0; j < m; j++) keys.push(rng.hex(32));
    out.push({ address: randomAddress(), storageKeys: keys });
  }
  return out;
}

/**
 * One random transaction: `payload` is what we send to signerd (JSON text
 * made by JSON.stringify), `ethersTx` the same transaction for ethers.
 */
function randomTx() {
  const type = rng.pick([0, 1, 2, 2]);
  const payload = {};
  const tx = { type };
  // type: explicit, or absent for the default (2)
  if (type !== 2 || rng.chance(0.7)) payload.type = rng.chance(0.85) ? type : '0x' + type.toString(16);
  const chainId = rng.chance(0.3) ? rng.pick(CHAIN_IDS) : BigInt(1 + rng.int(100000));
  payload.chainId = encQty(chainId);
  tx.chainId = chainId;
  const nonce = randomQty(SAFE_MAX, NONCE_EDGES);
  payload.nonce = encQty(nonce);
  tx.nonce = Number(nonce);

  // to: address, absent (creation) or null (creation)
  const toKind = rng.int(10);
  if (toKind === 0) { tx.to = null; }
  else if (toKind === 1) { payload.to = null; tx.to = null; }
  else { payload.to = randomAddress(); tx.to = getAddress(payload.to); }

  // value: ether number, wei decimal/hex string, absent
  const vk = rng.int(10);
  let valueDesc;
  if (vk <= 2) {
    const x = randomEtherNumber();
    payload.value = x;
    tx.value = parseEther(plainDecimal(x));
    valueDesc = `ether number ${JSON.stringify(x)} = ${plainDecimal(x)} ether`;
  } else if (vk === 3) {
    tx.value = 0n;
  } else {
    const v = randomQty(U256_MAX, VALUE_EDGES);
    payload.value = rng.chance(0.5) ? v.toString(10) : '0x' + v.toString(16);
    tx.value = v;
  }

  const gas = randomQty((1n << 64n) - 1n, GAS_EDGES);
  payload[rng.chance(0.7) ? 'gas' : 'gasLimit'] = encQty(gas);
  tx.gasLimit = gas;

  if (type === 2) {
    const maxFee = randomQty(U256_MAX, FEE_EDGES);
    const tip = rng.chance(0.2) ? maxFee : (maxFee === 0n ? 0n : randomQty(maxFee, FEE_EDGES));
    payload.maxFeePerGas = encQty(maxFee);
    payload.maxPriorityFeePerGas = encQty(tip);
    tx.maxFeePerGas = maxFee;
    tx.maxPriorityFeePerGas = tip;
  } else {
    const gp = randomQty(U256_MAX, FEE_EDGES);
    payload.gasPrice = encQty(gp);
    tx.gasPrice = gp;
  }

  const data = randomData();
  if (data !== undefined) {
    // hex digits in either case; ethers gets the same bytes
    payload[rng.chance(0.75) ? 'data' : 'input'] = rng.chance(0.1) ? '0x' + data.slice(2).toUpperCase() : data;
  }
  tx.data = data === undefined ? '0x' : data;

  if (type !== 0) {
    if (rng.chance(0.7)) {
      const al = randomAccessList();
      payload.accessList = al;
      tx.accessList = al.map((e) => ({ address: getAddress(e.address), storageKeys: e.storageKeys }));
    } else {
      tx.accessList = [];
    }
  }
  return { payload, tx, valueDesc };
}

function randomMessage() {
  const r = rng.int(8);
  if (r <= 2) {                                           // bytes: {raw: 0x-hex}
    const m = rng.hex(1 + rng.int(r === 2 ? 400 : 64));
    return { message: { raw: m }, ethersArg: getBytes(m), kind: 'bytes' };
  }
  let text;
  if (r === 3) text = 'Hello, signer! ' + rng.u32();
  else if (r === 4) text = `héllo wörld ✓ 🚀 ${rng.u32()}\nsecond line\ttab`;
  else if (r === 5) text = 'x'.repeat(1 + rng.int(3000));
  else if (r === 6) text = 'Sign in to example.org\nNonce: ' + rng.hex(8).slice(2);
  else {
    const len = 1 + rng.int(200);
    text = '';
    for (let i = 0; i < len; i++) text += String.fromCharCode(0x20 + rng.int(0x5f));
  }
  return { message: text, ethersArg: text, kind: 'text' };
}

// ------------------------------------------------------------------ main

const checks = new Checks(NAME);

function addrOk(got, expected) {
  return typeof got === 'string' && got.toLowerCase() === expected.toLowerCase()
    && (got === got.toLowerCase() || got === getAddress(expected));
}

function describeAnswer(r) {
  return { http_status: r.status, body: r.json ?? r.text.slice(0, 500) };
}

/** Checks the envelope invariant and returns the result object or null. */
function envelopeOk(r, what) {
  const good = r.json && typeof r.json === 'object' && r.json.enclave_status === r.status
    && r.json.enclave_result && typeof r.json.enclave_result === 'object';
  if (!good) checks.fail(`${what}: answer is not {enclave_status == HTTP status, enclave_result}`, describeAnswer(r));
  return good ? r.json.enclave_result : null;
}

async function importKey(signer, key, secret, op = 'set_key', what = 'set_key') {
  const wallet = new Wallet(key);
  const eth_key = rng.chance(0.5) ? key : key.slice(2);    // with and without 0x
  const r = await signer.call(op, { eth_key, secret });
  const res = envelopeOk(r, what);
  if (!res) return null;
  if (!checks.check(r.status === 200 && UUID4.test(res.key_id ?? '') && addrOk(res.address, wallet.address),
    `${what}: 200 with a UUIDv4 key_id and the key's address`,
    () => ({ expected_address: wallet.address, answer: describeAnswer(r) }))) return null;
  return { keyId: res.key_id, wallet, secret };
}

async function compareTx(signer, k, c, idx, op = 'sign_transaction') {
  const label = `tx case ${idx} (type ${c.tx.type}${c.tx.to === null ? ', creation' : ''})`;
  let expSigned, expHash;
  try {
    expSigned = await k.wallet.signTransaction(c.tx);
    expHash = keccak256(expSigned);
  } catch (e) {
    checks.fail(`${label}: ethers refused the generated transaction (test bug)`, { payload: c.payload, error: String(e) });
    return;
  }
  const r = await signer.call(op, { key_id: k.keyId, secret: k.secret, transaction_payload: c.payload });
  const res = envelopeOk(r, label);
  if (!res) {
    console.log(`       payload: ${JSON.stringify(c.payload).slice(0, 2000)}`);
    return;
  }
  const same = r.status === 200 && res.transaction_signed === expSigned && res.transaction_hash === expHash;
  checks.check(same, `${label}: signed bytes and hash identical to ethers`, () => {
    const d = {
      seed: SEED, case: idx, key: k.wallet.address,
      payload: JSON.stringify(c.payload).length > 3000
        ? JSON.stringify({ ...c.payload, data: `${(c.payload.data ?? c.payload.input ?? '').slice(0, 40)}... (${((c.payload.data ?? c.payload.input ?? '').length - 2) / 2} bytes)` })
        : JSON.stringify(c.payload),
      value_note: c.valueDesc,
      ethers: { transaction_signed: trunc(expSigned), transaction_hash: expHash },
      signerd: r.status === 200 ? { transaction_signed: trunc(res.transaction_signed), transaction_hash: res.transaction_hash } : describeAnswer(r),
    };
    if (r.status === 200 && typeof res.transaction_signed === 'string') {
      try {
        const got = decodedSummary(Transaction.from(res.transaction_signed));
        const want = decodedSummary(Transaction.from(expSigned));
        d.decoded_differences = {};
        for (const f of Object.keys(want)) {
          if (JSON.stringify(got[f]) !== JSON.stringify(want[f])) d.decoded_differences[f] = { ethers: want[f], signerd: got[f] };
        }
      } catch (e) { d.signerd_decoded = `does not decode: ${e.message}`; }
    }
    return d;
  });
}

const trunc = (s) => (typeof s === 'string' && s.length > 600 ? `${s.slice(0, 300)}...${s.slice(-200)} (${(s.length - 2) / 2} bytes)` : s);

function decodedSummary(t) {
  return {
    type: t.type, chainId: String(t.chainId), nonce: t.nonce, to: t.to, value: String(t.value),
    gasLimit: String(t.gasLimit), gasPrice: t.gasPrice === null ? null : String(t.gasPrice),
    maxFeePerGas: t.maxFeePerGas === null ? null : String(t.maxFeePerGas),
    maxPriorityFeePerGas: t.maxPriorityFeePerGas === null ? null : String(t.maxPriorityFeePerGas),
    dataBytes: (t.data.length - 2) / 2, accessList: t.accessList, from: t.from,
  };
}

async function compareUserOp(signer, k, idx, viaSignTx) {
  const hash = rng.hex(32);
  const sent = rng.chance(0.5) ? hash : hash.slice(2);
  const expected = new SigningKey(k.wallet.privateKey).sign(hash).serialized;
  const op = viaSignTx ? 'sign_transaction' : 'sign_userop';
  const r = await signer.call(op, { key_id: k.keyId, secret: k.secret, transaction_payload: { userOpHash: sent } });
  const res = envelopeOk(r, `userop ${idx}`);
  if (!res) return;
  const sig = res.signature;
  checks.check(r.status === 200 && sig === expected && HEX(130).test(sig) && [27, 28].includes(parseInt(sig.slice(-2), 16)),
    `userop ${idx} via ${op}: signature identical to SigningKey.sign(hash).serialized`,
    () => ({ seed: SEED, key: k.wallet.address, userOpHash: sent, ethers: expected, signerd: r.status === 200 ? sig : describeAnswer(r) }));
}

async function compareMessage(signer, k, idx) {
  const m = randomMessage();
  const expected = await k.wallet.signMessage(m.ethersArg);
  const r = await signer.call('sign_message', { key_id: k.keyId, secret: k.secret, message: m.message });
  const res = envelopeOk(r, `message ${idx}`);
  if (!res) return;
  checks.check(r.status === 200 && res.signature === expected,
    `message ${idx} (${m.kind}): signature identical to wallet.signMessage`,
    () => ({
      seed: SEED, key: k.wallet.address, message: JSON.stringify(m.message).slice(0, 300),
      ethers: expected, signerd: r.status === 200 ? res.signature : describeAnswer(r),
      signerd_recovers_to: r.status === 200 ? safe(() => verifyMessage(m.ethersArg, res.signature)) : undefined,
    }));
}

const safe = (f) => { try { return f(); } catch (e) { return `error: ${e.message}`; } };

// ----------------------------------------------------------- seed checks

const SEED_SECRET = '5e618e009fe35ea092150ad1f2c24e3181b4cf6693dc7bbd9a09ea9c8144720d';
const SEED_ETH_KEY = '6835311872e1c63b50a8edd16605e2253c2a9c58ef9bf41f1d1c0c724981931a';
const SEED_TX = {
  value: 0.01, to: '0xa5D3241A1591061F2a4bB69CA0215F66520E67cf', nonce: 0, type: 2, chainId: 4,
  gas: 100000, maxFeePerGas: 100000000000, maxPriorityFeePerGas: 3000000000,
};
// The answer documented in the seed README for SEED_TX.
const SEED_SIGNED = '0x02f873048084b2d05e0085174876e800830186a094a5d3241a1591061f2a4bb69ca0215f66520e67cf872386f26fc1000080c001a0532545d1f03732f14e079ffa654af836a9cf1c119091f7c9bc3fd15874c5e05da01b40f921e10add034cec47e60c687c212de18fecd581288048ce173124960ab1';
const SEED_HASH = '0x74b4789b79b019b62a535b9fbacf6b3161ca6d2deffe36565c2814520e97fdd3';
const SEED_USEROP_HASH = '5033589a303c005b7e7818f4bf00e7361335f51f648be16c028951f90a1585d4';
const SEED_USEROP_SECRET = '9779d2b8f0bc495b1691ce1a2baf800453e18a58d4eea8bf1fe996a0ab291dba';

async function seedChecks(signer) {
  // ethereum-key-generator_generate_key
  const g = await signer.call('ethereum-key-generator_generate_key', { secret: SEED_SECRET });
  const gres = envelopeOk(g, 'seed generate_key');
  let generated = null;
  if (gres && checks.check(g.status === 200 && UUID4.test(gres.key_id ?? '') && HEX(40).test((gres.address ?? '').toLowerCase()),
    'seed: ethereum-key-generator_generate_key answers {key_id (UUIDv4), address}', () => describeAnswer(g))) {
    generated = gres;
  }

  // ethereum-signer_set_key with the seed's key: address by ethers
  const seedWallet = new Wallet('0x' + SEED_ETH_KEY);
  const s = await signer.call('ethereum-signer_set_key', { eth_key: SEED_ETH_KEY, secret: SEED_SECRET });
  const sres = envelopeOk(s, 'seed set_key');
  const imported = sres && checks.check(s.status === 200 && UUID4.test(sres.key_id ?? '') && addrOk(sres.address, seedWallet.address),
    'seed: ethereum-signer_set_key answers the ethers address of the seed key', () => ({ expected: seedWallet.address, answer: describeAnswer(s) }));

  // The seed README's documented answer is self-consistent (sanity of the vector).
  const seedDecoded = Transaction.from(SEED_SIGNED);
  checks.check(keccak256(SEED_SIGNED) === SEED_HASH && seedDecoded.from === seedWallet.address,
    'seed vector: README answer hashes to its transaction_hash and was signed by the seed key');

  // ethereum-signer_sign_transaction with the seed's request: the answer must
  // be the seed README's documented answer, byte for byte (RFC 6979).
  if (imported) {
    const t = await signer.call('ethereum-signer_sign_transaction',
      { transaction_payload: SEED_TX, key_id: sres.key_id, secret: SEED_SECRET });
    const tres = envelopeOk(t, 'seed sign_transaction');
    if (tres) {
      checks.check(t.status === 200 && tres.transaction_signed === SEED_SIGNED && tres.transaction_hash === SEED_HASH,
        'seed: ethereum-signer_sign_transaction reproduces the README answer (value 0.01 number, chainId 4)',
        () => ({ request: SEED_TX, readme: { transaction_signed: SEED_SIGNED, transaction_hash: SEED_HASH }, signerd: describeAnswer(t) }));
      const ethersSigned = await seedWallet.signTransaction({
        type: 2, chainId: 4n, nonce: 0, to: SEED_TX.to, value: parseEther('0.01'), gasLimit: 100000n,
        maxFeePerGas: 100000000000n, maxPriorityFeePerGas: 3000000000n,
      });
      checks.check(ethersSigned === SEED_SIGNED, 'seed vector: ethers reproduces the README answer too');
    }
  }

  // The same request signed with the generated key: decodes to the same
  // unsigned transaction as the README answer, from the generated address.
  if (generated) {
    const t = await signer.call('ethereum-signer_sign_transaction',
      { transaction_payload: SEED_TX, key_id: generated.key_id, secret: SEED_SECRET });
    const tres = envelopeOk(t, 'seed sign_transaction (generated key)');
    if (tres) {
      let ok = false, details;
      try {
        const d = Transaction.from(tres.transaction_signed);
        ok = t.status === 200 && d.unsignedHash === seedDecoded.unsignedHash
          && d.from.toLowerCase() === generated.address.toLowerCase()
          && keccak256(tres.transaction_signed) === tres.transaction_hash;
        details = { decoded: decodedSummary(d), readme_unsigned_hash: seedDecoded.unsignedHash, unsigned_hash: d.unsignedHash, generated };
      } catch (e) { details = { error: String(e), answer: describeAnswer(t) }; }
      checks.check(ok, 'seed: sign_transaction with a generated key: same unsigned tx as the README, recovers to the generated address', details);
    }
  }

  // The seed's userOpHash request (hash without 0x) through ethereum-signer_sign_transaction.
  const u = await signer.call('ethereum-signer_set_key', { eth_key: SEED_ETH_KEY, secret: SEED_USEROP_SECRET });
  const ures = envelopeOk(u, 'seed set_key (userop secret)');
  if (ures && u.status === 200) {
    const expected = new SigningKey('0x' + SEED_ETH_KEY).sign('0x' + SEED_USEROP_HASH).serialized;
    const r = await signer.call('ethereum-signer_sign_transaction',
      { transaction_payload: { userOpHash: SEED_USEROP_HASH }, key_id: ures.key_id, secret: SEED_USEROP_SECRET });
    const rres = envelopeOk(r, 'seed userOp');
    if (rres) {
      checks.check(r.status === 200 && rres.signature === expected,
        'seed: userOpHash request (no 0x) via ethereum-signer_sign_transaction matches ethers',
        () => ({ ethers: expected, signerd: describeAnswer(r) }));
    }
  } else {
    checks.fail('seed: set_key with the userOp secret', ures ? describeAnswer(u) : undefined);
  }
  return imported ? { keyId: sres.key_id, wallet: seedWallet, secret: SEED_SECRET } : null;
}

// ------------------------------------------------------ convenience routes

async function routeChecks(signer) {
  const key = randomKey();
  const secret = randomSecret();
  const wallet = new Wallet(key);
  const imp = await signer.post('/key/import', { eth_key: key, secret });
  if (!checks.check(imp.status === 200 && imp.result && addrOk(imp.result.address, wallet.address) && UUID4.test(imp.result.key_id ?? ''),
    'route: POST /key/import answers {key_id, address}', () => describeAnswer(imp))) return;
  const keyId = imp.result.key_id;
  for (let i = 0; i < 3; i++) {
    const c = randomTx();
    const expSigned = await wallet.signTransaction(c.tx);
    const r = await signer.post(`/key/${keyId}/tx_signature`, { secret, transaction_payload: c.payload });
    checks.check(r.status === 200 && r.result && r.result.transaction_signed === expSigned && r.result.transaction_hash === keccak256(expSigned),
      `route: POST /key/{id}/tx_signature ${i} identical to ethers`,
      () => ({ seed: SEED, payload: JSON.stringify(c.payload).slice(0, 2000), ethers: trunc(expSigned), signerd: describeAnswer(r) }));
  }
  const hash = rng.hex(32);
  const r = await signer.post(`/key/${keyId}/userop_signature`, { secret, transaction_payload: { userOpHash: hash } });
  const expected = new SigningKey(key).sign(hash).serialized;
  checks.check(r.status === 200 && r.result && r.result.signature === expected,
    'route: POST /key/{id}/userop_signature identical to ethers', () => ({ ethers: expected, signerd: describeAnswer(r) }));

  const gen = await signer.post('/key', { secret });
  checks.check(gen.status === 200 && gen.result && UUID4.test(gen.result.key_id ?? '') && HEX(40).test((gen.result.address ?? '').toLowerCase()),
    'route: POST /key generates a key', () => describeAnswer(gen));
  const h = await signer.get('/healthz');
  checks.check(h.status === 200, 'route: GET /healthz 200', () => describeAnswer(h));
}

// --------------------------------------------------------------- bad input

async function badInputChecks(signer, k) {
  const good = { type: 2, chainId: 1, nonce: 0, to: getAddress(rng.hex(20)), value: '1', gas: 21000,
    maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1' };
  const tx = (extra, drop = []) => {
    const p = { ...good, ...extra };
    for (const d of drop) delete p[d];
    return { key_id: k.keyId, secret: k.secret, transaction_payload: p };
  };
  const cases = [
    ['generate_key without secret', 'generate_key', {}],
    ['generate_key with a 19-character secret', 'generate_key', { secret: 'a'.repeat(19) }],
    ['generate_key with a 129-character secret', 'generate_key', { secret: 'a'.repeat(129) }],
    ['set_key with 63 hex digits', 'set_key', { eth_key: 'a'.repeat(63), secret: k.secret }],
    ['set_key with non-hex key', 'set_key', { eth_key: 'zz' + 'a'.repeat(62), secret: k.secret }],
    ['set_key with the zero key', 'set_key', { eth_key: '0'.repeat(64), secret: k.secret }],
    ['set_key with key = curve order n', 'set_key', { eth_key: N_SECP.toString(16), secret: k.secret }],
    ['set_key without eth_key', 'set_key', { secret: k.secret }],
    ['sign_transaction with a wrong secret', 'sign_transaction', { ...tx({}), secret: k.secret + 'x' }],
    ['sign_transaction with an unknown key_id', 'sign_transaction', { ...tx({}), key_id: crypto.randomUUID() }],
    ['sign_transaction with a malformed key_id', 'sign_transaction', { ...tx({}), key_id: 'not-a-uuid' }],
    ['sign_transaction without transaction_payload', 'sign_transaction', { key_id: k.keyId, secret: k.secret }],
    ['unknown field in transaction_payload', 'sign_transaction', tx({ gasPriceX: 1 }), 'gasPriceX'],
    ['nonce as a JSON number above 2^53', 'sign_transaction', tx({ nonce: 9007199254740994 })],
    ['value string 2^256 (hex)', 'sign_transaction', tx({ value: '0x1' + '0'.repeat(64) })],
    ['value string 2^256 (decimal)', 'sign_transaction', tx({ value: (1n << 256n).toString() })],
    ['value negative string', 'sign_transaction', tx({ value: '-1' })],
    ['to with 2 bytes', 'sign_transaction', tx({ to: '0x1234' })],
    ['to with a wrong EIP-55 checksum', 'sign_transaction', tx({ to: '0xA5d3241A1591061F2a4bB69CA0215F66520E67cf' })],
    ['value 1e-19 ether (not a whole number of wei)', 'sign_transaction', tx({ value: 1e-19 })],
    ['accessList storage key of 1 byte', 'sign_transaction', tx({ accessList: [{ address: good.to, storageKeys: ['0x01'] }] }), 'accessList'],
    ['accessList entry with an unknown field', 'sign_transaction', tx({ accessList: [{ address: good.to, storageKeys: [], foo: 1 }] }), 'foo'],
    ['data with odd hex length', 'sign_transaction', tx({ data: '0xabc' })],
    ['data not hex', 'sign_transaction', tx({ data: '0xzz' })],
    ['unsupported type 5', 'sign_transaction', tx({ type: 5 })],
    ['userOpHash of 31 bytes', 'sign_userop', { key_id: k.keyId, secret: k.secret, transaction_payload: { userOpHash: rng.hex(31) } }],
    ['userOpHash not hex', 'sign_userop', { key_id: k.keyId, secret: k.secret, transaction_payload: { userOpHash: 'g'.repeat(64) } }],
    ['unknown operation', 'no_such_operation', { secret: k.secret }],
  ];
  for (const [what, op, payload, mustName] of cases) {
    const r = await signer.call(op, payload);
    const err = r.json && r.json.enclave_result && r.json.enclave_result.error;
    checks.check(r.status >= 400 && r.status < 500 && r.json && r.json.enclave_status === r.status
      && typeof err === 'string' && err.length > 0 && (!mustName || err.includes(mustName)),
    `bad input answered 4xx with an error message: ${what}${mustName ? ` (naming '${mustName}')` : ''}`,
    () => ({ request: { operation: op, payload: { ...payload, secret: payload.secret ? '<redacted>' : undefined } }, answer: describeAnswer(r) }));
  }
  // Malformed envelopes.
  for (const [what, body] of [['body not JSON', '{"operation": "sign_transaction", '],
    ['envelope without operation', JSON.stringify({ payload: {} })],
    ['payload not an object', JSON.stringify({ operation: 'generate_key', payload: 'x' })]]) {
    const r = await signer.post('/', body);
    checks.check(r.status >= 400 && r.status < 500 && r.json && r.json.enclave_status === r.status,
      `bad input answered 4xx: ${what}`, () => describeAnswer(r));
  }
  // Bad input changed nothing: the key still signs with its right secret.
  const c = randomTx();
  await compareTx(signer, k, c, 'after-bad-input');
}

async function main() {
  await withSignerd(checks, async (signer) => {
    // Build all cases first so the PRNG sequence does not depend on timing.
    const cases = [];
    for (let i = 0; i < NCASES; i++) {
      cases.push({ key: randomKey(), secret: randomSecret(), tx: randomTx() });
    }
    // A few edge keys.
    cases[0].key = '0x' + '0'.repeat(63) + '1';
    if (cases.length > 1) cases[1].key = '0x' + (N_SECP - 1n).toString(16);
    if (cases.length > 2) cases[2].key = '0x' + (1n << 255n).toString(16);

    const keys = await pool(cases, CONCURRENCY, async (c, i) => {
      const k = await importKey(signer, c.key, c.secret, i % 5 === 0 ? 'ethereum-signer_set_key' : 'set_key', `set_key case ${i}`);
      if (!k) return null;
      const op = i % 7 === 0 ? 'ethereum-signer_sign_transaction' : 'sign_transaction';
      await compareTx(signer, k, c.tx, i, op);
      return k;
    });
    const live = keys.filter(Boolean);
    if (live.length === 0) {
      checks.fail('no key could be imported; skipping signature comparisons', signer.logTail().join('\n'));
    } else {
      // userOps and messages on a subset of the imported keys (PRNG draws happen in order).
      const uo = [];
      const ms = [];
      for (let i = 0; i < Math.max(60, Math.ceil(live.length / 4)); i++) uo.push([live[i % live.length], i]);
      for (let i = 0; i < Math.max(60, Math.ceil(live.length / 4)); i++) ms.push([live[(i * 7) % live.length], i]);
      for (const [k, i] of uo) await compareUserOp(signer, k, i, i % 3 === 0);
      for (const [k, i] of ms) await compareMessage(signer, k, i);
      await seedChecks(signer);
      await routeChecks(signer);
      await badInputChecks(signer, live[0]);
    }
  });
}

runMain(checks, main);
