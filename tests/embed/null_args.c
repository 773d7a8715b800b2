/* null_args.c: every entry point given NULL where it needs a pointer answers as forge.h's
 * NULL rule says (an error naming the argument, NULL, 0, or nothing) and never crashes.
 * Built against the installed header with pkg-config (tests/embed/embed.test.sh). */
#include <forge.h>
#include <stdio.h>
#include <string.h>

static int failures;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);                                    \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)
/* a status call that must fail with FORGE_E_INVALID and a message */
#define INVALID(call)                                                                              \
    do {                                                                                           \
        memset(&err, 0, sizeof err);                                                               \
        forge_status st_ = (call);                                                                 \
        CHECK(st_ == FORGE_E_INVALID && err.code == FORGE_E_INVALID && err.msg[0]);                \
    } while (0)
#define NULL_WITH_ERROR(call)                                                                      \
    do {                                                                                           \
        memset(&err, 0, sizeof err);                                                               \
        CHECK((call) == NULL && err.code != FORGE_OK && err.msg[0]);                               \
    } while (0)

int main(void) {
    forge_error err;
    char buf[256];
    const char *text;
    size_t len;
    forge_tokens toks = {0};
    forge_generation_config gc;
    forge_sampling_params sp = forge_sampling_default_params();
    forge_request_params rp = {0};
    forge_engine_stats stats;

    /* constructors */
    NULL_WITH_ERROR(forge_model_open(NULL, NULL, &err));
    NULL_WITH_ERROR(forge_tokenizer_open(NULL, &err));
    NULL_WITH_ERROR(forge_tokenizer_load(NULL, 10, NULL, 0, &err));
    NULL_WITH_ERROR(forge_detok_create(NULL, 0, &err));
    NULL_WITH_ERROR(forge_context_create(NULL, NULL, &err));
    NULL_WITH_ERROR(forge_engine_create(NULL, NULL, NULL, &err));
    NULL_WITH_ERROR(forge_chat_template_load(NULL, NULL, &err));
    NULL_WITH_ERROR(forge_engine_submit(NULL, &rp, NULL, NULL, &err));
    CHECK(forge_model_open(NULL, NULL, NULL) == NULL); /* err itself may be NULL */

    /* status calls */
    INVALID(forge_sampling_params_check(NULL, 10, &err));
    INVALID(forge_generation_config_load(NULL, &gc, &err));
    INVALID(forge_generation_config_load(".", NULL, &err));
    INVALID(forge_tokenizer_encode(NULL, "a", 1, 0, &toks, &err));
    INVALID(forge_detok_prime(NULL, NULL, 0, &err));
    INVALID(forge_detok_push(NULL, 1, &text, &len, &err));
    INVALID(forge_detok_finish(NULL, &text, &len, &err));
    INVALID(forge_context_decode(NULL, NULL, &err));
    INVALID(forge_chat_template_render(NULL, "{}", 2, NULL, NULL, &err));
    INVALID(forge_builtin_model_path(NULL, 10, &err));
    INVALID(forge_hub_download(NULL, NULL, buf, sizeof buf, &err));
    INVALID(forge_hub_download("org/name", NULL, NULL, 0, &err));
    INVALID(forge_hub_cache_dir(NULL, NULL, 0, &err));
    INVALID(forge_server_run(NULL, &err));
    CHECK(forge_context_kv_budget(NULL, NULL, &err) == 0);

    /* getters and void calls */
    CHECK(forge_model_get_info(NULL) == NULL);
    CHECK(forge_tokenizer_get_info(NULL) == NULL);
    CHECK(forge_tokenizer_decode(NULL, NULL, 0, 0, NULL, &err) == NULL);
    CHECK(forge_tokenizer_id_to_token(NULL, 1, &len) == NULL);
    CHECK(forge_tokenizer_token_to_id(NULL, "a", 1) == -1);
    CHECK(!forge_tokenizer_is_special(NULL, 1));
    CHECK(forge_tokenizer_token_bytes(NULL, 1, buf, sizeof buf) == -1);
    CHECK(forge_context_n_kv_blocks(NULL) == 0);
    CHECK(forge_context_logits(NULL, 0) == NULL);
    CHECK(forge_context_device(NULL) != NULL);
    CHECK(forge_chat_template_origin(NULL) != NULL);
    CHECK(forge_engine_context_len(NULL) == 0);
    CHECK(forge_engine_step(NULL) == FORGE_E_INVALID);
    CHECK(forge_request_seed(NULL) == 0);
    CHECK(forge_request_done(NULL));
    CHECK(forge_server_port(NULL) == -1);
    memset(&stats, 0xff, sizeof stats);
    forge_engine_get_stats(NULL, &stats);
    CHECK(stats.requests_done == 0 && stats.running == 0);
    forge_engine_get_stats(NULL, NULL);
    forge_request_cancel(NULL);
    forge_request_wait(NULL);
    forge_request_release(NULL);
    forge_engine_free(NULL);
    forge_model_close(NULL);
    forge_tokenizer_close(NULL);
    forge_tokens_free(NULL);
    forge_detok_free(NULL);
    forge_detok_reset(NULL, 0);
    forge_context_free(NULL);
    forge_chat_template_free(NULL);
    forge_chat_template_set_limits(NULL, NULL);
    forge_sampling_params_default(NULL);
    forge_server_stop(NULL);
    forge_server_free(NULL);
    forge_log_set(NULL, NULL);
    CHECK(forge_status_str((forge_status)12345) != NULL);
    (void)sp;

    printf("%s\n", failures ? "null_args: FAILED" : "null_args: ok");
    return failures != 0;
}
