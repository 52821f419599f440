// ethers v6 against signerd's JSON-RPC endpoint POST /rpc, and nothing else:
// JsonRpcProvider + JsonRpcSigner with an Authorization header (FetchRequest),
// downstream anvil --hardfork prague.  A transaction sent with
// eth_sendTransaction (nonce, gas, fees and chainId filled by signerd) is
// mined from the key's address; typed data and a message verify to the key;
// eth_signTransaction yields a transaction ethers parses back to the key.
// Raw HTTP checks: a batch (ids echoed, notifications unanswered), 401 +
// JSON-RPC error without or with wrong credentials, -32602 naming the param,
// -32601 for an unknown method without a downstream node, and a node that is
// down or hangs answered with an error naming it within the timeout.

import {
  FetchRequest, JsonRpcProvider, Transaction, getAddress, parseEther, verifyMessage, verifyTypedData, hexlify, toUtf8Bytes,
} from 'ethers';
import { Checks, freePort, watchdog } from './lib.mjs';
import {
  RPC_TIMEOUT_MS, TYPED, blackHole, makeKey, rpcPost, runOnStack, startSignerdRpc,
} from './rpc_lib.mjs';

const NAME = 'rpc_ethers';
watchdog(Number(process.env.INTEROP_TIME_LIMIT || 240), NAME);
const checks = new Checks(NAME);
const OTHER = '0x000000000000000000000000000000000000dEaD';

async function viaEthers({ rpcUrl, key, anvil }) {
  const req = new FetchRequest(rpcUrl);
  req.setHeader('Authorization', key.basic);
  const provider = new JsonRpcProvider(req, undefined, { staticNetwork: false, pollingInterval: 100 });
  const net = await provider.getNetwork();
  checks.check(net.chainId === 31337n, 'eth_chainId through /rpc is anvil\'s 31337', () => String(net.chainId));
  const accounts = await provider.send('eth_accounts', []);
  checks.check(accounts.length === 1 && accounts[0] === key.address, 'eth_accounts is [the key\'s checksummed address]',
    () => ({ accounts, key: key.address }));
  const signer = await provider.getSigner();
  checks.check(signer.address === key.address, 'getSigner() is the key');

  const before = BigInt(await anvil.rpc('eth_getBalance', [OTHER, 'latest']));
  const tx = await signer.sendTransaction({ to: OTHER, value: parseEther('0.25') });
  const receipt = await tx.wait(1, 20000);
  checks.check(receipt && receipt.status === 1, 'eth_sendTransaction: mined with status 1', () => receipt);
  checks.check(receipt && receipt.from === key.address, 'eth_sendTransaction: mined from the key\'s address',
    () => receipt && receipt.from);
  const mined = await anvil.rpc('eth_getTransactionByHash', [tx.hash]);
  checks.check(mined && getAddress(mined.from) === key.address && BigInt(mined.type) === 2n,
    'anvil sees an EIP-1559 transaction from the key', () => mined);
  const after = BigInt(await anvil.rpc('eth_getBalance', [OTHER, 'latest']));
  checks.check(after - before === parseEther('0.25'), 'value arrived (anvil\'s balance)', () => ({ before, after }));

  // a second one: nonce filled from the pending count
  const tx2 = await signer.sendTransaction({ to: OTHER, value: 1n, gasPrice: 3000000000n });
  const r2 = await tx2.wait(1, 20000);
  checks.check(r2 && r2.status === 1 && tx2.nonce === tx.nonce + 1 && tx2.type === 0,
    'legacy eth_sendTransaction (gasPrice given): next nonce, mined', () => ({ nonce: tx2.nonce, type: tx2.type }));

  const msg = 'hello from ethers through /rpc';
  const sig = await signer.signMessage(msg);
  checks.check(verifyMessage(msg, sig) === key.address, 'personal_sign: verifyMessage gives the key');

  const tsig = await signer.signTypedData(TYPED.domain, TYPED.types, TYPED.message);
  checks.check(verifyTypedData(TYPED.domain, TYPED.types, TYPED.message, tsig) === key.address,
    'eth_signTypedData_v4: verifyTypedData gives the key');

  const raw = await signer.signTransaction({ to: OTHER, value: 5n, gasLimit: 21000n, nonce: 7, chainId: 31337n,
    maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 10n ** 9n });
  const parsed = Transaction.from(raw);
  checks.check(parsed.from === key.address && parsed.nonce === 7 && parsed.value === 5n,
    'eth_signTransaction: ethers parses the raw transaction back to the key', () => parsed.toJSON());
  provider.destroy();
}

