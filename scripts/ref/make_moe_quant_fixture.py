#!/usr/bin/python3
"""Quantized experts: tests/fixtures/parity/qwen3_moe_norm/model.{f32,Q8_0,Q4_0}.gguf and
llama.cpp's greedy ids on the quantized files (llamacpp-quant.json), for tests/model/test_gguf.c.

model.f32.gguf is write_gguf.py's F32 GGUF of the parity model (3-D expert stacks); the
quantized files are llama.cpp's own llama-quantize output from it (every 2-D weight, the
experts included, quantized by llama.cpp, not by Forge), and their greedy ids come from
llama.cpp (node-llama-cpp, llamacpp_greedy.mjs) on the golden prompts. Run:
  /usr/bin/python3 scripts/ref/make_moe_quant_fixture.py [--quantize /work/llama.cpp/build/bin/llama-quantize]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import write_gguf  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
D = os.path.join(ROOT, "tests", "fixtures", "parity", "qwen3_moe_norm")
TYPES = ["Q8_0", "Q4_0"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", default="/work/llama.cpp/build/bin/llama-quantize")
    a = ap.parse_args()
    f32 = os.path.join(D, "model.f32.gguf")
    write_gguf.convert(D, f32, "f32")
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(a.quantize))
    g = json.load(open(os.path.join(D, "golden.json")))
    jobs, out = [], {"note": "llama.cpp's greedy ids (node-llama-cpp, 1 thread) on llama-quantize's "
                             "output of model.f32.gguf; made by scripts/ref/make_moe_quant_fixture.py",
                     "files": {}}
    for t in TYPES:
        q = os.path.join(D, f"model.{t}.gguf")
        subprocess.run([a.quantize, f32, q, t], check=True, env=env, capture_output=True)
        for s in g["sequences"]:
            jobs.append({"model": q, "prompt_ids": s["prompt_ids"], "n": len(s["greedy_ids"])})
    jf = "/tmp/forge-moe-quant-jobs.json"
    json.dump(jobs, open(jf, "w"))
    r = subprocess.run(["node", os.path.join(HERE, "llamacpp_greedy.mjs"), "--jobs", jf],
                       check=True, capture_output=True, text=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for j in res:
        name = os.path.basename(j["model"])
        out["files"].setdefault(name, []).append({"prompt_ids": j["prompt_ids"],
                                                  "greedy_ids": j["greedy_ids"]})
    with open(os.path.join(D, "llamacpp-quant.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    for name, seqs in out["files"].items():
        same = sum(s["greedy_ids"] == g["sequences"][i]["greedy_ids"] for i, s in enumerate(seqs))
        print(f"{name}: llama.cpp greedy equal to the f64 golden in {same}/{len(seqs)} sequences")


if __name__ == "__main__":
    main()
