// Known-answer vectors for sign_userop's user_operation form
// (tests/vectors/eth_userop.json, read by tests/plugins/test_eth_userop.c).
//
// Each vector's userOpHash is computed with ethers v6 following the
// contracts (userop_lib.mjs) AND must equal getUserOpHash of the EntryPoint
// deployed on anvil from @account-abstraction/contracts 0.6.0 / 0.7.0 /
// 0.8.0 (its runtime code placed at the canonical EntryPoint address, the
// EIP-7702 senders given a delegation designator).  The signature is ethers'
// SigningKey.sign of the digest SimpleAccount verifies (or the override),
// with key 0x4646...46.
//
//   node userop_vectors.mjs --write   regenerate the JSON file
//   node userop_vectors.mjs           check the committed file (make check)

import { Contract, ContractFactory, JsonRpcProvider, NonceManager, SigningKey, Wallet } from 'ethers';
import fs from 'node:fs';
import path from 'node:path';
import { Checks, SRCDIR, runMain, startAnvil, watchdog } from './lib.mjs';
import { artifact, packageVersion, packUserOp, refDigest, refHash } from './userop_lib.mjs';

const NAME = 'userop_vectors';
watchdog(Number(process.env.INTEROP_TIME_LIMIT || 240), NAME);
const checks = new Checks(NAME);
const FILE = path.join(SRCDIR, 'tests', 'vectors', 'eth_userop.json');
const KEY = '0x' + '46'.repeat(32);
const CHAIN_ID = 1;
const EP = {
  '0.6': '0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789',
  '0.7': '0x0000000071727De22E5E9d8BAf0edAc6f37da032',
  '0.8': '0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108',
};
const SENDER = '0x1f9090aaE28b8a3dCeaDf281B0F12828e676c326';
const SENDER7702 = '0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F';
const DELEGATE = '0xe6Cae83BdE06E4c305530e199D7217f42808555B';
const FACTORY = '0x91E60e0613810449d098b0b5Ec8b51A0FE8c8985';
const PAYMASTER = '0x0000000000325602a77416A16136FDafd04b299f';
const CALL = '0xb61d27f6000000000000000000000000d8da6bf26964af9d7eed9e03e53415d37aa960450000000000000000000000000000000000000000000000000de0b6b3a764000000000000000000000000000000000000000000000000000000000000000000600000000000000000000000000000000000000000000000000000000000000000';
const FDATA = '0x5fbfb9cf0000000000000000000000009d8a62f656a8d1615c1294fd71e9cfb3e4855a4f0000000000000000000000000000000000000000000000000000000000000007';
const MAX = (1n << 256n) - 1n;

function base(v) { return { entry_point: EP[v], chainId: CHAIN_ID, entry_point_version: v }; }

/** The fixed requests: each version's forms, overrides and edge values. */
function requests() {
  const g6 = { callGasLimit: 100000, verificationGasLimit: '0x7a120', preVerificationGas: '50000',
    maxFeePerGas: '0x77359400', maxPriorityFeePerGas: 1000000000 };
  const unp = { callGasLimit: '0x186a0', verificationGasLimit: 500000, preVerificationGas: 48000,
    maxFeePerGas: '30000000000', maxPriorityFeePerGas: '0x3b9aca00' };
  const pmu = { paymaster: PAYMASTER, paymasterVerificationGasLimit: 60000, paymasterPostOpGasLimit: '0x4e20',
    paymasterData: '0xdeadbeef' };
  const packedOf = (op) => {
    const p = packUserOp(op);
    return { sender: p.sender, nonce: '0x' + p.nonce.toString(16), initCode: p.initCode, callData: p.callData,
      accountGasLimits: p.accountGasLimits, preVerificationGas: p.preVerificationGas.toString(),
      gasFees: p.gasFees, paymasterAndData: p.paymasterAndData, signature: '0x' };
  };
  const full = { sender: SENDER, nonce: 0, factory: FACTORY, factoryData: FDATA, callData: CALL, ...unp, ...pmu };
  const list = [
    ['v0.6 minimal', '0.6', { sender: SENDER, nonce: 0, initCode: '0x', callData: '0x', ...g6, paymasterAndData: '0x', signature: '0x' }],
    ['v0.6 initCode, paymaster, 256-bit values', '0.6', { sender: SENDER, nonce: MAX.toString(), initCode: FACTORY + FDATA.slice(2),
      callData: CALL, callGasLimit: '0x' + MAX.toString(16), verificationGasLimit: MAX.toString(), preVerificationGas: 0,
      maxFeePerGas: '0x0', maxPriorityFeePerGas: '0', paymasterAndData: PAYMASTER + 'c0ffee' }],
    ['v0.6 raw override', '0.6', { sender: SENDER, nonce: '0x2a', callData: CALL, ...g6 }, { signature_scheme: 'raw' }],
    ['v0.7 unpacked', '0.7', full],
    ['v0.7 packed (same op)', '0.7', packedOf(full)],
    ['v0.7 packed minimal', '0.7', { sender: SENDER, nonce: '18446744073709551616', callData: '0x',
      accountGasLimits: '0x' + '00'.repeat(32), preVerificationGas: 0, gasFees: '0x' + 'ff'.repeat(32) }],
    ['v0.7 raw override', '0.7', { sender: SENDER, nonce: 3, callData: CALL, ...unp }, { signature_scheme: 'raw' }],
    ['v0.8 unpacked', '0.8', full],
    ['v0.8 packed (same op)', '0.8', packedOf(full)],
    ['v0.8 eip191 override', '0.8', { sender: SENDER, nonce: 1, callData: CALL, ...unp }, { signature_scheme: 'eip191' }],
    ['v0.8 EIP-7702 marker with init data', '0.8', { sender: SENDER7702, nonce: 0,
      initCode: '0x7702' + '00'.repeat(18) + 'abcdef', callData: CALL, accountGasLimits: '0x' + '00'.repeat(13) + '07a120' + '00'.repeat(13) + '0186a0',
      preVerificationGas: 50000, gasFees: '0x' + '00'.repeat(12) + '3b9aca00' + '00'.repeat(12) + '77359400' }, { eip7702_delegate: DELEGATE }],
    ['v0.8 EIP-7702 short marker', '0.8', { sender: SENDER7702, nonce: 5, initCode: '0x7702', callData: '0x',
      accountGasLimits: '0x' + '00'.repeat(32), preVerificationGas: 1, gasFees: '0x' + '00'.repeat(32) }, { eip7702_delegate: DELEGATE }],
    ['v0.8 EIP-7702 factory 0x7702 with eip7702Auth', '0.8', { sender: SENDER7702, nonce: 6, factory: '0x7702', factoryData: '0x',
      callData: CALL, ...unp, eip7702Auth: { chainId: '0x1', address: DELEGATE, nonce: '0x0', yParity: '0x1', r: '0x01', s: '0x02' } }],
  ];
  return list.map(([name, v, op, extra]) => ({ name, request: { ...base(v), ...(extra || {}), user_operation: op } }));
}

