"""The chat requests (OpenAI request bodies) every fixture template is rendered with."""

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city — in °C or °F",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City name, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 16},
            },
            "required": ["location"],
        },
    },
}
CALC_TOOL = {
    "type": "function",
    "function": {
        "name": "calculate",
        "description": "Evaluate an arithmetic expression",
        "parameters": {
            "type": "object",
            "properties": {
                "expression": {"type": "string"},
                "precision": {"type": "number", "default": 0.5},
                "epsilon": {"type": "number", "default": 1e-05},
                "big": {"type": "number", "default": 1e16},
                "flags": {"type": "array", "items": {"type": "boolean"}, "default": [True, False, None]},
            },
            "required": ["expression"],
        },
    },
}
TOOLS = [WEATHER_TOOL, CALC_TOOL]

ARGS = '{"location": "Paris", "unit": "celsius", "days": 3, "ratio": 0.5, "note": "caf\\u00e9 \\"ok\\""}'
ARGS_OBJ = {"location": "Paris", "unit": "celsius", "days": 3, "ratio": 0.5, "note": 'café "ok"'}


def tool_call(call_id, args, name="get_weather"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


CONVERSATIONS = {
    "single_turn": {"messages": [{"role": "user", "content": "Hello!"}]},
    "system_prompt": {"messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is 2+2?"}]},
    "multi_turn": {"messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "Why did the chicken cross the road?"},
        {"role": "user", "content": "Why?"}]},
    "multi_turn_no_system": {"messages": [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"}]},
    "no_generation_prompt": {"add_generation_prompt": False, "messages": [
        {"role": "user", "content": "Question?"},
        {"role": "assistant", "content": "Answer."}]},
    "unicode": {"messages": [
        {"role": "system", "content": "Réponds en français. 日本語も OK."},
        {"role": "user", "content": "Grüße, 世界! 🙂\n\ttab \"double\" 'single' <b>&amp;</b> \\ back\u2028sep"},
        {"role": "assistant", "content": "Ça va 👍 — ¿qué tal?"},
        {"role": "user", "content": "  padded with spaces  \n"}]},
    "empty_content": {"messages": [
        {"role": "system", "content": ""},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "after empty"}]},
    "null_assistant_content": {"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "again"}]},
    "content_parts": {"messages": [
        {"role": "system", "content": [{"type": "text", "text": "System in parts."}]},
        {"role": "user", "content": [{"type": "text", "text": "Part one."}, {"type": "text", "text": "Part two."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Reply in parts."}]},
        {"role": "user", "content": [{"type": "text", "text": "Last."}]}]},
    "tools_offered": {"tools": TOOLS, "messages": [
        {"role": "system", "content": "Use tools when useful."},
        {"role": "user", "content": "What's the weather in Paris?"}]},
    "tools_offered_no_system": {"tools": TOOLS, "messages": [
        {"role": "user", "content": "Weather in Oslo, please."}]},
    "tool_call_string_args": {"tools": TOOLS, "messages": [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call("abc123XYZ", ARGS)]},
        {"role": "tool", "tool_call_id": "abc123XYZ", "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"},
        {"role": "assistant", "content": "It is 21.5 °C and clear."},
        {"role": "user", "content": "Thanks!"}]},
    "tool_call_object_args": {"tools": TOOLS, "messages": [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [tool_call("abc123XYZ", ARGS_OBJ)]},
        {"role": "tool", "tool_call_id": "abc123XYZ", "content": "21.5 degrees"}]},
    "tool_call_with_content": {"tools": TOOLS, "messages": [
        {"role": "user", "content": "Compute 2*21 and the weather."},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            tool_call("call00001", '{"expression": "2*21"}', "calculate"),
            tool_call("call00002", '{"location": "Rome"}')]},
        {"role": "tool", "tool_call_id": "call00001", "content": "42"},
        {"role": "tool", "tool_call_id": "call00002", "content": "sunny"},
        {"role": "user", "content": "And tomorrow?"}]},
    "tool_result_without_call": {"messages": [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "xyz987abc", "content": "orphan result"}]},
    # what `forge serve` answers (docs/tools.md) sent back as history: content null, ids as
    # Forge makes them (call_ and 24 letters/digits; 9 for mistral), compact arguments, and
    # the reasoning_content field (Qwen3's template reads it)
    "forge_answer_round_trip": {"tools": TOOLS, "messages": [
        {"role": "user", "content": "Weather in Paris, and 2*21?"},
        {"role": "assistant", "content": None, "reasoning_content": "Two tools are needed.",
         "tool_calls": [tool_call("call_Ab3dEf6hIj9kLm2nOp5qRs8t", '{"location":"Paris","days":2}'),
                        tool_call("call_Zy1xWv4uTs7rQp0oNm3lKj6i", '{"expression":"2*21"}', "calculate")]},
        {"role": "tool", "tool_call_id": "call_Ab3dEf6hIj9kLm2nOp5qRs8t", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_Zy1xWv4uTs7rQp0oNm3lKj6i", "content": "42"},
        {"role": "assistant", "content": "Sunny, and 42."},
        {"role": "user", "content": "Thanks."}]},
    "forge_answer_single_call_mistral_id": {"tools": TOOLS, "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call("aB3dE6gH9", '{"location":"Paris"}')]},
        {"role": "tool", "tool_call_id": "aB3dE6gH9", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "Thanks."}]},
    "thinking_disabled": {"chat_template_kwargs": {"enable_thinking": False}, "messages": [
        {"role": "user", "content": "What is 7*6?"},
        {"role": "assistant", "content": "<think>\n7 times 6 is 42.\n</think>\n\nIt is 42."},
        {"role": "user", "content": "And 6*9?"}]},
    "thinking_enabled": {"chat_template_kwargs": {"enable_thinking": True}, "messages": [
        {"role": "user", "content": "Think first: 2+2?"},
        {"role": "assistant", "content": "<think>simple</think>4"},
        {"role": "user", "content": "3+3?"}]},
    "reasoning_content": {"messages": [
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "Rayleigh scattering.", "reasoning_content": "Shorter wavelengths scatter more."}]},
    "system_think_flag": {"messages": [
        {"role": "system", "content": "Be brief. /no_think"},
        {"role": "user", "content": "Hi"}]},
    "roles_out_of_order": {"messages": [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"}]},
    "assistant_first": {"messages": [
        {"role": "assistant", "content": "I speak first."},
        {"role": "user", "content": "ok"}]},
    "unknown_role": {"messages": [
        {"role": "user", "content": "hi"},
        {"role": "narrator", "content": "Meanwhile..."}]},
    "system_only": {"messages": [{"role": "system", "content": "Only a system prompt."}]},
    "no_messages": {"messages": []},
    "continue_final": {"continue_final_message": True, "add_generation_prompt": False, "messages": [
        {"role": "user", "content": "Write a haiku."},
        {"role": "assistant", "content": "An old silent pond"}]},
    "named_user": {"messages": [
        {"role": "user", "name": "alice", "content": "Hi, I'm Alice."}]},
    "custom_date": {"chat_template_kwargs": {"date_string": "01 Jan 2025"}, "messages": [
        {"role": "user", "content": "What's the date?"}]},
    "documents_given": {"documents": [{"title": "Doc", "text": "Some text."}], "messages": [
        {"role": "user", "content": "Summarize."}]},
}
