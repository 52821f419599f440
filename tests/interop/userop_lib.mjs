// ERC-4337 helpers shared by the userOp tests: the reference userOpHash of
// each EntryPoint version computed with ethers v6 (AbiCoder, keccak256,
// TypedDataEncoder), written from the contracts' Solidity in
// @account-abstraction/contracts 0.6.0 / 0.7.0 / 0.8.0
// (UserOperationLib.sol, EntryPoint.getUserOpHash, Eip7702Support.sol);
// packing of the unpacked RPC form; the compiled artifacts; and a random
// userOp generator for the differential test.

import {
  AbiCoder, concat, getAddress, getBytes, hashMessage, hexlify, keccak256, toBeHex,
  TypedDataEncoder, zeroPadValue,
} from 'ethers';
import { createRequire } from 'node:module';

const abi = AbiCoder.defaultAbiCoder();
const require = createRequire(import.meta.url);

export const VERSIONS = ['0.6', '0.7', '0.8'];
const PKG = { '0.6': 'aa06', '0.7': 'aa07', '0.8': 'aa08' };

/** Compiled artifact {abi, bytecode} of contract `name` for an EntryPoint version. */
export function artifact(version, name) {
  return require(`${PKG[version]}/artifacts/${name}.json`);
}

/** Version string of the installed package for that EntryPoint version. */
export function packageVersion(version) {
  return require(`${PKG[version]}/package.json`).version;
}

export const MARKER_7702 = '0x7702' + '00'.repeat(18);
const u128 = (v) => zeroPadValue(toBeHex(BigInt(v)), 16);

/** Packs a v0.7/v0.8 userOp given in the unpacked RPC form (as viem does). */
export function packUserOp(op) {
  if (op.accountGasLimits !== undefined) return { ...op, initCode: op.initCode ?? '0x', paymasterAndData: op.paymasterAndData ?? '0x' };
  let initCode = '0x';
  if (op.factory) {
    const f = op.factory === '0x7702' ? MARKER_7702 : op.factory;
    initCode = concat([f, op.factoryData ?? '0x']);
  }
  let paymasterAndData = '0x';
  if (op.paymaster) {
    paymasterAndData = concat([op.paymaster, u128(op.paymasterVerificationGasLimit ?? 0),
      u128(op.paymasterPostOpGasLimit ?? 0), op.paymasterData ?? '0x']);
  }
  return {
    sender: op.sender,
    nonce: BigInt(op.nonce),
    initCode,
    callData: op.callData,
    accountGasLimits: concat([u128(op.verificationGasLimit), u128(op.callGasLimit)]),
    preVerificationGas: BigInt(op.preVerificationGas),
    gasFees: concat([u128(op.maxPriorityFeePerGas), u128(op.maxFeePerGas)]),
    paymasterAndData,
    signature: op.signature ?? '0x',
  };
}

/** v0.6 EntryPoint.getUserOpHash. */
export function hashV06(op, entryPoint, chainId) {
  const packed = abi.encode(
    ['address', 'uint256', 'bytes32', 'bytes32', 'uint256', 'uint256', 'uint256', 'uint256', 'uint256', 'bytes32'],
    [op.sender, BigInt(op.nonce), keccak256(op.initCode ?? '0x'), keccak256(op.callData),
      BigInt(op.callGasLimit), BigInt(op.verificationGasLimit), BigInt(op.preVerificationGas),
      BigInt(op.maxFeePerGas), BigInt(op.maxPriorityFeePerGas), keccak256(op.paymasterAndData ?? '0x')]);
  return keccak256(abi.encode(['bytes32', 'address', 'uint256'], [keccak256(packed), entryPoint, BigInt(chainId)]));
}

/** v0.7 EntryPoint.getUserOpHash (op packed). */
export function hashV07(op, entryPoint, chainId) {
  const packed = abi.encode(
    ['address', 'uint256', 'bytes32', 'bytes32', 'bytes32', 'uint256', 'bytes32', 'bytes32'],
    [op.sender, BigInt(op.nonce), keccak256(op.initCode), keccak256(op.callData), op.accountGasLimits,
      BigInt(op.preVerificationGas), op.gasFees, keccak256(op.paymasterAndData)]);
  return keccak256(abi.encode(['bytes32', 'address', 'uint256'], [keccak256(packed), entryPoint, BigInt(chainId)]));
}

/** Eip7702Support._isEip7702InitCode: 0x7702 then zeros in the first 20 (zero-padded) bytes. */
export function isEip7702InitCode(initCode) {
  const b = getBytes(initCode);
  if (b.length < 2) return false;
  const head = new Uint8Array(20);
  head.set(b.slice(0, 20));
  return hexlify(head) === MARKER_7702;
}

const PACKED_TYPES = {
  PackedUserOperation: [
    { name: 'sender', type: 'address' }, { name: 'nonce', type: 'uint256' },
    { name: 'initCode', type: 'bytes' }, { name: 'callData', type: 'bytes' },
    { name: 'accountGasLimits', type: 'bytes32' }, { name: 'preVerificationGas', type: 'uint256' },
    { name: 'gasFees', type: 'bytes32' }, { name: 'paymasterAndData', type: 'bytes' },
  ],
};

/** v0.8 EntryPoint.getUserOpHash (op packed): EIP-712 over PackedUserOperation;
 *  an EIP-7702 initCode hashes as delegate || initCode[20:]. */
