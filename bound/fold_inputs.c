/* fold_inputs.c: fold fixed inputs (lo == hi) into the first layer's bias.
 *
 * Key idea: when most of a box's inputs are fixed (dist_shift: 784 pixels
 * fixed, 8 latent inputs moving), every backward pass still multiplies its
 * rows by the full first weight matrix. Folding y = W_m x_m + (b + W_f x_f)
 * leaves a network over the moving inputs only. The folded bias is a rounded
 * sum; its error bound gamma_{n+2}·(|b| + sum |W_f x_f|) (doubled for the
 * rounding of that sum itself) goes to the layer's bias_err, which IBP and
 * CROWN add to their rounding budgets (docs/soundness.md), so bounds of the
 * folded network hold for the original one on the box. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 1 if every reader of the input layer is a LINEAR layer with one input,
 * a dense x·W map (M = 1) and exact coefficients. */
static int foldable(const bnd_net *net)
{
    int64_t n0 = net->layers[0].size;
    int readers = 0;
    if (net->out == 0)
        return 0;
    for (int i = 1; i < net->n_layers; i++) {
        const bnd_layer *L = &net->layers[i];
        int reads = 0;
        for (int j = 0; j < L->n_in; j++)
            reads |= L->in[j] == 0;
        if (!reads)
            continue;
        readers++;
        if (L->kind != BND_L_LINEAR || L->n_in != 1 || !L->lin[0] ||
            L->lin[0]->kind != BND_LIN_MATMUL || L->lin[0]->M != 1 || L->lin[0]->K != n0 ||
            L->coef_err != 0)
            return 0;
    }
    return readers > 0;
}

int bnd_fold_fixed_inputs(bnd_net *net, const double *lo, const double *hi, int64_t *idx,
                          int64_t *n_moving, err *e)
{
    bnd_layer *L0 = &net->layers[0];
    int64_t n0 = L0->size, nm = 0;
    for (int64_t t = 0; t < n0; t++) {
        if (!(lo[t] <= hi[t]) || !isfinite(lo[t]) || !isfinite(hi[t]))
            return 0;
        if (hi[t] > lo[t])
            idx[nm++] = t;
    }
    *n_moving = n0;
    if (nm == n0 || nm == 0 || !foldable(net))
        return 0;
    double g = 2 * bnd_gamma((double)(n0 - nm + 2));
    for (int i = 1; i < net->n_layers; i++) {
        bnd_layer *L = &net->layers[i];
        if (L->in[0] != 0)
            continue;
        const bnd_linop *J = L->lin[0];
        int64_t N = J->N;
        double *W = malloc((size_t)(nm * N) * sizeof(double));
        double *b = L->bias ? L->bias : calloc((size_t)N, sizeof(double));
        double *be = L->bias_err ? L->bias_err : calloc((size_t)N, sizeof(double));
        double *mag = calloc((size_t)N, sizeof(double));
        if (!W || !b || !be || !mag) {
            free(W), free(mag);
            if (b != L->bias)
                free(b);
            if (be != L->bias_err)
                free(be);
            return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        }
        for (int64_t q = 0; q < nm; q++)
            memcpy(W + q * N, J->W + idx[q] * N, (size_t)N * sizeof(double));
        for (int64_t o = 0; o < N; o++)
            mag[o] = fabs(b[o]);
        int64_t q = 0;
        for (int64_t t = 0; t < n0; t++) {
            if (q < nm && idx[q] == t) {
                q++;
                continue;
            }
            const double *w = J->W + t * N;
            double x = lo[t];
            if (x == 0)
                continue;
            for (int64_t o = 0; o < N; o++) {
                b[o] += w[o] * x;
                mag[o] += fabs(w[o] * x);
            }
        }
        /* mag was summed with rounding too (relative error < g/2); 0x1p-1000
         * covers underflowing products */
        for (int64_t o = 0; o < N; o++)
            be[o] += g * (mag[o] + fabs(b[o])) + 0x1p-1000;
        bnd_linop *R = bnd_lin_matmul_new(1, nm, N, W);
        free(W), free(mag);
        L->bias = b, L->bias_err = be;
        if (!R)
            return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        bnd_lin_free(L->lin[0]);
        L->lin[0] = R;
        L->mz_ok = L->errw_ok = 0;
    }
    L0->size = nm;
    L0->mz_ok = L0->errw_ok = 0;
    *n_moving = nm;
    return 1;
}
