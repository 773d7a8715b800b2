// HF tokenizers' side of the tokenizer benchmark: writes the mixed text (corpus texts picked
// by a seed, MB megabytes) to OUT, then times loading and single-threaded encode.
//   node bench_hf.js OUT MB DIR...   (TOKENIZERS_PARALLELISM=false is set here)
'use strict';
process.env.TOKENIZERS_PARALLELISM = 'false';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');
const { CORPUS } = require('./corpus.js');

function mixedText(mb) {
  const texts = CORPUS.filter((c) => c.text !== undefined && !c.unicode_new).map((c) => c.text);
  let a = 7;
  const rnd = () => { a = (a * 1103515245 + 12345) % 2147483648; return a; };
  const parts = [];
  let bytes = 0;
  while (bytes < mb * 1e6) {
    const t = texts[rnd() % texts.length] + [' ', '\n', '. '][rnd() % 3];
    parts.push(t);
    bytes += Buffer.byteLength(t, 'utf8');
  }
  return parts.join('');
}

(async () => {
  const [out, mb, ...dirs] = process.argv.slice(2);
  const text = mixedText(Number(mb));
  fs.writeFileSync(out, text);
  const bytes = Buffer.byteLength(text, 'utf8');
  for (const dir of dirs) {
    const loads = [];
    let tok;
    for (let r = 0; r < 3; r++) {
      const t0 = process.hrtime.bigint();
      tok = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
      loads.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    loads.sort((x, y) => x - y);
    let best = Infinity, n = 0;
    for (let r = 0; r < 2; r++) {
      const t0 = process.hrtime.bigint();
      const e = await tok.encode(text, null, { addSpecialTokens: false });
      const dt = Number(process.hrtime.bigint() - t0) / 1e9;
      n = e.getIds().length;
      if (dt < best) best = dt;
    }
    console.log(`HF    ${path.basename(dir).padEnd(12)} load ${loads[1].toFixed(1).padStart(7)} ms (median of 3)  encode ${(bytes / best / 1e6).toFixed(2).padStart(6)} MB/s (${bytes} bytes -> ${n} ids, ${(best * 1e3).toFixed(1)} ms)`);
  }
})();
