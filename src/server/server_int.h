/* server_int.h: the server's internal state, shared by its modules:
 *   server.c    lifecycle: listening, model loading, the engine-to-loop event queue,
 *               signals, shutdown
 *   http1.c     HTTP/1.1: connections, time limits, the connection cap (http1.h); heads
 *               and chunked bodies parsed in http1_parse.c
 *   routes.c    dispatch, auth, CORS, /health, /metrics, /v1/models, /tokenize, /detokenize,
 *               the chat page (/ and the files under /webui/, compiled in: webui.h)
 *   parse.c     request JSON validation into engine parameters (completions and chat)
 *   generate.c  generation requests: submit, engine events, responses and SSE streams
 *   respond.c   HTTP replies: JSON bodies, OpenAI error JSON, SSE framing, logprobs JSON
 *   metrics.c   counters and histograms, Prometheus text
 * Threads: everything here runs on the event-loop thread except server_on_engine_event
 * (engine thread) and the model loader; they talk to the loop through the message queue. */
#ifndef FORGE_SERVER_INT_H
#define FORGE_SERVER_INT_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>

#include "base/json.h"
#include "base/strbuf.h"
#include "chat/chatout.h"
#include "forge.h"
#include "server/http1.h"

typedef struct srv_req srv_req;

/* ---- errors answered to clients ------------------------------------------------------- */

/* An OpenAI error: {"error": {"message", "type", "param", "code"}} with an HTTP status. */
typedef struct srv_err {
    int status;
    const char *type; /* "invalid_request_error", "authentication_error", "server_error" */
    const char *code; /* NULL for null */
    char param[96];   /* "" for null */
    char msg[1024];
} srv_err;

