#!/usr/bin/python3
"""Goldens for the GGUF tokenizer: llama.cpp's llama-tokenize (BOS/EOS as the file says,
special tokens parsed) on every test string, for each GGUF in tests/fixtures/gguf-vocab/
and the stories260K GGUF. Writes tests/fixtures/gguf-vocab/golden.json:
  {"strings": [...], "ids": {"<file>": [[ids of string 0], ...]}}
The strings: llama.cpp's tokenizer test vectors (tests/fixtures/tokenizers/vectors, from
llama.cpp's repository) plus chat-like strings with special tokens.
Run: /usr/bin/python3 scripts/gguf/make_tok_goldens.py  (needs llama.cpp built; LLAMA=bin dir)
"""
import json
import os
import subprocess
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
LLAMA = os.environ.get("LLAMA", "/work/llama.cpp/build/bin")
FILES = ["tests/fixtures/gguf-vocab/ggml-vocab-llama-spm.gguf", "tests/fixtures/gguf-vocab/ggml-vocab-qwen2.gguf",
         "tests/fixtures/gguf-vocab/ggml-vocab-phi-3.gguf",
         "tests/fixtures/stories260K-gguf/stories260K.f32.gguf"]


def main():
    inp = open(os.path.join(ROOT, "tests/fixtures/tokenizers/vectors/ggml-vocab-qwen2.gguf.inp"), encoding="utf-8").read()
    strings = [s for s in inp.split("\n__ggml_vocab_test__\n") if s]
    strings += ["<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n", "<s>[INST] Hi [/INST]</s>",
                "Once upon a time, there was a little girl named Lily.", "  leading spaces and trailing  ",
                "line\n\nbreaks\r\n\ttabs", "ünïcödé 日本語 🙂 العربية", "<|user|>\nHi<|end|>\n<|assistant|>\n"]
    out = {"strings": strings, "ids": {}}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "p.txt")
        for f in FILES:
            ids = []
            for s in strings:
                with open(path, "w", encoding="utf-8", newline="") as fh:
                    fh.write(s)
                r = subprocess.run([os.path.join(LLAMA, "llama-tokenize"), "-m", os.path.join(ROOT, f), "-f", path,
                                    "--ids", "--log-disable"], capture_output=True, text=True, check=True)
                ids.append(json.loads(r.stdout.strip().splitlines()[-1]))
            out["ids"][os.path.basename(f)] = ids
            print(f, len(ids), "strings")
    with open(os.path.join(ROOT, "tests/fixtures/gguf-vocab/golden.json"), "w", encoding="utf-8") as fh:
        json.dump(out, fh, ensure_ascii=False)


if __name__ == "__main__":
    main()
