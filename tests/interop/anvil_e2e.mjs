// End to end against a real Ethereum node (anvil, chain id 31337): a key made
// by signerd's generate_key signs transactions of type 0, 1 (with an access
// list), 2 and a contract creation; each is broadcast with
// eth_sendRawTransaction and must be mined with status 1 from the key's
// address.  The node, not us, is the judge of the encoding and signature.
//
// If the build has signer-cli, the same is done once through the CLI, and its
// error and connection-failure exit codes are checked.
//
// Environment: lib.mjs' paths, ANVIL, SIGNER_CLI, INTEROP_VERBOSE=1.

import { getAddress, getCreateAddress, keccak256, Transaction, Wallet, parseEther } from 'ethers';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  BUILDDIR, Checks, freePort, runMain, waitReceipt, watchdog, withAnvilAndSignerd,
} from './lib.mjs';

const NAME = 'anvil_e2e';
watchdog(Number(process.env.INTEROP_TIME_LIMIT || 240), NAME);
const checks = new Checks(NAME);

const CHAIN_ID = 31337;
// Runtime code: return the 32-byte word 42 (PUSH1 42 PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN).
const RUNTIME = '0x602a60005260206000f3';
// Init code: PUSH10 <runtime> PUSH1 0 MSTORE PUSH1 10 PUSH1 22 RETURN
// (MSTORE right-aligns the 10 bytes in the word, at offsets 22..31).
const INIT_CODE = '0x69' + RUNTIME.slice(2) + '600052600a6016f3';

const hexq = (v) => '0x' + BigInt(v).toString(16);
const lc = (s) => (typeof s === 'string' ? s.toLowerCase() : s);

async function fees(anvil) {
  const block = await anvil.rpc('eth_getBlockByNumber', ['latest', false]);
  const base = BigInt(block.baseFeePerGas ?? '0x0');
  const gasPrice = BigInt(await anvil.rpc('eth_gasPrice'));
  let tip = 1000000000n;
  try { tip = BigInt(await anvil.rpc('eth_maxPriorityFeePerGas')); } catch { /* keep 1 gwei */ }
  if (tip === 0n) tip = 1n;
  return { base, gasPrice: gasPrice * 2n, maxFee: base * 2n + tip, tip };
}

/** Signs `payload` with signerd, broadcasts it, waits for the receipt and checks the basics. */
async function signSendCheck(signer, anvil, key, label, payload, expectType) {
  const r = await signer.call('sign_transaction', { key_id: key.key_id, secret: key.secret, transaction_payload: payload });
  if (!checks.check(r.status === 200 && r.result && typeof r.result.transaction_signed === 'string',
    `${label}: signerd signed`, () => ({ payload, answer: r.json ?? r.text }))) return null;
  const { transaction_signed: raw, transaction_hash: ourHash } = r.result;
  checks.check(keccak256(raw) === ourHash, `${label}: transaction_hash = keccak256(transaction_signed)`,
    () => ({ raw, ourHash }));
  let nodeHash;
  try {
    nodeHash = await anvil.rpc('eth_sendRawTransaction', [raw]);
  } catch (e) {
    checks.fail(`${label}: anvil accepted eth_sendRawTransaction`, { payload, raw, error: e.message });
    return null;
  }
  checks.check(lc(nodeHash) === lc(ourHash), `${label}: node's tx hash equals signerd's transaction_hash`,
    () => ({ node: nodeHash, signerd: ourHash }));
  const rc = await waitReceipt(anvil, nodeHash);
  checks.check(rc.status === '0x1' && lc(rc.from) === lc(key.address) && Number(rc.type) === expectType,
    `${label}: mined with status 1, type ${expectType}, from the key's address`,
    () => ({ payload, receipt: rc, key_address: key.address }));
  return { raw, hash: nodeHash, receipt: rc };
}

