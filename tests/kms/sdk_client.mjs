// Drives the KMS stand-in with the AWS SDK for JavaScript v3
// (@aws-sdk/client-kms, pinned in package.json): the SDK signs with SigV4
// and speaks the KMS JSON 1.1 protocol, so these calls succeeding shows the
// stand-in speaks what the SDKs speak.  Run by tests/kms/test_standin.py with
// KMS_ENDPOINT, KMS_REGION, KMS_AKID, KMS_SECRET, KMS_KEY_ID and
// NODE_EXTRA_CA_CERTS (the stand-in's test CA).  Prints
// "sdk: N passed, M failed" last; exits non-zero on any failure.
import {
  KMSClient, EncryptCommand, DecryptCommand, GenerateRandomCommand,
} from '@aws-sdk/client-kms';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const client = (secret) => new KMSClient({
  endpoint: env('KMS_ENDPOINT'),
  region: env('KMS_REGION'),
  credentials: { accessKeyId: env('KMS_AKID'), secretAccessKey: secret },
  maxAttempts: 1,
});

let passed = 0;
let failed = 0;
const check = (name, ok, detail = '') => {
  if (ok) passed += 1; else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ` ${detail}`}`);
};

async function errorName(promise) {
  try {
    await promise;
    return 'no error';
  } catch (e) {
    return e.name;
  }
}

async function main() {
  const kms = client(env('KMS_SECRET'));
  const keyId = env('KMS_KEY_ID');
  const plaintext = new TextEncoder().encode('sealed by the AWS SDK for JavaScript v3');
  const context = { key_id: 'sdk-1', chain: 'eth' };

  const enc = await kms.send(new EncryptCommand({
    KeyId: keyId, Plaintext: plaintext, EncryptionContext: context,
  }));
  check('Encrypt answers a CiphertextBlob and the key ARN',
    enc.CiphertextBlob instanceof Uint8Array && enc.CiphertextBlob.length > 28
      && String(enc.KeyId).endsWith(`:key/${keyId}`), JSON.stringify(enc.KeyId));

  const dec = await kms.send(new DecryptCommand({
    CiphertextBlob: enc.CiphertextBlob, EncryptionContext: context,
  }));
  check('Decrypt returns the plaintext',
    Buffer.from(dec.Plaintext).equals(Buffer.from(plaintext)));

  const name = await errorName(kms.send(new DecryptCommand({
    CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { ...context, key_id: 'sdk-2' },
  })));
  check('Decrypt with another context is InvalidCiphertextException',
    name === 'InvalidCiphertextException', name);

  const rnd = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 32 }));
  check('GenerateRandom returns 32 bytes', rnd.Plaintext && rnd.Plaintext.length === 32);

  const bad = await errorName(client(`${env('KMS_SECRET')}x`).send(new EncryptCommand({
    KeyId: keyId, Plaintext: plaintext,
  })));
  check('a wrong secret is InvalidSignatureException', bad === 'InvalidSignatureException', bad);
}

try {
  await main();
} catch (e) {
  failed += 1;
  console.log(`FAIL unexpected error: ${e.name}: ${e.message}`);
}
console.log(`sdk: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
