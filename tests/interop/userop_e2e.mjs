// ERC-4337 end to end on anvil: for EntryPoint v0.6, v0.7 and v0.8 (compiled
// artifacts of @account-abstraction/contracts 0.6.0 / 0.7.0 / 0.8.0) deploy
// the EntryPoint and its SimpleAccountFactory, fund the counterfactual
// SimpleAccount of an owner key made by signerd's generate_key, and have
// signerd's sign_userop (user_operation form) hash and sign two userOps: the
// first deploys the account through initCode and sends value, the second
// (nonce 1, the other form for v0.7/v0.8) sends value again.  Each is
// submitted with handleOps from a beneficiary: mined with status 1, the
// UserOperationEvent reports success with our userOpHash, the nonce advances,
// the value arrives, and our userOpHash equals the deployed EntryPoint's
// getUserOpHash.  v0.8 also runs an EIP-7702 account (Simple7702Account, an
// EOA delegated with a type-4 transaction) whose userOp carries the 7702
// initCode marker.
//
// Then a random differential: >= 200 random userOps per version, signerd's
// userOpHash byte-identical to ethers' (userop_lib.mjs) and its signature
// byte-identical to ethers' SigningKey.sign over the same digest, recovering
// to the key's address.
//
// Environment: lib.mjs' paths, ANVIL, INTEROP_SEED, INTEROP_CASES (per
// version, default 200), INTEROP_VERBOSE=1.

import {
  Contract, ContractFactory, getAddress, Interface, JsonRpcProvider, NonceManager, parseEther,
  recoverAddress, SigningKey, Wallet, concat,
} from 'ethers';
import crypto from 'node:crypto';
import { Checks, pool, runMain, watchdog, withAnvilAndSignerd } from './lib.mjs';
import { hmacHex } from '../lib/hmac.mjs';
import {
  artifact, makeRng, packageVersion, packUserOp, randomRequest, refDigest,
  refHash, VERSIONS,
} from './userop_lib.mjs';

const NAME = 'userop_e2e';
watchdog(Number(process.env.INTEROP_TIME_LIMIT || 280), NAME);
const checks = new Checks(NAME);
const CHAIN_ID = 31337;
const EP08_CANONICAL = '0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108'; // Simple7702Account's entryPoint()
const SECRET = 'userop-e2e-' + crypto.randomBytes(12).toString('hex');
const hexq = (v) => '0x' + BigInt(v).toString(16);

async function deploy(dev, version, name, args = []) {
  const a = artifact(version, name);
  const c = await new ContractFactory(a.abi, a.bytecode, dev).deploy(...args);
  await c.waitForDeployment();
  return c;
}

async function fees(provider) {
  const block = await provider.getBlock('latest');
  const tip = 1000000000n;
  return { maxFeePerGas: block.baseFeePerGas * 2n + tip, maxPriorityFeePerGas: tip };
}

/** sign_userop over HTTP; returns {userOpHash, signature} or null (counted as a failure). */
async function signUserOp(signer, key, req, label) {
  const r = await signer.call('sign_userop', { key_id: key.key_id, secret: key.secret, ...req });
  if (!checks.check(r.status === 200 && r.result && /^0x[0-9a-f]{64}$/.test(r.result.userOpHash ?? '') &&
    /^0x[0-9a-f]{130}$/.test(r.result.signature ?? ''), `${label}: signerd answered {userOpHash, signature}`,
  () => ({ req, answer: r.json ?? r.text }))) return null;
  return r.result;
}

/** The on-chain struct for handleOps / getUserOpHash. */
function chainOp(version, op, signature) {
  if (version === '0.6') return { initCode: '0x', paymasterAndData: '0x', ...op, signature };
  const p = packUserOp(op);
  return { ...p, signature };
}

/** Signs req with signerd, checks the hash against getUserOpHash, submits
 *  handleOps and checks the receipt and the event. */
