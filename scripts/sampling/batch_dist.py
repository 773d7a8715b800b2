#!/usr/bin/python3
"""First-token distributions of stories260K after HF's logits warpers, for the chi-square
test of `forge batch` sampling (tests/cli/batch_sampling.test.sh).

The logits come from the float64 reference forward (scripts/ref/hf_forward.py, written
after transformers' modeling code, not Forge's); the warpers follow transformers'
generation/logits_process.py in the order generate() applies them: TemperatureLogitsWarper,
TopKLogitsWarper, TopPLogitsWarper, MinPLogitsWarper (min_tokens_to_keep 1), then softmax.
Each token's probability is filed under the text Forge streams for it after the prompt
(SentencePiece pieces with U+2581 as a space; byte tokens: ASCII as themselves, others
U+FFFD as an incomplete character; special tokens as nothing), since the test reads texts.

Usage: /usr/bin/python3 scripts/sampling/batch_dist.py > tests/fixtures/sampling/batch_dist.json
"""
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "scripts", "ref"))
import hf_forward  # noqa: E402

MODEL = os.path.join(ROOT, "tests", "fixtures", "stories260K")
PROMPT = "She saw a"
PROMPT_IDS = [1, 338, 394, 261]  # the ids of PROMPT with BOS (HF tokenizers and forge tokenize agree)

CONFIGS = [
    {"temperature": 1.0},
    {"temperature": 0.7, "top_k": 5},
    {"temperature": 1.0, "top_p": 0.8},
    {"temperature": 1.3, "min_p": 0.1},
    {"temperature": 0.9, "top_k": 20, "top_p": 0.9, "min_p": 0.05},
]


def warp(logits, c):
    """transformers' warpers on a float64 logit vector; -inf marks removed tokens."""
    x = logits / c.get("temperature", 1.0)
    k = c.get("top_k", 0)
    if k > 0:  # TopKLogitsWarper: remove scores < the k-th largest
        kth = torch.topk(x, min(k, x.numel())).values[-1]
        x = x.masked_fill(x < kth, -math.inf)
    p = c.get("top_p", 1.0)
    if p < 1.0:  # TopPLogitsWarper: ascending sort, remove cumprobs <= 1 - top_p, keep the last
        sorted_x, idx = torch.sort(x, descending=False)
        cum = sorted_x.softmax(dim=-1).cumsum(dim=-1)
        remove = cum <= (1 - p)
        remove[-1] = False
        x = x.masked_fill(remove.scatter(0, idx, remove), -math.inf)
    mp = c.get("min_p", 0.0)
    if mp > 0:  # MinPLogitsWarper: remove probs < min_p * max prob (keep at least one)
        probs = x.softmax(dim=-1)
        remove = probs < mp * probs.max()
        remove[torch.argmax(probs)] = False
        x = x.masked_fill(remove, -math.inf)
    return x.softmax(dim=-1)


def token_texts():
    tj = json.load(open(os.path.join(MODEL, "tokenizer.json")))
    vocab = tj["model"]["vocab"]
    special = {a["id"] for a in tj["added_tokens"] if a.get("special")}
    texts = {}
    for piece, i in vocab.items():
        if i in special:
            texts[i] = ""
        elif piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
            b = int(piece[3:5], 16)
            texts[i] = chr(b) if b < 0x80 else "\ufffd"
        else:
            texts[i] = piece.replace("\u2581", " ")
    return texts


def main():
    model = hf_forward.load_model(MODEL, torch.float64)
    logits = hf_forward.forward(model, PROMPT_IDS)[-1]
    texts = token_texts()
    out = {"prompt": PROMPT, "prompt_ids": PROMPT_IDS, "configs": []}
    for c in CONFIGS:
        probs = warp(logits.clone(), c)
        by_text = {}
        for i, pr in enumerate(probs.tolist()):
            if pr > 0:
                by_text[texts[i]] = by_text.get(texts[i], 0.0) + pr
        # how close a filter boundary is (a top-p cumulative sum near 1 - top_p, a min-p
        # ratio near min_p) would make f32-vs-f64 differences matter: report the margins
        x = logits / c.get("temperature", 1.0)
        sp = torch.sort(x.softmax(-1), descending=True).values
        margin = {}
        if c.get("top_p", 1.0) < 1.0:
            cum = sp.cumsum(-1)
            margin["top_p"] = float((cum - c["top_p"]).abs().min())
        if c.get("min_p", 0) > 0:
            margin["min_p"] = float((sp / sp[0] - c["min_p"]).abs().min())
        out["configs"].append({"params": c, "probs": by_text, "boundary_margin": margin})
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
