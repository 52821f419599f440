// Shared helpers of the hardening tests: start signerd
// with a chosen config on free loopback ports, talk raw HTTP and frames to
// it, read its JSON-lines log, count checks, and make sure every process we
// start is killed (by PID) and every temp dir removed when we exit.
//
// Node 20, built-in modules only.  Environment (as set by `make check`):
//   SIGNER_SRCDIR    source tree (default: three levels above this file)
//   SIGNER_BUILDDIR  build tree with signerd and plugins/.libs (default: SRCDIR)
//   SIGNERD          signerd binary (default: $SIGNER_BUILDDIR/signerd)
//   HARDENING_VERBOSE=1  print passing checks and copy signerd's stderr
//   HARDENING_KEEP=1     keep temp dirs (data dirs, configs, logs)

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SRCDIR = path.resolve(process.env.SIGNER_SRCDIR || path.join(HERE, '..', '..', '..'));
export const BUILDDIR = path.resolve(process.env.SIGNER_BUILDDIR || SRCDIR);
export const SIGNERD = process.env.SIGNERD || path.join(BUILDDIR, 'signerd');
export const PLUGIN_DIR = path.join(BUILDDIR, 'plugins', '.libs');
export const STANDALONE_CONF = path.join(SRCDIR, 'conf', 'standalone.conf');
export const VERBOSE = process.env.HARDENING_VERBOSE === '1';
const KEEP = process.env.HARDENING_KEEP === '1';

// ------------------------------------------------------------ cleanup

import { children, tempDirs, killAll, watchdog, setup } from '../../lib/procs.mjs';
import { Checks as BaseChecks } from '../../lib/checks.mjs';
import { freePort, httpOnce, pool, sleep } from '../../lib/util.mjs';

setup('hardening', { keep: KEEP });
export { watchdog, killAll, freePort, pool, sleep };

export function tempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `hardening-${prefix}-`));
  tempDirs.add(d);
  return d;
}

// ------------------------------------------------------------ checks

/**
 * The check counter (tests/lib/checks.mjs) as the hardening tests print it:
 * passing checks with HARDENING_VERBOSE=1, at most 30 lines of a failure's
 * details.
 */
export class Checks extends BaseChecks {
  constructor(name) {
    super(name, { verbose: VERBOSE, maxLines: 30 });
  }
}

// ------------------------------------------------------------ config

/** libconfig text of a limits group. */
function limitsText(limits) {
  return Object.entries(limits).map(([k, v]) => `    ${k} = ${v};`).join('\n');
}

/**
 * Writes a minimal config (eth plugin only) to dir/signerd.conf and returns
 * its path.  opts: {logLevel, workers, limits: {...}, extra: "libconfig text"}
 */
export function writeConfig(dir, { logLevel = 'info', workers = 2, limits = {}, extra = '' } = {}) {
  const file = path.join(dir, 'signerd.conf');
  const text = [
    '# written by tests/integration/hardening',
    `log_level = "${logLevel}";`,
    `workers = ${workers};`,
    'plugins = ( { name = "eth"; } );',
    'limits = {',
    limitsText(limits),
    '};',
    extra,
    '',
  ].join('\n');
  fs.writeFileSync(file, text);
  return file;
}

// ------------------------------------------------------------ signerd

/**
 * Starts signerd and waits (bounded) for GET /healthz 200.
 * opts: {conf, dataDir, logLevel, workers, frames (bool), readyTimeoutMs,
 *        port, framesPort (reuse ports, e.g. after a restart)}
 * Returns a handle: {port, framesPort, pid, child, dataDir, conf, log (every
 * stderr line so far), logText(), exited (promise), alive, signal(sig),
 * kill9(), stop()}.
 */
