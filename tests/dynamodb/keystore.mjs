// The DynamoDB keystore client (engine/keystore/dynamodb.c, driven through
// ddb_tool) against dynalite, with the AWS SDK for JavaScript v3 as the
// third party: it reads what we write, writes what the reference wallet
// wrote, and re-computes our SigV4 signatures.

import { spawn, execFile } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';

import { DynamoDBClient, GetItemCommand, PutItemCommand, DescribeTableCommand }
  from '@aws-sdk/client-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';

import { children, setup, watchdog } from '../lib/procs.mjs';

const NAME = 'keystore';
setup(NAME);
watchdog(170, NAME);

const require = createRequire(import.meta.url);
const buildDir = process.env.SIGNER_BUILDDIR || path.resolve('../..');
const tool = path.join(buildDir, 'tests/dynamodb/ddb_tool');
const REGION = 'eu-west-1';
const TABLE = 'signer-keys';
const CREDS = { accessKeyId: 'AKIDTESTKEYSTORE', secretAccessKey: 'test/secret+key' };

let passed = 0;
let failed = 0;
function check(cond, what, detail) {
  if (cond) { passed++; return; }
  failed++;
  console.log(`FAIL ${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function startDynalite() {
  const port = await freePort();
  const cli = path.join(path.dirname(require.resolve('dynalite/package.json')), 'cli.js');
  const child = spawn(process.execPath, [cli, '--host', '127.0.0.1', '--port', String(port),
    '--createTableMs', '0', '--deleteTableMs', '0', '--updateTableMs', '0'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('dynalite did not start')), 15000);
    child.stdout.on('data', (d) => { if (String(d).includes('listening')) { clearTimeout(t); resolve(); } });
    child.on('exit', (c) => reject(new Error(`dynalite exited ${c}`)));
  });
  return { port, child, url: `http://127.0.0.1:${port}` };
}

const execFileP = promisify(execFile);
async function ddb(endpoint, args, env = {}) {
  const { stdout } = await execFileP(tool, [endpoint, TABLE, REGION, ...args], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey, ...env },
    timeout: 60000,
  });
  return JSON.parse(stdout);
}

const ERR = { OK: 0, NOT_FOUND: -3, CONFLICT: -4, INTERNAL: -7, UNAVAILABLE: -8 };
const hex = (n) => Array.from({ length: n }, (_, i) => ((i * 37 + 11) & 255).toString(16).padStart(2, '0')).join('');

async function testRoundTrip(dyn, sdk) {
  const created = await ddb(dyn.url, ['create']);
  check(created.rc === ERR.OK, 'create table', created);
  const desc = await sdk.send(new DescribeTableCommand({ TableName: TABLE }));
  check(desc.Table.TableStatus === 'ACTIVE', 'table ACTIVE per the SDK', desc.Table.TableStatus);
  check(JSON.stringify(desc.Table.KeySchema) === '[{"AttributeName":"key_id","KeyType":"HASH"}]',
    'key schema: key_id HASH', desc.Table.KeySchema);
  check((await ddb(dyn.url, ['create'])).rc === ERR.OK, 'create again is fine');
  check((await ddb(dyn.url, ['ready'])).ready === 1, 'ready');

  const id = '3f6c1f9e-5d4e-4a61-9b7a-0c1d2e3f4a5b';
  const blob = hex(93);
  const put = await ddb(dyn.url, ['put', id, 'eth', '0xAbC0000000000000000000000000000000000001', 'local-v1', blob]);
  check(put.rc === ERR.OK, 'put', put);
  const item = (await sdk.send(new GetItemCommand({ TableName: TABLE, Key: { key_id: { S: id } }, ConsistentRead: true }))).Item;
  check(item && item.ciphertext.S === Buffer.from(blob, 'hex').toString('base64'), 'SDK sees ciphertext as base64 of the blob', item);
  check(item && item.address.S === '0xAbC0000000000000000000000000000000000001', 'SDK sees address');
  check(item && item.chain.S === 'eth' && item.format.S === 'local-v1', 'SDK sees chain and format');
  check(item && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(item.created_at.S), 'created_at is RFC 3339', item && item.created_at);
  check(item && Object.keys(item).sort().join() === 'address,chain,ciphertext,created_at,format,key_id', 'exactly the schema attributes', item && Object.keys(item));

  const again = await ddb(dyn.url, ['put', id, 'eth', '0x01', 'local-v1', hex(10)]);
  check(again.rc === ERR.CONFLICT, 'second put of the same key_id is a conflict', again);
  const kept = (await sdk.send(new GetItemCommand({ TableName: TABLE, Key: { key_id: { S: id } }, ConsistentRead: true }))).Item;
  check(kept.ciphertext.S === item.ciphertext.S, 'conflicting put changed nothing');

  const got = await ddb(dyn.url, ['get', id]);
  check(got.rc === ERR.OK && got.blob === blob && got.chain === 'eth' && got.format === 'local-v1', 'get returns the record', got);
  const missing = await ddb(dyn.url, ['get', '00000000-0000-4000-8000-000000000000']);
  check(missing.rc === ERR.NOT_FOUND, 'absent key_id is NOT_FOUND', missing);
}

