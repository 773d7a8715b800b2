"""HF's chat-template environment and vLLM's request handling, as the reference for Forge.

The Jinja2 environment is what transformers' chat template utilities build: an
ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, the loopcontrols extension and
a `generation` block tag; tojson is json.dumps (ensure_ascii off, with indent, separators and
sort_keys); the globals raise_exception (TemplateError) and strftime_now. strftime_now here is
pinned to SOURCE_DATE_EPOCH (UTC) so the goldens are reproducible.

prepare_request() turns an OpenAI chat request into the keyword arguments of
template.render() the way vLLM's chat endpoint does before calling apply_chat_template. It is
written independently of Forge's C code (src/template/chat_request.c) from the same rules.
"""
import json
import os
from datetime import datetime, timezone

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

SOURCE_DATE_EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1700000000"))


class GenerationBlock(Extension):
    """`{% generation %}...{% endgeneration %}`: renders its body (HF tracks the span; the
    text is unchanged)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt):
    # a naive datetime, as datetime.now() gives, at the pinned instant
    return datetime.fromtimestamp(SOURCE_DATE_EPOCH, timezone.utc).replace(tzinfo=None).strftime(fmt)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def loops_over_content(env, source):
    """vLLM's content-format detection: a for loop over `<x>.content` / `<x>['content']`."""
    ast = env.parse(source)
    for loop in ast.find_all(nodes.For):
        it = loop.iter
        if isinstance(it, nodes.Filter) and it.node is not None:
            it = it.node
        if isinstance(it, nodes.Getattr) and it.attr == "content":
            return True
        if isinstance(it, nodes.Getitem) and isinstance(it.arg, nodes.Const) and it.arg.value == "content":
            return True
    return False


def special_tokens(config):
    """HF's special_tokens_map: the set (non-empty) special tokens of tokenizer_config.json."""
    out = {}
    for name in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        v = config.get(name)
        if isinstance(v, dict):
            v = v.get("content")
        if isinstance(v, str) and v:
            out[name] = v
    extra = config.get("additional_special_tokens")
    if isinstance(extra, list) and extra:
        out["additional_special_tokens"] = [t.get("content") if isinstance(t, dict) else t for t in extra]
    return out


def _content(value, as_list):
    if value is None:
        return [] if as_list else ""
    if isinstance(value, str):
        return [{"type": "text", "text": value}] if as_list else value
    texts = []
    for part in value:
        if isinstance(part, str):
            texts.append(part)
        elif part.get("type") == "text":
            texts.append(part["text"])
        else:
            raise ValueError("unsupported content part " + repr(part.get("type")))
    if as_list:
        return [{"type": "text", "text": t} for t in texts]
    return "\n".join(texts)


def prepare_request(request, as_list):
    """(render kwargs, continue_final_message) for an OpenAI chat request."""
    messages = []
    for m in request["messages"]:
        msg = {}
        for key, value in m.items():
            if key == "content":
                msg[key] = _content(value, as_list)
            elif key == "tool_calls" and m["role"] == "assistant":
                if value is None:
                    continue
                calls = []
                for call in value:
                    call = json.loads(json.dumps(call))
                    args = call["function"].get("arguments")
                    if isinstance(args, str):
                        call["function"]["arguments"] = json.loads(args)
                    calls.append(call)
                msg[key] = calls
            else:
                msg[key] = value
        if "content" not in msg:
            msg["content"] = _content(None, as_list)
        messages.append(msg)
    cfm = bool(request.get("continue_final_message") or False)
    agp = request.get("add_generation_prompt")
    agp = (not cfm) if agp is None else agp
    kwargs = {
        "messages": messages,
        "tools": request.get("tools"),
        "documents": request.get("documents"),
        "add_generation_prompt": agp,
    }
    kwargs.update(request.get("chat_template_kwargs") or {})
    return kwargs, cfm


def continue_final_message(rendered, final_content):
    """HF's apply_chat_template(continue_final_message=True) post-processing."""
    final = final_content
    if isinstance(final, (list, tuple)):
        for block in reversed(final):
            if "text" in block:
                final = block["text"]
                break
        else:
            raise ValueError("no text to continue")
    if final.strip() not in rendered:
        raise ValueError("the final message does not appear in the rendered chat")
    loc = rendered.rindex(final.strip())
    if rendered[loc: loc + len(final.lstrip())] == final:
        return rendered[: loc + len(final.lstrip())]
    return rendered[: loc + len(final.strip())]


def error_record(e):
    message = e.message if isinstance(e, jinja2.TemplateSyntaxError) else str(e)
    return {"error": type(e).__name__, "message": message}