/* Fills e; returns -1 so that parsers can `return srv_fail(...)`. */
int srv_fail(srv_err *e, int status, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- metrics -------------------------------------------------------------------------- */

enum { SRV_HIST_MAX = 24 };
typedef struct srv_hist {
    int n_bounds;
    const double *bounds;
    uint64_t counts[SRV_HIST_MAX + 1];
    double sum;
    uint64_t n;
} srv_hist;

enum { SRV_ROUTE_HEALTH, SRV_ROUTE_METRICS, SRV_ROUTE_MODELS, SRV_ROUTE_COMPLETIONS, SRV_ROUTE_CHAT,
       SRV_ROUTE_TOKENIZE, SRV_ROUTE_DETOKENIZE, SRV_ROUTE_WEBUI, SRV_ROUTE_EMBEDDINGS, SRV_ROUTE_OTHER, SRV_N_ROUTES };
enum { SRV_N_CODES = 13 };

typedef struct srv_metrics {
    uint64_t http[SRV_N_ROUTES][SRV_N_CODES]; /* by route and status (index in g_codes) */
    uint64_t finished[5];                      /* choices by forge_finish_reason */
    uint64_t prompt_tokens, generation_tokens, cached_tokens;
    uint64_t disconnects, timeouts_cut;
    srv_hist ttft, itl, e2e;
    atomic_ullong callback_ns; /* engine-thread CPU time in the event callback (sampled) */
    atomic_uint n_callbacks;
} srv_metrics;

void metrics_init(srv_metrics *m);
void metrics_count_http(srv_metrics *m, int route, int status);
void hist_observe(srv_hist *h, double v);
/* The Prometheus text exposition of the server's metrics and engine stats. */
void metrics_write(forge_server *s, strbuf *out);

/* ---- engine events, queued for the loop ----------------------------------------------- */

typedef struct srv_sub srv_sub;

/* One engine event copied off the engine thread (one allocation, arrays trailing). */
typedef struct srv_msg {
    struct srv_msg *next;
    srv_sub *sub;
    int choice;
    int32_t token;
    float logprob;
    int n_top;
    int32_t *top_ids;
    float *top_lp;
    int n_prompt_lp;
    float *prompt_lp;
    char *text;
    size_t text_len;
    forge_finish_reason finish;
    int stop_index;
    int prompt_tokens, completion_tokens, cached_tokens;
    double t;    /* time_sec() when the engine delivered it */
    char *error; /* NULL or the engine's message */
    float *emb;  /* an embedding request's vector (n_emb floats), else NULL */
    int n_emb;
    bool lost;   /* a copy could not be allocated: data is missing */
} srv_msg;

/* The engine's callback (engine thread): copies the event and wakes the loop. */
void server_on_engine_event(const forge_event *ev, void *user);

/* ---- in-process requests (forge_server_post) ------------------------------------------ */

typedef struct srv_local {
    struct srv_local *next;
    forge_server_reply_cb cb;
    void *user;
    char *path;
    char *body; /* NUL-terminated copy */
    size_t len;
} srv_local;

/* Answers l through its callback (counted in the metrics) and frees it. */
void local_answer(forge_server *s, srv_local *l, int route, int status, const char *json, size_t len);
void local_answer_error(forge_server *s, srv_local *l, int route, const srv_err *e);
/* Routes l on the loop thread (the server is ready or stopping). */
void routes_dispatch_local(forge_server *s, srv_local *l);

/* ---- generation requests -------------------------------------------------------------- */

/* What a completions or chat request asks for, validated (parse.c). Strings point into the
 * request's JSON document, which lives as long as the request. */
typedef struct srv_gen {
    bool chat;
    const char *model;
    int n_prompts;
    const char **texts; /* per prompt: text (NULL for a token prompt) */
    size_t *text_lens;
    int32_t **ids;      /* per prompt: token ids (tokenized text or given ids; malloc'd) */
    int *n_ids;
    bool add_special_tokens;
    forge_sampling_params sp;
    forge_logit_bias *bias;
    int n_bias;
    const char **stop;
    int n_stop;
    int32_t *stop_ids;
    int n_stop_ids;
    int n;
    long max_tokens; /* -1: the rest of the context */
    bool max_tokens_given;
    long min_tokens;
    bool ignore_eos, echo, stream, include_usage, skip_special_tokens;
    int logprobs;    /* -1: none; else the number of top alternatives */
    bool prompt_logprobs;
    char *rendered;  /* chat: the rendered prompt (malloc'd) */
    size_t rendered_len;
    bool embed;      /* POST /v1/embeddings: the prompts are its inputs */
    bool emb_base64; /* encoding_format "base64" */
    forge_constraint constraint; /* structured output (constraint.c); text in constraint_text */
    char *constraint_text;
    /* chat answers into message fields (docs/tools.md) */
    bool tools_on;            /* tools given, tool_choice not "none", a known format: parse calls */
    bool drop_tools;          /* tool_choice "none": the template gets no tools */
    bool parallel_tool_calls; /* false: only the first call is kept */
    bool reasoning_on;        /* split <think> into reasoning_content */
    bool opens_think;         /* the rendered prompt ends with <think> */
    bool tool_force;          /* tool_choice "required" or a named function: a call is forced */
    const char *tool_force_name; /* the named function (into the request's JSON), or NULL */
} srv_gen;

/* Reads root[key] (a string, strings, token ids or lists of them) into g's prompts. */
int parse_prompt(forge_server *s, const json_value *root, const char *key, srv_gen *g, srv_err *e);
/* Validates a completions (chat false) or chat request body into g; on failure fills e.
 * g must be zeroed; srv_gen_free releases it either way. */
int parse_generation(forge_server *s, const json_value *root, bool chat, srv_gen *g, srv_err *e);
/* constraint.c: reads and compiles the request's structured-output fields into g (400 naming
 * the field on failure); the field names, NULL-terminated. */
int parse_constraint(const json_value *root, const char *body, size_t len, srv_gen *g, srv_err *e);
/* tool_choice "required" or a named function: g's constraint becomes the grammar of a call in
 * the server's tool-call format (400 when it cannot be, or another constraint is given). */
int parse_tool_force(forge_server *s, const json_value *root, srv_gen *g, srv_err *e);
const char *const *parse_constraint_fields(void);
/* Renders a chat request body with the chat template (*out malloc'd). */
int parse_render_chat(forge_server *s, const char *body, size_t len, char **out, size_t *out_len, srv_err *e);
/* Renders the chat request (root, parsed from body) into g's single text prompt; without
 * its tools when g->drop_tools. */
int parse_chat_prompt(forge_server *s, const json_value *root, const char *body, size_t len, srv_gen *g, srv_err *e);
/* Tokenizes g's text prompts and checks lengths against the context. */
int parse_tokenize_prompts(forge_server *s, srv_gen *g, srv_err *e);
/* Refuses a non-streaming request whose answer would typically exceed the response limit. */
int parse_check_response_size(forge_server *s, const srv_gen *g, srv_err *e);
/* max_response_bytes, or its default. */
size_t parse_response_limit(const forge_server *s);
void srv_gen_free(srv_gen *g);
/* A request's "model" field: absent or null is fine; else it must name the served model. */
int parse_check_model(forge_server *s, const json_value *root, srv_err *e);
/* Reads an optional integer field (a JSON int, or an integral double) into *out within
 * [lo, hi]; absent or null leaves *out. */
int parse_int(const json_value *root, const char *key, long lo, long hi, long *out, srv_err *e);
int parse_bool(const json_value *root, const char *key, bool *out, srv_err *e);
/* Warns in the log about members of root that are not in known (NULL-terminated). */
void parse_warn_unknown(const json_value *root, const char *route, const char *const *known);

/* embed.c: POST /v1/embeddings. Validates the body into g (g->embed set), like
 * parse_generation, including the up-front response-size check. */
int embed_parse(forge_server *s, const json_value *root, srv_gen *g, srv_err *e);
/* The answer: {"object":"list","data":[...],"model","usage"}. */
void embed_answer_json(forge_server *s, srv_req *r, strbuf *o);

/* One choice's state. */
typedef struct srv_choice {
    strbuf text;                 /* non-streaming: the text so far */
    strbuf lp[4];                /* non-streaming logprobs, JSON array items: chat: entries;
                                    completions: tokens, token_logprobs, top_logprobs, text_offset */
    int n_lp;
    size_t text_chars;           /* code points of the tokens listed in logprobs (text_offset) */
    forge_finish_reason finish;
    int stop_index;
    int32_t last_token;
    double t_last;               /* time of the last token (inter-token latency) */
    bool echo_pending;           /* streaming echo: the prompt goes out with the first token */
    float *emb;                  /* embeddings: the input's vector (n_emb floats, malloc'd) */
    int n_emb;
    chat_out *co;                /* streaming chat with parsers on: the answer's parser */
    int n_calls;                 /* tool calls streamed so far */
} srv_choice;

/* One prompt of a request: one engine request with n choices. */
struct srv_sub {
    srv_req *r;
    forge_server *s;
    int index;
    forge_request *er; /* NULL when not submitted */
    int n_live;        /* choices not finished yet */
    int prompt_tokens, cached_tokens;
    bool got_token;
    char *echo_text;   /* the prompt's text for echo (malloc'd) */
    size_t echo_len;
};

struct srv_req {
    forge_server *s;
    srv_req *prev, *next;        /* the server's list of generation requests */
    h1_conn *hc;                 /* the client's connection; NULL once answered or gone */
    srv_local *local;            /* an in-process request: answered through its callback */
    int route;
    json_doc *doc;
    srv_gen g;
    int n_subs, n_live_subs;
    srv_sub *subs;
    srv_choice *choices;         /* n_subs * g.n */
    char id[48];
    long long created;
    double t_start;
    bool streaming;              /* the SSE response has started */
    bool gone;                   /* the client left */
    bool cancelled;              /* cancel sent to the engine */
    bool too_large;              /* the held answer grew past the response limit: cancelled */
    size_t held;                 /* bytes of the answer held so far (non-streaming) */
    char *error;                 /* an engine error to report at the end */
    forge_finish_reason worst;   /* CANCELLED or ERROR seen */
    struct event *keepalive;
    double t_last_write;
    int completion_tokens;
};

/* The request body parsed as a JSON object; NULL (e filled: 400, 413) otherwise. */
json_doc *route_parse_body(forge_server *s, h1_conn *hc, const char **body, size_t *len, srv_err *e);
/* The same for a body in memory. */
json_doc *route_parse_text(forge_server *s, const char *body, size_t len, srv_err *e);
/* Handles POST /v1/completions and /v1/chat/completions (route says which), from HTTP (hc)
 * or in-process (local; hc NULL). */
void gen_handle(forge_server *s, h1_conn *hc, srv_local *local, int route);
/* Applies one engine event on the loop thread (frees m). */
void gen_on_msg(forge_server *s, srv_msg *m);
/* The client of r is gone (disconnect, write failure): cancel its engine requests. */
void gen_client_gone(srv_req *r);
/* Shutdown: cancel every generation request (their answers say why). */
void gen_cancel_all(forge_server *s);

/* ---- HTTP hooks (routes.c) ----------------------------------------------------------- */

int routes_head(h1_conn *hc, void *arg);
void routes_request(h1_conn *hc, void *arg);
void routes_error(h1_conn *hc, const h1_error *he, void *arg);
void routes_gone(h1_conn *hc, void *arg);
void routes_written(h1_conn *hc, void *arg);
void routes_closed(h1_conn *hc, void *arg);

/* ---- the server ----------------------------------------------------------------------- */

typedef enum { SRV_LOADING, SRV_READY, SRV_STOPPING, SRV_FAILED } srv_state;

struct forge_server {
    forge_server_params p;
    char *s_model, *s_host, *s_key, *s_name, *s_template, *s_device; /* copies of the params' strings */
    char *name_json; /* s_name as a JSON string */
    char model_dir[4096];
    int port;
    struct event_base *base;
    h1_server *h1;
    bool listening;
    /* the loaded model (written by the loader thread, read after state becomes READY) */
    _Atomic srv_state state;
    pthread_t loader;
    bool loader_started;
    atomic_bool load_done;
    forge_error load_err;
    forge_model *model;
    forge_tokenizer *tok;
    forge_chat_template *tmpl;
    forge_engine *engine;
    forge_generation_config gen;
    int context_len, vocab, max_token_bytes, hidden_size;
    tc_family tc_fam;          /* the tool-call format of chat answers (override or template) */
    rp_kind rk;                /* the reasoning format */
    bool tc_given, rk_given;   /* set by tool_call_parser / reasoning_parser, not guessed */
    long long t_created;
    /* engine -> loop messages */
    pthread_mutex_t q_lock;
    srv_msg *q_head, *q_tail;
    int wake[2];
    struct event *wake_ev;
    srv_local *local_head, *local_tail; /* in-process requests not started yet (q_lock) */
    pthread_cond_t ready_cond;          /* load_done became true (q_lock) */
    atomic_int stop_requests;
    int stops_seen;
    struct event *sig_term, *sig_int, *grace;
    bool run_ok;
    /* requests and connections */
    srv_req *reqs;
    int n_reqs;
    int n_unflushed; /* requests received whose answer is not written out yet */
    uint64_t rng;
    srv_metrics metrics;
    strbuf scratch; /* a reusable buffer for building replies on the loop thread */
};

/* A random 32-hex-digit id. */
void server_random_hex(forge_server *s, char out[33]);
/* n random letters and digits, NUL-terminated (out holds n + 1). */
void server_random_alnum(forge_server *s, char *out, int n);
/* Shutdown bookkeeping: call when a request or an unflushed answer ends. */
void server_check_done(forge_server *s);
/* Seconds on a monotonic clock. */
double server_now(void);

/* ---- replies (respond.c) -------------------------------------------------------------- */

/* Standard headers on every answer: CORS, X-Request-Id (echoed or rid). */
void reply_headers(h1_conn *hc, const char *rid);
/* Sends a JSON body with a status (and counts it in the metrics). */
void reply_json(forge_server *s, h1_conn *hc, int route, int status, const char *json, size_t len);
/* Sends an OpenAI error. */
void reply_error(forge_server *s, h1_conn *hc, int route, const srv_err *e);
/* The OpenAI error JSON of e into sb. */
void error_json(strbuf *sb, const srv_err *e);
/* Starts an SSE answer (200, text/event-stream). */
void sse_start(forge_server *s, h1_conn *hc, int route);
/* Sends a frame ("data: <json>\n\n", or a comment). */
void sse_send(h1_conn *hc, const char *frame, size_t len);
/* Ends the SSE answer. */
void sse_end(h1_conn *hc);
/* JSON string of a token's text: its bytes with invalid UTF-8 replaced by U+FFFD. */
void token_text_json(forge_server *s, strbuf *sb, int32_t id);
/* JSON array of a token's raw bytes. */
void token_bytes_json(forge_server *s, strbuf *sb, int32_t id);
/* Code points of a token's text (as token_text_json writes it). */
size_t token_text_chars(forge_server *s, int32_t id);
/* The length of s cut to at most max bytes on a character boundary, for "%.*s" in messages
 * that quote what a client sent. */
int utf8_cut(const char *s, size_t max);
/* Valid UTF-8 of s[0..n) (invalid bytes as U+FFFD) appended to out. */
void utf8_sanitize(strbuf *out, const char *s, size_t n);

#endif