export async function startSignerd(opts = {}) {
  const {
    conf = STANDALONE_CONF, logLevel, workers, frames = true, readyTimeoutMs = 15000,
  } = opts;
  for (const [what, f] of [['signerd binary', SIGNERD], ['config', conf], ['plugin dir', PLUGIN_DIR]]) {
    if (!fs.existsSync(f)) throw new Error(`${what} not found: ${f} (build first, or set SIGNER_BUILDDIR/SIGNER_SRCDIR)`);
  }
  const dataDir = opts.dataDir || tempDir('data');
  let lastErr = null;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = opts.port || await freePort();
    const framesPort = frames ? (opts.framesPort || await freePort()) : null;
    const args = ['-c', conf, '--listen', `127.0.0.1:${port}`];
    if (frames) args.push('--listen', `frames=127.0.0.1:${framesPort}`);
    args.push('--data-dir', dataDir, '--plugin-dir', PLUGIN_DIR);
    if (logLevel) args.push('--log-level', logLevel);
    if (workers !== undefined) args.push('--workers', String(workers));
    const child = spawn(SIGNERD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const h = makeHandle(child, { port, framesPort, dataDir, conf });
    const deadline = Date.now() + readyTimeoutMs;
    let ready = false;
    while (Date.now() < deadline && h.alive) {
      try {
        const r = await request(port, 'GET', '/healthz', undefined, { timeoutMs: 1000 });
        if (r.status === 200) { ready = true; break; }
      } catch { /* not yet */ }
      await sleep(50);
    }
    if (ready) return h;
    lastErr = new Error(`signerd did not become ready (${JSON.stringify(h.exitInfo || 'timeout')}):\n  ${h.log.slice(-20).join('\n  ')}`);
    await h.kill9();
    const inUse = /address already in use|EADDRINUSE/i.test(h.logText());
    if (!inUse || opts.port) break;
  }
  throw lastErr;
}

function makeHandle(child, { port, framesPort, dataDir, conf }) {
  const h = {
    port, framesPort, dataDir, conf, child, pid: child.pid,
    log: [],          // complete stderr, line by line
    rawLog: [],       // stdout + stderr chunks, unsplit (for secret greps)
    exitInfo: null,
    get alive() { return h.exitInfo === null; },
    logText() { return h.rawLog.map((b) => b.toString('latin1')).join(''); },
    signal(sig) { process.kill(child.pid, sig); },
    async kill9() {
      if (h.alive) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }
      await Promise.race([h.exited, sleep(5000)]);
    },
    async stop(graceMs = 5000) {
      if (!h.alive) return h.exitInfo;
      try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
      const r = await Promise.race([h.exited, sleep(graceMs).then(() => null)]);
      if (r === null) await h.kill9();
      return h.exitInfo;
    },
    /** Resolves to the first log line (parsed) matching pred, or null after timeoutMs. */
    async waitLog(pred, timeoutMs = 3000, from = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (let i = from; i < h.log.length; i++) {
          let j = null;
          try { j = JSON.parse(h.log[i]); } catch { /* not JSON */ }
          if (pred(j, h.log[i])) return j || h.log[i];
        }
        if (Date.now() >= deadline) return null;
        await sleep(25);
      }
    },
  };
  let partial = '';
  child.stderr.on('data', (b) => {
    h.rawLog.push(b);
    partial += b.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const l of lines) {
      h.log.push(l);
      if (VERBOSE) process.stderr.write(`[signerd ${child.pid}] ${l}\n`);
    }
  });
  child.stdout.on('data', (b) => { h.rawLog.push(b); });
  h.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (partial) { h.log.push(partial); partial = ''; }
      h.exitInfo = { code, signal };
      resolve(h.exitInfo);
    });
    child.on('error', (e) => {
      children.delete(child);
      h.exitInfo = { code: null, signal: null, error: String(e) };
      resolve(h.exitInfo);
    });
  });
  return h;
}

// ------------------------------------------------------------ HTTP

