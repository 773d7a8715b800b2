#!/usr/bin/python3
"""Forge's CPU forward against llama.cpp on the same weights, same threads, in one run.

For each model (random weights of real shapes, scripts/make_random_model.py; the GGUF of
the same weights by scripts/ref/write_gguf.py), each round runs `forge bench` and then
llama.cpp's llama-bench / llama-batched-bench, alternating the two programs; each figure is
the best of the rounds (the machine is shared: the best is the least disturbed run).
Optionally Forge once more per forced kernel set (FORGE_CPU), in the same rounds.
Prints a markdown table with the ratios and the issue's targets.

  /usr/bin/python3 bench/cpu_vs_llamacpp.py --models DIR [--rounds 2] [--threads 2]
      [--llama-cpp /work/llama.cpp/build/bin] [--sets avx512,avx2] [--only smollm2-135m-bf16,...]
DIR holds smollm2-135m-{bf16,f16,f32}[.gguf], llama1b-bf16[.gguf] and the quantized
{smollm2-135m,llama1b}-{Q8_0,Q4_0,Q4_K_M}.gguf (bench/cpu.bench.sh makes them).
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys

# (model, forge bench args, llama.cpp runs, targets {test: min ratio})
PLAN = {
    "smollm2-135m-bf16": dict(contexts="128,1024", batches="64", ld1024=True, batched=True,
                              targets={"decode": 1.10, "decode1024": 1.20, "prefill512": 1.15, "batch64": 1.30}),
    "smollm2-135m-f16": dict(contexts="128,1024", batches="", ld1024=True, batched=False, targets={}),
    "smollm2-135m-f32": dict(contexts="128,1024", batches="", ld1024=True, batched=False, targets={}),
    "llama1b-bf16": dict(contexts="128", batches="", ld1024=False, batched=False,
                         targets={"decode": 1.05, "prefill512": 1.15}),
}
# quantized GGUF files (issue 14): Forge runs the .gguf itself; made by bench/cpu.bench.sh
# with llama-quantize from the F32 (SmolLM2) and BF16 (1B) files
Q_TARGETS = {"decode": 1.30, "prefill512": 1.0, "batch64": 1.30}
for _q in ["Q8_0", "Q4_0", "Q4_K_M"]:
    PLAN["smollm2-135m-" + _q] = dict(contexts="128", batches="64", ld1024=False, batched=True, gguf=True,
                                      targets=Q_TARGETS)
    # (64 sequences of the 1B would prefill 8192 tokens per program and round: left out)
    PLAN["llama1b-" + _q] = dict(contexts="128", batches="", ld1024=False, batched=False, gguf=True,
                                 targets=Q_TARGETS)
# Forge decodes 32 steps after the context; llama.cpp's runs are matched where it matters
# (tg32 after 1024, 32 batched steps after 128; tg128 from an empty context is the
# usual decode figure and slightly favours llama.cpp, whose context is shorter)
LABEL = {"decode": "decode, ctx 128 (llama.cpp: tg128)", "decode1024": "decode, ctx 1024 (llama.cpp: tg32 @ d1024)",
         "prefill512": "prefill 512 (pp512)",
         "batch64": "64 sequences, ctx 128 (llama-batched-bench -npp 128 -ntg 32 -npl 64, S_TG)"}


def run(cmd, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run(cmd, capture_output=True, text=True, env=e)
    return r.stdout


def forge(models, name, plan, threads, cpu):
    model = os.path.join(models, name + (".gguf" if plan.get("gguf") else ""))
    args = ["build/forge", "bench", "--model", model, "--threads", str(threads),
            "--contexts", plan["contexts"], "--batches", plan["batches"], "--prompt", "512"]
    out = run(args, {"FORGE_CPU": cpu} if cpu else None)
    res, info = {}, {}
    for line in out.splitlines():
        m = re.match(r"^decode batch (\d+), ctx (\d+)\s+([\d.]+)", line)
        if m:
            b, c, v = int(m.group(1)), int(m.group(2)), float(m.group(3))
            key = "decode" if (b == 1 and c == 128) else "decode1024" if (b == 1 and c == 1024) else "batch%d" % b
            res[key] = v
        m = re.match(r"^prefill (\d+)\s+([\d.]+)", line)
        if m:
            res["prefill" + m.group(1)] = float(m.group(2))
        if line.startswith("machine"):
            info["machine"] = line[len("machine"):].strip()
    return res, info


def llama(models, name, plan, threads, bin_dir):
    gguf = os.path.join(models, name + ".gguf")
    res = {}
    out = run([os.path.join(bin_dir, "llama-bench"), "-m", gguf, "-p", "512", "-n", "128", "-t", str(threads),
               "-r", "2", "-o", "json"])
    try:
        for t in json.loads(out):
            if t["n_prompt"] == 512 and t["n_gen"] == 0:
                res["prefill512"] = t["avg_ts"]
            if t["n_gen"] == 128 and t["n_prompt"] == 0 and t.get("n_depth", 0) == 0:
                res["decode"] = t["avg_ts"]
    except (ValueError, KeyError):
        print("llama-bench output not understood:", out[:300], file=sys.stderr)
    if plan["ld1024"]:
        out = run([os.path.join(bin_dir, "llama-bench"), "-m", gguf, "-p", "0", "-n", "32", "-d", "1024",
                   "-t", str(threads), "-r", "2", "-o", "json"])
        try:
            for t in json.loads(out):
                res["decode1024"] = t["avg_ts"]
        except (ValueError, KeyError):
            pass
    if plan["batched"]:
        out = run([os.path.join(bin_dir, "llama-batched-bench"), "-m", gguf, "-c", "20000", "-b", "2048", "-ub", "512",
                   "-npp", "128", "-ntg", "32", "-npl", "64", "-t", str(threads), "--output-format", "jsonl"])
        for line in out.splitlines():
            try:
                t = json.loads(line)
            except ValueError:
                continue
            if t.get("pl") == 64 and "speed_tg" in t:
                res["batch64"] = t["speed_tg"]
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llama-cpp", default="/work/llama.cpp/build/bin")
    ap.add_argument("--sets", default="", help="also run Forge with these FORGE_CPU sets, e.g. avx2")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    names = [n for n in PLAN if not a.only or n in a.only.split(",")]
    sets = [""] + [s for s in a.sets.split(",") if s]
    best = {}  # (name, who) -> {test: value}
    info = {}
    t_start = datetime.datetime.now(datetime.timezone.utc)
    load0 = open("/proc/loadavg").read().split()[:3]
    for r in range(a.rounds):
        for name in names:
            for s in sets:
                res, inf = forge(a.models, name, PLAN[name], a.threads, s)
                info.setdefault(s or "default", inf.get("machine", ""))
                d = best.setdefault((name, "forge" + ("/" + s if s else "")), {})
                for k, v in res.items():
                    d[k] = max(d.get(k, 0), v)
                print("round %d %s forge%s %s" % (r + 1, name, "/" + s if s else "", res), file=sys.stderr, flush=True)
            res = llama(a.models, name, PLAN[name], a.threads, a.llama_cpp)
            d = best.setdefault((name, "llama.cpp"), {})
            for k, v in res.items():
                d[k] = max(d.get(k, 0), v)
            print("round %d %s llama.cpp %s" % (r + 1, name, res), file=sys.stderr, flush=True)
        table(a, names, sets, best, info, t_start, load0, r + 1)


def table(a, names, sets, best, info, t_start, load0, rounds):
    """prints the markdown table of the best figures so far (after every round: a run cut
    short still leaves its table)"""
    cpu = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    print("%s UTC, %s, %d cores, %d threads, load average %s at the start and %s now, best of %d rounds, "
          "Forge and llama.cpp alternated" % (t_start.strftime("%Y-%m-%d %H:%M"), cpu, os.cpu_count(), a.threads,
                                              " ".join(load0), " ".join(open("/proc/loadavg").read().split()[:3]), rounds))
    for k, v in info.items():
        print("forge (%s): %s" % (k, v))
    print()
    hdr = "| model | test | Forge tok/s | " + "".join("Forge %s | " % s for s in sets if s) + "llama.cpp tok/s | ratio | target | met |"
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for name in names:
        f, l = best.get((name, "forge"), {}), best.get((name, "llama.cpp"), {})
        for test in ["decode", "decode1024", "prefill512", "batch64"]:
            if test not in f:
                continue
            lv = l.get(test)
            ratio = f[test] / lv if lv else None
            tgt = PLAN[name]["targets"].get(test)
            extra = "".join("%.1f | " % best.get((name, "forge/" + s), {}).get(test, 0) for s in sets if s)
            print("| %s | %s | %.1f | %s%s | %s | %s | %s |" % (
                name, LABEL[test], f[test], extra, "%.1f" % lv if lv else "-", "%.2fx" % ratio if ratio else "-",
                ">= %.2fx" % tgt if tgt else "", ("yes" if ratio >= tgt else "no") if tgt and ratio else ""))
    print(flush=True)


if __name__ == "__main__":
    main()
