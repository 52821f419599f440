// Shared helpers for the interop tests: start/stop signerd and anvil on free
// loopback ports, call them over HTTP, count checks, and make sure every
// process we start dies with us.
//
// Paths come from the environment (as set by `make check`):
//   SIGNER_SRCDIR    source tree (default: two levels above this file)
//   SIGNER_BUILDDIR  build tree holding signerd and plugins/.libs (default: SIGNER_SRCDIR)
//   SIGNERD          signerd binary      (default: $SIGNER_BUILDDIR/signerd)
//   SIGNER_CONF      config file         (default: $SIGNER_SRCDIR/conf/standalone.conf)
//   SIGNER_PLUGIN_DIR                    (default: $SIGNER_BUILDDIR/plugins/.libs)
//   ANVIL            anvil binary        (default: from node_modules)
//   INTEROP_VERBOSE=1 copies the servers' stderr to ours.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SRCDIR = path.resolve(process.env.SIGNER_SRCDIR || path.join(HERE, '..', '..'));
export const BUILDDIR = path.resolve(process.env.SIGNER_BUILDDIR || SRCDIR);
const VERBOSE = process.env.INTEROP_VERBOSE === '1';

// ------------------------------------------------------------ child processes

import { children, tempDirs, killAll, watchdog, setup } from '../lib/procs.mjs';
import { Checks as BaseChecks, runMain } from '../lib/checks.mjs';
import { freePort, httpOnce, pool, sleep } from '../lib/util.mjs';

setup('interop');
export { watchdog, killAll, freePort, pool, runMain, sleep };

/** Spawns a tracked child; keeps the last lines of its stderr/stdout. */
function spawnTracked(file, args, opts = {}) {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.add(child);
  child.logTail = [];
  child.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      child.exitInfo = { code, signal };
      resolve(child.exitInfo);
    });
    child.on('error', (e) => {
      children.delete(child);
      child.exitInfo = { code: null, signal: null, error: e };
      resolve(child.exitInfo);
    });
  });
  const keep = (chunk) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      child.logTail.push(line);
      if (child.logTail.length > 60) child.logTail.shift();
      if (VERBOSE) process.stderr.write(`[${path.basename(file)}] ${line}\n`);
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return child;
}

async function stopChild(child, graceMs = 3000) {
  if (!child || child.exitInfo) return;
  try { child.kill('SIGTERM'); } catch { /* ignore */ }
  const t = await Promise.race([child.exited, sleep(graceMs).then(() => null)]);
  if (t === null) {
    try { child.kill('SIGKILL'); } catch { /* ignore */ }
    await Promise.race([child.exited, sleep(2000)]);
  }
}

// ----------------------------------------------------------------- HTTP

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

/**
 * One HTTP request to a loopback URL.  body: undefined (no body), a string
 * (sent as is) or any other value (sent as JSON).  Resolves to
 * {status, text, json} where json is null when the answer is not JSON.
 */
export function httpRequest(method, url, body, { timeoutMs = 30000, headers = {} } = {}) {
  const u = new URL(url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') {
    return Promise.reject(new Error(`refusing non-loopback URL ${url}`));
  }
  return httpOnce({
    agent, method, host: u.hostname, port: u.port, path: u.pathname + u.search, body, timeoutMs,
    headers: { Accept: 'application/json', ...headers },
  });
}

// ---------------------------------------------------------------- signerd

export function signerdPaths() {
  return {
    bin: process.env.SIGNERD || path.join(BUILDDIR, 'signerd'),
    conf: process.env.SIGNER_CONF || path.join(SRCDIR, 'conf', 'standalone.conf'),
    pluginDir: process.env.SIGNER_PLUGIN_DIR || path.join(BUILDDIR, 'plugins', '.libs'),
  };
}

/**
 * Starts signerd on a free loopback port with a fresh temp data dir and waits
 * (bounded) until GET /healthz answers 200.  Returns an object with url,
 * call(), post(), get() and stop().
 */
