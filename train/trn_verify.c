/* trn_verify.c: verified error of an exported model through the verifier's own
 * code (bound/, sound double-precision IBP and CROWN with outward rounding), so
 * the trainer's reported numbers are the ones `verify` would give. Per test
 * image the box is [max(x - eps, 0), min(x + eps, 1)] in pixel units (the graph
 * carries any input normalisation) and the objectives are the margins
 * y_true - y_j, j != true; the image is verified when every lower bound > 0. */
#include "trn.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bound/bound.h"

typedef struct {
    const nn_graph *g;
    const trn_dataset *d;
    double eps;
    int64_t n_crown;
    int64_t clean[TRN_MAX_THREADS], ibp[TRN_MAX_THREADS], crown[TRN_MAX_THREADS];
    int rc[TRN_MAX_THREADS];
    err e[TRN_MAX_THREADS];
} verify_ctx;

static void verify_job(void *p, int tid, int64_t i0, int64_t i1)
{
    verify_ctx *c = p;
    const trn_dataset *d = c->d;
    int nc = d->n_classes;
    int64_t sz = (int64_t)d->c * d->h * d->w;
    bnd_net *net = NULL;
    double *x = malloc((size_t)sz * sizeof *x), *lo = malloc((size_t)sz * sizeof *lo),
           *hi = malloc((size_t)sz * sizeof *hi), *C = calloc((size_t)nc * nc, sizeof *C),
           y[TRN_MAX_CLASSES], lb[TRN_MAX_CLASSES];
    err *e = &c->e[tid];
    if (!x || !lo || !hi || !C) {
        c->rc[tid] = err_set(e, ERR_NOMEM, "verify: out of memory");
        goto done;
    }
    if ((c->rc[tid] = bnd_net_new(c->g, &net, e)))
        goto done;
    for (int64_t i = i0; i < i1; i++) {
        int lab = d->labels[i];
        for (int64_t k = 0; k < sz; k++) {
            x[k] = d->pixels[i * sz + k] / 255.0;
            lo[k] = x[k] - c->eps > 0 ? x[k] - c->eps : 0;
            hi[k] = x[k] + c->eps < 1 ? x[k] + c->eps : 1;
        }
        if ((c->rc[tid] = nn_eval(c->g, x, y, e)))
            goto done;
        int wrong = 0;
        for (int j = 0; j < nc; j++)
            wrong |= j != lab && y[j] >= y[lab];
        c->clean[tid] += wrong;
        memset(C, 0, (size_t)nc * nc * sizeof *C);
        for (int j = 0, r = 0; j < nc; j++)
            if (j != lab) {
                C[r * nc + lab] = 1;
                C[r * nc + j] = -1;
                r++;
            }
        for (int method = 0; method < 2; method++) {
            if (method == 1 && i >= c->n_crown)
                break;
            int ok = !wrong;
            if (ok) {
                if ((c->rc[tid] = bnd_compute(net, method ? BND_CROWN : BND_IBP, lo, hi, C, nc - 1,
                                              lb, NULL, e)))
                    goto done;
                for (int j = 0; j < nc - 1; j++)
                    ok &= lb[j] > 0;
            }
            if (method == 0)
                c->ibp[tid] += !ok;
            else
                c->crown[tid] += !ok;
        }
    }
done:
    bnd_net_free(net);
    free(x), free(lo), free(hi), free(C);
}

int trn_verify_graph(const nn_graph *g, const trn_dataset *d, double eps, int64_t n, int64_t n_crown,
                     int nthreads, trn_verify_result *r, err *e)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(r, 0, sizeof *r);
    if (n <= 0 || n > d->n)
        n = d->n;
    if (n_crown > n)
        n_crown = n;
    if (n_crown < 0)
        n_crown = 0;
    if (nn_input_size(g) != (int64_t)d->c * d->h * d->w || nn_output_size(g) != d->n_classes)
        return err_set(e, ERR_SHAPE, "%s: model has %lld inputs / %lld outputs, the data %d / %d",
                       g->source, (long long)nn_input_size(g), (long long)nn_output_size(g),
                       d->c * d->h * d->w, d->n_classes);
    verify_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(e, ERR_NOMEM, "verify: out of memory");
    c->g = g;
    c->d = d;
    c->eps = eps;
    c->n_crown = n_crown;
    trn_par_for(nthreads, n, verify_job, c);
    int rc = 0;
    for (int t = 0; t < TRN_MAX_THREADS; t++) {
        if (c->rc[t] && !rc) {
            rc = c->rc[t];
            if (e)
                *e = c->e[t];
        }
        r->clean += c->clean[t];
        r->ibp += c->ibp[t];
        r->crown += c->crown[t];
    }
    free(c);
    r->n = n;
    r->n_crown = n_crown;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    return rc;
}

int trn_verify_into(const nn_graph *g, const trn_dataset *d, const trn_config *c,
                    trn_eval_result *r, err *e)
{
    trn_verify_result v;
    int rc = trn_verify_graph(g, d, c->eps, c->verify_limit, c->crown_limit, c->threads, &v, e);
    if (rc)
        return rc;
    r->v_n = v.n;
    r->v_n_crown = v.n_crown;
    r->v_clean_err = (double)v.clean / (double)v.n;
    r->v_ibp_err = (double)v.ibp / (double)v.n;
    r->v_crown_err = v.n_crown > 0 ? (double)v.crown / (double)v.n_crown : -1;
    r->v_seconds = v.seconds;
    return 0;
}
