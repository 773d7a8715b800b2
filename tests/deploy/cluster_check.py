"""Checks a running deploy/cluster.sh (2 replicas, the test chat template) through its
balancer: second turns of 12 conversations hit the prefix cache (their replica saw the first
turn), both replicas take load, and after one replica is killed (-9) every new request still
succeeds.   cluster_check.py BALANCER_URL REPLICA_URL... [--kill PID]"""
import json
import os
import signal
import sys
import time
import urllib.request

bal = sys.argv[1]
args = sys.argv[2:]
kill_pid = None
if "--kill" in args:
    kill_pid = int(args[args.index("--kill") + 1])
    args = args[:args.index("--kill")]
replicas = args
passed = failed = 0


def check(desc, ok, note=""):
    global passed, failed
    passed += ok
    failed += not ok
    print(("ok   " if ok else "FAIL ") + desc + ("" if ok else f" {note}"))


def post(url, body, headers=None):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, json.load(r)


def served(url):
    n = 0
    for line in urllib.request.urlopen(url + "/metrics", timeout=10).read().decode().splitlines():
        if line.startswith('forge_http_requests_total{route="/v1/chat/completions",code="200"}'):
            n += float(line.split()[-1])
    return n


before = [served(r) for r in replicas]
SYSTEM = "You are a storyteller for small children."
second = []
for i in range(12):
    # the conversation's own opening (no block shared with another conversation): a hit on
    # the second turn means the first turn ran on the same replica
    msgs = [{"role": "system", "content": f"{i * 7919} {SYSTEM}"},
            {"role": "user", "content": f"Tell me story number {i} about a cat."}]
    _, d = post(bal + "/v1/chat/completions", {"messages": msgs, "max_tokens": 16, "temperature": 0})
    msgs += [{"role": "assistant", "content": d["choices"][0]["message"]["content"]},
             {"role": "user", "content": "And then?"}]
    _, d = post(bal + "/v1/chat/completions", {"messages": msgs, "max_tokens": 16, "temperature": 0})
    second.append(d["usage"]["prompt_tokens_details"]["cached_tokens"])
check("12 conversations: every second turn hits the prefix cache through the balancer", all(c > 0 for c in second),
      f"(cached tokens {second})")
after = [served(r) for r in replicas]
share = [a - b for a, b in zip(after, before)]
check("both replicas took conversations", all(s >= 2 for s in share), f"(requests per replica {share})")
# an X-Session-Id keeps a client on one replica whatever its messages
got = set()
for i in range(6):
    b0 = [served(r) for r in replicas]
    post(bal + "/v1/chat/completions", {"messages": [{"role": "user", "content": f"different {i}"}], "max_tokens": 2},
         {"X-Session-Id": "client-42"})
    b1 = [served(r) for r in replicas]
    got.add(tuple(x - y for x, y in zip(b1, b0)))
check("X-Session-Id: six different requests, one replica", len(got) == 1, f"({got})")

# a burst pinned to one replica (X-Session-Id) overflows its queue (--max-seqs 2 --max-waiting 2):
# the 503s it answers are retried on the other replica, and every request succeeds
import threading


def codes(url, code):
    n = 0
    for line in urllib.request.urlopen(url + "/metrics", timeout=10).read().decode().splitlines():
        if line.startswith(f'forge_http_requests_total{{route="/v1/completions",code="{code}"}}'):
            n += float(line.split()[-1])
    return n


b503 = sum(codes(r, 503) for r in replicas)
results = []


def burst(i):
    try:
        st, d = post(bal + "/v1/completions", {"prompt": f"burst {i}", "max_tokens": 200, "ignore_eos": True},
                     {"X-Session-Id": "one-client"})
        results.append(st == 200 and d["usage"]["completion_tokens"] == 200)
    except Exception:  # noqa: BLE001
        results.append(False)


ts = [threading.Thread(target=burst, args=(i,)) for i in range(6)]
for t in ts:
    t.start()
for t in ts:
    t.join()
refused = sum(codes(r, 503) for r in replicas) - b503
check("a burst of 6 on one replica's full queue (room for 4): all 6 answered", results.count(True) == 6, f"({results})")
check("... the replica refused some (503) and the balancer sent them elsewhere", refused > 0, f"({refused} refusals)")

if kill_pid:
    os.kill(kill_pid, signal.SIGKILL)
    ok, statuses = 0, []
    for i in range(20):
        try:
            st, d = post(bal + "/v1/chat/completions",
                         {"messages": [{"role": "user", "content": f"after the loss {i}"}], "max_tokens": 4})
        except Exception as ex:  # noqa: BLE001 - any failure counts
            st = repr(ex)[:80]
        statuses.append(st)
        ok += st == 200
    check("after kill -9 of one replica: 20 of 20 new requests succeed", ok == 20, f"({statuses})")
print(f"{passed} passed, {failed} failed")
