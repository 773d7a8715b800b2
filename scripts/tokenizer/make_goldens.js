// Makes the tokenizer goldens in tests/fixtures/tokenizers/ with HF's Rust tokenizers (the
// npm package `tokenizers`, pinned in package.json; its native binary ships inside it).
//   cd scripts/tokenizer && npm ci && node make_goldens.js
// For each tokenizer and each corpus string: encode with and without special tokens, with
// special-token text split (HF's encode_special_tokens, emulated by removing the special
// tokens from added_tokens: the binding does not expose the flag), and decode as HF does
// (skip_special_tokens false / true). Plus hard id sequences for decoding (invalid and
// incomplete UTF-8), a 1 MB string made from a seed (only its id count and the sha256 of the
// ids and of the decoded text are stored), synthetic variants of the small stories260K
// tokenizer for every Split behaviour, Metaspace, Digits and added-token flag, and Llama 3
// with Meta's Sequence[ByteLevel, TemplateProcessing] post-processor.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { Tokenizer } = require('tokenizers');

const FIX = path.join(__dirname, '../../tests/fixtures/tokenizers');
const HF_VERSION = require('tokenizers/package.json').version;
const { CORPUS, BIG_SEED, BIG_BYTES, bigString } = require('./corpus.js');

// HF's encode_special_tokens (split_special_tokens) is not exposed by the binding: the
// special added tokens get a content that never occurs, which keeps every id in place
// (HF reassigns added-token ids in order when it loads, so removing them would shift ids).
function stripSpecial(json) {
  const t = JSON.parse(json);
  for (const a of t.added_tokens) if (a.special) a.content = '\u{10FFFF}\u{10FFFE}' + a.content;
  return JSON.stringify(t);
}

const sha256 = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');

async function goldens(name, json, extraDecode, withBig = true) {
  const tok = Tokenizer.fromString(json);
  const split = Tokenizer.fromString(stripSpecial(json));
  const back = new Map(); // split id -> id, for added tokens (by content)
  for (const a of JSON.parse(json).added_tokens) {
    if (!a.special) back.set(split.tokenToId(a.content), tok.tokenToId(a.content));
  }
  const cases = [];
  for (const c of CORPUS) {
    const text = c.hex !== undefined ? new TextDecoder().decode(Buffer.from(c.hex, 'hex')) : c.text;
    const enc = await tok.encode(text, null, { addSpecialTokens: true });
    const plain = await tok.encode(text, null, { addSpecialTokens: false });
    const sp = await split.encode(text, null, { addSpecialTokens: true });
    const ids = enc.getIds();
    // HF may number the added tokens of the altered copy differently: map back by string
    const idsSplit = sp.getIds().map((id) => back.get(id) ?? id);
    const row = { ids, ids_plain: plain.getIds(), ids_split: idsSplit,
                  decode: await tok.decode(ids, false), decode_skip: await tok.decode(ids, true) };
    if (c.hex !== undefined) row.hex = c.hex; else row.text = c.text;
    if (c.unicode_new) row.unicode_new = true;
    cases.push(row);
  }
  const decodes = [];
  for (const ids of extraDecode(tok)) {
    decodes.push({ ids, text: await tok.decode(ids, false), text_skip: await tok.decode(ids, true) });
  }
  if (!withBig) return { tokenizer: name, hf_tokenizers: HF_VERSION, cases, decodes };
  const big = bigString();
  const benc = await tok.encode(big, null, { addSpecialTokens: false });
  const bids = benc.getIds();
  const bigRow = { seed: BIG_SEED, bytes: Buffer.byteLength(big, 'utf8'), n_ids: bids.length,
                   ids_sha256: sha256(JSON.stringify(bids)),
                   decode_sha256: sha256(await tok.decode(bids, false)) };
  return { tokenizer: name, hf_tokenizers: HF_VERSION, cases, decodes, big: bigRow };
}

// Id sequences whose decoding is hard: random ids (byte tokens make invalid UTF-8), runs of
// byte tokens cut inside a character, special tokens between them.
function hardIds(tok) {
  const n = tok.getVocabSize(true);
  let s = 12345;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  const out = [];
  for (let k = 0; k < 8; k++) out.push(Array.from({ length: 40 }, () => Math.floor(rnd() * n)));
  const byteId = (b) => {
    let id = tok.tokenToId('<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>');
    if (id === null || id === undefined) id = tok.tokenToId(byteChar(b));
    return id;
  };
  const seqs = [[0xe4, 0xb8, 0xad], [0xe4, 0xb8], [0xe4, 0xb8, 0xad, 0xe4], [0xff], [0xf0, 0x9f, 0x98, 0x80],
                [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0x41, 0x80, 0x42], [0x20, 0xe4, 0xb8]];
  const word = tok.tokenToId('the') ?? tok.tokenToId('▁the') ?? 100;
  const spec = tok.tokenToId('</s>') ?? tok.tokenToId('<|endoftext|>') ?? tok.tokenToId('<|end_of_text|>') ?? 0;
  for (const q of seqs) {
    const ids = q.map(byteId).filter((x) => x !== null && x !== undefined);
    out.push(ids, [word, ...ids], [...ids, word], [...ids, spec, ...ids], [spec, ...ids, word, ...ids]);
  }
  return out;
}

