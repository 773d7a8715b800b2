#!/usr/bin/env python3
"""Load generator for OpenAI-compatible servers (stdlib only, asyncio): C concurrent clients
send R streaming /v1/completions requests in all (greedy, ignore_eos, T tokens each) and it
prints one JSON line: requests/s, output tok/s (R * T / wall time), mean time to the first
streamed token and mean time between streamed chunks, client side. The same measurement as
tests/server/js/load.mjs bench, for machines without Node.

usage: server_load.py --url URL --clients C --requests R [--max-tokens T] [--model M]"""
import argparse
import asyncio
import json
import time
from urllib.parse import urlparse

ANIMALS = ["cat", "dog", "bird", "fish", "bunny", "bear", "frog", "duck"]
NAMES = ["Tim", "Lily", "Sam", "Sue", "Max", "Amy", "Ben", "Mia"]
PROMPTS = [f"Once upon a time, there was a {a} named {n}." for a in ANIMALS for n in NAMES]


async def one(host, port, body):
    """One streaming request: (chunks, ttft, [gaps]) in seconds."""
    t0 = time.perf_counter()
    r, w = await asyncio.open_connection(host, port)
    data = json.dumps(body).encode()
    w.write(b"POST /v1/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % (host.encode(), len(data)) + data)
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    chunked = b"transfer-encoding: chunked" in head.lower()
    if status != 200:
        raise RuntimeError(f"status {status}: {(await r.read())[:300]!r}")
    buf, chunks, ttft, last, gaps, done = b"", 0, None, None, [], False

    def events(buf):
        nonlocal chunks, ttft, last, done
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            for line in ev.split(b"\n"):
                if not line.startswith(b"data: "):
                    continue
                if line == b"data: [DONE]":
                    done = True
                    continue
                c = json.loads(line[6:])["choices"]
                if not c or (c[0].get("text") == "" and c[0].get("finish_reason")):
                    continue
                now = time.perf_counter()
                if ttft is None:
                    ttft = now - t0
                else:
                    gaps.append(now - last)
                last = now
                chunks += 1
        return buf

    while not done:
        if chunked:
            size_line = await r.readline()
            if not size_line:
                break
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                break
            piece = await r.readexactly(size + 2)
            buf = events(buf + piece[:-2])
        else:
            piece = await r.read(65536)
            if not piece:
                break
            buf = events(buf + piece)
    w.close()
    if not done:
        raise RuntimeError("the stream ended without [DONE]")
    return chunks, ttft, gaps


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--model")
    ap.add_argument("--no-cache-prompt", action="store_true",
                    help='send "cache_prompt": false (llama-server: no reuse of a slot\'s earlier prompt)')
    a = ap.parse_args()
    u = urlparse(a.url)
    nxt, done, chunks, ttfts, gaps = 0, 0, 0, [], []

    async def worker():
        nonlocal nxt, done, chunks
        while nxt < a.requests:
            i = nxt
            nxt += 1
            body = {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": a.max_tokens, "temperature": 0,
                    "stream": True, "ignore_eos": True}
            if a.model:
                body["model"] = a.model
            if a.no_cache_prompt:
                body["cache_prompt"] = False
            c, t, g = await one(u.hostname, u.port, body)
            chunks += c
            done += 1
            ttfts.append(t)
            gaps.extend(g)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(a.clients)))
    wall = time.perf_counter() - t0
    mean = lambda x: sum(x) / max(len(x), 1)

    def pct(x, q):  # nearest rank
        x = sorted(x)
        return x[min(len(x) - 1, max(0, -(-len(x) * q // 100) - 1))] if x else 0.0

    print(json.dumps({"clients": a.clients, "requests": done, "max_tokens": a.max_tokens, "seconds": round(wall, 3),
                      "requests_per_s": round(done / wall, 2), "tokens_per_s": round(done * a.max_tokens / wall, 1),
                      "tokens": done * a.max_tokens, "chunks": chunks, "mean_ttft_ms": round(mean(ttfts) * 1e3, 2),
                      "p50_ttft_ms": round(pct(ttfts, 50) * 1e3, 2), "p99_ttft_ms": round(pct(ttfts, 99) * 1e3, 2),
                      "mean_itl_ms": round(mean(gaps) * 1e3, 3)}))


asyncio.run(main())