async function submit(ctx, req, label) {
  const { signer, key, ep, dev, version, beneficiary } = ctx;
  const res = await signUserOp(signer, key, req, label);
  if (!res) return false;
  const op = chainOp(version, req.user_operation, res.signature);
  const onChain = await ep.getUserOpHash(op);
  checks.check(res.userOpHash === onChain, `${label}: userOpHash equals the deployed EntryPoint's getUserOpHash`,
    () => ({ signerd: res.userOpHash, entryPoint: onChain }));
  checks.check(res.userOpHash === refHash(req), `${label}: userOpHash equals ethers' computation`);
  let rc;
  try {
    const tx = await ep.connect(dev).handleOps([op], beneficiary, { gasLimit: 5000000n });
    rc = await tx.wait();
  } catch (e) {
    checks.fail(`${label}: handleOps mined`, { error: e.shortMessage ?? e.message, data: e.data, req });
    return false;
  }
  checks.check(rc.status === 1, `${label}: handleOps mined with status 1`, () => rc);
  const ev = rc.logs.map((l) => { try { return ep.interface.parseLog(l); } catch { return null; } })
    .find((p) => p && p.name === 'UserOperationEvent');
  checks.check(ev && ev.args.userOpHash === res.userOpHash && ev.args.success === true &&
    getAddress(ev.args.sender) === getAddress(req.user_operation.sender),
  `${label}: UserOperationEvent with our userOpHash and success`, () => ev && ev.args.toObject());
  return true;
}

// straight to the node: ethers' provider may answer a repeated call from its
// short-lived request cache
let ANVIL;
async function balance(_provider, a) { return BigInt(await ANVIL.rpc('eth_getBalance', [a, 'latest'])); }

/** One EntryPoint version with SimpleAccount: deploy, two userOps. */
async function simpleAccountFlow(env, version) {
  const { provider, dev, signer, key, beneficiary } = env;
  const L = `v${version}`;
  const ep = await deploy(dev, version, 'EntryPoint');
  const factory = await deploy(dev, version, 'SimpleAccountFactory', [await ep.getAddress()]);
  const salt = BigInt(1 + Number(version.slice(2)));
  const account = await factory.getFunction('getAddress')(key.address, salt);
  await (await dev.sendTransaction({ to: account, value: parseEther('1') })).wait();
  const accIface = new Interface(artifact(version, 'SimpleAccount').abi);
  const recipient = Wallet.createRandom().address;
  const value = parseEther('0.01');
  const f = await fees(provider);
  const gas = { callGasLimit: 200000, verificationGasLimit: 1000000, preVerificationGas: 60000,
    maxFeePerGas: hexq(f.maxFeePerGas), maxPriorityFeePerGas: f.maxPriorityFeePerGas.toString() };
  const factoryData = factory.interface.encodeFunctionData('createAccount', [key.address, salt]);
  const callData = accIface.encodeFunctionData('execute', [recipient, value, '0x']);
  const ctx = { signer, key, ep, dev, version, beneficiary };
  const base = { entry_point: await ep.getAddress(), chainId: CHAIN_ID, entry_point_version: version };

  // 1: deploy the account through initCode, send value
  let op = { sender: account, nonce: 0, callData, ...gas };
  if (version === '0.6') op = { ...op, initCode: concat([await factory.getAddress(), factoryData]), paymasterAndData: '0x' };
  else op = { ...op, factory: await factory.getAddress(), factoryData };
  if (!await submit(ctx, { ...base, user_operation: op }, `${L} userOp 1 (initCode)`)) return;
  checks.check((await provider.getCode(account)).length > 2, `${L}: the account was deployed by initCode`);
  checks.check(await ep.getNonce(account, 0) === 1n, `${L}: account nonce advanced to 1`);
  checks.check(await balance(provider, recipient) === value, `${L}: the call's value arrived`);

  // 2: nonce 1, the packed form for v0.7/v0.8
  op = { sender: account, nonce: '0x1', callData, ...gas, verificationGasLimit: 200000 };
  if (version !== '0.6') {
    const p = packUserOp(op);
    op = { sender: account, nonce: '1', initCode: '0x', callData, accountGasLimits: p.accountGasLimits,
      preVerificationGas: 60000, gasFees: p.gasFees, paymasterAndData: '0x' };
  }
  const req2 = { ...base, user_operation: op };
  // the wrong scheme is refused by SimpleAccount (AA24), so the scheme matters
  const wrong = await signUserOp(signer, key, { ...req2, signature_scheme: version === '0.8' ? 'eip191' : 'raw' },
    `${L} wrong scheme`);
  if (wrong) {
    let reason = '';
    try { await ep.handleOps.staticCall([chainOp(version, op, wrong.signature)], beneficiary, { gasLimit: 5000000n }); }
    catch (e) { reason = `${e.shortMessage ?? ''} ${e.message ?? ''} ${JSON.stringify(e.revert ?? '', (k, x) => (typeof x === 'bigint' ? x.toString() : x))}`; }
    checks.check(/AA24/.test(reason), `${L}: a signature of the other scheme is refused (AA24)`, reason || 'no revert');
  }
  if (!await submit(ctx, req2, `${L} userOp 2 (nonce 1)`)) return;
  checks.check(await ep.getNonce(account, 0) === 2n, `${L}: account nonce advanced to 2`);
  checks.check(await balance(provider, recipient) === 2n * value, `${L}: the second call's value arrived`);
}