/**
 * One HTTP request on a fresh connection (no keep-alive pooling).  body:
 * undefined, a string/Buffer (sent as is) or a value (sent as JSON).
 * Resolves to {status, headers, text, json}.
 */
export function request(port, method, p, body, { timeoutMs = 10000, headers = {} } = {}) {
  return httpOnce({ method, port, path: p, body, headers, timeoutMs });
}

/** POST / {operation, payload}. */
export function call(port, operation, payload, opts) {
  return request(port, 'POST', '/', { operation, payload }, opts);
}

/** Parses one HTTP response at the start of buf; null if incomplete. */
export function parseResponse(buf) {
  const he = buf.indexOf('\r\n\r\n');
  if (he < 0) return null;
  const head = buf.subarray(0, he).toString('latin1');
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) return { status: -1, headers: {}, text: head, json: null, length: buf.length };
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const status = Number(m[1]);
  if (status === 100) {
    const rest = parseResponse(buf.subarray(he + 4));
    return rest ? { ...rest, length: rest.length + he + 4 } : null;
  }
  const cl = Number(headers['content-length'] || 0);
  if (buf.length < he + 4 + cl) return null;
  const text = buf.subarray(he + 4, he + 4 + cl).toString('utf8');
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status, headers, text, json, length: he + 4 + cl };
}

/**
 * Writes raw bytes on a fresh connection and reads one response.  Resolves
 * to {status, headers, text, json} or, when the server closed without a
 * complete answer, {status: 0, closed: true, error}.  Never rejects.
 * opts.writeChunks: an array of Buffers written in turn (e.g. to send the
 * head before a large body); opts.endAfterWrite half-closes after writing.
 */
export function rawRequest(port, data, { timeoutMs = 10000, endAfterWrite = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      sock.destroy();
      resolve(r);
    };
    const t = setTimeout(() => finish({ status: 0, timedOut: true, raw: buf.toString('latin1') }), timeoutMs);
    sock.on('connect', () => {
      sock.write(Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'), () => {
        if (endAfterWrite) sock.end();
      });
    });
    sock.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      const r = parseResponse(buf);
      if (r) finish(r);
    });
    sock.on('error', (e) => {
      const r = parseResponse(buf);
      finish(r || { status: 0, closed: true, error: e.code || String(e), raw: buf.toString('latin1') });
    });
    sock.on('close', () => {
      const r = parseResponse(buf);
      finish(r || { status: 0, closed: true, raw: buf.toString('latin1') });
    });
  });
}

/** An HTTP/1.1 request as raw bytes. */
export function rawHttp(method, p, body, extraHeaders = '') {
  const b = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const head = `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extraHeaders}` +
    (b ? `Content-Type: application/json\r\nContent-Length: ${b.length}\r\n` : '') + '\r\n';
  return b ? Buffer.concat([Buffer.from(head, 'latin1'), b]) : Buffer.from(head, 'latin1');
}

/**
 * A raw keep-alive connection.  send(buf) writes; next(timeoutMs) resolves
 * to the next parsed response, or {status: 0, closed: true} once the server
 * closed.  closedAt is the time (ms) the server closed, else null.
 */
