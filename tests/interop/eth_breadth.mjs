// Byte-for-byte comparison of signerd's newer eth operations against ethers
// v6, on random input (seeded PRNG, seed printed; rerun with
// INTEROP_SEED=<seed>):
//   - sign_typed_data: random EIP-712 types (nested structs, arrays fixed and
//     dynamic and nested, of structs too, every atomic type) and values, vs
//     Wallet.signTypedData and TypedDataEncoder.hash;
//   - type-3 (EIP-4844) and type-4 (EIP-7702) transactions vs
//     Wallet.signTransaction (type-4 authorization tuples signed by ethers,
//     sent with r/s zero-padded or minimal);
//   - sign_authorization vs Wallet.authorize;
//   - sign_message: text (also 0x-looking text) vs signMessage(string), and
//     {raw} vs signMessage(bytes);
//   - each random typed data made invalid in one field (integer out of
//     range, field missing, unknown type): 400 naming the path, and ethers
//     refuses it too; other bad typed data / transactions answered 400
//     naming the path.
//
// Environment: INTEROP_SEED (uint32), INTEROP_BREADTH_CASES (per operation,
// default 200), INTEROP_CONCURRENCY (default 4), plus lib.mjs' paths.

import {
  Wallet, TypedDataEncoder, keccak256, getAddress, getBytes, toUtf8Bytes,
} from 'ethers';
import {
  Checks, interopSeed, makeRng, pool, runMain, watchdog, withSignerd,
} from './lib.mjs';

const NAME = 'eth_breadth';
watchdog(Number(process.env.INTEROP_TIME_LIMIT || 280), NAME);

const SEED = interopSeed();
const NCASES = Math.max(1, Number(process.env.INTEROP_BREADTH_CASES || 200));
const CONCURRENCY = Math.max(1, Number(process.env.INTEROP_CONCURRENCY || 4));
console.log(`${NAME}: seed ${SEED} (rerun with INTEROP_SEED=${SEED}), ${NCASES} cases per operation`);

const N_SECP = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const checks = new Checks(NAME);
const rng = makeRng(SEED);

// ------------------------------------------------------------- generators

function randomKey() {
  for (;;) {
    const k = BigInt(rng.hex(32));
    if (k > 0n && k < N_SECP) return '0x' + k.toString(16).padStart(64, '0');
  }
}
const randomAddress = () => (rng.chance(0.5) ? getAddress(rng.hex(20)) : rng.hex(20));

/** An edge-heavy random bigint in [0, max]. */
function randomQty(max) {
  const r = rng.int(8);
  if (r === 0) return 0n;
  if (r === 1) return max;
  if (r === 2) { const v = BigInt(rng.int(3)); return v > max ? max : v; }
  const bits = 1 + rng.int(max.toString(2).length);
  const v = rng.bigBits(bits);
  return v > max ? max : v;
}

/** A quantity as a JSON number (when safe), decimal or 0x string. */
function encQty(v) {
  const r = rng.int(3);
  if (r === 0 && v <= SAFE_MAX) return Number(v);
  if (r === 1) return v.toString(10);
  return '0x' + v.toString(16);
}

const IDENT_START = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_$';
const IDENT_REST = IDENT_START + '0123456789';
function randomIdent(taken) {
  for (;;) {
    let s = rng.pick(IDENT_START.split(''));
    const len = rng.int(10);
    for (let i = 0; i < len; i++) s += rng.pick(IDENT_REST.split(''));
    if (!taken.has(s) && !/^(u?int\d*|bytes\d*|address|bool|string|EIP712Domain)$/.test(s)) {
      taken.add(s);
      return s;
    }
  }
}

function randomText() {
  const r = rng.int(6);
  if (r === 0) return '';
  if (r === 1) return 'héllo wörld ✓ 🚀 ' + rng.u32();
  if (r === 2) return rng.hex(1 + rng.int(40));               // 0x-looking text
  if (r === 3) return 'x'.repeat(rng.int(300));
  let t = '';
  const len = rng.int(60);
  for (let i = 0; i < len; i++) t += String.fromCharCode(0x20 + rng.int(0x5f));
  return t;
}

