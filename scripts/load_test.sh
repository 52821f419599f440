#!/bin/sh
# Load test of a running enclave-signer (standalone or gateway):
#
#   scripts/load_test.sh RUNNERS ROUNDS [URL]      (URL default http://127.0.0.1:8080)
#
# The reference wallet's interface: RUNNERS parallel runners; each first
# creates its own key (POST /key), then runs ROUNDS rounds, a round being a
# transaction signature (POST /key/ID/tx_signature) and a userOp signature
# (POST /key/ID/userop_signature), one after the other.  Prints requests,
# errors, throughput and p50/p95/p99 latency per kind; exits 1 on any error
# (a non-200 answer, a malformed answer, a connection failure), 2 on bad
# arguments.  Needs node (>= 18); no npm packages.
#
# URL may be http:// (a standalone signer, the gateway's loopback listener)
# or https:// (the gateway's TLS listener, with or without mTLS).
#
# Environment (the names scripts/topology.sh up prints):
#   CA_FILE          PEM file of the CA(s) that issued the server's
#                    certificate (https; default: the system's CAs)
#   CLIENT_CERT      PEM client certificate for mTLS (https; with CLIENT_KEY)
#   CLIENT_KEY       PEM private key of CLIENT_CERT
#   LOAD_TIMEOUT_MS  per request (default 30000)
# e.g.  eval "$(scripts/topology.sh up)"; export CA_FILE CLIENT_CERT CLIENT_KEY
#       scripts/load_test.sh 4 50 "$GATEWAY_URL"
#
# For the Postman collection's folders (load_testing_key_generation,
# load_testing_signing) with newman instead, see contrib/postman/README.md.
set -eu
case ${1:-} in
-h|--help) sed -n '2,/^set -eu/s/^# \{0,1\}//p' "$0"; exit 0 ;;
esac
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 RUNNERS ROUNDS [URL]" >&2
    exit 2
fi
command -v node >/dev/null 2>&1 || { echo "$0: needs node" >&2; exit 2; }
exec node --input-type=module - "$@" <<'EOF'
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import fs from 'node:fs';

const [runnersArg, roundsArg, urlArg] = process.argv.slice(2);
const runners = Number(runnersArg), rounds = Number(roundsArg);
if (!Number.isInteger(runners) || runners < 1 || !Number.isInteger(rounds) || rounds < 1) {
  console.error('load_test: RUNNERS and ROUNDS must be positive integers');
  process.exit(2);
}
const base = new URL(urlArg || 'http://127.0.0.1:8080');
const basePath = base.pathname.replace(/\/+$/, '');
if (base.protocol !== 'http:' && base.protocol !== 'https:') {
  console.error(`load_test: URL must be http:// or https://, not ${base.protocol}`);
  process.exit(2);
}
const lib = base.protocol === 'https:' ? https : http;
// TLS material from CA_FILE, CLIENT_CERT, CLIENT_KEY (https only).
function tlsOptions() {
  const o = {};
  const files = { ca: 'CA_FILE', cert: 'CLIENT_CERT', key: 'CLIENT_KEY' };
  for (const [opt, name] of Object.entries(files)) {
    const f = process.env[name];
    if (!f) continue;
    try { o[opt] = fs.readFileSync(f); } catch (e) {
      console.error(`load_test: ${name}: cannot read ${f}: ${e.code || e.message}`);
      process.exit(2);
    }
  }
  if (!o.cert !== !o.key) {
    console.error('load_test: CLIENT_CERT and CLIENT_KEY go together');
    process.exit(2);
  }
  return o;
}
const agent = new lib.Agent({ keepAlive: true, maxSockets: runners, ...(lib === https ? tlsOptions() : {}) });
const timeoutMs = Number(process.env.LOAD_TIMEOUT_MS || 30000);

const lat = { key: [], tx: [], userop: [] };
const errors = [];

function post(path, body) {
  return new Promise((resolve) => {
    const data = Buffer.from(JSON.stringify(body));
    const t0 = process.hrtime.bigint();
    const req = lib.request({ host: base.hostname, port: base.port, path: basePath + path, method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length }, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        let json = null;
        try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { /* malformed */ }
        resolve({ status: res.statusCode, json, ms });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ status: 0, json: null, ms: Number(process.hrtime.bigint() - t0) / 1e6, error: e.message }));
    req.end(data);
  });
}

function record(kind, r, valid) {
  if (r.status === 200 && r.json && r.json.enclave_status === 200 && valid(r.json.enclave_result || {})) {
    lat[kind].push(r.ms);
    return true;
  }
  const why = r.error || `HTTP ${r.status} ${JSON.stringify(r.json?.enclave_result ?? null)}`;
  errors.push(`${kind}: ${why}`);
  return false;
}

const tx = (nonce) => ({ value: 0.01, to: '0xa5D3241A1591061F2a4bB69CA0215F66520E67cf', nonce, type: 2, chainId: 1,
  gas: 21000, maxFeePerGas: 100000000000, maxPriorityFeePerGas: 3000000000 });

async function runner() {
  const secret = crypto.randomBytes(32).toString('hex');
  const k = await post('/key', { secret });
  if (!record('key', k, (x) => typeof x.key_id === 'string' && /^0x[0-9a-fA-F]{40}$/.test(x.address || ''))) return;
  const id = k.json.enclave_result.key_id;
  for (let i = 0; i < rounds; i++) {
    record('tx', await post(`/key/${id}/tx_signature`, { key_id: id, secret, transaction_payload: tx(i) }),
      (x) => /^0x02[0-9a-f]+$/.test(x.transaction_signed || '') && /^0x[0-9a-f]{64}$/.test(x.transaction_hash || ''));
    record('userop', await post(`/key/${id}/userop_signature`,
      { key_id: id, secret, transaction_payload: { userOpHash: crypto.randomBytes(32).toString('hex') } }),
      (x) => /^0x[0-9a-f]{130}$/.test(x.signature || ''));
  }
}

const pct = (sorted, p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
const t0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: runners }, runner));
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
agent.destroy();

const signed = lat.tx.length + lat.userop.length;
console.log(`load test: ${runners} runners x ${rounds} rounds against ${base.href}`);
console.log(`duration: ${secs.toFixed(3)} s`);
console.log(`requests: ${lat.key.length + signed + errors.length} (keys ${lat.key.length}, signatures ${signed}), errors: ${errors.length}`);
console.log(`throughput: ${(signed / secs).toFixed(1)} signatures/s`);
for (const kind of ['key', 'tx', 'userop', 'all']) {
  const s = (kind === 'all' ? [...lat.tx, ...lat.userop] : lat[kind]).slice().sort((a, b) => a - b);
  if (!s.length) continue;
  console.log(`${kind.padEnd(6)} n=${String(s.length).padEnd(6)} p50 ${pct(s, 50).toFixed(1)} ms  p95 ${pct(s, 95).toFixed(1)} ms  p99 ${pct(s, 99).toFixed(1)} ms  max ${s[s.length - 1].toFixed(1)} ms`);
}
for (const e of errors.slice(0, 10)) console.log(`error: ${e}`);
process.exit(errors.length === 0 && signed === 2 * runners * rounds ? 0 : 1);
EOF
