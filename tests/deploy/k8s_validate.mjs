// Strict, offline validation of rendered Kubernetes manifests.
//
//   kubectl kustomize contrib/k8s/overlays/prod | node k8s_validate.mjs NAME
//   node k8s_validate.mjs --self-test < rendered.yaml
//
// Two independent bundled schema sources, no cluster and no network:
//  - kubernetes-models (npm): the Kubernetes OpenAPI schemas compiled to ajv
//    validators: types, formats (int32...), enums, required fields.  Its
//    schemas do not forbid unknown fields, so:
//  - @kubernetes/client-node (npm): the generated model of every API type
//    lists each field and its type (attributeTypeMap).  We walk every object
//    against it and reject any field the API does not define and any value
//    of the wrong JSON type -- what `kubectl apply --validate=strict` does
//    on a server.
// Then the deployment properties the manifests promise (two replicas across
// zones and nodes, the enclave device, hugepages, requests = limits,
// probes, hardening, PDB, IRSA, internal NLB, egress only to 443 and DNS),
// and that the pod runs the real roles: the gateway and proxy containers
// run signerd with the ConfigMap's gateway.conf (role gateway, HTTPS,
// DynamoDB, the enclave on vsock) and proxy.conf (role proxy, relay to KMS),
// whose region, vsock CID and ports, KMS host and listener ports agree with
// each other, with the containers' ports and env, and with the enclave
// image's config (ENCLAVE_CONF, default enclave/enclave.conf).
// K8S_CONFIG_OUT=DIR writes the ConfigMap's files there (tests/deploy/k8s.sh
// runs signerd --check-config on them).
// --self-test: breaks a valid Deployment in several ways; each must fail.
// Prints "k8s-NAME: N passed, M failed".
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const yaml = require('js-yaml');
const modelsDir = path.join(path.dirname(require.resolve('@kubernetes/client-node/package.json')), 'dist', 'gen', 'models');
const models = await import(pathToFileURL(path.join(modelsDir, 'all.js')).href);

const selfTest = process.argv[2] === '--self-test';
const name = selfTest ? 'self-test' : (process.argv[2] || 'manifests');
let passed = 0, failed = 0;
const check = (ok, what, detail) => {
  if (ok) passed++; else { failed++; console.log(`FAIL ${what}${detail ? `: ${detail}` : ''}`); }
  return ok;
};

// ---------------------------------------------------------------- schemas

/** client-node model class name for apiVersion + kind: apps/v1 Deployment -> V1Deployment. */
function modelName(apiVersion, kind) {
  const version = apiVersion.split('/').pop();
  return version.charAt(0).toUpperCase() + version.slice(1) + kind;
}

/** Errors of value against client-node type `type` at path p (unknown fields, JSON types). */
function walk(value, type, p, errors) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (!Array.isArray(value)) { errors.push(`${p}: expected an array`); return; }
    value.forEach((v, i) => walk(v, m[1], `${p}[${i}]`, errors));
  } else if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (typeof value !== 'object' || Array.isArray(value)) { errors.push(`${p}: expected a map`); return; }
    for (const [k, v] of Object.entries(value)) walk(v, m[1], `${p}.${k}`, errors);
  } else if (type === 'string' || type === 'Date') {
    if (typeof value !== 'string') errors.push(`${p}: expected a string, got ${JSON.stringify(value)}`);
  } else if (type === 'number') {
    if (typeof value !== 'number') errors.push(`${p}: expected a number, got ${JSON.stringify(value)}`);
  } else if (type === 'boolean') {
    if (typeof value !== 'boolean') errors.push(`${p}: expected a boolean, got ${JSON.stringify(value)}`);
  } else if (type === 'IntOrString') {
    if (typeof value !== 'string' && !Number.isInteger(value)) errors.push(`${p}: expected an integer or a string`);
  } else if (type === 'any' || type === 'object') {
    // free-form
  } else {
    const cls = models[type];
    if (!cls || !cls.attributeTypeMap) { errors.push(`${p}: no schema for type ${type}`); return; }
    if (typeof value !== 'object' || Array.isArray(value)) { errors.push(`${p}: expected an object (${type})`); return; }
    const fields = new Map(cls.attributeTypeMap.map((a) => [a.baseName, a.type]));
    for (const [k, v] of Object.entries(value)) {
      if (!fields.has(k)) errors.push(`${p}.${k}: unknown field in ${type}`);
      else walk(v, fields.get(k), `${p}.${k}`, errors);
    }
  }
}

