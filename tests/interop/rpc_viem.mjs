// viem against signerd's JSON-RPC endpoint POST /rpc, and nothing else:
// createWalletClient({transport: http(url, {fetchOptions: {headers:
// {Authorization}}})}) with the key as a JSON-RPC account, downstream anvil
// --hardfork prague.  A transaction sent with eth_sendTransaction is mined
// from the key's address (status success); a message and typed data verify
// to the key with viem's verifyMessage / verifyTypedData; a batched transport
// works; a client without the header gets HTTP 401 and a JSON-RPC error.

import { createPublicClient, createWalletClient, http, parseEther, verifyMessage, verifyTypedData, getAddress } from 'viem';
import { foundry } from 'viem/chains';
import { Checks, watchdog } from './lib.mjs';
import { TYPED, rpcPost, runOnStack } from './rpc_lib.mjs';

const NAME = 'rpc_viem';
watchdog(Number(process.env.INTEROP_TIME_LIMIT || 240), NAME);
const checks = new Checks(NAME);
const OTHER = '0x000000000000000000000000000000000000bEEF';

async function viaViem({ rpcUrl, key, anvil }) {
  const transport = http(rpcUrl, { fetchOptions: { headers: { Authorization: key.basic } }, retryCount: 0 });
  const wallet = createWalletClient({ chain: foundry, transport });
  const client = createPublicClient({ chain: foundry, transport });

  const addresses = await wallet.getAddresses();
  checks.check(addresses.length === 1 && addresses[0] === key.address, 'getAddresses (eth_accounts) is the key',
    () => ({ addresses, key: key.address }));
  const chainId = await wallet.getChainId();
  checks.check(chainId === 31337, 'getChainId is anvil\'s', () => chainId);
  const account = addresses[0];

  const before = BigInt(await anvil.rpc('eth_getBalance', [OTHER, 'latest']));
  const hash = await wallet.sendTransaction({ account, to: OTHER, value: parseEther('0.5') });
  const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: 20000 });
  checks.check(receipt.status === 'success', 'sendTransaction: mined with status success', () => receipt);
  checks.check(getAddress(receipt.from) === key.address, 'sendTransaction: from the key\'s address', () => receipt.from);
  const after = BigInt(await anvil.rpc('eth_getBalance', [OTHER, 'latest']));
  checks.check(after - before === parseEther('0.5'), 'value arrived (anvil\'s balance)', () => ({ before, after }));

  const message = 'hello from viem through /rpc';
  const sig = await wallet.signMessage({ account, message });
  checks.check(await verifyMessage({ address: key.address, message, signature: sig }), 'signMessage verifies to the key');
  const rawSig = await wallet.signMessage({ account, message: { raw: '0xdeadbeef00' } });
  checks.check(await verifyMessage({ address: key.address, message: { raw: '0xdeadbeef00' }, signature: rawSig }),
    'signMessage {raw} verifies to the key');

  const tsig = await wallet.signTypedData({ account, ...TYPED });
  checks.check(await verifyTypedData({ address: key.address, ...TYPED, signature: tsig }),
    'signTypedData verifies to the key');

  const batched = createPublicClient({ chain: foundry,
    transport: http(rpcUrl, { batch: true, fetchOptions: { headers: { Authorization: key.bearer } }, retryCount: 0 }) });
  const [bn, bal] = await Promise.all([batched.getBlockNumber({ cacheTime: 0 }), batched.getBalance({ address: key.address })]);
  checks.check(bn >= 1n && bal > 0n, 'batched transport (Bearer): block number and balance', () => ({ bn, bal }));
}

async function unauthenticated({ rpcUrl }) {
  const wallet = createWalletClient({ chain: foundry, transport: http(rpcUrl, { retryCount: 0 }) });
  let err = null;
  try { await wallet.getAddresses(); } catch (e) { err = e; }
  checks.check(err && /401|unauthorized/i.test(String(err.message) + String(err.status)), 'viem without Authorization fails with 401',
    () => String(err));
  const r = await rpcPost(rpcUrl, { jsonrpc: '2.0', id: 7, method: 'eth_accounts' });
  checks.check(r.status === 401 && r.json && r.json.jsonrpc === '2.0' && r.json.error && r.json.error.code === -32001,
    'no credentials: HTTP 401 with a JSON-RPC error object', () => r.text);
}

await runOnStack(checks, [
  ['viem through /rpc', viaViem],
  ['unauthenticated', unauthenticated],
]);
