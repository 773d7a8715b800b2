#!/usr/bin/env python3
"""Makes a sharded copy of an HF model folder, for the stand-in Hub.

usage: make_sharded.py SRC DST

DST gets SRC's files except model.safetensors, which is split into model-00001-of-00002 and
model-00002-of-00002.safetensors (valid safetensors files: the tensors in order, split where
the bytes reach half) with model.safetensors.index.json naming them, plus two decoys that a
downloader must NOT fetch: consolidated.safetensors (a copy of the single file, as Mistral repos
ship) and pytorch_model.bin (arbitrary bytes)."""
import hashlib
import json
import os
import shutil
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen])
    meta = header.pop("__metadata__", None)
    body = data[8 + hlen:]
    tensors = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return meta, [(name, info, body[info["data_offsets"][0]:info["data_offsets"][1]]) for name, info in tensors]


def write_safetensors(path, meta, tensors):
    header, off, blobs = {}, 0, []
    if meta is not None:
        header["__metadata__"] = meta
    for name, info, raw in tensors:
        header[name] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # keep the data 8-byte aligned, as the safetensors writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return off


def main():
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(src):
        if name != "model.safetensors" and name != "expected-greedy.json":
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
    meta, tensors = read_safetensors(os.path.join(src, "model.safetensors"))
    total = sum(len(t[2]) for t in tensors)
    first, acc = [], 0
    for t in tensors:
        if acc >= total // 2 and first:
            break
        first.append(t)
        acc += len(t[2])
    parts = [first, tensors[len(first):]]
    names = ["model-%05d-of-%05d.safetensors" % (i + 1, len(parts)) for i in range(len(parts))]
    weight_map = {}
    for name, part in zip(names, parts):
        write_safetensors(os.path.join(dst, name), {"format": "pt"}, part)
        for t in part:
            weight_map[t[0]] = name
    with open(os.path.join(dst, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    shutil.copyfile(os.path.join(src, "model.safetensors"), os.path.join(dst, "consolidated.safetensors"))
    with open(os.path.join(dst, "pytorch_model.bin"), "wb") as f:  # arbitrary but fixed bytes
        f.write(b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(128)))


if __name__ == "__main__":
    main()
