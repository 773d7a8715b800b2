/* constrain.c: constrained decoding in the engine. A request with a constraint compiles it
 * at submit (errors go back to the caller) into a gconstraint shared by its choices; each
 * choice has its own matcher and mask. Before each sample the engine thread fills the
 * choice's mask (the sampler applies it before every setting); after it, the token is fed
 * to the matcher. The vocabulary trie is built once per engine, at the first constrained
 * request; the mask caches live with the request (one thread: the engine's). */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "engine/engine_int.h"
#include "grammar/constraint.h"
#include "grammar/matcher.h"

forge_status engine_constraint_setup(forge_engine *e, forge_request *r, const forge_request_params *p,
                                     forge_error *err) {
    if (p->constraint.kind == FORGE_CONSTRAINT_NONE) return FORGE_OK;
    if (!e->tok) return err_set(err, FORGE_E_INVALID, "a constraint needs the engine's tokenizer");
    grammar *g = constraint_compile(&p->constraint, err);
    if (!g) return err ? err->code : FORGE_E_INVALID;
    pthread_mutex_lock(&e->gram_lock);
    forge_status st = FORGE_OK;
    if (!e->gvocab) e->gvocab = gvocab_create(e->tok, e->vocab, err);
    if (!e->gws) e->gws = gws_create(err);
    if (!e->gvocab || !e->gws) st = err ? err->code : FORGE_E_NOMEM;
    pthread_mutex_unlock(&e->gram_lock);
    if (st) {
        grammar_free(g);
        return st;
    }
    r->gc = gconstraint_create(g, e->gvocab, err);
    if (!r->gc) return err ? err->code : FORGE_E_NOMEM;
    size_t words = ((size_t)e->vocab + 31) / 32;
    for (int i = 0; i < r->n_seqs; i++) {
        seq *s = &r->seqs[i];
        s->gm = gmatcher_create(r->gc, e->gws, err);
        s->gmask = malloc(words * sizeof(uint32_t));
        if (!s->gm || !s->gmask) return s->gm ? err_set(err, FORGE_E_NOMEM, "out of memory") : (err ? err->code : FORGE_E_NOMEM);
        sampler_set_mask(s->smp, s->gmask);
    }
    return FORGE_OK;
}

void engine_constraint_free(forge_request *r) {
    for (int i = 0; r->seqs && i < r->n_seqs; i++) {
        gmatcher_free(r->seqs[i].gm);
        free(r->seqs[i].gmask);
    }
    gconstraint_free(r->gc);
}

static void set_bit(uint32_t *m, int32_t id, int vocab) {
    if (id >= 0 && id < vocab) m[id >> 5] |= 1u << (id & 31);
}

int engine_constraint_mask(forge_engine *e, seq *s, const char **why) {
    forge_request *r = s->req;
    if (gmatcher_must_end(s->gm)) return 1;
    forge_error err;
    if (gmatcher_fill_mask(s->gm, r->gc, e->gws, s->gmask, &err)) {
        *why = "the constraint's matcher failed";
        log_warn("engine: %s", err.msg);
        return -1;
    }
    bool any = false;
    int words = (e->vocab + 31) / 32;
    for (int i = 0; i < words && !any; i++) any = s->gmask[i] != 0;
    bool can_end = gmatcher_can_end(s->gm);
    if (!any) {
        if (can_end) return 1;
        *why = "the constraint allows no token of the vocabulary here";
        return -1;
    }
    if (can_end) {
        if (!r->ignore_eos)
            for (int i = 0; i < e->n_eos; i++) set_bit(s->gmask, e->eos_ids[i], e->vocab);
        for (int i = 0; i < r->n_stop_ids; i++) set_bit(s->gmask, r->stop_ids[i], e->vocab);
    }
    return 0;
}

int engine_constraint_accept(forge_engine *e, seq *s, int32_t token) {
    forge_error err;
    if (gmatcher_accept_token(s->gm, e->gws, token, &err)) {
        log_warn("engine: %s", err.msg);
        return -1;
    }
    return gmatcher_must_end(s->gm) ? 1 : 0;
}
