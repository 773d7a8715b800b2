#!/usr/bin/python3
"""Float64 reference forward for llama / mistral / qwen2 / qwen3 / smollm3 / qwen3_moe /
mixtral, after HF transformers.

An independent oracle for Forge's C forward pass. It follows transformers' modeling code
(modeling_llama.py, modeling_mistral.py, modeling_qwen2.py, modeling_qwen3.py,
modeling_smollm3.py, modeling_qwen3_moe.py, modeling_mixtral.py and modeling_rope_utils.py)
step by step, in plain torch, computing in float64 by default:
  - embedding lookup (no scaling);
  - RMSNorm: x * rsqrt(mean(x^2) + eps), then weight * x;
  - attention: q/k/v projections (+ bias: qwen2 on q,k,v; llama/qwen3 `attention_bias` on
    q,k,v AND o), Qwen3's per-head q_norm/k_norm (RMSNorm over head_dim) before RoPE,
    RoPE in the rotate-half layout (cos/sin of cat(freqs, freqs); rotate_half(x) =
    cat(-x2, x1)) with `rope_theta` and `rope_scaling` default / linear / llama3,
    GQA (query head h reads kv head h // (heads / kv_heads), as repeat_kv does),
    scaling head_dim^-0.5, causal mask plus sliding window (key visible iff
    k_pos <= q_pos and q_pos - k_pos < window), softmax, o_proj;
  - SmolLM3: no RoPE on the layers `no_rope_layers` marks 0 (derived from
    `no_rope_layer_interval` only when the list is absent);
  - SwiGLU MLP: down(silu(gate(x)) * up(x)) (+ `mlp_bias` for llama), or on the sparse layers
    of qwen3_moe / mixtral the mixture of experts (see moe_mlp);
  - final norm, lm_head (or the embedding when `tie_word_embeddings`).
Sliding window: mistral applies `sliding_window` to every layer when it is not null;
qwen2/qwen3 only when `use_sliding_window` is true, on the layers that `layer_types` marks
"sliding_attention", or, without `layer_types`, on layers with index >= `max_window_layers`.
Llama has no sliding window.

Differences from HF that are intentional: HF computes the RoPE angles and softmax in float32;
here everything (angles included) is float64 in the default mode, i.e. closer to the exact
value. `--f32` (or dtype=torch.float32) computes all in float32 instead (weights upcast to
float32), which the parity scripts use to estimate the f32-vs-f64 logit error.

Usage (as a script):
  /usr/bin/python3 scripts/ref/hf_forward.py MODEL_DIR --ids 1,403,407 [--greedy 200] [--f32]
prints the greedy ids (and the top-5 logits of the last prompt position).
As a module: load_model(folder, dtype), forward(model, ids) -> [T, vocab] logits,
greedy(model, prompt_ids, n) -> (ids, margins, logits of the whole run).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import st_read_folder, to_float32  # noqa: E402

SUPPORTED = ("llama", "mistral", "qwen2", "qwen3", "smollm3", "qwen3_moe", "mixtral", "gemma2",
             "gemma3_text", "phi3")
GEMMA = ("gemma2", "gemma3_text")
# config classes' defaults that differ from LlamaConfig's
DEFAULT_THETA = {"smollm3": 2000000.0, "mixtral": 1000000.0, "gemma3_text": 1000000.0}
DEFAULT_TIED = {"smollm3": True, "gemma2": True, "gemma3_text": True}


class Config:
    """The fields of config.json the forward needs, with transformers' defaults."""

    def __init__(self, d):
        self.raw = d
        mt = d.get("model_type")
        if mt not in SUPPORTED:
            raise ValueError(f"config.json: unsupported model_type {mt!r}")
        self.model_type = mt
        self.vocab = d["vocab_size"]
        self.hidden = d["hidden_size"]
        self.inter = d["intermediate_size"]
        self.layers = d["num_hidden_layers"]
        self.heads = d["num_attention_heads"]
        self.kv_heads = d.get("num_key_value_heads") or self.heads
        self.head_dim = d.get("head_dim") or self.hidden // self.heads
        self.eps = d.get("rms_norm_eps", 1e-6)
        self.theta = float(d.get("rope_theta", DEFAULT_THETA.get(mt, 10000.0)))
        self.tied = bool(d.get("tie_word_embeddings", DEFAULT_TIED.get(mt, False)))
        if mt in GEMMA:
            act = d.get("hidden_activation") or d.get("hidden_act") or "gelu_pytorch_tanh"
            if act != "gelu_pytorch_tanh":
                raise ValueError(f"config.json: hidden_activation {act!r} not supported")
        else:
            act = d.get("hidden_act", "silu")
            if act != "silu":
                raise ValueError(f"config.json: hidden_act {act!r} not supported")
        self.gemma = mt in GEMMA
        # Gemma 2/3: attention scale query_pre_attn_scalar^-0.5, soft-capping, local RoPE base
        self.attn_scalar = d.get("query_pre_attn_scalar", 256) if self.gemma else None
        self.attn_softcap = d.get("attn_logit_softcapping", 50.0 if mt == "gemma2" else None) \
            if self.gemma else None
        self.final_softcap = d.get("final_logit_softcapping", 30.0 if mt == "gemma2" else None) \
            if self.gemma else None
        self.local_theta = float(d.get("rope_local_base_freq", 10000.0)) if mt == "gemma3_text" else None
        if self.heads % self.kv_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        # biases
        if mt == "qwen2":
            self.qkv_bias, self.o_bias, self.mlp_bias = True, False, False
        elif mt in ("mistral", "mixtral"):
            self.qkv_bias, self.o_bias, self.mlp_bias = False, False, False
        elif mt in ("qwen3", "qwen3_moe"):
            ab = bool(d.get("attention_bias", False))
            self.qkv_bias, self.o_bias, self.mlp_bias = ab, ab, False
        else:  # llama, smollm3: attention_bias on q, k, v and o_proj
            ab = bool(d.get("attention_bias", False))
            self.qkv_bias, self.o_bias = ab, ab
            self.mlp_bias = bool(d.get("mlp_bias", False))
        if self.gemma:
            ab = bool(d.get("attention_bias", False))
            self.qkv_bias, self.o_bias, self.mlp_bias = ab, ab, False
        self.qk_norm = mt in ("qwen3", "qwen3_moe", "gemma3_text")
        # SmolLM3: no_rope_layers[i] == 1 means layer i applies RoPE (SmolLM3Config derives the
        # list from no_rope_layer_interval only when it is absent)
        self.use_rope = [True] * self.layers
        if mt == "smollm3":
            nr = d.get("no_rope_layers")
            if nr is None:
                iv = d.get("no_rope_layer_interval", 4)
                nr = [int((i + 1) % iv != 0) for i in range(self.layers)]
            self.use_rope = [bool(nr[i]) for i in range(self.layers)]
        # mixture of experts: which layers are sparse, router details
        self.moe = [False] * self.layers
        self.experts = self.top_k = self.moe_inter = 0
        self.norm_topk = False
        if mt == "qwen3_moe":
            self.experts = d.get("num_experts", 128)
            self.top_k = d.get("num_experts_per_tok", 8)
            self.moe_inter = d.get("moe_intermediate_size", 768)
            self.norm_topk = bool(d.get("norm_topk_prob", False))
            step = d.get("decoder_sparse_step", 1)
            only = d.get("mlp_only_layers") or []
            self.moe = [i not in only and self.experts > 0 and (i + 1) % step == 0
                        for i in range(self.layers)]
        elif mt == "mixtral":
            self.experts = d.get("num_local_experts", 8)
            self.top_k = d.get("num_experts_per_tok", 2)
            self.moe_inter = self.inter
            self.norm_topk = True  # MixtralSparseMoeBlock always renormalizes the top k
            self.moe = [True] * self.layers
        # sliding window, per layer (None = full causal attention)
        self.window = [None] * self.layers
        sw = d.get("sliding_window")
        if mt in ("mistral", "mixtral"):
            if mt == "mistral" and "sliding_window" not in d:
                sw = 4096  # MistralConfig's default; MixtralConfig's is None
            if sw is not None:
                self.window = [int(sw)] * self.layers
        elif mt == "gemma2":
            # Gemma2Config: layer_types, else even layers slide (sliding_window default 4096)
            sw = d.get("sliding_window", 4096)
            lt = d.get("layer_types") or ["sliding_attention" if (i + 1) % 2 else "full_attention"
                                          for i in range(self.layers)]
            self.window = [int(sw) if t == "sliding_attention" and sw else None for t in lt]
        elif mt == "gemma3_text":
            # Gemma3TextConfig: layer_types, else every sliding_window_pattern-th layer is global
            sw = d.get("sliding_window", 4096)
            pat = d.get("sliding_window_pattern", 6)
            lt = d.get("layer_types") or ["sliding_attention" if (i + 1) % pat else "full_attention"
                                          for i in range(self.layers)]
            self.window = [int(sw) if t == "sliding_attention" and sw else None for t in lt]
        elif mt == "smollm3":
            if d.get("use_sliding_window", False) and sw is not None:
                lt = d.get("layer_types")
                if lt is None:  # SmolLM3Config: the NoPE layers slide
                    lt = ["full_attention" if r else "sliding_attention" for r in self.use_rope]
                self.window = [int(sw) if t == "sliding_attention" else None for t in lt]
        elif mt in ("qwen2", "qwen3", "qwen3_moe"):
            if d.get("use_sliding_window", False) and sw is not None:
                lt = d.get("layer_types")
                if lt is not None:
                    self.window = [int(sw) if t == "sliding_attention" else None for t in lt]
                else:
                    mwl = d.get("max_window_layers", 28)
                    self.window = [int(sw) if i >= mwl else None for i in range(self.layers)]
        self.rope_scaling = d.get("rope_scaling")
        # Phi-3: partial rotary (int(head_dim * partial_rotary_factor) dims rotate), longrope
        self.rope_dim = int(self.head_dim * d.get("partial_rotary_factor", 1.0))
        self.longrope = None
        rs = self.rope_scaling
        if rs and rs.get("rope_type", rs.get("type")) in ("longrope", "su"):
            # _compute_longrope_parameters: factor from max_position_embeddings over the original
            orig = d.get("original_max_position_embeddings") or rs.get(
                "original_max_position_embeddings") or d.get("max_position_embeddings")
            factor = d.get("max_position_embeddings", 4096) / orig
            af = rs.get("attention_factor")
            if af is None:
                af = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
            self.longrope = {"orig": orig, "attn": af, "short": rs["short_factor"],
                             "long": rs["long_factor"]}
        if mt == "phi3":
            self.qkv_bias, self.o_bias, self.mlp_bias = False, False, False
            if d.get("sliding_window") is not None:  # Phi3Attention: every layer
                self.window = [int(d["sliding_window"])] * self.layers

    def inv_freq(self, dtype=torch.float64, local=False):
        """RoPE inverse frequencies after rope_scaling (modeling_rope_utils.py); local=True:
        Gemma 3's local layers (rope_local_base_freq, never scaled)."""
        dim = self.rope_dim
        base = self.local_theta if local else self.theta
        inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
        rs = None if local else self.rope_scaling
        if self.longrope and not local:
            return inv.to(dtype)  # the factors are applied per position (rope_tables)
        if rs:
            rt = rs.get("rope_type", rs.get("type", "default"))
            if rt == "default":
                pass
            elif rt == "linear":
                inv = inv / float(rs["factor"])
            elif rt == "llama3":
                inv = llama3_inv_freq(inv, rs)
            else:
                raise ValueError(f"rope_scaling type {rt!r} not supported")
        return inv.to(dtype)


