"""Prefix-cache hit rate of a multi-turn chat workload against a running `forge serve`:
CONVS conversations that share one system prompt, TURNS turns each (every turn resends the
whole history, as chat clients do), CONCURRENCY conversations at a time, greedy answers of
MAX_TOKENS. Prints the server's prefix-cache counters for the run and the share of prompt
tokens that a perfect cache of whole 16-token blocks could have served.

    python3 bench/serve/multiturn_prefix.py PORT [CONVS TURNS CONCURRENCY MAX_TOKENS]
"""
import json
import sys
import threading
import urllib.request

PORT = int(sys.argv[1])
CONVS, TURNS, CONC, MAXTOK = (int(x) for x in (sys.argv[2:6] if len(sys.argv) > 5 else (32, 4, 8, 24)))
URL = f"http://127.0.0.1:{PORT}"
SYSTEM = ("You are a helpful storyteller. You tell short, kind stories for small children about animals, "
          "friends and the sea, and you always end with a happy sentence.")


def post(path, body):
    req = urllib.request.Request(URL + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=300))


def metrics():
    out = {}
    for line in urllib.request.urlopen(URL + "/metrics").read().decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


totals = {"prompt": 0, "cached": 0, "ideal": 0}
lock = threading.Lock()


def conversation(i):
    msgs = [{"role": "system", "content": SYSTEM}]
    prev_prompt = 0
    for t in range(TURNS):
        msgs.append({"role": "user", "content": f"Tell me about animal number {i}, part {t + 1}."})
        d = post("/v1/chat/completions", {"messages": msgs, "max_tokens": MAXTOK, "temperature": 0})
        u = d["usage"]
        with lock:
            totals["prompt"] += u["prompt_tokens"]
            totals["cached"] += u["prompt_tokens_details"]["cached_tokens"]
            # what whole blocks of the previous turn (or the shared opening) could serve
            totals["ideal"] += (max(prev_prompt, 1) - 1) // 16 * 16 if t else 0
        prev_prompt = u["prompt_tokens"] + u["completion_tokens"]
        msgs.append({"role": "assistant", "content": d["choices"][0]["message"]["content"]})


m0 = metrics()
sem = threading.Semaphore(CONC)


def run(i):
    with sem:
        conversation(i)


ts = [threading.Thread(target=run, args=(i,)) for i in range(CONVS)]
for t in ts:
    t.start()
for t in ts:
    t.join()
m1 = metrics()
q = m1["forge_prefix_cache_queries_total"] - m0["forge_prefix_cache_queries_total"]
h = m1["forge_prefix_cache_hits_total"] - m0["forge_prefix_cache_hits_total"]
print(f"{CONVS} conversations x {TURNS} turns, {CONC} at a time, {MAXTOK}-token answers")
print(f"prompt tokens {totals['prompt']}, cached {totals['cached']} ({100 * totals['cached'] / totals['prompt']:.1f}%); "
      f"engine counters: {h:.0f} hits of {q:.0f} queried ({100 * h / q:.1f}%)")
print(f"previous turns alone could serve at least {totals['ideal']} ({100 * totals['ideal'] / totals['prompt']:.1f}%)")
