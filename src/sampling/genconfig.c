/* genconfig.c: sampling defaults and EOS ids from generation_config.json (as vLLM uses them:
 * temperature, top_p, top_k, min_p, repetition_penalty; do_sample is ignored). */
#include <math.h>
#include <string.h>

#include "base/json.h"
#include "base/mfile.h"
#include "forge.h"

static forge_status num_field(const json_value *root, const char *key, float *out, bool *has, forge_error *err) {
    const json_value *v = json_get(root, key);
    *has = false;
    if (!v || v->type == JSON_NULL) return FORGE_OK;
    if (!json_is_number(v)) return err_set(err, FORGE_E_FORMAT, "field \"%s\" must be a number", key);
    *out = (float)json_number(v);
    *has = true;
    return FORGE_OK;
}

forge_status forge_generation_config_load(const char *dir, forge_generation_config *out, forge_error *err) {
    if (!dir || !out)
        return err_set(err, FORGE_E_INVALID, "forge_generation_config_load: %s is NULL", !dir ? "dir" : "out");
    memset(out, 0, sizeof *out);
    forge_sampling_params_default(&out->sampling);
    char path[4096];
    if (path_join(path, sizeof path, dir, "generation_config.json"))
        return err_set(err, FORGE_E_INVALID, "model path is too long");
    if (!path_is_file(path)) return FORGE_OK;
    json_doc *d = json_parse_file(path, 1 << 20, err);
    if (!d) return err ? err->code : FORGE_E_FORMAT;
    const json_value *r = json_root(d);
    forge_status st = FORGE_OK;
    float top_k = 0;
    bool has_top_k;
    if (!json_is(r, JSON_OBJECT)) st = err_set(err, FORGE_E_FORMAT, "not a JSON object");
    if (!st) st = num_field(r, "temperature", &out->sampling.temperature, &out->has_temperature, err);
    if (!st) st = num_field(r, "top_p", &out->sampling.top_p, &out->has_top_p, err);
    if (!st) st = num_field(r, "top_k", &top_k, &has_top_k, err);
    if (!st) st = num_field(r, "min_p", &out->sampling.min_p, &out->has_min_p, err);
    if (!st) st = num_field(r, "repetition_penalty", &out->sampling.repetition_penalty, &out->has_repetition_penalty, err);
    if (!st && has_top_k) {
        out->has_top_k = true;
        out->sampling.top_k = (int)top_k;
    }
    const json_value *eos = json_get(r, "eos_token_id");
    if (!st && eos) {
        if (eos->type == JSON_INT) out->eos_ids[out->n_eos_ids++] = (int32_t)eos->u.i;
        else if (eos->type == JSON_ARRAY)
            for (size_t i = 0; i < eos->n && out->n_eos_ids < 8; i++) {
                const json_value *e = json_at(eos, i);
                if (e->type != JSON_INT) {
                    st = err_set(err, FORGE_E_FORMAT, "eos_token_id[%zu] must be an integer", i);
                    break;
                }
                out->eos_ids[out->n_eos_ids++] = (int32_t)e->u.i;
            }
        else if (eos->type != JSON_NULL)
            st = err_set(err, FORGE_E_FORMAT, "field \"eos_token_id\" must be an integer or a list");
    }
    json_free(d);
    if (st) err_prefix(err, "%s", path);
    return st;
}
