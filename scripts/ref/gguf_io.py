#!/usr/bin/python3
"""Minimal GGUF v3 reader/writer (numpy only); no `gguf` package is reachable here.

Layout (little-endian): magic "GGUF", u32 version (3), u64 tensor count, u64 metadata
count; metadata: (string key, u32 value type, value)*; tensor infos: (string name, u32
n_dims, u64 dims[n_dims] (innermost first), u32 ggml type, u64 offset)*; padding to
`general.alignment` (default 32); tensor data, each tensor at its offset (aligned).
Strings are u64 length + bytes. Arrays are u32 element type + u64 count + elements.

Run as a script to dump a file's metadata and tensors:
  /usr/bin/python3 scripts/ref/gguf_io.py FILE.gguf [--all]   (--all: print long arrays too)
"""
import struct
import sys

import numpy as np

# metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
           BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
# ggml tensor types we use
GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30
GGML_NAMES = {0: "F32", 1: "F16", 30: "BF16"}
GGML_NP = {0: np.float32, 1: np.float16, 30: np.uint16}


class Reader:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.buf = f.read()
        self.pos = 0
        if self.buf[:4] != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        self.pos = 4
        self.version = self._u("<I")
        n_t = self._u("<Q")
        n_kv = self._u("<Q")
        self.meta = {}
        self.meta_types = {}
        for _ in range(n_kv):
            k = self._str()
            t = self._u("<I")
            self.meta_types[k] = t
            self.meta[k] = self._val(t)
        self.tensors = []
        for _ in range(n_t):
            name = self._str()
            nd = self._u("<I")
            dims = [self._u("<Q") for _ in range(nd)]
            typ = self._u("<I")
            off = self._u("<Q")
            self.tensors.append({"name": name, "dims": dims, "type": typ, "offset": off})
        align = self.meta.get("general.alignment", 32)
        self.data_start = (self.pos + align - 1) // align * align

    def _u(self, fmt):
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def _str(self):
        n = self._u("<Q")
        s = self.buf[self.pos:self.pos + n].decode("utf-8", errors="replace")
        self.pos += n
        return s

    def _val(self, t):
        if t in _SCALAR:
            return self._u(_SCALAR[t])
        if t == STR:
            return self._str()
        if t == ARR:
            et = self._u("<I")
            n = self._u("<Q")
            if et in _SCALAR:
                fmt = _SCALAR[et]
                sz = struct.calcsize(fmt)
                arr = list(np.frombuffer(self.buf, dtype=np.dtype(fmt), count=n, offset=self.pos))
                self.pos += sz * n
                return ("arr", et, [x.item() for x in arr])
            return ("arr", et, [self._val(et) for _ in range(n)])
        raise ValueError(f"unknown metadata type {t}")

    def tensor(self, name):
        """A tensor as a numpy array shaped like torch (outermost dim first)."""
        for t in self.tensors:
            if t["name"] == name:
                n = int(np.prod(t["dims"]))
                a = np.frombuffer(self.buf, dtype=GGML_NP[t["type"]], count=n,
                                  offset=self.data_start + t["offset"])
                return a.reshape(list(reversed(t["dims"])))
        raise KeyError(name)


class Writer:
    """Collect metadata and tensors, then write(path)."""

    def __init__(self, alignment=32):
        self.kv = []          # (key, type, value[, elem type])
        self.tensors = []     # (name, ggml type, numpy array)
        self.alignment = alignment

    def add(self, key, vtype, value, elem_type=None):
        self.kv.append((key, vtype, value, elem_type))

    def add_tensor(self, name, ggml_type, arr):
        self.tensors.append((name, ggml_type, np.ascontiguousarray(arr, dtype=GGML_NP[ggml_type])))

    @staticmethod
    def _s(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _v(self, t, v, et=None):
        if t in _SCALAR:
            return struct.pack(_SCALAR[t], v)
        if t == STR:
            return self._s(v)
        if t == ARR:
            out = [struct.pack("<IQ", et, len(v))]
            if et in _SCALAR:
                out.append(np.asarray(v, dtype=np.dtype(_SCALAR[et])).tobytes())
            else:
                out.extend(self._v(et, x) for x in v)
            return b"".join(out)
        raise ValueError(t)

    def write(self, path):
        al = self.alignment
        head = [b"GGUF", struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))]
        for k, t, v, et in self.kv:
            head.append(self._s(k) + struct.pack("<I", t) + self._v(t, v, et))
        off = 0
        offsets = []
        for name, typ, arr in self.tensors:
            offsets.append(off)
            dims = list(reversed(arr.shape))
            head.append(self._s(name) + struct.pack("<I", len(dims)) +
                        b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", typ, off))
            off += (arr.nbytes + al - 1) // al * al
        h = b"".join(head)
        with open(path, "wb") as f:
            f.write(h)
            f.write(b"\0" * ((al - len(h) % al) % al))
            for (name, typ, arr), o in zip(self.tensors, offsets):
                f.write(arr.tobytes())
                f.write(b"\0" * ((al - arr.nbytes % al) % al))


def _short(v, full):
    if isinstance(v, tuple) and v[0] == "arr":
        items = v[2]
        if full or len(items) <= 8:
            return f"[{len(items)}] {items}"
        return f"[{len(items)}] {items[:5]} ..."
    return repr(v)


if __name__ == "__main__":
    full = "--all" in sys.argv
    for p in [a for a in sys.argv[1:] if not a.startswith("--")]:
        r = Reader(p)
        print(f"{p}: GGUF v{r.version}, {len(r.meta)} keys, {len(r.tensors)} tensors, data at {r.data_start}")
        for k, v in r.meta.items():
            print(f"  {k} (type {r.meta_types[k]}) = {_short(v, full)}")
        for t in r.tensors:
            print(f"  {t['name']:32s} {GGML_NAMES.get(t['type'], t['type'])} {t['dims']} @{t['offset']}")
