/* progress.h: download progress on stderr, shared by the download threads. On a terminal, one
 * bar redrawn at most ten times a second (bytes, rate, ETA); otherwise one line when the
 * download starts, one per file and one at the end, so logs stay readable. */
#ifndef FORGE_HUB_PROGRESS_H
#define FORGE_HUB_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "forge.h"

#include <stdatomic.h>

typedef struct hub_progress hub_progress;

/* enabled false: nothing is shown but notes (warnings). NULL when out of memory. */
hub_progress *hub_progress_create(bool enabled);
void hub_progress_free(hub_progress *p);
/* Also reports bytes done/total to cb (may be NULL); when it returns false, *cancel is set
 * (the downloads in flight stop). */
void hub_progress_set_callback(hub_progress *p, forge_progress_cb cb, void *user, atomic_int *cancel);
/* Starts the display: label (e.g. "org/name@main"), files and bytes to fetch so far. */
void hub_progress_begin(hub_progress *p, const char *label, int n_files, int64_t bytes);
/* More files / bytes became known (the shards named by an index). */
void hub_progress_add(hub_progress *p, int n_files, int64_t bytes);
/* delta bytes arrived (negative when a download restarts from scratch). */
void hub_progress_advance(hub_progress *p, int64_t delta);
/* A file is in place; fetched says whether its bytes came over the network. */
void hub_progress_file_done(hub_progress *p, const char *name, int64_t size, bool fetched);
/* An informative line, shown only when enabled, printed above the bar. */
void hub_progress_info(hub_progress *p, const char *fmt, ...) FORGE_PRINTF(2, 3);
/* A warning line (always shown; p may be NULL), printed above the bar. */
void hub_progress_note(hub_progress *p, const char *fmt, ...) FORGE_PRINTF(2, 3);
/* Ends the display (the final bar state, or a summary line). */
void hub_progress_end(hub_progress *p, bool ok);
/* Formats a byte count as tqdm does ("1.04 MB", "437 B"). */
void hub_format_bytes(double bytes, char *out, size_t n);

#endif
