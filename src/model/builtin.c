/* builtin.c: locating the built-in model (models/stories260K) the way an installed library
 * finds its data: relative to the file the library code lives in (libforge.so, or the
 * program when linked statically), so the CLI and embedders share one rule. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/port.h"
#include "forge.h"

static bool is_model_dir(const char *dir) {
    char p[PATH_MAX + 128];
    struct stat st;
    if ((size_t)snprintf(p, sizeof p, "%.*s/config.json", PATH_MAX, dir) >= sizeof p) return false;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

forge_status forge_builtin_model_path(char *path, size_t path_size, forge_error *err) {
    if (!path || path_size == 0) return err_set(err, FORGE_E_INVALID, "forge_builtin_model_path: path is NULL or empty");
    const char *env = getenv("FORGE_BUILTIN_MODEL");
    char tried[1024] = "";
    size_t used = 0;
    if (env && *env) {
        if (!is_model_dir(env))
            return err_set(err, FORGE_E_NOT_FOUND, "FORGE_BUILTIN_MODEL=%s is not a model folder (no config.json)", env);
        if (strlen(env) >= path_size) return err_set(err, FORGE_E_RANGE, "the built-in model path does not fit in %zu bytes", path_size);
        memcpy(path, env, strlen(env) + 1);
        return FORGE_OK;
    }
    /* the file holding this function: libforge.so.N, or the executable it was linked into */
    char base[PATH_MAX];
    Dl_info info;
    if (!dladdr((void *)forge_builtin_model_path, &info) || !info.dli_fname || !realpath(info.dli_fname, base)) {
        if (port_exe_path(base, sizeof base) != 0)
            return err_set(err, FORGE_E_NOT_FOUND, "cannot tell where the library is installed");
    }
    char *slash = strrchr(base, '/');
    if (!slash) return err_set(err, FORGE_E_NOT_FOUND, "cannot tell where the library is installed (%s)", base);
    *slash = 0;
    static const char *const rel[] = {"/../share/forge/models/stories260K", "/../models/stories260K",
                                      "/models/stories260K"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char cand[PATH_MAX + 64];
        snprintf(cand, sizeof cand, "%.*s%s", PATH_MAX - 64, base, rel[i]);
        if (is_model_dir(cand)) {
            char real[PATH_MAX];
            const char *out = realpath(cand, real) ? real : cand;
            if (strlen(out) >= path_size)
                return err_set(err, FORGE_E_RANGE, "the built-in model path does not fit in %zu bytes", path_size);
            memcpy(path, out, strlen(out) + 1);
            return FORGE_OK;
        }
        int w = snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", cand);
        if (w > 0 && (size_t)w < sizeof tried - used) used += (size_t)w;
    }
    return err_set(err, FORGE_E_NOT_FOUND,
                   "the built-in model is not installed (looked in %s; set FORGE_BUILTIN_MODEL to its folder)", tried);
}