async function runCli(args, { env = {}, input, timeoutMs = 30000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(args[0], args.slice(1), { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('close', (code) => { clearTimeout(t); resolve({ code, out, err }); });
    child.on('error', (e) => { clearTimeout(t); resolve({ code: -1, out, err: String(e) }); });
    if (input !== undefined) child.stdin.end(input); else child.stdin.end();
  });
}

async function fund(anvil, to, wei) {
  const [dev] = await anvil.rpc('eth_accounts');
  const h = await anvil.rpc('eth_sendTransaction', [{ from: dev, to, value: hexq(wei) }]);
  const rc = await waitReceipt(anvil, h);
  if (rc.status !== '0x1') throw new Error(`funding ${to} failed: ${JSON.stringify(rc)}`);
}

async function cliChecks(signer, anvil) {
  const cli = process.env.SIGNER_CLI || path.join(BUILDDIR, 'signer-cli');
  if (!fs.existsSync(cli)) {
    console.log(`${NAME}: ${cli} not built; skipping the signer-cli checks`);
    return;
  }
  const secret = crypto.randomBytes(32).toString('hex');
  const env = { SIGNER_URL: signer.url, SIGNER_SECRET: secret };
  const noLeak = (res, label) => checks.check(!res.out.includes(secret) && !res.err.includes(secret),
    `cli ${label}: secret not printed`);

  const h = await runCli([cli, 'health'], { env });
  checks.check(h.code === 0, 'cli health: exit 0', () => h);

  const g = await runCli([cli, 'generate-key'], { env });
  let gen = null;
  try { gen = JSON.parse(g.out); } catch { /* checked below */ }
  if (!checks.check(g.code === 0 && gen && gen.key_id && /^0x[0-9a-fA-F]{40}$/.test(gen.address ?? ''),
    'cli generate-key (secret from SIGNER_SECRET): prints {key_id, address}', () => g)) return;
  noLeak(g, 'generate-key');

  // set-key from stdin: the address is ethers' address of the key.
  const w = Wallet.createRandom();
  const sk = await runCli([cli, '--url', signer.url, 'set-key', '--secret', secret], { input: w.privateKey.slice(2) + '\n' });
  let imp = null;
  try { imp = JSON.parse(sk.out); } catch { /* checked below */ }
  checks.check(sk.code === 0 && imp && lc(imp.address) === lc(w.address),
    'cli set-key (key on stdin): address equals ethers\' address', () => ({ ...sk, expected: w.address }));
  checks.check(!sk.out.includes(w.privateKey.slice(2)) && !sk.err.includes(w.privateKey.slice(2)),
    'cli set-key: key not printed');

  await fund(anvil, gen.address, parseEther('1'));
  const f = await fees(anvil);
  const nonce = Number(BigInt(await anvil.rpc('eth_getTransactionCount', [gen.address, 'pending'])));
  const to = getAddress('0x' + crypto.randomBytes(20).toString('hex'));
  const txText = `{"type": 2, "chainId": ${CHAIN_ID}, "nonce": ${nonce}, "to": "${to}", "value": 0.25,
    "gas": 21000, "maxFeePerGas": "${f.maxFee}", "maxPriorityFeePerGas": "${f.tip}"}`;
  const s = await runCli([cli, 'sign-tx', '--key-id', gen.key_id], { env, input: txText });
  let signed = null;
  try { signed = JSON.parse(s.out); } catch { /* checked below */ }
  if (checks.check(s.code === 0 && signed && typeof signed.transaction_signed === 'string',
    'cli sign-tx (tx JSON on stdin): prints {transaction_signed, transaction_hash}', () => s)) {
    noLeak(s, 'sign-tx');
    try {
      const hsh = await anvil.rpc('eth_sendRawTransaction', [signed.transaction_signed]);
      const rc = await waitReceipt(anvil, hsh);
      const bal = BigInt(await anvil.rpc('eth_getBalance', [to, 'latest']));
      checks.check(rc.status === '0x1' && lc(rc.from) === lc(gen.address) && bal === parseEther('0.25')
        && lc(hsh) === lc(signed.transaction_hash),
      'cli sign-tx: mined, from the key, recipient got exactly 0.25 ether', () => ({ receipt: rc, balance: String(bal) }));
    } catch (e) {
      checks.fail('cli sign-tx: anvil accepted the transaction', e.message);
    }
  }

  const bad = await runCli([cli, 'sign-tx', '--key-id', gen.key_id, '--secret', secret + 'wrong'], { env: { SIGNER_URL: signer.url }, input: txText });
  checks.check(bad.code === 1 && /^error \(HTTP 4\d\d\): \S/m.test(bad.err),
    'cli sign-tx with a wrong secret: exit 1, "error (HTTP 4xx): message" on stderr', () => bad);
  const port = await freePort();
  const down = await runCli([cli, '--url', `http://127.0.0.1:${port}`, 'health']);
  checks.check(down.code === 2 && down.err.length > 0, 'cli against a closed port: exit 2 with a message', () => down);
  const uo = await runCli([cli, 'sign-userop', '--key-id', imp ? imp.key_id : 'x', '--hash', '0x' + '11'.repeat(32)], { env });
  const expected = w.signingKey.sign('0x' + '11'.repeat(32)).serialized;
  let uoRes = null;
  try { uoRes = JSON.parse(uo.out); } catch { /* checked below */ }
  checks.check(uo.code === 0 && uoRes && uoRes.signature === expected, 'cli sign-userop: signature identical to ethers',
    () => ({ ...uo, expected }));
  const msg = await runCli([cli, 'sign-message', '--key-id', imp ? imp.key_id : 'x', '--message', 'hello from signer-cli'], { env });
  const expMsg = await w.signMessage('hello from signer-cli');
  let msgRes = null;
  try { msgRes = JSON.parse(msg.out); } catch { /* checked below */ }
  checks.check(msg.code === 0 && msgRes && msgRes.signature === expMsg, 'cli sign-message: signature identical to ethers',
    () => ({ ...msg, expected: expMsg }));
}

async function main() {
  await withAnvilAndSignerd(checks, { chainId: CHAIN_ID }, async (signer, anvil) => {
    checks.check(BigInt(await anvil.rpc('eth_chainId')) === BigInt(CHAIN_ID), 'anvil chain id is 31337');

    const secret = crypto.randomBytes(32).toString('hex');
    const g = await signer.call('generate_key', { secret });
    if (!checks.check(g.status === 200 && g.result && g.result.key_id && /^0x[0-9a-fA-F]{40}$/.test(g.result.address ?? ''),
      'generate_key answered {key_id, address}', () => g.json ?? g.text)) {
      throw new Error('cannot continue without a key');
    }
    const key = { key_id: g.result.key_id, address: getAddress(g.result.address), secret };

    await fund(anvil, key.address, parseEther('100'));
    checks.check(BigInt(await anvil.rpc('eth_getBalance', [key.address, 'latest'])) === parseEther('100'),
      'the generated address was funded with 100 ether');

    const recipient = getAddress('0x' + crypto.randomBytes(20).toString('hex'));
    const balance = async (a) => BigInt(await anvil.rpc('eth_getBalance', [a, 'latest']));
    const nonceOf = async () => Number(BigInt(await anvil.rpc('eth_getTransactionCount', [key.address, 'pending'])));

    // Type 0 (legacy, EIP-155), value as a decimal wei string.
    {
      const f = await fees(anvil);
      const before = await balance(recipient);
      const value = 123456789012345678n;
      const res = await signSendCheck(signer, anvil, key, 'type 0', {
        type: 0, chainId: CHAIN_ID, nonce: await nonceOf(), to: recipient, value: value.toString(),
        gas: 21000, gasPrice: f.gasPrice.toString(),
      }, 0);
      if (res) {
        checks.check((await balance(recipient)) - before === value && BigInt(res.receipt.gasUsed) === 21000n,
          'type 0: recipient received exactly the value, gasUsed 21000');
        const tx = Transaction.from(res.raw);
        checks.check(tx.chainId === BigInt(CHAIN_ID) && tx.signature.networkV === BigInt(CHAIN_ID * 2 + 35 + tx.signature.yParity),
          'type 0: EIP-155 v encodes chain id 31337', () => ({ v: String(tx.signature.networkV) }));
      }
    }

    // Type 1 (EIP-2930) with a non-empty access list, value as 0x-hex wei.
    {
      const f = await fees(anvil);
      const before = await balance(recipient);
      const value = parseEther('0.5');
      const accessList = [{
        address: recipient.toLowerCase(),
        storageKeys: ['0x' + '00'.repeat(32), '0x' + '00'.repeat(31) + '01'],
      }];
      const res = await signSendCheck(signer, anvil, key, 'type 1', {
        type: 1, chainId: CHAIN_ID, nonce: await nonceOf(), to: recipient, value: '0x' + value.toString(16),
        gasLimit: 100000, gasPrice: '0x' + f.gasPrice.toString(16), accessList,
      }, 1);
      if (res) {
        const onchain = await anvil.rpc('eth_getTransactionByHash', [res.hash]);
        const norm = (al) => JSON.stringify((al || []).map((e) => ({ address: lc(e.address), storageKeys: e.storageKeys.map(lc) })));
        checks.check(norm(onchain.accessList) === norm(accessList), 'type 1: the node sees the access list we sent',
          () => ({ sent: accessList, node: onchain.accessList }));
        // 21000 + 2400 per address + 1900 per storage key (EIP-2930): proves the list was signed in.
        checks.check(BigInt(res.receipt.gasUsed) === 21000n + 2400n + 2n * 1900n,
          'type 1: gasUsed 27200 = 21000 + 2400 + 2*1900 (access list charged)', () => ({ gasUsed: res.receipt.gasUsed }));
        checks.check((await balance(recipient)) - before === value, 'type 1: recipient received exactly 0.5 ether');
      }
    }

    // Type 2 (EIP-1559), value as the seed's ether JSON number 0.01.
    {
      const f = await fees(anvil);
      const before = await balance(recipient);
      const res = await signSendCheck(signer, anvil, key, 'type 2', {
        type: 2, chainId: CHAIN_ID, nonce: await nonceOf(), to: recipient, value: 0.01,
        gas: 21000, maxFeePerGas: f.maxFee.toString(), maxPriorityFeePerGas: Number(f.tip),
      }, 2);
      if (res) {
        checks.check((await balance(recipient)) - before === 10n ** 16n, 'type 2: value 0.01 (JSON number) moved exactly 10^16 wei');
      }
    }

    // Contract creation: type 2 (default type), `to` absent, init code deploying RUNTIME.
    {
      const f = await fees(anvil);
      const nonce = await nonceOf();
      const res = await signSendCheck(signer, anvil, key, 'contract creation', {
        chainId: CHAIN_ID, nonce, gas: 200000, maxFeePerGas: f.maxFee.toString(), maxPriorityFeePerGas: f.tip.toString(),
        data: INIT_CODE,
      }, 2);
      if (res) {
        const expectedAddr = getCreateAddress({ from: key.address, nonce });
        const addr = res.receipt.contractAddress;
        checks.check(res.receipt.to === null && lc(addr) === lc(expectedAddr),
          'contract creation: receipt.contractAddress = CREATE(address, nonce)', () => ({ receipt: res.receipt, expected: expectedAddr }));
        const code = addr ? await anvil.rpc('eth_getCode', [addr, 'latest']) : null;
        checks.check(lc(code) === RUNTIME, 'contract creation: eth_getCode equals the runtime bytes', () => ({ code, expected: RUNTIME }));
        const out = addr ? await anvil.rpc('eth_call', [{ to: addr, data: '0x' }, 'latest']) : null;
        checks.check(out !== null && BigInt(out) === 42n, 'contract creation: calling the contract returns 42', () => ({ out }));
      }
    }

    // Contract creation with `to: null` as well (legacy type 0).
    {
      const f = await fees(anvil);
      const nonce = await nonceOf();
      const res = await signSendCheck(signer, anvil, key, 'contract creation (to null, type 0)', {
        type: 0, chainId: CHAIN_ID, nonce, to: null, gas: 200000, gasPrice: f.gasPrice.toString(), input: INIT_CODE,
      }, 0);
      if (res) {
        const addr = res.receipt.contractAddress;
        const code = addr ? await anvil.rpc('eth_getCode', [addr, 'latest']) : null;
        checks.check(lc(addr) === lc(getCreateAddress({ from: key.address, nonce })) && lc(code) === RUNTIME,
          'contract creation (to null): deployed the runtime at CREATE(address, nonce)', () => ({ receipt: res.receipt, code }));
      }
    }

    // A wrong secret signs nothing.
    {
      const r = await signer.call('sign_transaction', { key_id: key.key_id, secret: secret + 'x',
        transaction_payload: { chainId: CHAIN_ID, nonce: 0, to: recipient, gas: 21000, maxFeePerGas: 1, maxPriorityFeePerGas: 1 } });
      checks.check(r.status >= 400 && r.status < 500 && !(r.result && r.result.transaction_signed),
        'wrong secret: 4xx and no signature', () => r.json ?? r.text);
    }

    await cliChecks(signer, anvil);
  });
}

runMain(checks, main);
