// The real openai npm client (pinned in package-lock.json) against a live `forge serve`:
// completions and chat, streaming and not, n=2, include_usage, logprobs, stop, echo, errors,
// an auth failure. Greedy texts are compared with `forge generate`'s (GREEDY_64: its text for
// "Once upon a time", 64 tokens, temperature 0) and the reference in expected-greedy.json.
// Env: BASE_URL, API_KEY, MODEL, GREEDY_64, GREEDY_200. Prints "N passed, N failed".
import OpenAI from 'openai';

const base = process.env.BASE_URL;
const model = process.env.MODEL;
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: process.env.API_KEY, maxRetries: 0, timeout: 60000 });
const prompt = 'Once upon a time';
let passed = 0, failed = 0;

function check(name, cond, detail) {
  if (cond) { console.log(`ok   ${name}`); passed++; }
  else { console.log(`FAIL ${name}`); if (detail !== undefined) console.log(`    ${JSON.stringify(detail).slice(0, 600)}`); failed++; }
}

async function test(name, fn) {
  try { await fn(); } catch (e) { check(`${name} (threw)`, false, String(e && e.stack || e)); }
}

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

await test('models', async () => {
  const list = await client.models.list();
  check('models.list has the served model', list.data.length === 1 && list.data[0].id === model, list.data);
  check('models.list has max_model_len', list.data[0].max_model_len === 512, list.data[0]);
  const one = await client.models.retrieve(model);
  check('models.retrieve', one.id === model && one.object === 'model', one);
});

await test('completion', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 64, temperature: 0 });
  check('completion: greedy text equals forge generate', r.choices[0].text === process.env.GREEDY_64, r.choices[0].text);
  check('completion: shape', r.object === 'text_completion' && r.id.startsWith('cmpl-') && r.model === model &&
    typeof r.created === 'number' && r.choices.length === 1 && r.choices[0].index === 0 &&
    r.choices[0].finish_reason === 'length' && r.choices[0].logprobs === null, r);
  check('completion: usage', r.usage.prompt_tokens === 5 && r.usage.completion_tokens === 64 &&
    r.usage.total_tokens === 69 && r.usage.prompt_tokens_details.cached_tokens >= 0, r.usage);
  const r200 = await client.completions.create({ model, prompt, max_tokens: 200, temperature: 0 });
  check('completion: 200 greedy tokens equal expected-greedy.json', r200.choices[0].text === process.env.GREEDY_200,
    r200.choices[0].text);
});

await test('completion stream', async () => {
  const chunks = await collect(await client.completions.create({ model, prompt, max_tokens: 64, temperature: 0, stream: true }));
  const text = chunks.map(c => c.choices.map(x => x.text).join('')).join('');
  check('completion stream: text equals forge generate', text === process.env.GREEDY_64, text);
  const last = chunks[chunks.length - 1];
  check('completion stream: finish_reason on the last chunk', last.choices[0].finish_reason === 'length' &&
    chunks.slice(0, -1).every(c => c.choices[0].finish_reason === null), last);
  check('completion stream: no usage without include_usage', chunks.every(c => c.usage === undefined), last);
});

await test('include_usage', async () => {
  const chunks = await collect(await client.completions.create({ model, prompt, max_tokens: 10, temperature: 0,
    stream: true, stream_options: { include_usage: true } }));
  const last = chunks[chunks.length - 1];
  check('include_usage: the last chunk has choices [] and usage', last.choices.length === 0 &&
    last.usage.completion_tokens === 10 && last.usage.prompt_tokens === 5 && last.usage.total_tokens === 15, last);
  check('include_usage: other chunks have usage null', chunks.slice(0, -1).every(c => c.usage === null), chunks[0]);
});

await test('n=2', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 20, temperature: 0.9, n: 2, seed: 7 });
  check('n=2: two choices indexed 0 and 1', r.choices.length === 2 && r.choices[0].index === 0 && r.choices[1].index === 1, r);
  check('n=2: usage counts both choices', r.usage.completion_tokens === 40 && r.usage.prompt_tokens === 5, r.usage);
  const again = await client.completions.create({ model, prompt, max_tokens: 20, temperature: 0.9, n: 2, seed: 7 });
  check('n=2: same seed, same texts', again.choices[0].text === r.choices[0].text && again.choices[1].text === r.choices[1].text);
  const chunks = await collect(await client.completions.create({ model, prompt, max_tokens: 20, temperature: 0.9, n: 2,
    seed: 7, stream: true }));
  const texts = ['', ''];
  for (const c of chunks) for (const x of c.choices) texts[x.index] += x.text;
  check('n=2 stream: each index streams the same text as without streaming',
    texts[0] === r.choices[0].text && texts[1] === r.choices[1].text, texts);
  const chat = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Tell a story' }],
    max_tokens: 12, temperature: 0.9, n: 2, seed: 3 });
  check('n=2 chat: two choices', chat.choices.length === 2 && chat.choices[1].index === 1 &&
    chat.choices.every(c => c.message.role === 'assistant'), chat);
});

