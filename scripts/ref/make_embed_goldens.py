#!/usr/bin/env python3
"""Embedding goldens: for each parity model (and stories260K), the float64 reference
forward's final-norm hidden state of the last prompt token, L2-normalized (vLLM's default
pooling for decoder models: LAST + normalize). Written to tests/fixtures/embeddings.json.

The hidden state is taken from scripts/ref/hf_forward.py's own forward, unchanged, by
replacing the output head with an identity matrix: logits = x @ I^T = x, the final-norm
hidden state. Run: /usr/bin/python3 scripts/ref/make_embed_goldens.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_forward  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
PARITY = os.path.join(ROOT, "tests", "fixtures", "parity")


def hidden_last(model, ids):
    cfg, w = model.cfg, dict(model.w)
    H = w["model.embed_tokens.weight"].shape[1]
    w["lm_head.weight"] = torch.eye(H, dtype=model.dtype)
    tied = cfg.tied
    cfg.tied = False
    saved = model.w
    model.w = w
    try:
        x = hf_forward.forward(model, ids)[-1]
    finally:
        model.w = saved
        cfg.tied = tied
    return x / torch.linalg.norm(x)


def main():
    out = {"what": __doc__.split("\n")[0], "models": []}
    folders = sorted(d for d in os.listdir(PARITY) if os.path.isdir(os.path.join(PARITY, d)))
    items = [(os.path.join("tests", "fixtures", "parity", d), os.path.join(PARITY, d)) for d in folders]
    items.append((os.path.join("tests", "fixtures", "stories260K"), os.path.join(ROOT, "tests", "fixtures", "stories260K")))
    for rel, path in items:
        model = hf_forward.load_model(path)
        gpath = os.path.join(path, "golden.json")
        if os.path.exists(gpath):
            with open(gpath) as f:
                prompts = [s["prompt_ids"] for s in json.load(f)["sequences"]]
        else:  # stories260K: "Once upon a time" and two more
            prompts = [[1, 403, 407, 261, 378], [1, 403, 407, 261, 378, 30, 40, 50, 60, 70, 80, 90], [1, 300]]
        embs = [[float(v) for v in hidden_last(model, p)] for p in prompts]
        out["models"].append({"model": rel, "prompts": prompts, "embeddings": embs})
        print(rel, len(prompts), "prompts, dim", len(embs[0]))
    with open(os.path.join(ROOT, "tests", "fixtures", "embeddings.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