export async function startSignerd({ extraArgs = [], readyTimeoutMs = 20000 } = {}) {
  const p = signerdPaths();
  for (const [what, f] of [['signerd binary', p.bin], ['config', p.conf], ['plugin dir', p.pluginDir]]) {
    if (!fs.existsSync(f)) throw new Error(`${what} not found: ${f} (build first, or set SIGNER_BUILDDIR/SIGNER_SRCDIR)`);
  }
  let lastErr = null;
  for (let attempt = 1; attempt <= 3; attempt++) {   // a port may be taken in between
    const port = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'signer-interop-'));
    tempDirs.add(dataDir);
    const args = ['-c', p.conf, '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir,
      '--plugin-dir', p.pluginDir, ...extraArgs];
    const child = spawnTracked(p.bin, args);
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + readyTimeoutMs;
    let ready = false;
    while (Date.now() < deadline && !child.exitInfo) {
      try {
        const r = await httpRequest('GET', `${url}/healthz`, undefined, { timeoutMs: 2000 });
        if (r.status === 200) { ready = true; break; }
      } catch { /* not listening yet */ }
      await sleep(100);
    }
    if (ready) {
      return makeSignerd(url, child, dataDir);
    }
    lastErr = child.exitInfo
      ? new Error(`signerd exited during start-up (${JSON.stringify(child.exitInfo)}):\n  ${child.logTail.join('\n  ')}`)
      : new Error(`signerd did not answer GET /healthz 200 within ${readyTimeoutMs} ms:\n  ${child.logTail.join('\n  ')}`);
    await stopChild(child);
    fs.rmSync(dataDir, { recursive: true, force: true });
    tempDirs.delete(dataDir);
    if (!child.exitInfo || !/address already in use|EADDRINUSE|bind/i.test(child.logTail.join('\n'))) break;
  }
  throw lastErr;
}

function makeSignerd(url, child, dataDir) {
  return {
    url,
    child,
    dataDir,
    get alive() { return !child.exitInfo; },
    logTail: () => child.logTail.slice(),
    /** POST / {operation, payload}; resolves to {status, text, json, result}. */
    async call(operation, payload) {
      const r = await httpRequest('POST', `${url}/`, { operation, payload });
      r.result = r.json && typeof r.json === 'object' ? r.json.enclave_result : undefined;
      return r;
    },
    /** POST to a path with a JSON (or raw string) body. */
    async post(p, body) {
      const r = await httpRequest('POST', `${url}${p}`, body);
      r.result = r.json && typeof r.json === 'object' && 'enclave_result' in r.json ? r.json.enclave_result : r.json;
      return r;
    },
    get(p) { return httpRequest('GET', `${url}${p}`); },
    async stop() {
      await stopChild(child);
      fs.rmSync(dataDir, { recursive: true, force: true });
      tempDirs.delete(dataDir);
    },
  };
}

// ------------------------------------------------------------------ anvil

export function anvilPath() {
  if (process.env.ANVIL) return process.env.ANVIL;
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch] || process.arch;
  return path.join(HERE, 'node_modules', '@foundry-rs', `anvil-${process.platform}-${arch}`, 'bin', 'anvil');
}

/**
 * Starts anvil on a free loopback port (chain id 31337) and waits, bounded,
 * until eth_chainId answers.  Returns {url, rpc(method, params), stop()}.
 */