def llama3_inv_freq(inv_freq, rs):
    """transformers' _compute_llama3_parameters: three bands by wavelength."""
    factor = float(rs["factor"])
    low_ff = float(rs["low_freq_factor"])
    high_ff = float(rs["high_freq_factor"])
    old_len = float(rs["original_max_position_embeddings"])
    low_wl = old_len / low_ff
    high_wl = old_len / high_ff
    wavelen = 2 * math.pi / inv_freq
    inv_l = torch.where(wavelen > low_wl, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low_ff) / (high_ff - low_ff)
    smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
    is_medium = ~(wavelen < high_wl) * ~(wavelen > low_wl)
    return torch.where(is_medium, smoothed, inv_l)


def llama3_bands(cfg):
    """Count the head's frequencies in the (high, medium, low) llama3 bands."""
    rs = cfg.rope_scaling
    dim = cfg.head_dim
    inv = 1.0 / (cfg.theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    wl = 2 * math.pi / inv
    old = float(rs["original_max_position_embeddings"])
    low_wl = old / float(rs["low_freq_factor"])
    high_wl = old / float(rs["high_freq_factor"])
    high = int((wl < high_wl).sum())
    low = int((wl > low_wl).sum())
    return high, len(wl) - high - low, low


class Model:
    def __init__(self, cfg, w, dtype):
        self.cfg, self.w, self.dtype = cfg, w, dtype
        self.inv_freq = cfg.inv_freq(dtype)
        self.inv_freq_local = cfg.inv_freq(dtype, local=True) if cfg.local_theta else None
        self.gqa_tiled = False  # ablation only: wrong GQA mapping (head j -> kv head j % kv)
        self.off = set()  # ablation only: features switched off (see forward_gemma, rope_tables)
        self.top_k_override = 0  # ablation only: route to this many experts instead


def load_model(folder, dtype=torch.float64):
    """Read config.json + safetensors; every weight upcast (exactly) then cast to `dtype`."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = Config(json.load(f))
    raw = st_read_folder(folder)
    w = {}
    for name, (dt, arr) in raw.items():
        w[name] = torch.from_numpy(to_float32(dt, arr).astype(np.float64)).to(dtype)
    if cfg.model_type == "phi3":
        split_phi3(cfg, w)
    check_shapes(cfg, w)
    return Model(cfg, w, dtype)


def split_phi3(cfg, w):
    """Phi3Attention slices qkv_proj's output [q | k | v]; Phi3MLP chunks gate_up_proj's
    output in two, gate first. Slicing the weight rows is the same computation."""
    qd, kvd, I = cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.inter
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        qkv = w.pop(p + "self_attn.qkv_proj.weight")
        if tuple(qkv.shape) != (qd + 2 * kvd, cfg.hidden):
            raise ValueError(f"{p}self_attn.qkv_proj.weight: shape {tuple(qkv.shape)}")
        w[p + "self_attn.q_proj.weight"] = qkv[:qd]
        w[p + "self_attn.k_proj.weight"] = qkv[qd:qd + kvd]
        w[p + "self_attn.v_proj.weight"] = qkv[qd + kvd:]
        gu = w.pop(p + "mlp.gate_up_proj.weight")
        if tuple(gu.shape) != (2 * I, cfg.hidden):
            raise ValueError(f"{p}mlp.gate_up_proj.weight: shape {tuple(gu.shape)}")
        w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"] = gu[:I], gu[I:]


def rope_tables(model, T, dt):
    """cos, sin [T, 1, rope_dim] for positions 0..T-1. longrope: a position takes the long
    factors when its sequence length (position + 1) exceeds the original context, as
    transformers' dynamic longrope update does when it generates that token with a KV cache
    (one forward call per token); cos and sin times the attention factor. The ablation
    "one_shot" applies transformers' rule to one forward of the whole sequence instead."""
    cfg = model.cfg
    pos = torch.arange(T, dtype=dt)
    inv = model.inv_freq[None, :].expand(T, -1)
    scale = 1.0
    lr = cfg.longrope
    if lr and "longrope" not in model.off:
        short = torch.tensor(lr["short"], dtype=torch.float64).to(dt)
        long_ = torch.tensor(lr["long"], dtype=torch.float64).to(dt)
        if "long_never" in model.off:
            use_long = torch.zeros(T, dtype=torch.bool)
        elif "one_shot" in model.off:
            use_long = torch.full((T,), T > lr["orig"], dtype=torch.bool)
        else:
            use_long = pos + 1 > lr["orig"]
        ext = torch.where(use_long[:, None], long_[None, :], short[None, :])
        inv = model.inv_freq[None, :] / ext
        if "attn_factor" not in model.off:
            scale = lr["attn"]
    freqs = pos[:, None] * inv
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * scale)[:, None, :], (emb.sin() * scale)[:, None, :]


