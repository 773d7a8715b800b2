// validate.mjs: reads JSONL lines {"id", "schema", "text"} on stdin and validates JSON.parse(text)
// against schema with ajv (draft 2020-12, ajv-formats for date/time/date-time/uuid).
// Prints "FAIL id: why" per invalid text and ends with "N passed, N failed".
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { createInterface } from "node:readline";

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
let passed = 0, failed = 0;
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  const { id, schema, text } = JSON.parse(line);
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    failed++;
    console.log(`FAIL ${id}: not JSON (${e.message}): ${JSON.stringify(text)}`);
    continue;
  }
  const ok = ajv.validate(schema, value);
  if (ok) passed++;
  else {
    failed++;
    console.log(`FAIL ${id}: ${ajv.errorsText()}: ${JSON.stringify(text)}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
