#!/usr/bin/env bash
# forge template: stdout is exactly the prompt Jinja2 renders (goldens from
# scripts/template/make_goldens.py); a template's raise_exception message reaches stderr
# verbatim with a non-zero exit; model folders need only tokenizer_config.json.
source "$(dirname "$0")/../lib.sh"
CLI=tests/fixtures/templates/cli
MODELS=tests/fixtures/templates/models
export SOURCE_DATE_EPOCH=1700000000

for req in "$CLI"/*.request.json; do
  base=${req%.request.json}
  name=$(basename "$base")
  model=${name%%--*}
  if [ -f "$base.expected" ]; then
    check "render $name" bash -c '"$0" template --model "$1" --request "$2" > "$3" && cmp "$3" "$4"' \
      "$FORGE" "$MODELS/$model" "$req" "$T_TMP/out" "$base.expected"
  else
    check "raise $name" bash -c '! "$0" template --model "$1" --request "$2" >"$3" 2>"$4" && [ ! -s "$3" ] &&
      grep -qF -- "$(cat "$5")" "$4"' "$FORGE" "$MODELS/$model" "$req" "$T_TMP/out" "$T_TMP/err" "$base.error"
  fi
done

# the request from stdin, and --chat-template instead of the model's template
check "request on stdin" bash -c '"$0" template --model "$1" --request - < "$2" | cmp - "$3"' \
  "$FORGE" "$MODELS/smollm2" "$CLI/smollm2--multi_turn.request.json" "$CLI/smollm2--multi_turn.expected"
check "--chat-template file" bash -c '"$0" template --model "$1" --chat-template "$2" --request "$3" | cmp - "$4"' \
  "$FORGE" "$MODELS/qwen2" "$MODELS/qwen3-jinja/chat_template.jinja" "$CLI/qwen3-jinja--tool_call_string_args.request.json" \
  "$CLI/qwen3-jinja--tool_call_string_args.expected"
printf '{"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": false}' > "$T_TMP/r.json"
out=$("$FORGE" template --model "$MODELS/smollm2" --request "$T_TMP/r.json")
check_eq "add_generation_prompt false" "$out" $'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>'

# a hostile template: a 50,000-long chain fails to load with a message naming the limit and
# the line (it used to overflow the stack when rendered)
python3 -c 'import sys; sys.stdout.write("x\n{{ " + "+".join(["1"] * 50000) + " }}")' > "$T_TMP/chain.jinja"
check "50,000-long chain is refused" bash -c '! "$0" template --model "$1" --chat-template "$2" --request "$3" >/dev/null 2>"$4" &&
  grep -q "line 2: TemplateSyntaxError: expression nests deeper than 256 levels" "$4"' \
  "$FORGE" "$MODELS/smollm2" "$T_TMP/chain.jinja" "$T_TMP/r.json" "$T_TMP/err"

# failures: usage, a bad request, a missing model
check "no --request is a usage error" bash -c '"$0" template --model "$1" 2>/dev/null; [ $? -eq 2 ]' "$FORGE" "$MODELS/smollm2"
printf '{"messages": "nope"}' > "$T_TMP/bad.json"
check "bad request names the field" bash -c '! "$0" template --model "$1" --request "$2" 2>"$3" && grep -q "messages: expected an array" "$3"' \
  "$FORGE" "$MODELS/smollm2" "$T_TMP/bad.json" "$T_TMP/err"
check "missing model folder" bash -c '! "$0" template --model /nonexistent --request "$1" 2>/dev/null' "$FORGE" "$T_TMP/r.json"
finish
