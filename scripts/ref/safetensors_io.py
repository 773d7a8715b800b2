#!/usr/bin/python3
"""Minimal safetensors reader/writer (numpy only), for Forge's reference scripts.

Format: 8-byte little-endian header length N, then N bytes of JSON
{name: {"dtype": "F32"|"F16"|"BF16", "shape": [...], "data_offsets": [begin, end]},
 "__metadata__": {...}} and then the data section; offsets are relative to its start.

No `safetensors` package is installed on these machines (no PyPI), hence this file.
BF16 has no numpy dtype: it is carried as uint16 bit patterns; `bf16_to_f32` widens
exactly, `f32_to_bf16` rounds to nearest even (as torch's .to(torch.bfloat16) does).

Used as a module:
    from safetensors_io import st_read, st_write, st_read_folder
Run as a script it lists a file's tensors:
    /usr/bin/python3 scripts/ref/safetensors_io.py model.safetensors
"""
import json
import os
import struct
import sys

import numpy as np

NP_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def bf16_to_f32(u16):
    """Widen BF16 bit patterns (uint16 array) to float32 exactly."""
    return (np.asarray(u16, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x):
    """Round a float32 array to BF16 bit patterns (uint16), round-to-nearest-even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((u >> 16) & 1) + np.uint32(0x7FFF)
    out = ((u + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = 0x7FC0
    return out


def st_header(path):
    """Return (header dict without __metadata__, metadata dict, data start offset)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n).decode("utf-8"))
    meta = hdr.pop("__metadata__", {}) or {}
    return hdr, meta, 8 + n


def st_read(path):
    """Read every tensor of one file: {name: (dtype string, numpy array in its raw dtype)}."""
    hdr, _, start = st_header(path)
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in hdr.items():
        dt = info["dtype"]
        if dt not in NP_DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        b, e = info["data_offsets"]
        buf = np.array(raw[start + b:start + e])  # copy: the data may be unaligned
        arr = buf.view(NP_DTYPES[dt]).reshape(info["shape"])
        out[name] = (dt, arr)
    return out


def st_read_folder(folder):
    """Read model.safetensors or the shards named by model.safetensors.index.json."""
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        return st_read(single)
    index = os.path.join(folder, "model.safetensors.index.json")
    with open(index) as f:
        wm = json.load(f)["weight_map"]
    out = {}
    for shard in sorted(set(wm.values())):
        out.update(st_read(os.path.join(folder, shard)))
    return out


def to_float32(dt, arr):
    """A tensor's values as float32 (BF16 and F16 widen exactly)."""
    if dt == "BF16":
        return bf16_to_f32(arr)
    return arr.astype(np.float32)


def st_write(path, tensors, metadata=None):
    """Write {name: (dtype string, numpy array)} like the official writer: tensors sorted by
    (item size descending, name), header padded with spaces to a multiple of 8 bytes."""
    itemsize = {"F32": 4, "F16": 2, "BF16": 2}
    names = sorted(tensors, key=lambda n: (-itemsize[tensors[n][0]], n))
    hdr = {}
    if metadata:
        hdr["__metadata__"] = metadata
    off = 0
    blobs = []
    for n in names:
        dt, arr = tensors[n]
        arr = np.ascontiguousarray(arr, dtype=NP_DTYPES[dt])
        nb = arr.nbytes
        hdr[n] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + nb]}
        off += nb
        blobs.append(arr)
    h = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in blobs:
            f.write(a.tobytes())


if __name__ == "__main__":
    for p in sys.argv[1:]:
        hdr, meta, start = st_header(p)
        print(f"{p}: {len(hdr)} tensors, data at {start}, metadata {meta}")
        for name, info in hdr.items():
            print(f"  {name:50s} {info['dtype']:5s} {info['shape']} {info['data_offsets']}")
