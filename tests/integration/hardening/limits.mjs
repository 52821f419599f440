// Hardening item 5: every limit of `limits = {...}` is configurable and
// enforced.  Each group runs its own signerd with a minimal config:
//   sizes        max_body (413, HTTP and frames), max_header (431)
//   connections  max_connections: idle connections are evicted (oldest
//                first) for a new client; with all busy the connection beyond
//                it is closed while the existing ones keep working
//   pipeline     max_pipeline: many frames at once are all answered, never
//                more than the limit in flight
//   timeouts     read_timeout_ms (slowloris head, slowloris body, a request
//                that never finishes, a silent socket, a partial frame) and
//                idle_timeout_ms, while another client is served meanwhile
//   write        write_timeout_ms: a client that never reads is cut off
//   inflight     max_inflight = 1 with workers = 1: a flood gets 503 JSON
//                answers instead of queueing without bound
//
// Run: node limits.mjs  (LIMITS_ONLY=sizes|connections|pipeline|timeouts|write|inflight)

import {
  Checks, watchdog, startSignerd, writeConfig, tempDir, call, request, rawRequest,
  rawHttp, openConn, openFrames, frame, metrics, keyCount, randomSecret, sleep,
} from './common.mjs';
import net from 'node:net';

const NAME = 'limits';
watchdog(50, NAME);
const checks = new Checks(NAME);
const SECRET = randomSecret();

/** A generate_key body of exactly n bytes (padded with spaces). */
function genBody(n) {
  const b = JSON.stringify({ operation: 'generate_key', payload: { secret: SECRET } });
  if (b.length > n) throw new Error('genBody: too small');
  return b + ' '.repeat(n - b.length);
}

async function start(limits, { workers = 2, logLevel = 'info' } = {}) {
  const dir = tempDir('limits');
  const conf = writeConfig(dir, { workers, limits, logLevel });
  return startSignerd({ conf, dataDir: `${dir}/data` });
}

// ------------------------------------------------------------------ sizes

