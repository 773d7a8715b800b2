/* batch.h: forge batch's shared state, line formats and resume set (cmd_batch.c runs the
 * command: reader thread, ring of slots, engine and server callbacks, progress, summary;
 * batch_lines.c parses input lines and writes output lines; batch_resume.c reads what an
 * earlier run wrote).
 *
 * Two line formats, detected per line:
 *  - simple: {"prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p",
 *    "repetition_penalty", "presence_penalty", "frequency_penalty", "seed", "stop"}; missing
 *    fields take the command line's (and generation_config.json's) defaults. Output:
 *    {"index", "completion", "finish_reason", "prompt_tokens", "completion_tokens",
 *    "cached_tokens", "ttft_ms", "total_ms"} or {"index", "error"}.
 *  - OpenAI Batch API: {"custom_id", "method": "POST", "url", "body"} with url
 *    /v1/chat/completions, /v1/completions or /v1/embeddings. The body goes through the
 *    server's own request code in-process (forge_server_post), so the answer is exactly what
 *    `forge serve` would send. Output: {"id", "custom_id", "response": {"status_code",
 *    "request_id", "body"}, "error": null}, or "response": null and "error": {"code",
 *    "message"} for a line that could not be sent at all.
 * A line that is not JSON is reported in the format of the line before it (simple when
 * there is none).
 *
 * Streaming with backpressure: at most `in_flight` requests are in the engine at once
 * (twice --max-seqs), and lines are read only while the ring of not-yet-written outputs
 * (`ring` slots) has room; outputs are written in input order as soon as a line and every
 * line before it are done. Memory is bounded by the ring, whatever the file's size; latency
 * percentiles come from fixed-size histograms. A request the engine refuses as busy
 * (FORGE_E_BUSY, or the server's 503 "overloaded") is retried once others finish.
 *
 * --resume skips the lines whose custom_id (OpenAI lines) or index (simple lines) the
 * --output file already holds, drops a torn last line, and appends the rest in order.
 * The exit status is 1 when any line failed (an error, or a status other than 200). */
#ifndef FORGE_CLI_BATCH_H
#define FORGE_CLI_BATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/hashmap.h"
#include "base/json.h"
#include "base/strbuf.h"
#include "forge.h"

/* ---- latency histograms (bounded memory for any number of requests) ------------------- */

enum { HIST_BUCKETS = 1400 }; /* 2% wide buckets from 1 us to ~1e6 s */

typedef struct hist {
    uint64_t n;
    uint32_t count[HIST_BUCKETS];
} hist;

/* ---- state -------------------------------------------------------------------------------- */

enum { SLOT_FREE, SLOT_PENDING, SLOT_RETRY, SLOT_DONE };

typedef struct batch batch;

typedef struct slot {
    batch *b;
    int state;
    bool openai, failed;
    long index;            /* the line's index among non-empty lines */
    /* simple lines */
    json_doc *doc;         /* the parsed line (prompt and stop strings point into it) */
    forge_request_params rp;
    const char *stops[16];
    char *constraint_text; /* the line's structured-output constraint (rp.constraint points here) */
    forge_request *req;
    strbuf text;
    forge_finish_reason finish;
    int prompt_tokens, completion_tokens, cached;
    double ttft_ms, total_ms, last_ms;
    /* OpenAI lines */
    char *custom_id;       /* JSON text of custom_id ("null" when unknown) */
    const char *url;
    char *body;            /* the request body as JSON text (kept for a retry) */
    size_t body_len;
    bool posted_idle;      /* posted while nothing else of ours ran */
    int status;
    char *reply;           /* the server's answer */
    size_t reply_len;
    const char *error_code;
    char error[1100];      /* the line's error message ("" when none) */
} slot;

struct batch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    slot *slots;
    long ring;              /* slots */
    long in_flight_max;
    long head, next;        /* sequence numbers: oldest unwritten, next to assign */
    long in_flight, n_retry, retries;
    long long completions, busy_mark; /* retries wait for a completion after the last busy */
    long long gen_tokens;
    long done_lines, failed_lines, skipped_lines;
    hist ttft, itl;
    forge_server *srv;
    forge_engine *engine;
    uint64_t rng;
    /* the reader thread's mailbox: one line read ahead (so that outputs are written while
     * a slow input, a pipe, has nothing new) */
    FILE *in;
    pthread_cond_t reader_cond;
    char *line;
    size_t line_len;
    bool has_line, in_eof, reader_stop;
    int in_errno;
};

typedef struct done_set {
    strmap ids;       /* custom_ids (keys point into `keys`) */
    char **keys;
    size_t n_keys, cap_keys;
    uint8_t *index;   /* bitmap of simple-line indexes */
    size_t n_index;   /* bits */
} done_set;

/* A random 32-hex-digit id (splitmix64 over b->rng). */
void batch_random_hex(batch *b, char out[33]);

/* ---- batch_lines.c ---- */
/* Builds a simple line's request parameters; errors (naming the field) go to it->error. */
int batch_parse_simple(const json_value *o, const forge_sampling_params *dflt, long dflt_max, slot *it);
/* Whether a line object is an OpenAI Batch API line. */
bool batch_is_openai_line(const json_value *o);
/* Reads an OpenAI line into it (custom_id, url, body); errors go to it->error. */
int batch_parse_openai(const json_value *o, slot *it);
/* The output line of a finished slot; sets it->failed. */
void batch_write_line(batch *b, slot *it, strbuf *out);
/* Frees a slot's line and keeps its text buffer for the next one. */
void batch_slot_clear(slot *it);

/* ---- batch_resume.c ---- */
bool batch_done_has(const done_set *d, const slot *it, const json_value *cid);
void batch_done_free(done_set *d);
/* Reads what an earlier run wrote to path; drops a torn last line. */
int batch_load_done(const char *path, done_set *d, long *n_lines);
/* The non-empty lines of a file, or -1. */
long batch_count_lines(const char *path);

#endif
