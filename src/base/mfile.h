/* mfile.h: read-only memory-mapped files and whole-file reads. */
#ifndef FORGE_BASE_MFILE_H
#define FORGE_BASE_MFILE_H

#include <stddef.h>

#include "base/error.h"

typedef struct mfile {
    const unsigned char *data; /* NULL for an empty file */
    size_t size;
} mfile;

/* Maps `path` read-only. On failure f is zeroed and err names the path. */
forge_status mfile_open(mfile *f, const char *path, forge_error *err);
void mfile_close(mfile *f);
/* For weight files streamed whole at every decode step: asks for transparent huge pages on
 * the mapping (MADV_HUGEPAGE). FORGE_HUGEPAGES=0 skips it. Returns 1 if advised. */
int mfile_advise_hugepages(const mfile *f);

/* Reads a whole file into a NUL-terminated malloc'd buffer owned by the caller. Files over
 * max_size bytes are refused (FORGE_E_RANGE). */
forge_status file_read_all(const char *path, size_t max_size, char **out, size_t *len,
                           forge_error *err);

/* True if path names an existing regular file / directory. */
int path_is_file(const char *path);
int path_is_dir(const char *path);
/* Joins dir and name into out (size n); returns 0, or -1 if it does not fit. */
int path_join(char *out, size_t n, const char *dir, const char *name);

#endif