async function sizes() {
  const s = await start({ max_body: 4096, max_header: 1024 });
  try {
    const keys0 = await keyCount(s.port);
    let r = await rawRequest(s.port, rawHttp('POST', '/', genBody(4096)));
    checks.check(r.status === 200, 'max_body 4096: a 4096-byte body is accepted', r.text);
    r = await rawRequest(s.port, rawHttp('POST', '/', genBody(4097)));
    checks.check(r.status === 413 && r.json?.enclave_status === 413 && /too large/.test(r.json?.enclave_result?.error || ''),
      'max_body 4096: a 4097-byte body gets 413 JSON', r.text || JSON.stringify(r));
    // Announced but not sent: the answer must come from the head alone.
    r = await rawRequest(s.port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{', { timeoutMs: 3000 });
    checks.check(r.status === 413, 'max_body 4096: 413 as soon as Content-Length 5000 is seen', r.text || JSON.stringify(r));
    // Frames: the same limit on the payload.
    const f = await openFrames(s.framesPort);
    f.send(JSON.stringify({ id: 1, operation: 'generate_key', payload: { secret: SECRET } }).padEnd(4096, ' '));
    await f.waitAnswers(1, 5000);
    checks.check(f.answers[0]?.enclave_status === 200, 'max_body 4096: a 4096-byte frame is accepted', f.answers[0]);
    f.send(JSON.stringify({ id: 2, operation: 'generate_key', payload: { secret: SECRET } }).padEnd(4097, ' '));
    await f.waitAnswers(2, 5000);
    checks.check(f.answers[1]?.enclave_status === 413 && /too large/.test(f.answers[1]?.enclave_result?.error || ''),
      'max_body 4096: a 4097-byte frame gets a 413 frame', f.answers[1]);
    checks.check(await f.waitClosed(3000), 'max_body 4096: the connection is closed after the oversize frame');
    f.destroy();
    checks.check(await keyCount(s.port) === keys0 + 2, 'max_body: only the two accepted requests stored a key');

    // max_header 1024: the whole head (request line + headers).
    const pad = (n) => `X-Pad: ${'a'.repeat(n)}\r\n`;
    const base = rawHttp('POST', '/', genBody(200)).length - 200;
    r = await rawRequest(s.port, rawHttp('POST', '/', genBody(200), pad(1024 - base - 12)));
    checks.check(r.status === 200, 'max_header 1024: a head just under 1024 bytes is accepted', r.text || JSON.stringify(r));
    r = await rawRequest(s.port, rawHttp('POST', '/', genBody(200), pad(1100)));
    checks.check(r.status === 431 && r.json?.enclave_status === 431 && /header too large/.test(r.json?.enclave_result?.error || ''),
      'max_header 1024: a 1,100-byte header gets 431 JSON', r.text || JSON.stringify(r));
    r = await rawRequest(s.port, 'GET /healthz HTTP/1.1\r\n' + 'X-A: b\r\n'.repeat(200) + '\r\n');
    checks.check(r.status === 431, 'max_header 1024: 200 small headers get 431', r.text || JSON.stringify(r));
    r = await request(s.port, 'GET', '/healthz');
    checks.check(r.status === 200, 'sizes: still serving', r.text);
  } finally {
    await s.stop();
  }
}

// ------------------------------------------------------------ connections

async function connections() {
  const s = await start({ max_connections: 4, read_timeout_ms: 20000, idle_timeout_ms: 20000 });
  const conns = [];
  try {
    for (let i = 0; i < 4; i++) {
      const c = await openConn(s.port);
      conns.push(c);
      c.send(rawHttp('GET', '/healthz'));
      const r = await c.next(3000);
      checks.check(r.status === 200, `max_connections 4: keep-alive connection ${i + 1} served`, r);
      await sleep(20);
    }
    // Idle keep-alive connections do not shut a new client out: the fifth
    // is served and the oldest idle one is closed for it.
    const fifth = await openConn(s.port);
    fifth.send(rawHttp('GET', '/healthz'));
    const r5 = await fifth.next(3000);
    checks.check(r5.status === 200, 'max_connections 4: a fifth client is served while the four are idle', r5);
    checks.check(await conns[0].waitClosed(2000), 'max_connections 4: the oldest idle connection was closed for it');
    conns.shift().destroy();
    conns.push(fifth);
    // A frames listener has a budget of its own.
    const fr = await openFrames(s.framesPort);
    fr.send({ id: 1, operation: 'generate_key', payload: { secret: SECRET } });
    const got = await fr.waitAnswers(1, 3000);
    checks.check(got && fr.answers[0].enclave_status === 200, 'max_connections 4: the frames listener counts on its own', fr.answers);
    fr.destroy();
    // All four busy (half a request each): a new connection is closed.
    for (const c of conns) c.send('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n');
    await sleep(100);
    const t0 = Date.now();
    const extra = await openConn(s.port).catch((e) => ({ refused: e.code }));
    let sixth;
    if (extra.refused) {
      sixth = { status: 0, closed: true, error: extra.refused };
    } else {
      extra.send(rawHttp('GET', '/healthz'));
      sixth = await extra.next(3000);
      extra.destroy();
    }
    checks.check(sixth.status === 0 && sixth.closed && Date.now() - t0 < 2000,
      'max_connections 4: with the four busy, a new connection is closed without an answer', sixth);
    // The four keep working: their requests complete ({} names no
    // operation: a 400 from the dispatcher, on the same connection).
    for (let i = 0; i < 4; i++) {
      conns[i].send('{}');
      const r = await conns[i].next(3000);
      checks.check(r.status === 400, `max_connections 4: busy connection ${i + 1} still answered`, r);
    }
    conns.pop().destroy();
    let ok = false;
    for (let k = 0; k < 20 && !ok; k++) {   // bounded: the close reaches signerd asynchronously
      await sleep(50);
      const r = await rawRequest(s.port, rawHttp('GET', '/metrics'), { timeoutMs: 2000 });
      if (r.status === 200) {
        ok = true;
        const m = /signer_transport_connections_rejected_total (\d+)/.exec(r.text);
        checks.check(m && Number(m[1]) >= 1, 'max_connections: rejected connections are counted in /metrics', m && m[0]);
        const e = /signer_transport_connections_evicted_total (\d+)/.exec(r.text);
        checks.check(e && Number(e[1]) >= 1, 'max_connections: evicted idle connections are counted in /metrics', e && e[0]);
      }
    }
    checks.check(ok, 'max_connections 4: after one closes, a new connection is served');
  } finally {
    for (const c of conns) c.destroy();
    await s.stop();
  }
}

// --------------------------------------------------------------- pipeline

async function pipeline() {
  const LIMIT = 4, N = 150;
  const s = await start({ max_pipeline: LIMIT }, { workers: 1 });
  try {
    const f = await openFrames(s.framesPort);
    const frames = [];
    for (let i = 1; i <= N; i++) {
      frames.push(frame({ id: i, operation: 'generate_key', payload: { secret: SECRET } }));
    }
    let maxInflight = 0, polls = 0, stop = false;
    const poller = (async () => {
      while (!stop && polls < 2000) {
        polls++;
        try {
          const m = await metrics(s.port);
          maxInflight = Math.max(maxInflight, m.signer_transport_inflight);
        } catch { /* ignore */ }
      }
    })();
    f.sendRaw(Buffer.concat(frames));   // all at once, in one write
    const all = await f.waitAnswers(N, 30000);
    stop = true;
    await poller;
    checks.check(all, `max_pipeline ${LIMIT}: all ${N} frames sent at once are answered`, `${f.answers.length} answers`);
    const ids = new Set(f.answers.map((a) => a.id));
    checks.check(ids.size === N && f.answers.every((a) => a.enclave_status === 200),
      `max_pipeline ${LIMIT}: every id answered once, all 200`,
      () => f.answers.filter((a) => a.enclave_status !== 200).slice(0, 3));
    checks.check(maxInflight <= LIMIT, `max_pipeline ${LIMIT}: never more than ${LIMIT} in flight (max seen ${maxInflight} in ${polls} polls)`);
    if (maxInflight < 2) checks.note(`pipeline: max in flight seen was ${maxInflight}; the pipeline was never observed full`);
    f.destroy();
    checks.check(await keyCount(s.port) === N, `max_pipeline: ${N} keys stored`);
  } finally {
    await s.stop();
  }
}

// --------------------------------------------------------------- timeouts

/** Writes one byte of data per second (at most data.length bytes) until the
 * server closes; resolves to the ms from connect to close, or null. */
function dribble(port, data, maxMs, prefix = Buffer.alloc(0)) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let t0 = 0, i = 0, timer = null, done = false, got = '';
    const finish = (v) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(guard);
      sock.destroy();
      resolve({ ms: v, got });
    };
    const guard = setTimeout(() => finish(null), maxMs);
    sock.on('connect', () => {
      t0 = Date.now();
      if (prefix.length) sock.write(prefix);
      const tick = () => { if (i < data.length) sock.write(data.subarray(i, ++i)); };
      tick();
      timer = setInterval(tick, 1000);
    });
    sock.on('data', (d) => { got += d.toString('latin1'); });
    sock.on('error', () => finish(Date.now() - t0));
    sock.on('close', () => finish(Date.now() - t0));
  });
}