def apply_rope_full_pairing(x, cos, sin, rot):
    """Ablation only: partial rotary done wrong, pairing dim i with i + head_dim / 2 (the
    full head's rotate-half) for the first rot / 2 frequencies."""
    half, r = x.shape[-1] // 2, rot // 2
    out = x.clone()
    c, s_ = cos[..., :r], sin[..., :r]
    x1, x2 = x[..., :r], x[..., half:half + r]
    out[..., :r] = x1 * c - x2 * s_
    out[..., half:half + r] = x2 * c + x1 * s_
    return out


def apply_rope(x, cos, sin, rot):
    """Rotate-half on the first rot dims of each head, the rest pass (Phi-3's partial rotary)."""
    if rot == x.shape[-1]:
        return x * cos + rotate_half(x) * sin
    xr, xp = x[..., :rot], x[..., rot:]
    return torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1)


def check_shapes(cfg, w):
    """Fail loudly if a tensor is missing or has the wrong shape."""
    H, D, I = cfg.hidden, cfg.head_dim, cfg.inter
    want = {"model.embed_tokens.weight": (cfg.vocab, H), "model.norm.weight": (H,)}
    if not cfg.tied:
        want["lm_head.weight"] = (cfg.vocab, H)
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        want.update({
            p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,),
            p + "self_attn.q_proj.weight": (cfg.heads * D, H),
            p + "self_attn.k_proj.weight": (cfg.kv_heads * D, H),
            p + "self_attn.v_proj.weight": (cfg.kv_heads * D, H),
            p + "self_attn.o_proj.weight": (H, cfg.heads * D)})
        if cfg.moe[i]:
            E, MI = cfg.experts, cfg.moe_inter
            base, names = moe_names(cfg, i)
            want[base + "gate.weight"] = (E, H)
            for e in range(E):
                q = f"{base}experts.{e}."
                want.update({q + names[0] + ".weight": (MI, H), q + names[1] + ".weight": (MI, H),
                             q + names[2] + ".weight": (H, MI)})
        else:
            want.update({p + "mlp.gate_proj.weight": (I, H), p + "mlp.up_proj.weight": (I, H),
                         p + "mlp.down_proj.weight": (H, I)})
        if cfg.qkv_bias:
            want.update({p + "self_attn.q_proj.bias": (cfg.heads * D,),
                         p + "self_attn.k_proj.bias": (cfg.kv_heads * D,),
                         p + "self_attn.v_proj.bias": (cfg.kv_heads * D,)})
        if cfg.o_bias:
            want[p + "self_attn.o_proj.bias"] = (H,)
        if cfg.mlp_bias:
            want.update({p + "mlp.gate_proj.bias": (I,), p + "mlp.up_proj.bias": (I,),
                         p + "mlp.down_proj.bias": (H,)})
        if cfg.qk_norm:
            want.update({p + "self_attn.q_norm.weight": (D,), p + "self_attn.k_norm.weight": (D,)})
        if cfg.gemma:
            want.update({p + "pre_feedforward_layernorm.weight": (H,),
                         p + "post_feedforward_layernorm.weight": (H,)})
    for name, shape in want.items():
        if name not in w:
            raise ValueError(f"missing tensor {name}")
        if tuple(w[name].shape) != shape:
            raise ValueError(f"tensor {name}: shape {tuple(w[name].shape)}, expected {shape}")


