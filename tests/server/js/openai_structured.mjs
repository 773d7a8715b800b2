// The real openai npm client's own parse helpers against `forge serve` (stories260K, a
// hermes tool-call format): chat.completions.parse with a JSON-schema response_format gives
// message.parsed, and with a strict tool and tool_choice required gives the call's
// parsed_arguments; the values hold what the schemas ask (checked here field by field).
// Env: BASE_URL, MODEL. Prints "N passed, N failed".
import OpenAI from 'openai';

const client = new OpenAI({ baseURL: `${process.env.BASE_URL}/v1`, apiKey: 'none', maxRetries: 0, timeout: 120000 });
const model = process.env.MODEL;
let passed = 0, failed = 0;
function check(name, cond, detail) {
  if (cond) { console.log(`ok   ${name}`); passed++; }
  else { console.log(`FAIL ${name}`); if (detail !== undefined) console.log(`    ${JSON.stringify(detail).slice(0, 500)}`); failed++; }
}
const schema = {
  type: 'object', additionalProperties: false, required: ['name', 'age', 'pet'],
  properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 1, maximum: 99 },
    pet: { enum: ['cat', 'dog', 'fish'] } },
};
try {
  for (const seed of [1, 2, 3, 4]) {
    const r = await client.chat.completions.parse({
      model, seed, temperature: 1.0, max_tokens: 200,
      messages: [{ role: 'user', content: 'Tell me about a child.' }],
      response_format: { type: 'json_schema', json_schema: { name: 'child', schema, strict: true } },
    });
    const p = r.choices[0].message.parsed;
    check(`parse helper, seed ${seed}: message.parsed holds the schema's object`, p && typeof p.name === 'string' &&
      p.name.length <= 12 && Number.isInteger(p.age) && p.age >= 1 && p.age <= 99 && ['cat', 'dog', 'fish'].includes(p.pet) &&
      Object.keys(p).length === 3 && r.choices[0].finish_reason === 'stop', r.choices[0]);
  }
  const tools = [{ type: 'function', function: { name: 'set_alarm', strict: true, parameters: {
    type: 'object', additionalProperties: false, required: ['hour', 'label'],
    properties: { hour: { type: 'integer', minimum: 0, maximum: 23 }, label: { type: 'string', maxLength: 10 } } } } }];
  for (const seed of [5, 6]) {
    const r = await client.chat.completions.parse({
      model, seed, temperature: 0.9, max_tokens: 200, tools, tool_choice: 'required', parallel_tool_calls: false,
      messages: [{ role: 'user', content: 'Wake me up.' }],
    });
    const c = r.choices[0], call = (c.message.tool_calls || [])[0];
    const a = call && call.function.parsed_arguments;
    check(`parse helper, seed ${seed}: a strict tool's parsed_arguments`, c.finish_reason === 'tool_calls' && a &&
      Number.isInteger(a.hour) && a.hour >= 0 && a.hour <= 23 && typeof a.label === 'string' && a.label.length <= 10, c);
  }
} catch (e) {
  check('threw', false, String(e && e.stack || e));
}
console.log(`${passed} passed, ${failed} failed`);
