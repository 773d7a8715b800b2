#!/usr/bin/python3
"""Make a random-weight model of a real shape, in HF layout, for benchmarks and big tests.

Real weights cannot be downloaded on these machines; the speed of a forward pass does not
depend on the values, only on the shape and dtype. This writes DIR/config.json (the --like
config with torch_dtype set, and num_hidden_layers if --layers is given) and
DIR/model.safetensors, streaming tensor by tensor (numpy only, no torch; memory stays at one
tensor). Values: linear weights N(0, gain^2/fan_in) (gain 1 except 0.5 for o_proj/down_proj),
embeddings and lm_head N(0, 0.05^2), norms 1 + N(0, 0.05^2), biases N(0, 0.02^2). Each
tensor's values depend only on --seed and its name, so the f32, f16 and bf16 models of one
seed hold the same weights (bf16/f16 are the float32 values rounded to nearest even).

Usage:
  /usr/bin/python3 scripts/make_random_model.py --like CONFIG.json --dtype bf16|f16|f32 \\
      --out DIR [--seed N] [--layers N] [--tokenizer DIR]
e.g.
  /usr/bin/python3 scripts/make_random_model.py \\
      --like /work/shared/fixtures/configs/HuggingFaceTB--SmolLM2-135M-Instruct/config.json \\
      --dtype bf16 --out /work/models/smollm2-135m-bf16 \\
      --tokenizer /work/shared/fixtures/tokenizers/smollm2
generation_config.json is copied from beside the --like config when there; --tokenizer copies
tokenizer.json and tokenizer_config.json (and generation_config.json, if there) from that folder.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct

import numpy as np

DT = {"f32": ("F32", np.float32, 4, "float32"), "f16": ("F16", np.float16, 2, "float16"),
      "bf16": ("BF16", np.uint16, 2, "bfloat16")}
SUPPORTED = ("llama", "mistral", "qwen2", "qwen3", "qwen3_moe")


def f32_to_bf16(x):
    """float32 -> BF16 bit patterns, round to nearest even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((u + (((u >> 16) & 1) + np.uint32(0x7FFF))) >> 16).astype(np.uint16)


def tensor_specs(c):
    """[(name, shape, kind)] for an HF llama/mistral/qwen2/qwen3/qwen3_moe config."""
    mt = c["model_type"]
    if mt not in SUPPORTED:
        raise SystemExit(f"model_type {mt!r} not supported")
    H, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    nh = c["num_attention_heads"]
    nkv = c.get("num_key_value_heads") or nh
    D = c.get("head_dim") or H // nh
    qkv_bias = mt == "qwen2" or (mt in ("llama", "qwen3", "qwen3_moe") and c.get("attention_bias", False))
    o_bias = mt in ("llama", "qwen3", "qwen3_moe") and c.get("attention_bias", False)
    mlp_bias = mt == "llama" and c.get("mlp_bias", False)
    s = [("model.embed_tokens.weight", (V, H), "embed"), ("model.norm.weight", (H,), "norm")]
    if not c.get("tie_word_embeddings", False):
        s.append(("lm_head.weight", (V, H), "embed"))
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        s += [(p + "input_layernorm.weight", (H,), "norm"),
              (p + "post_attention_layernorm.weight", (H,), "norm"),
              (p + "self_attn.q_proj.weight", (nh * D, H), "lin"),
              (p + "self_attn.k_proj.weight", (nkv * D, H), "lin"),
              (p + "self_attn.v_proj.weight", (nkv * D, H), "lin"),
              (p + "self_attn.o_proj.weight", (H, nh * D), "lin_out")]
        step = c.get("decoder_sparse_step", 1)
        if mt == "qwen3_moe" and i not in (c.get("mlp_only_layers") or []) and (i + 1) % step == 0:
            E, MI = c["num_experts"], c["moe_intermediate_size"]
            s.append((p + "mlp.gate.weight", (E, H), "lin"))
            for e in range(E):
                q = f"{p}mlp.experts.{e}."
                s += [(q + "gate_proj.weight", (MI, H), "lin"), (q + "up_proj.weight", (MI, H), "lin"),
                      (q + "down_proj.weight", (H, MI), "lin_out")]
        else:
            s += [(p + "mlp.gate_proj.weight", (I, H), "lin"),
                  (p + "mlp.up_proj.weight", (I, H), "lin"),
                  (p + "mlp.down_proj.weight", (H, I), "lin_out")]
        if qkv_bias:
            s += [(p + "self_attn.q_proj.bias", (nh * D,), "bias"),
                  (p + "self_attn.k_proj.bias", (nkv * D,), "bias"),
                  (p + "self_attn.v_proj.bias", (nkv * D,), "bias")]
        if o_bias:
            s.append((p + "self_attn.o_proj.bias", (H,), "bias"))
        if mlp_bias:
            s += [(p + "mlp.gate_proj.bias", (I,), "bias"), (p + "mlp.up_proj.bias", (I,), "bias"),
                  (p + "mlp.down_proj.bias", (H,), "bias")]
        if mt in ("qwen3", "qwen3_moe"):
            s += [(p + "self_attn.q_norm.weight", (D,), "norm"),
                  (p + "self_attn.k_norm.weight", (D,), "norm")]
    return sorted(s)


def values(name, shape, kind, seed):
    """float32 values of one tensor, determined by (seed, name) only."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(h)
    x = rng.standard_normal(shape, dtype=np.float32)
    if kind == "norm":
        return 1.0 + 0.05 * x
    if kind == "bias":
        return 0.02 * x
    if kind == "embed":
        return 0.05 * x
    gain = 0.5 if kind == "lin_out" else 1.0
    return x * np.float32(gain / np.sqrt(shape[1]))


def write(out, c, dtype, seed):
    st, npdt, size, _ = DT[dtype]
    specs = tensor_specs(c)
    hdr = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape, _ in specs:
        nb = int(np.prod(shape)) * size
        hdr[name] = {"dtype": st, "shape": list(shape), "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path = os.path.join(out, "model.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape, kind in specs:
            x = values(name, shape, kind, seed)
            if dtype == "bf16":
                x = f32_to_bf16(x)
            else:
                x = x.astype(npdt)
            f.write(x.tobytes())
    return off


def main():
    ap = argparse.ArgumentParser(description="random-weight HF model of a real shape")
    ap.add_argument("--like", required=True, help="a real config.json")
    ap.add_argument("--dtype", required=True, choices=list(DT))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, help="override num_hidden_layers")
    ap.add_argument("--tokenizer", help="folder with tokenizer.json (+ tokenizer_config.json)")
    a = ap.parse_args()
    with open(a.like) as f:
        c = json.load(f)
    if a.layers:
        c["num_hidden_layers"] = a.layers
        if c.get("layer_types"):
            c["layer_types"] = c["layer_types"][:a.layers]
    c["torch_dtype"] = DT[a.dtype][3]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")
    nb = write(a.out, c, a.dtype, a.seed)
    gen = os.path.join(os.path.dirname(os.path.abspath(a.like)), "generation_config.json")
    if os.path.exists(gen):
        shutil.copyfile(gen, os.path.join(a.out, "generation_config.json"))
    if a.tokenizer:
        for fn in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
            src = os.path.join(a.tokenizer, fn)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(a.out, fn))
    print(f"wrote {a.out}: {nb / 1e6:.1f} MB of {a.dtype} weights, seed {a.seed}")


if __name__ == "__main__":
    main()