def moe_names(cfg, i):
    """(prefix, (gate, up, down) names) of layer i's experts."""
    if cfg.model_type == "mixtral":
        return f"model.layers.{i}.block_sparse_moe.", ("w1", "w3", "w2")
    return f"model.layers.{i}.mlp.", ("gate_proj", "up_proj", "down_proj")


def moe_mlp(model, i, h):
    """Qwen3MoeSparseMoeBlock / MixtralSparseMoeBlock: softmax over all experts' router
    logits, the top k, renormalized when norm_topk_prob (always for Mixtral); each expert
    a SwiGLU MLP; outputs weighted and added in increasing expert id (index_add_ per expert)."""
    cfg, w = model.cfg, model.w
    base, names = moe_names(cfg, i)
    logits = h @ w[base + "gate.weight"].T
    probs = torch.softmax(logits, dim=-1)
    k = model.top_k_override or cfg.top_k
    top, sel = torch.topk(probs, k, dim=-1)
    if cfg.norm_topk:
        top = top / top.sum(dim=-1, keepdim=True)
    out = torch.zeros_like(h)
    for e in range(cfg.experts):
        tok, slot = torch.where(sel == e)
        if len(tok) == 0:
            continue
        q = f"{base}experts.{e}."
        x = h[tok]
        y = linear(torch.nn.functional.silu(linear(x, w[q + names[0] + ".weight"])) *
                   linear(x, w[q + names[1] + ".weight"]), w[q + names[2] + ".weight"])
        out.index_add_(0, tok, y * top[tok, slot, None])
    return out


