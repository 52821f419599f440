// Shared set-up of the JSON-RPC endpoint tests (rpc_ethers.mjs, rpc_viem.mjs):
// anvil (--hardfork prague) as the downstream node, signerd started with
// SIGNER_RPC_DOWNSTREAM pointing at it (and a short rpc_timeout_ms through a
// config copy), a key made by signerd and funded on anvil.  The clients talk
// ONLY to signerd's POST /rpc.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, httpRequest, signerdPaths, startAnvil, startSignerd } from './lib.mjs';
import { tempDirs } from '../lib/procs.mjs';

export const SECRET = 'rpc interop secret 0123456789';
export const RPC_TIMEOUT_MS = 1500;

/** A config copy whose eth settings carry extra lines (e.g. rpc_timeout_ms). */
function confWith(extra) {
  const base = fs.readFileSync(signerdPaths().conf, 'utf8');
  const out = base.replace('verify_signatures = true;', `verify_signatures = true;\n${extra}`);
  if (out === base) throw new Error('conf: eth settings not found');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signer-rpc-conf-'));
  tempDirs.add(dir);
  const f = path.join(dir, 'signerd.conf');
  fs.writeFileSync(f, out);
  return f;
}

/** Starts signerd with downstream (URL or null) and settings lines. */
export async function startSignerdRpc(downstream, extra = '') {
  const saved = { conf: process.env.SIGNER_CONF, ds: process.env.SIGNER_RPC_DOWNSTREAM };
  process.env.SIGNER_CONF = confWith(`rpc_timeout_ms = ${RPC_TIMEOUT_MS};\n${extra}`);
  if (downstream) process.env.SIGNER_RPC_DOWNSTREAM = downstream;
  else delete process.env.SIGNER_RPC_DOWNSTREAM;
  try {
    return await startSignerd();
  } finally {
    if (saved.conf === undefined) delete process.env.SIGNER_CONF; else process.env.SIGNER_CONF = saved.conf;
    if (saved.ds === undefined) delete process.env.SIGNER_RPC_DOWNSTREAM;
    else process.env.SIGNER_RPC_DOWNSTREAM = saved.ds;
  }
}

/** A key made by signerd: {key_id, address, secret, basic, bearer}. */
export async function makeKey(signer) {
  const r = await signer.call('generate_key', { secret: SECRET });
  if (r.status !== 200) throw new Error(`generate_key: ${r.text}`);
  const { key_id, address } = r.result;
  return {
    key_id, address, secret: SECRET,
    basic: 'Basic ' + Buffer.from(`${key_id}:${SECRET}`).toString('base64'),
    bearer: `Bearer ${key_id}:${SECRET}`,
  };
}

/** anvil + signerd (downstream anvil) + a funded key. */
export async function startStack() {
  const anvil = await startAnvil({ extraArgs: ['--hardfork', 'prague'] });
  const signer = await startSignerdRpc(anvil.url);
  const key = await makeKey(signer);
  await anvil.rpc('anvil_setBalance', [key.address, '0x56bc75e2d63100000']); // 100 ether
  return { anvil, signer, key, rpcUrl: `${signer.url}/rpc` };
}

/**
 * Starts the stack, runs each [what, fn(stack)] as one check (an exception
 * fails it), stops the stack and exits with the checks' status; a stack
 * that does not start fails 'set-up'.
 */
export async function runOnStack(checks, steps) {
  let stack;
  try {
    stack = await startStack();
    for (const [what, fn] of steps) await checks.run(what, () => fn(stack));
  } catch (e) {
    checks.fail('set-up', e && e.stack ? e.stack : String(e));
  } finally {
    if (stack) {
      await stack.signer.stop();
      await stack.anvil.stop();
    }
  }
  process.exit(checks.finish());
}

/** POST /rpc with a body and headers; {status, text, json, ms}. */
export async function rpcPost(rpcUrl, body, headers = {}) {
  const t0 = Date.now();
  const r = await httpRequest('POST', rpcUrl, body, { headers, timeoutMs: 30000 });
  r.ms = Date.now() - t0;
  return r;
}

/** A TCP server that accepts and never answers (a hung node); {url, close}. */
export async function blackHole() {
  const port = await freePort();
  const socks = new Set();
  const srv = net.createServer((s) => { socks.add(s); s.on('error', () => {}); });
  await new Promise((res) => srv.listen(port, '127.0.0.1', res));
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => { for (const s of socks) s.destroy(); return new Promise((res) => srv.close(res)); },
  };
}

/** The EIP-712 example used by both scripts. */
export const TYPED = {
  domain: { name: 'Ether Mail', version: '1', chainId: 31337, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' },
  types: {
    Person: [{ name: 'name', type: 'string' }, { name: 'wallet', type: 'address' }],
    Mail: [{ name: 'from', type: 'Person' }, { name: 'to', type: 'Person' }, { name: 'contents', type: 'string' }],
  },
  primaryType: 'Mail',
  message: {
    from: { name: 'Cow', wallet: '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826' },
    to: { name: 'Bob', wallet: '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB' },
    contents: 'Hello, Bob!',
  },
};