const ATOMICS = ['address', 'bool', 'string', 'bytes', 'uint', 'int'];
function randomAtomic() {
  const r = rng.int(10);
  if (r < 2) return `uint${8 * (1 + rng.int(32))}`;
  if (r < 4) return `int${8 * (1 + rng.int(32))}`;
  if (r < 5) return `bytes${1 + rng.int(32)}`;
  return rng.pick(ATOMICS);
}

/** Random acyclic struct types; type i only refers to types j > i, and
 * every type is reachable from type 0 (ethers wants exactly one root). */
function randomTypes() {
  const taken = new Set();
  const n = 1 + rng.int(5);
  const names = Array.from({ length: n }, () => randomIdent(taken));
  const types = {};
  for (let i = 0; i < n; i++) {
    const fieldNames = new Set();
    const nf = rng.int(6) + (i === 0 ? 1 : 0);
    types[names[i]] = [];
    for (let k = 0; k < nf; k++) {
      let base = randomAtomic();
      if (i + 1 < n && rng.chance(0.3)) base = names[i + 1 + rng.int(n - i - 1)];
      types[names[i]].push({ name: randomIdent(fieldNames), type: base + randomDims() });
    }
  }
  for (let j = 1; j < n; j++) {                 // make sure j has a parent
    const hasParent = names.slice(0, j).some((p) => types[p].some((f) => f.type.split('[')[0] === names[j]));
    if (!hasParent) {
      const p = names[rng.int(j)];
      const used = new Set(types[p].map((f) => f.name));
      types[p].splice(rng.int(types[p].length + 1), 0, { name: randomIdent(used), type: names[j] + randomDims() });
    }
  }
  return { types, primaryType: names[0] };
}

function randomDims() {
  let s = '';
  const nd = rng.chance(0.7) ? 0 : 1 + rng.int(2);
  for (let i = 0; i < nd; i++) s += rng.chance(0.5) ? '[]' : `[${rng.int(4)}]`;
  return s;
}

function randomIntValue(type) {
  const m = type.match(/^(u?)int(\d*)$/);
  const bits = BigInt(m[2] || 256);
  const signed = m[1] === '';
  const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  const min = signed ? -(1n << (bits - 1n)) : 0n;
  const r = rng.int(6);
  let v;
  if (r === 0) v = max;
  else if (r === 1) v = min;
  else if (r === 2) v = BigInt(rng.int(3)) - (signed ? 1n : 0n);
  else {
    v = rng.bigBits(1 + rng.int(Number(bits)));
    if (v > max) v = max;
    if (signed && rng.chance(0.5)) v = -v;
    if (v < min) v = min;
  }
  const e = rng.int(3);
  if (e === 0 && v <= SAFE_MAX && v >= -SAFE_MAX) return Number(v);
  if (e === 1) return v.toString(10);
  return (v < 0n ? '-0x' : '0x') + (v < 0n ? -v : v).toString(16);
}

function randomValue(type, types, depth = 0) {
  const m = type.match(/^(.*)\[(\d*)\]$/);
  if (m) {
    const count = m[2] === '' ? rng.int(depth > 2 ? 2 : 4) : Number(m[2]);
    return Array.from({ length: count }, () => randomValue(m[1], types, depth + 1));
  }
  if (types[type]) {
    const o = {};
    for (const f of types[type]) o[f.name] = randomValue(f.type, types, depth + 1);
    return o;
  }
  if (/^u?int\d*$/.test(type)) return randomIntValue(type);
  const b = type.match(/^bytes(\d+)$/);
  if (b) return rng.hex(Number(b[1]));
  switch (type) {
    case 'address': return randomAddress();
    case 'bool': return rng.chance(0.5);
    case 'bytes': return rng.hex(rng.int(70));
    case 'string': return randomText();
    default: throw new Error(`generator: unknown type ${type}`);
  }
}