export function openConn(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const c = {
      sock, buf: Buffer.alloc(0), closed: false, closedAt: null, error: null, waiters: [],
      send(data) { if (!c.closed) sock.write(data); },
      pump() {
        while (c.waiters.length) {
          const r = parseResponse(c.buf);
          if (r) {
            c.buf = c.buf.subarray(r.length);
            c.waiters.shift()(r);
          } else if (c.closed) {
            c.waiters.shift()({ status: 0, closed: true, error: c.error });
          } else break;
        }
      },
      next(timeoutMs = 10000) {
        return new Promise((res) => {
          let settled = false;
          const t = setTimeout(() => {
            if (settled) return;
            settled = true;
            const i = c.waiters.indexOf(w);
            if (i >= 0) c.waiters.splice(i, 1);
            res({ status: 0, timedOut: true });
          }, timeoutMs);
          const w = (r) => { if (!settled) { settled = true; clearTimeout(t); res(r); } };
          c.waiters.push(w);
          c.pump();
        });
      },
      /** Resolves true once the server closed, false after timeoutMs. */
      waitClosed(timeoutMs) {
        if (c.closed) return Promise.resolve(true);
        return new Promise((res) => {
          const t = setTimeout(() => res(false), timeoutMs);
          sock.once('close', () => { clearTimeout(t); res(true); });
        });
      },
      destroy() { sock.destroy(); },
    };
    sock.on('connect', () => resolve(c));
    sock.on('data', (d) => { c.buf = Buffer.concat([c.buf, d]); c.pump(); });
    sock.on('error', (e) => { c.error = e.code || String(e); if (!c.closedAt) c.closedAt = Date.now(); });
    sock.on('close', () => {
      c.closed = true;
      if (!c.closedAt) c.closedAt = Date.now();
      c.pump();
    });
    sock.once('error', (e) => { if (!c.sockConnected) reject(e); });
    sock.once('connect', () => { c.sockConnected = true; });
  });
}

// ------------------------------------------------------------ frames

export function frame(obj) {
  const body = Buffer.isBuffer(obj) ? obj : Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj), 'utf8');
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32BE(body.length, 0);
  return Buffer.concat([hdr, body]);
}

/**
 * A frames connection: send(obj|Buffer) writes one frame, sendRaw(buf)
 * writes bytes; responses (parsed JSON) accumulate in `answers`; waitAnswers(n,
 * timeoutMs) resolves once n have arrived (or the time is up / the server
 * closed).
 */
export function openFrames(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const c = {
      sock, buf: Buffer.alloc(0), answers: [], closed: false, closedAt: null,
      send(obj) { sock.write(frame(obj)); },
      sendRaw(b) { sock.write(b); },
      async waitAnswers(n, timeoutMs = 10000) {
        const deadline = Date.now() + timeoutMs;
        while (c.answers.length < n && !c.closed && Date.now() < deadline) await sleep(5);
        return c.answers.length >= n;
      },
      waitClosed(timeoutMs) {
        if (c.closed) return Promise.resolve(true);
        return new Promise((res) => {
          const t = setTimeout(() => res(false), timeoutMs);
          sock.once('close', () => { clearTimeout(t); res(true); });
        });
      },
      destroy() { sock.destroy(); },
    };
    sock.on('data', (d) => {
      c.buf = Buffer.concat([c.buf, d]);
      while (c.buf.length >= 4) {
        const n = c.buf.readUInt32BE(0);
        if (c.buf.length < 4 + n) break;
        const t = c.buf.subarray(4, 4 + n).toString('utf8');
        c.buf = c.buf.subarray(4 + n);
        let j = null;
        try { j = JSON.parse(t); } catch { j = { unparsable: t }; }
        c.answers.push(j);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => { c.closed = true; c.closedAt = Date.now(); });
    sock.once('connect', () => resolve(c));
    sock.once('error', reject);
  });
}

// ------------------------------------------------------------ metrics

export async function metrics(port) {
  const r = await request(port, 'GET', '/metrics', undefined, { timeoutMs: 5000 });
  if (r.status !== 200) throw new Error(`GET /metrics: HTTP ${r.status}`);
  const out = {};
  for (const l of r.text.split('\n')) {
    if (!l || l.startsWith('#')) continue;
    const i = l.lastIndexOf(' ');
    out[l.slice(0, i)] = Number(l.slice(i + 1));
  }
  return out;
}

export async function keyCount(port) {
  const m = await metrics(port);
  if (!('signer_keys' in m)) throw new Error('GET /metrics has no signer_keys');
  return m.signer_keys;
}

// ------------------------------------------------------------ sqlite3 CLI

export const HAVE_SQLITE3 = spawnSync('sqlite3', ['-version'], { stdio: 'ignore' }).status === 0;

