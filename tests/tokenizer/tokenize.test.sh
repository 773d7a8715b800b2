#!/usr/bin/env bash
# forge tokenize: ids as HF (hand-checked against the goldens), --no-special,
# --split-special, --json, --decode, --skip-special, --clean-up-spaces, errors.
source "$(dirname "$0")/../lib.sh"
M=tests/fixtures/tokenizers

check_eq "qwen3 ids" "$($FORGE tokenize --model $M/qwen3 'Hello world')" "[9707,1879]"
check_eq "mistral adds BOS" "$($FORGE tokenize --model $M/mistral 'Hello')" "[1,22557]"
check_eq "mistral --no-special" "$($FORGE tokenize --model $M/mistral --no-special 'Hello')" "[22557]"
check_eq "special text still matched with --no-special" \
  "$($FORGE tokenize --model $M/qwen3 --no-special '<|im_start|>')" "[151644]"
check_eq "--split-special encodes it as text" \
  "$($FORGE tokenize --model $M/qwen3 --split-special '<|im_start|>')" "[27,91,318,4906,91,29]"
printf '["Hello world", "", "<think>"]' > "$T_TMP/in.json"
check_eq "--json" "$($FORGE tokenize --model $M/qwen3 --json "$T_TMP/in.json")" "[[9707,1879],[],[151667]]"
check_eq "--decode" "$($FORGE tokenize --model $M/llama2 --decode 1 15043 3186)" "<s> Hello world"
check_eq "--decode commas" "$($FORGE tokenize --model $M/llama2 --decode "[1,15043,3186]" --skip-special)" "Hello world"
check_eq "--decode keeps special" "$($FORGE tokenize --model $M/qwen3 --decode 151644 9707)" "<|im_start|>Hello"
check_eq "--decode --skip-special" "$($FORGE tokenize --model $M/qwen3 --decode --skip-special 151644 9707)" "Hello"
printf '[[9707, 1879], [151667]]' > "$T_TMP/ids.json"
check_eq "--decode --json" "$($FORGE tokenize --model $M/qwen3 --decode --json "$T_TMP/ids.json")" '["Hello world","<think>"]'
# llama3's tokenizer_config sets clean_up_tokenization_spaces: transformers' decode() applies it
ids=$($FORGE tokenize --model $M/llama3 --no-special 'Hi , there !')
check_eq "--clean-up-spaces" "$($FORGE tokenize --model $M/llama3 --decode --clean-up-spaces "$ids")" "Hi, there!"
check_eq "no clean-up by default" "$($FORGE tokenize --model $M/llama3 --decode "$ids")" "Hi , there !"
# a folder holding only tokenizer.json and tokenizer_config.json
mkdir -p "$T_TMP/m" && cp $M/stories260K/tokenizer.json $M/stories260K/tokenizer_config.json "$T_TMP/m/"
check_eq "bare folder" "$($FORGE tokenize --model "$T_TMP/m" 'Once upon a time')" "$($FORGE tokenize --model $M/stories260K 'Once upon a time')"
printf '{"model": {"vocab": {"a": 0}, "merges": ["a"]}}' > "$T_TMP/m/tokenizer.json"
out=$($FORGE tokenize --model "$T_TMP/m" x 2>&1); rc=$?
check "malformed tokenizer.json fails" test $rc -ne 0
check "error names the field" grep -q 'model.merges\[0\]' <<<"$out"
check "missing folder fails" bash -c "! $FORGE tokenize --model /nonexistent x 2>/dev/null"
# no --model: FORGE_MODEL, else the built-in model (as every other subcommand)
check_eq "no --model: the built-in model's tokenizer" "$($FORGE tokenize 'Once upon a time')" \
  "$($FORGE tokenize --model models/stories260K 'Once upon a time')"
check_eq "no --model: FORGE_MODEL" "$(FORGE_MODEL=$M/qwen3 $FORGE tokenize 'Hello world')" "[9707,1879]"
finish
