/* compute.c: bnd_compute, the entry point. One forward sweep over the layers
 * computes IBP bounds of every layer; with CROWN, each pre-activation layer is
 * refined by a CROWN backward pass from itself (its IBP-unstable neurons only,
 * like auto_LiRPA's sparse intermediate bounds) before the nonlinearity
 * after it is relaxed. The objectives C·y are then bounded either by IBP
 * (C merged into a final linear layer, as auto_LiRPA does) or by one CROWN
 * backward pass over the stacked rows [C; -C]. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* IBP bounds of C·y. If the output layer is y = J x + b (one input), use
 * J' = C·J, b' = C·b on x's interval; else C on y's interval. Rounding: the
 * products C·J, C·b and the centre/radius sums have at most n_out + in + 4
 * terms in sequence: gamma of that times |C|(|J|(|c|+r) + |b|) (+ |C| bias_err). */
static int ibp_objective(bnd_net *net, const double *C, int m, double *lb, double *ub, err *e)
{
    const bnd_layer *Y = &net->layers[net->out];
    int merge = Y->kind == BND_L_LINEAR && Y->n_in == 1 && Y->lin[0];
    const bnd_layer *X = merge ? &net->layers[Y->in[0]] : Y;
    int64_t nx = X->size, ny = Y->size;
    double *Jc = calloc((size_t)(m * nx), sizeof(double));
    double *c = malloc((size_t)(3 * nx) * sizeof(double));
    double *t = malloc((size_t)(ny + 1) * sizeof(double));
    if (!Jc || !c || !t) {
        free(Jc), free(c), free(t);
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    }
    double *r = c + nx, *mx = c + 2 * nx;
    bnd_center_radius(nx, X->lo, X->hi, c, r);
    for (int64_t j = 0; j < nx; j++)
        mx[j] = fabs(c[j]) + r[j];
    if (merge) {
        bnd_lin_backward(Y->lin[0], m, C, Jc);
        bnd_lin_forward(Y->lin[0], 1, 1, mx, t); /* |J|(|c|+r) */
    } else {
        memcpy(Jc, C, (size_t)(m * nx) * sizeof(double));
        memcpy(t, mx, (size_t)nx * sizeof(double));
    }
    double g = bnd_gamma((double)(ny + nx + 6 + Y->coef_err));
    for (int q = 0; q < m; q++) {
        const double *a = Jc + q * nx, *cq = C + (int64_t)q * ny;
        double yc = 0, yr = 0, em = 0, eb = 0;
        for (int64_t j = 0; j < nx; j++) {
            yc += a[j] * c[j];
            yr += fabs(a[j]) * r[j];
        }
        for (int64_t o = 0; o < ny; o++) {
            double w = fabs(cq[o]);
            em += w * t[o];
            if (merge && Y->bias) {
                yc += cq[o] * Y->bias[o];
                em += w * fabs(Y->bias[o]);
            }
            if (merge && Y->bias_err)
                eb += w * Y->bias_err[o];
        }
        double er = bnd_safe(g * em + eb);
        if (lb) {
            lb[q] = bnd_down(yc - yr - er);
            if (isnan(lb[q]))
                lb[q] = -INFINITY;
        }
        if (ub) {
            ub[q] = bnd_up(yc + yr + er);
            if (isnan(ub[q]))
                ub[q] = INFINITY;
        }
    }
    free(Jc), free(c), free(t);
    return 0;
}

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
    for (int i = 1; i < net->n_layers && rc == 0; i++) {
        rc = bnd_ibp_layer(net, i, e);
        if (rc == 0 && method == BND_CROWN && net->layers[i].is_preact)
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
    if (method == BND_IBP) {
        if (Cid) { /* identity: the output interval itself */
            const bnd_layer *Y = &net->layers[net->out];
            if (lb)
                memcpy(lb, Y->lo, (size_t)n_out * sizeof(double));
            if (ub)
                memcpy(ub, Y->hi, (size_t)n_out * sizeof(double));
        } else {
            rc = ibp_objective(net, C, m, lb, ub, e);
        }
        free(Cid);
        return rc;
    }
    /* CROWN: rows [C; -C] (only the sides asked for) in one backward pass */
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
    rc = bnd_crown_backward(net, net->out, nr, A0, v, e);
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