/** v0.8 with an EIP-7702 account: the userOp's initCode is the 7702 marker. */
async function eip7702Flow(env) {
  const { provider, dev, signer, anvil, beneficiary } = env;
  const w = Wallet.createRandom();
  const imp = await signer.call('set_key', { eth_key: w.privateKey, secret: SECRET });
  if (!checks.check(imp.status === 200 && imp.result.address === w.address, 'v0.8/7702: set_key imported the EOA key',
    () => imp.json ?? imp.text)) return;
  const key = { key_id: imp.result.key_id, secret: SECRET, address: w.address };
  const impl = await deploy(dev, '0.8', 'Simple7702Account');
  const deployed = await deploy(dev, '0.8', 'EntryPoint');
  await anvil.rpc('anvil_setCode', [EP08_CANONICAL, await provider.getCode(await deployed.getAddress())]);
  const ep = new Contract(EP08_CANONICAL, artifact('0.8', 'EntryPoint').abi, provider);
  await (await dev.sendTransaction({ to: w.address, value: parseEther('1') })).wait();
  const auth = await w.connect(provider).authorize({ address: await impl.getAddress(), nonce: 0, chainId: CHAIN_ID });
  const t4 = await (await dev.sendTransaction({ type: 4, to: w.address, authorizationList: [auth], gasLimit: 200000 })).wait();
  const code = await provider.getCode(w.address);
  if (!checks.check(t4.status === 1 && code.toLowerCase() === ('0xef0100' + (await impl.getAddress()).slice(2)).toLowerCase(),
    'v0.8/7702: the EOA is delegated to Simple7702Account', () => ({ status: t4.status, code }))) return;

  const recipient = Wallet.createRandom().address;
  const value = parseEther('0.02');
  const f = await fees(provider);
  const iface = new Interface(artifact('0.8', 'Simple7702Account').abi);
  const op = { sender: w.address, nonce: 0, factory: '0x7702', factoryData: '0x',
    callData: iface.encodeFunctionData('execute', [recipient, value, '0x']),
    callGasLimit: 200000, verificationGasLimit: 300000, preVerificationGas: 60000,
    maxFeePerGas: f.maxFeePerGas.toString(), maxPriorityFeePerGas: f.maxPriorityFeePerGas.toString() };
  const base = { entry_point: EP08_CANONICAL, chainId: CHAIN_ID, entry_point_version: '0.8', user_operation: op };
  const r = await signer.call('sign_userop', { key_id: key.key_id, secret: key.secret, ...base });
  checks.check(r.status === 400 && /eip7702_delegate/.test(r.json?.error ?? r.text),
    'v0.8/7702: without the delegate address: 400 naming eip7702_delegate', () => r.json ?? r.text);
  const ctx = { signer, key, ep, dev, version: '0.8', beneficiary };
  if (!await submit(ctx, { ...base, eip7702_delegate: await impl.getAddress() }, 'v0.8/7702 userOp')) return;
  checks.check(await ep.getNonce(w.address, 0) === 1n, 'v0.8/7702: nonce advanced to 1');
  checks.check(await balance(provider, recipient) === value, "v0.8/7702: the call's value arrived");
}

