// The HMAC a client sends with `hmac` + `timestamp` (docs/hmac.md):
//   hex HMAC-SHA256, keyed by the key's secret, over
//   operation "\n" key_id "\n" JCS(covered fields) "\n" timestamp
// where JCS is RFC 8785: members sorted by UTF-16 code units (JavaScript's
// default sort), no whitespace, JSON.stringify's strings and numbers.
import crypto from 'node:crypto';

/** RFC 8785 text of a JSON value (JSON.stringify does numbers and strings). */
export function jcs(v) {
  if (Array.isArray(v)) return `[${v.map(jcs).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${jcs(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The exact message: operation, key_id, covered fields, timestamp. */
export function hmacMessage(operation, keyId, covered, timestamp) {
  return `${operation}\n${keyId}\n${jcs(covered)}\n${timestamp}`;
}

/** Hex HMAC-SHA256 of hmacMessage(...) keyed by secret. */
export function hmacHex(secret, operation, keyId, covered, timestamp) {
  return crypto.createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(hmacMessage(operation, keyId, covered, timestamp), 'utf8').digest('hex');
}
