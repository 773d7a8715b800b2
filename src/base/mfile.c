#include "base/mfile.h"

#include "base/port.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

forge_status mfile_open(mfile *f, const char *path, forge_error *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(err, errno == ENOENT ? FORGE_E_NOT_FOUND : FORGE_E_IO, "%s: cannot open: %s",
                       path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, FORGE_E_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return FORGE_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int saved = errno;
    close(fd);
    if (p == MAP_FAILED) return err_set(err, FORGE_E_IO, "%s: cannot map: %s", path, strerror(saved));
    f->data = p;
    f->size = (size_t)st.st_size;
    return FORGE_OK;
}

/* With 4 KB pages a decode step's weight stream takes a TLB miss every 4 KB, and the
 * hardware prefetchers stop at each page boundary. Where the kernel keeps the file's page
 * cache in large folios (ext4/xfs on Linux 6.x: read cold, or read through a VM_HUGEPAGE
 * mapping), this advice lets the faults map 2 MB at once; pages already cached in small
 * folios (a file just written) stay 4 KB until evicted and read again. */
int mfile_advise_hugepages(const mfile *f) {
    const char *e = getenv("FORGE_HUGEPAGES");
    if (!f || !f->data || f->size < ((size_t)2 << 20) || (e && !strcmp(e, "0"))) return 0;
    return port_advise_hugepages((void *)f->data, f->size);
}

void mfile_close(mfile *f) {
    if (f && f->data) munmap((void *)f->data, f->size);
    if (f) memset(f, 0, sizeof *f);
}

forge_status file_read_all(const char *path, size_t max_size, char **out, size_t *len,
                           forge_error *err) {
    *out = NULL;
    if (len) *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return err_set(err, errno == ENOENT ? FORGE_E_NOT_FOUND : FORGE_E_IO, "%s: cannot open: %s",
                       path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return err_set(err, FORGE_E_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max_size) {
        fclose(fp);
        return err_set(err, FORGE_E_RANGE, "%s: file is %lld bytes, more than the %zu allowed", path,
                       (long long)st.st_size, max_size);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(fp);
        return err_set(err, FORGE_E_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = n ? fread(buf, 1, n, fp) : 0;
    fclose(fp);
    if (got != n) {
        free(buf);
        return err_set(err, FORGE_E_IO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return FORGE_OK;
}

int path_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int path_join(char *out, size_t n, const char *dir, const char *name) {
    size_t dl = strlen(dir);
    int slash = dl > 0 && dir[dl - 1] != '/';
    int w = snprintf(out, n, "%s%s%s", dir, slash ? "/" : "", name);
    return (w < 0 || (size_t)w >= n) ? -1 : 0;
}