function randomDomain() {
  const d = {};
  if (rng.chance(0.8)) d.name = randomText();
  if (rng.chance(0.6)) d.version = String(rng.int(10));
  if (rng.chance(0.8)) d.chainId = encQty(randomQty((1n << 64n) - 1n));
  if (rng.chance(0.7)) d.verifyingContract = randomAddress();
  if (rng.chance(0.3)) d.salt = rng.hex(32);
  return d;
}

const DOMAIN_ORDER = [['name', 'string'], ['version', 'string'], ['chainId', 'uint256'],
  ['verifyingContract', 'address'], ['salt', 'bytes32']];

function randomTypedData() {
  const { types, primaryType } = randomTypes();
  const domain = randomDomain();
  const message = randomValue(primaryType, types);
  // Half the time give EIP712Domain explicitly (as eth_signTypedData_v4 does).
  const ours = { ...types };
  if (rng.chance(0.5)) ours.EIP712Domain = DOMAIN_ORDER.filter(([n]) => n in domain).map(([name, type]) => ({ name, type }));
  return { ethers: { domain, types, message }, ours: { types: ours, primaryType, domain, message } };
}

function randomFees() {
  const maxFee = randomQty((1n << 128n) - 1n);
  const tip = maxFee === 0n ? 0n : randomQty(maxFee);
  return { maxFee, tip };
}

function randomTx3() {
  const { maxFee, tip } = randomFees();
  const hashes = Array.from({ length: 1 + rng.int(6) }, () => '0x01' + rng.hex(31).slice(2));
  const t = {
    type: 3, chainId: 1n + randomQty((1n << 64n) - 2n), nonce: randomQty(SAFE_MAX),
    maxPriorityFeePerGas: tip, maxFeePerGas: maxFee, gasLimit: randomQty((1n << 64n) - 1n),
    to: randomAddress(), value: randomQty((1n << 256n) - 1n), data: rng.hex(rng.int(3) === 0 ? 0 : rng.int(200)),
    accessList: rng.chance(0.5) ? [] : [{ address: getAddress(rng.hex(20)), storageKeys: [rng.hex(32)] }],
    maxFeePerBlobGas: randomQty((1n << 128n) - 1n), blobVersionedHashes: hashes,
  };
  const payload = {
    type: rng.chance(0.5) ? 3 : '0x3', chainId: encQty(t.chainId), nonce: encQty(t.nonce),
    maxPriorityFeePerGas: encQty(tip), maxFeePerGas: encQty(maxFee), gas: encQty(t.gasLimit), to: t.to,
    value: t.value.toString(), data: t.data, accessList: t.accessList,
    maxFeePerBlobGas: encQty(t.maxFeePerBlobGas), blobVersionedHashes: hashes,
  };
  return { ethersTx: t, payload };
}

async function randomAuthTuple() {
  const w = new Wallet(randomKey());
  const a = await w.authorize({ chainId: randomQty((1n << 64n) - 1n), address: randomAddress(), nonce: randomQty((1n << 64n) - 1n) });
  const minimal = rng.chance(0.5);
  const min = (h) => '0x' + BigInt(h).toString(16);
  return {
    ethers: a,
    ours: {
      chainId: encQty(a.chainId), address: a.address, nonce: encQty(a.nonce),
      yParity: rng.chance(0.5) ? a.signature.yParity : '0x' + a.signature.yParity.toString(16),
      r: minimal ? min(a.signature.r) : a.signature.r, s: minimal ? min(a.signature.s) : a.signature.s,
    },
  };
}

