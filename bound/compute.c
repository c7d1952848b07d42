/* compute.c: bnd_compute, the entry point. One forward sweep over the layers
 * computes IBP bounds of every layer; with CROWN, each pre-activation layer is
 * refined by a CROWN backward pass from itself (its IBP-unstable neurons only,
 * like auto_LiRPA's sparse intermediate bounds) before the nonlinearity
 * after it is relaxed. The objectives C·y are then bounded by one backward
 * pass over the stacked rows [C; -C]: through the relaxations (CROWN), or
 * for IBP only through the linear layers after the last nonlinearity
 * (C merged into the last layer, as auto_LiRPA does). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int bnd_compute(bnd_net *net, bnd_method method, const double *lo, const double *hi,
                const double *C, int m, double *lb, double *ub, err *e)
{
    int64_t n_in = bnd_n_in(net), n_out = bnd_n_out(net);
    if (!lo || !hi || (method != BND_IBP && method != BND_CROWN))
        return err_set(e, ERR_ARG, "%s: bnd_compute: bad arguments", net->source);
    if (!C)
        m = (int)n_out;
    if (m < 0 || (C == NULL && n_out > (int64_t)1 << 24))
        return err_set(e, ERR_ARG, "%s: bnd_compute: bad objective count", net->source);
    bnd_layer *L0 = &net->layers[0];
    for (int64_t j = 0; j < n_in; j++) {
        if (!(lo[j] <= hi[j]) || isinf(lo[j]) || isinf(hi[j]))
            return err_set(e, ERR_ARG, "%s: input box: bad interval for X_%lld", net->source,
                           (long long)j);
        L0->lo[j] = lo[j];
        L0->hi[j] = hi[j];
    }
    int rc = 0;
    for (int i = 0; i < net->n_layers; i++)
        net->layers[i].mz_ok = net->layers[i].errw_ok = 0;
    for (int i = 1; i < net->n_layers && rc == 0; i++) {
        rc = bnd_ibp_layer(net, i, e);
        if (rc == 0 && method == BND_CROWN && net->layers[i].is_preact &&
            !net->layers[i].ibp_exact)
            rc = bnd_crown_refine(net, i, e);
        if (rc == 0 && method == BND_CROWN && net->layers[i].kind == BND_L_ACT) {
            /* the ACT's interval may be tightened by its refined input */
            rc = bnd_act_relax(net, i, e);
        }
    }
    if (rc)
        return rc;
    if (m == 0 || (!lb && !ub))
        return 0;
    double *Cid = NULL;
    if (!C) {
        Cid = calloc((size_t)(m * n_out), sizeof(double));
        if (!Cid)
            return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        for (int q = 0; q < m; q++)
            Cid[q * n_out + q] = 1.0;
        C = Cid;
    }
    if (method == BND_IBP && Cid) { /* identity: the output interval itself */
        const bnd_layer *Y = &net->layers[net->out];
        if (lb)
            memcpy(lb, Y->lo, (size_t)n_out * sizeof(double));
        if (ub)
            memcpy(ub, Y->hi, (size_t)n_out * sizeof(double));
        free(Cid);
        return 0;
    }
    /* rows [C; -C] (only the sides asked for) in one backward pass */
    int nr = (lb ? m : 0) + (ub ? m : 0);
    double *A0 = malloc((size_t)(nr * n_out) * sizeof(double));
    double *v = malloc((size_t)nr * sizeof(double));
    if (!A0 || !v) {
        free(A0), free(v), free(Cid);
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    }
    int row = 0;
    if (lb)
        memcpy(A0, C, (size_t)(m * n_out) * sizeof(double)), row = m;
    if (ub)
        for (int64_t t = 0; t < m * n_out; t++)
            A0[row * n_out + t] = -C[t];
    rc = bnd_backward_rows(net, net->out, nr, A0, method == BND_IBP, v, e);
    if (rc == 0) {
        if (lb)
            memcpy(lb, v, (size_t)m * sizeof(double));
        if (ub)
            for (int q = 0; q < m; q++)
                ub[q] = -v[(lb ? m : 0) + q];
    }
    free(A0), free(v), free(Cid);
    return rc;
}
