// The real openai npm client (pinned in package-lock.json) against `forge serve` with the
// tool-answer model (scripts/server/make_tool_model.py): each answer is one token, forced
// with logit_bias and ended by the stop string "@@", so the server parses a known text.
// The expectations come from the answer texts, parsed here by JavaScript's own JSON.
// Env: BASE_URL, MODEL, TOOL_MODEL (the script's JSON: token ids and answer texts).
// Prints "N passed, N failed".
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: `${process.env.BASE_URL}/v1`, apiKey: 'none', maxRetries: 0, timeout: 60000 });
const model = process.env.MODEL;
const { ids, answers } = JSON.parse(process.env.TOOL_MODEL);
let passed = 0, failed = 0;

function check(name, cond, detail) {
  if (cond) { console.log(`ok   ${name}`); passed++; }
  else { console.log(`FAIL ${name}`); if (detail !== undefined) console.log(`    ${JSON.stringify(detail).slice(0, 800)}`); failed++; }
}
async function test(name, fn) {
  try { await fn(); } catch (e) { check(`${name} (threw)`, false, String(e && e.stack || e)); }
}
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);

const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
];
const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
const req = (answer, extra = {}) => ({ model, messages, tools, logit_bias: { [ids[answer]]: 100 }, stop: ['@@'],
  max_tokens: 4, temperature: 0, ...extra });

// the calls the answer text holds, read by JavaScript: <tool_call>JSON</tool_call> outside <think>
function callsIn(text) {
  const out = [];
  const body = text.replace(/<think>[\s\S]*?<\/think>/, '');
  for (const m of body.matchAll(/<tool_call>([\s\S]*?)<\/tool_call>/g)) {
    try { const o = JSON.parse(m[1]); out.push({ name: o.name, arguments: o.arguments }); } catch { /* malformed */ }
  }
  return out;
}

function checkCalls(name, msg, want) {
  const got = (msg.tool_calls || []).map(c => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) }));
  check(`${name}: tool calls`, eq(got, want), { got, want });
  check(`${name}: call ids and types`, (msg.tool_calls || []).every(c => /^call_[A-Za-z0-9]{24}$/.test(c.id) && c.type === 'function') &&
    new Set((msg.tool_calls || []).map(c => c.id)).size === (msg.tool_calls || []).length, msg.tool_calls);
}

// streams a request through the SDK's own accumulator and checks the delta shape on the way
async function streamed(name, body, markupIsContent = false) {
  const s = client.chat.completions.stream(body);
  const chunks = [];
  s.on('chunk', c => chunks.push(c));
  const final = await s.finalChatCompletion();
  const deltas = chunks.flatMap(c => c.choices.map(x => x.delta));
  const contentText = deltas.map(d => d.content || '').join('');
  if (!markupIsContent)
    check(`${name} stream: no call or think markup in content`, !/<tool_call|<\/tool_call|<think>|<\/think>/.test(contentText), contentText);
  // each call: first delta with index, id, type, name and arguments "", then argument fragments
  const firsts = deltas.flatMap(d => d.tool_calls || []).filter(t => t.id !== undefined);
  check(`${name} stream: first tool_calls delta has index, id, type, name, arguments ""`,
    firsts.every(t => typeof t.index === 'number' && t.type === 'function' && typeof t.function.name === 'string' &&
      t.function.arguments === ''), firsts);
  return { final, chunks };
}

await test('two calls after text', async () => {
  const r = await client.chat.completions.create(req('two_calls'));
  const m = r.choices[0].message;
  check('two calls: content is the text before the calls', m.content === 'Let me check.', m);
  checkCalls('two calls', m, callsIn(answers.two_calls));
  check('two calls: finish_reason tool_calls', r.choices[0].finish_reason === 'tool_calls', r.choices[0]);
  check('two calls: reasoning_content null (the template thinks)', m.reasoning_content === null, m);
  const { final, chunks } = await streamed('two calls', { ...req('two_calls'), stream: true });
  const fm = final.choices[0].message;
  check('two calls stream: the SDK assembles the same message', fm.content === m.content &&
    eq(fm.tool_calls.map(c => c.function), m.tool_calls.map(c => c.function)), { fm, m });
  check('two calls stream: finish_reason tool_calls on the last choice chunk',
    chunks.filter(c => c.choices.length).at(-1).choices[0].finish_reason === 'tool_calls', chunks.at(-1));
  check('two calls stream: one index per call', eq(fm.tool_calls.map(c => c.index ?? null).filter(x => x !== null), [0, 1]) ||
    fm.tool_calls.length === 2, fm.tool_calls);
});

await test('reasoning then a call', async () => {
  const r = await client.chat.completions.create(req('think_call'));
  const m = r.choices[0].message;
  const thought = answers.think_call.match(/<think>([\s\S]*?)<\/think>/)[1];
  check('think+call: reasoning_content is the think block', m.reasoning_content === thought, m);
  check('think+call: content null', m.content === null, m);
  checkCalls('think+call (a call inside <think> is not one)', m, callsIn(answers.think_call));
  const { chunks } = await streamed('think+call', { ...req('think_call'), stream: true });
  const deltas = chunks.flatMap(c => c.choices.map(x => x.delta));
  check('think+call stream: reasoning_content deltas join to the same', deltas.map(d => d.reasoning_content || '').join('') === thought, deltas);
});

