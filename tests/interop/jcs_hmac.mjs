// RFC 8785 and the HMAC message against third parties.
//
// 1. The engine's canonical JSON (tests/unit/jcs_tool, the same code the
//    HMAC check runs) equals the npm `canonicalize` package on random JSON
//    values full of tricky numbers (random doubles, 1e21, 1e-7, 5e-324,
//    2^53 neighbours, values one ULP apart) spelled in several ways, and
//    on random strings and member names (controls, non-BMP characters).
// 2. A running signerd accepts HMAC requests from a Node client (JSON.stringify
//    based, tests/lib/hmac.mjs), a Python client (tests/interop/
//    hmac_client.py), both as shown in docs/hmac.md, and signer-cli --hmac,
//    and refuses a payload one ULP away from the one MAC'd.
//
// Environment: INTEROP_SEED (uint32), INTEROP_JCS_CASES (default 400).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import canonicalize from 'canonicalize';
import {
  BUILDDIR, HERE, Checks, interopSeed, makeRng, runMain, watchdog, withSignerd,
} from './lib.mjs';
import { hmacHex, jcs } from '../lib/hmac.mjs';

const NAME = 'jcs_hmac';
watchdog(Number(process.env.INTEROP_TIME_LIMIT || 200), NAME);
const SEED = interopSeed();
const NCASES = Math.max(200, Number(process.env.INTEROP_JCS_CASES || 400));
console.log(`${NAME}: seed ${SEED} (rerun with INTEROP_SEED=${SEED}), ${NCASES} JSON values`);
const checks = new Checks(NAME);

const rng = makeRng(SEED).u32; // uint32 draws
const pick = (a) => a[rng() % a.length];

function randomDouble() {
  const buf = Buffer.alloc(8);
  for (;;) {
    buf.writeUInt32BE(rng(), 0);
    buf.writeUInt32BE(rng(), 4);
    const d = buf.readDoubleBE(0);
    if (Number.isFinite(d)) return d;
  }
}

function nextUlp(x) {
  const buf = Buffer.alloc(8);
  buf.writeDoubleBE(x, 0);
  buf.writeBigUInt64BE(buf.readBigUInt64BE(0) + 1n, 0);
  return buf.readDoubleBE(0);
}

const TRICKY = [0, -0, 1, -1, 0.1 + 0.2, 1e21, 1e-7, 1e-6, 999999999999999900000, 1e20, 5e-324,
  Number.MAX_VALUE, -Number.MAX_VALUE, 2 ** 53, 2 ** 53 - 1, -(2 ** 53), 1000000000000000, 0.000001,
  9.999999999999997e-7, 1.0000000000000001e23, 333333333.33333325, 1424953923781206.2, 1e-323, 123e-20,
  2 ** -1017, 2 ** -1007, 2 ** -957, 2 ** 1023];

function randomNumber() {
  switch (rng() % 7) {
    case 5: { // powers of two, where the shortest digits are hardest
      const d = 2 ** ((rng() % 2097) - 1074);
      return rng() % 2 ? d : nextUlp(d);
    }
    case 0: return pick(TRICKY);
    case 1: return nextUlp(pick(TRICKY.filter((x) => x > 0 && x < Number.MAX_VALUE)));
    case 2: return (rng() % 2000001) - 1000000;
    case 3: return (rng() / 2 ** 32) * 10 ** ((rng() % 40) - 20);
    default: return randomDouble();
  }
}

/** A number spelled as JSON.stringify does, or otherwise (same value). */
function spell(x) {
  const forms = [JSON.stringify(x)];
  if (x !== 0) {
    forms.push(x.toExponential(), x.toPrecision(17), x.toExponential(20).replace('e', 'E'));
  }
  return pick(forms);
}

const CHARS = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', '\b', '\u0001', '\u001f', '\u007f', 'é', '€',
  '\u2028', '\ufb33', '\ue000', '😀', '𝄞', 'ß', '中'];
function randomString() {
  let s = '';
  for (let n = rng() % 8; n > 0; n--) s += pick(CHARS);
  return s;
}

function randomValue(depth) {
  const k = rng() % (depth > 3 ? 5 : 8);
  if (k === 0) return null;
  if (k === 1) return rng() % 2 === 0;
  if (k <= 3) return randomNumber();
  if (k === 4) return randomString();
  if (k === 5 || k === 6) {
    const o = {};
    for (let n = rng() % 6; n > 0; n--) o[randomString()] = randomValue(depth + 1);
    return o;
  }
  return Array.from({ length: rng() % 5 }, () => randomValue(depth + 1));
}

/** JSON text of v with numbers spelled at random. */
function text(v) {
  if (Array.isArray(v)) return `[${v.map(text).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).map((k) => `${JSON.stringify(k)} : ${text(v[k])}`).join(',')}}`;
  }
  return typeof v === 'number' ? spell(v) : JSON.stringify(v);
}

function compareJcs() {
  const tool = path.join(BUILDDIR, 'tests', 'unit', 'jcs_tool');
  if (!checks.check(fs.existsSync(tool), `jcs_tool built (${tool})`)) return;
  const values = [];
  for (let i = 0; i < NCASES; i++) values.push(i % 2 ? randomValue(0) : { n: randomNumber(), v: randomValue(1) });
  const lines = values.map(text);
  const r = spawnSync(tool, [], { input: lines.join('\n') + '\n', encoding: 'utf8', maxBuffer: 64 << 20 });
  const out = (r.stdout || '').split('\n');
  let same = 0;
  const bad = [];
  values.forEach((v, i) => {
    const want = canonicalize(JSON.parse(lines[i]));
    if (out[i] === want) same++;
    else bad.push(`in:   ${lines[i]}\nours: ${out[i]}\nnpm:  ${want}`);
  });
  checks.check(r.status === 0 && same === values.length,
    `engine JCS equals npm canonicalize on ${values.length} random values (${same} equal)`, bad.slice(0, 5).join('\n'));
  const ours = values.slice(0, 50).every((v, i) => jcs(JSON.parse(lines[i])) === canonicalize(JSON.parse(lines[i])));
  checks.check(ours, "the tests' Node jcs() (tests/lib/hmac.mjs) agrees with canonicalize");
}

