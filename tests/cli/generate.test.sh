#!/usr/bin/env bash
# forge generate end to end: the real stories260K model prints exactly the completion of
# expected-greedy.json (made by llama2.c's run.c and an independent HF-forward reference);
# the built-in default model; stop strings; seeds; stdin prompts; Hub ids offline; errors.
source "$(dirname "$0")/../lib.sh"
M=tests/fixtures/stories260K
want=$(python3 -c "import json,sys; sys.stdout.write(json.load(open('$M/expected-greedy.json'))['completion'])")

out=$("$FORGE" generate --model $M --prompt "Once upon a time" --max-tokens 200 --temperature 0 2>"$T_TMP/err")
check_eq "greedy 200 tokens equal expected-greedy.json" "$out" "$want"
check "stderr reports speed and sampling" grep -q "tok/s" "$T_TMP/err"
check "stderr reports the seed" grep -q "seed" "$T_TMP/err"
"$FORGE" generate --model $M --prompt "Once upon a time" --max-tokens 200 --temperature 0 2>/dev/null >"$T_TMP/raw"
check "no trailing newline when stdout is not a terminal" test "$(tail -c 1 "$T_TMP/raw" | od -An -c | tr -d ' ')" = "I"

out=$(cd /tmp && FORGE_MODEL= "$FORGE" generate --prompt "Once upon a time" --max-tokens 200 --temperature 0 2>/dev/null)
check_eq "the built-in model, found from the executable" "$out" "$want"

out=$(FORGE_MODEL=$M "$FORGE" generate --prompt "Once upon a time" --max-tokens 200 --temperature 0 --stop "Lily" 2>/dev/null)
check_eq "stop string cut before it" "$out" ", there was a little girl named "
out=$("$FORGE" generate --model $M --prompt "Once upon a time" --max-tokens 200 --temperature 0 --stop "zzz" --stop "red ball" 2>/dev/null)
check_eq "second stop string" "$out" "${want%%red ball*}"

a=$("$FORGE" generate --model $M --prompt "Once upon a time" --max-tokens 40 --temperature 0.9 --seed 7 2>/dev/null)
b=$("$FORGE" generate --model $M --prompt "Once upon a time" --max-tokens 40 --temperature 0.9 --seed 7 2>/dev/null)
c=$("$FORGE" generate --model $M --prompt "Once upon a time" --max-tokens 40 --temperature 0.9 --seed 8 2>/dev/null)
check_eq "same seed, same text" "$a" "$b"
check "another seed, other text" test "$a" != "$c"

out=$(printf 'Once upon a time' | "$FORGE" generate --model $M --prompt-file - --max-tokens 200 --temperature 0 2>/dev/null)
check_eq "prompt from stdin" "$out" "$want"
out=$("$FORGE" generate --model $M --prompt "" --max-tokens 5 --temperature 0 2>/dev/null; echo "rc=$?")
check "empty prompt starts from BOS" test "${out##*rc=}" = 0

# Ctrl-C: SIGINT while the prompt is still being read (from a FIFO), then the rest arrives:
# the request is cancelled as soon as it exists, stats are printed, exit status 130
mkfifo "$T_TMP/fifo"
"$FORGE" generate --model $M --prompt-file "$T_TMP/fifo" --max-tokens 100 2>"$T_TMP/int.err" >/dev/null &
pid=$!
exec 3>"$T_TMP/fifo"          # opening the write end unblocks the reader's open
kill -INT $pid
printf 'Once upon a time' >&3
exec 3>&-
wait $pid
rc=$?
check_eq "Ctrl-C exits 130" "$rc" 130
check "Ctrl-C prints the stats" grep -q "interrupted" "$T_TMP/int.err"

# errors: a clear message and a non-zero exit, never a crash
expect_fail() { # name, pattern, args...
  local name=$1 pat=$2; shift 2
  "$FORGE" generate "$@" >/dev/null 2>"$T_TMP/e"; local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q -- "$pat" "$T_TMP/e"; then echo "ok   $name"; T_PASSED=$((T_PASSED + 1))
  else echo "FAIL $name (rc $rc)"; sed 's/^/    /' "$T_TMP/e" | head -5; T_FAILED=$((T_FAILED + 1)); fi
}
expect_fail "unknown flag" "unknown option" --model $M --prompt x --bogus
expect_fail "max-tokens 0" "max-tokens" --model $M --prompt x --max-tokens 0
expect_fail "temperature not a number" "temperature" --model $M --prompt x --temperature abc
expect_fail "negative temperature" "temperature" --model $M --prompt x --temperature -1
expect_fail "top-p out of range" "top_p" --model $M --prompt x --top-p 1.5
expect_fail "bad seed" "seed" --model $M --prompt x --seed -4
expect_fail "missing model folder" "no such folder" --model ./no/such/model --prompt x
mkdir -p "$T_TMP/notok" && cp $M/config.json $M/model.safetensors "$T_TMP/notok/"
expect_fail "folder without tokenizer.json" "tokenizer.json" --model "$T_TMP/notok" --prompt x
python3 -c "print('Once upon a time ' * 200)" >"$T_TMP/long.txt"
expect_fail "prompt longer than the context" "context" --model $M --prompt-file "$T_TMP/long.txt"
expect_fail "unreadable prompt file" "cannot read" --model $M --prompt-file "$T_TMP/none.txt"

# a Hub id: downloaded once, then used offline with zero requests
source tests/hub/hub_lib.sh
hub_start
"$FORGE" download forge-test/stories260K >/dev/null 2>&1
hub_reset
out=$(HF_HUB_OFFLINE=1 "$FORGE" generate --model forge-test/stories260K --prompt "Once upon a time" --max-tokens 200 --temperature 0 2>/dev/null)
check_eq "generate by Hub id offline" "$out" "$want"
check_eq "offline: zero requests" "$(hub_requests)" 0
hub_stop
finish
