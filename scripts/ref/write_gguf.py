#!/usr/bin/python3
"""Write a GGUF v3 file from an HF folder (llama / mistral / qwen2 / qwen3), for llama.cpp.

Written after llama.cpp's convert_hf_to_gguf.py (no `gguf` package is reachable here):
  - arch `llama` (HF llama and mistral): q/k weight rows (and q/k biases) are permuted back
    from HF's rotate-half layout to llama.cpp's interleaved one; llama3 rope_scaling becomes
    a `rope_freqs.weight` tensor of per-frequency divisors, linear scaling becomes
    `llama.rope.scaling.type/factor`. llama.cpp's llama arch has NO sliding window, so a
    mistral model whose sequences exceed `sliding_window` cannot agree there.
  - arch `qwen2` / `qwen3`: no permutation (llama.cpp uses the NEOX = rotate-half rope for
    them). llama.cpp's qwen2/qwen3 have no sliding window either.
  - mixture of experts: qwen3_moe -> arch `qwen3moe`, mixtral -> arch `llama` with
    `expert_count` / `expert_used_count` (and `expert_feed_forward_length` for qwen3moe); the
    router becomes `ffn_gate_inp`, the experts' matrices are stacked into 3-D
    `ffn_{gate,up,down}_exps` [experts, rows, cols] as convert_hf_to_gguf.py does. llama.cpp
    always renormalizes the top k of both (a qwen3_moe with norm_topk_prob false cannot agree)
    and supports no dense layers in qwen3moe (decoder_sparse_step / mlp_only_layers).
  - smollm3 -> arch `smollm3` (a LlamaModel in conversion/llama.py: q/k permuted as for
    llama). llama.cpp fixes its NoPE layers to every 4th (n_no_rope_layer_step = 4) and loads
    no attention biases, so a config whose no_rope_layers differ, or with attention_bias, is
    refused.
  - gemma3_text -> arch `gemma3` (conversion/gemma.py): as gemma2 (norms 1 + w, q/k norms
    included), no attention soft-capping, `rope.freq_base_swa` for the local layers,
    `attention.sliding_window` and `attention.sliding_window_pattern`.
  - gemma2 -> arch `gemma2` (conversion/gemma.py): every norm weight stored as 1 + w, the
    post-attention / pre- and post-feedforward norms as post_attention_norm / ffn_norm /
    post_ffw_norm, soft-capping and sliding_window keys. llama.cpp takes the attention scale
    from head_dim (hidden/heads for the 46-layer 27B), not from query_pre_attn_scalar.
  - phi3 -> arch `phi3` (conversion/phi.py): qkv_proj -> attn_qkv, gate_up_proj -> ffn_up,
    rope.dimension_count = int(partial_rotary_factor * hidden) // heads, the original context,
    sliding_window (0 for none), longrope's factors as F32 tensors rope_factors_long/short and
    its attention factor as rope.scaling.attn_factor.
  - tied embeddings: no `output.weight` (llama.cpp falls back to token_embd).
  - tensor types: 1-D tensors (norms, biases, rope_freqs) always F32, as the converter does;
    2-D tensors per --outtype: f32, f16, bf16, or keep (the safetensors dtype).
  - vocabulary (llama.cpp refuses a GGUF without one): from the folder's tokenizer.json when
    its vocab size equals the model's (SentencePiece-style BPE with byte fallback -> model
    "llama" with scores -(rank); byte-level BPE -> model "gpt2" with its merges and
    `--pre`), else a synthetic "llama" vocab: <unk>, <s>, </s>, byte tokens <0x00>..<0xFF>
    when they fit, then pieces "▁t<id>".
Usage:
  /usr/bin/python3 scripts/ref/write_gguf.py HF_DIR OUT.gguf [--outtype f32|f16|bf16|keep]
                   [--pre smollm] [--name NAME]
"""
import argparse
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gguf_io as G  # noqa: E402
import hf_forward as hf  # noqa: E402
from safetensors_io import bf16_to_f32, f32_to_bf16, st_read_folder  # noqa: E402

ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3",
        "qwen3_moe": "qwen3moe", "mixtral": "llama", "gemma2": "gemma2", "smollm3": "smollm3",
        "gemma3_text": "gemma3", "phi3": "phi3"}