// The same table through the "dynamodb" keystore row that signerd uses.
async function testRow(dyn, sdk) {
  const id = '5a6b7c8d-1e2f-4a3b-8c4d-5e6f7a8b9c0d';
  const blob = hex(61);
  let r = await ddb(dyn.url, ['row-put', id, 'eth', '0x00000000000000000000000000000000000000aa', blob]);
  check(r.rc === ERR.OK && r.ready === 1, 'row: put, ready', r);
  check(r.count === -1, 'row: count is not computed for DynamoDB', r);
  r = await ddb(dyn.url, ['row-put', id, 'eth', '0x01', blob]);
  check(r.rc === ERR.CONFLICT, 'row: second put conflicts', r);
  r = await ddb(dyn.url, ['row-get', id]);
  check(r.rc === ERR.OK && r.blob === blob && r.chain === 'eth' && r.address === '0x00000000000000000000000000000000000000aa', 'row: get', r);
  check((await ddb(dyn.url, ['row-get', '00000000-0000-4000-8000-00000000ffff'])).rc === ERR.NOT_FOUND, 'row: absent');
  r = await ddb(dyn.url, ['row-meta', 'sealer_check', 'aabbcc']);
  check(r.rc === ERR.OK && r.value === 'aabbcc', 'row: meta value round trip', r);
  const item = (await sdk.send(new GetItemCommand({ TableName: TABLE, Key: { key_id: { S: 'meta:sealer_check' } }, ConsistentRead: true }))).Item;
  check(item && item.ciphertext.S === Buffer.from('aabbcc', 'hex').toString('base64'), 'row: meta stored as item meta:NAME', item);
  check((await ddb(dyn.url, ['row-get', 'meta:sealer_check'])).rc === ERR.NOT_FOUND, 'row: a meta item is not a key');
  r = await ddb(dyn.url, ['row-any']);
  check(r.rc === ERR.OK && /^[0-9a-f-]{36}$/.test(r.key_id), 'row: some key_id, never a meta item', r);
}

async function testReferenceItem(dyn, sdk) {
  // The reference wallet's items: key_id, ciphertext (base64), address only.
  const id = 'a8d0b2c4-1e3f-4a5b-8c7d-9e0f1a2b3c4d';
  const blob = Buffer.from(hex(180), 'hex');
  await sdk.send(new PutItemCommand({ TableName: TABLE, Item: {
    key_id: { S: id }, ciphertext: { S: blob.toString('base64') }, address: { S: '0x5B38Da6a701c568545dCfcB03FcB875f56beddC4' } } }));
  const got = await ddb(dyn.url, ['get', id]);
  check(got.rc === ERR.OK && got.blob === blob.toString('hex'), 'reference item: blob read', got);
  check(got.chain === 'eth' && got.format === 'reference', 'reference item: chain eth, format reference', got);
  check(got.address === '0x5B38Da6a701c568545dCfcB03FcB875f56beddC4', 'reference item: address');

  const badId = 'b8d0b2c4-1e3f-4a5b-8c7d-9e0f1a2b3c4d';
  await sdk.send(new PutItemCommand({ TableName: TABLE, Item: {
    key_id: { S: badId }, ciphertext: { S: 'not base64!' }, address: { S: '0x01' } } }));
  check((await ddb(dyn.url, ['get', badId])).rc === ERR.INTERNAL, 'malformed item refused');
}

// A local server that records one request and answers like DescribeTable.
function captureServer() {
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      res.end('{"Table":{"TableStatus":"ACTIVE"}}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, seen, port: server.address().port })));
}

// Signs the captured request again with the SDK's signer at the same time
// and over the same headers, and compares the signatures.
async function sdkSignature(req, creds) {
  const auth = req.headers.authorization;
  const signed = /SignedHeaders=([^,]+)/.exec(auth)[1].split(';');
  const amzDate = req.headers['x-amz-date'];
  const date = new Date(Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8),
    +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15)));
  const headers = {};
  for (const h of signed) headers[h] = req.headers[h];
  const signer = new SignatureV4({ credentials: creds, region: REGION, service: 'dynamodb', sha256: Sha256, applyChecksum: false });
  const [host, port] = req.headers.host.split(':');
  const out = await signer.sign({ method: req.method, protocol: 'http:', hostname: host, port: Number(port),
    path: req.url, headers, body: req.body }, { signingDate: date });
  return { ours: auth, sdk: out.headers.authorization, signed };
}