async function randomTx4() {
  const { maxFee, tip } = randomFees();
  const auths = [];
  for (let i = 0, n = 1 + rng.int(3); i < n; i++) auths.push(await randomAuthTuple());
  const t = {
    type: 4, chainId: 1n + randomQty((1n << 64n) - 2n), nonce: randomQty(SAFE_MAX),
    maxPriorityFeePerGas: tip, maxFeePerGas: maxFee, gasLimit: randomQty((1n << 64n) - 1n),
    to: randomAddress(), value: randomQty((1n << 256n) - 1n), data: rng.hex(rng.int(100)),
    accessList: [], authorizationList: auths.map((a) => a.ethers),
  };
  const payload = {
    type: 4, chainId: encQty(t.chainId), nonce: encQty(t.nonce), maxPriorityFeePerGas: encQty(tip),
    maxFeePerGas: encQty(maxFee), gasLimit: encQty(t.gasLimit), to: t.to, value: '0x' + t.value.toString(16),
    data: t.data, authorizationList: auths.map((a) => a.ours),
  };
  if (rng.chance(0.3)) payload.accessList = [];
  return { ethersTx: t, payload };
}

/** A typed-data case made invalid at one top-level field of the primary
 * type; returns {td, what, path} or null when no field suits. */
function mutateTypedData(c) {
  const { types, primaryType } = c.ours;
  const fields = types[primaryType];
  if (fields.length === 0) return null;
  const f = rng.pick(fields);
  const td = JSON.parse(JSON.stringify(c.ours));
  const msgPath = `typed_data.message.${f.name}`;
  const kind = rng.int(3);
  const intm = f.type.match(/^(u?)int(\d*)$/);
  if (kind === 0 && intm) {                                   // out of range
    const bits = BigInt(intm[2] || 256);
    const signed = intm[1] === '';
    td.message[f.name] = rng.chance(0.5)
      ? (signed ? (1n << (bits - 1n)) : (1n << bits)).toString()
      : (signed ? -(1n << (bits - 1n)) - 1n : -1n).toString();
    return { td, what: `${f.type} out of range`, path: msgPath, ethersToo: true };
  }
  // ethers reads a missing bool as false and never looks into a missing
  // struct without fields: those are refused by us alone, not compared
  const lax = f.type === 'bool' || (types[f.type] && types[f.type].length === 0);
  if (kind === 1 && !lax) {                                   // missing field
    delete td.message[f.name];
    return { td, what: 'missing field', path: msgPath, ethersToo: true };
  }
  const t = td.types[primaryType].find((x) => x.name === f.name);  // unknown type
  t.type = 'Nope' + rng.int(100) + (rng.chance(0.5) ? '[]' : '');
  return { td, what: 'unknown type', path: `typed_data.types.${primaryType}.${f.name}`, ethersToo: true };
}

// ------------------------------------------------------------- comparisons

const short = (v) => { const s = JSON.stringify(v); return s.length > 1500 ? s.slice(0, 1500) + '...' : s; };

async function importKey(signer, key) {
  const secret = rng.hex(32).slice(2);
  const r = await signer.call('set_key', { eth_key: key, secret });
  const wallet = new Wallet(key);
  if (!checks.check(r.status === 200 && r.result && r.result.address === wallet.address,
    'set_key imports the key', () => r.text)) return null;
  return { keyId: r.result.key_id, secret, wallet };
}

async function compareTyped(signer, k, c, i) {
  let expSig, expDigest;
  try {
    expDigest = TypedDataEncoder.hash(c.ethers.domain, c.ethers.types, c.ethers.message);
    expSig = await k.wallet.signTypedData(c.ethers.domain, c.ethers.types, c.ethers.message);
  } catch (e) {
    checks.fail(`typed ${i}: ethers refused the generated typed data (test bug)`, { e: String(e), td: short(c.ours) });
    return;
  }
  const r = await signer.call('sign_typed_data', { key_id: k.keyId, secret: k.secret, typed_data: c.ours });
  checks.check(r.status === 200 && r.result.signature === expSig && r.result.digest === expDigest,
    `typed ${i}: digest and signature identical to ethers`,
    () => ({ seed: SEED, typed_data: short(c.ours), ethers: { expDigest, expSig }, signerd: r.text.slice(0, 600) }));
}

