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
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SRCDIR = path.resolve(process.env.SIGNER_SRCDIR || path.join(HERE, '..', '..'));
export const BUILDDIR = path.resolve(process.env.SIGNER_BUILDDIR || SRCDIR);
const VERBOSE = process.env.INTEROP_VERBOSE === '1';

// ------------------------------------------------------------ child processes

import { children, tempDirs, killAll, watchdog, setup } from '../lib/procs.mjs';

setup('interop');
export { watchdog, killAll };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves to a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

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
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') {
      reject(new Error(`refusing non-loopback URL ${url}`));
      return;
    }
    const data = body === undefined ? null
      : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
    const req = http.request({
      agent, method, hostname: u.hostname, port: u.port, path: u.pathname + u.search,
      headers: {
        Accept: 'application/json',
        ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}),
        ...headers,
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
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

// -------------------------------------------------------------- checks

/**
 * A tiny check counter.  ok(name) / fail(name, details) count and print;
 * finish() prints `NAME: N passed, M failed` and returns the exit status.
 */
export class Checks {
  constructor(name) {
    this.name = name;
    this.passed = 0;
    this.failed = 0;
    this.failures = [];
    this.printedDetails = 0;
  }

  ok(what) {
    this.passed++;
    if (VERBOSE) console.log(`  ok   ${what}`);
  }

  fail(what, details) {
    this.failed++;
    this.failures.push(what);
    console.log(`  FAIL ${what}`);
    if (details !== undefined && this.printedDetails < 25) {
      this.printedDetails++;
      const text = typeof details === 'string' ? details : JSON.stringify(details, null, 2);
      console.log(text.split('\n').map((l) => `       ${l}`).join('\n'));
    } else if (details !== undefined && this.printedDetails === 25) {
      this.printedDetails++;
      console.log('       (further failure details suppressed)');
    }
  }

  /** Counts one check: passes when cond is truthy. */
  check(cond, what, details) {
    if (cond) this.ok(what); else this.fail(what, typeof details === 'function' ? details() : details);
    return !!cond;
  }

  /** Counts a check that must not throw; returns fn's value or undefined. */
  async run(what, fn) {
    try {
      const v = await fn();
      return v;
    } catch (e) {
      this.fail(what, e && e.stack ? e.stack : String(e));
      return undefined;
    }
  }

  finish() {
    if (this.failures.length) {
      console.log(`${this.name}: failed checks:`);
      for (const f of this.failures.slice(0, 50)) console.log(`  - ${f}`);
      if (this.failures.length > 50) console.log(`  ... and ${this.failures.length - 50} more`);
    }
    console.log(`${this.name}: ${this.passed} passed, ${this.failed} failed`);
    return this.failed === 0 && this.passed > 0 ? 0 : 1;
  }
}

/** Runs async tasks with at most `limit` in flight; keeps result order. */
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}
