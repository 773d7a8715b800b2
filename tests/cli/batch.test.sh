#!/usr/bin/env bash
# forge batch: all lines run concurrently on one engine; each completion equals what forge
# generate prints for that request alone (same seed); bad lines get an error entry.
source "$(dirname "$0")/../lib.sh"
M=tests/fixtures/stories260K
cat >"$T_TMP/in.jsonl" <<'JSONL'
{"prompt": "Once upon a time", "max_tokens": 60, "temperature": 0}
{"prompt": "The cat", "max_tokens": 30, "temperature": 0.8, "top_p": 0.9, "seed": 11}
{"prompt": "Lily and Tom", "max_tokens": 45, "temperature": 1.0, "top_k": 20, "seed": 3, "stop": ["park", "ball"]}
{"prompt": "Once upon a time", "max_tokens": 200, "temperature": 0, "stop": "red"}
not json
{"prompt": 5}
{"prompt": "One day", "temperature": 0.5, "seed": 99, "max_tokens": 25}
JSONL
"$FORGE" batch --model $M --prompts "$T_TMP/in.jsonl" >"$T_TMP/out.jsonl" 2>"$T_TMP/err"
check "exit status 1 (bad lines)" test $? = 1
check_eq "one output line per input line" "$(wc -l <"$T_TMP/out.jsonl")" 7
check "summary on stderr" grep -q "tok/s.*TTFT.*ITL" "$T_TMP/err"
solo() { "$FORGE" generate --model $M "$@" 2>/dev/null; }
got() { python3 -c "import json,sys; sys.stdout.write(json.loads(open('$T_TMP/out.jsonl').readlines()[$1])['completion'])"; }
check_eq "line 0 equals generate" "$(got 0)" "$(solo --prompt 'Once upon a time' --max-tokens 60 --temperature 0)"
check_eq "line 1 equals generate" "$(got 1)" "$(solo --prompt 'The cat' --max-tokens 30 --temperature 0.8 --top-p 0.9 --seed 11)"
check_eq "line 2 equals generate" "$(got 2)" "$(solo --prompt 'Lily and Tom' --max-tokens 45 --temperature 1.0 --top-k 20 --seed 3 --stop park --stop ball)"
check_eq "line 3 equals generate" "$(got 3)" "$(solo --prompt 'Once upon a time' --max-tokens 200 --temperature 0 --stop red)"
check_eq "line 6 equals generate" "$(got 6)" "$(solo --prompt 'One day' --max-tokens 25 --temperature 0.5 --seed 99)"
field() { python3 -c "import json; print(json.loads(open('$T_TMP/out.jsonl').readlines()[$1]).get('$2'))"; }
check_eq "finish_reason length" "$(field 0 finish_reason)" length
check_eq "finish_reason stop" "$(field 3 finish_reason)" stop
e4=$(field 4 error); e5=$(field 5 error)
check "bad JSON line named" test -z "${e4##*invalid JSON*}"
check "wrong type named" test -z "${e5##*prompt*}"
check "usage fields" test "$(field 0 prompt_tokens)" = 5 -a "$(field 0 completion_tokens)" = 60
finish
