#!/usr/bin/env python3
"""Chi-square goodness of fit of `forge batch` first tokens against the reference
distributions of tests/fixtures/sampling/batch_dist.json (scripts/sampling/batch_dist.py).

  batch_chisq.py make N > in.jsonl        N seeded one-token lines per configuration
  batch_chisq.py check N out.jsonl        one "ok"/"FAIL" line per configuration

A text the reference gives probability 0 (a token the warpers remove) fails at once. Bins
with an expected count under 5 are pooled; the p-value is the chi-square survival function
(regularized upper incomplete gamma, Numerical Recipes' series and continued fraction)."""
import json
import math
import os
import sys

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "sampling", "batch_dist.json")
P_MIN = 1e-3


def gammq(a, x):
    """Q(a, x) = Gamma(a, x) / Gamma(a)."""
    if x <= 0:
        return 1.0
    gln = math.lgamma(a)
    if x < a + 1:  # series for P
        ap, s, d = a, 1.0 / a, 1.0 / a
        for _ in range(10000):
            ap += 1
            d *= x / ap
            s += d
            if abs(d) < abs(s) * 1e-15:
                break
        return 1.0 - s * math.exp(-x + a * math.log(x) - gln)
    b, c, d = x + 1 - a, 1e300, 1.0 / (x + 1 - a)  # continued fraction for Q (Lentz)
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - gln) * h


def main():
    g = json.load(open(GOLDEN))
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == "make":
        for c in g["configs"]:
            for seed in range(n):
                print(json.dumps(dict(prompt=g["prompt"], max_tokens=1, seed=seed, **c["params"])))
        return 0
    lines = [json.loads(l) for l in open(sys.argv[3])]
    bad = 0
    for k, c in enumerate(g["configs"]):
        got = {}
        for rec in lines[k * n:(k + 1) * n]:
            t = rec.get("completion")
            got[t] = got.get(t, 0) + 1
        probs = c["probs"]
        impossible = [t for t in got if probs.get(t, 0) <= 0]
        bins, pool_e, pool_o = [], 0.0, 0
        for t, p in sorted(probs.items(), key=lambda kv: -kv[1]):
            e = p * n
            if e >= 5:
                bins.append((e, got.get(t, 0)))
            else:
                pool_e += e
                pool_o += got.get(t, 0)
        if pool_e >= 5 or not bins:
            bins.append((pool_e, pool_o))
        elif pool_e > 0:
            e, o = bins.pop()
            bins.append((e + pool_e, o + pool_o))
        chi2 = sum((o - e) ** 2 / e for e, o in bins)
        df = len(bins) - 1
        p = gammq(df / 2.0, chi2 / 2.0) if df > 0 else 1.0
        ok = not impossible and p >= P_MIN and sum(got.values()) == n
        bad += not ok
        print("%s %s: %d bins, chi2 %.2f, df %d, p %.4f%s" % ("ok  " if ok else "FAIL", c["params"], len(bins), chi2, df, p,
              "; impossible texts: %r" % impossible if impossible else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
