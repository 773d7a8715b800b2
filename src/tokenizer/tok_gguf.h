/* tok_gguf.h: a GGUF's own tokenizer (tokenizer.ggml.*) as the two documents Forge's
 * tokenizer reads: a tokenizer.json and a tokenizer_config.json, built to tokenize as
 * llama.cpp does with the same file.
 *   gpt2: byte-level BPE, the GGUF's merges, the pre-tokenizer regexes llama.cpp uses for
 *         tokenizer.ggml.pre (llama-bpe/llama3, qwen2, smollm/starcoder, gpt-2);
 *   llama: SentencePiece-style BPE with byte fallback; the merges are every split of a
 *         vocab piece into two vocab pieces, ranked by the piece's score (highest first),
 *         which is llama.cpp's merge order.
 * Token types: CONTROL and UNKNOWN become special added tokens, USER_DEFINED plain added
 * tokens. add_bos/add_eos: tokenizer.ggml.add_bos_token/add_eos_token, else llama.cpp's
 * default for the model and pre-tokenizer. tokenizer.chat_template goes into the config. */
#ifndef FORGE_TOKENIZER_TOK_GGUF_H
#define FORGE_TOKENIZER_TOK_GGUF_H

#include <stddef.h>

#include "model/gguf.h"

forge_status gguf_tokenizer_docs(const gguf_file *g, char **json, size_t *len, char **config, size_t *config_len,
                                 forge_error *err);

/* If path is a .gguf file, or a folder without tokenizer.json that holds one GGUF, sets
 * *docs to 1 and fills the documents from that file; else *docs = 0. */
forge_status gguf_tokenizer_docs_for(const char *path, int *docs, char **json, size_t *len, char **config,
                                     size_t *config_len, forge_error *err);

#endif
