#!/usr/bin/env python3
"""A catalogue of bad requests against a live `forge serve` (raw sockets, so that malformed
bytes, slow bodies and disconnects are exactly what is sent). Each must get the expected 4xx
(with OpenAI's error JSON) or a clean close, and the server must stay up: /health 200 after
all, with no KV block held. Prints ok/FAIL lines, the table (markdown) to --table, and
"N passed, N failed".

The server is expected to run with: --api-key sekret --request-timeout 1 --max-seqs 4
--max-waiting 8 --chat-template tests/fixtures/server/chat_template.jinja (stories260K)."""
import json
import re
import socket
import sys
import time

HOST = "127.0.0.1"
PORT = int(sys.argv[1])
TABLE = sys.argv[2] if len(sys.argv) > 2 else None
KEY = "sekret"
passed = failed = 0
rows = []


def read_response(s):
    """(status, headers, body) of one HTTP response, or (None, {}, b"") on a close."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            d = b""
        if not d:
            return None, {}, buf
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()

    def more():
        try:
            return s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return b""
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            d = more()
            if not d:
                break
            body += d
        return status, headers, body[:n]
    if headers.get("transfer-encoding") == "chunked":
        out = b""
        while True:
            while b"\r\n" not in body:
                d = more()
                if not d:
                    return status, headers, out
                body += d
            size_line, body = body.split(b"\r\n", 1)
            size = int(size_line, 16)
            while len(body) < size + 2:
                d = more()
                if not d:
                    return status, headers, out + body
                body += d
            out += body[:size]
            body = body[size + 2:]
            if size == 0:
                return status, headers, out
    while True:
        d = more()
        if not d:
            return status, headers, body
        body += d


def send_raw(data, timeout=20):
    s = socket.create_connection((HOST, PORT))
    s.settimeout(timeout)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = read_response(s)
    s.close()
    return r


def request(method, path, body=b"", headers=None, auth=True):
    h = {"Host": f"{HOST}:{PORT}", "Connection": "close"}
    if auth:
        h["Authorization"] = f"Bearer {KEY}"
    if body or method == "POST":
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return head.encode() + body


def post(path, obj=None, raw=None, **kw):
    body = raw if raw is not None else json.dumps(obj).encode()
    return send_raw(request("POST", path, body, **kw))


def metrics():
    _, _, body = send_raw(request("GET", "/metrics", auth=False))
    out = {}
    for line in body.decode().splitlines():
        m = re.match(r'^([a-z_]+)(\{[^}]*\})? (\S+)$', line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def wait_metric(name, pred, tries=400):
    for _ in range(tries):
        v = metrics().get(name, 0.0)
        if pred(v):
            return v
        time.sleep(0.05)
    return None


def record(desc, want, got_status, code, ok_extra=True, note=""):
    global passed, failed
    ok = got_status in want and ok_extra
    shown = "close" if got_status is None else str(got_status)
    rows.append((desc, shown, code or ""))
    if ok:
        passed += 1
        print(f"ok   {desc}: {shown} {code or ''}")
    else:
        failed += 1
        print(f"FAIL {desc}: got {shown} {code or ''}, want {want} {note}")


def case(desc, want, resp, want_code=None):
    """Checks an answer: status in want; 4xx/5xx bodies must be OpenAI error JSON."""
    status, headers, body = resp
    code, ok = None, True
    if status is not None and status >= 400:
        try:
            err = json.loads(body)["error"]
            ok = isinstance(err["message"], str) and "type" in err and "param" in err and "code" in err
            code = err["code"]
        except Exception:  # every error, the HTTP layer's own included, is OpenAI JSON
            code = "(non-JSON body)"
            ok = False
    if want_code is not None and code != want_code:
        ok = False
    record(desc, want, status, code, ok, f"(code {want_code})" if want_code else "")


C = "/v1/completions"
CH = "/v1/chat/completions"
P = {"prompt": "Once upon a time", "max_tokens": 4}
MSG = [{"role": "user", "content": "Hello"}]


def with_(base, **kw):
    d = dict(base)
    d.update(kw)
    return d


# ---- framing, encoding, sizes --------------------------------------------------------
case("malformed JSON (truncated object)", {400}, post(C, raw=b'{"prompt": "x",'), "invalid_json")
case("body is a JSON array, not an object", {400}, post(C, raw=b"[1, 2]"), "invalid_json")
case("empty body", {400}, post(C, raw=b""), "invalid_json")
case("NaN literal (not JSON)", {400}, post(C, raw=b'{"prompt": "x", "temperature": NaN}'), "invalid_json")
case("invalid UTF-8 in a string (0xFF 0xFE)", {400}, post(C, raw=b'{"prompt": "\xff\xfe"}'), "invalid_json")
case("truncated UTF-8 sequence", {400}, post(C, raw=b'{"prompt": "abc\xe2\x82"}'), "invalid_json")
case("overlong UTF-8 (0xC0 0xAF)", {400}, post(C, raw=b'{"prompt": "\xc0\xaf"}'), "invalid_json")
case("10000 nested arrays", {400}, post(C, raw=b'{"prompt": ' + b"[" * 10000 + b"]" * 10000 + b"}"), "invalid_json")
case("10 MB body", {413}, post(C, raw=b'{"prompt": "' + b"a" * (10 << 20) + b'"}'), "request_too_large")
case("Content-Length of 100 GB", {413, 400, None},
     send_raw(request("POST", C, b"{}", headers={"Content-Length": "100000000000"})))
case("Content-Length not a number", {400, None}, send_raw(request("POST", C, b"{}", headers={"Content-Length": "abc"})))
case("negative Content-Length", {400, None}, send_raw(request("POST", C, b"{}", headers={"Content-Length": "-5"})))
case("garbage request line", {400, None}, send_raw(b"HELLO WORLD\r\n\r\n"))
case("a 100 KB header", {431}, send_raw(request("GET", "/health", headers={"X-Big": "a" * 100000})))
case("chunked body with a bad chunk size", {400, 413, None},
     send_raw(b"POST " + C.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\n"
              b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"))

# ---- routes, methods, auth, model --------------------------------------------------------
case("unknown route", {404}, post("/v1/nothing", P), "not_found")
case("GET on a POST route", {405}, send_raw(request("GET", C)), "method_not_allowed")
case("POST on /health", {405}, post("/health", {}), "method_not_allowed")
case("no Authorization header", {401}, post(C, P, auth=False), "invalid_api_key")
case("wrong key", {401}, post(C, P, auth=False, headers={"Authorization": "Bearer wrong"}), "invalid_api_key")
case("wrong key of the same length", {401}, post(C, P, auth=False, headers={"Authorization": "Bearer sekreT"}),
     "invalid_api_key")
case("Basic instead of Bearer", {401}, post(C, P, auth=False, headers={"Authorization": "Basic c2VrcmV0"}),
     "invalid_api_key")
case("unknown model", {404}, post(C, with_(P, model="gpt-4")), "model_not_found")
case("model is a number", {400}, post(C, with_(P, model=123)), "invalid_type")


def case_utf8(desc, want, resp, want_code, fffd):
    """An error whose message quotes what the client sent: the body must be valid UTF-8
    (strictly), with U+FFFD for invalid bytes (fffd True) or a clean cut (fffd False)."""
    status, _, body = resp
    try:
        text = body.decode("utf-8")
        msg = json.loads(text)["error"]["message"]
        ok = ("\ufffd" in msg) == fffd
        note = "" if ok else f"(U+FFFD {'missing' if fffd else 'unexpected'} in {msg[-40:]!r})"
    except Exception as ex:
        ok, note = False, f"(body not valid UTF-8 JSON: {ex}: {body[:300]!r})"
    if status == 404 and want_code:
        try:
            ok = ok and json.loads(body)["error"]["code"] == want_code
        except Exception:
            ok = False
    record(desc, want, status, want_code if ok else None, ok, note)


# a name cut at 200 bytes inside a character; raw invalid bytes; a lone surrogate escape
case_utf8("404 model name of 199 'a' + 'é' cut on a character boundary", {404},
          send_raw(request("GET", "/v1/models/" + "a" * 199 + "%C3%A9")), "model_not_found", False)
case_utf8("404 for a request's model of 199 'a' + 'é': cut on a character boundary", {404},
          post(C, with_(P, model="a" * 199 + "é")), "model_not_found", False)
case_utf8("GET /v1/models/%ff%fe: invalid bytes become U+FFFD", {404},
          send_raw(request("GET", "/v1/models/%ff%fe")), "model_not_found", True)
case('{"model": "\\udc00"}: a lone surrogate: 400 invalid_json', {400},
     post(C, raw=b'{"prompt": "x", "max_tokens": 4, "model": "\\udc00"}'), "invalid_json")
case('completions prompt "a\\udc00b": 400 invalid_json', {400}, post(C, raw=b'{"prompt": "a\\udc00b", "max_tokens": 1}'),
     "invalid_json")
case('chat content "a\\ud83db" (a high surrogate alone): 400 invalid_json, as completions', {400},
     post(CH, raw=b'{"messages": [{"role": "user", "content": "a\\ud83db"}], "max_tokens": 1}'), "invalid_json")
case('completions prompt "a\\ud83d": 400 invalid_json', {400}, post(C, raw=b'{"prompt": "a\\ud83d", "max_tokens": 1}'),
     "invalid_json")
case('a pair "\\ud83d\\ude00" is fine (completions)', {200},
     post(C, raw=b'{"prompt": "a\\ud83d\\ude00b", "max_tokens": 1}'))
case('a pair "\\ud83d\\ude00" is fine (chat)', {200},
     post(CH, raw=b'{"messages": [{"role": "user", "content": "a\\ud83d\\ude00"}], "max_tokens": 1}'))
case('an escaped backslash before u is not an escape', {200}, post(C, raw=b'{"prompt": "a\\\\udc00", "max_tokens": 1}'))

case_utf8("raw 0xFF in a path (targets are ASCII: 400)", {400},
          send_raw(b"GET /v1/nothing\xff HTTP/1.1\r\nHost: " + f"{HOST}:{PORT}".encode() +
                   b"\r\nAuthorization: Bearer " + KEY.encode() + b"\r\nConnection: close\r\n\r\n"), "bad_request", False)

# ---- completions fields --------------------------------------------------------------------
case("missing prompt", {400}, post(C, {"max_tokens": 4}), "missing_required_parameter")
case("prompt is an object", {400}, post(C, with_(P, prompt={"a": 1})), "invalid_type")
case("prompt is an empty list", {400}, post(C, with_(P, prompt=[])), "invalid_value")
case("prompt list mixes strings and ids", {400}, post(C, with_(P, prompt=["a", 1])), "invalid_type")
case("prompt token id outside the vocabulary", {400}, post(C, with_(P, prompt=[100000])), "invalid_value")
case("negative prompt token id", {400}, post(C, with_(P, prompt=[-1])), "invalid_value")
case("prompt of 600 token ids (context 512)", {400}, post(C, with_(P, prompt=[100] * 600)), "context_length_exceeded")
case("prompt of 20000 words", {400}, post(C, with_(P, prompt="the dog ran " * 7000)), "context_length_exceeded")
case("negative max_tokens", {400}, post(C, with_(P, max_tokens=-1)), "invalid_value")
case("max_tokens as a string", {400}, post(C, with_(P, max_tokens="16")), "invalid_type")
case("max_tokens 0 without echo", {400}, post(C, with_(P, max_tokens=0)), "invalid_value")
case("max_tokens 1e400 (a huge number)", {400}, post(C, raw=b'{"prompt": "x", "max_tokens": 1e400}'), "invalid_value")
case("max_tokens of 400 digits", {400}, post(C, raw=b'{"prompt": "x", "max_tokens": ' + b"9" * 400 + b'}'), "invalid_value")
case("seed 2^63 (past int64)", {400}, post(C, raw=b'{"prompt": "x", "max_tokens": 2, "seed": 9223372036854775808}'),
     "invalid_value")
case("max_tokens 10^22", {400}, post(C, raw=b'{"prompt": "x", "max_tokens": 10000000000000000000000}'), "invalid_value")
case("max_tokens 3.5", {400}, post(C, with_(P, max_tokens=3.5)), "invalid_type")
case("prompt + max_tokens over the context", {400}, post(C, with_(P, max_tokens=100000)), "context_length_exceeded")
case("negative temperature", {400}, post(C, with_(P, temperature=-1)), "invalid_value")
case("temperature as a string", {400}, post(C, with_(P, temperature="hot")), "invalid_type")
case("top_p 0", {400}, post(C, with_(P, top_p=0)), "invalid_value")
case("top_p 1.5", {400}, post(C, with_(P, top_p=1.5)), "invalid_value")
case("top_k -5", {400}, post(C, with_(P, top_k=-5)), "invalid_value")
case("min_p 2", {400}, post(C, with_(P, min_p=2)), "invalid_value")
case("n 0", {400}, post(C, with_(P, n=0)), "invalid_value")
case("n 1000", {400}, post(C, with_(P, n=1000)), "invalid_value")
# per-request limits (issue 12): --max-waiting 8 and --max-response-mb 1 on this server
case("n 16 (over --max-waiting 8): 400, not a 503 to retry", {400}, post(C, with_(P, n=16)), "invalid_value")
case("n 4 x 4 prompts (16 choices, over --max-waiting 8): 400", {400},
     post(C, with_(P, n=4, prompt=["a", "b", "c", "d"])), "invalid_value")
case("n 8, 400 tokens, logprobs 5, not streamed: over --max-response-mb 1: 400", {400},
     post(C, with_(P, n=8, max_tokens=400, logprobs=5)), "response_too_large")
case("the same streamed: 200 (nothing is held)", {200},
     post(C, with_(P, n=8, max_tokens=400, logprobs=5, stream=True)))
case("stop is a number", {400}, post(C, with_(P, stop=123)), "invalid_type")
case("stop list with a number", {400}, post(C, with_(P, stop=["a", 5])), "invalid_type")
case("100 stop strings", {400}, post(C, with_(P, stop=[str(i) for i in range(100)])), "invalid_value")
case("empty stop string", {400}, post(C, with_(P, stop="")), "invalid_value")
case("seed as a string", {400}, post(C, with_(P, seed="abc")), "invalid_type")
case("seed 1e30", {400}, post(C, with_(P, seed=1e30)), "invalid_value")
case("presence_penalty 5", {400}, post(C, with_(P, presence_penalty=5)), "invalid_value")
case("frequency_penalty as a string", {400}, post(C, with_(P, frequency_penalty="x")), "invalid_type")
case("repetition_penalty 0", {400}, post(C, with_(P, repetition_penalty=0)), "invalid_value")
case("logit_bias is a list", {400}, post(C, with_(P, logit_bias=[1])), "invalid_type")
case("logit_bias key not a token id", {400}, post(C, with_(P, logit_bias={"abc": 1})), "invalid_value")
case("logit_bias value 1000", {400}, post(C, with_(P, logit_bias={"5": 1000})), "invalid_value")
case("logit_bias key ' 5'", {400}, post(C, with_(P, logit_bias={" 5": 1})), "invalid_value")
case("logit_bias key '+5'", {400}, post(C, with_(P, logit_bias={"+5": 1})), "invalid_value")
case("logit_bias token outside the vocabulary", {400}, post(C, with_(P, logit_bias={"99999": 1})), "invalid_value")
case("echo as a string", {400}, post(C, with_(P, echo="yes")), "invalid_type")
case("logprobs 10", {400}, post(C, with_(P, logprobs=10)), "invalid_value")
case("logprobs true on completions", {400}, post(C, with_(P, logprobs=True)), "invalid_type")
case("stream as a string", {400}, post(C, with_(P, stream="true")), "invalid_type")
case("stream_options without stream", {400}, post(C, with_(P, stream_options={"include_usage": True})), "invalid_value")
case("include_usage as a string", {400}, post(C, with_(P, stream=True, stream_options={"include_usage": "x"})),
     "invalid_type")
case("best_of 3", {400}, post(C, with_(P, best_of=3)), "unsupported_value")
case("suffix", {400}, post(C, with_(P, suffix="The end.")), "unsupported_value")
case("add_special_tokens 1", {400}, post(C, with_(P, add_special_tokens=1)), "invalid_type")
case("min_tokens above max_tokens", {400}, post(C, with_(P, min_tokens=10)), "invalid_value")
case("stop_token_ids outside the vocabulary", {400}, post(C, with_(P, stop_token_ids=[70000])), "invalid_value")

# ---- chat fields -----------------------------------------------------------------------------
case("chat: missing messages", {400}, post(CH, {"max_tokens": 4}), "missing_required_parameter")
case("chat: messages is a string", {400}, post(CH, {"messages": "hi"}), "invalid_type")
case("chat: empty messages", {400}, post(CH, {"messages": []}), "invalid_value")
case("chat: a message without role", {400}, post(CH, {"messages": [{"content": "hi"}]}), "invalid_value")
case("chat: content is a number", {400}, post(CH, {"messages": [{"role": "user", "content": 5}]}), "invalid_value")
case("chat: an image content part", {400}, post(CH, {"messages": [{"role": "user", "content": [
    {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}), "unsupported_value")
case("chat: the template raises", {400}, post(CH, {"messages": [{"role": "user", "content": "please raise"}]}),
     "template_error")
case("chat: response_format yaml", {400}, post(CH, {"messages": MSG, "response_format": {"type": "yaml"}}),
     "invalid_value")
case("chat: a JSON schema keyword not supported", {400}, post(CH, {"messages": MSG, "response_format": {
    "type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "integer", "multipleOf": 2}}}}), "unsupported_value")
case("chat: tool_choice required without tools", {400}, post(CH, {"messages": MSG, "tool_choice": "required"}), "invalid_value")
case("chat: a named tool_choice without tools", {400}, post(CH, {"messages": MSG, "tool_choice": {"type": "function",
                                                                                       "function": {"name": "f"}}}),
     "invalid_value")
case("chat: tools is an object", {400}, post(CH, {"messages": MSG, "tools": {"a": 1}}), "invalid_type")
case("chat: top_logprobs without logprobs", {400}, post(CH, {"messages": MSG, "top_logprobs": 2}), "invalid_value")
case("chat: top_logprobs 21", {400}, post(CH, {"messages": MSG, "logprobs": True, "top_logprobs": 21}), "invalid_value")
case("chat: logprobs as a string", {400}, post(CH, {"messages": MSG, "logprobs": "yes"}), "invalid_type")
case("chat: negative max_completion_tokens", {400}, post(CH, {"messages": MSG, "max_completion_tokens": -1}),
     "invalid_value")
case("chat: legacy functions", {400}, post(CH, {"messages": MSG, "functions": [{"name": "f"}]}),
     "unsupported_parameter")

# ---- tokenize / detokenize ---------------------------------------------------------------------
case("/tokenize without prompt", {400}, post("/tokenize", {}), "missing_required_parameter")
case("/tokenize prompt is a number", {400}, post("/tokenize", {"prompt": 5}), "invalid_type")
case("/detokenize tokens is a string", {400}, post("/detokenize", {"tokens": "1 2"}), "invalid_type")
case("/detokenize token outside the vocabulary", {400}, post("/detokenize", {"tokens": [1, 99999]}), "invalid_value")
case("/detokenize token as a string", {400}, post("/detokenize", {"tokens": ["1"]}), "invalid_type")


# ---- time limits, disconnects, a full queue -------------------------------------------------------
def slow(desc, chunks, gap, want):
    """Sends a request's bytes in pieces `gap` seconds apart (the client's pace); the server,
    with --request-timeout 1, must answer 408 (want 408: part of a request came) or just close
    (want None: nothing came) after about a second."""
    s = socket.create_connection((HOST, PORT))
    s.settimeout(10)
    t0 = time.time()
    closed_at = answered_at = None
    for piece in chunks:
        try:
            s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.time() - t0
            break
        time.sleep(gap)  # the client's own slowness, not synchronization
        s.setblocking(False)
        try:
            peek = s.recv(1, socket.MSG_PEEK)
            if peek == b"":
                closed_at = time.time() - t0
                break
            answered_at = time.time() - t0
            break
        except BlockingIOError:
            pass
        except ConnectionResetError:
            closed_at = time.time() - t0
            break
        s.setblocking(True)
        s.settimeout(10)
    s.setblocking(True)
    s.settimeout(10)
    status, code = None, None
    if closed_at is None:
        status, _, body = read_response(s)
        t = time.time() - t0
        if status is None:
            closed_at = t
        else:
            answered_at = answered_at or t
            try:
                code = json.loads(body)["error"]["code"]
            except Exception:
                code = "(non-JSON body)"
            closed_at = answered_at if s.recv(1) == b"" else None  # closed after the answer
    s.close()
    ok = closed_at is not None and 0.8 <= closed_at <= 4 and (want is None or code == "request_timeout")
    record(desc, {want}, status, f"{code or ''} closed after {closed_at:.1f} s" if closed_at else (code or ""), ok)


body = json.dumps(P).encode()
head = request("POST", C, body)[:-len(body)]
slow("partial body, then silence (--request-timeout 1)", [head + body[:10]] + [b""] * 40, 0.1, 408)
slow("body trickled one byte per 0.2 s (--request-timeout 1)", [head] + [bytes([b]) for b in body], 0.2, 408)
slow("connection that sends nothing", [b""] * 40, 0.1, None)

LONG = {"prompt": "Once upon a time", "max_tokens": 500, "ignore_eos": True, "n": 8}
before = metrics().get('forge_request_success_total{finished_reason="abort"}', 0.0)
s = socket.create_connection((HOST, PORT))
s.sendall(request("POST", C, json.dumps(LONG).encode()))
s.close()
after = wait_metric('forge_request_success_total{finished_reason="abort"}', lambda v: v >= before + 8)
record("disconnect before a non-streaming answer (n=8, 500 tokens each)", {None}, None,
       "cancelled" if after else "not cancelled", after is not None)

before = metrics().get('forge_request_success_total{finished_reason="abort"}', 0.0)
s = socket.create_connection((HOST, PORT))
s.settimeout(20)
s.sendall(request("POST", C, json.dumps(with_(LONG, stream=True)).encode()))
got = b""
while b"data: {" not in got:
    d = s.recv(4096)
    if not d:
        break
    got += d
s.close()
after = wait_metric('forge_request_success_total{finished_reason="abort"}', lambda v: v >= before + 8)
record("disconnect mid-stream (n=8, 500 tokens each)", {None}, None,
       "cancelled" if after and b"data: {" in got else "not cancelled", after is not None and b"data: {" in got)

# a full queue: --max-seqs 4 --max-waiting 8; sixteen long requests at once
socks = []
for i in range(16):
    s = socket.create_connection((HOST, PORT))
    s.settimeout(60)
    s.sendall(request("POST", C, json.dumps({"prompt": "Once", "max_tokens": 400, "ignore_eos": True}).encode()))
    socks.append(s)
answers = [read_response(s) for s in socks]
for s in socks:
    s.close()
busy = [a for a in answers if a[0] == 503]
ok = busy and all(a[0] in (200, 503) for a in answers) and all(a[1].get("retry-after") for a in busy)
code = json.loads(busy[0][2])["error"]["code"] if busy else None
record(f"queue full: 16 long requests at once ({len(busy)} got 503)", {503}, 503 if ok else None, code, bool(ok))

# ---- the server is still fine ------------------------------------------------------------------
status, _, _ = send_raw(request("GET", "/health", auth=False))
used = wait_metric("forge_kv_cache_blocks_used", lambda v: v == 0)
ratio = metrics().get("forge_kv_cache_usage_ratio")
good = post(C, P)
print(f"{'ok  ' if status == 200 else 'FAIL'} /health afterwards: {status}")
print(f"{'ok  ' if used == 0 and ratio == 0 else 'FAIL'} KV usage back to zero: blocks {used}, ratio {ratio}")
print(f"{'ok  ' if good[0] == 200 else 'FAIL'} a good request still works: {good[0]}")
passed += (status == 200) + (used == 0 and ratio == 0) + (good[0] == 200)
failed += (status != 200) + (not (used == 0 and ratio == 0)) + (good[0] != 200)

if TABLE:
    with open(TABLE, "w") as f:
        f.write("| # | request | status | error code |\n|---|---|---|---|\n")
        for i, (d, st, c) in enumerate(rows, 1):
            f.write(f"| {i} | {d} | {st} | {c} |\n")
print(f"{len(rows)} requests in the catalogue")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
