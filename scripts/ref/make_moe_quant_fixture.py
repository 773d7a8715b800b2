#!/usr/bin/python3
"""Quantized experts: tests/fixtures/parity/qwen3_moe_norm/model.{f32,Q8_0,Q4_0}.gguf and
llama.cpp's greedy ids on the quantized files (llamacpp-quant.json), for
tests/model/test_gguf_families.c; and tests/fixtures/gguf-moe/tiny-mixtral/ (a small random
Mixtral without a window, its safetensors and write_gguf.py's F32 GGUF: llama.cpp's `llama`
arch with experts, q/k rows permuted), whose logits must be the same from both files.

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


def tiny_mixtral():
    import numpy as np
    from safetensors_io import st_write
    d = os.path.join(ROOT, "tests", "fixtures", "gguf-moe", "tiny-mixtral")
    os.makedirs(d, exist_ok=True)
    c = {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "vocab_size": 320,
         "hidden_size": 32, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "num_local_experts": 4, "num_experts_per_tok": 2,
         "sliding_window": None, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
         "max_position_embeddings": 256, "tie_word_embeddings": False, "bos_token_id": 1,
         "eos_token_id": 2, "torch_dtype": "float32"}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    r = np.random.default_rng(18)
    H, I, E = 32, 32, 4
    w = {"model.embed_tokens.weight": r.normal(0, 0.5, (320, H)), "model.norm.weight": 1 + r.normal(0, .1, H),
         "lm_head.weight": r.normal(0, 3 / np.sqrt(H), (320, H))}
    for i in range(2):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + r.normal(0, .1, H)
        w[p + "post_attention_layernorm.weight"] = 1 + r.normal(0, .1, H)
        for n, o in (("q_proj", H), ("k_proj", H // 2), ("v_proj", H // 2), ("o_proj", H)):
            w[p + f"self_attn.{n}.weight"] = r.normal(0, 1.3 / np.sqrt(H), (o, H))
        w[p + "block_sparse_moe.gate.weight"] = r.normal(0, 4 / np.sqrt(H), (E, H))
        for e in range(E):
            q = f"{p}block_sparse_moe.experts.{e}."
            w[q + "w1.weight"] = r.normal(0, 1 / np.sqrt(H), (I, H))
            w[q + "w3.weight"] = r.normal(0, 1 / np.sqrt(H), (I, H))
            w[q + "w2.weight"] = r.normal(0, 1 / np.sqrt(I), (H, I))
    st_write(os.path.join(d, "model.safetensors"), {k: ("F32", v.astype(np.float32)) for k, v in w.items()},
             {"format": "pt"})
    write_gguf.convert(d, os.path.join(d, "model.f32.gguf"), "f32")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", default="/work/llama.cpp/build/bin/llama-quantize")
    a = ap.parse_args()
    tiny_mixtral()
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