await test('logprobs', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 16, temperature: 0, logprobs: 3 });
  const lp = r.choices[0].logprobs;
  check('logprobs: one entry per token', lp.tokens.length === 16 && lp.token_logprobs.length === 16 &&
    lp.top_logprobs.length === 16 && lp.text_offset.length === 16, lp);
  check('logprobs: tokens join to the text', lp.tokens.join('') === r.choices[0].text, lp.tokens);
  check('logprobs: values are log-probabilities', lp.token_logprobs.every(v => v <= 0 && v > -100), lp.token_logprobs);
  check('logprobs: greedy picks the most likely top entry', lp.top_logprobs.every((t, i) =>
    Object.keys(t).length >= 1 && Object.keys(t).length <= 4 && Math.max(...Object.values(t)) === lp.token_logprobs[i]), lp.top_logprobs);
  check('logprobs: text_offset grows by the token lengths', lp.text_offset.every((o, i) =>
    i === 0 ? o === 0 : o === lp.text_offset[i - 1] + [...lp.tokens[i - 1]].length), lp.text_offset);
  const chat = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hello' }],
    max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 2 });
  const c = chat.choices[0].logprobs.content;
  check('chat logprobs: entries with token, logprob, bytes, top_logprobs', c.length === 8 && c.every(e =>
    typeof e.token === 'string' && e.logprob <= 0 && Array.isArray(e.bytes) && e.top_logprobs.length === 2 &&
    e.top_logprobs[0].logprob === e.logprob), c[0]);
  check('chat logprobs: tokens join to the content', c.map(e => e.token).join('') === chat.choices[0].message.content,
    c.map(e => e.token));
  check('chat logprobs: bytes are the token text in UTF-8', c.every(e =>
    Buffer.from(e.bytes).toString('utf8') === e.token), c.map(e => e.bytes));
});

await test('stop', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 64, temperature: 0, stop: ['Lily'] });
  const want = process.env.GREEDY_64.split('Lily')[0];
  check('stop: text ends before the stop string', r.choices[0].text === want, r.choices[0].text);
  check('stop: finish_reason stop', r.choices[0].finish_reason === 'stop', r.choices[0]);
  check('stop: vLLM stop_reason names the string', r.choices[0].stop_reason === 'Lily', r.choices[0]);
  const chunks = await collect(await client.completions.create({ model, prompt, max_tokens: 64, temperature: 0,
    stop: 'Lily', stream: true }));
  check('stop stream: same text', chunks.map(c => c.choices[0].text).join('') === want);
});

await test('echo', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 8, temperature: 0, echo: true });
  check('echo: the text starts with the prompt', r.choices[0].text.startsWith(prompt) &&
    process.env.GREEDY_64.startsWith(r.choices[0].text.slice(prompt.length)), r.choices[0].text);
  const z = await client.completions.create({ model, prompt, max_tokens: 0, echo: true, logprobs: 1 });
  check('echo with max_tokens 0: the prompt and its logprobs only', z.choices[0].text === prompt &&
    z.usage.completion_tokens === 0 && z.choices[0].logprobs.tokens.length === 5 &&
    z.choices[0].logprobs.token_logprobs[0] === null && z.choices[0].logprobs.token_logprobs[1] < 0, z.choices[0]);
});

