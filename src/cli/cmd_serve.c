/* forge serve: the OpenAI-compatible HTTP server (the library's forge_server). Flags
 * override the environment (FORGE_MODEL, FORGE_HOST, FORGE_PORT, FORGE_API_KEY,
 * FORGE_DEVICE, the latter read by the engine). SIGTERM or Ctrl-C stop it gracefully; a second one cancels what runs. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/session.h"

static int env_long(const char *name, long lo, long hi, long *out) {
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi) {
        fprintf(stderr, "forge serve: %s must be an integer from %ld to %ld, got '%s'\n", name, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

int cmd_serve(int argc, char **argv) {
    cli_model_opts mo = {0};
    const char *host = NULL, *api_key = NULL, *name = NULL, *tmpl = NULL, *device = NULL, *tool_parser = NULL,
               *reasoning_parser = NULL;
    long port = LONG_MIN, max_waiting = 0, max_body_mb = 0, max_conns = 0, max_choices = 0, max_response_mb = 0;
    double request_timeout = 0, shutdown_timeout = 0, keepalive = 0, gpu_util = 0;
    int no_prefix = 0, no_webui = 0, help = 0;
    cli_opt opts[40];
    int n = cli_model_options(opts, &mo, true);
    opts[n++] = (cli_opt){"host", OPT_STR, &host, "ADDR: address to listen on (default $FORGE_HOST, else 127.0.0.1)"};
    opts[n++] = (cli_opt){"port", OPT_INT, &port, "N: port (default $FORGE_PORT, else 8080; 0: any free port)"};
    opts[n++] = (cli_opt){"api-key", OPT_STR, &api_key, "KEY: require 'Authorization: Bearer KEY' (default $FORGE_API_KEY)"};
    opts[n++] = (cli_opt){"served-model-name", OPT_STR, &name, "NAME: the model name clients use (default: --model)"};
    opts[n++] = (cli_opt){"chat-template", OPT_STR, &tmpl, "FILE: Jinja chat template overriding the model's"};
    opts[n++] = (cli_opt){"tool-call-parser", OPT_STR, &tool_parser,
                          "NAME: auto|hermes|llama3_json|mistral|none: the tool-call format of chat answers "
                          "(default auto: from the chat template)"};
    opts[n++] = (cli_opt){"reasoning-parser", OPT_STR, &reasoning_parser,
                          "NAME: auto|qwen3|deepseek_r1|none: split <think> into reasoning_content "
                          "(default auto: from the chat template)"};
    opts[n++] = (cli_opt){"request-timeout", OPT_DOUBLE, &request_timeout,
                          "SECONDS: time a client has to send a whole request (default 60)"};
    opts[n++] = (cli_opt){"shutdown-timeout", OPT_DOUBLE, &shutdown_timeout,
                          "SECONDS: time running requests get to finish after SIGTERM (default 30; -1: none)"};
    opts[n++] = (cli_opt){"sse-keepalive", OPT_DOUBLE, &keepalive,
                          "SECONDS: silence before an SSE keep-alive comment (default 10)"};
    opts[n++] = (cli_opt){"max-body-mb", OPT_INT, &max_body_mb, "MB: largest request body (default 8)"};
    opts[n++] = (cli_opt){"max-waiting", OPT_INT, &max_waiting, "N: queued sequences before 503 (default 1024)"};
    opts[n++] = (cli_opt){"max-connections", OPT_INT, &max_conns,
                          "N: open connections at most (default: from ulimit -n, less headroom)"};
    opts[n++] = (cli_opt){"max-choices", OPT_INT, &max_choices, "N: n x prompts in one request at most (default 128)"};
    opts[n++] = (cli_opt){"max-response-mb", OPT_INT, &max_response_mb,
                          "MB: refuse non-streaming requests whose answer could exceed this (default 256)"};
    opts[n++] = (cli_opt){"no-prefix-caching", OPT_FLAG, &no_prefix, "turn the prefix cache off"};
    opts[n++] = (cli_opt){"no-webui", OPT_FLAG, &no_webui, "do not serve the chat page at / (404 instead)"};
    opts[n++] = (cli_opt){"device", OPT_STR, &device, "auto|cpu|cuda: where to run (default $FORGE_DEVICE, else auto)"};
    opts[n++] = (cli_opt){"gpu-memory-utilization", OPT_DOUBLE, &gpu_util,
                          "FRACTION: share of GPU memory to use (default 0.9)"};
    opts[n++] = (cli_opt){"help", OPT_FLAG, &help, "this help"};
    const char *pos[1];
    if (cli_parse("serve", argc, argv, opts, n, pos, 0) < 0) return 2;
    if (help) {
        cli_usage("serve", "[--model M] [--port N] [options]", opts, n);
        return 0;
    }
    if (port == LONG_MIN) {
        port = 8080;
        if (env_long("FORGE_PORT", 0, 65535, &port)) return 2;
    } else if (port < 0 || port > 65535) {
        fprintf(stderr, "forge serve: --port must be from 0 to 65535, got %ld\n", port);
        return 2;
    }
    if (!host) host = getenv("FORGE_HOST");
    if (!api_key) api_key = getenv("FORGE_API_KEY");
    if (max_waiting < 0 || max_waiting > INT_MAX || max_body_mb < 0 || max_body_mb > 4096 || mo.threads < 0 ||
        mo.threads > 1024 || mo.max_model_len < 0 || mo.max_model_len > INT_MAX || mo.max_seqs < 0 ||
        mo.max_seqs > 4096 || mo.max_batched_tokens < 0 || mo.max_batched_tokens > 65536 || mo.kv_cache_mb < 0 ||
        request_timeout < 0 || keepalive < 0 || gpu_util < 0 || gpu_util > 1 || max_conns < 0 || max_conns > 1000000 ||
        max_choices < 0 || max_choices > 65536 || max_response_mb < 0 || max_response_mb > 65536) {
        fprintf(stderr, "forge serve: a numeric option is out of range (see forge serve --help)\n");
        return 2;
    }
    forge_dtype kvd;
    if (cli_kv_dtype(mo.kv_dtype, "serve", &kvd) != 0) return 2;
    char builtin[4096];
    const char *model = mo.model && *mo.model ? mo.model : getenv("FORGE_MODEL");
    if (!model || !*model) {
        if (cli_default_model(builtin, sizeof builtin) != 0) {
            fprintf(stderr, "forge serve: no --model given, FORGE_MODEL unset, and the built-in model is missing\n");
            return 2;
        }
        model = builtin;
        if (!name) name = "stories260K";
    }
    forge_server_params sp = {
        .model = model,
        .host = host,
        .port = (int)port,
        .api_key = api_key,
        .served_model_name = name,
        .chat_template = tmpl,
        .tool_call_parser = tool_parser,
        .reasoning_parser = reasoning_parser,
        .request_timeout = request_timeout,
        .shutdown_timeout = shutdown_timeout,
        .sse_keepalive = keepalive,
        .max_body_bytes = (size_t)max_body_mb << 20,
        .max_connections = (int)max_conns,
        .max_choices = (int)max_choices,
        .max_response_bytes = (size_t)max_response_mb << 20,
        .handle_signals = true,
        .no_webui = no_webui != 0,
        .model_params = {.max_model_len = (int)mo.max_model_len, .n_threads = (int)mo.threads},
        .engine = {.max_seqs = (int)mo.max_seqs, .max_batched_tokens = (int)mo.max_batched_tokens,
                   .max_waiting = (int)max_waiting, .kv_cache_mb = (size_t)mo.kv_cache_mb, .kv_dtype = kvd,
                   .n_threads = (int)mo.threads, .no_prefix_caching = no_prefix != 0, .device = device,
                   .gpu_memory_utilization = (float)gpu_util},
        .hub = {.progress = true},
    };
    /* servers hold a descriptor per client: use the hard limit (as nginx's
     * worker_rlimit_nofile or Go's runtime do); the default connection cap follows it */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        if (want > rl.rlim_cur) {
            rl.rlim_cur = want;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    forge_error err;
    forge_server *srv = forge_server_create(&sp, &err);
    if (!srv) {
        fprintf(stderr, "forge serve: %s\n", err.msg);
        return 1;
    }
    forge_status st = forge_server_run(srv, &err);
    forge_server_free(srv);
    if (st != FORGE_OK) {
        fprintf(stderr, "forge serve: %s\n", err.msg);
        return 1;
    }
    return 0;
}
