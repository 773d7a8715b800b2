"""Streaming load against an OpenAI-compatible server: CLIENTS clients, each looping over
streaming completions (greedy, MAX_TOKENS tokens, ignore_eos) for SECONDS; each client's
prompt is its own (so a balancer's affinity spreads them). Prints output tokens/s and the
time to first token (p50, p99) of the requests that finished in the window.

    python3 bench/serve/stream_load.py URL [CLIENTS SECONDS MAX_TOKENS]
"""
import asyncio
import json
import sys
import time
from urllib.parse import urlparse

URL = urlparse(sys.argv[1])
CLIENTS, SECONDS, MAXTOK = (int(x) for x in (sys.argv[2:5] if len(sys.argv) > 4 else (64, 30, 64)))
tokens = 0
ttfts = []


async def client(i, deadline):
    global tokens
    while time.time() < deadline:
        body = json.dumps({"prompt": f"{i} Once upon a time, in a town by the sea,", "max_tokens": MAXTOK,
                           "temperature": 0, "ignore_eos": True, "stream": True}).encode()
        r, w = await asyncio.open_connection(URL.hostname, URL.port)
        t0 = time.time()
        w.write(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await w.drain()
        first = None
        n = 0
        async for line in r:
            if line.startswith(b"data: {"):
                if first is None:
                    first = time.time() - t0
                n += line.count(b'"text":') - line.count(b'"text":""')
        w.close()
        if time.time() <= deadline:
            tokens += n
            if first is not None:
                ttfts.append(first)


async def main():
    deadline = time.time() + SECONDS
    t0 = time.time()
    await asyncio.gather(*(client(i, deadline) for i in range(CLIENTS)))
    el = min(time.time(), deadline) - t0
    s = sorted(ttfts)
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1e3 if s else float("nan")
    print(f"{CLIENTS} clients, {SECONDS} s: {tokens / el:.1f} output tok/s, TTFT p50 {p(0.5):.0f} ms p99 {p(0.99):.0f} ms "
          f"({len(s)} requests)")


asyncio.run(main())