function pythonHmac(secret, op, keyId, covered, ts) {
  const r = spawnSync('python3', [path.join(HERE, 'hmac_client.py'), secret, op, keyId, String(ts)],
    { input: JSON.stringify(covered), encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

const SECRET = 'hmac-interop-secret-0123456789';
const TX = { value: 0.01, to: '0xa5D3241A1591061F2a4bB69CA0215F66520E67cf', nonce: 0, type: 2, chainId: 4,
  gas: 100000, maxFeePerGas: 100000000000, maxPriorityFeePerGas: 3000000000 };

async function clients(signer) {
  const g = await signer.call('generate_key', { secret: SECRET });
  const kid = g.result && g.result.key_id;
  if (!checks.check(g.status === 200 && kid, 'generate_key', g.text)) return;
  const now = () => Math.floor(Date.now() / 1000);
  const message = 'héllo 😀\n\u2028 "quoted" \\';

  let ts = now();
  let r = await signer.call('sign_message', { key_id: kid, message, timestamp: ts,
    hmac: hmacHex(SECRET, 'sign_message', kid, { message }, ts) });
  checks.check(r.status === 200, 'Node client (JSON.stringify): sign_message accepted', r.text);

  r = await signer.call('sign_transaction', { key_id: kid, transaction_payload: TX, timestamp: ts,
    hmac: hmacHex(SECRET, 'sign_transaction', kid, { transaction_payload: TX }, ts) });
  checks.check(r.status === 200, 'Node client (JSON.stringify): sign_transaction accepted', r.text);

  // The same request with the numbers spelled otherwise in the body: the MAC
  // binds values, not spellings.
  ts = now();
  const mac = hmacHex(SECRET, 'sign_transaction', kid, { transaction_payload: { ...TX, nonce: 1 } }, ts);
  const body = `{"operation":"sign_transaction","payload":{"key_id":"${kid}","timestamp":${ts},"hmac":"${mac}",`
    + '"transaction_payload":{"value":1.0e-2,"to":"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf","nonce":1,'
    + '"type":2,"chainId":4,"gas":1E5,"maxFeePerGas":1e11,"maxPriorityFeePerGas":3.0e9}}}';
  r = await signer.post('/', body);
  checks.check(r.status === 200, 'numbers spelled otherwise than JSON.stringify: accepted', r.text);

  // One ULP away from the MAC'd value: refused.
  ts = now();
  const tx2 = { ...TX, nonce: 2 };
  const mac2 = hmacHex(SECRET, 'sign_transaction', kid, { transaction_payload: tx2 }, ts);
  r = await signer.call('sign_transaction', { key_id: kid, transaction_payload: { ...tx2, value: nextUlp(0.01) },
    timestamp: ts, hmac: mac2 });
  checks.check(r.status === 403 && /hmac: does not match/.test(r.text), 'a payload one ULP away is refused (403)', r.text);

  // The C client: signer-cli --hmac (the secret stays in the client).
  const cli = path.join(BUILDDIR, 'signer-cli');
  if (fs.existsSync(cli)) {
    const env = { ...process.env, SIGNER_SECRET: SECRET };
    let c = spawnSync(cli, ['--url', signer.url, 'sign-message', '--key-id', kid.toUpperCase(),
      '--message', `${message} cli`, '--hmac'], { env, encoding: 'utf8' });
    checks.check(c.status === 0 && /signature/.test(c.stdout), 'signer-cli --hmac: sign-message accepted',
      `${c.status} ${c.stdout} ${c.stderr}`);
    c = spawnSync(cli, ['--url', signer.url, 'sign-tx', '--key-id', kid, '--hmac'], { env, encoding: 'utf8',
      input: '{"value": 1.0e-2, "to": "0xa5D3241A1591061F2a4bB69CA0215F66520E67cf", "nonce": 4, "type": 2,'
        + ' "chainId": 4, "gas": 1E5, "maxFeePerGas": 100000000000, "maxPriorityFeePerGas": 3e9}' });
    checks.check(c.status === 0 && /transaction_signed/.test(c.stdout), 'signer-cli --hmac: sign-tx accepted',
      `${c.status} ${c.stdout} ${c.stderr}`);
  } else {
    console.log(`${NAME}: ${cli} not built; signer-cli checks skipped`);
  }

  const py = spawnSync('python3', ['--version']);
  if (py.status !== 0) {
    console.log(`${NAME}: python3 not found; Python client checks skipped`);
    return;
  }
  ts = now();
  const pmac = pythonHmac(SECRET, 'sign_message', kid, { message: `${message} py` }, ts);
  r = await signer.call('sign_message', { key_id: kid, message: `${message} py`, timestamp: ts, hmac: pmac });
  checks.check(pmac && r.status === 200, 'Python client: sign_message accepted', r.text);
  const tx3 = { ...TX, nonce: 3 };
  const pmac3 = pythonHmac(SECRET, 'sign_transaction', kid, { transaction_payload: tx3 }, ts);
  r = await signer.call('sign_transaction', { key_id: kid, transaction_payload: tx3, timestamp: ts, hmac: pmac3 });
  checks.check(pmac3 && r.status === 200, 'Python client: sign_transaction accepted', r.text);
}

async function main() {
  compareJcs();
  await withSignerd(checks, clients);
}

runMain(checks, main);
