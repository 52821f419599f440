// End to end against anvil with --hardfork prague: the node, not us, judges
// signerd's EIP-4844 and EIP-7702 encodings and signatures.
//
//   - type 3: signerd signs a blob transaction (no sidecar, as always); the
//     test wraps those very bytes into the network form with one blob and
//     sends it.  anvil refuses a type-3 transaction without its sidecar
//     ("eip4844 tx variant without sidecar"), and no KZG library is a
//     dependency here, so the blob is the all-zero blob: its KZG commitment
//     and proof are both the point at infinity (0xc0 || 47 zero bytes), the
//     commitment and proof of the zero polynomial; its versioned hash is
//     0x01 || sha256(commitment)[1:].  Mined with status 1, type 3, from the
//     key's address, hash = signerd's transaction_hash.
//   - type 4: a contract is deployed (hand-written bytecode: store
//     calldata[0..32) in slot 0), key A signs an authorization for it with
//     sign_authorization, key B sends a type-4 transaction carrying that
//     tuple to A's address with a word as calldata.  Mined with status 1;
//     A's code becomes 0xef0100 || contract, and A's slot 0 holds the word:
//     the delegated code ran for the EOA.  Then A itself sends a second
//     type-4 transaction (self-sponsored, authorization nonce = tx nonce + 1,
//     from given) that delegates to a second contract, checked the same way.
//
// Environment: lib.mjs' paths, ANVIL, INTEROP_VERBOSE=1.

import { Transaction, getAddress, getBytes, getCreateAddress, keccak256, parseEther, sha256, zeroPadValue } from 'ethers';
import crypto from 'node:crypto';
import { Checks, runMain, waitReceipt, watchdog, withAnvilAndSignerd } from './lib.mjs';

const NAME = 'anvil_breadth';
watchdog(Number(process.env.INTEROP_TIME_LIMIT || 240), NAME);
const checks = new Checks(NAME);
const CHAIN_ID = 31337;
const hexq = (v) => '0x' + BigInt(v).toString(16);
const lc = (s) => (typeof s === 'string' ? s.toLowerCase() : s);

// Runtime: PUSH1 0 CALLDATALOAD PUSH1 0 SSTORE STOP (slot 0 = first word).
const RUNTIME = '0x60003560005500';
// Init: PUSH7 <runtime> PUSH1 0 MSTORE PUSH1 7 PUSH1 25 RETURN.
const INIT_CODE = '0x66' + RUNTIME.slice(2) + '60005260076019f3';
// Runtime 2: PUSH1 0 CALLDATALOAD PUSH1 1 SSTORE STOP (slot 1 instead).
const RUNTIME2 = '0x60003560015500';
const INIT_CODE2 = '0x66' + RUNTIME2.slice(2) + '60005260076019f3';

// The all-zero blob and its KZG commitment / proof (point at infinity).
const INFINITY = '0xc0' + '00'.repeat(47);
const ZERO_BLOB_VH = '0x01' + sha256(INFINITY).slice(4);
const zeroBlobKzg = {
  blobToKzgCommitment(blob) {
    if (getBytes(blob).some((b) => b !== 0)) throw new Error('this test only commits to the zero blob');
    return getBytes(INFINITY);
  },
  computeBlobKzgProof(blob) {
    if (getBytes(blob).some((b) => b !== 0)) throw new Error('this test only proves the zero blob');
    return getBytes(INFINITY);
  },
};

async function fund(anvil, to, wei) {
  const [dev] = await anvil.rpc('eth_accounts');
  const h = await anvil.rpc('eth_sendTransaction', [{ from: dev, to, value: hexq(wei) }]);
  const rc = await waitReceipt(anvil, h);
  if (rc.status !== '0x1') throw new Error(`funding ${to} failed: ${JSON.stringify(rc)}`);
}