async function rawChecks({ rpcUrl, key }) {
  const auth = { Authorization: key.bearer };
  const batch = await rpcPost(rpcUrl, [
    { jsonrpc: '2.0', id: 'a-1', method: 'eth_accounts', params: [] },
    { jsonrpc: '2.0', method: 'eth_accounts' },
    { jsonrpc: '2.0', id: 42, method: 'eth_chainId' },
    { jsonrpc: '2.0', id: 43, method: 'eth_blockNumber', params: [] },
    { jsonrpc: '2.0', id: 44, method: 'personal_sign', params: [hexlify(toUtf8Bytes('batch')), key.address] },
  ], auth);
  const b = batch.json;
  checks.check(batch.status === 200 && Array.isArray(b) && b.length === 4, 'batch: 4 answers for 5 requests (1 notification)',
    () => batch.text);
  if (Array.isArray(b) && b.length === 4) {
    checks.check(b[0].id === 'a-1' && b[0].result[0] === key.address && b[1].id === 42 && b[1].result === '0x7a69',
      'batch: ids echoed, results in order', () => b);
    checks.check(b[2].id === 43 && /^0x[0-9a-f]+$/.test(b[2].result), 'batch: eth_blockNumber forwarded to the node', () => b[2]);
    checks.check(b[3].id === 44 && verifyMessage('batch', b[3].result) === key.address, 'batch: personal_sign', () => b[3]);
  }
  const none = await rpcPost(rpcUrl, { jsonrpc: '2.0', id: 1, method: 'eth_accounts' });
  checks.check(none.status === 401 && none.json && none.json.error && none.json.error.code === -32001 && none.json.id === null,
    'no credentials: HTTP 401 and a JSON-RPC error', () => none.text);
  const wrong = await rpcPost(rpcUrl, { jsonrpc: '2.0', id: 1, method: 'eth_accounts' },
    { Authorization: 'Basic ' + Buffer.from(`${key.key_id}:not the right secret at all`).toString('base64') });
  checks.check(wrong.status === 401 && wrong.json && wrong.json.error && /unauthorized/.test(wrong.json.error.message),
    'wrong secret: HTTP 401 and a JSON-RPC error', () => wrong.text);
  const bad = await rpcPost(rpcUrl, { jsonrpc: '2.0', id: 9, method: 'eth_sign', params: [key.address, 'not hex'] }, auth);
  checks.check(bad.json && bad.json.error && bad.json.error.code === -32602 && /params\[1\]/.test(bad.json.error.message),
    'bad data: -32602 naming params[1]', () => bad.text);
  const badTx = await rpcPost(rpcUrl, { jsonrpc: '2.0', id: 10, method: 'eth_signTransaction',
    params: [{ to: OTHER, gas: '0x5208', nonce: '0x0', chainId: '0x7a69', maxFeePerGas: '0x1', maxPriorityFeePerGas: '0x1', value: 'lots' }] }, auth);
  checks.check(badTx.json && badTx.json.error && badTx.json.error.code === -32602 && /params\[0\]\.value/.test(badTx.json.error.message),
    'bad tx field: -32602 naming params[0].value', () => badTx.text);
  const fromOther = await rpcPost(rpcUrl, { jsonrpc: '2.0', id: 11, method: 'eth_sendTransaction',
    params: [{ from: OTHER, to: OTHER, value: '0x1' }] }, auth);
  checks.check(fromOther.json && fromOther.json.error && /from/.test(fromOther.json.error.message),
    'eth_sendTransaction from another address: refused naming from', () => fromOther.text);
  const parse = await rpcPost(rpcUrl, '{"jsonrpc": "2.0", "method"', auth);
  checks.check(parse.json && parse.json.error && parse.json.error.code === -32700, 'malformed body: -32700', () => parse.text);
  const inval = await rpcPost(rpcUrl, { jsonrpc: '1.0', id: 3, method: 'eth_accounts' }, auth);
  checks.check(inval.json && inval.json.error && inval.json.error.code === -32600 && inval.json.id === 3,
    'jsonrpc 1.0: -32600', () => inval.text);
}

async function noDownstream() {
  const signer = await startSignerdRpc(null, 'chain_id = 5;');
  try {
    const key = await makeKey(signer);
    const url = `${signer.url}/rpc`;
    const r = await rpcPost(url, [{ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber' },
      { jsonrpc: '2.0', id: 2, method: 'eth_chainId' }], { Authorization: key.basic });
    checks.check(r.json && r.json[0].error && r.json[0].error.code === -32601 && /eth_blockNumber/.test(r.json[0].error.message),
      'no downstream: unknown method -32601', () => r.text);
    checks.check(r.json && r.json[1].result === '0x5', 'no downstream: eth_chainId from settings.chain_id', () => r.text);
  } finally {
    await signer.stop();
  }
}

async function downstreamDown() {
  const port = await freePort(); // nothing listens there
  const hole = await blackHole();
  for (const [what, url] of [['refused', `http://127.0.0.1:${port}`], ['hung', hole.url]]) {
    const signer = await startSignerdRpc(url);
    try {
      const key = await makeKey(signer);
      const r = await rpcPost(`${signer.url}/rpc`, { jsonrpc: '2.0', id: 1, method: 'eth_blockNumber' }, { Authorization: key.basic });
      checks.check(r.json && r.json.error && r.json.error.code === -32002 && r.json.error.message.includes(url),
        `downstream ${what}: JSON-RPC error naming the node`, () => r.text);
      checks.check(r.ms < RPC_TIMEOUT_MS + 3000, `downstream ${what}: answered within the timeout (${r.ms} ms)`);
    } finally {
      await signer.stop();
    }
  }
  await hole.close();
}

await runOnStack(checks, [
  ['ethers through /rpc', viaEthers],
  ['raw JSON-RPC checks', rawChecks],
  ['no downstream', noDownstream],
  ['downstream down', downstreamDown],
]);
