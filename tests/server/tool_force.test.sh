#!/usr/bin/env bash
# tool_choice "required" and a named function force a call through the grammar, in each
# format (hermes, mistral, llama3_json): with the built-in stories260K (which knows nothing of
# tools) over many seeds and temperatures, with parallel_tool_calls false every answer is one
# call (finish_reason tool_calls) of an offered tool (the named one when named) whose
# arguments are valid against that tool's `parameters` (ajv, tests/grammar/js); streaming gives
# the same calls; with parallel calls allowed every call made is valid; errors are 400s
# naming what is wrong. The openai npm client's parse helpers read structured answers and
# strict tools' arguments (tests/server/js/openai_structured.mjs).
source "$(dirname "$0")/../lib.sh"
source tests/server/server_lib.sh

ajv_ready() {
  local d=tests/grammar/js
  if [ ! -d $d/node_modules/ajv ] || [ $d/package-lock.json -nt $d/node_modules/.package-lock.json ]; then
    (cd $d && npm ci --no-audit --no-fund --loglevel=error) || return 1
  fi
}
check "npm ci installs the pinned ajv" ajv_ready

for fam in hermes mistral llama3_json; do
  start_server force-$fam --chat-template $TEMPLATE --tool-call-parser $fam
  check "$fam: server ready" test $? = 0
  python3 - "$URL" "$fam" "$T_TMP/$fam.jsonl" >"$T_TMP/$fam.out" 2>&1 <<'PY'
import json, sys, urllib.request
url, fam, out = sys.argv[1], sys.argv[2], sys.argv[3]
weather = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
           "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"], "additionalProperties": False}
search = {"type": "object", "properties": {"query": {"type": "string", "maxLength": 10}, "k": {"type": "integer",
          "minimum": 1, "maximum": 25}, "exact": {"type": "boolean"}}, "required": ["query", "k"]}
tools = [{"type": "function", "function": {"name": "get_weather", "parameters": weather}},
         {"type": "function", "function": {"name": "search", "parameters": search}}]
schemas = {"get_weather": weather, "search": search}
passed = failed = 0
def check(name, ok, detail=""):
    global passed, failed
    if ok: passed += 1; print("ok  ", name)
    else: failed += 1; print("FAIL", name, str(detail)[:300])
def post(body):
    req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r: return r.status, r.read().decode()
    except urllib.error.HTTPError as e: return e.code, e.read().decode()
