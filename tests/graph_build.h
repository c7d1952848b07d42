/* graph_build.h: building small random graphs by hand and checking bounds
 * against sampled points, for the bound tests of single ops (test_act.c,
 * test_lower_ops.c). Header-only: each including file defines GB_SEED (its
 * xorshift seed) first and gets its own copy of the generator. */
#ifndef TESTS_GRAPH_BUILD_H
#define TESTS_GRAPH_BUILD_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../bound/bound.h"
#include "../models/nn.h"

#ifndef GB_SEED
#error "define GB_SEED before including graph_build.h"
#endif

static uint64_t rng = GB_SEED;
static inline double unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1p-53;
}

/* a named tensor */
static inline int T(nn_graph *g, const char *name)
{
    err e = {0};
    int t = nn_graph_tensor(g, name, &e);
    cr_assert(t >= 0, "%s", e.msg);
    return t;
}

/* A float constant of the given shape, values shift + scale·U(-1, 1) (float32). */
static inline int K(nn_graph *g, const char *name, int rank, const int64_t *dims, double scale,
             double shift)
{
    err e = {0};
    int t = T(g, name);
    cr_assert_eq(nn_tensor_set_shape(g, t, rank, dims, &e), 0, "%s", e.msg);
    int64_t n = g->tensors[t].size;
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        v[i] = (double)(float)(shift + scale * (2 * unif() - 1));
    cr_assert_eq(nn_tensor_set_float(g, t, v, n, &e), 0, "%s", e.msg);
    free(v);
    return t;
}

/* one node op(in...) -> a new tensor named out */
static inline int N(nn_graph *g, const char *op, int n_in, const int *in, const char *out)
{
    err e = {0};
    int o = T(g, out);
    int k = nn_graph_add_node(g, op, out, n_in, in, 1, &o, &e);
    cr_assert(k >= 0, "%s", e.msg);
    return o;
}

/* Gemm with random weights (n_in x n_out) and bias */
static inline int dense(nn_graph *g, int x, int64_t n_in, int64_t n_out, const char *name)
{
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "%.60s_W", name);
    snprintf(bn, sizeof bn, "%.60s_b", name);
    int64_t dw[2] = {n_in, n_out}, db[1] = {n_out};
    int w = K(g, wn, 2, dw, 1.2 / sqrt((double)n_in), 0);
    int b = K(g, bn, 1, db, 0.5, 0);
    return N(g, "Gemm", 3, (int[]){x, w, b}, name);
}

static inline int scalar(nn_graph *g, const char *name, double v)
{
    err e = {0};
    int t = T(g, name);
    int64_t d[1] = {1};
    cr_assert_eq(nn_tensor_set_shape(g, t, 1, d, &e), 0);
    cr_assert_eq(nn_tensor_set_float(g, t, &v, 1, &e), 0);
    return t;
}

/* ---- checks: points sampled in a box against the box's bounds ---- */

typedef struct {
    long samples, outside, points;
    double worst, ibp_w, crown_w;
} tally;

/* IBP and CROWN bounds of both outputs (identity objective) and of one random
 * row, against ns points of the box (every 8th a corner) evaluated by nn_eval;
 * a point counts as outside beyond 1e-10 relative. */
static inline void check_box(const nn_graph *g, bnd_net *n, const double *lo, const double *hi, int ns,
                      tally *t)
{
    double ilb[2], iub[2], clb[2], cub[2], C[2], slb[2], sub[2], x[3], y[2];
    err e = {0};
    cr_assert_eq(bnd_compute(n, BND_IBP, lo, hi, NULL, 0, ilb, iub, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, clb, cub, &e), 0, "%s", e.msg);
    C[0] = 2 * unif() - 1, C[1] = 2 * unif() - 1;
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, slb, sub, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_compute(n, BND_IBP, lo, hi, C, 1, slb + 1, sub + 1, &e), 0, "%s", e.msg);
    for (int o = 0; o < 2; o++) {
        t->ibp_w += fmin(iub[o] - ilb[o], 1e6);
        t->crown_w += fmin(cub[o] - clb[o], 1e6);
    }
    for (int s = 0; s < ns; s++) {
        int corner = s % 8 == 0;
        for (int i = 0; i < 3; i++) {
            double r = unif();
            x[i] = corner ? (r < 0.5 ? lo[i] : hi[i]) : fmin(hi[i], lo[i] + r * (hi[i] - lo[i]));
        }
        cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
        double cy = C[0] * y[0] + C[1] * y[1];
        double v = -INFINITY;
        for (int o = 0; o < 2; o++)
            v = fmax(v, fmax(fmax(ilb[o] - y[o], y[o] - iub[o]),
                             fmax(clb[o] - y[o], y[o] - cub[o])) / (1 + fabs(y[o])));
        for (int m = 0; m < 2; m++)
            v = fmax(v, fmax(slb[m] - cy, cy - sub[m]) / (1 + fabs(cy)));
        if (v > 1e-10 || isnan(v))
            t->outside++;
        if (v > t->worst)
            t->worst = v;
        t->samples++;
    }
}

#endif