/** The user_operation form authenticated with hmac + timestamp (over the
 *  operation, key_id and the covered fields, docs/hmac.md) signs exactly as
 *  with the secret. */
async function hmacCheck(signer, keyId, req, want) {
  const timestamp = Math.floor(Date.now() / 1000);
  const body = { key_id: keyId, ...req };
  const hmac = hmacHex(SECRET, 'sign_userop', keyId, req, timestamp);
  const r = await signer.call('sign_userop', { ...body, hmac, timestamp });
  checks.check(r.status === 200 && r.result.userOpHash === want.userOpHash && r.result.signature === want.signature,
    'hmac + timestamp authentication signs the user_operation form alike', () => r.json ?? r.text);
  const again = await signer.call('sign_userop', { ...body, hmac, timestamp, chainId: 5 });
  checks.check(again.status === 403 && /does not match/.test(again.result?.error ?? '') && !again.result?.signature,
    'an hmac over other fields is refused (403, does not match)',
    () => again.json ?? again.text);
}

/** Random differential against ethers. */
async function differential(signer) {
  const seed = Number(process.env.INTEROP_SEED || Date.now() % 1000000);
  const cases = Number(process.env.INTEROP_CASES || 200);
  const rng = makeRng(seed);
  const w = new Wallet('0x' + crypto.randomBytes(32).toString('hex'));
  const imp = await signer.call('set_key', { eth_key: w.privateKey, secret: SECRET });
  if (!checks.check(imp.status === 200, 'differential: set_key', () => imp.json ?? imp.text)) return;
  const sk = new SigningKey(w.privateKey);
  let hmacDone = false;
  console.log(`${NAME}: differential seed ${seed} (INTEROP_SEED to repeat), ${cases} userOps per version`);
  for (const v of VERSIONS) {
    const reqs = Array.from({ length: Math.max(cases, 200) }, () => randomRequest(rng, v));
    let good = 0;
    const bad = [];
    await pool(reqs, 4, async (req) => {
      const r = await signer.call('sign_userop', { key_id: imp.result.key_id, secret: SECRET, ...req });
      const want = refHash(req);
      const digest = refDigest(req, want);
      const ok = r.status === 200 && r.result.userOpHash === want &&
        r.result.signature === sk.sign(digest).serialized &&
        recoverAddress(digest, r.result.signature) === w.address;
      if (ok) good++; else if (bad.length < 3) bad.push({ req, want, answer: r.json ?? r.text });
      if (ok && !hmacDone && typeof req.chainId === 'number') {
        hmacDone = true;
        await hmacCheck(signer, imp.result.key_id, req, r.result);
      }
    });
    checks.check(good === reqs.length, `differential v${v}: ${good}/${reqs.length} userOpHash and signature byte-identical to ethers`,
      () => bad);
  }
}

async function main() {
  for (const v of VERSIONS) console.log(`${NAME}: EntryPoint v${v} from @account-abstraction/contracts@${packageVersion(v)}`);
  await withAnvilAndSignerd(checks, { chainId: CHAIN_ID, extraArgs: ['--hardfork', 'prague'] }, async (signer, anvil) => {
    ANVIL = anvil;
    const provider = new JsonRpcProvider(anvil.url, CHAIN_ID, { staticNetwork: true, pollingInterval: 50 });
    const dev = new NonceManager(await provider.getSigner(0));
    const g = await signer.call('generate_key', { secret: SECRET });
    if (!checks.check(g.status === 200 && g.result && g.result.key_id, 'generate_key for the owner', () => g.json ?? g.text)) {
      return;
    }
    const key = { key_id: g.result.key_id, secret: SECRET, address: g.result.address };
    const env = { anvil, provider, dev, signer, key, beneficiary: Wallet.createRandom().address };
    for (const v of VERSIONS) {
      await checks.run(`v${v} SimpleAccount flow`, () => simpleAccountFlow(env, v));
    }
    await checks.run('v0.8 EIP-7702 flow', () => eip7702Flow(env));
    await checks.run('differential', () => differential(signer));
  });
}

runMain(checks, main);