lines = open(out, "w")
n_calls = 0
for seed in range(12):
    for choice in ["required", {"type": "function", "function": {"name": "search"}}]:
        body = {"messages": [{"role": "user", "content": "Once upon a time"}], "tools": tools, "tool_choice": choice,
                "seed": seed, "temperature": [0.0, 0.7, 1.0, 1.5][seed % 4], "max_tokens": 200, "n": 2,
                "parallel_tool_calls": seed >= 10}
        st, text = post(body)
        if st != 200: check(f"seed {seed}: 200", False, text); continue
        d = json.loads(text)
        for c in d["choices"]:
            m = c["message"]
            calls = m.get("tool_calls") or []
            if seed < 10:  # one call: the grammar ends after it, so the choice does
                check(f"seed {seed} {choice if isinstance(choice, str) else 'named'} choice {c['index']}: one call, finish tool_calls",
                      c["finish_reason"] == "tool_calls" and len(calls) == 1 and not m.get("content"), m)
            else:  # parallel calls: as many as the model writes (this one may go on to max_tokens,
                   # and a cut-off mistral list is no call at all); the calls it made are checked below
                check(f"seed {seed} parallel choice {c['index']}: calls, then the end or the length limit",
                      c["finish_reason"] == "length" or
                      (c["finish_reason"] == "tool_calls" and len(calls) >= 1 and not m.get("content")), m)
            for tc in calls:
                name = tc["function"]["name"]
                ok = name in schemas and (isinstance(choice, str) or name == "search") and tc["type"] == "function" \
                    and isinstance(tc["id"], str) and len(tc["id"]) >= 9
                check(f"seed {seed}: call of an offered tool ({name})", ok, tc)
                if name in schemas:
                    lines.write(json.dumps({"id": f"{fam}-{seed}-{n_calls}", "schema": schemas[name],
                                            "text": tc["function"]["arguments"]}) + "\n")
                    n_calls += 1
        if seed % 3 == 0 and seed < 10:  # streaming: the same calls
            body["stream"] = True
            req = urllib.request.Request(url + "/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
            calls = {}
            fin = {}
            with urllib.request.urlopen(req, timeout=120) as r:
                for raw in r:
                    line = raw.decode().strip()
                    if not line.startswith("data: ") or line == "data: [DONE]": continue
                    ch = json.loads(line[6:])
                    for c in ch["choices"]:
                        for t in (c.get("delta") or {}).get("tool_calls") or []:
                            k = (c["index"], t["index"])
                            cur = calls.setdefault(k, {"name": "", "arguments": ""})
                            f = t.get("function") or {}
                            cur["name"] += f.get("name") or ""
                            cur["arguments"] += f.get("arguments") or ""
                        if c.get("finish_reason"): fin[c["index"]] = c["finish_reason"]
            want = {(c["index"], i): {"name": t["function"]["name"], "arguments": t["function"]["arguments"]}
                    for c in d["choices"] for i, t in enumerate(c["message"].get("tool_calls") or [])}
            check(f"seed {seed}: streaming gives the same calls", calls == want and set(fin.values()) == {"tool_calls"},
                  (calls, want, fin))
lines.close()
check("at least 40 calls to validate", n_calls >= 40, n_calls)
# errors
def err(name, body, param):
    st, text = post(body)
    try: p = json.loads(text)["error"]["param"]
    except Exception: p = None
    check(name, st == 400 and p == param, (st, text))
base = {"messages": [{"role": "user", "content": "hi"}], "tools": tools}
err("a named tool not offered", dict(base, tool_choice={"type": "function", "function": {"name": "nope"}}), "tool_choice")
err("required without tools", {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}, "tool_choice")
err("a malformed tool_choice object", dict(base, tool_choice={"type": "function"}), "tool_choice")
err("forcing and response_format together", dict(base, tool_choice="required", response_format={"type": "json_object"}), "tool_choice")
err("an unsupported keyword in a tool's parameters", dict(base, tools=[{"type": "function", "function": {"name": "f",
    "parameters": {"type": "object", "patternProperties": {"^a": {"type": "string"}}}}}], tool_choice="required"), "tools")
print(f"{passed} passed, {failed} failed")
PY
  sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_TMP/$fam.out" | tail -1)
  grep '^FAIL' "$T_TMP/$fam.out" | head -10 | sed 's/^/  /'
  p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
  T_PASSED=$((T_PASSED + ${p:-0})); T_FAILED=$((T_FAILED + ${f:-1}))
  node tests/grammar/js/validate.mjs <"$T_TMP/$fam.jsonl" >"$T_TMP/$fam.ajv" 2>&1
  check "$fam: ajv: every forced call's arguments are valid against the tool's parameters" \
    grep -qE '^[0-9]+ passed, 0 failed$' "$T_TMP/$fam.ajv"
  grep '^FAIL' "$T_TMP/$fam.ajv" | head -5 | sed 's/^/  /'
  if [ $fam = hermes ]; then  # the openai client's own parse helpers (message.parsed, parsed_arguments)
    if npm_ready; then
      BASE_URL=$URL MODEL=tests/fixtures/stories260K node tests/server/js/openai_structured.mjs >"$T_TMP/parse.out" 2>&1
      grep -v '^ok ' "$T_TMP/parse.out" | head -20 | sed 's/^/  /'
      sum=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$T_TMP/parse.out" | tail -1)
      p=${sum%% passed*}; f=${sum#*, }; f=${f%% failed}
      T_PASSED=$((T_PASSED + ${p:-0})); T_FAILED=$((T_FAILED + ${f:-1}))
    else
      check "npm ci installs the pinned openai client" false
    fi
  fi
  check "$fam: no errors in the server log" bash -c "! grep -E 'ERROR|Sanitizer' '$T_TMP/force-$fam.log'"
  stop_server $PID
done
start_server noformat --chat-template $TEMPLATE
check_eq "a template with no tool-call format: required is a 400 naming tool_choice" "$(curl -s "$URL/v1/chat/completions" \
  -d '{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["error"]["param"])')" tool_choice
stop_server $PID
finish
