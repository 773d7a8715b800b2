/* Base layer: JSON, float repr (expected strings are Python 3.11's repr()), UTF-8, strbuf,
 * hash maps, the thread pool. */
#include <math.h>
#include <stdatomic.h>

#include "base/cpu.h"
#include "base/hashmap.h"
#include "base/json.h"
#include "base/strbuf.h"
#include "base/threadpool.h"
#include "base/utf8.h"
#include "test.h"

TEST(json_types_and_order) {
    const char *t = "{\"b\": 1, \"a\": [1.0, -3, 2e3, true, null, \"x\\u00e9\\n\"], \"b\": 9007199254740993,"
                    " \"big\": 123456789012345678901234}";
    forge_error err = {0};
    json_doc *d = json_parse(t, strlen(t), &err);
    CHECKF(d, "%s", err.msg);
    if (!d) return;
    const json_value *r = json_root(d);
    CHECK(r->type == JSON_OBJECT && r->n == 4);
    CHECK_EQ_STR(r->u.members[0].key, "b");
    CHECK_EQ_STR(r->u.members[1].key, "a");
    const json_value *b = json_get(r, "b"); /* the last duplicate wins, as Python's json */
    CHECK(b->type == JSON_INT && b->u.i == 9007199254740993LL);
    const json_value *a = json_get(r, "a");
    CHECK(a->n == 6);
    CHECK(json_at(a, 0)->type == JSON_DOUBLE && json_at(a, 0)->u.d == 1.0);
    CHECK(json_at(a, 1)->type == JSON_INT && json_at(a, 1)->u.i == -3);
    CHECK(json_at(a, 2)->type == JSON_DOUBLE && json_at(a, 2)->u.d == 2000.0);
    CHECK(json_at(a, 3)->type == JSON_BOOL && json_at(a, 3)->u.b);
    CHECK(json_at(a, 4)->type == JSON_NULL);
    CHECK_EQ_STR(json_string(json_at(a, 5)), "x\xc3\xa9\n");
    CHECK(json_at(a, 6) == NULL);
    CHECK(json_get(r, "big")->type == JSON_DOUBLE);
    strbuf sb = STRBUF_INIT;
    json_write_value(&sb, a);
    CHECK_EQ_STR(sb_str(&sb), "[1.0,-3,2000.0,true,null,\"x\xc3\xa9\\n\"]");
    sb_free(&sb);
    json_free(d);
}

/* Literals beyond double range are written as JSON that reads back as the same infinity
 * (fuzz_toolcall found tool call arguments written as Python's Infinity, not JSON). */
TEST(json_write_out_of_range) {
    forge_error err;
    json_doc *d = json_parse("{\"x\": 1003875820E194212736, \"y\": [-1e400, 1e-400]}", 50, &err);
    CHECK(d != NULL);
    strbuf sb = STRBUF_INIT;
    json_write_value(&sb, json_root(d));
    CHECK_EQ_STR(sb_str(&sb), "{\"x\":1e999,\"y\":[-1e999,0.0]}");
    json_doc *d2 = json_parse(sb_str(&sb), sb.len, &err);
    CHECK(d2 != NULL);
    if (d2) CHECK(isinf(json_get(json_root(d2), "x")->u.d) && json_get(json_root(d2), "x")->u.d > 0);
    json_free(d2);
    sb_free(&sb);
    json_free(d);
}

TEST(json_numbers) {
    const char *t = "[9223372036854775807, -9223372036854775808, 9223372036854775808, -0, 1e2, 0.5, -12, 00]";
    forge_error err;
    json_doc *d = json_parse(t, strlen(t) - 5, &err); /* without the invalid "00" */
    CHECKF(d == NULL, "trailing comma accepted");
    json_free(d);
    d = json_parse("[9223372036854775807, -9223372036854775808, 9223372036854775808, -0, 1e2, 0.5, -12]", 83, &err);
    CHECKF(d, "%s", err.msg);
    if (!d) return;
    const json_value *a = json_root(d);
    CHECK(json_at(a, 0)->type == JSON_INT && json_at(a, 0)->u.i == INT64_MAX);
    CHECK(json_at(a, 1)->type == JSON_INT && json_at(a, 1)->u.i == INT64_MIN);
    CHECK(json_at(a, 2)->type == JSON_DOUBLE && json_at(a, 2)->u.d == 9223372036854775808.0);
    CHECK(json_at(a, 3)->type == JSON_INT && json_at(a, 3)->u.i == 0);
    CHECK(json_at(a, 4)->type == JSON_DOUBLE && json_at(a, 4)->u.d == 100.0);
    CHECK(json_at(a, 5)->type == JSON_DOUBLE && json_at(a, 5)->u.d == 0.5);
    CHECK(json_at(a, 6)->type == JSON_INT && json_at(a, 6)->u.i == -12);
    json_free(d);
}

