/* grammar.h: GBNF grammars (llama.cpp's format) parsed and compiled to a byte-level form.
 *
 * Constrained decoding is written here rather than taken from a library: nothing in Debian
 * does it, and the known implementations (llguidance in Rust, XGrammar in C++, Outlines in
 * Python) cannot be linked into a C11 library without a second toolchain. The design
 * follows their ideas: a pushdown matcher over bytes, a sorted token trie walked once per
 * automaton position, and XGrammar's split of tokens into those a position accepts or
 * rejects whatever lies below it on the stack, and the few that depend on it.
 *
 * The compiled form: rules, each a list of alternatives, each a sequence of elements ending
 * in G_END. An element is a byte set (G_SET, 256 bits) or a reference to a rule (G_REF).
 * Characters are UTF-8: a class of code points becomes a rule whose alternatives are byte
 * range sequences; repetition operators become generated rules (x* is R ::= x R | ""). The
 * grammar is read-only after compilation and may be shared between threads.
 *
 * Untrusted input: the text is at most GRAMMAR_MAX_TEXT bytes, nesting of groups at most
 * GRAMMAR_MAX_NEST, repetition bounds at most GRAMMAR_MAX_REPEAT and the compiled size at
 * most GRAMMAR_MAX_ELEMS elements; left recursion is refused (it would never terminate). */
#ifndef FORGE_GRAMMAR_GRAMMAR_H
#define FORGE_GRAMMAR_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forge.h"

enum {
    GRAMMAR_MAX_TEXT = 4 << 20,
    GRAMMAR_MAX_NEST = 100,
    GRAMMAR_MAX_REPEAT = 10000,
    GRAMMAR_MAX_ELEMS = 1 << 20,
    GRAMMAR_MAX_RULES = 1 << 16,
};

enum { G_END = 0, G_SET = 1, G_REF = 2 };

typedef struct gelem {
    uint32_t kind : 2;
    uint32_t arg : 30; /* G_SET: set index; G_REF: rule index */
} gelem;

typedef struct gbyteset {
    uint64_t w[4];
} gbyteset;

static inline bool gset_has(const gbyteset *s, unsigned b) { return (s->w[b >> 6] >> (b & 63)) & 1; }

typedef struct grammar {
    int n_rules, n_alts, n_elems, n_sets;
    int root;
    char **names;         /* rule names (generated ones are "parent_N") */
    int32_t *rule_alt0;   /* n_rules + 1: alternatives of rule r are rule_alt0[r] .. rule_alt0[r+1]-1 */
    int32_t *alt_pos;     /* first element of each alternative */
    gelem *elems;
    gbyteset *sets;       /* sets 0..255 are the single bytes */
    /* analysis */
    bool *rule_nullable;
    bool *null_from;      /* per element: the rest of its alternative can match "" */
    gbyteset *first_from; /* per element: bytes that can start the rest of its alternative */
} grammar;

/* Parses and compiles GBNF text (root rule "root"). NULL with FORGE_E_INVALID and a message
 * naming the line and column, or the rule, on error. */
grammar *grammar_parse(const char *text, size_t len, forge_error *err);
void grammar_free(grammar *g);

/* GBNF writing helpers for the converters: a literal "..." and a class body's character. */
typedef struct strbuf strbuf;
void gbnf_put_literal(strbuf *sb, const char *s, size_t n);
void gbnf_put_class_char(strbuf *sb, uint32_t cp);

#endif
