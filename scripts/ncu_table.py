#!/usr/bin/env python3
"""Sums an ncu --csv --page raw log (gpu__time_duration.sum per kernel) by forward: a forward
starts at each embedding kernel. Prints every forward's kernel count and GPU time, then, for
the last forward of each distinct kernel count (one per batch size), the time by kernel."""
import csv
import re
import sys
from collections import OrderedDict

rows = []
with open(sys.argv[1], newline="") as f:
    lines = [l for l in f if l.startswith('"')]
reader = csv.reader(lines)
header = next(reader, None)
if not header:
    sys.exit("no ncu rows")
ki, ti = header.index("Kernel Name"), header.index("gpu__time_duration.sum")
gi = header.index("Grid Size") if "Grid Size" in header else None
for r in reader:
    if len(r) <= max(ki, ti):
        continue
    try:
        t = float(r[ti].replace(",", ""))
    except ValueError:
        continue  # the units row
    name = re.sub(r"\(.*$", "", r[ki])
    name = name[:90]
    rows.append((name, t, r[gi] if gi is not None else ""))

forwards, cur = [], None
for name, t, g in rows:
    if "embed" in name:
        cur = []
        forwards.append(cur)
    if cur is not None:
        cur.append((name, t, g))
print("forward  kernels   GPU us")
for i, fw in enumerate(forwards):
    print(f"{i:7d} {len(fw):8d} {sum(t for _, t, _ in fw) / 1e3:9.1f}")
last = OrderedDict()
for fw in forwards:
    last[len(fw)] = fw
for n, fw in last.items():
    total = sum(t for _, t, _ in fw)
    print(f"\n== a forward of {n} kernels: {total / 1e3:.1f} us of GPU time")
    agg = OrderedDict()
    for name, t, g in fw:
        k = f"{name} grid {g}"
        c, s = agg.get(k, (0, 0.0))
        agg[k] = (c + 1, s + t)
    for k, (c, s) in sorted(agg.items(), key=lambda x: -x[1][1]):
        print(f"  {s / 1e3:9.1f} us {100 * s / total:5.1f}%  {c:4d} x {s / c / 1e3:7.2f} us  {k}")