/** kubernetes-models' compiled validator for the document's kind. */
async function modelsValidate(doc) {
  const [group, version] = doc.apiVersion.includes('/') ? doc.apiVersion.split('/') : ['', doc.apiVersion];
  const mod = group ? `kubernetes-models/${group}/${version}/${doc.kind}` : `kubernetes-models/${version}/${doc.kind}`;
  let Cls;
  try { Cls = (await import(mod))[doc.kind]; } catch (e) { return `no kubernetes-models schema for ${doc.apiVersion} ${doc.kind}`; }
  try { new Cls(doc).validate(); return null; } catch (e) { return e.message; }
}

async function schemaErrors(doc) {
  const errors = [];
  if (!doc || typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string') return ['apiVersion and kind required'];
  const type = modelName(doc.apiVersion, doc.kind);
  if (!models[type]) return [`unknown kind ${doc.apiVersion} ${doc.kind}`];
  walk(doc, type, doc.kind, errors);
  const e = await modelsValidate(doc);
  if (e) errors.push(`kubernetes-models: ${e}`);
  return errors;
}

// ------------------------------------------------------------- properties

const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function properties(docs) {
  const by = (kind) => docs.filter((d) => d.kind === kind);
  const [dep] = by('Deployment');
  if (!check(dep, 'a Deployment')) return;
  const spec = dep.spec, pod = spec.template.spec;
  check(spec.replicas === 2, 'two replicas');
  const tsc = pod.topologySpreadConstraints || [];
  for (const key of ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'])
    check(tsc.some((t) => t.topologyKey === key && t.maxSkew === 1), `spread across ${key}`);
  check(spec.strategy?.rollingUpdate?.maxUnavailable === 0, 'rolling update never below the replica count');
  const byName = Object.fromEntries(pod.containers.map((c) => [c.name, c]));
  check(byName.gateway && byName.proxy && byName.enclave, 'gateway, proxy and enclave containers');
  for (const c of pod.containers) {
    const sc = c.securityContext || {};
    check(sc.readOnlyRootFilesystem === true && sc.allowPrivilegeEscalation === false &&
      eq(sc.capabilities?.drop, ['ALL']) && !sc.privileged, `${c.name}: read-only root, no privilege escalation, capabilities dropped`);
    check(c.resources && eq(c.resources.requests, c.resources.limits), `${c.name}: requests = limits`);
  }
  for (const n of ['gateway', 'proxy'])
    check(byName[n]?.securityContext?.runAsNonRoot === true, `${n}: runs as non-root`);
  const enc = byName.enclave;
  if (enc) {
    check(enc.resources.limits['aws.ec2.nitro/nitro_enclaves'] === '1', 'enclave: the Nitro device plugin resource');
    check(Object.keys(enc.resources.limits).some((k) => k.startsWith('hugepages-')), 'enclave: hugepages');
    check(pod.volumes.some((v) => /^HugePages/.test(v.emptyDir?.medium || '')), 'a hugepages emptyDir');
    check(eq(enc.command, ['/bin/sh', '/etc/enclave-signer/launch-enclave.sh']), 'enclave: the nitro-cli launcher');
  }
  const gw = byName.gateway;
  check(gw?.livenessProbe?.httpGet?.path === '/healthz' && gw?.readinessProbe?.httpGet?.path === '/readyz',
    'gateway: liveness /healthz, readiness /readyz');
  const debug = enc?.env?.find((e) => e.name === 'ENCLAVE_DEBUG')?.value;
  if (dep.metadata.namespace === 'enclave-signer') check(debug === '0', 'prod: the enclave does not run in debug mode');
  const [pdb] = by('PodDisruptionBudget');
  check(pdb && pdb.spec.minAvailable === 1 && eq(pdb.spec.selector.matchLabels, spec.selector.matchLabels),
    'PodDisruptionBudget keeps one of the pods');
  const [sa] = by('ServiceAccount');
  check(sa && /^arn:aws:iam::\d{12}:role\//.test(sa.metadata.annotations?.['eks.amazonaws.com/role-arn'] || '') &&
    pod.serviceAccountName === sa.metadata.name, 'ServiceAccount with the IRSA role annotation');
  const [svc] = by('Service');
  check(svc && svc.spec.type === 'LoadBalancer' &&
    svc.metadata.annotations?.['service.beta.kubernetes.io/aws-load-balancer-scheme'] === 'internal', 'an internal NLB Service');
  const [np] = by('NetworkPolicy');
  if (check(np && np.spec.policyTypes.includes('Egress'), 'a NetworkPolicy restricting egress')) {
    const ports = np.spec.egress.flatMap((r) => (r.ports || [{ port: 'any' }]).map((x) => x.port));
    check(ports.length > 0 && ports.every((x) => x === 443 || x === 53), 'egress only to 443 and DNS', ports.join(','));
    check(np.spec.egress.every((r) => (r.to || []).length > 0), 'every egress rule names its destinations');
  }
  roleConfigs(docs, pod, byName);
}


// ------------------------------------------------------------ role configs

/** libconfig text without comments (# and // to the end of a line, C blocks). */
const uncomment = (t) => t.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^"\w])(#|\/\/)[^\n]*/g, '$1');
/** The body of group `name = { ... }` (nested braces matched), or ''. */
function group(t, name) {
  const m = new RegExp(`(^|[;\\s{])${name}\\s*[=:]\\s*\\{`).exec(t);
  if (!m) return '';
  let depth = 1, i = m.index + m[0].length;
  const start = i;
  for (; i < t.length && depth > 0; i++) depth += t[i] === '{' ? 1 : t[i] === '}' ? -1 : 0;
  return t.slice(start, i - 1);
}
/** String setting `key` directly in text t (first match), or undefined. */
const str = (t, key) => new RegExp(`(^|[;\\s{])${key}\\s*[=:]\\s*"([^"]*)"`).exec(t)?.[2];
/** Listeners: [{address, protocol, upstream}] of the `listen = ( ... )` list. */
function listeners(t) {
  const m = /(^|[;\s])listen\s*[=:]\s*\(/.exec(t);
  if (!m) return [];
  const body = t.slice(m.index + m[0].length, t.indexOf(')', m.index + m[0].length));
  return [...body.matchAll(/\{([^{}]*)\}/g)]
    .map((g) => ({ address: str(g[1], 'address'), protocol: str(g[1], 'protocol') || 'http', upstream: str(g[1], 'upstream') }));
}

function roleConfigs(docs, pod, byName) {
  const cm = docs.find((d) => d.kind === 'ConfigMap' &&
    pod.volumes.some((v) => v.name === 'config' && v.configMap?.name === d.metadata.name));
  if (!check(cm && cm.data, 'the config volume is a ConfigMap of the rendered output')) return;
  const out = process.env.K8S_CONFIG_OUT;
  if (out) {
    fs.mkdirSync(out, { recursive: true });
    for (const [f, text] of Object.entries(cm.data)) fs.writeFileSync(path.join(out, f), text);
  }
  const gwText = cm.data['gateway.conf'], pxText = cm.data['proxy.conf'];
  if (!check(gwText && pxText && cm.data['gateway-tls.conf'], 'ConfigMap: gateway.conf, gateway-tls.conf, proxy.conf')) return;
  const gw = uncomment(gwText), tls = uncomment(cm.data['gateway-tls.conf']), px = uncomment(pxText);
  const encFile = process.env.ENCLAVE_CONF || path.join(here, '..', '..', 'enclave', 'enclave.conf');
  const enc = uncomment(fs.readFileSync(encFile, 'utf8'));

  // The commands: signerd with these files, nowhere AWS's vsock-proxy.
  const conf = '/etc/enclave-signer';
  check(eq(byName.gateway?.command, ['/usr/bin/signerd', '-c', `${conf}/gateway.conf`]), 'gateway: signerd -c gateway.conf');
  check(eq(byName.proxy?.command, ['/usr/bin/signerd', '-c', `${conf}/proxy.conf`]), 'proxy: signerd -c proxy.conf');
  check(!pod.containers.some((c) => /vsock-proxy/.test(JSON.stringify([c.command, c.args]))), 'no container runs vsock-proxy');
  for (const n of ['gateway', 'proxy'])
    check(byName[n]?.volumeMounts?.some((m) => m.name === 'config' && m.mountPath === conf), `${n}: the ConfigMap at ${conf}`);
  check(/@include\s+"gateway-tls.conf"/.test(gwText), 'gateway.conf includes gateway-tls.conf');

  // The roles and what they use.
  check(str(gw, 'role') === 'gateway', 'gateway.conf: role "gateway"', str(gw, 'role'));
  check(str(px, 'role') === 'proxy', 'proxy.conf: role "proxy"', str(px, 'role'));
  check(str(enc, 'role') === 'enclave', 'enclave image config: role "enclave"', str(enc, 'role'));
  const ks = group(gw, 'keystore'), gwg = group(gw, 'gateway'), seal = group(enc, 'sealer');
  check(str(ks, 'type') === 'dynamodb' && !!str(ks, 'table'), 'gateway: the DynamoDB keystore with a table');
  check(str(group(gw, 'sealer'), 'type') === 'none', 'gateway: no sealer');
  check(/forward_credentials\s*=\s*true/.test(gwg), 'gateway: forwards the pod credentials to the enclave');
  const gwl = listeners(gw), pxl = listeners(px), encl = listeners(enc);

  // TLS from the mounted Secret; mTLS where the overlay asks for it.
  const tlsg = group(tls, 'tls');
  const secretAt = (vol) => {
    const v = pod.volumes.find((x) => x.secret?.secretName === vol);
    return v && byName.gateway?.volumeMounts?.find((m) => m.name === v.name)?.mountPath;
  };
  const tlsDir = secretAt('enclave-signer-tls');
  check(gwl.some((l) => l.protocol === 'https') && tlsDir && str(tlsg, 'cert') === `${tlsDir}/tls.crt` &&
    str(tlsg, 'key') === `${tlsDir}/tls.key`, 'gateway: HTTPS with the certificate of the mounted Secret enclave-signer-tls');
  const ca = str(tlsg, 'client_ca');
  if (ca) {
    const caDir = secretAt('enclave-signer-client-ca');
    check(caDir && ca === `${caDir}/ca.crt`, 'gateway: mTLS client CA from the mounted Secret enclave-signer-client-ca', ca);
  }
  if (pod.containers && docs.find((d) => d.kind === 'Deployment').metadata.namespace === 'enclave-signer')
    check(!!ca, 'prod: mTLS (client certificates required)');

  // The vsock path: gateway -> enclave (CID, port), enclave -> proxy (port), proxy -> KMS (host).
  const cid = byName.enclave?.env?.find((e) => e.name === 'ENCLAVE_CID')?.value;
  const encPort = encl.find((l) => l.protocol === 'frames')?.address?.match(/^vsock:any:(\d+)$/)?.[1];
  const enclaves = (/enclaves\s*=\s*\[([^\]]*)\]/.exec(gwg)?.[1] || '').match(/"[^"]*"/g) || [];
  check(encPort && eq(enclaves, [`"vsock:${cid}:${encPort}"`]), 'gateway: the enclave at vsock:ENCLAVE_CID:<enclave.conf port>',
    `${enclaves} vs CID ${cid}, port ${encPort}`);
  const relay = pxl.filter((l) => l.protocol === 'relay');
  const kmsPort = str(seal, 'endpoint')?.match(/^vsock:3:(\d+)$/)?.[1];
  const host = str(seal, 'host'), region = str(seal, 'region');
  check(relay.length === 1 && relay[0].address === `vsock:any:${kmsPort}` && relay[0].upstream === `${host}:443`,
    'proxy: relays vsock:any:<enclave sealer port> to the enclave sealer\'s KMS host', JSON.stringify(relay));
  check(host === `kms.${region}.amazonaws.com`, 'enclave image: KMS host of its region', host);
  const allow = [...group(px, 'proxy').matchAll(/address\s*=\s*"([^"]*)"\s*;\s*port\s*=\s*(\d+)/g)].map((m) => `${m[1]}:${m[2]}`);
  check(eq(allow.slice().sort(), [`kms.${region}.amazonaws.com:443`, `sts.${region}.amazonaws.com:443`]),
    'proxy: allowlist = the region\'s KMS and STS endpoints', allow.join(','));
  const envRegion = byName.gateway?.env?.find((e) => e.name === 'AWS_REGION')?.value;
  check([str(ks, 'region'), str(gwg, 'region'), envRegion].every((r) => r === region),
    'one region: keystore, gateway, AWS_REGION and the enclave image', `${str(ks, 'region')} ${str(gwg, 'region')} ${envRegion} ${region}`);

  // Container ports and probes match the listeners.
  const portOf = (c, name) => c?.ports?.find((p) => p.name === name)?.containerPort;
  const tcp = (ls, proto) => ls.filter((l) => l.protocol === proto).map((l) => Number(l.address.split(':').pop()));
  check(eq(tcp(gwl, 'https'), [portOf(byName.gateway, 'https')]) && eq(tcp(gwl, 'health'), [portOf(byName.gateway, 'http')]),
    'gateway: container ports https and http are its listeners (http: the probe-only "health" listener)', JSON.stringify(gwl));
  check(gwl.every((l) => l.protocol === 'https' || l.protocol === 'health'),
    'gateway: the API only over HTTPS (no plain "http" listener beside the probe port)', JSON.stringify(gwl));
  check(eq(tcp(pxl, 'health'), [portOf(byName.proxy, 'proxy-health')]) &&
    byName.proxy?.readinessProbe?.httpGet?.path === '/readyz' && byName.proxy?.livenessProbe?.httpGet?.path === '/healthz',
    'proxy: probes on its health listener');
  const svc = docs.find((d) => d.kind === 'Service'), np = docs.find((d) => d.kind === 'NetworkPolicy');
  check(svc?.spec.ports.every((p) => p.targetPort === 'https'), 'the Service sends clients to the HTTPS listener only');
  check(eq(np?.spec.ingress.flatMap((r) => r.ports.map((p) => p.port)), [portOf(byName.gateway, 'https')]),
    'the NetworkPolicy admits the HTTPS port only');
}

// ------------------------------------------------------------------ main

const input = fs.readFileSync(0, 'utf8');
const docs = yaml.loadAll(input).filter((d) => d);
if (selfTest) {
  const dep = docs.find((d) => d.kind === 'Deployment');
  check(dep && (await schemaErrors(dep)).length === 0, 'the unbroken Deployment is valid');
  const breakages = [
    ['unknown field in a container', (d) => { d.spec.template.spec.containers[0].imagePullPolcy = 'Always'; }],
    ['unknown field in the spec', (d) => { d.spec.replica = 2; }],
    ['replicas as a string', (d) => { d.spec.replicas = '2'; }],
    ['port as a string', (d) => { d.spec.template.spec.containers[0].ports[0].containerPort = '8080'; }],
    ['missing container image name', (d) => { delete d.spec.template.spec.containers[0].name; }],
    ['label value not a string', (d) => { d.metadata.labels.x = 5; }],
    ['readOnlyRootFilesystem as a string', (d) => { d.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = 'yes'; }],
  ];
  for (const [what, breakIt] of breakages) {
    const d = structuredClone(dep);
    breakIt(d);
    const errs = await schemaErrors(d);
    check(errs.length > 0, `rejected: ${what}`);
    if (errs.length) console.log(`ok   rejected ${what}: ${errs[0]}`);
  }
} else {
  check(docs.length > 0, 'some documents');
  for (const d of docs) {
    const errs = await schemaErrors(d);
    check(errs.length === 0, `${d.kind}/${d.metadata?.name} is valid`, errs.join('; '));
  }
  properties(docs);
}
console.log(`k8s-${name}: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
