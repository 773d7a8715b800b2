#!/usr/bin/env python3
"""A copy of the built-in stories260K model whose tokenizer spells whole chat answers in
single tokens, for the tool-call tests (tests/server/tools.test.sh, openai_tools.mjs).

    python3 scripts/server/make_tool_model.py OUT_DIR

The byte-fallback tokens <0xF8>..<0xFF> (ids 251..258) stand for bytes that never occur in
UTF-8 text, so no prompt uses them; each is renamed to one of the answers below. A request
forces one with logit_bias {"ID": 100} (a real OpenAI parameter, through the real sampler)
and ends it with the stop string "@@", so the server's chat answer is exactly that text and
goes through the tool-call and reasoning parsers like any model's. The weights are linked,
not copied. Prints the answers' token ids as JSON.
"""
import json
import os
import shutil
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "stories260K")

# name -> answer (what the model "writes"), each ending in the stop string
ANSWERS = {
    "two_calls": 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}\n'
                 '</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}\n</tool_call>@@',
    "think_call": '<think>\nThe user wants the weather. <tool_call>not a call</tool_call>\n</think>\n\n'
                  '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich"}}\n</tool_call>@@',
    "think_text": '<think>\nA short thought.\n</think>\n\nIt is sunny.@@',
    "malformed": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}\n</tool_call>@@',
    "plain": 'Hello there.@@',
    "open_think": 'Thinking inside.</think>\n\nDone.@@',
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(SRC):
        if f in ("tokenizer.json", "expected-greedy.json"):
            continue
        dst = os.path.join(out, f)
        if os.path.lexists(dst):
            os.remove(dst)
        if f.endswith(".safetensors"):
            os.symlink(os.path.abspath(os.path.join(SRC, f)), dst)
        else:
            shutil.copy(os.path.join(SRC, f), dst)
    tok = json.load(open(os.path.join(SRC, "tokenizer.json"), encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    ids = {}
    for i, (name, text) in enumerate(ANSWERS.items()):
        old = "<0x%02X>" % (0xFF - i)
        tid = vocab.pop(old)
        vocab[text.replace(" ", "\u2581")] = tid  # the decoder turns U+2581 back into spaces
        ids[name] = tid
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    print(json.dumps({"ids": ids, "answers": {k: v[:-2] for k, v in ANSWERS.items()}}))


if __name__ == "__main__":
    main()
