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

# --quantize q8_0 on the safetensors model: as llama-quantize's Q8_0 file (same types but for
# the tied embedding, which llama-quantize also keeps as Q8_0)
q8=$(grep "stories260K.Q8_0.gguf 128 " tests/fixtures/perplexity/llamacpp.txt | cut -d' ' -f3)
got=$("$FORGE" perplexity --model tests/fixtures/stories260K --quantize q8_0 --file $TEXT --ctx 128 2>"$T_TMP/qerr" | tail -n 1 | sed -n 's/^PPL = \([0-9.]*\).*/\1/p')
check "--quantize q8_0: PPL $got vs llama-perplexity on llama-quantize's Q8_0 $q8 (0.5%)" within "$got" "$q8" 0.005
check "--quantize prints what it did and the time" grep -q "quantized 31 weight matrices to Q8_0 in" "$T_TMP/qerr"
"$FORGE" perplexity --model tests/fixtures/stories260K --quantize q3 --file $TEXT >/dev/null 2>"$T_TMP/err"
check "--quantize with an unknown type is an error" grep -q "q8_0, q4_0 or q4_k" "$T_TMP/err"

printf 'Once upon a time.' >"$T_TMP/short.txt"
"$FORGE" perplexity --model $D/stories260K.f32.gguf --file "$T_TMP/short.txt" --ctx 128 >/dev/null 2>"$T_TMP/err"
check "too short a text is an error naming the need" grep -q "at least 256" "$T_TMP/err"
"$FORGE" perplexity --model $D/stories260K.f32.gguf --file "$T_TMP/nope.txt" >/dev/null 2>"$T_TMP/err"
check "a missing file is an error" grep -q "nope.txt" "$T_TMP/err"
finish
