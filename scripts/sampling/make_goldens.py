#!/usr/bin/env python3
"""Reference for Forge's logits processors and truncation samplers, written from the
formulas (HF's RepetitionPenaltyLogitsProcessor, OpenAI/vLLM presence and frequency
penalties, HF's TemperatureLogitsWarper, top-k, top-p as HF's TopPLogitsWarper, min-p),
independently of the C code. Writes tests/fixtures/sampling/goldens.json.

Run: /usr/bin/python3 scripts/sampling/make_goldens.py
Order: logit_bias (added to raw logits) -> repetition penalty (over prompt + generated ids,
each distinct id once: positive logits divided, negative multiplied) -> presence/frequency
(over generated ids: l - count*freq - (count > 0)*pres) -> temperature (divide) -> top-k ->
top-p -> min-p. All processor arithmetic in float32 as the engine does it."""
import json, math, random
import numpy as np

f32 = np.float32
rng = random.Random(1234)

def process(logits, bias, prompt, gen, rep, pres, freq, temp):
    l = np.array(logits, dtype=f32)
    for t, b in bias:
        l[t] = f32(l[t] + f32(b))
    counts = {}
    for t in gen:
        counts[t] = counts.get(t, 0) + 1
    for t in sorted(set(prompt) | set(gen)):
        v = l[t]
        if rep != 1.0:
            v = f32(v / f32(rep)) if v > 0 else f32(v * f32(rep))
        c = counts.get(t, 0)
        if c > 0:
            v = f32(v - f32(f32(c) * f32(freq) + f32(pres)))
        l[t] = v
    if temp > 0 and temp != 1.0:
        l = (l / f32(temp)).astype(f32)
    return l

def kept(l, top_k, top_p, min_p, temp):
    n = len(l)
    if temp == 0:
        return {int(np.argmax(l)): 1.0}
    order = sorted(range(n), key=lambda i: (-float(l[i]), i))
    if 0 < top_k < n:
        order = order[:top_k]
    m = float(l[order[0]])
    p = {i: math.exp(float(l[i]) - m) for i in order}
    if top_p < 1.0:
        z = sum(p.values()); acc = 0.0; keep = []
        for i in order:  # a token stays while the mass above it is below top_p
            if acc >= top_p * z: break
            keep.append(i); acc += p[i]
        order = keep
    if min_p > 0:
        order = [i for i in order if p[i] >= min_p]
    z = sum(p[i] for i in order)
    return {i: p[i] / z for i in order}

cases = []
V = 40
for case in range(24):
    logits = [round(rng.gauss(0, 3), 4) for _ in range(V)]
    prompt = [rng.randrange(V) for _ in range(rng.randrange(0, 12))]
    gen = [rng.randrange(V) for _ in range(rng.randrange(0, 12))]
    bias = [(rng.randrange(V), round(rng.uniform(-100, 100), 3)) for _ in range(rng.randrange(0, 3))]
    rep = rng.choice([1.0, 1.1, 1.3, 0.8])
    pres = rng.choice([0.0, 0.5, -0.7, 2.0])
    freq = rng.choice([0.0, 0.3, -1.2, 1.0])
    temp = rng.choice([0.0, 0.5, 1.0, 1.7])
    top_k = rng.choice([0, 0, 5, 12, 1])
    top_p = rng.choice([1.0, 0.9, 0.5, 0.3])
    min_p = rng.choice([0.0, 0.0, 0.05, 0.2])
    l = process(logits, bias, prompt, gen, rep, pres, freq, temp)
    k = kept(l, top_k, top_p, min_p, temp)
    cases.append(dict(logits=logits, prompt=prompt, generated=gen, logit_bias=bias, repetition_penalty=rep,
                      presence_penalty=pres, frequency_penalty=freq, temperature=temp, top_k=top_k, top_p=top_p,
                      min_p=min_p, processed=[float(x) for x in l],
                      kept_ids=sorted(k), kept_probs=[k[i] for i in sorted(k)]))
json.dump({"vocab": V, "cases": cases}, open("tests/fixtures/sampling/goldens.json", "w"), indent=0)
print(f"{len(cases)} cases")
