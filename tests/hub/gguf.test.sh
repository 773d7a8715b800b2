#!/usr/bin/env bash
# GGUF repositories on the (stand-in) Hub: ids with a quantization tag, org/name-GGUF:TAG, as
# llama.cpp's -hf takes them. The tag picks one file (or every shard of a split model made by
# llama-gguf-split), nothing else is fetched (other quantizations, mmproj decoys, README),
# the default is Q4_K_M, and the cache serves the same id offline. generate, tokenize and
# serve take the ids; the answers equal those of the local files.
source "$(dirname "$0")/../lib.sh"
source tests/hub/hub_lib.sh
G=tests/fixtures/stories260K-gguf
mkdir -p "$T_TMP/gguf" "$T_TMP/split" "$T_TMP/one"
cp $G/stories260K.f32.gguf "$T_TMP/gguf/stories260K-F32.gguf"
cp $G/stories260K.Q8_0.gguf "$T_TMP/gguf/stories260K-Q8_0.gguf"
cp $G/stories260K.Q4_0.gguf "$T_TMP/gguf/stories260K-Q4_0.gguf"
cp $G/stories260K.Q8_0.gguf "$T_TMP/gguf/stories260K-Q8_0-imat.gguf"   # longer name: not the pick
head -c 4096 $G/stories260K.f32.gguf >"$T_TMP/gguf/mmproj-stories260K-F16.gguf"
echo "# stories260K GGUF" >"$T_TMP/gguf/README.md"
cp tests/fixtures/gguf-split/*.gguf "$T_TMP/split/"
head -c 4096 $G/stories260K.f32.gguf >"$T_TMP/split/mmproj-model-f16.gguf"
cp $G/stories260K.Q4_0.gguf "$T_TMP/one/stories260K.q4_0.gguf"
cat >"$T_TMP/hub.json" <<JSON
{"repos": [
  {"id": "forge-test/stories260K-GGUF", "revisions": {"main": "$T_TMP/gguf"}},
  {"id": "forge-test/split-GGUF", "revisions": {"main": "$T_TMP/split"}},
  {"id": "forge-test/one-GGUF", "revisions": {"main": "$T_TMP/one"}}]}
JSON
hub_start "$T_TMP/hub.json" || exit 1
R=$HF_HUB_CACHE/models--forge-test--stories260K-GGUF
C=$(hub_commit forge-test/stories260K-GGUF)

out=$("$FORGE" download forge-test/stories260K-GGUF:Q8_0 2>"$T_TMP/err"); rc=$?
check_eq "download :Q8_0 exits 0" "$rc" 0
check_eq "stdout is the picked file in the snapshot" "$out" "$R/snapshots/$C/stories260K-Q8_0.gguf"
check_eq "only that file is fetched" "$(cd "$R/snapshots/$C" && ls | tr '\n' ' ')" "stories260K-Q8_0.gguf "
check "it equals the original" cmp "$out" $G/stories260K.Q8_0.gguf
check_eq "the tag is case-blind: :q4_0" "$("$FORGE" download forge-test/stories260K-GGUF:q4_0 2>/dev/null)" \
  "$R/snapshots/$C/stories260K-Q4_0.gguf"
check_eq "refs/main written" "$(cat "$R/refs/main")" "$C"
check_eq "no mmproj, README or other file was asked for" \
  "$(hub_requests mmproj)$(hub_requests README)$(hub_requests F32)$(hub_requests imat)" 0000

# errors name what there is
"$FORGE" download forge-test/stories260K-GGUF:Q5_K_M >/dev/null 2>"$T_TMP/err"; rc=$?
check "an absent tag fails" test $rc -ne 0
check "  naming the tag and the files there are" \
  grep -q "no GGUF file for the tag Q5_K_M.*stories260K-F32.gguf, stories260K-Q4_0.gguf" "$T_TMP/err"
"$FORGE" download forge-test/stories260K-GGUF >/dev/null 2>"$T_TMP/err"; rc=$?
check "no tag, no Q4_K_M, several models: fails" test $rc -ne 0
check "  asking for a tag" grep -q "several GGUF models and none is Q4_K_M: add a quantization tag" "$T_TMP/err"
check_eq "no tag, one model: that one" "$("$FORGE" download forge-test/one-GGUF 2>/dev/null)" \
  "$HF_HUB_CACHE/models--forge-test--one-GGUF/snapshots/$(hub_commit forge-test/one-GGUF)/stories260K.q4_0.gguf"
"$FORGE" download 'forge-test/stories260K-GGUF:Q8 0' >/dev/null 2>"$T_TMP/err"; rc=$?
check "a malformed tag is refused" bash -c "test $rc -ne 0 && grep -q 'quantization tag' '$T_TMP/err'"

# a split model: every shard, and it runs
S=$HF_HUB_CACHE/models--forge-test--split-GGUF
SC=$(hub_commit forge-test/split-GGUF)
out=$("$FORGE" download forge-test/split-GGUF:Q8_0 2>/dev/null)
check_eq "split: the path is the first shard" "$out" "$S/snapshots/$SC/stories260K-Q8_0-00001-of-00003.gguf"
check_eq "split: the three shards and nothing else" "$(cd "$S/snapshots/$SC" && ls | tr '\n' ' ')" \
  "stories260K-Q8_0-00001-of-00003.gguf stories260K-Q8_0-00002-of-00003.gguf stories260K-Q8_0-00003-of-00003.gguf "
want=$("$FORGE" generate --model $G/stories260K.Q8_0.gguf --prompt "Once upon a time" --max-tokens 30 --temperature 0 2>/dev/null)
got=$("$FORGE" generate --model forge-test/split-GGUF:Q8_0 --prompt "Once upon a time" --max-tokens 30 --temperature 0 2>/dev/null)
check "generate with the split id equals the local file" test -n "$want" -a "$got" = "$want"

# offline: the cache answers the same ids, no request
hub_reset
got=$(HF_HUB_OFFLINE=1 "$FORGE" generate --model forge-test/stories260K-GGUF:Q8_0 --prompt "Once upon a time" \
  --max-tokens 30 --temperature 0 2>/dev/null)
check "offline generate with the id equals the local file" test "$got" = "$want"
check_eq "offline: no request" "$(hub_requests)" 0
HF_HUB_OFFLINE=1 "$FORGE" download forge-test/stories260K-GGUF:F32 >/dev/null 2>"$T_TMP/err"; rc=$?
check "offline, a tag never fetched: fails naming it" bash -c "test $rc -ne 0 && grep -q 'F32' '$T_TMP/err'"
check_eq "tokenize takes the id" "$(HF_HUB_OFFLINE=1 "$FORGE" tokenize --model forge-test/stories260K-GGUF:Q8_0 \
  'Once upon a time' 2>/dev/null)" "$("$FORGE" tokenize --model $G/stories260K.Q8_0.gguf 'Once upon a time' 2>/dev/null)"

HF_HUB_OFFLINE=1 "$FORGE" bench --model forge-test/split-GGUF:Q8_0 --batches 2 --contexts 16 --prompt 16 --steps 2 \
  >"$T_TMP/bench.out" 2>&1
check "bench takes the id" grep -q "^prefill 16" "$T_TMP/bench.out"

# unreachable Hub: the cached copy is used
hub_stop
got=$("$FORGE" generate --model forge-test/split-GGUF:Q8_0 --prompt "Once upon a time" --max-tokens 30 --temperature 0 2>"$T_TMP/err")
check "Hub down: the cached split is used" test "$got" = "$want"
check "  and says so" grep -q "using the cached snapshot" "$T_TMP/err"
finish