/** The EntryPoint's own getUserOpHash for a request, on anvil. */
async function chainHash(provider, req) {
  const v = req.entry_point_version;
  const ep = new Contract(EP[v], artifact(v, 'EntryPoint').abi, provider);
  const op = v === '0.6'
    ? { initCode: '0x', paymasterAndData: '0x', ...req.user_operation, signature: '0x' }
    : { ...packUserOp(req.user_operation), signature: '0x' };
  delete op.eip7702Auth;
  return ep.getUserOpHash(op);
}

async function deployAll(anvil, provider) {
  const dev = new NonceManager(await provider.getSigner(0)); // anvil's unlocked account 0
  for (const v of Object.keys(EP)) {
    const a = artifact(v, 'EntryPoint');
    const c = await new ContractFactory(a.abi, a.bytecode, dev).deploy();
    await c.waitForDeployment();
    const code = await provider.getCode(await c.getAddress());
    await anvil.rpc('anvil_setCode', [EP[v], code]);
  }
  await anvil.rpc('anvil_setCode', [SENDER7702, '0xef0100' + DELEGATE.slice(2).toLowerCase()]);
}

async function main() {
  const write = process.argv.includes('--write');
  const anvil = await startAnvil({ chainId: CHAIN_ID });
  try {
    const provider = new JsonRpcProvider(anvil.url, CHAIN_ID, { staticNetwork: true, polling: true, pollingInterval: 50 });
    await deployAll(anvil, provider);
    const key = new SigningKey(KEY);
    const out = [];
    for (const { name, request } of requests()) {
      const hash = refHash(request);
      const onChain = await chainHash(provider, request);
      checks.check(onChain === hash, `${name}: ethers hash equals the deployed EntryPoint's getUserOpHash`,
        () => ({ ethers: hash, chain: onChain }));
      out.push({ name, request, userOpHash: hash, signature: key.sign(refDigest(request, hash)).serialized });
    }
    const doc = {
      comment: 'Generated by tests/interop/userop_vectors.mjs --write; userOpHash from ethers v6 following ' +
        'the contracts and confirmed by getUserOpHash of the deployed EntryPoints; signature by ethers ' +
        'SigningKey.sign with the key below.',
      packages: Object.fromEntries(Object.keys(EP).map((v) => [v, `@account-abstraction/contracts@${packageVersion(v)}`])),
      key: KEY,
      address: new Wallet(KEY).address,
      vectors: out,
    };
    const text = JSON.stringify(doc, null, 2) + '\n';
    if (write) {
      fs.mkdirSync(path.dirname(FILE), { recursive: true });
      fs.writeFileSync(FILE, text);
      console.log(`${NAME}: wrote ${out.length} vectors to ${FILE}`);
    } else {
      const have = fs.existsSync(FILE) ? fs.readFileSync(FILE, 'utf8') : '';
      checks.check(have === text, `${FILE} equals the regenerated vectors`, 'run node userop_vectors.mjs --write');
    }
  } finally {
    await anvil.stop();
  }
}

runMain(checks, main);
