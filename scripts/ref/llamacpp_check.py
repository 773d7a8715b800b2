#!/usr/bin/python3
"""Cross-check the parity goldens and stories260K against llama.cpp (node-llama-cpp).

Writes an F32 GGUF of every parity model (and stories260K) with write_gguf.py into a
scratch folder, runs llamacpp_greedy.mjs on every golden sequence, compares llama.cpp's
greedy ids with the float64 goldens, and records the result in
tests/fixtures/parity/llamacpp.json, then rewrites tests/fixtures/parity/README.md.

Needs node + `cd scripts/ref && npm ci` (node-llama-cpp pinned in package.json). Run:
  /usr/bin/python3 scripts/ref/llamacpp_check.py [--tmp DIR] [--shared-gguf PATH]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_forward as hf  # noqa: E402
import torch  # noqa: E402
import write_gguf  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PAR = os.path.join(ROOT, "tests", "fixtures", "parity")
STORIES = os.path.join(ROOT, "tests", "fixtures", "stories260K")

WHY = {
    "mistral_window": "expected: llama.cpp's `llama` arch (mistral maps to it) has no sliding "
                      "window; sequences are longer than the window of 8",
    "qwen2_window": "expected: llama.cpp's `qwen2` arch has no sliding window",
    "mixtral_window": "expected: llama.cpp's `llama` arch (Mixtral maps to it, with experts) has "
                      "no sliding window; sequences are longer than the window of 7",
}
# models llama.cpp cannot represent: recorded, not run
SKIP = {
    "smollm3_nope": "not run: llama.cpp's smollm3 arch fixes the NoPE layers to every 4th "
                    "(n_no_rope_layer_step = 4) and this model's no_rope_layers list differs on "
                    "purpose (and it has attention biases); smollm3_interval is the SmolLM3 checked",
    "qwen3_moe": "not run: llama.cpp's qwen3moe always renormalizes the top k and has no dense "
                 "layers, and this model has norm_topk_prob false and mlp_only_layers [1]; "
                 "qwen3_moe_norm is the MoE model it can run",
    "gemma3_local": "not run: llama.cpp takes the attention scale from head_dim, where this "
                    "model's query_pre_attn_scalar differs on purpose, and builds without the "
                    "pattern key put a global layer every 6th (this model: every 3rd); "
                    "gemma3_pattern6 is the Gemma 3 checked",
    "phi3_longrope": "not run: llama.cpp picks longrope's factors once by context size (n_ctx "
                     "against the original context), not per position as this model's goldens "
                     "do; its GGUF is checked against the goldens in test_gguf_families",
}


def first_diff(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tmp", help="folder for the GGUF files (default: a temp dir)")
    ap.add_argument("--shared-gguf", default="/work/shared/fixtures/gguf/stories260K.f32.gguf",
                    help="the reference stories260K GGUF, if present")
    a = ap.parse_args()
    tmp = a.tmp or tempfile.mkdtemp(prefix="forge-gguf-")
    os.makedirs(tmp, exist_ok=True)
    version = json.load(open(os.path.join(HERE, "package.json")))["dependencies"]["node-llama-cpp"]

    cases = []  # (label, model, gguf path, outtype, [(prompt, expected)])
    names = [n for n in sorted(os.listdir(PAR)) if os.path.isdir(os.path.join(PAR, n))]
    skipped = []
    for n in names:
        if n in SKIP:
            skipped.append({"model": n, "gguf": "-", "sequences": 0, "equal_sequences": 0,
                            "agrees": False, "why": SKIP[n]})
            continue
        g = json.load(open(os.path.join(PAR, n, "golden.json")))
        seqs = [(s["prompt_ids"], s["greedy_ids"]) for s in g["sequences"]]
        outtypes = ["f32"] + (["keep"] if g["dtype"] != "F32" else [])
        for ot in outtypes:
            path = os.path.join(tmp, f"{n}.{ot}.gguf")
            write_gguf.convert(os.path.join(PAR, n), path, ot)
            cases.append((n, n, path, ot, seqs))
    eg = json.load(open(os.path.join(STORIES, "expected-greedy.json")))
    st_seqs = [(eg["prompt_ids"], eg["greedy_ids"])]
    path = os.path.join(tmp, "stories260K.f32.gguf")
    write_gguf.convert(STORIES, path, "f32")
    cases.append(("stories260K", "stories260K", path, "f32 (write_gguf.py)", st_seqs))
    if os.path.exists(a.shared_gguf):
        cases.append(("stories260K", "stories260K", a.shared_gguf, "f32 (shared GGUF)", st_seqs))

    jobs = [{"model": c[2], "prompt_ids": p, "n": len(e)} for c in cases for p, e in c[4]]
    jf = os.path.join(tmp, "jobs.json")
    json.dump(jobs, open(jf, "w"))
    r = subprocess.run(["node", os.path.join(HERE, "llamacpp_greedy.mjs"), "--jobs", jf],
                       check=True, capture_output=True, text=True)
    outs = json.loads(r.stdout.strip().splitlines()[-1])
    k = 0
    results = []
    for label, model, path, ot, seqs in cases:
        eq, diffs = 0, []
        for p, e in seqs:
            got = outs[k]["greedy_ids"]
            k += 1
            d = first_diff(got, e)
            eq += d is None
            diffs.append(d)
        gg = ("write_gguf.py --outtype " + ot) if not ot.startswith("f32 (") else ot
        res = {"model": model, "gguf": gg, "sequences": len(seqs), "equal_sequences": eq,
               "agrees": eq == len(seqs), "first_differing_step": diffs}
        if eq != len(seqs) and model in WHY:
            # confirm the explanation: the reference without a window must equal llama.cpp
            m = hf.load_model(os.path.join(PAR, model), torch.float64)
            m.cfg.window = [None] * m.cfg.layers
            got_all = [o["greedy_ids"] for o in outs[k - len(seqs):k]]
            res_eq, notes = 0, []
            for got, (p, e) in zip(got_all, seqs):
                ids, margins, _ = hf.greedy(m, p, len(e))
                d = first_diff(got, ids)
                res_eq += d is None
                if d is not None:
                    notes.append(f"the other differs at step {d}, where the windowless "
                                 f"reference has a near-tie (rel. margin {margins[d]:.2g}; "
                                 "llama.cpp's KV cache is F16)")
            res["reference_without_window_equal_sequences"] = res_eq
            res["reference_without_window_notes"] = notes
        if eq != len(seqs):
            why = WHY.get(model)
            if why is None and ot == "keep":
                why = ("BF16 GGUF: llama.cpp's CPU BF16 matmul rounds the activations to bf16, "
                       "so it is not the f32-activation forward of the golden")
            if "reference_without_window_equal_sequences" in res:
                why += (f"; the float64 reference with the window removed gives llama.cpp's ids "
                        f"in {res['reference_without_window_equal_sequences']}/{len(seqs)} sequences")
                why += "".join("; " + n for n in res["reference_without_window_notes"])
            res["why"] = why or "UNEXPLAINED"
        results.append(res)
        print(f"{model:18s} {gg:32s} {eq}/{len(seqs)} equal, first differing steps {diffs}")
    results += skipped
    note = (f"llama.cpp via npm node-llama-cpp {version} (its prebuilt CPU binary, 1 thread), on "
            "GGUF files written by scripts/ref/write_gguf.py from the same safetensors; "
            "greedy ids from the golden prompt ids (BOS included by hand). Regenerate with "
            "`/usr/bin/python3 scripts/ref/llamacpp_check.py` (needs `cd scripts/ref && npm ci`). "
            "`first_differing_step`: per sequence, the first greedy step whose id differs "
            "(null: all equal).")
    with open(os.path.join(PAR, "llamacpp.json"), "w") as f:
        json.dump({"note": note, "node_llama_cpp": version, "results": results}, f, indent=1)
        f.write("\n")
    subprocess.run([sys.executable, os.path.join(HERE, "make_parity_models.py"), "--readme"],
                   check=True)


if __name__ == "__main__":
    main()