FILE_TYPE = {"f32": 0, "f16": 1, "bf16": 32}
TOK_NORMAL, TOK_UNKNOWN, TOK_CONTROL, TOK_USER, TOK_BYTE = 1, 2, 3, 4, 6


def permute(w, n_head):
    """convert_hf_to_gguf.py's permute: HF rotate-half rows -> interleaved pairs, per head."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def llama3_rope_factors(c):
    """Per-frequency divisors (inv_freq / llama3-scaled inv_freq), as llama.cpp's rope_freqs."""
    rs = c["rope_scaling"]
    dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    base = float(c.get("rope_theta", 10000.0))
    factor = float(rs["factor"])
    lo, hi = float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
    old = float(rs["original_max_position_embeddings"])
    out = []
    for i in range(0, dim, 2):
        freq = 1.0 / (base ** (i / dim))
        wl = 2 * math.pi / freq
        if wl < old / hi:
            out.append(1.0)
        elif wl > old / lo:
            out.append(factor)
        else:
            smooth = (old / wl - lo) / (hi - lo)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def tensor_map(c, arch):
    """HF name -> GGUF name."""
    m = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
         "lm_head.weight": "output.weight"}
    sub = {"input_layernorm.weight": "attn_norm.weight",
           "post_attention_layernorm.weight": "ffn_norm.weight",
           "self_attn.q_norm.weight": "attn_q_norm.weight",
           "self_attn.k_norm.weight": "attn_k_norm.weight",
           "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
           "mlp.down_proj.weight": "ffn_down.weight",
           "mlp.gate_proj.bias": "ffn_gate.bias", "mlp.up_proj.bias": "ffn_up.bias",
           "mlp.down_proj.bias": "ffn_down.bias"}
    for p, g in (("q_proj", "attn_q"), ("k_proj", "attn_k"), ("v_proj", "attn_v"),
                 ("o_proj", "attn_output")):
        sub[f"self_attn.{p}.weight"] = f"{g}.weight"
        sub[f"self_attn.{p}.bias"] = f"{g}.bias"
    for i in range(c["num_hidden_layers"]):
        for k, v in sub.items():
            m[f"model.layers.{i}.{k}"] = f"blk.{i}.{v}"
    return m


def vocab_from_tokenizer(folder, n_vocab, pre):
    """Metadata for the folder's tokenizer.json if its size matches, else None."""
    p = os.path.join(folder, "tokenizer.json")
    if not os.path.exists(p):
        return None
    with open(p, encoding="utf-8") as f:
        tj = json.load(f)
    model = tj.get("model", {})
    if model.get("type") != "BPE":
        return None
    vocab = dict(model["vocab"])
    special = set()
    added = set()
    for t in tj.get("added_tokens", []):
        vocab[t["content"]] = t["id"]
        added.add(t["id"])
        if t.get("special"):
            special.add(t["id"])
    size = max(vocab.values()) + 1
    if size > n_vocab or len(vocab) != size:
        return None
    toks = [None] * n_vocab
    for s, i in vocab.items():
        toks[i] = s
    for i in range(size, n_vocab):  # pad like the converter does
        toks[i] = f"[PAD{i}]"
    kv = []
    if model.get("byte_fallback"):
        types, scores = [], []
        first = None
        for i, s in enumerate(toks):
            if i in special:
                types.append(TOK_UNKNOWN if s == model.get("unk_token") else TOK_CONTROL)
            elif len(s) == 6 and s.startswith("<0x") and s.endswith(">"):
                types.append(TOK_BYTE)
            elif i in added:
                types.append(TOK_USER)
            else:
                types.append(TOK_NORMAL)
            if types[-1] == TOK_NORMAL:
                first = i if first is None else first
                scores.append(-float(i - first))
            else:
                scores.append(0.0)
        kv.append(("tokenizer.ggml.model", G.STR, "llama", None))
        kv.append(("tokenizer.ggml.tokens", G.ARR, toks, G.STR))
        kv.append(("tokenizer.ggml.scores", G.ARR, scores, G.F32))
        kv.append(("tokenizer.ggml.token_type", G.ARR, types, G.I32))
    else:
        merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        types = [TOK_CONTROL if i in special else TOK_USER if i in added else TOK_NORMAL
                 for i in range(n_vocab)]
        kv.append(("tokenizer.ggml.model", G.STR, "gpt2", None))
        kv.append(("tokenizer.ggml.pre", G.STR, pre, None))
        kv.append(("tokenizer.ggml.tokens", G.ARR, toks, G.STR))
        kv.append(("tokenizer.ggml.token_type", G.ARR, types, G.I32))
        kv.append(("tokenizer.ggml.merges", G.ARR, merges, G.STR))
    return kv