/** Runs the sqlite3 CLI read-only; returns stdout (throws on failure). */
export function sqlite(dbFile, sql, extraArgs = []) {
  const r = spawnSync('sqlite3', ['-readonly', ...extraArgs, dbFile, sql], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(`sqlite3 ${sql}: ${r.stderr || r.error}`);
  return r.stdout;
}

// ------------------------------------------------------------ Ethereum bits

// Keccak-256 (the original Keccak padding, as Ethereum uses), on BigInt lanes.
const RC = [
  0x0000000000000001n, 0x0000000000008082n, 0x800000000000808an, 0x8000000080008000n,
  0x000000000000808bn, 0x0000000080000001n, 0x8000000080008081n, 0x8000000000008009n,
  0x000000000000008an, 0x0000000000000088n, 0x0000000080008009n, 0x000000008000000an,
  0x000000008000808bn, 0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n,
  0x8000000000008002n, 0x8000000000000080n, 0x000000000000800an, 0x800000008000000an,
  0x8000000080008081n, 0x8000000000008080n, 0x0000000080000001n, 0x8000000080008008n,
];
const ROT = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14];
const M64 = (1n << 64n) - 1n;
const rotl = (x, n) => (n === 0 ? x : ((x << BigInt(n)) | (x >> BigInt(64 - n))) & M64);

function keccakF(s) {
  for (let round = 0; round < 24; round++) {
    const C = [0, 1, 2, 3, 4].map((x) => s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20]);
    for (let x = 0; x < 5; x++) {
      const d = C[(x + 4) % 5] ^ rotl(C[(x + 1) % 5], 1);
      for (let y = 0; y < 25; y += 5) s[y + x] ^= d;
    }
    const B = new Array(25);
    for (let x = 0; x < 5; x++) {
      for (let y = 0; y < 5; y++) B[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(s[x + 5 * y], ROT[x + 5 * y]);
    }
    for (let y = 0; y < 25; y += 5) {
      for (let x = 0; x < 5; x++) s[y + x] = B[y + x] ^ ((~B[y + (x + 1) % 5] & M64) & B[y + (x + 2) % 5]);
    }
    s[0] ^= RC[round];
  }
}

export function keccak256(data) {
  const rate = 136;
  const msg = Buffer.from(data);
  const padLen = rate - (msg.length % rate);
  const p = Buffer.alloc(msg.length + padLen);
  msg.copy(p);
  p[msg.length] ^= 0x01;
  p[p.length - 1] ^= 0x80;
  const s = new Array(25).fill(0n);
  for (let off = 0; off < p.length; off += rate) {
    for (let i = 0; i < rate / 8; i++) s[i] ^= p.readBigUInt64LE(off + 8 * i);
    keccakF(s);
  }
  const out = Buffer.alloc(32);
  for (let i = 0; i < 4; i++) out.writeBigUInt64LE(s[i], 8 * i);
  return out;
}

/** Lowercase 0x address of a private key (64 hex digits) via node:crypto ECDH. */
export function addressOf(privHex) {
  const ecdh = crypto.createECDH('secp256k1');
  ecdh.setPrivateKey(Buffer.from(privHex.replace(/^0x/i, ''), 'hex'));
  const pub = ecdh.getPublicKey(); // 0x04 || X || Y
  return '0x' + keccak256(pub.subarray(1)).subarray(12).toString('hex');
}

/** A random valid secp256k1 private key, 64 lowercase hex digits. */
export function randomPrivKey() {
  for (;;) {
    const k = crypto.randomBytes(32);
    const n = BigInt('0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141');
    const v = BigInt('0x' + k.toString('hex'));
    if (v > 0n && v < n) return k.toString('hex');
  }
}

/** A random secret of 64 hex digits (what the seed recommends). */
export function randomSecret() {
  return crypto.randomBytes(32).toString('hex');
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

