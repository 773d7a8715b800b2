// The real openai npm client's embeddings.create against a live `forge serve` (stories260K).
// The client asks for base64 by default and decodes it itself: its vectors must equal the
// server's float answer and `forge embed`'s (FORGE_EMBED: its JSON lines for the inputs).
// Env: BASE_URL, API_KEY, MODEL, FORGE_EMBED. Prints "N passed, N failed".
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: `${process.env.BASE_URL}/v1`, apiKey: process.env.API_KEY, maxRetries: 0 });
const model = process.env.MODEL;
const cli = process.env.FORGE_EMBED.trim().split('\n').map((l) => JSON.parse(l));
let passed = 0, failed = 0;
function check(name, cond, detail) {
  if (cond) { console.log(`ok   ${name}`); passed++; }
  else { console.log(`FAIL ${name}`); if (detail !== undefined) console.log(`    ${JSON.stringify(detail).slice(0, 400)}`); failed++; }
}
const same = (a, b) => a.length === b.length && a.every((x, i) => Math.fround(x) === Math.fround(b[i]));
try {
  const inputs = ['Once upon a time', 'The cat sat on the mat.'];
  const r = await client.embeddings.create({ model, input: inputs });          // base64 on the wire
  check('embeddings: shape', r.object === 'list' && r.data.length === 2 && r.data[1].index === 1 &&
        r.data[0].object === 'embedding' && r.model === model, r);
  check('embeddings: usage', r.usage.prompt_tokens > 4 && r.usage.total_tokens === r.usage.prompt_tokens, r.usage);
  check('embeddings: 64 dimensions', r.data[0].embedding.length === 64, r.data[0].embedding.length);
  check('embeddings (base64, decoded by the client) equal forge embed', same(r.data[0].embedding, cli[0]) &&
        same(r.data[1].embedding, cli[1]));
  const f = await client.embeddings.create({ model, input: inputs[0], encoding_format: 'float' });
  check('embeddings (float) equal forge embed', same(f.data[0].embedding, cli[0]), f.data[0].embedding.slice(0, 4));
  const norm = f.data[0].embedding.reduce((s, x) => s + x * x, 0);
  check('embeddings: unit length', Math.abs(norm - 1) < 1e-5, norm);
  try {
    await client.embeddings.create({ model, input: 'x', dimensions: 8 });
    check('dimensions 8 is refused', false);
  } catch (e) {
    check('dimensions 8 is refused with 400', e.status === 400 && /dimensions/.test(e.message), String(e));
  }
} catch (e) {
  check('threw', false, String(e && e.stack || e));
}
console.log(`${passed} passed, ${failed} failed`);
