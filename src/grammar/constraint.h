/* constraint.h: a public forge_constraint (schema, regex, choice, GBNF) to a compiled
 * grammar; the public forge_constraint_* functions live in constraint.c. */
#ifndef FORGE_GRAMMAR_CONSTRAINT_H
#define FORGE_GRAMMAR_CONSTRAINT_H

#include "grammar/grammar.h"

/* NULL with the error when c does not compile (or has kind NONE: FORGE_E_INVALID). */
grammar *constraint_compile(const forge_constraint *c, forge_error *err);

#endif