async function testSignature() {
  const cap = await captureServer();
  const url = `http://127.0.0.1:${cap.port}`;
  try {
    await ddb(url, ['ready']);
    let s = await sdkSignature(cap.seen[0], CREDS);
    check(s.ours === s.sdk, 'SigV4 signature equals the AWS SDK signer\'s', s);
    check(['content-type', 'host', 'x-amz-date', 'x-amz-target'].every((h) => s.signed.includes(h)),
      'signs content-type, host, x-amz-date, x-amz-target', s.signed);
    check(cap.seen[0].headers['x-amz-target'] === 'DynamoDB_20120810.DescribeTable', 'X-Amz-Target');
    check(cap.seen[0].headers['content-type'] === 'application/x-amz-json-1.0', 'Content-Type');

    const token = 'IQoJb3JpZ2luX2VjEXAMPLE/session+token==';
    await ddb(url, ['ready'], { AWS_SESSION_TOKEN: token });
    const req = cap.seen[1];
    check(req.headers['x-amz-security-token'] === token, 'session token sent');
    s = await sdkSignature(req, { ...CREDS, sessionToken: token });
    check(s.signed.includes('x-amz-security-token'), 'session token is signed', s.signed);
    check(s.ours === s.sdk, 'SigV4 with a session token equals the SDK\'s', s);
  } finally {
    cap.server.close();
  }
}

// A proxy in front of dynalite that throttles the first `n` requests.
function throttlingProxy(target, n) {
  let left = n;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (left-- > 0) {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end('{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}');
        return;
      }
      const up = http.request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.end(body);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port })));
}

async function testFaults(dyn) {
  const id = '3f6c1f9e-5d4e-4a61-9b7a-0c1d2e3f4a5b';
  let p = await throttlingProxy(dyn.port, 2);
  let r = await ddb(`http://127.0.0.1:${p.port}`, ['get', id]);
  check(r.rc === ERR.OK && r.throttled === 2 && r.retries === 2, 'two throttles, then success', r);
  p.server.close();

  p = await throttlingProxy(dyn.port, 1000);
  const t0 = Date.now();
  r = await ddb(`http://127.0.0.1:${p.port}`, ['get', id], { DDB_MAX_ATTEMPTS: '4' });
  check(r.rc === ERR.UNAVAILABLE && r.requests === 4, 'always throttled: UNAVAILABLE after 4 attempts', r);
  check(Date.now() - t0 < 5000, 'bounded backoff', Date.now() - t0);
  p.server.close();

  const closed = await freePort();
  const t1 = Date.now();
  r = await ddb(`http://127.0.0.1:${closed}`, ['get', id], { DDB_MAX_ATTEMPTS: '3', DDB_TIMEOUT_MS: '500' });
  check(r.rc === ERR.UNAVAILABLE, 'server down: UNAVAILABLE', r);
  check(Date.now() - t1 < 5000, 'server down: answers quickly', Date.now() - t1);
  r = await ddb(`http://127.0.0.1:${closed}`, ['ready'], { DDB_MAX_ATTEMPTS: '1', DDB_TIMEOUT_MS: '500' });
  check(r.ready === 0, 'server down: not ready', r);

  // A server that accepts and never answers: the per-attempt timeout holds.
  const silent = net.createServer(() => {});
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const t2 = Date.now();
  r = await ddb(`http://127.0.0.1:${silent.address().port}`, ['get', id], { DDB_MAX_ATTEMPTS: '2', DDB_TIMEOUT_MS: '400' });
  check(r.rc === ERR.UNAVAILABLE, 'silent server: UNAVAILABLE', r);
  check(Date.now() - t2 < 3000, 'silent server: no hang', Date.now() - t2);
  silent.close();
}

async function main() {
  const dyn = await startDynalite();
  const sdk = new DynamoDBClient({ region: REGION, endpoint: dyn.url, credentials: CREDS });
  try {
    await testRoundTrip(dyn, sdk);
    await testRow(dyn, sdk);
    await testReferenceItem(dyn, sdk);
    await testSignature();
    await testFaults(dyn);
  } catch (e) {
    failed++;
    console.log(`FAIL exception: ${e && e.stack ? e.stack : e}`);
  }
  sdk.destroy();
  console.log(`${NAME}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
