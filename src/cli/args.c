#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt *find_opt(const cli_opt *opts, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len)) return &opts[i];
    return NULL;
}

static int set_value(const char *cmd, const cli_opt *o, const char *v) {
    char *end;
    switch (o->kind) {
    case OPT_STR: *(const char **)o->dest = v; return 0;
    case OPT_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end) {
            fprintf(stderr, "forge %s: --%s expects an integer, got '%s'\n", cmd, o->name, v);
            return -1;
        }
        *(long *)o->dest = x;
        return 0;
    }
    case OPT_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || x != x) {
            fprintf(stderr, "forge %s: --%s expects a number, got '%s'\n", cmd, o->name, v);
            return -1;
        }
        *(double *)o->dest = x;
        return 0;
    }
    case OPT_STR_LIST: {
        cli_strlist *l = o->dest;
        const char **p = realloc(l->items, (size_t)(l->n + 1) * sizeof *p);
        if (!p) return -1;
        p[l->n++] = v;
        l->items = p;
        return 0;
    }
    case OPT_FLAG: return 0;
    }
    return -1;
}

int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, int n_opts,
              const char **pos, int max_pos) {
    int npos = 0, only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] != '-' || !a[2]) {
            if (!only_pos && !strcmp(a, "--")) {
                only_pos = 1;
                continue;
            }
            if (a[0] == '-' && a[1] && !only_pos && strcmp(a, "-")) {
                fprintf(stderr, "forge %s: unknown option '%s' (options are --long-names)\n", cmd, a);
                return -1;
            }
            if (npos >= max_pos) {
                fprintf(stderr, "forge %s: unexpected argument '%s'\n", cmd, a);
                return -1;
            }
            pos[npos++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = find_opt(opts, n_opts, name, len);
        if (!o) {
            fprintf(stderr, "forge %s: unknown option '--%.*s' (see forge %s --help)\n", cmd,
                    (int)len, name, cmd);
            return -1;
        }
        if (o->kind == OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "forge %s: --%s takes no value\n", cmd, o->name);
                return -1;
            }
            *(int *)o->dest = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "forge %s: --%s needs a value\n", cmd, o->name);
                return -1;
            }
            v = argv[++i];
        }
        if (set_value(cmd, o, v) != 0) return -1;
    }
    return npos;
}

void cli_usage(const char *cmd, const char *synopsis, const cli_opt *opts, int n_opts) {
    fprintf(stderr, "usage: forge %s %s\n", cmd, synopsis);
    for (int i = 0; i < n_opts; i++) {
        const char *h = opts[i].help ? opts[i].help : "";
        const char *colon = strstr(h, ": ");
        char left[64];
        if (colon && opts[i].kind != OPT_FLAG)
            snprintf(left, sizeof left, "--%s %.*s", opts[i].name, (int)(colon - h), h);
        else
            snprintf(left, sizeof left, "--%s", opts[i].name);
        fprintf(stderr, "  %-28s %s\n", left, colon ? colon + 2 : h);
    }
}

void cli_strlist_free(cli_strlist *l) {
    free(l->items);
    l->items = NULL;
    l->n = 0;
}
