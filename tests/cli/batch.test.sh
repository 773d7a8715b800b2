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

# 10,000 lines (the seed crashed past 64 and refused past the queue): every line answered,
# in input order
python3 -c "
import json
for i in range(10000): print(json.dumps({'prompt': 'Once upon a time', 'max_tokens': 1, 'seed': i}))" >"$T_TMP/10k.jsonl"
"$FORGE" batch --model $M --prompts "$T_TMP/10k.jsonl" >"$T_TMP/10k.out" 2>"$T_TMP/10k.err"
check "10,000 lines: exit 0" test $? = 0
check "10,000 lines answered in order, one token each" python3 -c "
import json
L = [json.loads(l) for l in open('$T_TMP/10k.out')]
assert [l['index'] for l in L] == list(range(10000)), 'order'
assert all(l['completion_tokens'] == 1 and 'error' not in l for l in L), 'answers'"

# a queue far smaller than what is in flight: busy answers are retried, nothing fails, and
# every completion equals the run without retries
head -n 1500 "$T_TMP/10k.jsonl" | sed 's/"max_tokens": 1/"max_tokens": 4, "temperature": 0.9/' >"$T_TMP/busy.jsonl"
"$FORGE" batch --model $M --prompts "$T_TMP/busy.jsonl" >"$T_TMP/busy1.out" 2>/dev/null
"$FORGE" batch --model $M --prompts "$T_TMP/busy.jsonl" --max-seqs 8 --max-waiting 2 >"$T_TMP/busy2.out" 2>"$T_TMP/busy2.err"
check "busy queue: exit 0" test $? = 0
check "busy queue: retries happened" grep -qE " [1-9][0-9]* busy retries" "$T_TMP/busy2.err"
check "busy queue: same completions as without" python3 -c "
import json
a = [json.loads(l) for l in open('$T_TMP/busy1.out')]; b = [json.loads(l) for l in open('$T_TMP/busy2.out')]
assert len(a) == len(b) == 1500
assert all((x['index'], x['completion']) == (y['index'], y['completion']) for x, y in zip(a, b))"

# a slow input (a pipe that has nothing new): each output is written before the next line
# arrives. The driver writes line i only after reading output i-1, so a batch that waited
# for more input would stall it (bounded by timeout).
check "outputs flow while the input waits" timeout 60 python3 -c "
import json, subprocess
p = subprocess.Popen(['$FORGE', 'batch', '--model', '$M', '--prompts', '-'], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
for i in range(5):
    p.stdin.write(json.dumps({'prompt': 'Hello', 'max_tokens': 2, 'seed': i}) + '\\n'); p.stdin.flush()
    assert json.loads(p.stdout.readline())['index'] == i
p.stdin.close(); assert p.wait() == 0"

# an over-long prompt is an error for its line only
python3 -c "
import json
print(json.dumps({'prompt': 'Once upon a time', 'max_tokens': 3, 'temperature': 0}))
print(json.dumps({'prompt': 'Once upon a time ' * 300, 'max_tokens': 3}))
print(json.dumps({'prompt': 'Once upon a time', 'max_tokens': 3, 'temperature': 0}))" >"$T_TMP/long.jsonl"
"$FORGE" batch --model $M --prompts "$T_TMP/long.jsonl" >"$T_TMP/long.out" 2>/dev/null
check "over-long prompt: exit 1" test $? = 1
check "over-long prompt: its line names the context, the others answer" python3 -c "
import json
a, b, c = [json.loads(l) for l in open('$T_TMP/long.out')]
assert 'context' in b['error'] and 'completion' not in b, b
assert a['completion'] == c['completion'] and 'error' not in a and 'error' not in c"

# progress on a terminal (script(1) gives it one): done/total, tok/s
if command -v script >/dev/null; then
  script -qec "'$FORGE' batch --model $M --prompts '$T_TMP/busy.jsonl' >/dev/null" /dev/null >"$T_TMP/tty.out" 2>&1
  check "progress on a terminal: done/total lines and tok/s" grep -q "1500/1500 lines, 0 failed, .* tok/s" "$T_TMP/tty.out"
fi

# memory stays bounded whatever the file's size: 20,000 lines peak no higher than 2,000
# (plus slack); sanitizer builds keep freed memory in quarantine, so not there
if [ -z "${FORGE_SANITIZE:-}" ]; then
  rss() { grep -o "peak RSS [0-9]*" "$1" | awk '{print $3}'; }
  head -n 2000 "$T_TMP/10k.jsonl" >"$T_TMP/2k.jsonl"
  cat "$T_TMP/10k.jsonl" "$T_TMP/10k.jsonl" >"$T_TMP/20k.jsonl"
  "$FORGE" batch --model $M --prompts "$T_TMP/2k.jsonl" --quiet >/dev/null 2>"$T_TMP/2k.err"
  "$FORGE" batch --model $M --prompts "$T_TMP/20k.jsonl" --quiet >/dev/null 2>"$T_TMP/20k.err"
  check "peak RSS of 20,000 lines within 16 MB of 2,000 lines ($(rss "$T_TMP/2k.err") / $(rss "$T_TMP/20k.err") MB)" \
    test "$(rss "$T_TMP/20k.err")" -le $(( $(rss "$T_TMP/2k.err") + 16 ))
fi
finish