def rms_norm(x, weight, eps):
    """HF RMSNorm: normalise over the last dim, then weight * x."""
    var = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(var + eps))


def linear(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def gemma_norm(x, weight, eps):
    """Gemma2RMSNorm / Gemma3RMSNorm: normalise, then scale by (1 + weight)."""
    var = x.pow(2).mean(-1, keepdim=True)
    return (x * torch.rsqrt(var + eps)) * (1.0 + weight)


def gelu_tanh(x):
    """gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def softcap(x, cap):
    return torch.tanh(x / cap) * cap


def forward_gemma(model, ids):
    """Gemma 2 / Gemma 3 text (modeling_gemma2.py, modeling_gemma3.py): embedding times
    sqrt(hidden) (the factor rounded to the model dtype, as HF's normalizer tensor is), (1 + w)
    RMSNorms, pre- and post-norms around attention and MLP, Gemma 3's q/k norms, attention
    scale query_pre_attn_scalar^-0.5 with optional tanh soft-capping of the scores before the
    mask, local layers with a sliding window (Gemma 3: their own RoPE base), GeGLU (gelu tanh),
    final norm, tied lm_head, optional final logit soft-capping."""
    cfg, w, dt, off = model.cfg, model.w, model.dtype, model.off
    T = len(ids)
    D, nh, nkv = cfg.head_dim, cfg.heads, cfg.kv_heads
    x = w["model.embed_tokens.weight"][torch.tensor(ids, dtype=torch.long)]
    if "embed_scale" not in off:
        ts = cfg.raw.get("torch_dtype") or cfg.raw.get("dtype") or "float32"
        tdt = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(ts, torch.float32)
        x = x * float(torch.tensor(cfg.hidden ** 0.5, dtype=tdt))
    norm = rms_norm if "plus_one" in off else gemma_norm
    pos = torch.arange(T, dtype=dt)

    def cos_sin(inv):
        freqs = pos[:, None] * inv[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[:, None, :], emb.sin()[:, None, :]
    glob = cos_sin(model.inv_freq)
    loc = cos_sin(model.inv_freq_local) if model.inv_freq_local is not None else glob
    qp = torch.arange(T)[:, None]
    kp = torch.arange(T)[None, :]
    causal = kp <= qp
    scale = (cfg.attn_scalar if "attn_scalar" not in off else D) ** -0.5
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        g = w.get
        h = norm(x, w[p + "input_layernorm.weight"], cfg.eps)
        q = linear(h, w[p + "self_attn.q_proj.weight"], g(p + "self_attn.q_proj.bias")).view(T, nh, D)
        k = linear(h, w[p + "self_attn.k_proj.weight"], g(p + "self_attn.k_proj.bias")).view(T, nkv, D)
        v = linear(h, w[p + "self_attn.v_proj.weight"], g(p + "self_attn.v_proj.bias")).view(T, nkv, D)
        if cfg.qk_norm and "qk_norm" not in off:
            q = norm(q, w[p + "self_attn.q_norm.weight"], cfg.eps)
            k = norm(k, w[p + "self_attn.k_norm.weight"], cfg.eps)
        cos, sin = loc if cfg.window[i] is not None and "local_rope" not in off else glob
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = nh // nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        scores = (q @ k.transpose(1, 2)) * scale
        if cfg.attn_softcap and "attn_softcap" not in off:
            scores = softcap(scores, cfg.attn_softcap)
        allowed = causal
        if cfg.window[i] is not None:
            allowed = allowed & ((qp - kp) < cfg.window[i])
        scores = scores.masked_fill(~allowed[None], float("-inf"))
        att = (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(T, nh * D)
        a = linear(att, w[p + "self_attn.o_proj.weight"], g(p + "self_attn.o_proj.bias"))
        if "post_norms" not in off:
            a = norm(a, w[p + "post_attention_layernorm.weight"], cfg.eps)
        x = x + a
        h = norm(x, w[p + "pre_feedforward_layernorm.weight"], cfg.eps)
        act = torch.nn.functional.silu if "gelu" in off else gelu_tanh
        y = linear(act(linear(h, w[p + "mlp.gate_proj.weight"])) * linear(h, w[p + "mlp.up_proj.weight"]),
                   w[p + "mlp.down_proj.weight"])
        if "post_norms" not in off:
            y = norm(y, w[p + "post_feedforward_layernorm.weight"], cfg.eps)
        x = x + y
    x = norm(x, w["model.norm.weight"], cfg.eps)
    head = w["model.embed_tokens.weight"] if cfg.tied else w["lm_head.weight"]
    logits = x @ head.T
    if cfg.final_softcap and "final_softcap" not in off:
        logits = softcap(logits, cfg.final_softcap)
    return logits


def forward(model, ids):
    """Logits [T, vocab] for token ids at positions 0..T-1 of one sequence."""
    if model.cfg.gemma:
        return forward_gemma(model, ids)
    cfg, w, dt = model.cfg, model.w, model.dtype
    T = len(ids)
    D, nh, nkv = cfg.head_dim, cfg.heads, cfg.kv_heads
    x = w["model.embed_tokens.weight"][torch.tensor(ids, dtype=torch.long)]
    cos, sin = rope_tables(model, T, dt)                    # [T, 1, rope_dim]
    rot = cfg.rope_dim
    rope = apply_rope if "rot_pairing" not in model.off else apply_rope_full_pairing
    qp = torch.arange(T)[:, None]
    kp = torch.arange(T)[None, :]
    causal = kp <= qp
    scale = D ** -0.5
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        g = w.get
        h = rms_norm(x, w[p + "input_layernorm.weight"], cfg.eps)
        q = linear(h, w[p + "self_attn.q_proj.weight"], g(p + "self_attn.q_proj.bias"))
        k = linear(h, w[p + "self_attn.k_proj.weight"], g(p + "self_attn.k_proj.bias"))
        v = linear(h, w[p + "self_attn.v_proj.weight"], g(p + "self_attn.v_proj.bias"))
        q = q.view(T, nh, D)
        k = k.view(T, nkv, D)
        v = v.view(T, nkv, D)
        if cfg.qk_norm:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], cfg.eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], cfg.eps)
        if cfg.use_rope[i]:
            q = rope(q, cos, sin, rot)
            k = rope(k, cos, sin, rot)
        rep = nh // nkv
        if model.gqa_tiled:
            k, v = k.repeat(1, rep, 1), v.repeat(1, rep, 1)
        else:
            k = k.repeat_interleave(rep, dim=1)   # repeat_kv: head j uses kv head j // rep
            v = v.repeat_interleave(rep, dim=1)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, T, D]
        scores = (q @ k.transpose(1, 2)) * scale
        allowed = causal
        if cfg.window[i] is not None:
            allowed = allowed & ((qp - kp) < cfg.window[i])
        scores = scores.masked_fill(~allowed[None], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        att = (probs @ v).transpose(0, 1).reshape(T, nh * D)
        x = x + linear(att, w[p + "self_attn.o_proj.weight"], g(p + "self_attn.o_proj.bias"))
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], cfg.eps)
        if cfg.moe[i]:
            x = x + moe_mlp(model, i, h)
            continue
        gate = linear(h, w[p + "mlp.gate_proj.weight"], g(p + "mlp.gate_proj.bias"))
        up = linear(h, w[p + "mlp.up_proj.weight"], g(p + "mlp.up_proj.bias"))
        x = x + linear(torch.nn.functional.silu(gate) * up, w[p + "mlp.down_proj.weight"],
                       g(p + "mlp.down_proj.bias"))
    x = rms_norm(x, w["model.norm.weight"], cfg.eps)
    head = w["model.embed_tokens.weight"] if cfg.tied else w["lm_head.weight"]
    return x @ head.T


def top2_rel_margin(row):
    """(top1 - top2) / max(|top1|, 1e-9) of one logits row."""
    t = torch.topk(row.to(torch.float64), 2).values
    return float((t[0] - t[1]) / max(abs(float(t[0])), 1e-9))


def greedy(model, prompt_ids, n):
    """n greedy ids after the prompt; returns (ids, their rel. margins, logits [T+n-1, V]).
    Recomputes the whole sequence each step (no KV cache: simplest to trust)."""
    seq = list(prompt_ids)
    out, margins = [], []
    logits = None
    for _ in range(n):
        logits = forward(model, seq)
        last = logits[-1]
        nxt = int(torch.argmax(last))
        out.append(nxt)
        margins.append(top2_rel_margin(last))
        seq.append(nxt)
    return out, margins, logits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--ids", required=True, help="comma-separated prompt ids (BOS included)")
    ap.add_argument("--greedy", type=int, default=16)
    ap.add_argument("--f32", action="store_true", help="compute in float32")
    ap.add_argument("--expect", help="a JSON file with greedy_ids to compare against")
    a = ap.parse_args()
    torch.set_num_threads(1)
    m = load_model(a.model, torch.float32 if a.f32 else torch.float64)
    ids = [int(t) for t in a.ids.split(",")]
    lg = forward(m, ids)
    top = torch.topk(lg[-1], 5)
    print("last prompt position top5:", [(int(i), float(v)) for v, i in zip(top.values, top.indices)])
    gen, margins, _ = greedy(m, ids, a.greedy)
    print("greedy:", ",".join(map(str, gen)))
    print("min rel margin: %.3g" % min(margins))
    if a.expect:
        with open(a.expect) as f:
            exp = json.load(f)["greedy_ids"]
        ok = exp[:len(gen)] == gen
        print("matches expected:", ok)
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
