// The tokenizer test corpus: hard on purpose. `hex` entries are byte strings that are not
// valid UTF-8 (HF sees them decoded with U+FFFD, as Python's errors='replace' would).
// bigString() makes the 1 MB string from BIG_SEED: corpus texts picked by mulberry32 and
// joined by separators; tests/tokenizer/test_tokenizer.c rebuilds it the same way.
'use strict';

const T = (text) => ({ text });
const H = (hex) => ({ hex: hex.replace(/ /g, '') });
// code points newer than Debian's PCRE2 10.42 / utf8proc 2.8 tables: kept out of the 1 MB string
const N = (text) => ({ text, unicode_new: true });

const CORPUS = [
  // empty and whitespace
  T(''), T(' '), T('  '), T('   '), T('\t'), T('\n'), T('\r\n'), T(' \n\n\n '), T('\n\n\n\n'),
  T('Hello world'), T(' Hello'), T('  leading spaces'), T('trailing   '), T('a\tb\t\tc'),
  T('line1\r\nline2\r\n\r\nline3'), T('   \t  \n  x'), T('x \n y  \n\n  z   '), T('\u000b\u000c form feeds'),
  T('\u00a0nbsp\u00a0 in\u00a0text'), T('\u3000ideographic\u3000space'), T('a\u2028b\u2029c'),
  T('a\u0085b \u0085 c'), T('zero\u200bwidth\u200cjoin\u200d'), T('x\u180ey'), T('\u2009thin\u202fnarrow'),
  // numbers
  T('1'), T('12'), T('123'), T('1234'), T('12345678901234567890'), T('3.14159265358979'),
  T('1,000,000 and 2 000 000'), T('-42 +17 0x1F 1e-10'), T('٣٤٥ ١٢ ۴۵'), T('²³ ½ Ⅻ ⑦ 𝟙𝟚'),
  T('Phone: +1 (555) 123-4567, year 2024.'), T('v1.2.3-rc4'),
  // contractions and apostrophes
  T("I'm don't you'll we've they're it's he'd"), T("I'M DON'T YOU'LL WE'VE THEY'RE IT'S HE'D"),
  T("'s's 'S 'll'LL"), T("y'all rock 'n' roll"), T("'ſ 'K 'ﬅ"), T('it\u2019s \u2018quoted\u2019'),
  T("O'Neil's dog's bone"), T("''' \"\"\" '"),
  // code
  T('def f(x):\n    return x**2  # square\n'), T('if (a && b) { return c->d[i++]; }\n\telse {}'),
  T('<div class="x">&amp;&lt;</div>'), T('{"key": [1, 2.5, null, true], "s": "\\n"}'),
  T('    indented\n\tTabbed\n        deeper'), T('for i in range(10):\n\tprint(i, end="")'),
  T('#include <stdio.h>\nint main(void){printf("%d\\n",42);}'), T('SELECT * FROM t WHERE a>=1;'),
  T('https://example.com/path?q=1&r=two#frag'), T('user@example.org'), T('$HOME/.config ~/x ../y'),
  T('a==b!=c<=d>=e->f=>g::h'), T('!!!???...,,,;;;'), T('___init___ __name__'),
  // emoji
  T('👍'), T('👨‍👩‍👧‍👦'), T('🏳️‍🌈'), T('👋🏽 hi'), T('😀😃😄😁'), T('❤️ ♥ ☺'), T('text🚀text'),
  T('🇺🇸🇫🇷'), T('*️⃣ 1️⃣'),
  // scripts
  T('中文分词测试'), T('日本語のテキスト、カタカナ。'), T('한국어 텍스트'), T('我爱北京天安门 and English'),
  T('مرحبا بالعالم'), T('שלום עולם'), T('abc שלום 123 مرحبا'), T('नमस्ते दुनिया'), T('हिन्दी भाषा'),
  T('สวัสดีครับ'), T('Ελληνικά κείμενα'), T('Русский текст, ёж'), T('ქართული'), T('አማርኛ'),
  T('Tiếng Việt có dấu'), T('ÆØÅ æøå ß ẞ'),
  // combining marks, NFC vs NFD
  T('e\u0301'), T('a\u0308\u0301'), T('Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇'), T('caf\u00e9'), T('cafe\u0301'), T('\u1e9b\u0323'),
  T('\u1100\u1161\u11a8'), T('\u212b \u00c5 A\u030a'), T('ﬁ ﬂ ﬀ'), T('\u0915\u094d\u0937'),
  T('\u00f1 n\u0303 \u0144'),
  // added-token text inside words and text
  T('<|im_start|>user\nhi<|im_end|>'), T('x<|endoftext|>y'), T('<s>hello</s>'), T('<s> hello'),
  T('a<s>b'), T('<unk>'), T('<|begin_of_text|>Hi<|eot_id|>'), T('<think>reason</think>answer'),
  T('pre<tool_call>mid</tool_call>post'), T('<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>'),
  T('<|reserved_special_token_5|>'), T('<|im_start|><|im_start|>'), T('<|im_start'), T('<repo_name>x'),
  T('text <|im_end|> more'), T('<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>'),
  T('<s></s><unk>'), T('a <mask> b[END]  c dog dogs the cat <pad>  ★ a★b'), T(' <mask>  x'),
  // sentencepiece and byte-level lookalikes
  T('▁'), T('▁▁x'), T('Ġ ĊĠ'), T('<0x0A>'), T('<0xFF>x'), T('\u2581hello \u2581'),
  // controls
  T('\u0000nul'), T('\u0001\u0002\u0003'), T('\u007f del'), T('\ufeffBOM'), T('\ufffd replacement'),
  // newer Unicode than Debian's tables (record divergences)
  N('\u{1FAE8} shaking face'), N('\u{1FACE}moose'), N('abc\u{1E4D0}def'), N('\u{11F00}\u{11F01}'),
  N('\u{1FAE9} new'), N('x\u{10D40}y'), N('\u{31350}'), N('\u{31350}\n   \nzero'), N('a\u{1E4D0}1 \u{10D40}2'),
  // long runs
  T('a'.repeat(1000)), T(' '.repeat(500)), T('ab'.repeat(300)), T('1'.repeat(100)), T('\n'.repeat(50)),
  T('Supercalifragilisticexpialidocious'.repeat(20)), T('\t'.repeat(30) + 'x'), T('😀'.repeat(50)),
  T('中'.repeat(200)),
  // sentences
  T('The quick brown fox jumps over the lazy dog.'), T('Once upon a time, there was a little girl named Lily.'),
  T('Hello, world! How are you today? I\'m fine, thanks.'),
  // invalid UTF-8
  H('ff'), H('c3'), H('e4 b8'), H('e4 b8 ad e4'), H('ed a0 80'), H('c0 af'), H('f4 90 80 80'), H('41 80 42'),
  H('f0 9f 98 41'), H('68 69 20 e4 b8 ad 20 ff fe 20 74 68 65 72 65'),
];

const BIG_SEED = 20240607;
const BIG_BYTES = 1 << 20;

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function bigString() {
  const texts = CORPUS.filter((c) => c.text !== undefined && !c.unicode_new).map((c) => c.text);
  const seps = [' ', '\n', '', '. ', '\n\n'];
  const rnd = mulberry32(BIG_SEED);
  const parts = [];
  let bytes = 0;
  while (bytes < BIG_BYTES) {
    const t = texts[rnd() % texts.length] + seps[rnd() % seps.length];
    parts.push(t);
    bytes += Buffer.byteLength(t, 'utf8');
  }
  return parts.join('');
}

module.exports = { CORPUS, BIG_SEED, BIG_BYTES, bigString };