await test('reasoning then text', async () => {
  const r = await client.chat.completions.create(req('think_text'));
  const m = r.choices[0].message;
  check('think+text: reasoning and content split', m.reasoning_content === '\nA short thought.\n' && m.content === 'It is sunny.' &&
    m.tool_calls === undefined && r.choices[0].finish_reason === 'stop', r.choices[0]);
  const { final } = await streamed('think+text', { ...req('think_text'), stream: true });
  check('think+text stream: same content', final.choices[0].message.content === 'It is sunny.', final.choices[0]);
});

await test('malformed and plain', async () => {
  const r = await client.chat.completions.create(req('malformed'));
  check('malformed call: left as content, finish stop', r.choices[0].message.content === answers.malformed &&
    r.choices[0].message.tool_calls === undefined && r.choices[0].finish_reason === 'stop', r.choices[0]);
  const { final } = await streamed('malformed', { ...req('malformed'), stream: true }, true);
  check('malformed stream: same content', final.choices[0].message.content === answers.malformed, final.choices[0]);
  const p = await client.chat.completions.create(req('plain'));
  check('plain answer with tools: content, finish stop', p.choices[0].message.content === answers.plain &&
    p.choices[0].finish_reason === 'stop', p.choices[0]);
});

await test('tool_choice and parallel_tool_calls', async () => {
  const one = await client.chat.completions.create(req('two_calls', { parallel_tool_calls: false }));
  checkCalls('parallel_tool_calls false: the first call only', one.choices[0].message, callsIn(answers.two_calls).slice(0, 1));
  const none = await client.chat.completions.create(req('two_calls', { tool_choice: 'none' }));
  check('tool_choice none: no parsing, the text as content', none.choices[0].message.content === answers.two_calls &&
    none.choices[0].message.tool_calls === undefined && none.choices[0].finish_reason === 'stop', none.choices[0]);
  const bare = await client.chat.completions.create({ ...req('plain'), tools: undefined });
  check('tool_choice none: the template gets no tools (prompt as without tools)',
    none.usage.prompt_tokens === bare.usage.prompt_tokens, { none: none.usage, bare: bare.usage });
  const withTools = await client.chat.completions.create(req('plain'));
  check('tools make the prompt longer (the template lists them)', withTools.usage.prompt_tokens > bare.usage.prompt_tokens,
    { withTools: withTools.usage, bare: bare.usage });
  for (const tc of ['required', { type: 'function', function: { name: 'get_weather' } }]) {
    // forced through the grammar: no logit_bias, the model (which knows no tools) must write a call
    // (string lengths bounded: this model would otherwise tell a story in the argument)
    const bounded = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object',
      properties: { city: { type: 'string', maxLength: 16 } }, required: ['city'] } } },
    { type: 'function', function: { name: 'get_time', parameters: { type: 'object',
      properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'] } } }];
    const r = await client.chat.completions.create({ model, messages, tools: bounded, tool_choice: tc,
      parallel_tool_calls: false, max_tokens: 300, seed: 7, temperature: 0.8 });
    const c = r.choices[0], calls = c.message.tool_calls || [];
    const names = bounded.map(t => t.function.name);
    check(`tool_choice ${JSON.stringify(tc)}: a forced call the client parses`, c.finish_reason === 'tool_calls' &&
      calls.length === 1 && (tc === 'required' ? names.includes(calls[0].function.name) : calls[0].function.name === 'get_weather') &&
      typeof JSON.parse(calls[0].function.arguments) === 'object' && !c.message.content, c);
  }
});

await test('n=2 and a round trip', async () => {
  const r = await client.chat.completions.create(req('two_calls', { n: 2 }));
  check('n=2: both choices have the calls', r.choices.length === 2 && r.choices.every(c => c.message.tool_calls.length === 2 &&
    c.finish_reason === 'tool_calls'), r.choices);
  const m = r.choices[0].message;
  const history = [...messages, { role: 'assistant', content: m.content, tool_calls: m.tool_calls },
    ...m.tool_calls.map(c => ({ role: 'tool', tool_call_id: c.id, content: 'sunny' }))];
  const back = await client.chat.completions.create({ ...req('plain'), messages: history });
  check('the answer sent back as history renders (assistant tool_calls, tool messages)',
    back.choices[0].message.content === answers.plain && back.usage.prompt_tokens > r.usage.prompt_tokens, back);
});

await test('logprobs while streaming a call', async () => {
  const chunks = [];
  const stream = await client.chat.completions.create({ ...req('two_calls'), stream: true, logprobs: true,
    stream_options: { include_usage: true } });
  for await (const c of stream) chunks.push(c);
  const entries = chunks.flatMap(c => c.choices.flatMap(x => (x.logprobs && x.logprobs.content) || []));
  const usage = chunks.at(-1).usage;
  check('logprobs: one entry per generated token, though the text is held', usage && entries.length === usage.completion_tokens,
    { entries: entries.length, usage });
  const calls = chunks.flatMap(c => c.choices.flatMap(x => (x.delta && x.delta.tool_calls) || []));
  check('logprobs: the calls still stream', calls.filter(t => t.id).length === 2, calls);
});

await test('chat_template_kwargs', async () => {
  const r = await client.chat.completions.create(req('open_think', { chat_template_kwargs: { open_think: true } }));
  check('a prompt ending in <think>: the answer starts in reasoning', r.choices[0].message.reasoning_content === 'Thinking inside.' &&
    r.choices[0].message.content === 'Done.', r.choices[0].message);
  const off = await client.chat.completions.create(req('open_think'));
  check('without it the same answer is content', off.choices[0].message.content === answers.open_think &&
    off.choices[0].message.reasoning_content === null, off.choices[0].message);
});

console.log(`${passed} passed, ${failed} failed`);
