#!/usr/bin/env bash
# Tokenizer: load time and single-threaded encode throughput of llama3 and qwen3, Forge next
# to HF tokenizers (npm, scripts/tokenizer) on the same text in the same run.
# MB=3 sets the text size. HF is skipped when scripts/tokenizer/node_modules is absent
# (cd scripts/tokenizer && npm ci).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
M=tests/fixtures/tokenizers
text=$(mktemp)
trap 'rm -f "$text"' EXIT
if [ -d scripts/tokenizer/node_modules/tokenizers ] && command -v node >/dev/null; then
  (cd scripts/tokenizer && node bench_hf.js "$text" "${MB:-3}" "../../$M/llama3" "../../$M/qwen3")
else
  echo "(HF tokenizers not installed: Forge only, on the 1 MB golden string's text)"
  python3 -c "import json,sys; print(' '.join(c.get('text','') for c in json.load(open('$M/llama3/golden.json'))['cases'])*20)" > "$text"
fi
"$BUILD/bench/bench_tokenizer" "$text" "$M/llama3" "$M/qwen3"
