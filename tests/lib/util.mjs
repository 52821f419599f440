// Small helpers of the Node test suites (interop, hardening): sleeping, a
// free loopback port, bounded concurrency.  Built-in modules only.

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