TEST(json_errors_name_the_offset) {
    forge_error err = {0};
    const char *bad[] = {"{\"a\": 1,", "[1, 2", "{\"a\" 1}", "", "[\"\xff\"]", "tru", "{} {}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_doc *d = json_parse(bad[i], strlen(bad[i]), &err);
        CHECKF(!d, "accepted: %s", bad[i]);
        json_free(d);
        CHECKF(err.code == FORGE_E_FORMAT && strstr(err.msg, "at byte"), "%s -> %s", bad[i], err.msg);
    }
    /* nesting is bounded */
    char deep[2000];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    json_doc *d = json_parse(deep, sizeof deep, &err);
    CHECK(!d && strstr(err.msg, "nesting"));
    json_free(d);
}

TEST(float_repr_matches_python) {
    static const struct { double d; const char *s; } cases[] = {
        {2.0, "2.0"}, {1e-05, "1e-05"}, {1e+16, "1e+16"}, {1000000000000000.0, "1000000000000000.0"},
        {0.1, "0.1"}, {1.2345678901234568e+17, "1.2345678901234568e+17"}, {1.5e-07, "1.5e-07"},
        {-0.0, "-0.0"}, {3.14159, "3.14159"}, {0.3333333333333333, "0.3333333333333333"},
        {0.0001, "0.0001"}, {100.0, "100.0"}, {1e+22, "1e+22"}, {5e-324, "5e-324"},
        {1.7976931348623157e+308, "1.7976931348623157e+308"}, {-2.5, "-2.5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        fmt_double_repr(buf, cases[i].d);
        CHECK_EQ_STR(buf, cases[i].s);
    }
    strbuf sb = STRBUF_INIT;
    json_write_string(&sb, "a\"\\\x01\xe2\x82\xac\xf0\x9f\x98\x80", 11, true);
    CHECK_EQ_STR(sb_str(&sb), "\"a\\\"\\\\\\u0001\\u20ac\\ud83d\\ude00\"");
    sb_free(&sb);
}

TEST(utf8_rules) {
    uint32_t cp;
    CHECK(utf8_decode("\xc3\xa9", 2, &cp) == 2 && cp == 0xE9);
    CHECK(utf8_decode("\xc0\xaf", 2, &cp) == 0);         /* overlong */
    CHECK(utf8_decode("\xed\xa0\x80", 3, &cp) == 0);     /* surrogate */
    CHECK(utf8_decode("\xf4\x90\x80\x80", 4, &cp) == 0); /* > U+10FFFF */
    CHECK(utf8_valid("h\xc3\xa9llo", 6));
    CHECK(!utf8_valid("\xe2\x82", 2));
    CHECK(utf8_complete_len("ab\xe2\x82", 4) == 2);  /* waits for the third byte */
    CHECK(utf8_complete_len("ab\xe2\x28", 4) == 4);  /* can never complete: emit */
    CHECK(utf8_complete_len("ab\xf0", 3) == 2);
    CHECK(utf8_complete_len("ab\xc3\xa9", 4) == 4);
    char out[4];
    CHECK(utf8_encode(0x1F600, out) == 4 && !memcmp(out, "\xf0\x9f\x98\x80", 4));
    CHECK(utf8_encode(0xD800, out) == 0);
}

TEST(strbuf_and_maps) {
    strbuf sb = STRBUF_INIT;
    for (int i = 0; i < 1000; i++) sb_printf(&sb, "%d,", i);
    CHECK(!sb_failed(&sb) && sb.len == strlen(sb_str(&sb)));
    CHECK(!strncmp(sb_str(&sb), "0,1,2,", 6));
    sb_free(&sb);

    strmap m;
    CHECK(strmap_init(&m, 4));
    static char keys[5000][16];
    for (int i = 0; i < 5000; i++) {
        snprintf(keys[i], 16, "k%d", i);
        CHECK(strmap_put(&m, keys[i], strlen(keys[i]), i));
    }
    int bad = 0;
    for (int i = 0; i < 5000; i++) bad += strmap_get(&m, keys[i], strlen(keys[i])) != i;
    CHECK(bad == 0);
    CHECK(strmap_get(&m, "nope", 4) == -1);
    strmap_free(&m);

    u64map u;
    CHECK(u64map_init(&u, 1));
    for (uint64_t i = 0; i < 10000; i++) CHECK(u64map_put(&u, i * 7919, (int32_t)i));
    bad = 0;
    for (uint64_t i = 0; i < 10000; i++) bad += u64map_get(&u, i * 7919) != (int32_t)i;
    CHECK(bad == 0 && u64map_get(&u, 3) == -1);
    u64map_free(&u);
}

typedef struct {
    atomic_long sum;
    atomic_int hits[1000];
    int n_threads;
    atomic_int bad_thread;
} pool_job;

static void pool_fn(void *ctx, int chunk, int thread) {
    pool_job *j = ctx;
    atomic_fetch_add(&j->sum, chunk);
    atomic_fetch_add(&j->hits[chunk], 1);
    if (thread < 0 || thread >= j->n_threads) atomic_store(&j->bad_thread, 1);
}

TEST(threadpool_runs_each_chunk_once) {
    /* under emulation (qemu-user) the pool's spinning waits can take minutes when its threads
     * outnumber the CPUs: the pool is plain C11, tested natively (docs/arm.md) */
    int max_threads = t_emulated() ? 1 : 4;
    for (int nt = 1; nt <= max_threads; nt++) {
        tpool *p = tpool_create(nt);
        CHECK(p && tpool_size(p) == nt);
        for (int round = 0; round < 200; round++) {
            static pool_job j;
            memset(&j, 0, sizeof j);
            j.n_threads = nt;
            int n = 1 + round * 5;
            tpool_run(p, n, pool_fn, &j);
            CHECK(atomic_load(&j.sum) == (long)n * (n - 1) / 2);
            int bad = 0;
            for (int c = 0; c < n; c++) bad += atomic_load(&j.hits[c]) != 1;
            CHECK(bad == 0 && !atomic_load(&j.bad_thread));
        }
        tpool_free(p);
    }
    CHECK(cpu_default_threads() >= 1);
}

TEST(cpu_override) {
    cpu_features real = cpu_detect();
    cpu_features old = cpu_set((cpu_features){0});
    CHECK(!cpu_get()->avx2 && !cpu_get()->neon);
    CHECK(!cpu_get()->avx512 && !cpu_get()->avx512bf16);
    cpu_set((cpu_features){.avx2 = true, .neon = true, .neon_dotprod = true, .neon_i8mm = true, .avx512 = true,
                           .avx512bf16 = true, .avx512vnni = true});
    CHECK(cpu_get()->avx2 == real.avx2 && cpu_get()->neon == real.neon && cpu_get()->avx512 == real.avx512);
    CHECK(cpu_get()->neon_dotprod == real.neon_dotprod && cpu_get()->neon_i8mm == real.neon_i8mm);
    CHECK(cpu_get()->avx512bf16 == real.avx512bf16 && cpu_get()->avx512vnni == real.avx512vnni);
    /* i8mm is never claimed without dotprod */
    cpu_set((cpu_features){.neon = true, .neon_i8mm = true});
    CHECK(!cpu_get()->neon_i8mm);
    /* AVX-512 is never claimed without AVX2 */
    cpu_set((cpu_features){.avx512 = true});
    CHECK(!cpu_get()->avx512);
    cpu_set(old);
}

int main(void) {
    RUN(json_types_and_order);
    RUN(json_numbers);
    RUN(json_write_out_of_range);
    RUN(json_errors_name_the_offset);
    RUN(float_repr_matches_python);
    RUN(utf8_rules);
    RUN(strbuf_and_maps);
    RUN(threadpool_runs_each_chunk_once);
    RUN(cpu_override);
    return t_summary();
}