export async function startAnvil({ chainId = 31337, readyTimeoutMs = 20000, extraArgs = [] } = {}) {
  const bin = anvilPath();
  if (!fs.existsSync(bin)) throw new Error(`anvil binary not found: ${bin} (run npm ci in ${HERE})`);
  let lastErr = null;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const child = spawnTracked(bin, ['--port', String(port), '--host', '127.0.0.1', '--silent',
      '--chain-id', String(chainId), ...extraArgs]);
    const url = `http://127.0.0.1:${port}`;
    let id = 0;
    const rpc = async (method, params = []) => {
      const r = await httpRequest('POST', url, { jsonrpc: '2.0', id: ++id, method, params });
      if (!r.json) throw new Error(`anvil ${method}: HTTP ${r.status}, non-JSON answer: ${r.text.slice(0, 200)}`);
      if (r.json.error) {
        const e = new Error(`anvil ${method}: ${JSON.stringify(r.json.error)}`);
        e.rpcError = r.json.error;
        throw e;
      }
      return r.json.result;
    };
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline && !child.exitInfo) {
      try {
        const cid = await rpc('eth_chainId');
        if (BigInt(cid) === BigInt(chainId)) {
          return {
            url, rpc, child,
            logTail: () => child.logTail.slice(),
            stop: () => stopChild(child),
          };
        }
      } catch { /* not up yet */ }
      await sleep(100);
    }
    lastErr = new Error(`anvil did not start (${JSON.stringify(child.exitInfo || 'timeout')}):\n  ${child.logTail.join('\n  ')}`);
    await stopChild(child);
  }
  throw lastErr;
}

/** Resolves to the receipt of transaction hash on anvil, polled within timeoutMs. */
export async function waitReceipt(anvil, hash, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await anvil.rpc('eth_getTransactionReceipt', [hash]);
    if (r) return r;
    await sleep(100);
  }
  throw new Error(`no receipt for ${hash} within ${timeoutMs} ms`);
}

// -------------------------------------------------------------- checks

/**
 * The check counter (tests/lib/checks.mjs) as the interop tests print it:
 * passing checks with INTEROP_VERBOSE=1, details of the first 25 failures,
 * at most 50 failures listed at the end.
 */
export class Checks extends BaseChecks {
  constructor(name) {
    super(name, { verbose: VERBOSE, maxDetails: 25, maxListed: 50 });
  }
}

/**
 * Starts signerd, runs body(signer), checks that signerd still runs, and
 * stops it (also when body throws).
 */
export async function withSignerd(checks, body) {
  const signer = await startSignerd();
  console.log(`${checks.name}: signerd at ${signer.url}`);
  try {
    await body(signer);
    checks.check(signer.alive, 'signerd still running at the end', () => signer.logTail().join('\n'));
  } finally {
    await signer.stop();
  }
}

/** withSignerd with an anvil (startAnvil(anvilOpts)) started first: body(signer, anvil). */
export async function withAnvilAndSignerd(checks, anvilOpts, body) {
  const anvil = await startAnvil(anvilOpts);
  console.log(`${checks.name}: anvil at ${anvil.url}`);
  try {
    await withSignerd(checks, (signer) => body(signer, anvil));
  } finally {
    await anvil.stop();
  }
}

// ------------------------------------------------------------------ PRNG

/** The run's seed: INTEROP_SEED (a uint32), or a random one. */
export function interopSeed() {
  return process.env.INTEROP_SEED !== undefined
    ? Number(process.env.INTEROP_SEED) >>> 0
    : crypto.randomBytes(4).readUInt32LE(0);
}

/**
 * sfc32 seeded from one uint32 (splitmix32 expansion): reproducible runs.
 * u32(); int(n) in [0, n); chance(p); pick(arr); bytes(n); hex(n) (0x and
 * 2n lowercase digits); bigBits(bits) uniform in [0, 2^bits).
 */
export function makeRng(seed) {
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split(), b = split(), c = split(), d = split();
  const u32 = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  const rng = {
    u32,
    int: (n) => Math.floor((u32() / 4294967296) * n),
    chance: (p) => u32() / 4294967296 < p,
    pick: (arr) => arr[Math.floor((u32() / 4294967296) * arr.length)],
    bytes: (n) => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = u32() & 0xff;
      return out;
    },
    hex: (n) => '0x' + Buffer.from(rng.bytes(n)).toString('hex'),
    bigBits: (bits) => {
      let v = 0n;
      for (let i = 0; i < bits; i += 32) v = (v << 32n) | BigInt(u32());
      return v >> BigInt(Math.ceil(bits / 32) * 32 - bits);
    },
  };
  return rng;
}