async function newKey(signer, anvil, label) {
  const secret = crypto.randomBytes(32).toString('hex');
  const r = await signer.call('generate_key', { secret });
  if (r.status !== 200) throw new Error(`${label}: generate_key failed: ${r.text}`);
  await fund(anvil, r.result.address, parseEther('10'));
  return { key_id: r.result.key_id, secret, address: r.result.address };
}

async function nonceOf(anvil, addr) {
  return BigInt(await anvil.rpc('eth_getTransactionCount', [addr, 'pending']));
}

async function fees(anvil) {
  const block = await anvil.rpc('eth_getBlockByNumber', ['latest', false]);
  const base = BigInt(block.baseFeePerGas ?? '0x0');
  return { maxFee: base * 2n + 1000000000n, tip: 1000000000n };
}

/** Signs with signerd; returns {raw, hash} or null (a failed check). */
async function sign(signer, key, label, payload) {
  const r = await signer.call('sign_transaction', { key_id: key.key_id, secret: key.secret, transaction_payload: payload });
  if (!checks.check(r.status === 200 && r.result && typeof r.result.transaction_signed === 'string',
    `${label}: signerd signed`, () => ({ payload, answer: r.text }))) return null;
  return { raw: r.result.transaction_signed, hash: r.result.transaction_hash };
}

/** Sends raw (or its network form), waits, checks status 1 / type / from / hash. */
async function sendCheck(anvil, key, label, signed, wire, type) {
  let nodeHash;
  try {
    nodeHash = await anvil.rpc('eth_sendRawTransaction', [wire]);
  } catch (e) {
    checks.fail(`${label}: anvil accepted eth_sendRawTransaction`, e.message);
    return null;
  }
  checks.check(lc(nodeHash) === lc(signed.hash), `${label}: node's hash equals signerd's transaction_hash`,
    () => ({ node: nodeHash, signerd: signed.hash }));
  const rc = await waitReceipt(anvil, nodeHash);
  checks.check(rc.status === '0x1' && Number(rc.type) === type && lc(rc.from) === lc(key.address),
    `${label}: mined with status 1, type ${type}, from the key's address`, () => rc);
  return rc;
}

async function blobTx(signer, anvil, key) {
  const f = await fees(anvil);
  const payload = {
    type: 3, chainId: CHAIN_ID, nonce: Number(await nonceOf(anvil, key.address)), to: getAddress('0x' + '12'.repeat(20)),
    value: '1000', gas: 21000, maxFeePerGas: hexq(f.maxFee), maxPriorityFeePerGas: hexq(f.tip),
    maxFeePerBlobGas: hexq(1000000000n), blobVersionedHashes: [ZERO_BLOB_VH], from: key.address,
  };
  const signed = await sign(signer, key, 'type 3', payload);
  if (!signed) return;
  // The same signed transaction, with the sidecar attached on this side.
  const tx = Transaction.from(signed.raw);
  checks.check(lc(tx.from) === lc(key.address) && tx.type === 3, 'type 3: ethers parses our bytes, signer = key address',
    () => ({ from: tx.from, type: tx.type }));
  tx.kzg = zeroBlobKzg;
  tx.blobs = [new Uint8Array(131072)];
  const wire = tx.serialized;
  checks.check(wire.length > signed.raw.length && keccak256(tx.unsignedSerialized) === tx.unsignedHash && tx.hash === signed.hash,
    'type 3: network form built around our signature (same hash)', () => ({ hash: tx.hash, ours: signed.hash }));
  try {
    await anvil.rpc('eth_sendRawTransaction', [signed.raw]);
    console.log(`${NAME}: note: anvil took a type-3 transaction without sidecar`);
  } catch (e) {
    console.log(`${NAME}: anvil refuses type 3 without sidecar (${e.message.slice(0, 120)}); sending the network form`);
  }
  const rc = await sendCheck(anvil, key, 'type 3', signed, wire, 3);
  if (rc) checks.check(BigInt(rc.blobGasUsed ?? 0) === 131072n, 'type 3: one blob of gas used', () => rc);
}

