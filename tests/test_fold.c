/* test_fold.c: folding fixed inputs into the first layer's bias
 * (bnd_fold_fixed_inputs) keeps bounds sound, including the rounding of the
 * folded sum, and changes them only by rounding-sized amounts. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bound/bound.h"
#include "../models/nn.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1p-53;
}

static int T(nn_graph *g, const char *name)
{
    err e = {0};
    int t = nn_graph_tensor(g, name, &e);
    cr_assert(t >= 0, "%s", e.msg);
    return t;
}

/* Gemm x (1 x n_in) · W (n_in x n_out) + b with the given values (NULL:
 * random, scale sc). */
static int dense(nn_graph *g, int x, int64_t n_in, int64_t n_out, const char *name, double sc,
                 const double *wv)
{
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "%s_W", name);
    snprintf(bn, sizeof bn, "%s_b", name);
    err e = {0};
    int64_t dw[2] = {n_in, n_out}, db[1] = {n_out};
    int w = T(g, wn), b = T(g, bn);
    double *v = malloc(sizeof(double) * (size_t)(n_in * n_out + n_out));
    cr_assert_eq(nn_tensor_set_shape(g, w, 2, dw, &e), 0);
    cr_assert_eq(nn_tensor_set_shape(g, b, 1, db, &e), 0);
    for (int64_t i = 0; i < n_in * n_out; i++)
        v[i] = wv ? wv[i] : (double)(float)(sc * (2 * unif() - 1));
    cr_assert_eq(nn_tensor_set_float(g, w, v, n_in * n_out, &e), 0);
    for (int64_t i = 0; i < n_out; i++)
        v[i] = wv ? 0 : (double)(float)(0.5 * (2 * unif() - 1));
    cr_assert_eq(nn_tensor_set_float(g, b, v, n_out, &e), 0);
    free(v);
    int o = T(g, name);
    cr_assert(nn_graph_add_node(g, "Gemm", name, 3, (int[]){x, w, b}, 1, &o, &e) >= 0);
    return o;
}

static int act(nn_graph *g, const char *op, int x, const char *name)
{
    err e = {0};
    int o = T(g, name);
    cr_assert(nn_graph_add_node(g, op, name, 1, &x, 1, &o, &e) >= 0, "%s", e.msg);
    return o;
}

/* x (1 x 12) -> 10 -> sigmoid -> 8 -> relu -> 2 */
static nn_graph *net(void)
{
    nn_graph *g = nn_graph_new("fold-net");
    err e = {0};
    int x = T(g, "x");
    int64_t dx[2] = {1, 12};
    cr_assert_eq(nn_tensor_set_shape(g, x, 2, dx, &e), 0);
    int h = act(g, "Sigmoid", dense(g, x, 12, 10, "fc1", 1.0, NULL), "a1");
    h = act(g, "Relu", dense(g, h, 10, 8, "fc2", 1.0, NULL), "a2");
    int y = dense(g, h, 8, 2, "fc3", 1.0, NULL);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    return g;
}

/* Random boxes with 9 of 12 inputs fixed: the folded network's CROWN bound
 * of y0 - y1 (over the 3 moving inputs) is below every sampled value and
 * within 1e-9 of the unfolded network's bound. */