def vocab_synthetic(n_vocab):
    toks = ["<unk>", "<s>", "</s>"]
    types = [TOK_UNKNOWN, TOK_CONTROL, TOK_CONTROL]
    # byte tokens: llama.cpp's SPM tokenizer looks them up with .at() (throws if missing);
    # a vocab under 259 gets 0x00.. as many as fit (>= 0xF5 never occurs in UTF-8 anyway)
    nb = min(256, n_vocab - 3)
    toks += [f"<0x{b:02X}>" for b in range(nb)]
    types += [TOK_BYTE] * nb
    while len(toks) < n_vocab:
        toks.append(f"\u2581t{len(toks)}")
        types.append(TOK_NORMAL)
    scores = [0.0 if t != TOK_NORMAL else -float(i) for i, t in enumerate(types)]
    return [("tokenizer.ggml.model", G.STR, "llama", None),
            ("tokenizer.ggml.tokens", G.ARR, toks, G.STR),
            ("tokenizer.ggml.scores", G.ARR, scores, G.F32),
            ("tokenizer.ggml.token_type", G.ARR, types, G.I32)]


def convert(folder, out, outtype="f32", pre="default", name=None):
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    mt = c["model_type"]
    if mt not in ARCH:
        raise SystemExit(f"{folder}: model_type {mt!r} not supported")
    arch = ARCH[mt]
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads") or nh
    hd = c.get("head_dim") or H // nh
    V = c["vocab_size"]
    raw = st_read_folder(folder)
    tied = bool(c.get("tie_word_embeddings", False))

    w = G.Writer()
    w.add("general.architecture", G.STR, arch)
    w.add("general.name", G.STR, name or os.path.basename(os.path.normpath(folder)))
    types_2d = {dt for n, (dt, a) in raw.items() if a.ndim == 2}
    ft = outtype if outtype != "keep" else (
        "bf16" if "BF16" in types_2d else "f16" if "F16" in types_2d else "f32")
    w.add("general.file_type", G.U32, FILE_TYPE[ft])
    w.add(f"{arch}.context_length", G.U32, c.get("max_position_embeddings", 2048))
    w.add(f"{arch}.embedding_length", G.U32, H)
    w.add(f"{arch}.block_count", G.U32, c["num_hidden_layers"])
    w.add(f"{arch}.feed_forward_length", G.U32, c["intermediate_size"])
    rot = int(c.get("partial_rotary_factor", 1.0) * H) // nh if mt == "phi3" else hd
    w.add(f"{arch}.rope.dimension_count", G.U32, rot)
    w.add(f"{arch}.attention.head_count", G.U32, nh)
    w.add(f"{arch}.attention.head_count_kv", G.U32, nkv)
    w.add(f"{arch}.attention.key_length", G.U32, hd)
    w.add(f"{arch}.attention.value_length", G.U32, hd)
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", G.F32, c.get("rms_norm_eps", 1e-6))
    w.add(f"{arch}.rope.freq_base", G.F32, float(c.get("rope_theta", 10000.0)))
    w.add(f"{arch}.vocab_size", G.U32, V)
    moe = hf.Config(c)
    if moe.experts:
        w.add(f"{arch}.expert_count", G.U32, moe.experts)
        w.add(f"{arch}.expert_used_count", G.U32, moe.top_k)
        if arch == "qwen3moe":
            w.add(f"{arch}.expert_feed_forward_length", G.U32, moe.moe_inter)
    if mt == "phi3":
        orig = c.get("original_max_position_embeddings") or c.get("max_position_embeddings", 4096)
        w.add(f"{arch}.rope.scaling.original_context_length", G.U32, orig)
        w.add(f"{arch}.attention.sliding_window", G.U32, int(c.get("sliding_window") or 0))
        rs = c.get("rope_scaling") or {}
        if rs.get("long_factor"):
            scale = c["max_position_embeddings"] / orig
            af = math.sqrt(1 + math.log(scale) / math.log(orig)) if scale > 1.0 else 1.0
            w.add(f"{arch}.rope.scaling.attn_factor", G.F32, af)
    if mt == "smollm3":
        # llama.cpp's smollm3 fixes the NoPE layers to every 4th ((il + 1) % 4 == 0) and the
        # format has no key for them: refuse a model whose layers differ
        n = c["num_hidden_layers"]
        want = [int((i + 1) % 4 != 0) for i in range(n)]
        got = c.get("no_rope_layers") or [int((i + 1) % c.get("no_rope_layer_interval", 4) != 0) for i in range(n)]
        if list(got) != want:
            raise SystemExit(f"smollm3: no_rope_layers {list(got)} differ from llama.cpp's fixed rule {want}")
        if c.get("attention_bias"):
            raise SystemExit("smollm3: llama.cpp's smollm3 has no attention biases")
    if mt == "gemma3_text":
        # conversion/gemma.py (Gemma3Model): the global layers' theta as rope.freq_base, the
        # local one as rope.freq_base_swa, the window when a pattern is set; llama.cpp takes
        # the attention scale from head_dim (hidden/heads for the 62-layer 27B) and, in the
        # builds without the pattern key, puts a global layer every 6th
        if c.get("query_pre_attn_scalar", 256) != hd:
            print(f"warning: query_pre_attn_scalar {c.get('query_pre_attn_scalar')} != head_dim {hd}: "
                  "llama.cpp will scale by head_dim", file=sys.stderr)
        if c.get("attn_logit_softcapping"):
            raise SystemExit("gemma3: attn_logit_softcapping is not in llama.cpp's gemma3")
        if c.get("final_logit_softcapping"):
            w.add(f"{arch}.final_logit_softcapping", G.F32, float(c["final_logit_softcapping"]))
        pattern = c.get("sliding_window_pattern", 6)
        if pattern != 1:
            w.add(f"{arch}.attention.sliding_window", G.U32, int(c.get("sliding_window", 4096)))
            w.add(f"{arch}.attention.sliding_window_pattern", G.U32, int(pattern))
            if pattern != 6:
                print(f"warning: sliding_window_pattern {pattern}: llama.cpp builds without the "
                      "pattern key assume 6", file=sys.stderr)
        w.add(f"{arch}.rope.freq_base_swa", G.F32, float(c.get("rope_local_base_freq", 10000.0)))
    if mt == "gemma2":
        if c.get("query_pre_attn_scalar", 256) != hd:
            print(f"warning: query_pre_attn_scalar {c.get('query_pre_attn_scalar')} != head_dim {hd}: "
                  "llama.cpp will scale by head_dim", file=sys.stderr)
        w.add(f"{arch}.attn_logit_softcapping", G.F32, float(c.get("attn_logit_softcapping") or 0.0))
        w.add(f"{arch}.final_logit_softcapping", G.F32, float(c.get("final_logit_softcapping") or 0.0))
        w.add(f"{arch}.attention.sliding_window", G.U32, int(c.get("sliding_window", 4096)))
    rs = c.get("rope_scaling")
    extra = {}
    if rs:
        rt = rs.get("rope_type", rs.get("type"))
        if rt == "linear":
            w.add(f"{arch}.rope.scaling.type", G.STR, "linear")
            w.add(f"{arch}.rope.scaling.factor", G.F32, float(rs["factor"]))
        elif rt == "llama3":
            extra["rope_freqs.weight"] = llama3_rope_factors(c)
        elif rt in ("longrope", "su") and mt == "phi3":
            extra["rope_factors_long.weight"] = np.array(rs["long_factor"], dtype=np.float32)
            extra["rope_factors_short.weight"] = np.array(rs["short_factor"], dtype=np.float32)
        elif rt != "default":
            raise SystemExit(f"rope_scaling {rt!r} not supported")
    kv = vocab_from_tokenizer(folder, V, pre) or vocab_synthetic(V)
    for k, t, v, et in kv:
        w.add(k, t, v, et)
    w.add("tokenizer.ggml.bos_token_id", G.U32, c.get("bos_token_id", 1) or 0)
    eos = c.get("eos_token_id", 2)
    w.add("tokenizer.ggml.eos_token_id", G.U32, (eos[0] if isinstance(eos, list) else eos) or 0)
    toks = dict((k, v) for k, t, v, et in kv)["tokenizer.ggml.tokens"]
    if "<unk>" in toks:
        w.add("tokenizer.ggml.unknown_token_id", G.U32, toks.index("<unk>"))
    w.add("tokenizer.ggml.add_bos_token", G.BOOL, mt in ("llama", "mistral"))

    names = tensor_map(c, arch)
    if mt == "phi3":
        for i in range(c["num_hidden_layers"]):
            names[f"model.layers.{i}.self_attn.qkv_proj.weight"] = f"blk.{i}.attn_qkv.weight"
            names[f"model.layers.{i}.mlp.gate_up_proj.weight"] = f"blk.{i}.ffn_up.weight"
    if mt in ("gemma2", "gemma3_text"):
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            names[p + "post_attention_layernorm.weight"] = f"blk.{i}.post_attention_norm.weight"
            names[p + "pre_feedforward_layernorm.weight"] = f"blk.{i}.ffn_norm.weight"
            names[p + "post_feedforward_layernorm.weight"] = f"blk.{i}.post_ffw_norm.weight"
        for n in list(raw):  # the converter stores Gemma's norms as 1 + w
            if n.endswith("norm.weight"):
                dt, a = raw[n]
                raw[n] = ("F32", (bf16_to_f32(a) if dt == "BF16" else a.astype(np.float32)) + np.float32(1))
    if moe.experts:  # stack each MoE layer's experts
        for i in range(moe.layers):
            if not moe.moe[i]:
                continue
            base, nm = hf.moe_names(moe, i)
            names[base + "gate.weight"] = f"blk.{i}.ffn_gate_inp.weight"
            for kind, gg in zip(nm, ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps")):
                parts = [raw.pop(f"{base}experts.{e}.{kind}.weight") for e in range(moe.experts)]
                dt = parts[0][0]
                raw[f"blk.{i}.{gg}.weight"] = (dt, np.stack([p[1] for p in parts]))
                names[f"blk.{i}.{gg}.weight"] = f"blk.{i}.{gg}.weight"
    order = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    order += sorted((n for n in raw if n not in order),
                    key=lambda n: (int(n.split(".")[2]), n) if n.startswith("model.layers.")
                    else (int(n.split(".")[1]), n) if n.startswith("blk.") else (-1, n))
    for n, arr in extra.items():
        w.add_tensor(n, G.GGML_F32, arr)
    for hf_name in order:
        if hf_name not in raw:
            continue
        if hf_name == "lm_head.weight" and tied:
            continue
        if hf_name not in names:
            raise SystemExit(f"tensor {hf_name}: no GGUF name")
        dt, a = raw[hf_name]
        x = bf16_to_f32(a) if dt == "BF16" else a.astype(np.float32)
        if arch in ("llama", "smollm3") and ".self_attn.q_proj." in hf_name:
            x = permute(x, nh)
        elif arch in ("llama", "smollm3") and ".self_attn.k_proj." in hf_name:
            x = permute(x, nkv)
        gname = names[hf_name]
        if x.ndim <= 1:
            w.add_tensor(gname, G.GGML_F32, x)
            continue
        tgt = outtype if outtype != "keep" else {"F32": "f32", "F16": "f16", "BF16": "bf16"}[dt]
        if tgt == "f32":
            w.add_tensor(gname, G.GGML_F32, x)
        elif tgt == "f16":
            # permuting rows does not change values, so F16 sources stay exact
            w.add_tensor(gname, G.GGML_F16, x.astype(np.float16))
        else:
            w.add_tensor(gname, G.GGML_BF16, f32_to_bf16(x))
    w.write(out)


def main():
    ap = argparse.ArgumentParser(description="HF folder -> GGUF v3")
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--outtype", default="f32", choices=["f32", "f16", "bf16", "keep"])
    ap.add_argument("--pre", default="default",
                    help="tokenizer.ggml.pre for byte-level BPE vocabularies (e.g. smollm, qwen2)")
    ap.add_argument("--name")
    a = ap.parse_args()
    convert(a.folder, a.out, a.outtype, a.pre, a.name)
    print(f"wrote {a.out} ({os.path.getsize(a.out)} bytes)")


if __name__ == "__main__":
    main()
