"""A soak of `forge serve` (issue 12): CLIENTS concurrent clients for SECONDS, each looping
over streaming completions and chats read to [DONE], non-streaming requests, streams it
cancels (closes) after the first event, and malformed requests that must get a 4xx OpenAI
error. The server's RSS and open descriptors are sampled every 10 s. Ends with a summary and
exit status 0 when every well-formed request was answered whole, every malformed one got its
4xx, and the server is still alive.

    python3 scripts/soak/soak.py --port P --pid PID [--clients 256] [--seconds 600] [--csv F]
"""
import argparse
import asyncio
import json
import os
import random
import sys
import time

MALFORMED = [
    (b'{"prompt": "x", "max_tokens": -1}', 400),
    (b'{"prompt": [1, 2], "n": 1000}', 400),
    (b'{"prompt": "x", "temperature": "hot"}', 400),
    (b'{"prompt": ', 400),
    (b'\xff\xfe{}', 400),
    (b'{"messages": 5}', 400),
    (b'{"prompt": "a\\udc00"}', 400),
    (b'{"prompt": "x", "model": "gpt-4"}', 404),
]


async def request(port, method, path, body=b"", extra=b"", cancel_after_first=False):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode() + extra + b"\r\n"
        w.write(head + body)
        await w.drain()
        status_line = await r.readline()
        if cancel_after_first:
            await r.readuntil(b"data: ")
            return int(status_line.split()[1]), b"cancelled"
        data = await r.read()
        status = int(status_line.split()[1])
        headers, _, payload = data.partition(b"\r\n\r\n")
        if b"transfer-encoding: chunked" in headers.lower():
            out, rest = b"", payload
            while True:
                line, _, rest = rest.partition(b"\r\n")
                n = int(line, 16)
                if n == 0:
                    break
                out, rest = out + rest[:n], rest[n + 2:]
            payload = out
        return status, payload
    finally:
        w.close()


class Stats:
    def __init__(self):
        self.ok = {}
        self.bad = []
        self.cancelled = 0
        self.malformed_ok = 0
        self.busy = 0


async def client(port, deadline, st, rnd):
    while time.time() < deadline:
        x = rnd.random()
        kind = None
        try:
            if x < 0.45:
                kind = "stream completion"
                body = json.dumps({"prompt": rnd.choice(["Once upon a time", "She saw a", "The dog"]),
                                   "max_tokens": rnd.randint(1, 64), "stream": True,
                                   "temperature": rnd.choice([0, 0.8])}).encode()
                status, payload = await request(port, "POST", "/v1/completions", body)
                ok = status == 200 and payload.rstrip().endswith(b"data: [DONE]")
            elif x < 0.60:
                kind = "stream chat"
                body = json.dumps({"messages": [{"role": "user", "content": "Tell me a story"}],
                                   "max_tokens": rnd.randint(1, 64), "stream": True}).encode()
                status, payload = await request(port, "POST", "/v1/chat/completions", body)
                ok = status == 200 and payload.rstrip().endswith(b"data: [DONE]")
            elif x < 0.75:
                kind = "completion"
                body = json.dumps({"prompt": "Once upon a time", "max_tokens": rnd.randint(1, 64),
                                   "n": rnd.randint(1, 3), "logprobs": rnd.choice([None, 2])}).encode()
                status, payload = await request(port, "POST", "/v1/completions", body)
                ok = status == 200 and len(json.loads(payload)["choices"]) >= 1
            elif x < 0.88:
                kind = "cancelled stream"
                body = json.dumps({"prompt": "Once upon a time", "max_tokens": 200, "stream": True,
                                   "ignore_eos": True}).encode()
                status, _ = await request(port, "POST", "/v1/completions", body, cancel_after_first=True)
                ok = status == 200
            else:
                kind = "malformed"
                body, want = rnd.choice(MALFORMED)
                status, payload = await request(port, "POST", "/v1/completions", body)
                err = json.loads(payload)["error"]
                ok = status == want and isinstance(err["message"], str)
            if status == 503:  # the queue is full: a valid answer to retry, counted apart
                st.busy += 1
                continue
            if ok:
                st.ok[kind] = st.ok.get(kind, 0) + 1
            else:
                st.bad.append((kind, status, payload[:200] if isinstance(payload, bytes) else payload))
        except Exception as ex:  # a connection error is a failure
            st.bad.append((kind, "exception", repr(ex)[:200]))


def sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--clients", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--csv")
    a = ap.parse_args()
    st = Stats()
    deadline = time.time() + a.seconds
    tasks = [asyncio.create_task(client(a.port, deadline, st, random.Random(i))) for i in range(a.clients)]
    samples = []
    t0 = time.time()
    while not all(t.done() for t in tasks):
        samples.append((round(time.time() - t0), *sample(a.pid)))
        print(f"t={samples[-1][0]:4d}s rss={samples[-1][1] / 1024:.1f} MB fds={samples[-1][2]} "
              f"ok={sum(st.ok.values())} bad={len(st.bad)} busy={st.busy}", flush=True)
        await asyncio.sleep(10)  # the sampling period
    await asyncio.gather(*tasks)
    samples.append((round(time.time() - t0), *sample(a.pid)))
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("seconds,rss_kb,fds\n")
            for s in samples:
                f.write(",".join(map(str, s)) + "\n")
    alive = os.path.exists(f"/proc/{a.pid}")
    rss = [s[1] for s in samples]
    half = rss[len(rss) // 2:]
    print(f"answered: {st.ok}; busy (503) {st.busy}; failures {len(st.bad)}")
    for b in st.bad[:20]:
        print("  FAIL", b)
    print(f"RSS: start {rss[0] / 1024:.1f} MB, max {max(rss) / 1024:.1f} MB, end {rss[-1] / 1024:.1f} MB; "
          f"second half {min(half) / 1024:.1f}..{max(half) / 1024:.1f} MB; server alive: {alive}")
    sys.exit(0 if alive and not st.bad else 1)


asyncio.run(main())
