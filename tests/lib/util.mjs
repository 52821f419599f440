// Small helpers of the Node test suites (interop, hardening): sleeping, a
// free loopback port, bounded concurrency, one HTTP request.  Built-in
// modules only.

import http from 'node:http';
import net from 'node:net';

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

/** Runs fn over items with at most `limit` in flight; keeps result order. */
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/**
 * One HTTP request to host:port (loopback).  body: undefined (none), a
 * string or Buffer (sent as is) or any other value (sent as JSON).  agent:
 * an http.Agent, or false for a fresh connection.  Resolves to {status,
 * headers, text, json}; json is null when the answer is not JSON.
 */
export function httpOnce({
  method, host = '127.0.0.1', port, path, body, headers = {}, agent = false, timeoutMs = 10000,
}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null
      : Buffer.isBuffer(body) ? body
        : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
    const req = http.request({
      agent, method, host, port, path,
      headers: {
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
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${host}:${port}${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}
