// Load generator for OpenAI-compatible servers (forge serve, llama-server): streaming
// /v1/completions from many concurrent clients, with Node's own fetch (no dependencies).
//
//   node load.mjs check --url URL [--model M] [--clients 64] [--max-tokens 48] [--timeout 120]
//     Each of N distinct prompts is first run alone (greedy, streaming), then all N at once;
//     every concurrent client must get exactly its solo text. Exit 1 otherwise.
//   node load.mjs bench --url URL [--model M] --clients C --requests R [--max-tokens T]
//     C clients send R streaming requests in all (greedy, ignore_eos, T tokens each); prints
//     one JSON line: requests/s, output tok/s (R * T / wall time), mean TTFT and the mean time
//     between streamed chunks (client side).
const args = process.argv.slice(2);
const mode = args[0];
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const url = opt('url');
const model = opt('model', undefined);
const key = opt('key', undefined);
const clients = +opt('clients', 64);
const maxTokens = +opt('max-tokens', 48);
const timeoutS = +opt('timeout', 120);

const animals = ['cat', 'dog', 'bird', 'fish', 'bunny', 'bear', 'frog', 'duck'];
const names = ['Tim', 'Lily', 'Sam', 'Sue', 'Max', 'Amy', 'Ben', 'Mia'];
const prompts = [];
for (const a of animals) for (const n of names) prompts.push(`Once upon a time, there was a ${a} named ${n}.`);

// One streaming completion: {text, tokens, ttft, itl[]} (times in seconds).
async function stream(prompt, extra = {}) {
  const t0 = performance.now();
  const body = { prompt, max_tokens: maxTokens, temperature: 0, stream: true, ...extra };
  if (model) body.model = model;
  const headers = { 'Content-Type': 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers, body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutS * 1000) });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  const dec = new TextDecoder();
  let buf = '', text = '', chunks = 0, ttft = null, last = null, done = false;
  const itl = [];
  for await (const part of res.body) {
    buf += dec.decode(part, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k);
      buf = buf.slice(k + 2);
      for (const line of ev.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') { done = true; continue; }
        const j = JSON.parse(data);
        if (j.error) throw new Error(`stream error: ${JSON.stringify(j.error)}`);
        const c = j.choices && j.choices[0];
        if (!c || (c.text === '' && c.finish_reason)) continue;
        const now = performance.now();
        if (ttft === null) ttft = (now - t0) / 1e3;
        else itl.push((now - last) / 1e3);
        last = now;
        text += c.text;
        chunks++;
      }
    }
  }
  if (!done) throw new Error('the stream ended without [DONE]');
  return { text, chunks, ttft, itl, seconds: (performance.now() - t0) / 1e3 };
}

async function check() {
  const n = Math.min(clients, prompts.length);
  const solo = [];
  for (let i = 0; i < n; i++) solo.push((await stream(prompts[i])).text);
  const t0 = performance.now();
  const all = await Promise.all(prompts.slice(0, n).map(p => stream(p)));
  const wall = (performance.now() - t0) / 1e3;
  let bad = 0;
  all.forEach((r, i) => {
    if (r.text !== solo[i]) {
      bad++;
      console.log(`FAIL client ${i}: got ${JSON.stringify(r.text)}, alone ${JSON.stringify(solo[i])}`);
    }
  });
  const distinct = new Set(solo).size;
  console.log(`${n} concurrent streams in ${wall.toFixed(2)} s; ${n - bad} equal their solo text; ${distinct} distinct texts`);
  if (bad || distinct < n / 2) process.exit(1);
}

async function bench() {
  const total = +opt('requests', clients * 4);
  let next = 0, tokens = 0, chunks = 0, done = 0;
  const ttfts = [], itls = [];
  const t0 = performance.now();
  async function worker() {
    while (next < total) {
      const i = next++;
      const r = await stream(prompts[i % prompts.length], { ignore_eos: true });
      chunks += r.chunks;
      tokens += maxTokens; /* ignore_eos: every request generates max_tokens */
      done++;
      ttfts.push(r.ttft);
      itls.push(...r.itl);
    }
  }
  await Promise.all(Array.from({ length: clients }, worker));
  const wall = (performance.now() - t0) / 1e3;
  const mean = a => a.reduce((x, y) => x + y, 0) / Math.max(a.length, 1);
  console.log(JSON.stringify({ clients, requests: done, max_tokens: maxTokens, seconds: +wall.toFixed(3),
    requests_per_s: +(done / wall).toFixed(2), tokens_per_s: +(tokens / wall).toFixed(1), tokens, chunks,
    mean_ttft_ms: +(mean(ttfts) * 1e3).toFixed(2), mean_itl_ms: +(mean(itls) * 1e3).toFixed(3) }));
}

try {
  if (mode === 'check') await check();
  else if (mode === 'bench') await bench();
  else { console.error('usage: node load.mjs check|bench --url URL [options]'); process.exit(2); }
} catch (e) {
  console.error(`FAIL ${e.message}`);
  process.exit(1);
}