async function deploy(signer, anvil, key, init, label) {
  const f = await fees(anvil);
  const nonce = await nonceOf(anvil, key.address);
  const signed = await sign(signer, key, label, {
    type: 2, chainId: CHAIN_ID, nonce: Number(nonce), gas: 200000, maxFeePerGas: hexq(f.maxFee),
    maxPriorityFeePerGas: hexq(f.tip), data: init,
  });
  if (!signed) return null;
  const rc = await sendCheck(anvil, key, label, signed, signed.raw, 2);
  const addr = getCreateAddress({ from: key.address, nonce });
  return rc && lc(rc.contractAddress) === lc(addr) ? addr : null;
}

async function authorize(signer, key, contract, nonce, label) {
  const r = await signer.call('sign_authorization', {
    key_id: key.key_id, secret: key.secret, authorization: { chainId: CHAIN_ID, address: contract, nonce: Number(nonce) },
  });
  checks.check(r.status === 200 && r.result && r.result.address === contract && /^0x[0-9a-f]{130}$/.test(r.result.signature ?? ''),
    `${label}: sign_authorization answered`, () => r.text);
  if (r.status !== 200) return null;
  const { chainId, address, nonce: n, yParity, r: rr, s } = r.result;
  return { chainId, address, nonce: n, yParity, r: rr, s };
}

async function delegation(signer, anvil, A, B, contract, slot, label, selfSponsored) {
  const f = await fees(anvil);
  const sender = selfSponsored ? A : B;
  const txNonce = await nonceOf(anvil, sender.address);
  const authNonce = selfSponsored ? txNonce + 1n : await nonceOf(anvil, A.address);
  const tuple = await authorize(signer, A, contract, authNonce, label);
  if (!tuple) return;
  const word = '0x' + crypto.randomBytes(32).toString('hex');
  const payload = {
    type: 4, chainId: CHAIN_ID, nonce: Number(txNonce), to: A.address, gas: 200000, value: '0',
    maxFeePerGas: hexq(f.maxFee), maxPriorityFeePerGas: hexq(f.tip), data: word, authorizationList: [tuple],
  };
  if (selfSponsored) payload.from = A.address;
  const signed = await sign(signer, sender, label, payload);
  if (!signed) return;
  const rc = await sendCheck(anvil, sender, label, signed, signed.raw, 4);
  if (!rc) return;
  const code = await anvil.rpc('eth_getCode', [A.address, 'latest']);
  checks.check(lc(code) === lc('0xef0100' + contract.slice(2)), `${label}: the EOA's code is the 7702 delegation to the contract`,
    () => ({ code, contract }));
  const stored = await anvil.rpc('eth_getStorageAt', [A.address, hexq(slot), 'latest']);
  checks.check(lc(zeroPadValue(stored, 32)) === lc(word), `${label}: the delegated code ran for the EOA (slot ${slot} = calldata)`,
    () => ({ stored, word }));
}

async function main() {
  await withAnvilAndSignerd(checks, { chainId: CHAIN_ID, extraArgs: ['--hardfork', 'prague'] }, async (signer, anvil) => {
    const A = await newKey(signer, anvil, 'A');
    const B = await newKey(signer, anvil, 'B');
    await blobTx(signer, anvil, B);
    const c1 = await deploy(signer, anvil, B, INIT_CODE, 'deploy contract 1');
    const c2 = await deploy(signer, anvil, B, INIT_CODE2, 'deploy contract 2');
    checks.check(c1 && c2, 'contracts deployed at their CREATE addresses');
    if (c1) {
      checks.check(lc(await anvil.rpc('eth_getCode', [c1, 'latest'])) === RUNTIME, 'contract 1 has the hand-written runtime');
      await delegation(signer, anvil, A, B, c1, 0, 'type 4 (B sponsors A)', false);
    }
    if (c2) await delegation(signer, anvil, A, B, c2, 1, 'type 4 (A self-sponsored)', true);
  });
}

runMain(checks, main);
