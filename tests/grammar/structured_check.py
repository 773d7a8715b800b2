#!/usr/bin/env python3
"""structured_check.py: structured output end to end against a live `forge serve` (stories260K).

Sends constrained requests over many seeds, temperatures and sampler settings, on
/v1/completions and /v1/chat/completions, streaming and not, n > 1, and checks the answers
with independent references: JSON texts go to a JSONL file (argv[2]) that ajv validates
afterwards (tests/grammar/js/validate.mjs); regexes, GBNF grammars written as equivalent
regexes and choices are checked here with Python's `re`. Prints "ok"/"FAIL" lines and
"N passed, N failed"."""
import json
import re
import sys
import urllib.error
import urllib.request

URL = sys.argv[1]
OUT = open(sys.argv[2], "w")
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + (": " + detail if detail else ""))


def post(path, body):
    req = urllib.request.Request(URL + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def stream(path, body):
    body = dict(body, stream=True)
    req = urllib.request.Request(URL + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    texts, finish = {}, {}
    with urllib.request.urlopen(req, timeout=120) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            for c in ev.get("choices", []):
                i = c["index"]
                t = c.get("text") if "text" in c else (c.get("delta") or {}).get("content")
                texts[i] = texts.get(i, "") + (t or "")
                if c.get("finish_reason"):
                    finish[i] = c["finish_reason"]
    return texts, finish


def texts_of(path, answer):
    a = json.loads(answer)
    if path == "/v1/completions":
        return [(c["text"], c["finish_reason"]) for c in a["choices"]]
    return [(c["message"]["content"] or "", c["finish_reason"]) for c in a["choices"]]


SCHEMAS = {
    "person": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"},
        "email": {"type": "string", "maxLength": 10}, "alive": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
        "kind": {"enum": ["cat", "dog", 3, None]}},
        "required": ["name", "age", "kind"], "additionalProperties": False},
    "nested": {"$defs": {"pt": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "integer"}},
                                "required": ["x", "y"]}},
               "type": "object", "properties": {
                   "a": {"$ref": "#/$defs/pt"}, "b": {"anyOf": [{"$ref": "#/$defs/pt"}, {"type": "null"}]},
                   "c": {"type": "array", "prefixItems": [{"const": "v1"}, {"type": "boolean"}], "items": False},
                   "d": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2}},
               "required": ["a", "c"]},
    "formats": {"type": "object", "properties": {
        "day": {"type": "string", "format": "date"}, "at": {"type": "string", "format": "date-time"},
        "id": {"type": "string", "format": "uuid"}, "t": {"type": "string", "format": "time"},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"}},
        "required": ["day", "at", "id", "t", "code"]},
    "optional": {"type": "object", "properties": {"p": {"type": "integer"}, "q": {"type": "boolean"},
                                                  "r": {"type": "null"}}},
    "extra": {"type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"],
              "additionalProperties": {"type": "boolean"}},
    "array": {"type": "array", "items": {"type": ["integer", "string"], "maxLength": 4}, "minItems": 2, "maxItems": 4},
}
SAMPLERS = [
    {"temperature": 0},
    {"temperature": 0.7},
    {"temperature": 1.0},
    {"temperature": 1.5, "top_k": 40},
    {"temperature": 1.0, "top_p": 0.9, "min_p": 0.05},
    {"temperature": 1.2, "presence_penalty": 1.0, "frequency_penalty": 0.5, "repetition_penalty": 1.2},
    {"temperature": 1.0, "logit_bias": {"10": 50, "300": -100}},
]
MAX = 400
counts = {"stop": 0, "length": 0}


def emit(name, schema, text, finish):
    counts[finish] = counts.get(finish, 0) + 1
    if finish == "stop":
        OUT.write(json.dumps({"id": name, "schema": schema, "text": text}) + "\n")


# ---- JSON schemas: completions and chat, response_format and the aliases -------------------
for sname, schema in SCHEMAS.items():
    for si, smp in enumerate(SAMPLERS):
        for seed in range(3):
            for path in ("/v1/completions", "/v1/chat/completions"):
                body = dict(smp, seed=seed, max_tokens=MAX)
                if path == "/v1/completions":
                    body["prompt"] = "Once upon a time"
                else:
                    body["messages"] = [{"role": "user", "content": "Tell me about a cat."}]
                style = (si + seed) % 3
                if style == 0:
                    body["response_format"] = {"type": "json_schema", "json_schema": {"name": sname, "schema": schema, "strict": True}}
                elif style == 1:
                    body["guided_json"] = schema
                else:
                    body["json_schema"] = schema
                st, ans = post(path, body)
                if st != 200:
                    check(f"{sname} {path} sampler {si} seed {seed}: 200", False, ans[:300])
                    continue
                for ci, (t, fin) in enumerate(texts_of(path, ans)):
                    emit(f"{sname}/{path}/s{si}/seed{seed}/{ci}", schema, t, fin)

# ---- n > 1, and streaming equals non-streaming ---------------------------------------------
for path in ("/v1/completions", "/v1/chat/completions"):
    for seed in range(4):
        body = {"temperature": 1.0, "seed": seed, "max_tokens": MAX, "n": 3,
                "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": SCHEMAS["person"]}}}
        if path == "/v1/completions":
            body["prompt"] = "Once upon a time"
        else:
            body["messages"] = [{"role": "user", "content": "Hi"}]
        st, ans = post(path, body)
        check(f"n=3 {path} seed {seed}: 200", st == 200, ans[:300])
        if st != 200:
            continue
        got = texts_of(path, ans)
        check(f"n=3 {path} seed {seed}: three choices", len(got) == 3)
        for ci, (t, fin) in enumerate(got):
            emit(f"n3/{path}/seed{seed}/{ci}", SCHEMAS["person"], t, fin)
        st_texts, st_fin = stream(path, body)
        check(f"n=3 {path} seed {seed}: streaming equals non-streaming",
              [st_texts.get(i, "") for i in range(3)] == [t for t, _ in got] and
              [st_fin.get(i) for i in range(3)] == [f for _, f in got],
              f"{st_texts} vs {got}")

