#!/usr/bin/python3
"""A Qwen3-MoE GGUF of a real config's shape with random Q4_K_M-style weights, for speed
benchmarks (issue 18: Qwen3-30B-A3B beside llama.cpp on the same file).

No BF16 original is needed: the blocks are written directly, so a 30B-A3B file (about 17 GB)
is made in a few minutes and never held in memory (tensor infos first, then each tensor's
blocks generated and written in turn). Types follow llama-quantize's Q4_K_M choice: Q4_K
everywhere, Q6_K for the output and for attn_v / ffn_down_exps on its "more bits" layers
(the first and last eighth, and every third layer between), F32 for norms and the router.
Random blocks: code bytes uniform, 6-bit scales uniform, block scales d ~ 2e-4 (values
around +-0.05, so activations stay finite through 48 layers). The vocabulary comes from a
GGUF vocabulary file (llama.cpp's vocab-only Qwen2 file in tests/fixtures/gguf-vocab),
padded with [PAD] tokens to the config's vocab_size as convert_hf_to_gguf.py does.

  /usr/bin/python3 scripts/gguf/make_random_moe_gguf.py \
      --config tests/fixtures/configs/Qwen--Qwen3-30B-A3B/config.json \
      --vocab tests/fixtures/gguf-vocab/ggml-vocab-qwen2.gguf --out qwen3-30b-a3b-Q4_K_M.gguf
  (--layers N: fewer layers, for a quick check)
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import gguf_io as G  # noqa: E402

Q4_K, Q6_K, F32 = 12, 14, 0
BLOCK = {Q4_K: 144, Q6_K: 210}
FTYPE_Q4_K_M = 15


def more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def blocks(rng, typ, n_blocks):
    b = rng.integers(0, 256, size=(n_blocks, BLOCK[typ]), dtype=np.uint8)
    d = (rng.random(n_blocks, dtype=np.float32) * 2e-4 + 1e-4).astype(np.float16).view(np.uint8).reshape(-1, 2)
    if typ == Q4_K:
        b[:, 0:2] = d
        b[:, 2:4] = d  # dmin
    else:
        b[:, 192:208] = (rng.integers(-31, 32, size=(n_blocks, 16), dtype=np.int8)).view(np.uint8)
        b[:, 208:210] = d
    return b


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--vocab", required=True, help="a GGUF holding tokenizer.* metadata")
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    c = json.load(open(a.config))
    if c.get("model_type") != "qwen3_moe":
        raise SystemExit(f"{a.config}: model_type {c.get('model_type')!r}, want qwen3_moe")
    H, nh, nkv, hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    E, K, I, V = c["num_experts"], c["num_experts_per_tok"], c["moe_intermediate_size"], c["vocab_size"]
    L = a.layers or c["num_hidden_layers"]
    if c.get("mlp_only_layers") or c.get("decoder_sparse_step", 1) != 1:
        raise SystemExit("dense layers are not generated")

    vr = G.Reader(a.vocab)
    w = G.Writer()
    arch = "qwen3moe"
    w.add("general.architecture", G.STR, arch)
    w.add("general.name", G.STR, "random " + os.path.basename(os.path.dirname(os.path.abspath(a.config))))
    w.add("general.file_type", G.U32, FTYPE_Q4_K_M)
    for k, t, v in ((f"{arch}.context_length", G.U32, c["max_position_embeddings"]),
                    (f"{arch}.embedding_length", G.U32, H), (f"{arch}.block_count", G.U32, L),
                    (f"{arch}.feed_forward_length", G.U32, c["intermediate_size"]),
                    (f"{arch}.rope.dimension_count", G.U32, hd), (f"{arch}.attention.head_count", G.U32, nh),
                    (f"{arch}.attention.head_count_kv", G.U32, nkv), (f"{arch}.attention.key_length", G.U32, hd),
                    (f"{arch}.attention.value_length", G.U32, hd),
                    (f"{arch}.attention.layer_norm_rms_epsilon", G.F32, c["rms_norm_eps"]),
                    (f"{arch}.rope.freq_base", G.F32, float(c["rope_theta"])), (f"{arch}.vocab_size", G.U32, V),
                    (f"{arch}.expert_count", G.U32, E), (f"{arch}.expert_used_count", G.U32, K),
                    (f"{arch}.expert_feed_forward_length", G.U32, I)):
        w.add(k, t, v)
    for k in vr.meta:
        if not k.startswith("tokenizer."):
            continue
        t, v = vr.meta_types[k], vr.meta[k]
        if t == G.ARR:
            et, items = v[1], list(v[2])
            if k == "tokenizer.ggml.tokens":
                items += [f"[PAD{i}]" for i in range(len(items), V)]
            elif k == "tokenizer.ggml.token_type":
                items += [4] * (V - len(items))  # user-defined, as the converter pads
            elif k == "tokenizer.ggml.scores":
                items += [0.0] * (V - len(items))
            w.add(k, t, items, et)
        else:
            w.add(k, t, v)

    # (name, type, dims innermost first)
    ts = [("token_embd.weight", Q4_K, (H, V)), ("output_norm.weight", F32, (H,)), ("output.weight", Q6_K, (H, V))]
    for i in range(L):
        mb = more_bits(i, L)
        p = f"blk.{i}."
        ts += [(p + "attn_norm.weight", F32, (H,)), (p + "attn_q.weight", Q4_K, (H, nh * hd)),
               (p + "attn_k.weight", Q4_K, (H, nkv * hd)), (p + "attn_v.weight", Q6_K if mb else Q4_K, (H, nkv * hd)),
               (p + "attn_output.weight", Q4_K, (nh * hd, H)), (p + "attn_q_norm.weight", F32, (hd,)),
               (p + "attn_k_norm.weight", F32, (hd,)), (p + "ffn_norm.weight", F32, (H,)),
               (p + "ffn_gate_inp.weight", F32, (H, E)), (p + "ffn_gate_exps.weight", Q4_K, (H, I, E)),
               (p + "ffn_up_exps.weight", Q4_K, (H, I, E)),
               (p + "ffn_down_exps.weight", Q6_K if mb else Q4_K, (I, H, E))]

    def nbytes(typ, dims):
        n = int(np.prod(dims))
        return n * 4 if typ == F32 else n // 256 * BLOCK[typ]

    al = w.alignment
    head = [b"GGUF", struct.pack("<IQQ", 3, len(ts), len(w.kv))]
    for k, t, v, et in w.kv:
        head.append(w._s(k) + struct.pack("<I", t) + w._v(t, v, et))
    off = 0
    for name, typ, dims in ts:
        head.append(w._s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) +
                    struct.pack("<IQ", typ, off))
        off += (nbytes(typ, dims) + al - 1) // al * al
    h = b"".join(head)
    rng = np.random.default_rng(a.seed)
    with open(a.out, "wb") as f:
        f.write(h)
        f.write(b"\0" * ((al - len(h) % al) % al))
        for name, typ, dims in ts:
            n = nbytes(typ, dims)
            if typ == F32:
                if name.endswith("ffn_gate_inp.weight"):  # the router: random, so tokens spread over experts
                    arr = 0.05 * rng.standard_normal(int(np.prod(dims)), dtype=np.float32)
                else:  # norms
                    arr = np.ones(int(np.prod(dims)), dtype=np.float32)
                f.write(arr.tobytes())
            else:
                total = int(np.prod(dims)) // 256
                step = 1 << 18
                for s0 in range(0, total, step):
                    f.write(blocks(rng, typ, min(step, total - s0)).tobytes())
            f.write(b"\0" * ((al - n % al) % al))
    print(f"{a.out}: {len(ts)} tensors, {os.path.getsize(a.out) / 1e9:.2f} GB, {L} layers", file=sys.stderr)


if __name__ == "__main__":
    main()
