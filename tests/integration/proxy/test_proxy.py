#!/usr/bin/env python3
"""Integration tests of signerd's proxy role (docs/proxy.md).

Runs the real signerd (role = "proxy") on 127.0.0.1 between Python clients
and local upstream servers (echo, TLS, sources and sinks, a DNS server),
and checks what arrives at each end and what /metrics counts.  Every
process and thread it starts is stopped before it exits (processes by
PID).  Prints "proxy: N passed, M failed" last.
"""
import concurrent.futures
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BUILD = os.environ.get("SIGNER_BUILDDIR", os.path.join(os.path.dirname(__file__), "../../../build"))
SIGNERD = os.path.join(BUILD, "signerd")
SLOW = 3 if os.environ.get("SIGNER_SANITIZED") else 1  # ASan: more time
# RSS growth allowed while tens of MiB wait: ASan's allocator maps its own
# regions on first use, so it gets more (still far below what waits).
RSS_KB = 20480 if os.environ.get("SIGNER_SANITIZED") else 8192
TMP = tempfile.mkdtemp(prefix="proxy-test-")
PROCS = []
CLOSERS = []
results = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        print("ok   %s" % name)
    else:
        results["failed"] += 1
        print("FAIL %s %s" % (name, detail))
    return cond


# ---- upstream servers -------------------------------------------------------