export function hashV08(op, entryPoint, chainId, delegate) {
  let initCode = op.initCode;
  if (isEip7702InitCode(initCode)) {
    if (!delegate) throw new Error('EIP-7702 initCode needs the delegate');
    const b = getBytes(initCode);
    initCode = b.length <= 20 ? delegate : concat([delegate, b.slice(20)]);
  }
  const domain = { name: 'ERC4337', version: '1', chainId: BigInt(chainId), verifyingContract: entryPoint };
  return TypedDataEncoder.hash(domain, PACKED_TYPES, { ...op, initCode });
}

/** Reference userOpHash of a sign_userop request object. */
export function refHash(req) {
  const v = req.entry_point_version;
  const delegate = req.eip7702_delegate ?? req.user_operation.eip7702Auth?.address;
  if (v === '0.6') return hashV06(req.user_operation, req.entry_point, req.chainId);
  const p = packUserOp(req.user_operation);
  return v === '0.7' ? hashV07(p, req.entry_point, req.chainId) : hashV08(p, req.entry_point, req.chainId, delegate);
}

/** The 32 bytes SimpleAccount of that version (or the override) verifies. */
export function refDigest(req, userOpHash) {
  const scheme = req.signature_scheme ?? (req.entry_point_version === '0.8' ? 'raw' : 'eip191');
  return scheme === 'eip191' ? hashMessage(getBytes(userOpHash)) : userOpHash;
}

// ------------------------------------------------------------- random userOps

export function makeRng(seed) {
  let s = BigInt.asUintN(64, BigInt(seed) * 0x9E3779B97F4A7C15n + 1n);
  const next = () => {   // xorshift64*
    s ^= s >> 12n; s ^= BigInt.asUintN(64, s << 25n); s ^= s >> 27n;
    return BigInt.asUintN(64, s * 0x2545F4914F6CDD1Dn);
  };
  const int = (n) => Number(next() % BigInt(n));
  const bytes = (n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = int(256); return hexlify(b); };
  const big = (bits) => { let v = 0n; for (let i = 0; i < bits; i += 64) v = (v << 64n) | next(); return BigInt.asUintN(bits, v); };
  return { next, int, bytes, big, pick: (a) => a[int(a.length)] };
}

/** A quantity in one of the accepted JSON spellings. */
function qty(r, v) {
  switch (r.int(4)) {
    case 0: return v <= 9007199254740991n ? Number(v) : '0x' + v.toString(16);
    case 1: return v.toString(10);
    case 2: return '0x' + v.toString(16);
    default: return '0x' + v.toString(16).padStart(r.int(3) * 8 + 1, '0');
  }
}

function gas(r, bits) {
  const b = r.pick([8, 16, 24, 32, 64, bits]);
  return r.big(b) >> BigInt(r.int(Math.min(b, 8)));
}

function addr(r) {
  const a = getAddress(r.bytes(20));
  return r.pick([a, a.toLowerCase(), a]);
}

function bytesField(r, max) {
  return r.int(4) === 0 ? '0x' : r.bytes(r.int(max + 1));
}

/** A random sign_userop request (without key_id/secret) for version v. */
export function randomRequest(r, v) {
  const req = {
    entry_point: addr(r), chainId: qty(r, r.pick([1n, 10n, 137n, 8453n, 31337n, 11155111n, r.big(64), r.big(256)])),
    entry_point_version: v,
  };
  if (r.int(5) === 0) req.signature_scheme = r.pick(['eip191', 'raw']);
  const op = { sender: addr(r), nonce: qty(r, r.int(3) === 0 ? r.big(256) : BigInt(r.int(1000))), callData: bytesField(r, 400) };
  const unpacked = v !== '0.6' && r.int(2) === 0;
  if (v === '0.6' || unpacked) {
    const bits = v === '0.6' ? 256 : 128;
    for (const f of ['callGasLimit', 'verificationGasLimit', 'maxFeePerGas', 'maxPriorityFeePerGas']) op[f] = qty(r, gas(r, bits));
  }
  op.preVerificationGas = qty(r, gas(r, 256));
  if (v === '0.6' || !unpacked) {
    if (r.int(3)) op.initCode = bytesField(r, 120);
    if (r.int(3)) op.paymasterAndData = bytesField(r, 120);
    if (v !== '0.6') {
      op.accountGasLimits = r.bytes(32);
      op.gasFees = r.bytes(32);
    }
  } else {
    if (r.int(2)) { op.factory = addr(r); if (r.int(3)) op.factoryData = bytesField(r, 100); }
    if (r.int(2)) {
      op.paymaster = addr(r);
      if (r.int(4)) op.paymasterVerificationGasLimit = qty(r, gas(r, 128));
      if (r.int(4)) op.paymasterPostOpGasLimit = qty(r, gas(r, 128));
      if (r.int(3)) op.paymasterData = bytesField(r, 100);
    }
  }
  if (r.int(3) === 0) op.signature = bytesField(r, 65);
  if (v === '0.8' && r.int(4) === 0) {           // an EIP-7702 account
    const delegate = addr(r);
    const tail = r.int(2) ? r.bytes(r.int(60) + 1) : '0x';
    const marker = r.pick([MARKER_7702, '0x7702', '0x770200', MARKER_7702]);
    if (unpacked) { op.factory = r.pick(['0x7702', MARKER_7702]); op.factoryData = tail; }
    else op.initCode = marker.length === 42 ? concat([marker, tail]) : marker;   // short: no tail
    if (r.int(2)) req.eip7702_delegate = delegate;
    else op.eip7702Auth = { chainId: '0x1', address: delegate, nonce: '0x0', yParity: '0x0', r: '0x01', s: '0x01' };
  }
  req.user_operation = op;
  return req;
}
