/* Device choice of forge_context: "cpu", invalid values (parameter and $FORGE_DEVICE), the
 * GPU memory share, and auto falling back to the CPU when no GPU can be used.
 * With arguments it is the helper of device.test.sh: `test_device N` creates N contexts
 * (device from the environment) and prints each one's device, or the error. */
#include <stdlib.h>

#include "backend/backend.h"
#include "forge.h"
#include "test.h"

#define DIR "tests/fixtures/stories260K"

static forge_model *g_model;

static forge_context *make(const char *device, float gpu_util, forge_error *err) {
    forge_context_params p = {.n_kv_blocks = 4, .max_batch_tokens = 8, .max_logit_rows = 2, .n_threads = 1,
                              .kv_dtype = FORGE_DTYPE_AUTO, .device = device, .gpu_memory_utilization = gpu_util};
    return forge_context_create(g_model, &p, err);
}

TEST(cpu_is_cpu) {
    forge_error err;
    forge_context *ctx = make("cpu", 0, &err);
    CHECKF(ctx, "%s", err.msg);
    if (ctx) CHECK_EQ_STR(forge_context_device(ctx), "cpu");
    forge_context_free(ctx);
}

TEST(invalid_device_parameter) {
    forge_error err;
    const char *bad[] = {"gpu", "CUDA", "cuda:0", " cpu", "metal"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        forge_context *ctx = make(bad[i], 0, &err);
        CHECKF(!ctx && err.code == FORGE_E_INVALID && strstr(err.msg, "is not a device") && strstr(err.msg, bad[i]),
               "%s: %s", bad[i], ctx ? "accepted" : err.msg);
        forge_context_free(ctx);
    }
}

TEST(invalid_forge_device) {
    forge_error err;
    setenv("FORGE_DEVICE", "tpu", 1);
    forge_context *ctx = make(NULL, 0, &err);
    CHECKF(!ctx && strstr(err.msg, "FORGE_DEVICE \"tpu\" is not a device: use auto, cpu or cuda"), "%s",
           ctx ? "accepted" : err.msg);
    forge_context_free(ctx);
    /* the parameter wins over the environment */
    ctx = make("cpu", 0, &err);
    CHECKF(ctx, "%s", err.msg);
    forge_context_free(ctx);
    unsetenv("FORGE_DEVICE");
}

TEST(gpu_memory_utilization_range) {
    forge_error err;
    float bad[] = {-0.5f, 1.5f};
    for (int i = 0; i < 2; i++) {
        forge_context *ctx = make("cpu", bad[i], &err);
        CHECKF(!ctx && err.code == FORGE_E_RANGE && strstr(err.msg, "gpu_memory_utilization"), "%g: %s", bad[i],
               ctx ? "accepted" : err.msg);
        forge_context_free(ctx);
    }
    setenv("FORGE_GPU_MEMORY_UTILIZATION", "0.8x", 1);
    forge_context *ctx = make("cpu", 0, &err);
    CHECKF(!ctx && strstr(err.msg, "FORGE_GPU_MEMORY_UTILIZATION must be in (0, 1]"), "%s", ctx ? "accepted" : err.msg);
    forge_context_free(ctx);
    setenv("FORGE_GPU_MEMORY_UTILIZATION", "0.5", 1);
    ctx = make("cpu", 0, &err);
    CHECKF(ctx, "%s", err.msg);
    forge_context_free(ctx);
    unsetenv("FORGE_GPU_MEMORY_UTILIZATION");
}

/* Without a usable GPU, auto gives the CPU and cuda is an error naming why; the KV budget
 * of the CPU is 0 (the caller sizes it). On a GPU machine these are checked by tests/cuda. */
TEST(auto_and_cuda_without_gpu) {
    fcuda_device_info info;
    forge_error err;
    if (backend_cuda_probe(&info, &err) == FORGE_OK) {
        printf("    (a GPU is usable here: %s; skipped)\n", info.name);
        return;
    }
    forge_context *ctx = make("auto", 0, &err);
    CHECKF(ctx, "%s", err.msg);
    if (ctx) CHECK_EQ_STR(forge_context_device(ctx), "cpu");
    forge_context_free(ctx);
    ctx = make("cuda", 0, &err);
    CHECKF(!ctx && (strstr(err.msg, "no CUDA device found") || strstr(err.msg, "no CUDA backend") ||
                    strstr(err.msg, "FORGE_CUDA_LIB")),
           "%s", ctx ? "accepted" : err.msg);
    forge_context_free(ctx);
    forge_context_params p = {.device = "cuda"};
    CHECK(forge_context_kv_budget(g_model, &p, &err) == 0);
    p.device = "cpu";
    CHECK(forge_context_kv_budget(g_model, &p, &err) == 0);
}

int main(int argc, char **argv) {
    forge_error err;
    g_model = forge_model_open(DIR, NULL, &err);
    if (!g_model) {
        printf("cannot open %s: %s\n", DIR, err.msg);
        return 1;
    }
    if (argc > 1) { /* helper mode for device.test.sh */
        int n = atoi(argv[1]), rc = 0;
        for (int i = 0; i < n && !rc; i++) {
            forge_context *ctx = make(NULL, 0, &err);
            if (ctx)
                printf("device=%s\n", forge_context_device(ctx));
            else
                printf("error: %s\n", err.msg), rc = 1;
            forge_context_free(ctx);
        }
        forge_model_close(g_model);
        return rc;
    }
    unsetenv("FORGE_DEVICE");
    unsetenv("FORGE_GPU_MEMORY_UTILIZATION");
    RUN(cpu_is_cpu);
    RUN(invalid_device_parameter);
    RUN(invalid_forge_device);
    RUN(gpu_memory_utilization_range);
    RUN(auto_and_cuda_without_gpu);
    forge_model_close(g_model);
    return t_summary();
}
