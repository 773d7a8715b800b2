/* json.h: JSON documents parsed with libyajl's streaming parser into a read-only tree that
 * lives in one arena (fast to build, freed at once), and JSON writing helpers.
 *
 * Why a tree of our own on top of yajl: yajl's streaming parser is the fastest Debian JSON
 * library here (tokenizer.json files are up to 10 MB), but its yajl_tree keeps no
 * int/float distinction we control and allocates per node. Objects keep document order
 * (chat templates print keys in request order). */
#ifndef FORGE_BASE_JSON_H
#define FORGE_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/strbuf.h"

typedef enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_INT,    /* a number written without fraction or exponent that fits int64 */
    JSON_DOUBLE, /* any other number */
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} json_type;

typedef struct json_value json_value;

typedef struct json_member {
    const char *key; /* NUL-terminated (may hold NULs: key_len is exact) */
    size_t key_len;
    const json_value *value;
} json_member;

struct json_value {
    json_type type;
    size_t n; /* string byte length, array or object element count */
    union {
        bool b;
        int64_t i;
        double d;
        const char *s; /* NUL-terminated; may hold NULs (n is exact) */
        const json_value *const *items;
        const json_member *members; /* in document order; duplicates kept */
    } u;
};

typedef struct json_doc json_doc;

/* Parses text[0..len). Errors name the byte offset. Nesting beyond 512 levels is refused. */
json_doc *json_parse(const char *text, size_t len, forge_error *err);
/* Reads and parses a file (at most max_size bytes); errors are prefixed with the path. */
json_doc *json_parse_file(const char *path, size_t max_size, forge_error *err);
const json_value *json_root(const json_doc *doc);
void json_free(json_doc *doc);

/* Member `key` of an object (the last one if repeated); NULL if v is not an object or has
 * no such member. */
const json_value *json_get(const json_value *v, const char *key);
/* Element i of an array; NULL if v is not an array or i is out of range. */
const json_value *json_at(const json_value *v, size_t i);
static inline bool json_is(const json_value *v, json_type t) { return v && v->type == t; }
static inline bool json_is_number(const json_value *v) {
    return v && (v->type == JSON_INT || v->type == JSON_DOUBLE);
}
/* Number as double (0 if not a number). */
double json_number(const json_value *v);
/* String contents or NULL if v is not a string. */
const char *json_string(const json_value *v);
const char *json_type_name(json_type t);

/* Writing. Strings are escaped as Python's json.dumps does (\", \\, \n, \r, \t, \b, \f,
 * other controls as lowercase \u00XX); with ensure_ascii, non-ASCII becomes \uXXXX
 * (surrogate pairs beyond the BMP). The bytes must be valid UTF-8 when ensure_ascii. */
void json_write_string(strbuf *sb, const char *s, size_t n, bool ensure_ascii);
/* A double as Python's repr() writes a float: shortest round trip, "2.0", "1e-05",
 * "1e+16"; "inf", "-inf", "nan". Returns the length written into out (at most 31). */
int fmt_double_repr(char out[32], double d);
/* A double as a JSON number (Python's json.dumps: repr, with Infinity / NaN). */
void json_write_double(strbuf *sb, double d);
/* Compact JSON of a value (separators "," and ":"); always valid JSON: an infinite number
 * (a literal beyond double range) is written 1e999 / -1e999, a NaN null. */
void json_write_value(strbuf *sb, const json_value *v);

#endif
