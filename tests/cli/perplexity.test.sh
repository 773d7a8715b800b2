#!/usr/bin/env bash
# forge perplexity against llama-perplexity on the same files and text (goldens made by
# scripts/gguf/make_ppl_goldens.sh): within 0.1% for the F32 GGUF, 0.5% for Q8_0 and Q4_0
# made by llama-quantize; the F32 GGUF equals the HF safetensors twin; errors.
source "$(dirname "$0")/../lib.sh"
D=tests/fixtures/stories260K-gguf
TEXT=tests/fixtures/perplexity/stories.txt

within() { # got want tolerance(relative)
  awk -v g="$1" -v w="$2" -v t="$3" 'BEGIN { d = (g - w) / w; if (d < 0) d = -d; exit !(g != "" && d <= t) }'
}

while read -r f ctx want; do
  tol=0.005
  [ "$f" = stories260K.f32.gguf ] && tol=0.001
  got=$("$FORGE" perplexity --model $D/$f --file $TEXT --ctx $ctx 2>/dev/null | tail -n 1 | sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
  check "$f ctx $ctx: PPL $got vs llama-perplexity $want (tolerance $tol)" within "$got" "$want" $tol
done < tests/fixtures/perplexity/llamacpp.txt

a=$("$FORGE" perplexity --model $D/stories260K.f32.gguf --file $TEXT --ctx 128 2>/dev/null | tail -n 1)
b=$("$FORGE" perplexity --model tests/fixtures/stories260K --file $TEXT --ctx 128 2>/dev/null | tail -n 1)
check_eq "F32 GGUF and the safetensors twin give the same PPL" "$a" "$b"
check "the last line is PPL = <value>" grep -qE '^PPL = [0-9]+\.[0-9]{4}' <(echo "$a")

printf 'Once upon a time.' >"$T_TMP/short.txt"
"$FORGE" perplexity --model $D/stories260K.f32.gguf --file "$T_TMP/short.txt" --ctx 128 >/dev/null 2>"$T_TMP/err"
check "too short a text is an error naming the need" grep -q "at least 256" "$T_TMP/err"
"$FORGE" perplexity --model $D/stories260K.f32.gguf --file "$T_TMP/nope.txt" >/dev/null 2>"$T_TMP/err"
check "a missing file is an error" grep -q "nope.txt" "$T_TMP/err"
finish
