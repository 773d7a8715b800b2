/* gguf_pick.h: which file of a GGUF repository a model id names. Hub ids may carry a
 * quantization tag, `org/name-GGUF:Q4_K_M` (the convention of llama.cpp's -hf): the tag picks
 * the .gguf file whose name holds it as a word (`model-Q4_K_M.gguf`, `model.q4_k_m.gguf`,
 * `Q4_K_M/model-Q4_K_M-00001-of-00002.gguf`), or all shards of a split model. mmproj files
 * (vision projectors) are never picked. Pure functions over names: no I/O. */
#ifndef FORGE_HUB_GGUF_PICK_H
#define FORGE_HUB_GGUF_PICK_H

#include <stdbool.h>

#include "base/error.h"

/* The tag a repo without one defaults to (llama.cpp's choice). */
#define HUB_GGUF_DEFAULT_TAG "Q4_K_M"

/* True when a name is a model .gguf (not an mmproj). */
bool hub_is_model_gguf(const char *name);

/* Picks among names[0..n): for a tag, the file holding it (the shortest name when several
 * do), or every shard of the split model holding it, first shard first; with tag NULL or
 * "", HUB_GGUF_DEFAULT_TAG when it matches, else the only model there is. picked (room for
 * n) gets indices into names, *n_picked their count. Errors (FORGE_E_NOT_FOUND, or
 * FORGE_E_INVALID when the choice is ambiguous) list the GGUF files there are. */
forge_status hub_gguf_pick(const char *const *names, int n, const char *tag, int *picked, int *n_picked,
                           const char *repo, forge_error *err);

#endif