await test('chat', async () => {
  const messages = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'Once upon a time' }];
  const r = await client.chat.completions.create({ model, messages, max_tokens: 32, temperature: 0 });
  const m = r.choices[0].message;
  check('chat: shape', r.object === 'chat.completion' && r.id.startsWith('chatcmpl-') && m.role === 'assistant' &&
    typeof m.content === 'string' && m.content.length > 0 && r.choices[0].finish_reason === 'length', r);
  // the same prompt through /tokenize (the chat template, no special tokens) and /v1/completions
  const tok = await (await fetch(`${base}/tokenize`, { method: 'POST', headers: { 'Content-Type': 'application/json',
    Authorization: `Bearer ${process.env.API_KEY}` }, body: JSON.stringify({ model, messages }) })).json();
  check('chat: usage counts the rendered prompt', r.usage.prompt_tokens === tok.count, [r.usage, tok.count]);
  const same = await client.completions.create({ model, prompt: tok.tokens, max_tokens: 32, temperature: 0 });
  check('chat: greedy content equals a completion of the rendered prompt', m.content === same.choices[0].text,
    [m.content, same.choices[0].text]);
  const chunks = await collect(await client.chat.completions.create({ model, messages, max_tokens: 32, temperature: 0,
    stream: true, stream_options: { include_usage: true } }));
  check('chat stream: the first chunk is the role with empty content',
    chunks[0].choices[0].delta.role === 'assistant' && chunks[0].choices[0].delta.content === '', chunks[0]);
  const content = chunks.map(c => c.choices.map(x => x.delta.content || '').join('')).join('');
  check('chat stream: same content', content === m.content, content);
  const fin = chunks[chunks.length - 2];
  check('chat stream: the finish chunk has an empty delta', JSON.stringify(fin.choices[0].delta) === '{}' &&
    fin.choices[0].finish_reason === 'length', fin);
  const u = chunks[chunks.length - 1];
  check('chat stream: the usage chunk', u.choices.length === 0 && u.usage.completion_tokens === 32, u);
  const parts = await client.chat.completions.create({ model, max_tokens: 32, temperature: 0,
    messages: [messages[0], { role: 'user', content: [{ type: 'text', text: 'Once upon a time' }] }] });
  check('chat: content parts render like a string', parts.choices[0].message.content === m.content);
  const tools = await client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 0, tool_choice: 'auto',
    tools: [{ type: 'function', function: { name: 'f', description: 'x', parameters: { type: 'object', properties: {} } } }] });
  check('chat: tools with tool_choice auto are accepted', tools.choices[0].message.role === 'assistant');
  const mct = await client.chat.completions.create({ model, messages, max_completion_tokens: 5, temperature: 0 });
  check('chat: max_completion_tokens', mct.usage.completion_tokens === 5 && m.content.startsWith(mct.choices[0].message.content));
  const rest = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], temperature: 0,
    max_tokens: undefined, stop: undefined, seed: 1, logit_bias: { 2: -100 } });
  check('chat: without max_tokens it runs to the end of the context', rest.usage.prompt_tokens +
    rest.usage.completion_tokens === 512 && rest.choices[0].finish_reason === 'length', rest.usage);
});

await test('errors', async () => {
  const bad = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'not-the-key', maxRetries: 0 });
  try {
    await bad.completions.create({ model, prompt, max_tokens: 4 });
    check('auth: a wrong key fails', false);
  } catch (e) {
    check('auth: a wrong key is AuthenticationError 401', e instanceof OpenAI.AuthenticationError && e.status === 401 &&
      e.code === 'invalid_api_key', [e.status, e.code, e.message]);
  }
  try {
    await client.completions.create({ model, prompt, max_tokens: 4, temperature: -1 });
    check('400: bad temperature fails', false);
  } catch (e) {
    check('400: BadRequestError naming the field', e instanceof OpenAI.BadRequestError && e.status === 400 &&
      e.param === 'temperature' && /temperature/.test(e.message), [e.status, e.param, e.message]);
  }
  try {
    await client.completions.create({ model: 'no-such-model', prompt, max_tokens: 4 });
    check('404: unknown model fails', false);
  } catch (e) {
    check('404: NotFoundError model_not_found', e instanceof OpenAI.NotFoundError && e.code === 'model_not_found', [e.status, e.code]);
  }
  try {
    await client.completions.create({ model, prompt: Array(600).fill(100), max_tokens: 4 });
    check('400: prompt over the context fails', false);
  } catch (e) {
    check('400: context_length_exceeded', e.status === 400 && e.code === 'context_length_exceeded', [e.status, e.code]);
  }
  try {
    const s = await client.completions.create({ model, prompt, max_tokens: 4, stream: true, temperature: 5000 });
    for await (const c of s) void c;
    check('400 before streaming: fails', false);
  } catch (e) {
    check('400 before streaming: an error, not a stream', e.status === 400, [e.status, e.message]);
  }
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
