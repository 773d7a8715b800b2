#!/usr/bin/python3
"""Makes the GGUF test fixtures with llama.cpp's own gguf-py (the independent reference):

  tests/fixtures/quant/<TYPE>.blocks  random blocks of each weight type (scales kept finite)
  tests/fixtures/quant/<TYPE>.f32     their values, dequantized by gguf-py's quants.py
  tests/fixtures/quant/make_input.f32, make_{Q8_0,Q4_0}.blocks  gguf-py's quantization of rows
  tests/fuzz/corpus/fuzz_gguf/tiny.gguf  a small llama GGUF (GGUFWriter) seeding the fuzzer

Run: PYTHONPATH=/work/llama.cpp/gguf-py /usr/bin/python3 scripts/gguf/make_fixtures.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.environ.get("GGUF_PY", "/work/llama.cpp/gguf-py"))
import gguf  # noqa: E402
from gguf import quants  # noqa: E402
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"]
# byte offsets of the f16 scale fields of each block
F16_FIELDS = {"Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2],
              "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}


def random_blocks(name, n_blocks, rng):
    qt = T[name]
    _, bsize = GGML_QUANT_SIZES[qt]
    b = rng.integers(0, 256, size=(n_blocks, bsize), dtype=np.uint8)
    for off in F16_FIELDS[name]:
        v = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        v[0] = 0.0                      # a zero scale
        v[1] = np.float16(6.1e-6)       # a subnormal
        v[2] = -abs(v[2])               # a negative scale
        v[3] = np.float16(60000.0)      # a large one
        b[:, off:off + 2] = v.view(np.uint8).reshape(n_blocks, 2)
    return b


def main():
    rng = np.random.default_rng(14)
    out = os.path.join(ROOT, "tests", "fixtures", "quant")
    os.makedirs(out, exist_ok=True)
    for name in TYPES:
        qt = T[name]
        bs, _ = GGML_QUANT_SIZES[qt]
        n_blocks = 2048 // bs + 4
        blocks = random_blocks(name, n_blocks, rng)
        vals = quants.dequantize(blocks.reshape(-1), qt).astype(np.float32)
        assert vals.size == n_blocks * bs
        blocks.tofile(os.path.join(out, f"{name}.blocks"))
        vals.tofile(os.path.join(out, f"{name}.f32"))
        print(f"{name}: {n_blocks} blocks, {vals.size} values")

    # quantizers (--quantize on load): gguf-py's Q8_0 / Q4_0 quantization of random rows
    x = (rng.standard_normal(4096) * np.exp(rng.standard_normal(4096))).astype(np.float32)
    x[:32] = 0                        # a zero block
    x[32:64] = np.float32(1.5)        # a constant block
    x.tofile(os.path.join(out, "make_input.f32"))
    for name in ["Q8_0", "Q4_0"]:
        quants.quantize(x.reshape(1, -1), T[name]).tofile(os.path.join(out, f"make_{name}.blocks"))
    print("quantizer goldens: 4096 values")

    # the fuzzer's seed: a small llama GGUF with a tokenizer and mixed tensor types
    path = os.path.join(ROOT, "tests", "fuzz", "corpus", "fuzz_gguf", "tiny.gguf")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    w = gguf.GGUFWriter(path, "llama")
    H, I, V = 32, 64, 16
    w.add_context_length(64)
    w.add_embedding_length(H)
    w.add_feed_forward_length(I)
    w.add_block_count(1)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"t{i}".encode() for i in range(V)])
    w.add_token_scores([float(-i) for i in range(V)])
    w.add_token_types([1] * V)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    def f32(shape):
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    def q(arr, name):
        qt = T[name]
        return quants.quantize(arr, qt), qt

    w.add_tensor("token_embd.weight", f32((V, H)))
    w.add_tensor("output_norm.weight", np.ones(H, np.float32))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(H, np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(H, np.float32))
    for tname, shape, ty in [("attn_q", (H, H), "Q8_0"), ("attn_k", (H // 2, H), "Q4_0"),
                             ("attn_v", (H // 2, H), "Q5_1"), ("attn_output", (H, H), "Q4_1")]:
        data, qt = q(f32(shape), ty)
        w.add_tensor(f"blk.0.{tname}.weight", data, raw_dtype=qt)
    w.add_tensor("blk.0.ffn_gate.weight", f32((I, H)).astype(np.float16))
    w.add_tensor("blk.0.ffn_up.weight", f32((I, H)))
    data, qt = q(f32((H, I)), "Q8_0")
    w.add_tensor("blk.0.ffn_down.weight", data, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
