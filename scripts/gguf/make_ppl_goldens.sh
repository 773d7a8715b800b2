#!/usr/bin/env bash
# Makes the quantized stories260K files with llama.cpp's llama-quantize and records
# llama-perplexity's values on them (the goldens of tests/cli/perplexity.test.sh):
#   tests/fixtures/stories260K-gguf/stories260K.{Q8_0,Q4_0}.gguf
#   tests/fixtures/perplexity/llamacpp.txt   lines "<file> <ctx> <PPL>"
# Needs llama.cpp built at $LLAMA (default /work/llama.cpp/build/bin). --no-repack: this
# build's repacked CPU kernels stop with an illegal instruction on this machine.
set -eu
cd "$(dirname "$0")/../.."
LLAMA=${LLAMA:-/work/llama.cpp/build/bin}
D=tests/fixtures/stories260K-gguf
TEXT=tests/fixtures/perplexity/stories.txt
for q in Q8_0 Q4_0; do
  "$LLAMA/llama-quantize" $D/stories260K.f32.gguf $D/stories260K.$q.gguf $q >/dev/null 2>&1
done
out=tests/fixtures/perplexity/llamacpp.txt
: >"$out"
for f in stories260K.f32.gguf stories260K.Q8_0.gguf stories260K.Q4_0.gguf; do
  for ctx in 128 256; do
    ppl=
    for try in 1 2 3; do  # this build sometimes dies of an illegal instruction: retry
      ppl=$("$LLAMA/llama-perplexity" -m $D/$f -f $TEXT -c $ctx -t 2 --no-repack 2>&1 |
            sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
      [ -n "$ppl" ] && break
    done
    [ -n "$ppl" ] || { echo "llama-perplexity failed on $f" >&2; exit 1; }
    echo "$f $ctx $ppl" | tee -a "$out"
  done
done