class Server:
    """A threaded TCP server on host:port (0: any free port); handler(conn)
    runs on its own thread per connection."""

    def __init__(self, handler, host="127.0.0.1", port=0, backlog=512, accept=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.conns = []
        self.stopped = False
        CLOSERS.append(self.close)
        if accept:
            threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            self.handler(c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def echo(c):
    """Echoes until EOF, then ends its side (half-close passed on)."""
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.shutdown(socket.SHUT_WR)


def banner(text):
    def h(c):
        c.sendall(text)
        c.shutdown(socket.SHUT_WR)
        c.recv(1)
    return h


def pattern(n):
    """Deterministic bytes: n bytes of a SHA-256 counter stream."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(struct.pack(">Q", i)).digest() * 64
        i += 1
    return bytes(out[:n])


BIG = 48 * 1024 * 1024


def source(c):
    """Sends BIG bytes as fast as the connection takes them."""
    block = pattern(1 << 20)
    for _ in range(BIG // len(block)):
        c.sendall(block)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)


def slow_sink(c):
    """Reads nothing for 3 s, then everything; answers the SHA-256."""
    time.sleep(3 * SLOW)
    h = hashlib.sha256()
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        h.update(d)
    c.sendall(h.hexdigest().encode())
    c.shutdown(socket.SHUT_WR)


# ---- DNS server ---------------------------------------------------------------

class Dns:
    """Answers A queries for the names in self.table with TTL 1; NXDOMAIN
    for the rest."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.table = {}
        self.queries = 0
        self.stopped = False
        CLOSERS.append(self.close)
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.stopped:
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                return
            if len(q) < 17:
                continue
            i, labels = 12, []
            while i < len(q) and q[i] != 0:
                labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
                i += 1 + q[i]
            qend = i + 5
            name = ".".join(labels).lower()
            qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
            self.queries += 1
            ip = self.table.get(name)
            if ip is None or qtype != 1:
                hdr = q[:2] + struct.pack(">HHHHH", 0x8183 if ip is None else 0x8180, 1, 0, 0, 0)
                self.sock.sendto(hdr + q[12:qend], peer)
                continue
            hdr = q[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
            ans = struct.pack(">HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(ip)
            self.sock.sendto(hdr + q[12:qend] + ans, peer)

    def close(self):
        self.stopped = True
        self.sock.close()


# ---- signerd ------------------------------------------------------------------

class Proxy:
    def __init__(self, conf, expect_start=True):
        path = os.path.join(TMP, "proxy-%d.conf" % len(PROCS))
        with open(path, "w") as f:
            f.write(conf)
        self.path = path
        self.lines = []
        self.p = subprocess.Popen([SIGNERD, "-c", path, "--io-loops", "2"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        PROCS.append(self.p)
        threading.Thread(target=self._read, daemon=True).start()
        self.relay = self.http = None
        if not expect_start:
            return
        deadline = time.time() + 15 * SLOW
        while time.time() < deadline and (self.relay is None or self.http is None):
            if self.p.poll() is not None:
                break
            for ln in list(self.lines):
                m = re.search(r"listening on (relay|http) 127\.0\.0\.1:(\d+)", ln)
                if m and m.group(1) == "relay":
                    self.relay = int(m.group(2))
                elif m:
                    self.http = int(m.group(2))
            time.sleep(0.02)
        if self.relay is None or self.http is None:
            raise RuntimeError("signerd did not start: %s" % "\n".join(self.lines))

    def _read(self):
        for ln in self.p.stderr:
            self.lines.append(ln.decode("utf-8", "replace").rstrip())

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.relay), timeout=20 * SLOW)

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http, timeout=10) as r:
            text = r.read().decode()
        out = {}
        for ln in text.splitlines():
            if ln.startswith("signer_"):
                k, v = ln.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def rss_kb(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        return 0

    def stop(self):
        """SIGTERM; every started signerd must exit 0 (under ASan: no leak)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=30 * SLOW)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        check("signerd %s exits 0 after SIGTERM" % os.path.basename(self.path), rc == 0,
              (rc, "\n".join(self.lines[-20:])))
        return rc


def conf(upstream, allow, extra="", http=True):
    listen = '{ address = "127.0.0.1:0"; protocol = "relay"; upstream = "%s"; }' % upstream
    if http:
        listen += ',\n  { address = "127.0.0.1:0"; protocol = "http"; }'
    return """role = "proxy";
log_level = "debug";
listen = ( %s );
limits = { max_connections = 1000; max_per_peer = 1000; shutdown_timeout_ms = 20000; };
proxy = {
  allowlist = ( %s );
  connect_timeout_ms = %d;
  idle_timeout_ms = %d;
  buffer_bytes = 65536;
%s
};
""" % (listen, allow, 1000 * SLOW, 20000 * SLOW, extra)


def allow(host, port):
    return '{ address = "%s"; port = %d; }' % (host, port)


def recv_all(s):
    out = bytearray()
    while True:
        d = s.recv(1 << 20)
        if not d:
            return bytes(out)
        out += d


# ---- tests --------------------------------------------------------------------

def one_echo(px, size, seed):
    data = hashlib.sha256(b"%d" % seed).digest() * (size // 32)
    s = px.connect()
    try:
        t = threading.Thread(target=s.sendall, args=(data,))
        t.start()
        got = bytearray()
        while len(got) < len(data):
            d = s.recv(1 << 20)
            if not d:
                break
            got += d
        t.join()
        s.shutdown(socket.SHUT_WR)
        rest = recv_all(s)  # the echo server's EOF comes through
        return hashlib.sha256(got + rest).digest() == hashlib.sha256(data).digest()
    finally:
        s.close()


def test_echo_concurrent():
    srv = Server(echo)
    px = Proxy(conf("127.0.0.1:%d" % srv.port, allow("127.0.0.1", srv.port)))
    try:
        check("relay: one connection echoes 1 MiB intact, half-close passed on", one_echo(px, 1 << 20, 0))
        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as ex:
            oks = list(ex.map(lambda i: one_echo(px, 64 * 1024, i), range(200)))
        check("relay: 200 concurrent connections each move 64 KiB both ways intact",
              all(oks), "%d of 200 intact" % sum(oks))
        # the proxy sees the clients' closes on its own time: poll (bounded)
        deadline = time.monotonic() + 2 * SLOW
        m = px.metrics()
        while m.get("signer_proxy_connections_active") != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
            m = px.metrics()
        check("metrics: 201 accepted", m.get("signer_proxy_connections_accepted_total") == 201, m)
        check("metrics: none active after the clients closed",
              m.get("signer_proxy_connections_active") == 0, m)
        want = (1 << 20) + 200 * 64 * 1024
        check("metrics: bytes up and down counted",
              m.get('signer_proxy_bytes_total{direction="up"}') == want and
              m.get('signer_proxy_bytes_total{direction="down"}') == want, m)
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % px.http, timeout=10) as r:
            check("http listener: /readyz answers 200", r.status == 200)
    finally:
        rc = px.stop()
        check("SIGTERM: exit status 0 (clean, no leaks under ASan)", rc == 0, rc)


def make_cert():
    key = os.path.join(TMP, "kms.key")
    crt = os.path.join(TMP, "kms.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "1", "-subj", "/CN=kms.test",
                    "-addext", "subjectAltName=DNS:kms.test"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return key, crt


def test_tls_end_to_end():
    key, crt = make_cert()
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(crt, key)
    sctx.maximum_version = ssl.TLSVersion.TLSv1_2  # tls-unique is defined for 1.2

    def tls_server(c):
        t = sctx.wrap_socket(c, server_side=True)
        req = t.recv(100)
        t.sendall(b"binding=" + t.get_channel_binding("tls-unique").hex().encode()
                  + b";got=" + req)
        t.unwrap()

    srv = Server(tls_server)
    px = Proxy(conf("127.0.0.1:%d" % srv.port, allow("127.0.0.1", srv.port)))
    try:
        cctx = ssl.create_default_context(cafile=crt)
        s = px.connect()
        t = cctx.wrap_socket(s, server_hostname="kms.test")
        check("TLS through the proxy: handshake completes, certificate of kms.test verified",
              t.getpeercert()["subject"][0][0][1] == "kms.test")
        t.sendall(b"hello-kms")
        answer = b""
        while True:
            try:
                d = t.recv(1000)
            except (ssl.SSLError, OSError):
                break
            if not d:
                break
            answer += d
        mine = t.get_channel_binding("tls-unique").hex().encode()
        check("TLS through the proxy: one session end to end (both ends see the same tls-unique)",
              answer == b"binding=" + mine + b";got=hello-kms", answer)
        t.close()
    finally:
        px.stop()


def kms_call(px, ca, region, akid, secret, op, body):
    """One SigV4-signed KMS JSON call over TLS through the proxy."""
    sys.path.insert(0, os.path.join(os.environ.get("SIGNER_SRCDIR", "."), "tests/kms"))
    import hmac
    import kms_sigv4
    host = "kms.%s.amazonaws.com" % region
    now = time.gmtime()
    amz_date, date = time.strftime("%Y%m%dT%H%M%SZ", now), time.strftime("%Y%m%d", now)
    headers = {"content-type": "application/x-amz-json-1.1", "host": host,
               "x-amz-date": amz_date, "x-amz-target": "TrentService." + op}
    signed = sorted(headers)
    creq = kms_sigv4.canonical_request("POST", "/", list(headers.items()), signed,
                                       hashlib.sha256(body).hexdigest())
    scope = "%s/%s/kms/aws4_request" % (date, region)
    sts = kms_sigv4.string_to_sign(amz_date, scope, creq)
    sig = hmac.new(kms_sigv4.signing_key(secret, date, region, "kms"), sts.encode(),
                   hashlib.sha256).hexdigest()
    auth = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        akid, scope, ";".join(signed), sig)
    ctx = ssl.create_default_context(cafile=ca)
    t = ctx.wrap_socket(px.connect(), server_hostname=host)
    head = "".join("%s: %s\r\n" % (k, v) for k, v in headers.items())
    t.sendall(("POST / HTTP/1.1\r\n%sAuthorization: %s\r\nContent-Length: %d\r\n"
               "Connection: close\r\n\r\n" % (head, auth, len(body))).encode() + body)
    answer = b""
    while True:
        try:
            d = t.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not d:
            break
        answer += d
    t.close()
    return answer


def test_kms_standin():
    """The KMS stand-in (tests/kms) behind the proxy: a signed GenerateRandom
    over TLS verified for kms.REGION.amazonaws.com."""
    try:
        import cryptography  # noqa: F401 (the stand-in needs it)
        import cbor2  # noqa: F401
    except ImportError:
        print("skip test_kms_standin: python3-cryptography or python3-cbor2 missing")
        return
    standin = os.path.join(os.environ.get("SIGNER_SRCDIR", "."), "tests/kms/kms_standin.py")
    tls = os.path.join(TMP, "kms-tls")
    os.mkdir(tls)
    region, akid, secret = "eu-west-1", "AKIDPROXYTEST", "proxy-test-secret"
    kp = subprocess.Popen([sys.executable, standin, "--tls-dir", tls, "--region", region,
                           "--access-key-id", akid, "--secret-access-key", secret, "--quiet"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    PROCS.append(kp)
    line = kp.stdout.readline().decode()
    m = re.search(r"KMS_STANDIN_READY port=(\d+)", line)
    if not check("KMS stand-in started", m is not None, line):
        return
    port = int(m.group(1))
    px = Proxy(conf("127.0.0.1:%d" % port, allow("127.0.0.1", port)))
    try:
        ans = kms_call(px, os.path.join(tls, "ca.pem"), region, akid, secret,
                       "GenerateRandom", b'{"NumberOfBytes": 32}')
        status, _, body = ans.partition(b"\r\n\r\n")
        ok = status.startswith(b"HTTP/1.1 200") or status.startswith(b"HTTP/1.0 200")
        try:
            n = len(__import__("base64").b64decode(json.loads(body)["Plaintext"]))
        except (ValueError, KeyError):
            n = 0
        check("KMS stand-in through the proxy: signed GenerateRandom over TLS answers 32 bytes",
              ok and n == 32, ans[:300])
        bad = kms_call(px, os.path.join(tls, "ca.pem"), region, akid, "wrong-secret",
                       "GenerateRandom", b'{"NumberOfBytes": 32}')
        check("KMS stand-in through the proxy: a wrong key is refused by the stand-in (not the proxy)",
              b"InvalidSignatureException" in bad, bad[:300])
    finally:
        px.stop()
        kp.terminate()
        kp.wait(timeout=10)


def test_backpressure():
    srv = Server(source)
    sink = Server(slow_sink)
    px = Proxy(conf("127.0.0.1:%d" % srv.port, allow("127.0.0.1", srv.port)))
    px2 = Proxy(conf("127.0.0.1:%d" % sink.port, allow("127.0.0.1", sink.port)))
    try:
        rss0 = px.rss_kb()
        s = px.connect()
        time.sleep(3 * SLOW)  # a client that reads nothing for 3 s
        rss1 = px.rss_kb()
        m = px.metrics()
        held = m.get("signer_proxy_buffered_bytes_max", -1)
        check("back-pressure down: a stalled reader holds at most ~2 x 64 KiB in the proxy",
              0 < held <= 2 * 65536, held)
        check("back-pressure down: RSS grows by far less than the 48 MiB waiting upstream",
              rss1 - rss0 < RSS_KB, (rss0, rss1))
        h = hashlib.sha256()
        n = 0
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            n += len(d)
            h.update(d)
        s.close()
        ref = hashlib.sha256(pattern(1 << 20) * (BIG // (1 << 20))).hexdigest()
        check("back-pressure down: all 48 MiB arrive intact afterwards",
              n == BIG and h.hexdigest() == ref, n)
        # Upstream direction: the sink reads nothing for 3 s.
        rss0 = px2.rss_kb()
        s = px2.connect()
        data = pattern(64 << 20)
        t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
        t.start()
        time.sleep(2 * SLOW)
        rss1 = px2.rss_kb()
        held = px2.metrics().get("signer_proxy_buffered_bytes_max", -1)
        check("back-pressure up: a stalled upstream holds at most ~2 x 64 KiB in the proxy",
              0 < held <= 2 * 65536, held)
        check("back-pressure up: RSS grows by far less than the 64 MiB waiting",
              rss1 - rss0 < RSS_KB, (rss0, rss1))
        t.join()
        answer = recv_all(s).decode()
        s.close()
        check("back-pressure up: the sink got all 64 MiB intact",
              answer == hashlib.sha256(data).hexdigest(), answer)
    finally:
        px.stop()
        px2.stop()


def test_upstream_down_and_timeouts():
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()  # nothing listens there now
    px = Proxy(conf("127.0.0.1:%d" % port, allow("127.0.0.1", port)))
    try:
        s = px.connect()
        t0 = time.time()
        try:
            d = s.recv(10)
        except ConnectionResetError:
            d = b""
        dt = time.time() - t0
        s.close()
        check("upstream down: the client is closed promptly", d == b"" and dt < 2 * SLOW, dt)
        time.sleep(0.2)
        m = px.metrics()
        check("upstream down: counted as a connect failure",
              m.get("signer_proxy_upstream_connect_failures_total") == 1, m)
    finally:
        px.stop()
    # An upstream whose accept queue is full never completes the handshake.
    jam = Server(None, backlog=0, accept=False)
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        try:
            f.connect(("127.0.0.1", jam.port))
        except BlockingIOError:
            pass
        fillers.append(f)
    time.sleep(0.3)
    px = Proxy(conf("127.0.0.1:%d" % jam.port, allow("127.0.0.1", jam.port)))
    try:
        s = px.connect()
        t0 = time.time()
        try:
            d = s.recv(10)
        except ConnectionResetError:
            d = b""
        dt = time.time() - t0
        s.close()
        check("upstream never answers the connect: closed at connect_timeout_ms",
              d == b"" and 0.8 * SLOW <= dt < 4 * SLOW, dt)
        time.sleep(0.2)
        check("connect timeout counted",
              px.metrics().get("signer_proxy_upstream_connect_timeouts_total") == 1)
    finally:
        px.stop()
        for f in fillers:
            f.close()
    # An upstream that accepts but never says anything: idle timeout.
    mute = Server(lambda c: c.recv(1))
    px = Proxy(conf("127.0.0.1:%d" % mute.port, allow("127.0.0.1", mute.port)).replace(
        "idle_timeout_ms = %d" % (20000 * SLOW), "idle_timeout_ms = %d" % (700 * SLOW)))
    try:
        s = px.connect()
        t0 = time.time()
        d = s.recv(10)
        dt = time.time() - t0
        s.close()
        check("silent upstream: closed at idle_timeout_ms", d == b"" and 0.6 * SLOW <= dt < 4 * SLOW, dt)
        time.sleep(0.2)
        check("idle timeout counted", px.metrics().get("signer_proxy_idle_timeouts_total") == 1)
    finally:
        px.stop()


def test_max_connections():
    srv = Server(echo)
    c = conf("127.0.0.1:%d" % srv.port, allow("127.0.0.1", srv.port)).replace(
        "max_connections = 1000;", "max_connections = 2;")
    px = Proxy(c)
    try:
        a, b = px.connect(), px.connect()
        for s in (a, b):
            s.sendall(b"x")
            s.recv(1)  # both relays are open
        third = px.connect()
        third.settimeout(5 * SLOW)
        try:
            got = third.recv(10)
        except (ConnectionResetError, socket.timeout) as e:
            got = e
        check("max_connections: a connection beyond the limit is closed at once", got == b"", got)
        third.close()
        m = px.metrics()
        check("max_connections: the refusal is counted",
              m.get("signer_transport_connections_rejected_total") == 1, m)
        a.sendall(b"y")
        check("max_connections: the open relays keep working", a.recv(1) == b"y")
        a.close()
        b.close()
    finally:
        px.stop()


def test_allowlist_refused_at_start():
    px = Proxy(conf("127.0.0.1:9", allow("kms.eu-west-1.amazonaws.com", 443)), expect_start=False)
    rc = px.p.wait(timeout=20 * SLOW)
    time.sleep(0.1)
    log = "\n".join(px.lines)
    check("off the allowlist: signerd refuses to start, naming the destination",
          rc != 0 and "upstream 127.0.0.1:9 is not on the allowlist" in log, (rc, log))
    px = Proxy(conf("kms.eu-west-1.amazonaws.com:444", allow("kms.eu-west-1.amazonaws.com", 443)),
               expect_start=False)
    rc = px.p.wait(timeout=20 * SLOW)
    check("off the allowlist: the right host on another port is refused too", rc != 0)


def test_yaml_allowlist():
    srv = Server(banner(b"yaml-ok"))
    y = os.path.join(TMP, "vsock-proxy.yaml")
    with open(y, "w") as f:
        f.write("allowlist:\n"
                "- {address: kms.us-east-1.amazonaws.com, port: 443}\n"
                "# the local stand-in\n"
                "- {address: 127.0.0.1, port: %d}\n"
                "- address: 'kms.eu-west-1.amazonaws.com'\n"
                "  port: 443\n" % srv.port)
    c = conf("127.0.0.1:%d" % srv.port, allow("example.invalid", 1),
             'allowlist_file = "%s";' % y)
    px = Proxy(c)
    try:
        s = px.connect()
        check("YAML allowlist (vsock-proxy format): a destination it lists relays", recv_all(s) == b"yaml-ok")
        s.close()
    finally:
        px.stop()
    with open(y, "w") as f:
        f.write("allowlist:\n- {address: a.example, port: 443}\n- {address: b.example, port: https}\n")
    px = Proxy(c, expect_start=False)
    rc = px.p.wait(timeout=20 * SLOW)
    time.sleep(0.1)
    log = "\n".join(px.lines)
    check("malformed YAML refused naming the file and line",
          rc != 0 and ("%s:3: port 'https' is not a number" % y) in log, log)


def test_dns_reresolution():
    dns = Dns()
    a = Server(banner(b"A"))
    try:
        b = Server(banner(b"B"), host="127.0.0.2", port=a.port)
    except OSError as e:
        check("DNS: second loopback address usable", False, e)
        return
    dns.table["kms.test"] = "127.0.0.1"
    extra = 'dns_ttl_max_seconds = 60;\n  nameservers = [ "127.0.0.1:%d" ];' % dns.port
    c = conf("kms.test:%d" % a.port, allow("kms.test", a.port), extra)
    c = c.replace("allowlist = ( %s );" % allow("kms.test", a.port),
                  "allowlist = ( %s, %s );" % (allow("kms.test", a.port), allow("nx.test", a.port)))
    px = Proxy(c)
    try:
        s = px.connect()
        first = recv_all(s)
        s.close()
        s = px.connect()
        second = recv_all(s)
        s.close()
        q1 = dns.queries
        check("DNS: the name resolves through the name server (asynchronously)",
              first == b"A" and second == b"A", (first, second))
        check("DNS: the answer is cached within its TTL (one query for two connections)", q1 == 1, q1)
        dns.table["kms.test"] = "127.0.0.2"
        time.sleep(1.6)  # the record's TTL is 1 s
        s = px.connect()
        third = recv_all(s)
        s.close()
        check("DNS: re-resolved after the TTL, the new address is followed", third == b"B", third)
        m = px.metrics()
        check("DNS: resolutions counted", m.get("signer_proxy_dns_resolutions_total") == 2, m)
        del dns.table["kms.test"]
        time.sleep(1.6)
        s = px.connect()
        # A failed refresh keeps the old address for a few seconds.
        check("DNS: a failed refresh keeps the last good address", recv_all(s) == b"B")
        s.close()
        check("DNS: the failure is counted",
              px.metrics().get("signer_proxy_dns_failures_total", 0) >= 1)
    finally:
        px.stop()


def test_sigterm_drains():
    srv = Server(echo)
    px = Proxy(conf("127.0.0.1:%d" % srv.port, allow("127.0.0.1", srv.port)))
    s = px.connect()
    s.sendall(b"before")
    check("drain: relay works before SIGTERM", s.recv(100) == b"before")
    px.p.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    s.sendall(b"during")
    got = s.recv(100)
    check("drain: an open relay keeps working after SIGTERM", got == b"during", got)
    refused = False
    try:
        n = socket.create_connection(("127.0.0.1", px.relay), timeout=5)
        n.settimeout(5)
        refused = n.recv(10) == b""
        n.close()
    except OSError:
        refused = True
    check("drain: new connections are refused", refused)
    check("drain: signerd still runs while a relay is open", px.p.poll() is None)
    s.shutdown(socket.SHUT_WR)
    recv_all(s)
    s.close()
    try:
        rc = px.p.wait(timeout=10 * SLOW)
    except subprocess.TimeoutExpired:
        rc = None
    check("drain: signerd exits 0 once the last relay ended", rc == 0, rc)


def main():
    if not os.access(SIGNERD, os.X_OK):
        print("proxy: %s not built; skipping" % SIGNERD)
        return 77
    tests = [test_echo_concurrent, test_tls_end_to_end, test_kms_standin, test_backpressure,
             test_upstream_down_and_timeouts, test_max_connections,
             test_allowlist_refused_at_start,
             test_yaml_allowlist, test_dns_reresolution, test_sigterm_drains]
    only = sys.argv[1:]
    try:
        for t in tests:
            if only and t.__name__ not in only:
                continue
            try:
                t()
            except Exception as e:  # a crash is a failure, never a pass
                import traceback
                traceback.print_exc()
                check(t.__name__, False, repr(e))
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
        for c in CLOSERS:
            try:
                c()
            except OSError:
                pass
    print("proxy: %d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