async function compareTx(signer, k, c, label) {
  let expected;
  try {
    expected = await k.wallet.signTransaction(c.ethersTx);
  } catch (e) {
    checks.fail(`${label}: ethers refused the generated transaction (test bug)`, String(e));
    return;
  }
  const payload = { ...c.payload };
  if (rng.chance(0.3)) payload.from = rng.chance(0.5) ? k.wallet.address : k.wallet.address.toLowerCase();
  const r = await signer.call('sign_transaction', { key_id: k.keyId, secret: k.secret, transaction_payload: payload });
  checks.check(r.status === 200 && r.result.transaction_signed === expected && r.result.transaction_hash === keccak256(expected),
    `${label}: signed bytes and hash identical to ethers`,
    () => ({ seed: SEED, payload: short(payload), ethers: expected, signerd: r.text.slice(0, 1200) }));
}

async function compareAuth(signer, k, i) {
  const req = { chainId: randomQty((1n << 256n) - 1n), address: randomAddress(), nonce: randomQty((1n << 64n) - 1n) };
  const a = await k.wallet.authorize(req);
  const r = await signer.call('sign_authorization', {
    key_id: k.keyId, secret: k.secret,
    authorization: { chainId: encQty(req.chainId), address: req.address, nonce: encQty(req.nonce) },
  });
  const res = r.result || {};
  const q = (v) => '0x' + BigInt(v).toString(16);
  checks.check(r.status === 200 && res.chainId === q(a.chainId) && res.address === a.address && res.nonce === q(a.nonce)
    && res.yParity === q(a.signature.yParity) && res.r === a.signature.r && res.s === a.signature.s
    && res.signature === a.signature.serialized,
  `authorization ${i}: identical to ethers' Wallet.authorize`,
  () => ({ seed: SEED, req: short(req), ethers: short(a), signerd: r.text }));
}

async function compareMutated(signer, k, c, i) {
  const m = mutateTypedData(c);
  if (!m) return;
  const { EIP712Domain, ...ethersTypes } = m.td.types;
  let ethersRefused = false;
  try {
    TypedDataEncoder.hash(m.td.domain, ethersTypes, m.td.message);
  } catch { ethersRefused = true; }
  const r = await signer.call('sign_typed_data', { key_id: k.keyId, secret: k.secret, typed_data: m.td });
  const err = (r.result && r.result.error) || '';
  checks.check(r.status === 400 && err.startsWith(m.path + ':') && ethersRefused,
    `bad typed data ${i} (${m.what}): 400 naming ${m.path}, and ethers refuses it too`,
    () => ({ seed: SEED, typed_data: short(m.td), signerd: r.text, ethersRefused }));
}

async function compareMessage(signer, k, i, raw) {
  let message, ethersArg;
  if (raw) {
    const hex = rng.hex(rng.int(300));
    message = { raw: rng.chance(0.2) ? hex.toUpperCase().replace('0X', '0x') : hex };
    ethersArg = getBytes(hex);
  } else {
    message = ethersArg = randomText();
  }
  const expected = await k.wallet.signMessage(ethersArg);
  const r = await signer.call('sign_message', { key_id: k.keyId, secret: k.secret, message });
  checks.check(r.status === 200 && r.result.signature === expected,
    `message ${i} (${raw ? 'raw' : 'text'}): identical to wallet.signMessage`,
    () => ({ seed: SEED, message: short(message), ethers: expected, signerd: r.text }));
}

