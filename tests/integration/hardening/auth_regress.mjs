// Regression tests for two authentication defects found by the hardening
// work and fixed in engine/host.c (run by default).  AUTH_ONLY=lockout|replay
// (KNOWN_ONLY is accepted too).
//
// 1. lockout (was): the wrong-secret lockout (auth.max_failures,
// auth.lockout_seconds) lived in a 4096-slot table indexed by FNV-1a of the
// key_id (engine/host.c auth_record), and a failure for another key_id in the
// same slot wipes the entry.  Key ids are not secret and anyone may call
// generate_key, so an attacker makes keys until one shares the target's slot
// (about 4096 calls), then one wrong secret on their own key lifts the
// target's lockout; interleaving lets them guess the target's secret at full
// speed, never seeing 429.
//
// Expected: a key_id locked after max_failures wrong secrets stays locked
// (429) for lockout_seconds whatever happens to other keys.
//
// 2. replay (was): the HMAC replay memory was one table of 65536 slots probed 64 at
// a time (engine/host.c auth_replay_check), shared by all keys; when the
// probes find no free slot a fresh HMAC is refused as a replay (403), and
// h_key_open counts that 403 as a failed attempt toward the lockout.  One
// caller with its own key fills it in seconds (~45,000 valid HMAC requests
// within hmac_window), after which other users' fresh, valid HMAC requests
// are refused.  Expected: a fresh valid HMAC is accepted (or, if the memory
// is full, refused with a 503-class error that is not a replay and not an
// authentication failure).

import crypto from 'node:crypto';
import http from 'node:http';
import { Checks, watchdog, startSignerd, call, pool, randomSecret } from './common.mjs';
import { hmacHex } from '../../lib/hmac.mjs';

const NAME = 'auth_regress';
watchdog(100, NAME);
const checks = new Checks(NAME);

/** FNV-1a 32-bit of the key_id mod 4096: engine/host.c slot_of(). */
const slotOf = (s) => {
  let h = 2166136261;
  for (const c of Buffer.from(s)) h = Math.imul(h ^ c, 16777619) >>> 0;
  return h % 4096;
};

async function lockout() {
  const s = await startSignerd();
  const SA = randomSecret(), SB = randomSecret();
  const A = (await call(s.port, 'generate_key', { secret: SA })).json.enclave_result.key_id;
  // The old attack's key: one in the target's slot of the old table.  The
  // search is bounded (12,288 calls or 20 s; it fails to find one with
  // probability e^-3); the lockout no longer has slots (engine/auth.c keys
  // it by the whole (key_id, client) pair), so without a colliding key any
  // own key tests the same thing.
  let B = null, last = null, tries = 0;
  const t0 = Date.now();
  while (!B && tries < 12288 && Date.now() - t0 < 20000) {
    const ids = await pool(Array.from({ length: 64 }), 8, async () =>
      (await call(s.port, 'generate_key', { secret: SB })).json?.enclave_result?.key_id);
    tries += 64;
    last = ids.find((k) => k) || last;
    B = ids.find((k) => k && slotOf(k) === slotOf(A)) || null;
  }
  if (!checks.check(B || last, `an own key of the attacker (${B ? "in the target's old slot" : 'none in its old slot'}, ${tries} generate_key calls)`)) return;
  B = B || last;
  const wrongA = () => call(s.port, 'sign_message', { key_id: A, secret: randomSecret(), message: 'x' });
  const wrongB = () => call(s.port, 'sign_message', { key_id: B, secret: randomSecret(), message: 'x' });
  for (let i = 0; i < 5; i++) await wrongA();
  const locked = await call(s.port, 'sign_message', { key_id: A, secret: SA, message: 'x' });
  checks.check(locked.status === 429, 'after 5 wrong secrets the target is locked (429)', locked.text);
  await wrongB();
  const after = await call(s.port, 'sign_message', { key_id: A, secret: SA, message: 'x' });
  checks.check(after.status === 429, 'the target stays locked after a failure on another key in its slot', after.text);
  const st = [];
  for (let r = 0; r < 5; r++) {
    for (let i = 0; i < 4; i++) st.push((await wrongA()).status);
    await wrongB();
  }
  checks.check(st.filter((x) => x === 429).length >= 15, 'guessing interleaved with failures on the own key is throttled', st.join(','));
  await s.stop();
}

async function replay() {
  const s = await startSignerd({ workers: 2 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const post = (obj) => new Promise((res, rej) => {
    const b = Buffer.from(JSON.stringify(obj));
    const rq = http.request({ agent, host: '127.0.0.1', port: s.port, method: 'POST', path: '/', headers: { 'Content-Length': b.length } }, (r) => {
      const ch = [];
      r.on('data', (c) => ch.push(c));
      r.on('end', () => res({ status: r.statusCode, text: Buffer.concat(ch).toString() }));
    });
    rq.setTimeout(10000, () => rq.destroy(new Error('timeout')));
    rq.on('error', rej);
    rq.end(b);
  });
  const signH = (kid, sec) => {
    const uo = { userOpHash: crypto.randomBytes(32).toString('hex') };
    const ts = Math.floor(Date.now() / 1000);
    return post({ operation: 'sign_userop', payload: { key_id: kid, hmac: hmacHex(sec, 'sign_userop', kid, { transaction_payload: uo }, ts), timestamp: ts, transaction_payload: uo } });
  };
  const SA = randomSecret(), SV = randomSecret();
  const A = (await call(s.port, 'generate_key', { secret: SA })).json.enclave_result.key_id;   // the caller's own key
  const V = (await call(s.port, 'generate_key', { secret: SV })).json.enclave_result.key_id;   // someone else's
  const TOTAL = 70000;
  let n = 0, refused = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (n < TOTAL && Date.now() - t0 < 35000) {
      n++;
      const r = await signH(A, SA).catch(() => ({ status: 0 }));
      if (r.status !== 200) refused++;
    }
  }));
  checks.check(refused === 0, `${n} fresh valid HMAC requests (own key, ${Date.now() - t0} ms) are all accepted`, `${refused} refused`);
  const v = [];
  for (let i = 0; i < 8; i++) v.push(await signH(V, SV));
  checks.check(v.every((r) => r.status === 200), "then another key's fresh valid HMAC requests are accepted",
    v.map((r) => `${r.status} ${r.text.slice(0, 90)}`).join('\n'));
  await s.stop();
}

const only = process.env.AUTH_ONLY || process.env.KNOWN_ONLY;
for (const [name, fn] of Object.entries({ lockout, replay })) {
  if (only && only !== name) continue;
  await checks.run(`${name}: ran without an exception`, fn);
}
process.exit(checks.finish());