Test(fold, folded_bounds_are_sound_and_unchanged, .timeout = 30)
{
    err e = {0};
    const double C[2] = {1, -1};
    for (int rep = 0; rep < 20; rep++) {
        nn_graph *g = net();
        bnd_net *full = NULL, *fold = NULL;
        cr_assert_eq(bnd_net_new(g, &full, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_net_new(g, &fold, &e), 0, "%s", e.msg);
        double lo[12], hi[12], rlo[12], rhi[12], x[12], y[2];
        int64_t idx[12], nm = 0;
        for (int t = 0; t < 12; t++) {
            lo[t] = 2 * unif() - 1;
            hi[t] = t % 4 == 1 ? lo[t] + 0.5 * unif() : lo[t];
        }
        cr_assert_eq(bnd_fold_fixed_inputs(fold, lo, hi, idx, &nm, &e), 1);
        cr_assert_eq(nm, 3);
        cr_assert_eq(bnd_n_in(fold), 3);
        for (int64_t q = 0; q < nm; q++) {
            cr_assert_eq(idx[q], 4 * q + 1);
            rlo[q] = lo[idx[q]], rhi[q] = hi[idx[q]];
        }
        double lb_full, lb_fold;
        cr_assert_eq(bnd_split_bound(full, lo, hi, NULL, NULL, NULL, 0, C, 1, 2, &lb_full, NULL,
                                     NULL, NULL, NULL, NULL, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_split_bound(fold, rlo, rhi, NULL, NULL, NULL, 0, C, 1, 2, &lb_fold, NULL,
                                     NULL, NULL, NULL, NULL, &e), 0, "%s", e.msg);
        cr_assert(fabs(lb_full - lb_fold) <= 1e-9 * (1 + fabs(lb_full)), "%g vs %g", lb_full,
                  lb_fold);
        for (int s = 0; s < 2000; s++) {
            for (int t = 0; t < 12; t++)
                x[t] = lo[t] + (hi[t] - lo[t]) * unif();
            cr_assert_eq(nn_eval(g, x, y, &e), 0);
            cr_assert(y[0] - y[1] >= lb_fold, "%g < %g", y[0] - y[1], lb_fold);
        }
        bnd_net_free(full), bnd_net_free(fold);
        nn_graph_free(g);
    }
}

/* Cancellation in the folded sum: weights (2^53, 1, -2^53) on three inputs
 * fixed at 1 sum to exactly 1, but naively to 0 in double. The folded bias
 * error must cover it: the bounds of y = that sum + 0·x3 contain 1. */
Test(fold, cancellation_is_covered_by_bias_err)
{
    nn_graph *g = nn_graph_new("fold-cancel");
    err e = {0};
    int x = T(g, "x");
    int64_t dx[2] = {1, 4};
    cr_assert_eq(nn_tensor_set_shape(g, x, 2, dx, &e), 0);
    const double w[4] = {0x1p53, 1, -0x1p53, 0};
    int y = dense(g, x, 4, 1, "fc", 1.0, w);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    bnd_net *n = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    double lo[4] = {1, 1, 1, 0}, hi[4] = {1, 1, 1, 1e-3};
    int64_t idx[4], nm = 0;
    cr_assert_eq(bnd_fold_fixed_inputs(n, lo, hi, idx, &nm, &e), 1);
    cr_assert_eq(nm, 1);
    double rl[1] = {0}, rh[1] = {1e-3}, l, u;
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(bnd_compute(n, m ? BND_CROWN : BND_IBP, rl, rh, NULL, 1, &l, &u, &e), 0,
                     "%s", e.msg);
        cr_assert(l <= 1 && u >= 1, "method %d: [%g, %g] misses 1", m, l, u);
    }
    bnd_net_free(n);
    nn_graph_free(g);
}

/* Not applicable: nothing fixed, everything fixed. */
Test(fold, not_applicable_leaves_the_net_alone)
{
    nn_graph *g = net();
    err e = {0};
    bnd_net *n = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    double lo[12], hi[12];
    int64_t idx[12], nm = 0;
    for (int t = 0; t < 12; t++)
        lo[t] = -1, hi[t] = 1;
    cr_assert_eq(bnd_fold_fixed_inputs(n, lo, hi, idx, &nm, &e), 0);
    cr_assert_eq(bnd_n_in(n), 12);
    for (int t = 0; t < 12; t++)
        hi[t] = lo[t];
    cr_assert_eq(bnd_fold_fixed_inputs(n, lo, hi, idx, &nm, &e), 0);
    cr_assert_eq(bnd_n_in(n), 12);
    bnd_net_free(n);
    nn_graph_free(g);
}
