// The AWS credential chain (engine/creds.c, through creds_tool) against
// local stand-ins of each source's endpoint: STS AssumeRoleWithWebIdentity,
// the container credentials endpoint (EKS Pod Identity), and IMDSv2.  Every
// endpoint is on 127.0.0.1; IMDS is disabled in every case but its own, so
// nothing ever goes to a link-local address.

import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { setup, tempDirs, watchdog } from '../lib/procs.mjs';

const NAME = 'creds';
setup(NAME);
watchdog(110, NAME);

const buildDir = process.env.SIGNER_BUILDDIR || path.resolve('../..');
const tool = path.join(buildDir, 'tests/dynamodb/creds_tool');
const execFileP = promisify(execFile);
const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');

let passed = 0;
let failed = 0;
function check(cond, what, detail) {
  if (cond) { passed++; return; }
  failed++;
  console.log(`FAIL ${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
}

// Runs creds_tool with only the given AWS variables (none inherited).
async function chain(env, n = 1) {
  const clean = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) clean[k] = v;
  const { stdout } = await execFileP(tool, [String(n)], {
    env: { ...clean, AWS_EC2_METADATA_DISABLED: 'true', ...env }, timeout: 30000 });
  return JSON.parse(stdout);
}

function serve(handler) {
  const hits = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { hits.push({ method: req.method, url: req.url, headers: req.headers, body }); handler(req, res, body); });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () =>
    resolve({ server, hits, url: `http://127.0.0.1:${server.address().port}` })));
}

const iso = (secondsFromNow) => new Date(Date.now() + secondsFromNow * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
const later = iso(3600);
const session = { AccessKeyId: 'ASIACONTAINERTEST', SecretAccessKey: 'container/secret', Token: 'container-token', Expiration: later };

async function testEnv() {
  const r = await chain({ AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'env-secret', AWS_SESSION_TOKEN: 'env-token' });
  check(r.rc === 0 && r.source === 'env' && r.access_key_id === 'AKIDENV', 'environment', r);
  check(r.secret_sha256 === sha('env-secret') && r.token_sha256 === sha('env-token') && r.expiration === 0, 'environment values', r);
  const none = await chain({});
  check(none.rc === -8, 'no source configured: UNAVAILABLE', none);
}

async function testWebIdentity(dir) {
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'eyJhbGciOi.web+identity/token=\n');
  const sts = await serve((req, res, body) => {
    const f = new URLSearchParams(body);
    const ok = req.method === 'POST' && f.get('Action') === 'AssumeRoleWithWebIdentity' &&
      f.get('Version') === '2011-06-15' && f.get('RoleArn') === 'arn:aws:iam::123456789012:role/signer' &&
      f.get('WebIdentityToken') === 'eyJhbGciOi.web+identity/token=' && f.get('RoleSessionName') === 'pod-1';
    if (!ok) { res.writeHead(400); res.end('<ErrorResponse/>'); return; }
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(`<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult><Credentials>
    <AccessKeyId>ASIAWEBIDENTITY</AccessKeyId><SecretAccessKey>web/secret+key</SecretAccessKey>
    <SessionToken>web-session-token</SessionToken><Expiration>${later}</Expiration>
  </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`);
  });
  const env = { AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/signer',
    AWS_ROLE_SESSION_NAME: 'pod-1', AWS_ENDPOINT_URL_STS: sts.url };
  const r = await chain(env, 3);
  check(r.rc === 0 && r.source === 'web-identity' && r.access_key_id === 'ASIAWEBIDENTITY', 'web identity', r);
  check(r.secret_sha256 === sha('web/secret+key') && r.token_sha256 === sha('web-session-token'), 'web identity values', r);
  check(r.expiration === Math.floor(Date.parse(later) / 1000), 'web identity expiration', r);
  check(sts.hits.length === 1, 'three gets, one STS call (cached)', sts.hits.length);
  const wrong = await chain({ ...env, AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/other' });
  check(wrong.rc === -8, 'STS refusal: UNAVAILABLE', wrong);
  sts.server.close();
}

async function testContainer(dir) {
  const tokenFile = path.join(dir, 'pod-identity-token');
  fs.writeFileSync(tokenFile, 'pod-identity-authorization');
  let expiration = later;
  const ep = await serve((req, res) => {
    if (req.headers.authorization !== 'pod-identity-authorization') { res.writeHead(401); res.end('{}'); return; }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...session, Expiration: expiration }));
  });
  const env = { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${ep.url}/v1/credentials`, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile };
  let r = await chain(env, 4);
  check(r.rc === 0 && r.source === 'container' && r.access_key_id === 'ASIACONTAINERTEST', 'container endpoint', r);
  check(r.secret_sha256 === sha('container/secret') && r.token_sha256 === sha('container-token'), 'container values', r);
  check(ep.hits.length === 1 && ep.hits[0].url === '/v1/credentials', 'four gets, one call (cached)', ep.hits.length);

  expiration = iso(120); // inside the 5-minute refresh margin
  ep.hits.length = 0;
  r = await chain(env, 3);
  check(r.rc === 0 && ep.hits.length === 3, 'credentials about to expire are fetched again each time', ep.hits.length);
  expiration = later;

  r = await chain({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${ep.url}/v1/credentials`, AWS_CONTAINER_AUTHORIZATION_TOKEN: 'wrong' });
  check(r.rc === -8, 'wrong authorization token: UNAVAILABLE', r);
  r = await chain({ ...env, AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'env-secret' });
  check(r.rc === 0 && r.source === 'env', 'environment comes before the container endpoint', r);
  ep.server.close();
  const t0 = Date.now();
  r = await chain(env);
  check(r.rc === -8 && Date.now() - t0 < 5000, 'container endpoint down: UNAVAILABLE quickly', { r, ms: Date.now() - t0 });
}

async function testImds() {
  let tokens = 0;
  const imds = await serve((req, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token' && req.headers['x-aws-ec2-metadata-token-ttl-seconds'] === '21600') {
      tokens++;
      res.writeHead(200); res.end('imds-session-token'); return;
    }
    if (req.headers['x-aws-ec2-metadata-token'] !== 'imds-session-token') { res.writeHead(401); res.end(); return; }
    if (req.url === '/latest/meta-data/iam/security-credentials/') { res.writeHead(200); res.end('signer-node-role\n'); return; }
    if (req.url === '/latest/meta-data/iam/security-credentials/signer-node-role') {
      res.writeHead(200);
      res.end(JSON.stringify({ Code: 'Success', Type: 'AWS-HMAC', ...session, AccessKeyId: 'ASIAIMDSTEST' }));
      return;
    }
    res.writeHead(404); res.end();
  });
  const r = await chain({ AWS_EC2_METADATA_DISABLED: 'false', AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url }, 2);
  check(r.rc === 0 && r.source === 'imds' && r.access_key_id === 'ASIAIMDSTEST', 'IMDSv2', r);
  check(tokens === 1 && imds.hits.length === 3, 'IMDSv2: token, role, credentials, then cached', imds.hits.map((h) => h.url));
  imds.server.close();
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'creds-'));
  tempDirs.add(dir);
  try {
    await testEnv();
    await testWebIdentity(dir);
    await testContainer(dir);
    await testImds();
  } catch (e) {
    failed++;
    console.log(`FAIL exception: ${e && e.stack ? e.stack : e}`);
  }
  console.log(`${NAME}: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