# ---- json_object ------------------------------------------------------------------------------
for seed in range(6):
    st, ans = post("/v1/completions", {"prompt": "Once", "seed": seed, "temperature": 0.8, "max_tokens": MAX,
                                       "response_format": {"type": "json_object"}})
    for ci, (t, fin) in enumerate(texts_of("/v1/completions", ans) if st == 200 else []):
        emit(f"json_object/seed{seed}", {"type": "object"}, t, fin)
    check(f"json_object seed {seed}: 200", st == 200, ans[:200])

# ---- regexes, grammars (checked as equivalent regexes) and choices with Python's re ----------
REGEXES = ["[A-Z][a-z]{2,8}( [a-z]+){1,3}\\.", "(\\d{1,3}\\.){3}\\d{1,3}", "(cat|dog|bird)s? and \\w{1,5}",
           "[^\\s,]{1,6}(,[^\\s,]{1,6}){0,3}", "x?[\u00e9\u00e8a-c]{1,5}!"]
GRAMMARS = [("root ::= (\"a\" | \"b\"+ \"c\"){1,5} [0-9]\n", "(a|b+c){1,5}[0-9]"),
            ("root ::= word (\" \" word){0,3} \".\"\nword ::= [a-z]{1,6}\n", "[a-z]{1,6}( [a-z]{1,6}){0,3}\\."),
            ("root ::= \"[\" (num (\", \" num)*)? \"]\"\nnum ::= \"-\"? [1-9] [0-9]{0,2}\n",
             "\\[(-?[1-9][0-9]{0,2}(, -?[1-9][0-9]{0,2})*)?\\]")]
for ri, rx in enumerate(REGEXES):
    for seed in range(8):
        smp = SAMPLERS[seed % len(SAMPLERS)]
        st, ans = post("/v1/completions", dict(smp, prompt="Once upon a time", seed=seed, max_tokens=120, guided_regex=rx))
        if st != 200:
            check(f"regex {ri} seed {seed}: 200", False, ans[:300])
            continue
        for t, fin in texts_of("/v1/completions", ans):
            if fin == "stop":
                check(f"regex {ri} seed {seed}: re.fullmatch", re.fullmatch(rx, t, re.ASCII) is not None, repr(t))
for gi, (g, rx) in enumerate(GRAMMARS):
    for seed in range(8):
        key = "grammar" if seed % 2 else "guided_grammar"
        st, ans = post("/v1/completions", {"prompt": "Once", "seed": seed, "temperature": 1.0, "max_tokens": 120, key: g})
        if st != 200:
            check(f"grammar {gi} seed {seed}: 200", False, ans[:300])
            continue
        for t, fin in texts_of("/v1/completions", ans):
            if fin == "stop":
                check(f"grammar {gi} seed {seed}: matches {rx}", re.fullmatch(rx, t) is not None, repr(t))
choices = ["red", "green", "blue moon", "\u00e9t\u00e9"]
seen = set()
for seed in range(12):
    st, ans = post("/v1/chat/completions", {"messages": [{"role": "user", "content": "color?"}], "seed": seed,
                                            "temperature": 1.5, "guided_choice": choices})
    got = texts_of("/v1/chat/completions", ans) if st == 200 else [("", "error")]
    check(f"choice seed {seed}: one of the choices, finish stop", got[0][0] in choices and got[0][1] == "stop", str(got))
    seen.add(got[0][0])
check("choices: more than one chosen over 12 seeds", len(seen) > 1, str(seen))

# ---- 400s naming the field -------------------------------------------------------------------
BAD = [
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer", "multipleOf": 3}}}},
     "multipleOf"),
    ({"guided_json": {"type": "string", "format": "email"}}, "email"),
    ({"guided_regex": "(a)\\1"}, "backreference"),
    ({"grammar": "root ::= undefined-rule\n"}, "undefined-rule"),
    ({"guided_choice": []}, "guided_choice"),
    ({"guided_regex": "a", "grammar": "root ::= \"a\"\n"}, "more than one constraint"),
    ({"response_format": {"type": "yaml"}}, "yaml"),
    ({"json_schema": {"$ref": "http://example.com/s.json"}}, "$ref"),
    ({"suffix": "tail"}, "suffix"),
    ({"best_of": 3, "n": 1}, "best_of"),
]
for i, (extra, word) in enumerate(BAD):
    for path in ("/v1/completions", "/v1/chat/completions"):
        if path != "/v1/completions" and ("suffix" in extra or "best_of" in extra):
            continue
        body = dict(extra, max_tokens=5)
        if path == "/v1/completions":
            body["prompt"] = "Once"
        else:
            body["messages"] = [{"role": "user", "content": "x"}]
        st, ans = post(path, body)
        ok = st == 400
        try:
            err = json.loads(ans)["error"]
            ok = ok and word in err["message"] and err.get("type") is not None
        except Exception:
            ok = False
        check(f"bad request {i} on {path}: 400 naming '{word}'", ok, f"{st} {ans[:300]}")

# ---- the share that ended by the grammar (not max_tokens) ------------------------------------
total = counts["stop"] + counts.get("length", 0)
check(f"most JSON answers complete ({counts['stop']} of {total} ended with stop)", total > 0 and counts["stop"] >= 0.8 * total)
OUT.close()
print(f"{passed} passed, {failed} failed")
