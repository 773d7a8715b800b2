"""The HTTP layer of a live `forge serve` (issue 12), from raw sockets: strict framing,
authentication before the body, pipelining, half-close, Expect, disconnect metrics, the
connection cap and file descriptor exhaustion. Expected answers come from RFC 9112 and the
issue, not from the server's earlier output.

    http_live.py framing PORT          (server with --api-key sekret)
    http_live.py memory PORT PID       (server with --api-key sekret)
    http_live.py cap PORT N            (server with --max-connections N)
    http_live.py fdlimit PORT PID      (server under a low ulimit -n)
Prints ok/FAIL lines and "N passed, N failed"."""
import json
import os
import socket
import sys
import time

HOST = "127.0.0.1"
KEY = "sekret"
passed = failed = 0


def check(desc, ok, note=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {desc}")
    else:
        failed += 1
        print(f"FAIL {desc} {note}")


def recv_some(s):
    try:
        return s.recv(65536)
    except (ConnectionResetError, socket.timeout, BlockingIOError):
        return b""


def read_response(s, buf=b""):
    """(status, headers, body, rest) of one final response (1xx skipped); status None on close."""
    while True:
        while b"\r\n\r\n" not in buf:
            d = recv_some(s)
            if not d:
                return None, {}, buf, b""
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if 100 <= status < 200:
            continue
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(buf) < n:
                d = recv_some(s)
                if not d:
                    break
                buf += d
            return status, headers, buf[:n], buf[n:]
        if headers.get("transfer-encoding") == "chunked":
            out = b""
            while True:
                while b"\r\n" not in buf:
                    d = recv_some(s)
                    if not d:
                        return status, headers, out, b""
                    buf += d
                line, buf = buf.split(b"\r\n", 1)
                size = int(line, 16)
                while len(buf) < size + 2:
                    d = recv_some(s)
                    if not d:
                        return status, headers, out + buf, b""
                    buf += d
                out += buf[:size]
                buf = buf[size + 2:]
                if size == 0:
                    return status, headers, out, buf
        while True:
            d = recv_some(s)
            if not d:
                return status, headers, buf, b""
            buf += d


def raw(data, timeout=20):
    s = socket.create_connection((HOST, PORT))
    s.settimeout(timeout)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    st, h, body, _ = read_response(s)
    s.close()
    return st, h, body


def error_code(body):
    try:
        e = json.loads(body)["error"]
        assert isinstance(e["message"], str) and "type" in e and "param" in e
        return e["code"]
    except Exception:
        return "(not OpenAI error JSON)"


def head(method, path, fields, version="HTTP/1.1"):
    return (f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode()


BODY = json.dumps({"prompt": [1, 2, 3], "max_tokens": 2}).encode()
AUTH = ("Authorization", f"Bearer {KEY}")


def post_fields(extra, length=True):
    f = [("Host", "x"), AUTH, ("Content-Type", "application/json")]
    if length:
        f.append(("Content-Length", str(len(BODY))))
    return f + extra


def metrics():
    st, _, body = raw(head("GET", "/metrics", [("Host", "x"), ("Connection", "close")]))
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def wait_metric(name, pred, tries=400):
    for _ in range(tries):
        v = metrics().get(name, 0.0)
        if pred(v):
            return v
        time.sleep(0.05)  # polling a counter, bounded
    return None


def framing():
    C = "/v1/completions"
    cases = [
        ("two different Content-Length fields", head("POST", C, post_fields([("Content-Length", "7")])) + BODY, 400),
        ("Content-Length: +N (signed)", head("POST", C, post_fields([("Content-Length", f"+{len(BODY)}")], False)) + BODY, 400),
        ("Content-Length: N, M", head("POST", C, post_fields([("Content-Length", f"{len(BODY)}, 3")], False)) + BODY, 400),
        ("Transfer-Encoding: gzip, chunked", head("POST", C, post_fields([("Transfer-Encoding", "gzip, chunked")], False))
         + b"0\r\n\r\n", 400),
        ("Transfer-Encoding with Content-Length", head("POST", C, post_fields([("Transfer-Encoding", "chunked")]))
         + b"0\r\n\r\n", 400),
        ("Transfer-Encoding in HTTP/1.0", head("POST", C, post_fields([("Transfer-Encoding", "chunked")], False),
                                                "HTTP/1.0") + b"0\r\n\r\n", 400),
        ("space before a header colon", b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        ("obs-fold", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  b\r\n\r\n", 400),
        ("bare CR in a field", b"GET /health HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", 400),
        ("no Host in HTTP/1.1", b"GET /health HTTP/1.1\r\n\r\n", 400),
        ("two Host fields", b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("HTTP/2.0 request line", b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("Expect: something else", head("POST", C, post_fields([("Expect", "200-ok")])) + BODY, 417),
        ("malformed chunk size", head("POST", C, post_fields([("Transfer-Encoding", "chunked")], False))
         + b"zz\r\n{}\r\n0\r\n\r\n", 400),
        ("chunk data longer than its size", head("POST", C, post_fields([("Transfer-Encoding", "chunked")], False))
         + b"2\r\n{}}\r\n0\r\n\r\n", 400),
        ("a chunk size past the body limit", head("POST", C, post_fields([("Transfer-Encoding", "chunked")], False))
         + b"fffffffff\r\n", 413),
        ("a declared body past the limit, with the key", head("POST", C, post_fields([("Content-Length", "33554432")],
                                                                                     False)), 413),
        ("a 100 KB header field", head("GET", "/health", [("Host", "x"), ("X-Big", "a" * 100000)]), 431),
        ("a 10 KB target", head("GET", "/" + "a" * 10000, [("Host", "x")]), 414),
        ("garbage instead of HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n", 400),
    ]
    for desc, data, want in cases:
        st, h, body = raw(data)
        code = error_code(body) if st else None
        check(f"{desc}: {want} with OpenAI JSON", st == want and code != "(not OpenAI error JSON)",
              f"(got {st} {code} {body[:120]!r})")
        if st:
            check(f"{desc}: Connection: close", h.get("connection") == "close", f"(headers {h})")

    # a valid chunked body with an extension and a trailer; absolute-form target
    data = head("POST", "http://x" + C, post_fields([("Transfer-Encoding", "chunked")], False)) + \
        f"{len(BODY):x};ext=1\r\n".encode() + BODY + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
    st, _, body = raw(data)
    check("valid chunked body (extension, trailer, absolute-form): 200", st == 200, f"(got {st} {body[:200]!r})")

    # authentication on the head, before any body: a 32 MB upload without the key is
    # refused at once, without the client sending a byte of it
    s = socket.create_connection((HOST, PORT))
    s.settimeout(10)
    s.sendall(head("POST", C, [("Host", "x"), ("Content-Length", "33554432")]))
    st, h, body, _ = read_response(s)
    check("32 MB body without the key: 401 before the body is sent", st == 401 and error_code(body) == "invalid_api_key",
          f"(got {st} {body[:200]!r})")
    s.close()

    # ... and a client that sends the whole body anyway still reads its 401: the server
    # reads and drops the rest for a while (a lingering close) instead of resetting the
    # connection under the answer
    s = socket.create_connection((HOST, PORT))
    s.settimeout(10)
    sent_all = True
    try:
        s.sendall(head("POST", C, [("Host", "x"), ("Content-Length", str(4 << 20))]) + b"x" * (4 << 20))
    except (BrokenPipeError, ConnectionResetError):
        sent_all = False
    try:
        st, h, body, _ = read_response(s)
    except ConnectionResetError:
        st = None
    check("a 4 MB body sent whole without the key: sent, then 401 read intact (lingering close)",
          sent_all and st == 401 and error_code(body) == "invalid_api_key", f"(sent all {sent_all}, got {st})")
    s.close()

    # Expect: 100-continue: the interim answer, then the real one
    s = socket.create_connection((HOST, PORT))
    s.settimeout(20)
    s.sendall(head("POST", C, post_fields([("Expect", "100-continue")])))
    first = recv_some(s)
    ok_interim = first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(BODY)
    st, _, body, _ = read_response(s, first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):] if ok_interim else first)
    check("Expect: 100-continue: 100, then 200", ok_interim and st == 200, f"(first {first[:60]!r}, then {st})")
    s.close()

    # two pipelined requests in one write: two answers, in order, on one connection
    s = socket.create_connection((HOST, PORT))
    s.settimeout(20)
    b1 = json.dumps({"prompt": [1, 2, 3], "max_tokens": 1}).encode()
    b2 = json.dumps({"tokens": [5, 6]}).encode()
    s.sendall(head("POST", C, [("Host", "x"), AUTH, ("Content-Length", str(len(b1)))]) + b1 +
              head("POST", "/detokenize", [("Host", "x"), AUTH, ("Content-Length", str(len(b2)))]) + b2)
    st1, _, body1, rest = read_response(s)
    st2, _, body2, _ = read_response(s, rest)
    check("pipelined requests: answered in order", st1 == 200 and b'"choices"' in body1 and st2 == 200 and
          b'"prompt"' in body2, f"(got {st1} {body1[:80]!r}, {st2} {body2[:80]!r})")
    s.close()

    # a client that half-closes after sending still gets its answer
    s = socket.create_connection((HOST, PORT))
    s.settimeout(30)
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": 40, "ignore_eos": True}).encode()
    s.sendall(head("POST", C, [("Host", "x"), AUTH, ("Content-Length", str(len(body)))]) + body)
    s.shutdown(socket.SHUT_WR)
    st, _, answer, _ = read_response(s)
    ok = st == 200 and json.loads(answer)["usage"]["completion_tokens"] == 40
    check("half-close after the request: the whole answer", ok, f"(got {st} {answer[:200]!r})")
    s.close()

    # a streaming client that leaves is counted as a disconnect, and its request cancelled
    before = metrics().get("forge_server_disconnects_total", 0.0)
    s = socket.create_connection((HOST, PORT))
    s.settimeout(30)
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": 400, "ignore_eos": True, "stream": True}).encode()
    s.sendall(head("POST", C, [("Host", "x"), AUTH, ("Content-Length", str(len(body)))]) + body)
    got = b""
    while b"data: " not in got:
        d = recv_some(s)
        if not d:
            break
        got += d
    s.close()
    after = wait_metric("forge_server_disconnects_total", lambda v: v >= before + 1)
    check("a streaming client that leaves: forge_server_disconnects_total counts it", after is not None,
          f"(before {before})")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory(pid):
    """40 connections each start a 32 MB upload without the key (issue 12: 1.5 GB before):
    the server answers 401 on the head and reads none of it."""
    before = rss_kb(pid)
    socks = []
    chunk = b"x" * (1 << 20)
    for _ in range(40):
        s = socket.create_connection((HOST, PORT))
        s.settimeout(5)
        s.sendall(head("POST", "/v1/completions", [("Host", "x"), ("Content-Length", "33554432")]))
        socks.append(s)
    sent = 0
    for s in socks:
        for _ in range(4):
            try:
                s.sendall(chunk)
                sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
    statuses = []
    for s in socks:
        st, _, _, _ = read_response(s)
        statuses.append(st)
        s.close()
    grown = (rss_kb(pid) - before) / 1024
    check("40 unauthenticated 32 MB uploads: each answered 401", statuses.count(401) == 40, f"({statuses})")
    check(f"... and the server's RSS grew {grown:.1f} MB (< 32 MB)", grown < 32)


def cap(n):
    """--max-connections n: idle connections make room; busy ones mean 503."""
    idle = [socket.create_connection((HOST, PORT)) for _ in range(n)]
    time.sleep(0.2)  # the client's idle period: they must be the oldest idle ones
    st, _, body = raw(head("GET", "/health", [("Host", "x"), ("Connection", "close")]))
    check(f"{n} idle connections open, one more: served (the oldest idle one closed)", st == 200, f"(got {st})")
    evicted = sum(1 for s in idle if (s.setblocking(False) or True) and _closed(s))
    check("... exactly one idle connection was closed for it", evicted == 1, f"(closed {evicted})")
    for s in idle:
        s.close()
    # n connections each in the middle of a request head: none is idle
    busy = []
    for _ in range(n):
        s = socket.create_connection((HOST, PORT))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        busy.append(s)
    time.sleep(0.2)
    st, _, body = raw(head("GET", "/health", [("Host", "x")]))
    check(f"{n} connections mid-request, one more: 503 too_many_connections",
          st == 503 and error_code(body) == "too_many_connections", f"(got {st} {body[:200]!r})")
    for s in busy:
        s.sendall(b"\r\n")
    oks = [read_response(s)[0] for s in busy]
    check("... and the busy ones are all answered", oks.count(200) == n, f"({oks})")
    for s in busy:
        s.close()


def _closed(s):
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def fdlimit(pid, log, capped):
    """Under a low ulimit -n, 300 idle connections: no busy loop, no flood in the log; with the
    default cap new clients are served at once, without it (accept failing with EMFILE) as
    soon as descriptors are free again."""
    log_before = os.path.getsize(log)
    socks = []
    for _ in range(300):
        try:
            socks.append(socket.create_connection((HOST, PORT), timeout=2))
        except OSError:
            break
    c0 = cpu_s(pid)
    time.sleep(2)  # a window to measure the server's CPU use in, not synchronisation
    used = cpu_s(pid) - c0
    check(f"300 idle connections under ulimit -n: the server used {used:.2f} s of CPU in 2 s (< 0.5)", used < 0.5)
    grown = os.path.getsize(log) - log_before
    check(f"... and wrote {grown} bytes to its log (< 20000)", grown < 20000)
    if capped:
        st, _, _ = raw(head("GET", "/health", [("Host", "x"), ("Connection", "close")]), timeout=10)
        check("... a new client is answered at once (an idle connection made room)", st == 200, f"(got {st})")
    for s in socks:
        s.close()
    st = None
    for _ in range(100):  # bounded: the accept back-off is at most 1 s
        try:
            st, _, _ = raw(head("GET", "/health", [("Host", "x"), ("Connection", "close")]), timeout=3)
        except OSError:
            st = None
        if st == 200:
            break
        time.sleep(0.1)
    check("... and once they are closed, clients are answered again", st == 200, f"(got {st})")


if __name__ == "__main__":
    mode, PORT = sys.argv[1], int(sys.argv[2])
    if mode == "framing":
        framing()
    elif mode == "memory":
        memory(int(sys.argv[3]))
    elif mode == "cap":
        cap(int(sys.argv[3]))
    elif mode == "fdlimit":
        fdlimit(int(sys.argv[3]), sys.argv[4], sys.argv[5] == "capped")
    print(f"{passed} passed, {failed} failed")