function byteChar(b) { // GPT-2 bytes_to_unicode
  const printable = (x) => (x >= 33 && x <= 126) || (x >= 0xa1 && x <= 0xac) || x >= 0xae;
  if (printable(b)) return String.fromCodePoint(b);
  let n = 0;
  for (let i = 0; i < b; i++) if (!printable(i)) n++;
  return String.fromCodePoint(256 + n);
}

// Synthetic variants of stories260K's tokenizer (SentencePiece BPE with byte fallback, 512
// pieces): only the pipeline around the model changes.
function variants(base) {
  const b = JSON.parse(base);
  const v = {};
  const mk = (name, f) => { const t = JSON.parse(base); f(t); v[name] = JSON.stringify(t); };
  for (const beh of ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous']) {
    for (const invert of [false, true]) {
      mk(`split-${beh}${invert ? '-invert' : ''}`, (t) => {
        t.pre_tokenizer = { type: 'Split', pattern: { Regex: '▁+|\\d|[.,!?]' }, behavior: beh, invert };
      });
    }
  }
  mk('split-string', (t) => {
    t.pre_tokenizer = { type: 'Split', pattern: { String: '▁o' }, behavior: 'MergedWithNext', invert: false };
  });
  for (const scheme of ['always', 'first', 'never']) {
    for (const split of [true, false]) {
      mk(`metaspace-${scheme}${split ? '' : '-nosplit'}`, (t) => {
        t.normalizer = null;
        t.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split };
        t.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split };
      });
    }
  }
  mk('digits', (t) => {
    t.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }] };
    t.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: false },
      { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true }] };
    t.decoder = { type: 'Sequence', decoders: [{ type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
      { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] };
  });
  mk('added-flags', (t) => {
    const add = (id, content, o) => t.added_tokens.push(Object.assign({ id, content, single_word: false, lstrip: false,
      rstrip: false, normalized: false, special: false }, o));
    add(512, '<mask>', { lstrip: true, special: true });
    add(513, '[END]', { rstrip: true, special: true });
    add(514, 'dog', { single_word: true });
    add(515, 'the cat', { normalized: true });
    add(516, '<pad>', { lstrip: true, rstrip: true, special: false });
    add(517, '★', { single_word: true, normalized: true, special: true });
  });
  mk('no-decoder', (t) => { t.decoder = null; });
  return v;
}

const VARIANT_CORPUS_NOTE = 'variants use the same corpus';

async function main() {
  const names = ['smollm2', 'qwen3', 'llama3', 'mistral', 'llama2', 'stories260K', 'gemma', 'gemma3'];
  const summary = [];
  for (const name of names) {
    const json = fs.readFileSync(path.join(FIX, name, 'tokenizer.json'), 'utf8');
    const g = await goldens(name, json, hardIds);
    fs.writeFileSync(path.join(FIX, name, 'golden.json'), JSON.stringify(g));
    summary.push(`${name}: ${g.cases.length} strings, ${g.decodes.length} id sequences, 1 MB -> ${g.big.n_ids} ids`);
  }
  // Llama 3.x as Meta publishes it: Sequence[ByteLevel, TemplateProcessing(<|begin_of_text|>)]
  const l3 = JSON.parse(fs.readFileSync(path.join(FIX, 'llama3', 'tokenizer.json'), 'utf8'));
  const post = { type: 'Sequence', processors: [
    { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
             { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [128000], tokens: ['<|begin_of_text|>'] } } }] };
  l3.post_processor = post;
  const g3 = await goldens('llama3-seq', JSON.stringify(l3), () => [], false);
  g3.post_processor = post;
  fs.writeFileSync(path.join(FIX, 'llama3', 'golden-seq.json'), JSON.stringify(g3));
  summary.push(`llama3-seq: ${g3.cases.length} strings`);
  const vdir = path.join(FIX, 'variants');
  fs.mkdirSync(vdir, { recursive: true });
  const base = fs.readFileSync(path.join(FIX, 'stories260K', 'tokenizer.json'), 'utf8');
  for (const [name, json] of Object.entries(variants(base))) {
    fs.writeFileSync(path.join(vdir, `${name}.json`), json);
    const g = await goldens(name, json, hardIds, false);
    fs.writeFileSync(path.join(vdir, `${name}.golden.json`), JSON.stringify(g));
    summary.push(`variant ${name}: ${g.cases.length} strings`);
  }
  console.log(summary.join('\n'));
  void VARIANT_CORPUS_NOTE;
}

main().catch((e) => { console.error(e); process.exit(1); });
