/* convert.h: constraints written other ways, turned into GBNF text that grammar_parse
 * compiles: JSON schemas (as llama.cpp's json-schema-to-grammar), regular expressions
 * (vLLM's guided_regex), choice lists (guided_choice) and "any JSON object" (json_object).
 *
 * Each returns FORGE_OK and appends a complete grammar (with a "root" rule) to out, or an
 * error naming what it does not support (FORGE_E_UNSUPPORTED: a JSON schema keyword, a
 * regex construct such as a backreference) or what is malformed (FORGE_E_INVALID). Inputs
 * are untrusted: sizes and nesting are bounded. */
#ifndef FORGE_GRAMMAR_CONVERT_H
#define FORGE_GRAMMAR_CONVERT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/strbuf.h"
#include "forge.h"

/* schema: JSON text of a schema. */
forge_status schema_to_gbnf(const char *schema, size_t len, strbuf *out, forge_error *err);
/* Any JSON object (whitespace between tokens as the schema grammars allow). */
void json_object_gbnf(strbuf *out);

/* A regex that the whole output must match (Python `re.fullmatch`, ASCII classes):
 * literals, escapes (\n \t \r \f \v \xHH \uHHHH, \d \w \s and their negations), classes
 * with ranges and negation, `.` (any character but line breaks), groups ((...), (?:...),
 * (?P<name>...)), alternation, quantifiers * + ? {m} {m,} {m,n} (lazy forms accepted), ^ at
 * the start and $ at the end. Backreferences, lookaround, \b and inline flags are refused
 * by name. */
forge_status regex_to_gbnf(const char *re, size_t len, strbuf *out, forge_error *err);
/* The same as an expression for the inside of a JSON string (characters that JSON must
 * escape appear escaped); a pattern without ^ / $ may have any text around it, as JSON
 * schema's `pattern` means. */
forge_status regex_to_gbnf_json_expr(const char *re, size_t len, strbuf *out, forge_error *err);

/* choices: JSON text of an array of strings; the output is exactly one of them. */
forge_status choice_to_gbnf(const char *choices, size_t len, strbuf *out, forge_error *err);

#endif
