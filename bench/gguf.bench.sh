#!/usr/bin/env bash
# GGUF speed: forge bench next to llama.cpp on the same files, alternating, ROUNDS rounds.
#   bash bench/gguf.bench.sh FILE.gguf...      (THREADS=2 ROUNDS=2 LLAMA_CPP=dir)
# llama.cpp: llama-batched-bench --no-repack (llama-bench has no switch for it, and this
# machine's llama.cpp build dies of an illegal instruction in its AMX repack path):
#   -npp 512 -ntg 128 -npl 1   S_PP = prefill 512, S_TG = decode batch 1 (context 512..640)
#   -npp 128 -ntg 32 -npl 64   S_TG = decode with 64 sequences (context 128..160)
# Forge: forge bench --prompt 512 --contexts 128,512 --batches 64.
set -u
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
LLAMA_CPP=${LLAMA_CPP:-/work/llama.cpp/build/bin}
for f in "$@"; do
  for r in $(seq "$ROUNDS"); do
    echo "== $f round $r: forge"
    build/forge bench --model "$f" --threads "$THREADS" --prompt 512 --contexts 128,512 --batches 64 2>/dev/null | grep -E "decode|prefill|machine"
    echo "== $f round $r: llama.cpp"
    "$LLAMA_CPP/llama-batched-bench" -m "$f" -c 8192 -b 512 -ub 512 -npp 512 -ntg 128 -npl 1 -t "$THREADS" --no-repack 2>/dev/null | grep -E "^\|\s+[0-9]"
    "$LLAMA_CPP/llama-batched-bench" -m "$f" -c 16384 -b 2048 -ub 512 -npp 128 -ntg 32 -npl 64 -t "$THREADS" --no-repack 2>/dev/null | grep -E "^\|\s+[0-9]"
  done
done
