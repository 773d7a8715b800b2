#!/usr/bin/env bash
# Sampling, statistically: 4,000 seeded one-token requests per setting (temperature, top-k,
# top-p, min-p, and all together) through forge batch; the first tokens' frequencies must fit
# the distribution the float64 reference forward gives after HF's warpers
# (tests/fixtures/sampling/batch_dist.json from scripts/sampling/batch_dist.py): no token the
# warpers remove, and a chi-square p-value of at least 0.001.
source "$(dirname "$0")/../lib.sh"
M=tests/fixtures/stories260K
N=4000
python3 tests/cli/batch_chisq.py make $N >"$T_TMP/in.jsonl"
"$FORGE" batch --model $M --prompts "$T_TMP/in.jsonl" --quiet >"$T_TMP/out.jsonl" 2>"$T_TMP/err"
check "exit 0" test $? = 0
python3 tests/cli/batch_chisq.py check $N "$T_TMP/out.jsonl" >"$T_TMP/chi" 2>&1
while read -r verdict rest; do
  check "first-token distribution: $rest" test "$verdict" = ok
done <"$T_TMP/chi"
check_eq "five settings checked" "$(wc -l <"$T_TMP/chi")" 5
finish
