/* relu_mlp.h: random fully connected ReLU networks for the beta / ReLU-BaB / LP
 * tests (header-only; included by those test files). */
#ifndef TESTS_RELU_MLP_H
#define TESTS_RELU_MLP_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bab/bab.h"
#include "../bound/bound.h"
#include "../core/rng.h"
#include "../models/nn.h"
#include "../specs/spec.h"

/* ---- a random fully connected ReLU network (Gemm, transB) ---- */
typedef struct mlp {
    nn_graph *g;
    int n_hidden;
    int pre[8];          /* tensor ids of the pre-activations */
    int64_t width[8];
    int64_t n_in, n_out;
} mlp;

static inline int mlp_tens(nn_graph *g, const char *name, int64_t n)
{
    err e = {0};
    int t = nn_graph_tensor(g, name, &e);
    int64_t d[2] = {1, n};
    cr_assert(t >= 0, "%s", e.msg);
    cr_assert_eq(nn_tensor_set_shape(g, t, 2, d, &e), 0, "%s", e.msg);
    return t;
}

/* act: the ONNX op of every hidden activation ("Relu", "Sigmoid", ...). */
static inline mlp mlp_random_act(rng *r, int64_t n_in, int n_hidden, int64_t width,
                                 int64_t n_out, const char *act)
{
    mlp m = {0};
    err e = {0};
    char name[32];
    m.g = nn_graph_new("random.onnx");
    m.n_hidden = n_hidden, m.n_in = n_in, m.n_out = n_out;
    int x = mlp_tens(m.g, "x", n_in), h = x;
    int64_t prev = n_in;
    for (int l = 0; l <= n_hidden; l++) {
        int64_t n = l == n_hidden ? n_out : width;
        double *W = malloc((size_t)(n * prev) * sizeof(double)), *b = malloc((size_t)n * sizeof(double));
        cr_assert(W && b);
        for (int64_t q = 0; q < n * prev; q++)
            W[q] = rng_normal(r) / sqrt((double)prev);
        for (int64_t q = 0; q < n; q++)
            b[q] = 0.3 * rng_normal(r);
        snprintf(name, sizeof name, "W%d", l);
        int tw = nn_graph_tensor(m.g, name, &e);
        int64_t dw[2] = {n, prev};
        cr_assert_eq(nn_tensor_set_shape(m.g, tw, 2, dw, &e), 0);
        cr_assert_eq(nn_tensor_set_float(m.g, tw, W, n * prev, &e), 0);
        snprintf(name, sizeof name, "b%d", l);
        int tb = nn_graph_tensor(m.g, name, &e);
        int64_t db[1] = {n};
        cr_assert_eq(nn_tensor_set_shape(m.g, tb, 1, db, &e), 0);
        cr_assert_eq(nn_tensor_set_float(m.g, tb, b, n, &e), 0);
        free(W), free(b);
        snprintf(name, sizeof name, "z%d", l);
        int z = mlp_tens(m.g, name, n);
        snprintf(name, sizeof name, "fc%d", l);
        int k = nn_graph_add_node(m.g, "Gemm", name, 3, (int[]){h, tw, tb}, 1, &z, &e);
        cr_assert(k >= 0, "%s", e.msg);
        nn_node_attr_int(m.g, k, "transB", 1, &e);
        if (l < n_hidden) {
            m.pre[l] = z, m.width[l] = n;
            snprintf(name, sizeof name, "h%d", l);
            h = mlp_tens(m.g, name, n);
            snprintf(name, sizeof name, "relu%d", l);
            cr_assert(nn_graph_add_node(m.g, act, name, 1, &z, 1, &h, &e) >= 0, "%s", e.msg);
        } else {
            h = z;
        }
        prev = n;
    }
    cr_assert_eq(nn_graph_add_input(m.g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(m.g, h, &e), 0);
    cr_assert_eq(nn_graph_finalize(m.g, &e), 0, "%s", e.msg);
    return m;
}

static inline mlp mlp_random(rng *r, int64_t n_in, int n_hidden, int64_t width, int64_t n_out)
{
    return mlp_random_act(r, n_in, n_hidden, width, n_out, "Relu");
}

/* Outputs y and the pre-activations of every ReLU (in bnd_relu order) at x. */
static inline void mlp_eval(const mlp *m, const double *x, double *y, double *pre)
{
    err e = {0};
    double **v = NULL;
    cr_assert_eq(nn_eval_all(m->g, x, &v, &e), 0, "%s", e.msg);
    int64_t at = 0;
    for (int l = 0; l < m->n_hidden; l++)
        for (int64_t t = 0; t < m->width[l]; t++)
            pre[at++] = v[m->pre[l]][t];
    memcpy(y, v[m->g->outputs[0]], (size_t)m->n_out * sizeof(double));
    nn_values_free(m->g, v);
}

/* VNNLIB text for the y0 - y1 tests: the declarations of X_0.. and Y_0, Y_1,
 * and (box) the box [lo, hi]; returns the length written to text (cap bytes). */
static inline int mlp_spec_begin(char *text, size_t cap, int n_in, const double *lo,
                                 const double *hi, int box)
{
    int at = 0;
    for (int i = 0; i < n_in; i++)
        at += snprintf(text + at, cap - (size_t)at, "(declare-const X_%d Real)\n", i);
    at += snprintf(text + at, cap - (size_t)at, "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n");
    for (int i = 0; box && i < n_in; i++)
        at += snprintf(text + at, cap - (size_t)at, "(assert (>= X_%d %.17g))\n(assert (<= X_%d %.17g))\n",
                       i, lo[i], i, hi[i]);
    return at;
}

static inline spec_property *mlp_spec_parse(const char *text)
{
    spec_property *p = NULL;
    err e = {0};
    cr_assert_eq(spec_parse_vnnlib_string("test.vnnlib", text, &p, &e), 0, "%s\n%s", e.msg, text);
    return p;
}

/* A random box for n_in inputs: centres N(0, 0.25), half-widths 0.1 to 1.1. */
static inline void mlp_random_box(rng *r, int n_in, double *lo, double *hi)
{
    for (int i = 0; i < n_in; i++) {
        double mid = 0.5 * rng_normal(r), w = 0.1 + rng_uniform(r);
        lo[i] = mid - w, hi[i] = mid + w;
    }
}

/* Case c of the MILP-agreement tests: 2-4 inputs (*n_in), 1-3 hidden layers
 * of 8-12 ReLUs, two outputs, and a box (lo, hi: 4 values each) of
 * half-widths 0.1-1.1 around points near 0. */
static inline mlp mlp_random_case(rng *r, int c, int *n_in, double *lo, double *hi)
{
    *n_in = 2 + c % 3;
    mlp m = mlp_random(r, *n_in, 1 + c % 3, 8 + c % 5, 2);
    mlp_random_box(r, *n_in, lo, hi);
    return m;
}

/* The exact minimum of y0 - y1 over the box (GLPK's MILP, bnd_lp_min) and,
 * if x is not NULL, its minimiser; CROWN's bound must not lie above it. */
static inline double mlp_milp_min(const mlp *m, const double *lo, const double *hi, double *x)
{
    bnd_net *n = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(m->g, &n, &e), 0, "%s", e.msg);
    double C[2] = {1, -1}, lb, v;
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_lp_min(n, NULL, 0, C, 1, &v, NULL, x, &e), 0, "%s", e.msg);
    cr_assert(lb <= v + 1e-9, "CROWN %.17g above the MILP optimum %.17g", lb, v);
    bnd_net_free(n);
    return v;
}

/* bab_verify on m with o must answer sat (with a counterexample that checks)
 * when want_sat, else unsat (case c, MILP minimum v, threshold t, for the
 * message); res keeps the result. */
static inline void mlp_expect(const mlp *m, const spec_property *p, const bab_opts *o,
                              int want_sat, int c, double v, double t, bab_result *res)
{
    err e = {0};
    cr_assert_eq(bab_verify(m->g, p, o, res, &e), 0, "%s", e.msg);
    if (want_sat) {
        cr_assert_eq(res->answer, BAB_SAT, "case %d: %s but the minimum %.17g < %.17g", c,
                     bab_answer_name(res->answer), v, t);
        cr_assert_eq(bab_check_counterexample(m->g, p, res->region, res->x, NULL, &e), 1);
    } else {
        cr_assert_eq(res->answer, BAB_UNSAT, "case %d: %s but the minimum %.17g > %.17g", c,
                     bab_answer_name(res->answer), v, t);
    }
}

#endif
