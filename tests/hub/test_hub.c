/* Hub layer units: digests (published known answers), ids (huggingface_hub's validate_repo_id
 * rules), cache-root and token lookup order (huggingface_hub's constants.py / _auth.py), ETag
 * normalisation, URL quoting (Python's urllib.parse.quote), Retry-After and backoff, the
 * cache's links, refs, .no_exist and snapshot checks, flock locks, forge_model_resolve on
 * local folders. The network paths are tested against the stand-in Hub by tests/hub/ shell tests.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "forge.h"
#include "base/mfile.h"
#include "hub/cache.h"
#include "hub/gguf_pick.h"
#include "hub/hash.h"
#include "hub/http.h"
#include "test.h"

static char g_tmp[256];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void digest(hub_hash_kind kind, const char *data, size_t n, char out[65]) {
    hub_hash *h = hub_hash_create(kind, n);
    out[0] = 0;
    if (!h) return;
    hub_hash_update(h, data, n);
    hub_hash_hex(h, out);
    hub_hash_free(h);
}

TEST(sha256_known_answers) {
    /* FIPS 180-2 examples */
    char out[65];
    digest(HUB_HASH_SHA256, "", 0, out);
    CHECK_EQ_STR(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    digest(HUB_HASH_SHA256, "abc", 3, out);
    CHECK_EQ_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest(HUB_HASH_SHA256, two, strlen(two), out);
    CHECK_EQ_STR(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* a million 'a', fed in uneven pieces, and reset in the middle */
    hub_hash *h = hub_hash_create(HUB_HASH_SHA256, 0);
    char buf[997];
    memset(buf, 'a', sizeof buf);
    hub_hash_update(h, "garbage", 7);
    CHECK(hub_hash_reset(h) == 0);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof buf ? left : sizeof buf;
        hub_hash_update(h, buf, n);
        left -= n;
    }
    hub_hash_hex(h, out);
    hub_hash_free(h);
    CHECK_EQ_STR(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(git_blob_sha1_known_answers) {
    /* `git hash-object` of an empty file and of "hello\n" (the ids git prints) */
    char out[65];
    digest(HUB_HASH_GIT_SHA1, "", 0, out);
    CHECK_EQ_STR(out, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    digest(HUB_HASH_GIT_SHA1, "hello\n", 6, out);
    CHECK_EQ_STR(out, "ce013625030ba8dba906f756967f9e9ca394464a");
    /* the fixture's config.json: git hash-object tests/fixtures/stories260K/config.json */
    forge_error err = {0};
    CHECK(hub_hash_file("tests/fixtures/stories260K/config.json", HUB_HASH_GIT_SHA1, out, &err) ==
          0);
    CHECK_EQ_STR(out, "7ae14f5cc8b819bcebf438d52cfc443c1bbd15eb");
    CHECK(hub_hash_file("/nonexistent/x", HUB_HASH_SHA256, out, &err) != 0);
    CHECK(strstr(err.msg, "/nonexistent/x") != NULL);
}

TEST(repo_ids) {
    hub_id id;
    forge_error err = {0};
    CHECK(hub_id_parse("HuggingFaceTB/SmolLM2-135M-Instruct", &id, &err) == FORGE_OK);
    CHECK_EQ_STR(id.repo, "HuggingFaceTB/SmolLM2-135M-Instruct");
    CHECK_EQ_STR(id.revision, "main");
    CHECK(hub_id_parse("Qwen/Qwen2.5-0.5B@v1.0", &id, &err) == FORGE_OK);
    CHECK_EQ_STR(id.repo, "Qwen/Qwen2.5-0.5B");
    CHECK_EQ_STR(id.revision, "v1.0");
    CHECK(hub_id_parse("a/b@refs/pr/1", &id, &err) == FORGE_OK);
    CHECK_EQ_STR(id.revision, "refs/pr/1");
    const char *bad[] = {"",     "gpt2", "a/b/c",    "a--b/c",   "a/b..c", "-a/b", "a/b-",
                         "a/.b", "a/b@", "a/b@../x", "a/b@x//y", "a /b",   "/a/b", "a/b@/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECKF(hub_id_parse(bad[i], &id, &err) == FORGE_E_INVALID, "accepted '%s'", bad[i]);
        CHECKF(!hub_id_like(bad[i]), "'%s' looks like an id", bad[i]);
    }
    char longid[120];
    memset(longid, 'x', sizeof longid);
    longid[0] = 'o', longid[1] = '/', longid[97] = 0; /* 97 characters: one over the limit */
    CHECK(hub_id_parse(longid, &id, &err) == FORGE_E_INVALID);
    longid[96] = 0;
    CHECK(hub_id_parse(longid, &id, &err) == FORGE_OK);
    CHECK(hub_is_commit("0123456789abcdef0123456789abcdef01234567"));
    CHECK(!hub_is_commit("0123456789ABCDEF0123456789abcdef01234567"));
    CHECK(!hub_is_commit("0123456789abcdef"));
    CHECK(hub_safe_relpath("a/b.json") && !hub_safe_relpath("a/../b") && !hub_safe_relpath("./a") &&
          !hub_safe_relpath("a\\b") && !hub_safe_relpath("a/") && !hub_safe_relpath(""));
    CHECK(hub_safe_etag("82e74efc") && hub_safe_etag("a.b-c_d") && !hub_safe_etag("../x") &&
          !hub_safe_etag(".x") && !hub_safe_etag("a/b") && !hub_safe_etag(""));
}

static void clear_env(void) {
    const char *v[] = {"HF_HUB_CACHE",
                       "HUGGINGFACE_HUB_CACHE",
                       "HF_HOME",
                       "XDG_CACHE_HOME",
                       "HF_TOKEN",
                       "HUGGING_FACE_HUB_TOKEN",
                       "HF_TOKEN_PATH",
                       "HF_HUB_OFFLINE",
                       "TRANSFORMERS_OFFLINE",
                       "FORGE_MODEL",
                       "HF_ENDPOINT"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) unsetenv(v[i]);
}

TEST(gguf_tags) {
    hub_id id;
    forge_error err;
    CHECK(hub_id_parse("org/name-GGUF:Q4_K_M", &id, &err) == FORGE_OK);
    CHECK_EQ_STR(id.repo, "org/name-GGUF");
    CHECK_EQ_STR(id.quant, "Q4_K_M");
    CHECK_EQ_STR(id.revision, "main");
    CHECK(hub_id_parse("org/name-GGUF:q8_0@v2", &id, &err) == FORGE_OK);
    CHECK_EQ_STR(id.quant, "q8_0");
    CHECK_EQ_STR(id.revision, "v2");
    CHECK(hub_id_parse("org/name-GGUF@v2:IQ4_XS", &id, &err) == FORGE_OK);
    CHECK_EQ_STR(id.quant, "IQ4_XS");
    CHECK_EQ_STR(id.revision, "v2");
    CHECK(hub_id_parse("org/name:", &id, &err) == FORGE_E_INVALID);
    CHECK(hub_id_parse("org/name:a:b", &id, &err) == FORGE_E_INVALID);
    CHECK(hub_id_parse("org/name:a b", &id, &err) == FORGE_E_INVALID);
    CHECK(hub_id_parse("org/name:../x", &id, &err) == FORGE_E_INVALID);
    CHECK(hub_id_like("org/name-GGUF:Q4_K_M"));
    CHECK(!hub_id_like("org/name:"));

    const char *names[] = {"README.md",
                           "model-Q4_K.gguf",
                           "model-Q4_K_M.gguf",
                           "model-Q4_K_M-imat.gguf",
                           "mmproj-model-Q4_K_M.gguf",
                           "Q8_0/model-Q8_0-00002-of-00002.gguf",
                           "Q8_0/model-Q8_0-00001-of-00002.gguf",
                           "model.q6_k.gguf",
                           "big-Q2_K-00001-of-00003.gguf",
                           "big-Q2_K-00003-of-00003.gguf"};
    int n = (int)(sizeof names / sizeof names[0]), picked[16], np;
    CHECK(hub_gguf_pick(names, n, "Q4_K_M", picked, &np, "r", &err) == FORGE_OK && np == 1 && picked[0] == 2);
    CHECK(hub_gguf_pick(names, n, NULL, picked, &np, "r", &err) == FORGE_OK && np == 1 && picked[0] == 2);
    CHECK(hub_gguf_pick(names, n, "q4_k", picked, &np, "r", &err) == FORGE_OK && np == 1 && picked[0] == 1);
    CHECK(hub_gguf_pick(names, n, "Q6_K", picked, &np, "r", &err) == FORGE_OK && np == 1 && picked[0] == 7);
    CHECK(hub_gguf_pick(names, n, "Q8_0", picked, &np, "r", &err) == FORGE_OK && np == 2 && picked[0] == 6 &&
          picked[1] == 5);
    CHECK(hub_gguf_pick(names, n, "Q2_K", picked, &np, "r", &err) == FORGE_E_NOT_FOUND && np == 0);
    CHECKF(strstr(err.msg, "shard 2 of 3") != NULL, "%s", err.msg);
    CHECK(hub_gguf_pick(names, n, "Q5_K_M", picked, &np, "r", &err) == FORGE_E_NOT_FOUND);
    CHECKF(strstr(err.msg, "model-Q4_K.gguf") && !strstr(err.msg, "mmproj") && !strstr(err.msg, "00002-of"), "%s", err.msg);
    CHECK(hub_gguf_pick(names, n, "Q4", picked, &np, "r", &err) == FORGE_E_NOT_FOUND); /* a whole tag, not a prefix */
    const char *one[] = {"mmproj-f16.gguf", "x.gguf"};
    CHECK(hub_gguf_pick(one, 2, NULL, picked, &np, "r", &err) == FORGE_OK && np == 1 && picked[0] == 1);
    const char *two[] = {"a-Q8_0.gguf", "a-F16.gguf"};
    CHECK(hub_gguf_pick(two, 2, NULL, picked, &np, "r", &err) == FORGE_E_INVALID);
    const char *none[] = {"config.json", "mmproj.gguf"};
    CHECK(hub_gguf_pick(none, 2, NULL, picked, &np, "r", &err) == FORGE_E_NOT_FOUND);
}

TEST(cache_root_order) {
    clear_env();
    char out[HUB_PATH_MAX];
    forge_error err = {0};
    setenv("HOME", "/home/u", 1);
    CHECK(hub_cache_root(NULL, out, sizeof out, &err) == FORGE_OK);
    CHECK_EQ_STR(out, "/home/u/.cache/huggingface/hub");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    hub_cache_root(NULL, out, sizeof out, &err);
    CHECK_EQ_STR(out, "/xdg/huggingface/hub");
    setenv("HF_HOME", "~/hf", 1);
    hub_cache_root(NULL, out, sizeof out, &err);
    CHECK_EQ_STR(out, "/home/u/hf/hub");
    setenv("HUGGINGFACE_HUB_CACHE", "/legacy", 1);
    hub_cache_root(NULL, out, sizeof out, &err);
    CHECK_EQ_STR(out, "/legacy");
    setenv("HF_HUB_CACHE", "/hubcache", 1);
    hub_cache_root(NULL, out, sizeof out, &err);
    CHECK_EQ_STR(out, "/hubcache");
    hub_cache_root("/override", out, sizeof out, &err);
    CHECK_EQ_STR(out, "/override");
    forge_hub_params p = {.cache_dir = "/p"};
    CHECK(forge_hub_cache_dir(&p, out, sizeof out, &err) == FORGE_OK);
    CHECK_EQ_STR(out, "/p");
    CHECK(forge_hub_cache_dir(&p, out, 2, &err) == FORGE_E_RANGE);
    char small[8];
    CHECK(hub_cache_root(NULL, small, sizeof small, &err) == FORGE_E_RANGE);
    CHECK(hub_storage_dir("/r", "org/name", out, sizeof out) == 0);
    CHECK_EQ_STR(out, "/r/models--org--name");
    clear_env();
}

TEST(token_order) {
    clear_env();
    char home[300], path[400];
    snprintf(home, sizeof home, "%s/home", g_tmp);
    mkdir(home, 0777);
    setenv("HF_HOME", home, 1);
    char *t = hub_token_lookup(NULL);
    CHECK(t == NULL);
    free(t);
    snprintf(path, sizeof path, "%s/token", home);
    write_file(path, "  hf_file\r\n");
    t = hub_token_lookup(NULL);
    CHECK_EQ_STR(t, "hf_file");
    free(t);
    snprintf(path, sizeof path, "%s/other-token", g_tmp);
    write_file(path, "hf_path\n");
    setenv("HF_TOKEN_PATH", path, 1);
    t = hub_token_lookup(NULL);
    CHECK_EQ_STR(t, "hf_path");
    free(t);
    setenv("HUGGING_FACE_HUB_TOKEN", "hf_legacy", 1);
    t = hub_token_lookup(NULL);
    CHECK_EQ_STR(t, "hf_legacy");
    free(t);
    setenv("HF_TOKEN", "\nhf_env \n", 1);
    t = hub_token_lookup(NULL);
    CHECK_EQ_STR(t, "hf_env");
    free(t);
    t = hub_token_lookup("hf_given");
    CHECK_EQ_STR(t, "hf_given");
    free(t);
    t = hub_token_lookup(""); /* an explicit empty token: none */
    CHECK(t == NULL);
    free(t);
    setenv("HF_TOKEN", "  \n", 1); /* blank: no token from the environment, so the file's */
    unsetenv("HUGGING_FACE_HUB_TOKEN");
    unsetenv("HF_TOKEN_PATH");
    t = hub_token_lookup(NULL);
    CHECK_EQ_STR(t, "hf_file");
    free(t);
    clear_env();
}

TEST(protocol_helpers) {
    char out[300];
    hub_normalize_etag("W/\"abc\"", out, sizeof out);
    CHECK_EQ_STR(out, "abc");
    hub_normalize_etag("\"82e74efc\"", out, sizeof out);
    CHECK_EQ_STR(out, "82e74efc");
    hub_normalize_etag("plain", out, sizeof out);
    CHECK_EQ_STR(out, "plain");
    /* urllib.parse.quote("refs/pr/1", safe="") and quote("sub dir/ü.json") */
    CHECK(hub_url_quote("refs/pr/1", false, out, sizeof out) == 0);
    CHECK_EQ_STR(out, "refs%2Fpr%2F1");
    CHECK(hub_url_quote("sub dir/\xc3\xbc.json~", true, out, sizeof out) == 0);
    CHECK_EQ_STR(out, "sub%20dir/%C3%BC.json~");
    CHECK(hub_url_quote("abc def", false, out, 5) == -1);
    CHECK(hub_parse_retry_after("2") == 2);
    CHECK(hub_parse_retry_after(" 0 ") == 0);
    CHECK(hub_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0); /* a date in the past */
    CHECK(hub_parse_retry_after("soon") == -1);
    CHECK(hub_backoff_s(0, -1) == 1 && hub_backoff_s(1, -1) == 2 && hub_backoff_s(2, -1) == 4 &&
          hub_backoff_s(3, -1) == 8 && hub_backoff_s(9, -1) == 8);
    CHECK(hub_backoff_s(0, 3) == 3 && hub_backoff_s(4, 0) == 0 && hub_backoff_s(0, 7200) == 60);
    CHECK(hub_same_origin("http://127.0.0.1:8000/a", "http://127.0.0.1:8000"));
    CHECK(hub_same_origin("https://HuggingFace.co/x", "https://huggingface.co:443"));
    CHECK(!hub_same_origin("http://127.0.0.1:8001/lfs/x", "http://127.0.0.1:8000"));
    CHECK(!hub_same_origin("https://cdn-lfs.huggingface.co/x", "https://huggingface.co"));
    CHECK(!hub_same_origin("http://huggingface.co/x", "https://huggingface.co"));
    hub_response r = {.net = HUB_NET_OK, .status = 503};
    CHECK(hub_response_retryable(&r));
    r.status = 404;
    CHECK(!hub_response_retryable(&r));
    r.net = HUB_NET_UNREACHABLE;
    CHECK(!hub_response_retryable(&r));
    r.net = HUB_NET_TRANSIENT;
    CHECK(hub_response_retryable(&r));
    forge_error err = {0};
    hub_response g = {.net = HUB_NET_OK, .status = 401};
    strcpy(g.error_code, "GatedRepo");
    hub_response_error(&g, "config.json", "o/n", "main", "https://hub", false, &err);
    CHECK(strstr(err.msg, "gated") && strstr(err.msg, "https://hub/o/n"));
    hub_response nf = {.net = HUB_NET_OK, .status = 401};
    hub_response_error(&nf, "the file list", "o/n", "main", "https://hub", false, &err);
    CHECK(err.code == FORGE_E_NOT_FOUND && strstr(err.msg, "not found") &&
          strstr(err.msg, "HF_TOKEN"));
}

/* A fake cached repo under g_tmp: blobs + links, as the Hub layer writes them. */
static void make_blob(const char *storage, const char *etag, const char *text) {
    char path[HUB_PATH_MAX];
    hub_pathf(path, "%s/blobs", storage);
    hub_mkdirs(path, NULL);
    hub_pathf(path, "%s/blobs/%s", storage, etag);
    write_file(path, text);
}

TEST(cache_layout) {
    char storage[HUB_PATH_MAX], path[HUB_PATH_MAX], target[HUB_PATH_MAX];
    forge_error err = {0};
    hub_storage_dir(g_tmp, "org/name", storage, sizeof storage);
    const char *c = "0123456789abcdef0123456789abcdef01234567";
    make_blob(storage, "e1", "{}");
    CHECK(hub_link_blob(storage, c, "config.json", "e1", &err) == FORGE_OK);
    CHECK(hub_link_blob(storage, c, "sub/dir/x.json", "e1", &err) == FORGE_OK);
    hub_pathf(path, "%s/snapshots/%s/config.json", storage, c);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    CHECK_EQ_STR(target, "../../blobs/e1");
    hub_pathf(path, "%s/snapshots/%s/sub/dir/x.json", storage, c);
    n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    CHECK_EQ_STR(target, "../../../../blobs/e1");
    CHECK(hub_snapshot_has(storage, c, "sub/dir/x.json"));
    CHECK(!hub_snapshot_has(storage, c, "missing.json"));
    CHECK(hub_link_blob(storage, c, "config.json", "e1", &err) == FORGE_OK); /* replacing is fine */
    /* a dangling link (blob gone) is not "has" */
    CHECK(hub_link_blob(storage, c, "gone.json", "nope", &err) == FORGE_OK);
    CHECK(!hub_snapshot_has(storage, c, "gone.json"));

    char commit[41];
    CHECK(hub_read_ref(storage, "main", commit, &err) == FORGE_E_NOT_FOUND);
    CHECK(hub_write_ref(storage, "refs/pr/1", c, &err) == FORGE_OK);
    CHECK(hub_read_ref(storage, "refs/pr/1", commit, &err) == FORGE_OK);
    CHECK_EQ_STR(commit, c);
    hub_pathf(path, "%s/refs/refs/pr/1", storage);
    char *text = NULL;
    size_t len = 0;
    CHECK(file_read_all(path, 100, &text, &len, &err) == FORGE_OK);
    CHECK(len == 40); /* no newline, as huggingface_hub writes it */
    free(text);

    /* snapshot checks */
    CHECK(hub_snapshot_check(storage, c, false, &err) == FORGE_E_NOT_FOUND);
    CHECK(strstr(err.msg, "tokenizer.json") != NULL);
    hub_mark_no_exist(storage, c, "tokenizer.json");
    CHECK(hub_has_no_exist(storage, c, "tokenizer.json"));
    CHECK(hub_snapshot_check(storage, c, false, &err) == FORGE_E_NOT_FOUND);
    CHECK(strstr(err.msg, "model.safetensors") != NULL);
    make_blob(storage, "idx",
              "{\"metadata\": {}, \"weight_map\": {\"a\": \"m-1.safetensors\", \"b\": "
              "\"m-2.safetensors\", \"c\": \"m-1.safetensors\"}}");
    hub_link_blob(storage, c, "model.safetensors.index.json", "idx", &err);
    make_blob(storage, "s1", "x");
    hub_link_blob(storage, c, "m-1.safetensors", "s1", &err);
    CHECK(hub_snapshot_check(storage, c, false, &err) == FORGE_E_NOT_FOUND);
    CHECK(strstr(err.msg, "m-2.safetensors") != NULL);
    hub_link_blob(storage, c, "m-2.safetensors", "s1", &err);
    CHECK(hub_snapshot_check(storage, c, false, &err) == FORGE_OK);
    CHECK(hub_snapshot_check(storage, c, true, &err) == FORGE_E_NOT_FOUND);
    for (int i = 0; i < hub_n_optional_files; i++)
        hub_mark_no_exist(storage, c, hub_optional_files[i]);
    CHECK(hub_snapshot_check(storage, c, true, &err) == FORGE_OK);

    char **shards;
    int ns;
    hub_pathf(path, "%s/snapshots/%s/model.safetensors.index.json", storage, c);
    CHECK(hub_index_shards(path, &shards, &ns, &err) == FORGE_OK);
    CHECK(ns == 2 && !strcmp(shards[0], "m-1.safetensors") &&
          !strcmp(shards[1], "m-2.safetensors"));
    hub_free_strings(shards, ns);
    hub_pathf(path, "%s/evil.json", g_tmp);
    write_file(path, "{\"weight_map\": {\"a\": \"../../x.safetensors\"}}");
    CHECK(hub_index_shards(path, &shards, &ns, &err) == FORGE_E_FORMAT);
    write_file(path, "{\"weight_map\": {\"a\": \"pytorch_model.bin\"}}");
    CHECK(hub_index_shards(path, &shards, &ns, &err) == FORGE_E_FORMAT);
}

TEST(locks_exclude_other_processes) {
    char path[HUB_PATH_MAX];
    forge_error err = {0};
    hub_pathf(path, "%s/.locks/models--a--b/etag.lock", g_tmp);
    int fd = hub_lock_acquire(path, NULL, NULL, &err);
    CHECKF(fd >= 0, "%s", err.msg);
    pid_t pid = fork();
    if (pid == 0) { /* as Python's filelock does it: open, then flock(LOCK_EX | LOCK_NB) */
        int f = open(path, O_RDWR | O_TRUNC);
        _exit(f >= 0 && flock(f, LOCK_EX | LOCK_NB) != 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    hub_lock_release(fd);
    pid = fork();
    if (pid == 0) {
        int f = open(path, O_RDWR);
        _exit(f >= 0 && flock(f, LOCK_EX | LOCK_NB) == 0 ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(model_resolve_local_and_offline) {
    clear_env();
    char out[HUB_PATH_MAX], cache[HUB_PATH_MAX];
    forge_error err = {0};
    CHECK(forge_model_resolve("tests/fixtures/stories260K", NULL, out, sizeof out, &err) ==
          FORGE_OK);
    CHECK_EQ_STR(out, "tests/fixtures/stories260K");
    setenv("FORGE_MODEL", "tests/fixtures/stories260K", 1);
    CHECK(forge_model_resolve(NULL, NULL, out, sizeof out, &err) == FORGE_OK);
    CHECK_EQ_STR(out, "tests/fixtures/stories260K");
    unsetenv("FORGE_MODEL");
    CHECK(forge_model_resolve("", NULL, out, sizeof out, &err) == FORGE_E_INVALID);
    CHECK(strstr(err.msg, "FORGE_MODEL") != NULL);
    CHECK(forge_model_resolve("tests/fixtures/stories260K/config.json", NULL, out, sizeof out,
                              &err) == FORGE_E_INVALID);
    CHECK(forge_model_resolve("./no/such/dir", NULL, out, sizeof out, &err) == FORGE_E_NOT_FOUND);
    CHECK(forge_model_resolve("nosuchfolder", NULL, out, sizeof out, &err) == FORGE_E_NOT_FOUND);
    CHECK(strstr(err.msg, "not a Hub id") != NULL);
    /* offline, uncached: an error naming the cache, and no network use */
    hub_pathf(cache, "%s/empty-cache", g_tmp);
    forge_hub_params p = {.cache_dir = cache, .offline = true, .endpoint = "http://127.0.0.1:1"};
    CHECK(forge_model_resolve("org/name", &p, out, sizeof out, &err) == FORGE_E_NOT_FOUND);
    CHECK(strstr(err.msg, "offline") && strstr(err.msg, cache));
    /* offline from a cached snapshot found through refs/main */
    char storage[HUB_PATH_MAX];
    const char *c = "89abcdef0123456789abcdef0123456789abcdef";
    hub_storage_dir(cache, "org/name", storage, sizeof storage);
    make_blob(storage, "b1", "{}");
    hub_link_blob(storage, c, "config.json", "b1", &err);
    hub_link_blob(storage, c, "tokenizer.json", "b1", &err);
    hub_link_blob(storage, c, "model.safetensors", "b1", &err);
    hub_write_ref(storage, "main", c, &err);
    CHECK(forge_model_resolve("org/name", &p, out, sizeof out, &err) == FORGE_OK);
    char want[HUB_PATH_MAX];
    hub_pathf(want, "%s/snapshots/%s", storage, c);
    CHECK_EQ_STR(out, want);
    setenv("HF_HUB_OFFLINE", "yes", 1);
    p.offline = false;
    CHECK(forge_hub_download("org/name@main", &p, out, sizeof out, &err) == FORGE_OK);
    CHECK(forge_hub_download("org/name@v2", &p, out, sizeof out, &err) == FORGE_E_NOT_FOUND);
    CHECK(strstr(err.msg, "HF_HUB_OFFLINE") != NULL);
    clear_env();
}

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/forge-hub-test-XXXXXX");
    if (!mkdtemp(g_tmp)) return 1;
    RUN(sha256_known_answers);
    RUN(git_blob_sha1_known_answers);
    RUN(repo_ids);
    RUN(gguf_tags);
    RUN(cache_root_order);
    RUN(token_order);
    RUN(protocol_helpers);
    RUN(cache_layout);
    RUN(locks_exclude_other_processes);
    RUN(model_resolve_local_and_offline);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) return 1;
    return t_summary();
}