async function badInput(signer, k) {
  const tdBase = (types, message, domain = { name: 'x' }) => ({ types, primaryType: 'T', domain, message });
  const cases = [
    ['out-of-range uint8 deep in a struct', 'sign_typed_data', 'typed_data',
      tdBase({ T: [{ name: 'order', type: 'O' }], O: [{ name: 'amount', type: 'uint8' }] }, { order: { amount: 256 } }),
      'typed_data.message.order.amount'],
    ['unknown type', 'sign_typed_data', 'typed_data', tdBase({ T: [{ name: 'a', type: 'Nope' }] }, { a: 1 }), 'typed_data.types.T.a'],
    ['cycle', 'sign_typed_data', 'typed_data',
      tdBase({ T: [{ name: 'a', type: 'U' }], U: [{ name: 'b', type: 'T[]' }] }, { a: { b: [] } }), 'circular'],
    ['missing field', 'sign_typed_data', 'typed_data', tdBase({ T: [{ name: 'a', type: 'string' }] }, {}), 'typed_data.message.a'],
    ['maxFeePerBlobGas in type 2', 'sign_transaction', 'transaction_payload',
      { type: 2, chainId: 1, nonce: 0, gas: 21000, maxFeePerGas: 1, maxPriorityFeePerGas: 1, maxFeePerBlobGas: 1 },
      'maxFeePerBlobGas is not a field of type 2'],
    ['type 5', 'sign_transaction', 'transaction_payload', { type: 5, chainId: 1, nonce: 0, gas: 21000 }, 'type 5'],
    ['from of another address', 'sign_transaction', 'transaction_payload',
      { chainId: 1, nonce: 0, gas: 21000, maxFeePerGas: 1, maxPriorityFeePerGas: 1, from: getAddress(rng.hex(20)) },
      'transaction_payload.from'],
    ['blob hash with version 0x02', 'sign_transaction', 'transaction_payload',
      { type: 3, chainId: 1, nonce: 0, gas: 21000, maxFeePerGas: 1, maxPriorityFeePerGas: 1, to: getAddress(rng.hex(20)),
        maxFeePerBlobGas: 1, blobVersionedHashes: ['0x02' + '00'.repeat(31)] }, 'blobVersionedHashes[0]'],
    ['message raw with odd hex', 'sign_message', 'message', { raw: '0xabc' }, 'message.raw'],
  ];
  for (const [what, op, member, value, want] of cases) {
    const r = await signer.call(op, { key_id: k.keyId, secret: k.secret, [member]: value });
    const err = r.result && r.result.error;
    checks.check(r.status === 400 && typeof err === 'string' && err.includes(want),
      `bad input answered 400 naming '${want}': ${what}`, () => r.text);
  }
}

// ------------------------------------------------------------------ main

async function main() {
  await withSignerd(checks, async (signer) => {
    const keys = [];
    for (let i = 0; i < 12; i++) {
      const k = await importKey(signer, i === 0 ? '0x' + '0'.repeat(63) + '1' : randomKey());
      if (k) keys.push(k);
    }
    if (keys.length === 0) throw new Error('no key imported');
    const key = (i) => keys[i % keys.length];
    const typed = Array.from({ length: NCASES }, () => randomTypedData());
    await pool(typed, CONCURRENCY, (c, i) => compareTyped(signer, key(i), c, i));
    for (let i = 0; i < typed.length; i++) await compareMutated(signer, key(i), typed[i], i);
    const tx3 = Array.from({ length: NCASES }, () => randomTx3());
    await pool(tx3, CONCURRENCY, (c, i) => compareTx(signer, key(i), c, `type-3 tx ${i}`));
    const tx4 = [];
    for (let i = 0; i < NCASES; i++) tx4.push(await randomTx4());
    await pool(tx4, CONCURRENCY, (c, i) => compareTx(signer, key(i), c, `type-4 tx ${i}`));
    for (let i = 0; i < NCASES; i++) await compareAuth(signer, key(i), i);
    for (let i = 0; i < NCASES; i++) await compareMessage(signer, key(i), i, false);
    for (let i = 0; i < NCASES; i++) await compareMessage(signer, key(i), i, true);
    await badInput(signer, keys[0]);
  });
}

runMain(checks, main);
