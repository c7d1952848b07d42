/* trn_ckpt.c: checkpoints. One binary file holds everything a resumed run
 * needs to continue exactly where an uninterrupted one would be: parameters,
 * BN running statistics, Adam moments and step, the RNG state, the epoch and
 * the global batch counter. Written to a temporary name and renamed, so an
 * interruption never leaves a half-written checkpoint. */
#include "trn.h"

#include <stdio.h>
#include <string.h>

#define CKPT_MAGIC "TRNCKPT1"

typedef struct {
    char magic[8];
    int32_t n_layers, epoch;
    int64_t n_params, n_stats, step, adam_t;
    uint64_t rng[4];
} ckpt_head;

int trn_ckpt_save(const char *path, const trn_model *m, const trn_state *s, err *e)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return err_set(e, ERR_IO, "%s: cannot write", tmp);
    ckpt_head h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 8);
    h.n_layers = m->n_layers;
    h.epoch = s->epoch;
    h.n_params = m->n_params;
    h.n_stats = m->n_stats;
    h.step = s->step;
    h.adam_t = s->adam.t;
    memcpy(h.rng, s->rng.s, sizeof h.rng);
    size_t np = (size_t)m->n_params, ns = (size_t)m->n_stats;
    int ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(m->params, sizeof(float), np, f) == np &&
             fwrite(m->stats, sizeof(float), ns, f) == ns &&
             fwrite(s->adam.m, sizeof(float), np, f) == np &&
             fwrite(s->adam.v, sizeof(float), np, f) == np;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return err_set(e, ERR_IO, "%s: write failed", path);
    }
    return 0;
}

/* The model must already have the checkpoint's architecture (built from the same config). */
int trn_ckpt_load(const char *path, trn_model *m, trn_state *s, err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, ERR_IO, "%s: cannot open", path);
    ckpt_head h;
    int rc = 0;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CKPT_MAGIC, 8) != 0) {
        rc = err_set(e, ERR_PARSE, "%s: not a trainer checkpoint", path);
        goto done;
    }
    if (h.n_layers != m->n_layers || h.n_params != m->n_params || h.n_stats != m->n_stats ||
        s->adam.n != m->n_params) {
        rc = err_set(e, ERR_SHAPE,
                     "%s: checkpoint has %d layers / %lld parameters, the configured model "
                     "%d / %lld",
                     path, h.n_layers, (long long)h.n_params, m->n_layers, (long long)m->n_params);
        goto done;
    }
    if (h.epoch < 0 || h.step < 0 || h.adam_t < 0) {
        rc = err_set(e, ERR_VALUE, "%s: negative counters", path);
        goto done;
    }
    size_t np = (size_t)m->n_params, ns = (size_t)m->n_stats;
    if (fread(m->params, sizeof(float), np, f) != np || fread(m->stats, sizeof(float), ns, f) != ns ||
        fread(s->adam.m, sizeof(float), np, f) != np || fread(s->adam.v, sizeof(float), np, f) != np) {
        rc = err_set(e, ERR_PARSE, "%s: truncated checkpoint", path);
        goto done;
    }
    s->epoch = h.epoch;
    s->step = h.step;
    s->adam.t = h.adam_t;
    memcpy(s->rng.s, h.rng, sizeof h.rng);
done:
    fclose(f);
    return rc;
}
