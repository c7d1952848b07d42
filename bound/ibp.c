/* ibp.c: interval bound propagation, one layer at a time, in centre/radius
 * form as auto_LiRPA does: for y = sum_j J_j x_j + b with x_j in [c_j - r_j,
 * c_j + r_j]:  y_c = sum J_j c_j + b,  y_r = sum |J_j| r_j.
 * Rounding: each of these sums has at most F = fan_in terms per input, plus
 * n_in input sums, the bias, and the final y_c ± y_r; with g = max fan_in +
 * n_in + 4 + coef_err, the computed values are within
 *   gamma_g·(sum |J_j|(|c_j| + r_j) + |b|) + bias_err
 * of the exact ones (coef_err covers the relative error of stored
 * coefficients). That amount, inflated (bnd_safe), is subtracted/added, and
 * the results are stepped outward once (bnd_down/bnd_up). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void identity_forward(int64_t n, int64_t k, const double *X, double *Y)
{
    memcpy(Y, X, (size_t)(n * k) * sizeof(double));
}

static int ibp_linear(bnd_net *net, int i, err *e)
{
    bnd_layer *L = &net->layers[i];
    int64_t n = L->size, maxin = 0;
    for (int j = 0; j < L->n_in; j++)
        if (net->layers[L->in[j]].size > maxin)
            maxin = net->layers[L->in[j]].size;
    double *yc = calloc((size_t)n, sizeof(double));
    double *ys = calloc((size_t)(2 * n), sizeof(double)); /* y_r ; |J|(|c|+r) */
    double *tmp = malloc((size_t)(3 * n) * sizeof(double));
    double *x = malloc((size_t)(3 * maxin) * sizeof(double)); /* c ; r ; |c|+r */
    if (!yc || !ys || !tmp || !x) {
        free(yc), free(ys), free(tmp), free(x);
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    }
    int64_t fan = 1;
    for (int j = 0; j < L->n_in; j++) {
        const bnd_layer *X = &net->layers[L->in[j]];
        int64_t m = X->size;
        double *c = x, *r = x + m;
        bnd_center_radius(m, X->lo, X->hi, c, r);
        for (int64_t t = 0; t < m; t++)
            r[m + t] = fabs(c[t]) + r[t];
        if (L->lin[j]) {
            if (L->lin[j]->fan_in > fan)
                fan = L->lin[j]->fan_in;
            bnd_lin_ibp(L->lin[j], c, r, tmp + 2 * n, tmp);
            for (int64_t o = 0; o < n; o++)
                yc[o] += tmp[2 * n + o];
        } else {
            identity_forward(m, 1, c, tmp);
            for (int64_t o = 0; o < n; o++)
                yc[o] += tmp[o];
            identity_forward(m, 2, r, tmp);
        }
        for (int64_t o = 0; o < 2 * n; o++)
            ys[o] += tmp[o];
    }
    double g = bnd_gamma((double)(fan + L->n_in + 4 + L->coef_err));
    for (int64_t o = 0; o < n; o++) {
        double b = L->bias ? L->bias[o] : 0.0;
        double c = yc[o] + b, r = ys[o];
        double er = g * (ys[n + o] + fabs(b));
        if (L->bias_err)
            er += L->bias_err[o];
        er = bnd_safe(er);
        L->lo[o] = bnd_down(c - r - er);
        L->hi[o] = bnd_up(c + r + er);
        if (isnan(L->lo[o]))
            L->lo[o] = -INFINITY;
        if (isnan(L->hi[o]))
            L->hi[o] = INFINITY;
    }
    free(yc), free(ys), free(tmp), free(x);
    return 0;
}

int bnd_ibp_layer(bnd_net *net, int i, err *e)
{
    bnd_layer *L = &net->layers[i];
    switch (L->kind) {
    case BND_L_INPUT:
        return 0;
    case BND_L_LINEAR:
        return ibp_linear(net, i, e);
    case BND_L_ACT: {
        const bnd_layer *X = &net->layers[L->in[0]];
        L->act->interval(L->act_param, L->size, X->lo, X->hi, L->lo, L->hi);
        return 0;
    }
    }
    return 0;
}

/* A neuron's lines depend on its own input interval alone, and only this
 * function writes them: neurons whose interval has the same bits as when
 * their lines were made keep them. Branch and bound bounds many domains that
 * differ in a few neurons (a split's sibling, a child of the last domain),
 * so most of a layer's relaxations repeat. */
static int lines_kept(const bnd_layer *L, const bnd_layer *X, int64_t t)
{
    return L->relaxed && bnd_same_bits(X->lo[t], L->rl[t]) && bnd_same_bits(X->hi[t], L->ru[t]);
}

int bnd_act_relax(bnd_net *net, int i, err *e)
{
    (void)e;
    bnd_layer *L = &net->layers[i];
    const bnd_layer *X = &net->layers[L->in[0]];
    int64_t n = L->size;
    for (int64_t s = 0; s < n;) {
        if (lines_kept(L, X, s)) {
            s++;
            continue;
        }
        int64_t t = s + 1; /* a run of changed neurons, relaxed in one call */
        while (t < n && !lines_kept(L, X, t))
            t++;
        L->act->relax(L->act_param, t - s, X->lo + s, X->hi + s, L->lw + s, L->lb + s,
                      L->uw + s, L->ub + s);
        memcpy(L->rl + s, X->lo + s, (size_t)(t - s) * sizeof(double));
        memcpy(L->ru + s, X->hi + s, (size_t)(t - s) * sizeof(double));
        s = t;
    }
    L->relaxed = 1;
    return 0;
}
