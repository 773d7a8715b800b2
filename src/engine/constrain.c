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

/* The engine keeps compiled constraints by their text (ECACHE_SIZE, least recently used
 * goes first among those no request holds), so requests with the same schema share the
 * mask caches that their first steps filled. */
static gconstraint *cache_get(forge_engine *e, const forge_constraint *c, forge_error *err) {
    econstraint *best = NULL;
    for (int i = 0; i < ECACHE_SIZE; i++) {
        econstraint *x = &e->gcache[i];
        if (x->gc && x->kind == c->kind && x->len == c->len && !memcmp(x->text, c->text ? c->text : "", c->len)) {
            x->refs++;
            x->last_use = ++e->gcache_clock;
            return x->gc;
        }
    }
    grammar *g = constraint_compile(c, err);
    if (!g) return NULL;
    gconstraint *gc = gconstraint_create(g, e->gvocab, err);
    if (!gc) return NULL;
    for (int i = 0; i < ECACHE_SIZE; i++) {
        econstraint *x = &e->gcache[i];
        if (x->refs == 0 && (!best || !x->gc || (best->gc && x->last_use < best->last_use))) best = x;
    }
    char *text = best ? malloc(c->len + 1) : NULL;
    if (!text) return gc; /* not cached: the request owns it (refs stay untouched) */
    if (best->gc) gconstraint_free(best->gc), free(best->text);
    memcpy(text, c->text ? c->text : "", c->len);
    *best = (econstraint){.kind = c->kind, .text = text, .len = c->len, .gc = gc, .refs = 1, .last_use = ++e->gcache_clock};
    return gc;
}

/* Drops a request's hold on gc (freeing it when the cache does not hold it). */
static void cache_put(forge_engine *e, gconstraint *gc) {
    if (!gc) return;
    pthread_mutex_lock(&e->gram_lock);
    bool cached = false;
    for (int i = 0; i < ECACHE_SIZE && !cached; i++)
        if (e->gcache[i].gc == gc) {
            e->gcache[i].refs--;
            cached = true;
        }
    pthread_mutex_unlock(&e->gram_lock);
    if (!cached) gconstraint_free(gc);
}

void engine_constraint_cache_free(forge_engine *e) {
    for (int i = 0; i < ECACHE_SIZE; i++) {
        gconstraint_free(e->gcache[i].gc);
        free(e->gcache[i].text);
    }
    memset(e->gcache, 0, sizeof e->gcache);
}

forge_status engine_constraint_setup(forge_engine *e, forge_request *r, const forge_request_params *p,
                                     forge_error *err) {
    if (p->constraint.kind == FORGE_CONSTRAINT_NONE) return FORGE_OK;
    if (!e->tok) return err_set(err, FORGE_E_INVALID, "a constraint needs the engine's tokenizer");
    if (!p->constraint.text && p->constraint.len) return err_set(err, FORGE_E_INVALID, "constraint: text is NULL");
    pthread_mutex_lock(&e->gram_lock);
    forge_status st = FORGE_OK;
    if (!e->gvocab) e->gvocab = gvocab_create(e->tok, e->vocab, err);
    if (!e->gws) e->gws = gws_create(err);
    if (!e->gvocab || !e->gws) st = err ? err->code : FORGE_E_NOMEM;
    else {
        r->gc = cache_get(e, &p->constraint, err);
        if (!r->gc) st = err ? err->code : FORGE_E_INVALID;
    }
    pthread_mutex_unlock(&e->gram_lock);
    if (st) return st;
    r->engine_for_gc = e;
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

/* Releases the matchers and the hold on the constraint; called when the engine is done with
 * the request (and again, harmlessly, when the request is freed). The masks go with the
 * request (engine_constraint_free_masks). */
void engine_constraint_free(forge_request *r) {
    for (int i = 0; r->seqs && i < r->n_seqs; i++) {
        gmatcher_free(r->seqs[i].gm);
        r->seqs[i].gm = NULL; /* the sampler keeps the mask pointer but samples no more */
    }
    if (r->gc) cache_put(r->engine_for_gc, r->gc);
    r->gc = NULL;
}

void engine_constraint_free_masks(forge_request *r) {
    for (int i = 0; r->seqs && i < r->n_seqs; i++) {
        free(r->seqs[i].gmask);
        r->seqs[i].gmask = NULL;
    }
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