/** Connects, writes data once, then waits for the server to close. */
function stall(port, data, maxMs) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let t0 = 0, done = false, got = '';
    const finish = (v) => {
      if (done) return;
      done = true;
      clearTimeout(guard);
      sock.destroy();
      resolve({ ms: v, got });
    };
    const guard = setTimeout(() => finish(null), maxMs);
    sock.on('connect', () => { t0 = Date.now(); if (data.length) sock.write(data); });
    sock.on('data', (d) => { got += d.toString('latin1'); });
    sock.on('error', () => finish(Date.now() - t0));
    sock.on('close', () => finish(Date.now() - t0));
  });
}

async function timeouts() {
  const READ = 1500, IDLE = 2500;
  const s = await start({ read_timeout_ms: READ, idle_timeout_ms: IDLE });
  try {
    const m0 = await metrics(s.port);
    const head = Buffer.from('POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n');
    const body = Buffer.from(genBody(150));
    const bodyHead = Buffer.from(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    const partialFrame = Buffer.concat([Buffer.from([0, 0, 0, 100]), Buffer.from('{"id":1,')]);
    const max = READ + 4000;
    const tasks = {
      'slowloris head (1 byte/s)': dribble(s.port, head, max),
      // the head at once, then the body one byte per second
      'slowloris body (1 byte/s)': dribble(s.port, body, max, bodyHead),
      'request never finished': stall(s.port, Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Len'), max),
      'body never finished': stall(s.port, Buffer.concat([bodyHead, body.subarray(0, 50)]), max),
      'silent HTTP connection': stall(s.port, Buffer.alloc(0), max),
      'partial frame': stall(s.framesPort, partialFrame, max),
    };
    // Meanwhile another client is served, promptly, again and again.
    const served = (async () => {
      const lat = [];
      for (let i = 0; i < 8; i++) {
        await sleep(250);
        const t = Date.now();
        const r = await call(s.port, 'generate_key', { secret: SECRET }, { timeoutMs: 3000 }).catch((e) => ({ status: 0, text: String(e) }));
        lat.push({ status: r.status, ms: Date.now() - t });
      }
      return lat;
    })();
    // Idle keep-alive connections: HTTP after one request, frames after one frame.
    const idleHttp = (async () => {
      const c = await openConn(s.port);
      c.send(rawHttp('GET', '/healthz'));
      const r = await c.next(3000);
      const t = Date.now();
      const closed = await c.waitClosed(IDLE + 4000);
      c.destroy();
      return { first: r.status, ms: closed ? Date.now() - t : null };
    })();
    const idleFrames = (async () => {
      const f = await openFrames(s.framesPort);
      f.send({ id: 1, operation: 'generate_key', payload: { secret: SECRET } });
      await f.waitAnswers(1, 3000);
      const t = Date.now();
      const closed = await f.waitClosed(IDLE + 4000);
      f.destroy();
      return { first: f.answers[0]?.enclave_status, ms: closed ? Date.now() - t : null };
    })();

    // A partly received HTTP request is answered 408 before the close; a
    // connection that sent nothing, and a frames connection, just close.
    const says408 = new Set(['slowloris head (1 byte/s)', 'slowloris body (1 byte/s)',
      'request never finished', 'body never finished']);
    for (const [name, p] of Object.entries(tasks)) {
      const r = await p;
      checks.check(r.ms !== null && r.ms >= READ - 200 && r.ms <= READ + 1500,
        `read_timeout_ms ${READ}: ${name} is cut off after ~${READ} ms (got ${r.ms} ms)`, r);
      if (says408.has(name)) {
        checks.check(/^HTTP\/1\.1 408 /.test(r.got) && /"enclave_status":408/.test(r.got) &&
          /read_timeout_ms/.test(r.got) && /Connection: close/i.test(r.got),
          `read timeout: ${name} is answered 408 naming read_timeout_ms, Connection: close`, r.got);
      } else {
        checks.check(r.got === '', `read timeout: ${name} is closed without an answer`, r.got);
      }
    }
    const lat = await served;
    checks.check(lat.every((x) => x.status === 200 && x.ms < 1000),
      'read timeouts: another client is served meanwhile (8 x generate_key 200, each < 1 s)', lat);
    const ih = await idleHttp;
    checks.check(ih.first === 200 && ih.ms !== null && ih.ms >= IDLE - 300 && ih.ms <= IDLE + 1500,
      `idle_timeout_ms ${IDLE}: an idle keep-alive HTTP connection is closed after ~${IDLE} ms (got ${ih.ms} ms)`, ih);
    const ifr = await idleFrames;
    checks.check(ifr.first === 200 && ifr.ms !== null && ifr.ms >= IDLE - 300 && ifr.ms <= IDLE + 1500,
      `idle_timeout_ms ${IDLE}: an idle frames connection is closed after ~${IDLE} ms (got ${ifr.ms} ms)`, ifr);
    const m1 = await metrics(s.port);
    const d = (k) => m1[k] - m0[k];
    checks.check(d('signer_transport_timeouts_total{kind="read"}') >= 6,
      'read timeouts are counted in /metrics', `read ${d('signer_transport_timeouts_total{kind="read"}')}`);
    checks.check(d('signer_transport_timeouts_total{kind="idle"}') >= 2,
      'idle timeouts are counted in /metrics', `idle ${d('signer_transport_timeouts_total{kind="idle"}')}`);
  } finally {
    await s.stop();
  }
}

// ---------------------------------------------------------- write timeout

/** A client that pipelines many GET /metrics and never reads: the answers
 * fill the socket buffers, signerd's output stops draining, and it must
 * close the connection after write_timeout_ms. */
async function writeTimeout() {
  const WRITE = 1000;
  const s = await start({ write_timeout_ms: WRITE, read_timeout_ms: 20000, idle_timeout_ms: 20000 });
  try {
    const m0 = await metrics(s.port);
    const sock = net.connect({ host: '127.0.0.1', port: s.port });
    await new Promise((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
    sock.on('error', () => {});
    sock.pause();   // never read
    const one = rawHttp('GET', '/metrics');
    sock.write(Buffer.concat(Array.from({ length: 4000 }, () => one)));
    let n = 0;
    const t0 = Date.now();
    for (let i = 0; i < 100 && n === 0; i++) {   // bounded: 100 x 100 ms
      await sleep(100);
      const m = await metrics(s.port);
      n = m['signer_transport_timeouts_total{kind="write"}'] - m0['signer_transport_timeouts_total{kind="write"}'];
    }
    const ms = Date.now() - t0;
    sock.destroy();
    checks.check(n === 1, `write_timeout_ms ${WRITE}: a client that never reads is cut off (after ${ms} ms)`, `write timeouts ${n}`);
    const r = await request(s.port, 'GET', '/healthz');
    checks.check(r.status === 200, 'write timeout: still serving', r.text);
  } finally {
    await s.stop();
  }
}

// --------------------------------------------------------------- inflight

async function inflight() {
  const s = await start({ max_inflight: 1 }, { workers: 1 });
  try {
    const N = 60;
    const keys0 = await keyCount(s.port);
    const rs = await Promise.all(Array.from({ length: N }, () =>
      call(s.port, 'generate_key', { secret: SECRET }, { timeoutMs: 10000 }).catch((e) => ({ status: 0, text: String(e) }))));
    const n200 = rs.filter((r) => r.status === 200).length;
    const busy = rs.filter((r) => r.status === 503);
    const other = rs.filter((r) => r.status !== 200 && r.status !== 503);
    checks.check(other.length === 0, `max_inflight 1: all ${N} concurrent requests answered 200 or 503`, other.slice(0, 3));
    checks.check(busy.length > 0, `max_inflight 1: a flood of ${N} gets some 503 (got ${busy.length} x 503, ${n200} x 200)`);
    checks.check(busy.every((r) => r.json?.enclave_status === 503 && /busy/.test(r.json?.enclave_result?.error || '')),
      'max_inflight 1: the 503 answers are API-shaped JSON naming the cause', busy[0]?.text);
    checks.check(await keyCount(s.port) === keys0 + n200, 'max_inflight 1: only the 200 answers stored keys');
    // Frames: pipelined frames beyond max_inflight get 503 frames with their id.
    const f = await openFrames(s.framesPort);
    const M = 30;
    f.sendRaw(Buffer.concat(Array.from({ length: M }, (_, i) => frame({ id: `f${i}`, operation: 'generate_key', payload: { secret: SECRET } }))));
    const all = await f.waitAnswers(M, 10000);
    f.destroy();
    const fb = f.answers.filter((a) => a.enclave_status === 503);
    checks.check(all && f.answers.every((a) => a.enclave_status === 200 || a.enclave_status === 503),
      `max_inflight 1: all ${M} pipelined frames answered 200 or 503`, f.answers.length);
    checks.check(fb.length > 0 && fb.every((a) => typeof a.id === 'string' && a.id.startsWith('f')),
      `max_inflight 1: busy frames get 503 with their id (got ${fb.length})`, fb[0]);
    const m = await metrics(s.port);
    checks.check(m.signer_transport_busy_total === busy.length + fb.length, '503s are counted in /metrics signer_transport_busy_total',
      `${m.signer_transport_busy_total} vs ${busy.length + fb.length}`);
    const r = await call(s.port, 'generate_key', { secret: SECRET });
    checks.check(r.status === 200, 'max_inflight 1: a lone request after the flood is served', r.text);
  } finally {
    await s.stop();
  }
}

const groups = { sizes, connections, pipeline, timeouts, write: writeTimeout, inflight };
const only = process.env.LIMITS_ONLY;
for (const [name, fn] of Object.entries(groups)) {
  if (only && !only.split(',').includes(name)) continue;
  const t = Date.now();
  await checks.run(`${name}: ran without an exception`, fn);
  console.log(`${NAME}: ${name} done in ${Date.now() - t} ms`);
}
process.exit(checks.finish());
