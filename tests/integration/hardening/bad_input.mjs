// Hardening item 4: malformed input.  Every request below must get a 4xx
// answer of the API shape {"enclave_status": S, "enclave_result": {"error":
// "..."}} with S equal to the HTTP status and a message naming the problem;
// none may add a key (GET /metrics signer_keys unchanged after each), and
// the server must still serve afterwards.
//
// Run: node bad_input.mjs  (env: see common.mjs; BAD_INPUT_ONLY=substring
// runs only the matching cases)

import {
  Checks, watchdog, startSignerd, call, request, rawRequest, rawHttp, openFrames,
  keyCount, randomPrivKey, randomSecret, sleep,
} from './common.mjs';

const NAME = 'bad_input';
watchdog(35, NAME);
const checks = new Checks(NAME);

const SECRET = randomSecret();
const body = (operation, payload) => JSON.stringify({ operation, payload });

/** A valid EIP-1559 transaction payload, to be spoiled field by field. */
const TX = {
  type: 2, chainId: 1, nonce: 0, to: '0xa5D3241A1591061F2a4bB69CA0215F66520E67cf',
  value: '0', gas: 21000, maxFeePerGas: 100000000000, maxPriorityFeePerGas: 3000000000,
};

function cases(keyId) {
  const post = (b, p = '/') => rawHttp('POST', p, b);
  const sign = (tp) => post(body('sign_transaction', { key_id: keyId, secret: SECRET, transaction_payload: tp }));
  const signRaw = (tpText) => post(`{"operation":"sign_transaction","payload":{"key_id":"${keyId}",` +
    `"secret":"${SECRET}","transaction_payload":${tpText}}}`);
  const txWith = (k, v) => sign({ ...TX, [k]: v });
  const txRawNum = (k, numText) => signRaw(JSON.stringify({ ...TX, [k]: 0 }).replace(`"${k}":0`, `"${k}":${numText}`));
  const gen = (payload) => post(body('generate_key', payload));
  const setk = (payload) => post(body('set_key', payload));
  const big = 'a'.repeat(500 * 1024);

  return [
    // ---- body / JSON framing
    { name: 'empty body', req: post(''), status: 400, msg: 'empty' },
    { name: 'whitespace-only body', req: post('   \n'), status: 400, msg: 'JSON' },
    { name: 'truncated JSON', req: post('{"operation":"generate_key","payload":{"secret":"abc'), status: 400, msg: 'malformed JSON' },
    { name: 'truncated JSON (missing braces)', req: post(`{"operation":"generate_key","payload":{"secret":"${SECRET}"`), status: 400, msg: 'malformed JSON' },
    { name: 'body is a JSON array', req: post('[]'), status: 400, msg: 'expected a JSON object' },
    { name: 'body is a JSON string', req: post('"generate_key"'), status: 400, msg: 'expected a JSON object' },
    { name: 'body is null', req: post('null'), status: 400, msg: 'expected a JSON object' },
    { name: 'trailing data after JSON', req: post(`${body('generate_key', { secret: SECRET })} {}`), status: 400, msg: 'trailing data' },
    { name: 'single quotes (not JSON)', req: post("{'operation':'generate_key'}"), status: 400, msg: 'malformed JSON' },
    { name: 'deep nesting: 10,000 [', req: post('['.repeat(10000)), status: 400, msg: 'JSON' },
    { name: 'deep nesting: 10,000 [ ] balanced', req: post('['.repeat(10000) + ']'.repeat(10000)), status: 400, msg: 'JSON' },
    { name: 'deep nesting inside transaction_payload', req: signRaw('{"data":' + '['.repeat(5000) + ']'.repeat(5000) + '}'), status: 400, msg: 'JSON' },
    { name: 'deep nesting of objects in payload', req: post('{"operation":"generate_key","payload":' + '{"a":'.repeat(3000) + '1' + '}'.repeat(3000) + '}'), status: 400, msg: /JSON|unknown field/ },
    { name: 'raw NUL byte in body', req: post(Buffer.from(`{"operation":"generate_key","payload":{"secret":"${SECRET}\u0000"}}`)), status: 400, msg: 'NUL' },
    { name: 'raw NUL byte between tokens', req: post(Buffer.concat([Buffer.from('{"operation":"generate_key",'), Buffer.from([0]), Buffer.from(`"payload":{"secret":"${SECRET}"}}`)])), status: 400, msg: 'NUL' },
    { name: 'escaped \\u0000 in secret', req: post(`{"operation":"generate_key","payload":{"secret":"${SECRET}\\u0000x"}}`), status: 400, msg: 'NUL' },
    { name: 'escaped \\u0000 in operation', req: post(`{"operation":"generate_key\\u0000","payload":{"secret":"${SECRET}"}}`), status: 400, msg: 'NUL' },
    { name: 'invalid UTF-8 (0xff) in a string', req: post(Buffer.concat([Buffer.from('{"operation":"generate_key","payload":{"secret":"'), Buffer.from([0xff, 0xfe]), Buffer.from(`${SECRET}"}}`)])), status: 400, msg: 'UTF-8' },
    { name: 'invalid UTF-8: overlong "/" (c0 af)', req: post(Buffer.concat([Buffer.from('{"operation":"generate_key","payload":{"secret":"'), Buffer.from([0xc0, 0xaf]), Buffer.from(`${SECRET}"}}`)])), status: 400, msg: 'UTF-8' },
    { name: 'invalid UTF-8: UTF-16 surrogate (ed a0 80)', req: post(Buffer.concat([Buffer.from('{"operation":"set_key","payload":{"eth_key":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(`","secret":"${SECRET}"}}`)])), status: 400, msg: 'UTF-8' },
    { name: 'invalid UTF-8: truncated sequence at end', req: post(Buffer.concat([Buffer.from(`{"operation":"generate_key","payload":{"secret":"${SECRET}"}}`), Buffer.from([0xe2, 0x82])])), status: 400, msg: 'UTF-8' },

    // ---- envelope fields
    { name: 'operation missing', req: post(JSON.stringify({ payload: { secret: SECRET } })), status: 400, msg: 'operation: required' },
    { name: 'operation is a number', req: post(JSON.stringify({ operation: 7, payload: {} })), status: 400, msg: 'operation: must be a string' },
    { name: 'operation is an object', req: post(JSON.stringify({ operation: { name: 'generate_key' }, payload: {} })), status: 400, msg: 'operation' },
    { name: 'unknown operation', req: post(body('export_key', { key_id: keyId, secret: SECRET })), status: 400, msg: "unknown operation 'export_key'" },
    { name: 'payload is an array', req: post(JSON.stringify({ operation: 'generate_key', payload: [SECRET] })), status: 400, msg: 'payload: must be a JSON object' },
    { name: 'payload is a string', req: post(JSON.stringify({ operation: 'generate_key', payload: SECRET })), status: 400, msg: 'payload' },
    { name: 'unknown root field', req: post(JSON.stringify({ operation: 'generate_key', payload: { secret: SECRET }, admin: true })), status: 400, msg: "unknown field 'admin'" },
    { name: 'unknown payload field (generate_key)', req: gen({ secret: SECRET, eth_key: randomPrivKey() }), status: 400, msg: 'eth_key: unknown field' },
    { name: 'duplicate payload field', req: post(`{"operation":"generate_key","payload":{"secret":"${SECRET}","secret":"${SECRET}"}}`), status: 400, msg: 'duplicate' },

    // ---- secrets (generate_key / set_key must store nothing)
    { name: 'generate_key: secret missing', req: gen({}), status: 400, msg: 'secret: required' },
    { name: 'generate_key: secret is a number', req: gen({ secret: 12345678901234567890 }), status: 400, msg: 'secret' },
    { name: 'generate_key: secret is null', req: gen({ secret: null }), status: 400, msg: 'secret' },
    { name: 'generate_key: secret is an array', req: gen({ secret: [SECRET] }), status: 400, msg: 'secret' },
    { name: 'generate_key: secret too short (19)', req: gen({ secret: 'x'.repeat(19) }), status: 400, msg: 'secret' },
    { name: 'generate_key: secret too long (129)', req: gen({ secret: 'x'.repeat(129) }), status: 400, msg: 'secret' },
    { name: 'generate_key: secret with a newline', req: gen({ secret: `${SECRET}\n` }), status: 400, msg: 'secret' },
    { name: 'generate_key: secret non-ASCII', req: gen({ secret: `${SECRET}é` }), status: 400, msg: 'secret' },
    { name: 'generate_key: huge secret (500 KB)', req: gen({ secret: big }), status: 400, msg: 'secret' },
    { name: 'generate_key: huge unknown field name (500 KB)', req: post(`{"operation":"generate_key","payload":{"secret":"${SECRET}","${big}":1}}`), status: 400, msg: 'unknown field' },
    { name: 'set_key: eth_key missing', req: setk({ secret: SECRET }), status: 400, msg: 'eth_key: required' },
    { name: 'set_key: eth_key is a number', req: setk({ eth_key: 12345, secret: SECRET }), status: 400, msg: 'eth_key' },
    { name: 'set_key: eth_key odd length (63)', req: setk({ eth_key: randomPrivKey().slice(1), secret: SECRET }), status: 400, msg: 'eth_key' },
    { name: 'set_key: eth_key non-hex', req: setk({ eth_key: 'zz' + randomPrivKey().slice(2), secret: SECRET }), status: 400, msg: 'eth_key' },
    { name: 'set_key: eth_key zero', req: setk({ eth_key: '0'.repeat(64), secret: SECRET }), status: 400, msg: 'eth_key' },
    { name: 'set_key: eth_key = group order n', req: setk({ eth_key: 'fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141', secret: SECRET }), status: 400, msg: 'eth_key' },
    { name: 'set_key: eth_key 0x + 65 digits', req: setk({ eth_key: '0x' + randomPrivKey() + '1', secret: SECRET }), status: 400, msg: 'eth_key' },
    { name: 'set_key: huge eth_key (500 KB)', req: setk({ eth_key: big, secret: SECRET }), status: 400, msg: 'eth_key' },
    { name: 'set_key: valid key, secret too short', req: setk({ eth_key: randomPrivKey(), secret: 'short' }), status: 400, msg: 'secret' },
    { name: 'set_key: valid key, secret missing', req: setk({ eth_key: randomPrivKey() }), status: 400, msg: 'secret' },
    { name: 'set_key: valid key, secret with \\u0000', req: post(`{"operation":"set_key","payload":{"eth_key":"${randomPrivKey()}","secret":"${SECRET}\\u0000"}}`), status: 400, msg: 'NUL' },
    { name: 'set_key route: unknown field', req: post(JSON.stringify({ eth_key: randomPrivKey(), secret: SECRET, address: '0x00' }), '/key/import'), status: 400, msg: 'address: unknown field' },
    { name: 'generate_key route: body is an envelope', req: post(body('generate_key', { secret: SECRET }), '/key'), status: 400, msg: 'unknown field' },

    // ---- key_id
    { name: 'key_id missing', req: post(body('sign_message', { secret: SECRET, message: 'hi' })), status: 400, msg: 'key_id: required' },
    { name: 'key_id is a number', req: post(body('sign_message', { key_id: 1, secret: SECRET, message: 'hi' })), status: 400, msg: 'key_id' },
    { name: 'key_id path-like ../../etc/passwd', req: post(body('sign_message', { key_id: '../../etc/passwd', secret: SECRET, message: 'hi' })), status: 400, msg: 'key_id' },
    { name: "key_id SQL-like ' OR 1=1 --", req: post(body('sign_message', { key_id: "' OR 1=1 --", secret: SECRET, message: 'hi' })), status: 400, msg: 'key_id' },
    { name: 'key_id %00', req: post(body('sign_message', { key_id: '%00', secret: SECRET, message: 'hi' })), status: 400, msg: 'key_id' },
    { name: 'key_id UUID + SQL suffix', req: post(body('sign_message', { key_id: `${keyId}' OR '1'='1`, secret: SECRET, message: 'hi' })), status: 400, msg: 'key_id' },
    { name: 'key_id unknown UUIDv4', req: post(body('sign_message', { key_id: '0b7c8e4a-1d2f-4a3b-9c4d-5e6f7a8b9c0d', secret: SECRET, message: 'hi' })), status: 404, msg: 'no such key' },
    { name: 'route key_id ../../etc/passwd', req: rawHttp('POST', '/key/../../etc/passwd/tx_signature', JSON.stringify({ secret: SECRET, transaction_payload: TX })), status: 404, msg: 'no such route' },
    { name: 'route key_id %00', req: rawHttp('POST', '/key/%00/userop_signature', JSON.stringify({ secret: SECRET })), status: 404, msg: 'no such route' },
    { name: "route key_id ' OR 1=1 --", req: rawHttp('POST', "/key/'%20OR%201=1%20--/tx_signature", JSON.stringify({ secret: SECRET })), status: 404, msg: 'no such route' },
    { name: 'route key_id differs from body key_id', req: rawHttp('POST', `/key/${keyId}/userop_signature`, JSON.stringify({ key_id: '0b7c8e4a-1d2f-4a3b-9c4d-5e6f7a8b9c0d', secret: SECRET, transaction_payload: { userOpHash: 'ab'.repeat(32) } })), status: 400, msg: 'key_id: differs' },

    // ---- authentication fields
    { name: 'wrong secret', req: post(body('sign_message', { key_id: keyId, secret: randomSecret(), message: 'hi' })), status: 403, msg: 'secret: does not match' },
    { name: 'secret and hmac both', req: post(body('sign_message', { key_id: keyId, secret: SECRET, hmac: 'ab'.repeat(32), timestamp: 1, message: 'hi' })), status: 400, msg: 'not both' },
    { name: 'neither secret nor hmac', req: post(body('sign_message', { key_id: keyId, message: 'hi' })), status: 400, msg: 'secret: required' },
    { name: 'hmac is a number', req: post(body('sign_message', { key_id: keyId, hmac: 12, timestamp: Math.floor(Date.now() / 1000), message: 'hi' })), status: 400, msg: 'hmac' },
    { name: 'hmac not hex', req: post(body('sign_message', { key_id: keyId, hmac: 'zz'.repeat(32), timestamp: Math.floor(Date.now() / 1000), message: 'hi' })), status: 400, msg: 'hmac' },
    { name: 'timestamp not a number', req: post(body('sign_message', { key_id: keyId, hmac: 'ab'.repeat(32), timestamp: 'yesterday', message: 'hi' })), status: 400, msg: 'timestamp' },
    { name: 'timestamp 1.5', req: post(body('sign_message', { key_id: keyId, hmac: 'ab'.repeat(32), timestamp: 1.5, message: 'hi' })), status: 400, msg: 'timestamp' },
    { name: 'timestamp far in the past', req: post(body('sign_message', { key_id: keyId, hmac: 'ab'.repeat(32), timestamp: 1000, message: 'hi' })), status: 403, msg: 'timestamp' },

    // ---- transaction payload
    { name: 'transaction_payload missing', req: post(body('sign_transaction', { key_id: keyId, secret: SECRET })), status: 400, msg: 'transaction_payload' },
    { name: 'transaction_payload is an array', req: sign([TX]), status: 400, msg: 'transaction_payload' },
    { name: 'transaction_payload is a string', req: sign(JSON.stringify(TX)), status: 400, msg: 'transaction_payload' },
    { name: 'unknown field in transaction_payload', req: txWith('gasPriceX', 1), status: 400, msg: 'gasPriceX' },
    { name: 'nonce -1', req: txWith('nonce', -1), status: 400, msg: 'nonce' },
    { name: 'nonce 1.5', req: txWith('nonce', 1.5), status: 400, msg: 'nonce' },
    { name: 'nonce 2^53+1 (JSON number)', req: txRawNum('nonce', '9007199254740993'), status: 400, msg: 'nonce' },
    { name: 'nonce 1e400', req: txRawNum('nonce', '1e400'), status: 400, msg: 'nonce' },
    { name: 'nonce as an object', req: txWith('nonce', { n: 1 }), status: 400, msg: 'nonce' },
    { name: 'nonce "0x" + 65 hex digits (> 2^256)', req: txWith('nonce', '0x1' + '0'.repeat(64)), status: 400, msg: 'nonce' },
    { name: 'gas 1e400', req: txRawNum('gas', '1e400'), status: 400, msg: 'gas' },
    { name: 'gas -1e400', req: txRawNum('gas', '-1e400'), status: 400, msg: 'gas' },
    { name: 'gas is a boolean', req: txWith('gas', true), status: 400, msg: 'gas' },
    { name: 'chainId "abc"', req: txWith('chainId', 'abc'), status: 400, msg: 'chainId' },
    { name: 'chainId 0', req: txWith('chainId', 0), status: 400, msg: 'chainId' },
    { name: 'value -1 (number)', req: txWith('value', -1), status: 400, msg: 'value' },
    { name: 'value "-1" (string)', req: txWith('value', '-1'), status: 400, msg: 'value' },
    { name: 'value 2^256 (string)', req: txWith('value', '0x1' + '0'.repeat(64)), status: 400, msg: 'value' },
    { name: 'value is null', req: txWith('value', null), status: 400, msg: 'value' },
    { name: 'maxPriorityFeePerGas "abc"', req: txWith('maxPriorityFeePerGas', 'abc'), status: 400, msg: 'maxPriorityFeePerGas' },
    { name: 'maxFeePerGas is an array', req: txWith('maxFeePerGas', [1]), status: 400, msg: 'maxFeePerGas' },
    { name: 'gasPrice is a boolean (type 0)', req: sign({ type: 0, chainId: 1, nonce: 0, gas: 21000, gasPrice: false, to: TX.to, value: '0' }), status: 400, msg: 'gasPrice' },
    { name: 'gasLimit is a string of letters', req: sign({ ...TX, gas: undefined, gasLimit: 'lots' }), status: 400, msg: 'gasLimit' },
    { name: 'input is a number', req: txWith('input', 42), status: 400, msg: 'input' },
    { name: 'nonce "0x" (no digits)', req: txWith('nonce', '0x'), status: 400, msg: 'nonce' },
    { name: 'maxFeePerGas 1.5 gwei fraction', req: txWith('maxFeePerGas', 1.5), status: 400, msg: 'maxFeePerGas' },
    { name: 'type 7', req: txWith('type', 7), status: 400, msg: 'type' },
    { name: 'type "two"', req: txWith('type', 'two'), status: 400, msg: 'type' },
    { name: 'to: not hex', req: txWith('to', '0xzz' + 'a'.repeat(38)), status: 400, msg: 'to' },
    { name: 'to: 19 bytes', req: txWith('to', '0x' + 'a'.repeat(38)), status: 400, msg: 'to' },
    { name: 'to: a number', req: txWith('to', 1234), status: 400, msg: 'to' },
    { name: 'data odd length', req: txWith('data', '0x123'), status: 400, msg: 'data' },
    { name: 'data non-hex', req: txWith('data', '0xzz'), status: 400, msg: 'data' },
    { name: 'data missing 0x', req: txWith('data', '6000'), status: 400, msg: 'data' },
    { name: 'data is a number', req: txWith('data', 6000), status: 400, msg: 'data' },
    { name: 'data huge non-hex (500 KB)', req: txWith('data', '0x' + 'g'.repeat(500 * 1024)), status: 400, msg: 'data' },
    { name: 'data and input differ', req: sign({ ...TX, data: '0x00', input: '0x01' }), status: 400, msg: 'input' },
    { name: 'accessList is an object', req: txWith('accessList', { address: TX.to }), status: 400, msg: 'accessList' },
    { name: 'accessList entry bad storageKeys', req: txWith('accessList', [{ address: TX.to, storageKeys: ['0x01'] }]), status: 400, msg: 'accessList' },
    { name: 'accessList entry unknown field', req: txWith('accessList', [{ address: TX.to, storageKeys: [], extra: 1 }]), status: 400, msg: /accessList|extra/ },
    { name: 'gas and gasLimit differ', req: sign({ ...TX, gasLimit: 1 }), status: 400, msg: 'gasLimit' },
    { name: 'type 0 without chainId', req: sign({ type: 0, nonce: 0, gas: 21000, gasPrice: 1, to: TX.to, value: '0' }), status: 400, msg: 'chainId' },
    { name: 'maxPriorityFeePerGas > maxFeePerGas', req: sign({ ...TX, maxPriorityFeePerGas: 2 * TX.maxFeePerGas }), status: 400, msg: 'maxPriorityFeePerGas' },

    // ---- userOp / message
    { name: 'userOpHash too short', req: post(body('sign_userop', { key_id: keyId, secret: SECRET, transaction_payload: { userOpHash: 'ab'.repeat(31) } })), status: 400, msg: 'userOpHash' },
    { name: 'userOpHash not hex', req: post(body('sign_userop', { key_id: keyId, secret: SECRET, transaction_payload: { userOpHash: 'zz'.repeat(32) } })), status: 400, msg: 'userOpHash' },
    { name: 'userOpHash is a number', req: post(body('sign_userop', { key_id: keyId, secret: SECRET, transaction_payload: { userOpHash: 12 } })), status: 400, msg: 'userOpHash' },
    { name: 'userOp with an extra field', req: post(body('sign_userop', { key_id: keyId, secret: SECRET, transaction_payload: { userOpHash: 'ab'.repeat(32), to: TX.to } })), status: 400, msg: 'not allowed' },
    { name: 'sign_message message missing', req: post(body('sign_message', { key_id: keyId, secret: SECRET })), status: 400, msg: 'message: required' },
    { name: 'sign_message message is an object', req: post(body('sign_message', { key_id: keyId, secret: SECRET, message: { m: 1 } })), status: 400, msg: 'message' },

    // ---- HTTP layer
    { name: 'GET /', req: rawHttp('GET', '/'), status: 405, msg: 'method not allowed' },
    { name: 'PUT / with a body', req: rawHttp('PUT', '/', body('generate_key', { secret: SECRET })), status: 405, msg: 'method not allowed' },
    { name: 'DELETE /key', req: rawHttp('DELETE', '/key'), status: 405, msg: 'method not allowed' },
    { name: 'POST /healthz', req: rawHttp('POST', '/healthz', '{}'), status: 405, msg: 'method not allowed' },
    { name: 'POST /metrics', req: rawHttp('POST', '/metrics', '{}'), status: 405, msg: 'method not allowed' },
    { name: 'POST /keys (no such route)', req: rawHttp('POST', '/keys', body('generate_key', { secret: SECRET })), status: 404, msg: 'no such route' },
    { name: 'POST /key/{id}/export (no such route)', req: rawHttp('POST', `/key/${keyId}/export`, '{}'), status: 404, msg: 'no such route' },
    { name: 'lowercase method', req: Buffer.from('post / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'), status: 400, msg: 'malformed HTTP' },
    { name: 'HTTP/2.0 request line', req: Buffer.from('POST / HTTP/2.0\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'), status: 505, msg: 'version' },
    { name: 'garbage request line', req: Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n'), status: 400, msg: 'malformed HTTP' },
    { name: 'POST without Content-Length', req: Buffer.from('POST / HTTP/1.1\r\nHost: x\r\n\r\n{}'), status: 411, msg: 'Content-Length' },
    { name: 'Content-Length not a number', req: Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2x\r\n\r\n{}'), status: 400, msg: 'malformed HTTP' },
    { name: 'Content-Length negative', req: Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}'), status: 400, msg: 'malformed HTTP' },
    { name: 'two different Content-Lengths', req: Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'), status: 400, msg: 'malformed HTTP' },
    { name: 'Transfer-Encoding: chunked', req: Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'), status: 411, msg: 'chunked' },
    { name: 'Transfer-Encoding: gzip', req: Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}'), status: 501, msg: 'Transfer-Encoding' },
    { name: 'header with a NUL byte', req: Buffer.from('POST / HTTP/1.1\r\nHost: x\u0000y\r\nContent-Length: 2\r\n\r\n{}', 'latin1'), status: 400, msg: 'malformed HTTP' },
    { name: 'obsolete header line folding', req: Buffer.from('POST / HTTP/1.1\r\nHost: x\r\n folded\r\nContent-Length: 2\r\n\r\n{}'), status: 400, msg: 'malformed HTTP' },
    { name: 'request target too long (20 KB)', req: rawHttp('POST', '/' + 'a'.repeat(20000), '{}'), status: [414, 431], msg: /too long|too large/ },
    { name: 'over-long header (20 KB > max_header)', req: rawHttp('POST', '/', body('generate_key', { secret: SECRET }), `X-Pad: ${'a'.repeat(20000)}\r\n`), status: 431, msg: 'header too large' },
    { name: 'many headers (2,000 x 12 bytes)', req: rawHttp('POST', '/', body('generate_key', { secret: SECRET }), 'X-A: bbbbbbb\r\n'.repeat(2000)), status: 431, msg: 'header too large' },
    { name: 'body over max_body (announced 2 MiB, sent)', req: rawHttp('POST', '/', Buffer.alloc(2 * 1024 * 1024, 0x20)), status: 413, msg: 'too large' },
    { name: 'body over max_body (announced 1 GiB, not sent)', req: Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n{'), status: 413, msg: 'too large' },
  ];
}

/** Frame-protocol cases: [name, bytes, status, msg]. */
function frameCases(keyId) {
  const f = (o) => {
    const b = Buffer.from(typeof o === 'string' ? o : JSON.stringify(o));
    const h = Buffer.alloc(4);
    h.writeUInt32BE(b.length);
    return Buffer.concat([h, b]);
  };
  return [
    { name: 'frame: no id', req: f({ operation: 'generate_key', payload: { secret: SECRET } }), status: 400, msg: 'id: required' },
    { name: 'frame: id is an object', req: f({ id: { a: 1 }, operation: 'generate_key', payload: { secret: SECRET } }), status: 400, msg: 'id' },
    { name: 'frame: truncated JSON', req: f('{"id":1,"operation":"generate_key","payload":{'), status: 400, msg: 'malformed JSON' },
    { name: 'frame: empty payload', req: Buffer.alloc(4), status: 400, msg: 'empty frame' },
    { name: 'frame: bad secret for set_key', req: f({ id: 5, operation: 'set_key', payload: { eth_key: randomPrivKey(), secret: 1 } }), status: 400, msg: 'secret' },
    { name: 'frame: path-like key_id', req: f({ id: 6, operation: 'sign_userop', payload: { key_id: '../../etc/passwd', secret: SECRET, transaction_payload: { userOpHash: 'ab'.repeat(32) } } }), status: 400, msg: 'key_id' },
    { name: 'frame: announced 64 MiB (> max_body)', req: Buffer.from([0x04, 0, 0, 0, 0x7b]), status: 413, msg: 'too large' },
  ].map((c) => ({ ...c, frames: true, keyId }));
}

function matches(msg, want) {
  if (typeof msg !== 'string') return false;
  if (want instanceof RegExp) return want.test(msg);
  return msg.toLowerCase().includes(want.toLowerCase());
}

async function runFrameCase(s, c) {
  const conn = await openFrames(s.framesPort);
  conn.sendRaw(c.req);
  await conn.waitAnswers(1, 5000);
  conn.destroy();
  const a = conn.answers[0];
  if (!a) return { status: 0, closed: conn.closed };
  return { status: a.enclave_status, json: a };
}

async function main() {
  const s = await startSignerd({ logLevel: 'info' });

  // One key to aim the sign requests at.
  const g = await call(s.port, 'generate_key', { secret: SECRET });
  checks.check(g.status === 200 && g.json?.enclave_result?.key_id, 'setup: generate_key answers 200', g.text);
  const keyId = g.json?.enclave_result?.key_id || '00000000-0000-4000-8000-000000000000';
  const before = await keyCount(s.port);
  checks.check(before === 1, 'setup: signer_keys is 1 after one generate_key', `signer_keys ${before}`);

  const only = process.env.BAD_INPUT_ONLY;
  const all = [...cases(keyId), ...frameCases(keyId)].filter((c) => !only || c.name.includes(only));
  console.log(`${NAME}: ${all.length} malformed requests`);
  let count = before;
  for (const c of all) {
    const r = c.frames ? await runFrameCase(s, c) : await rawRequest(s.port, c.req, { timeoutMs: 8000 });
    const want = Array.isArray(c.status) ? c.status : [c.status];
    const msg = r.json?.enclave_result?.error;
    const detail = () => `got HTTP ${r.status}${r.closed ? ' (closed without an answer)' : ''}${r.timedOut ? ' (no answer)' : ''}: ${(r.text ?? JSON.stringify(r.json) ?? '').slice(0, 300)}`;
    checks.check(want.includes(r.status), `${c.name}: status ${want.join('|')}`, detail);
    checks.check(r.json && r.json.enclave_status === r.status && typeof msg === 'string' && msg.length > 0,
      `${c.name}: JSON error body of the API shape`, detail);
    checks.check(matches(msg, c.msg), `${c.name}: message names the problem (${c.msg})`, detail);
    if (VERBOSE_CASES) console.log(`  ${c.name}: ${r.status} ${msg}`);
    const n = await keyCount(s.port);
    checks.check(n === count, `${c.name}: no key stored`, `signer_keys ${count} -> ${n}`);
    count = n;
  }

  // Still serving, and nothing was stored by the whole suite.
  const after = await keyCount(s.port);
  checks.check(after === before, 'suite: signer_keys unchanged', `before ${before}, after ${after}`);
  checks.check(s.alive, 'suite: signerd still running', JSON.stringify(s.exitInfo));
  const hz = await request(s.port, 'GET', '/healthz');
  checks.check(hz.status === 200, 'after the suite: GET /healthz 200', hz.text);
  const sig = await call(s.port, 'sign_message', { key_id: keyId, secret: SECRET, message: 'still here' });
  checks.check(sig.status === 200 && /^0x[0-9a-f]{130}$/.test(sig.json?.enclave_result?.signature || ''),
    'after the suite: sign_message 200', sig.text);
  const g2 = await call(s.port, 'generate_key', { secret: randomSecret() });
  checks.check(g2.status === 200, 'after the suite: generate_key 200', g2.text);
  checks.check(await keyCount(s.port) === before + 1, 'after the suite: the valid generate_key is counted');

  // The reference's routes as its clients call them: POST /key with an
  // eth_key imports (the body decides), and a doubled slash from a base URL
  // ending in '/' is merged (as nginx does).
  const imp = await rawRequest(s.port, rawHttp('POST', '/key', JSON.stringify({ eth_key: randomPrivKey(), secret: SECRET })), { timeoutMs: 8000 });
  checks.check(imp.status === 200 && /^0x[0-9a-fA-F]{40}$/.test(imp.json?.enclave_result?.address || ''),
    'POST /key with eth_key imports the key (reference route)', imp.text);
  checks.check(await keyCount(s.port) === before + 2, 'POST /key with eth_key stored the imported key');
  const dbl = await rawRequest(s.port, rawHttp('POST', `//key/${keyId}/tx_signature`, JSON.stringify({ secret: SECRET, transaction_payload: TX })), { timeoutMs: 8000 });
  checks.check(dbl.status === 200 && dbl.json?.enclave_status === 200,
    'POST //key/ID/tx_signature (doubled slash) is served', dbl.text);
  checks.check(/^[0-9a-f]{16}$/.test(imp.headers?.['x-request-id'] || '') &&
    s.log.some((l) => l.includes(`"request_id":"${imp.headers['x-request-id']}"`)),
    'the request id reaches the client (X-Request-Id) and the access log', imp.headers);

  // Every request was logged as a JSON line.
  const bad = s.log.filter((l) => { try { JSON.parse(l); return false; } catch { return true; } });
  checks.check(bad.length === 0, 'every log line is JSON', bad.slice(0, 5).join('\n'));

  const st = await s.stop();
  checks.check(st && st.code === 0, 'SIGTERM: exit code 0', JSON.stringify(st));
}

const VERBOSE_CASES = process.env.HARDENING_VERBOSE === '1';
await checks.run('bad_input main', main);
process.exit(checks.finish());
