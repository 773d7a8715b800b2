#!/usr/bin/env bash
# The GGUF's own tokenizer: ids equal llama.cpp's llama-tokenize on the same files (goldens
# by scripts/gguf/make_tok_goldens.py: llama.cpp's test strings and chat-like strings, BOS/EOS
# as each file says, special tokens parsed) and llama.cpp's test vectors without special
# tokens; the chat template from tokenizer.chat_template.
source "$(dirname "$0")/../lib.sh"
G=tests/fixtures/gguf-vocab
python3 -c "import json; json.dump(json.load(open('$G/golden.json'))['strings'], open('$T_TMP/s.json','w'))"
for f in $G/ggml-vocab-llama-spm.gguf $G/ggml-vocab-qwen2.gguf $G/ggml-vocab-phi-3.gguf tests/fixtures/stories260K-gguf/stories260K.f32.gguf; do
  n=$(basename $f)
  "$FORGE" tokenize --model $f --json "$T_TMP/s.json" >"$T_TMP/got.json" 2>"$T_TMP/err"
  res=$(python3 -c "
import json
got = json.load(open('$T_TMP/got.json')); want = json.load(open('$G/golden.json'))['ids']['$n']
bad = [i for i in range(len(want)) if got[i] != want[i]]
print(len(bad), 'of', len(want), 'differ', bad[:5])" 2>&1)
  check_eq "$n: ids equal llama-tokenize" "$res" "0 of 52 differ []"
done
for v in llama-spm qwen2 phi-3; do
  python3 -c "
import json
s = open('tests/fixtures/tokenizers/vectors/ggml-vocab-$v.gguf.inp', encoding='utf-8').read().split('\n__ggml_vocab_test__\n')
out = open('tests/fixtures/tokenizers/vectors/ggml-vocab-$v.gguf.out').read().split('\n')
json.dump(s[:len(out)], open('$T_TMP/v.json', 'w')); json.dump([[int(x) for x in l.split()] for l in out], open('$T_TMP/w.json', 'w'))"
  "$FORGE" tokenize --model $G/ggml-vocab-$v.gguf --no-special --json "$T_TMP/v.json" >"$T_TMP/got.json"
  check "$v: llama.cpp's test vectors" python3 -c "
import json, sys
g = json.load(open('$T_TMP/got.json')); w = json.load(open('$T_TMP/w.json'))
bad = [i for i in range(len(w)) if g[i] != w[i]]
sys.exit(1 if bad else 0)"
done
echo '{"messages":[{"role":"user","content":"Hi"}]}' >"$T_TMP/req.json"
out=$("$FORGE" template --model $G/ggml-vocab-qwen2.gguf --request "$T_TMP/req.json" 2>&1)
check_eq "chat template from tokenizer.chat_template" "$out" "$(printf '<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n')"
# Phi-3's template from its GGUF, as Jinja2 renders it (bos_token "<s>", generation prompt)
out=$("$FORGE" template --model $G/ggml-vocab-phi-3.gguf --request "$T_TMP/req.json" 2>&1)
check_eq "Phi-3: chat template from tokenizer.chat_template" "$out" "$(printf '<s><|user|>\nHi<|end|>\n<|assistant|>\n')"
out=$("$FORGE" template --model $G/ggml-vocab-llama-spm.gguf --request "$T_TMP/req.json" 2>&1)
check "no tokenizer.chat_template: a clear error" grep -q "no tokenizer.chat_template" <(echo "$out")
out=$("$FORGE" tokenize --model $G/ggml-vocab-qwen2.gguf --decode "9707,1879,198,151644,872" 2>&1)
check_eq "decode" "$out" "$(printf 'Hello world\n<|im_start|>user')"
finish
