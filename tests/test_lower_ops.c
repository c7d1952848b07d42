/* test_lower_ops.c: the ops lowered into existing exact building blocks —
 * MaxPool and Clip (ReLUs), Softmax (Exp, Reciprocal), MatMul / Gemm of two
 * computed tensors (squares), ConvTranspose (a sparse linear map). For each,
 * random small networks x (1x3) -> Gemm -> op (random shapes and attributes)
 * -> Gemm -> y (1x2), over random boxes (radius 1e-4 to 2, centred at 0 or
 * up to ±3): sampled points (box corners and uniform) evaluated by nn_eval
 * stay inside the IBP and CROWN bounds (identity objective and a random
 * row), and point boxes pin nn_eval's value to 1e-9. Plus hand-computed
 * cases, the conformance models of these ops, an exact MILP and ReLU-split
 * BaB on MaxPool/Clip networks, and GenBaB on Softmax networks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bab/bab.h"
#include "../bound/bound.h"
#include "../core/clock.h"
#include "../models/nn.h"

#define GB_SEED 0x853c49e6748fea9bull
#include "graph_build.h"
#include "../specs/spec.h"
#include "shared_data.h"

static int64_t irand(int64_t a, int64_t b) /* uniform in [a, b] */
{
    return a + (int64_t)(unif() * (double)(b - a + 1));
}

/* ---- graph building ---- */

static int ints(nn_graph *g, const char *name, int n, const int64_t *v)
{
    err e = {0};
    int t = T(g, name);
    int64_t d[1] = {n};
    cr_assert_eq(nn_tensor_set_shape(g, t, 1, d, &e), 0);
    cr_assert_eq(nn_tensor_set_int(g, t, v, n, &e), 0);
    return t;
}

/* Node `op` with output tensor `out`; returns the output tensor. The node is
 * g->n_nodes - 1 afterwards (for its attributes). */
static int last(const nn_graph *g)
{
    return g->n_nodes - 1;
}

static void attr_ints(nn_graph *g, const char *name, int n, const int64_t *v)
{
    err e = {0};
    cr_assert_eq(nn_node_attr_ints(g, last(g), name, v, n, &e), 0, "%s", e.msg);
}

static void attr_int(nn_graph *g, const char *name, int64_t v)
{
    err e = {0};
    cr_assert_eq(nn_node_attr_int(g, last(g), name, v, &e), 0, "%s", e.msg);
}

static void attr_float(nn_graph *g, const char *name, double v)
{
    err e = {0};
    cr_assert_eq(nn_node_attr_float(g, last(g), name, v, &e), 0, "%s", e.msg);
}

static void attr_string(nn_graph *g, const char *name, const char *s)
{
    err e = {0};
    cr_assert_eq(nn_node_attr_string(g, last(g), name, s, &e), 0, "%s", e.msg);
}

/* Gemm [1, n_in] -> [1, n_out] with a bias. */
/* x reshaped to dims (rank r). */
static int reshape(nn_graph *g, int x, int r, const int64_t *dims, const char *name)
{
    char sn[64];
    snprintf(sn, sizeof sn, "%s_shape", name);
    return N(g, "Reshape", 2, (int[]){x, ints(g, sn, r, dims)}, name);
}

static int64_t prod(int r, const int64_t *d)
{
    int64_t p = 1;
    for (int i = 0; i < r; i++)
        p *= d[i];
    return p;
}

/* The op under test, built by `mid` from x (its first Gemm included), inside
 * x (1x3) -> mid -> Reshape [1, -1] -> Gemm -> y (1x2). The op's output size
 * (the last Gemm's width) comes from shape inference on a probe graph built
 * with the same random draws. NULL when the random attributes do not make a
 * valid graph (the caller retries). */
typedef int (*mid_fn)(nn_graph *g, int x);

static nn_graph *build(const char *name, mid_fn mid, int64_t opset, int64_t width)
{
    nn_graph *g = nn_graph_new(name);
    g->opset = opset;
    err e = {0};
    int x = T(g, "x");
    int64_t dx[2] = {1, 3}, flat[2] = {1, -1};
    cr_assert_eq(nn_tensor_set_shape(g, x, 2, dx, &e), 0);
    int y = mid(g, x);
    if (width > 0)
        y = dense(g, reshape(g, y, 2, flat, "flat"), width, 2, "out");
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    if (nn_graph_finalize(g, &e) != 0) {
        nn_graph_free(g);
        return NULL;
    }
    return g;
}

static nn_graph *op_net(const char *name, mid_fn mid, int64_t opset)
{
    uint64_t state = rng;
    nn_graph *p = build(name, mid, opset, 0);
    if (!p)
        return NULL;
    int64_t width = p->tensors[p->output].size;
    nn_graph_free(p);
    rng = state; /* the same draws again */
    nn_graph *g = build(name, mid, opset, width);
    cr_assert_not_null(g, "%s: valid op, invalid network", name);
    return g;
}

/* ---- checks ---- */

static void check_point(const nn_graph *g, bnd_net *n, const double *x, tally *t)
{
    double y[2], lb[2], ub[2];
    err e = {0};
    cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(bnd_compute(n, m ? BND_CROWN : BND_IBP, x, x, NULL, 0, lb, ub, &e), 0,
                     "%s", e.msg);
        for (int o = 0; o < 2; o++) {
            double tol = 1e-9 * (1 + fabs(y[o]));
            cr_expect(ub[o] - lb[o] <= tol && lb[o] <= y[o] + tol && y[o] <= ub[o] + tol,
                      "%s point box, method %d, output %d: [%.17g, %.17g] vs %.17g", g->source,
                      m, o, lb[o], ub[o], y[o]);
        }
    }
    t->points++;
}

/* nets random networks (each built by mid, retried until valid) x 8 boxes x
 * 200 samples, and 2 point boxes per network. */
static void op_sound(const char *name, mid_fn mid, int nets)
{
    tally t = {0};
    for (int v = 0; v < nets; v++) {
        nn_graph *g = NULL;
        for (int tries = 0; !g && tries < 200; tries++)
            g = op_net(name, mid, unif() < 0.5 ? 11 : 13);
        cr_assert_not_null(g, "%s: no valid random graph", name);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s: %s", name, e.msg);
        double lo[3], hi[3];
        for (int b = 0; b < 8; b++) {
            double c = b % 3 == 0 ? 0.0 : 3 * (2 * unif() - 1);
            double r = pow(10.0, -4 + 4.3 * unif()); /* 1e-4 .. 2 */
            for (int i = 0; i < 3; i++) {
                double ci = c + 0.5 * (2 * unif() - 1);
                lo[i] = ci - r * unif();
                hi[i] = ci + r * unif();
            }
            check_box(g, n, lo, hi, 200, &t);
        }
        check_point(g, n, lo, &t);
        check_point(g, n, hi, &t);
        bnd_net_free(n);
        nn_graph_free(g);
    }
    cr_log_info("%-14s %ld samples, %ld outside (worst %.3g), %ld point boxes; CROWN/IBP width "
                "%.3f",
                name, t.samples, t.outside, t.worst, t.points, t.crown_w / t.ibp_w);
    cr_expect_eq(t.outside, 0, "%s: %ld of %ld samples outside", name, t.outside, t.samples);
}

/* ---- the random ops ---- */

/* MaxPool, 1-D to 3-D, random kernel, strides, dilations, pads (up to the
 * kernel: some windows lie in the padding only), ceil_mode, auto_pad;
 * sometimes after a ReLU (ties at 0). */
static int mid_maxpool(nn_graph *g, int x)
{
    int nsp = unif() < 0.2 ? 1 : unif() < 0.8 ? 2 : 3;
    int64_t d[5] = {1, irand(1, 2)}, ks[3], st[3], dl[3], pd[6];
    for (int i = 0; i < nsp; i++) {
        d[2 + i] = irand(2, nsp == 3 ? 4 : 6);
        ks[i] = irand(1, 3);
        st[i] = irand(1, 3);
        dl[i] = unif() < 0.7 ? 1 : 2;
        pd[i] = irand(0, ks[i]);
        pd[nsp + i] = irand(0, ks[i]);
    }
    int64_t n = prod(2 + nsp, d);
    int h = dense(g, x, 3, n, "fc");
    if (unif() < 0.3)
        h = N(g, "Relu", 1, (int[]){h}, "relu");
    h = reshape(g, h, 2 + nsp, d, "img");
    int y = N(g, "MaxPool", 1, (int[]){h}, "pool");
    attr_ints(g, "kernel_shape", nsp, ks);
    if (unif() < 0.8)
        attr_ints(g, "strides", nsp, st);
    if (unif() < 0.5)
        attr_ints(g, "dilations", nsp, dl);
    double r = unif();
    if (r < 0.6)
        attr_ints(g, "pads", 2 * nsp, pd);
    else if (r < 0.7)
        attr_string(g, "auto_pad", "SAME_UPPER");
    else if (r < 0.8)
        attr_string(g, "auto_pad", "SAME_LOWER");
    else if (r < 0.9)
        attr_string(g, "auto_pad", "VALID");
    if (unif() < 0.3)
        attr_int(g, "ceil_mode", 1);
    return y;
}

/* Clip in every form: min/max as attributes or inputs, one side, both,
 * min == max, min > max, none; applied twice with a Gemm between. */
static int clip(nn_graph *g, int x, int tag)
{
    char nm[4][32];
    for (int i = 0; i < 4; i++)
        snprintf(nm[i], sizeof nm[i], "clip%d_%d", tag, i);
    double lo = -1.5 + 2 * unif(), hi = lo + 0.1 + 2 * unif();
    switch (irand(0, 7)) {
    case 0: /* attributes (opset < 11) */
        N(g, "Clip", 1, (int[]){x}, nm[0]);
        attr_float(g, "min", (float)lo);
        attr_float(g, "max", (float)hi);
        return T(g, nm[0]);
    case 1: return N(g, "Clip", 3, (int[]){x, scalar(g, nm[1], lo), scalar(g, nm[2], hi)}, nm[0]);
    case 2: return N(g, "Clip", 2, (int[]){x, scalar(g, nm[1], lo)}, nm[0]);
    case 3: return N(g, "Clip", 3, (int[]){x, -1, scalar(g, nm[2], hi)}, nm[0]);
    case 4: return N(g, "Clip", 3, (int[]){x, scalar(g, nm[1], lo), scalar(g, nm[2], lo)}, nm[0]);
    case 5: return N(g, "Clip", 3, (int[]){x, scalar(g, nm[1], hi), scalar(g, nm[2], lo)}, nm[0]);
    case 6: return N(g, "Clip", 1, (int[]){x}, nm[0]);
    default:
        N(g, "Clip", 1, (int[]){x}, nm[0]);
        attr_float(g, "max", (float)hi);
        return T(g, nm[0]);
    }
}

static int mid_clip(nn_graph *g, int x)
{
    int h = dense(g, x, 3, 6, "fc1");
    h = clip(g, h, 1);
    h = dense(g, h, 6, 5, "fc2");
    return clip(g, h, 2);
}

/* Softmax of a reshaped [1, n] over a random axis (or the default), with
 * opset 11 (coerced 2-D) or 13 (one axis) semantics, set by op_net. */
static int mid_softmax(nn_graph *g, int x)
{
    int r = (int)irand(1, 3);
    int64_t d[3];
    for (int i = 0; i < r; i++)
        d[i] = irand(1, 4);
    int64_t n = prod(r, d);
    int h = reshape(g, dense(g, x, 3, n, "fc"), r, d, "t");
    int y = N(g, "Softmax", 1, (int[]){h}, "sm");
    if (unif() < 0.8)
        attr_int(g, "axis", irand(-r, g->opset >= 13 ? r - 1 : r));
    return y;
}

/* MatMul / Gemm of two computed tensors: batched and broadcast 3-D, 1-D
 * operands, A·A^T and A·A, Gemm with transposes, alpha, beta and a bias. */
static int mid_matmul(nn_graph *g, int x)
{
    int64_t b = irand(1, 3), M = irand(1, 3), Kd = irand(1, 4), Nd = irand(1, 3);
    int64_t da[3], db[3];
    int ra, rb, a, bt;
    int v = (int)irand(0, 6);
    switch (v) {
    case 0: ra = 2, rb = 2, da[0] = M, da[1] = Kd, db[0] = Kd, db[1] = Nd; break;
    case 1: ra = 3, rb = 2, da[0] = b, da[1] = M, da[2] = Kd, db[0] = Kd, db[1] = Nd; break;
    case 2:
        ra = 3, rb = 3, da[0] = unif() < 0.5 ? b : 1, da[1] = M, da[2] = Kd;
        db[0] = b, db[1] = Kd, db[2] = Nd;
        break;
    case 3: ra = 1, rb = 2, da[0] = Kd, db[0] = Kd, db[1] = Nd; break;
    case 4: ra = 2, rb = 1, da[0] = M, da[1] = Kd, db[0] = Kd; break;
    default: ra = 2, rb = 2, da[0] = M, da[1] = Kd, db[0] = Kd, db[1] = M; break;
    }
    if (v == 6) { /* Gemm(A, B): transposes, alpha, beta, bias */
        int ta = unif() < 0.5, tb = unif() < 0.5;
        int64_t sa[2] = {ta ? Kd : M, ta ? M : Kd}, sb[2] = {tb ? Nd : Kd, tb ? Kd : Nd};
        int64_t dc[2] = {M, Nd};
        a = reshape(g, dense(g, x, 3, M * Kd, "ga"), 2, sa, "GA");
        bt = reshape(g, dense(g, x, 3, Kd * Nd, "gb"), 2, sb, "GB");
        int c = K(g, "gc", 2, dc, 0.5, 0);
        int y = N(g, "Gemm", unif() < 0.5 ? 3 : 2, (int[]){a, bt, c}, "gemm");
        attr_int(g, "transA", ta);
        attr_int(g, "transB", tb);
        attr_float(g, "alpha", unif() < 0.5 ? 1.0 : (double)(float)(0.3 + 1.5 * unif()));
        attr_float(g, "beta", unif() < 0.5 ? 1.0 : 0.75);
        return y;
    }
    a = reshape(g, dense(g, x, 3, prod(ra, da), "fa"), ra, da, "A");
    if (v == 5) { /* A · A^T */
        bt = N(g, "Transpose", 1, (int[]){a}, "At");
        return N(g, "MatMul", 2, (int[]){a, bt}, "mm");
    }
    bt = unif() < 0.2 && ra == 2 && rb == 2 && da[0] == Kd && db[1] == Kd
             ? a /* A · A when square */
             : reshape(g, dense(g, x, 3, prod(rb, db), "fb"), rb, db, "B");
    return N(g, "MatMul", 2, (int[]){a, bt}, "mm");
}

/* ConvTranspose, 1-D to 3-D: random kernel, strides, dilations, pads,
 * output_padding, groups, bias, auto_pad or output_shape. */
static int mid_convtranspose(nn_graph *g, int x)
{
    int nsp = unif() < 0.3 ? 1 : unif() < 0.85 ? 2 : 3;
    int64_t group = unif() < 0.3 ? 2 : 1, C = group * irand(1, 2), mg = irand(1, 2);
    int64_t d[5] = {1, C}, wd[5] = {C, mg}, st[3], dl[3], pd[6], op[3], os[3];
    for (int i = 0; i < nsp; i++) {
        d[2 + i] = irand(1, nsp == 3 ? 2 : 3);
        wd[2 + i] = irand(1, 3);
        st[i] = irand(1, 3);
        dl[i] = unif() < 0.7 ? 1 : 2;
        pd[i] = irand(0, wd[2 + i] - 1);
        pd[nsp + i] = irand(0, wd[2 + i] - 1);
        op[i] = irand(0, (st[i] > dl[i] ? st[i] : dl[i]) - 1);
        int64_t full = st[i] * (d[2 + i] - 1) + (wd[2 + i] - 1) * dl[i] + 1;
        os[i] = irand(full > 2 ? full - 2 : 1, full); /* with output_shape: no output_padding */
    }
    int h = reshape(g, dense(g, x, 3, prod(2 + nsp, d), "fc"), 2 + nsp, d, "img");
    int w = K(g, "ct_W", 2 + nsp, wd, 0.8, 0);
    int64_t db[1] = {group * mg};
    int y;
    if (unif() < 0.5)
        y = N(g, "ConvTranspose", 3, (int[]){h, w, K(g, "ct_b", 1, db, 0.5, 0)}, "ct");
    else
        y = N(g, "ConvTranspose", 2, (int[]){h, w}, "ct");
    if (group > 1)
        attr_int(g, "group", group);
    attr_ints(g, "strides", nsp, st);
    if (unif() < 0.5)
        attr_ints(g, "dilations", nsp, dl);
    double r = unif();
    if (r < 0.6) {
        attr_ints(g, "pads", 2 * nsp, pd);
        if (unif() < 0.5)
            attr_ints(g, "output_padding", nsp, op);
    } else if (r < 0.8) {
        attr_ints(g, "output_shape", nsp, os);
        if (unif() < 0.5)
            attr_string(g, "auto_pad", "SAME_UPPER");
    } else if (r < 0.9) {
        attr_string(g, "auto_pad", unif() < 0.5 ? "SAME_UPPER" : "SAME_LOWER");
    } else {
        attr_string(g, "auto_pad", "VALID");
    }
    return y;
}


#define OP_TEST(id, name, mid, nets)                                                       \
    Test(lower, id##_bounds_contain_samples, .timeout = 60)                                \
    {                                                                                      \
        op_sound(name, mid, nets);                                                         \
    }

OP_TEST(maxpool, "MaxPool", mid_maxpool, 40)
OP_TEST(clip, "Clip", mid_clip, 30)
OP_TEST(softmax, "Softmax", mid_softmax, 30)
OP_TEST(matmul_of_computed, "MatMul/Gemm", mid_matmul, 40)
OP_TEST(convtranspose, "ConvTranspose", mid_convtranspose, 40)

/* ---- hand-computed cases ---- */

/* y = op(x) for a single-node graph on x of shape dims; caller finalizes. */
static nn_graph *single(const char *op, int rank, const int64_t *dims, int64_t opset)
{
    nn_graph *g = nn_graph_new(op);
    g->opset = opset;
    err e = {0};
    int x = T(g, "x");
    cr_assert_eq(nn_tensor_set_shape(g, x, rank, dims, &e), 0);
    int y = N(g, op, 1, &x, "y");
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    return g;
}

static bnd_net *lowered(nn_graph *g)
{
    err e = {0};
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    bnd_net *n = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    return n;
}

static void near(double got, double want, const char *what)
{
    cr_expect(fabs(got - want) <= 1e-9 * (1 + fabs(want)), "%s: %.17g, expected %.17g", what,
              got, want);
}

/* max(a, b) = a + relu(b - a) with a in [0, 1], b in [0.5, 2]: d = b - a in
 * [-0.5, 2]; IBP: a + [0, 2] = [0, 3]. CROWN: relu(d) <= 0.8 (d + 0.5) and
 * (u > -l) relu(d) >= d, so max <= 0.2 a + 0.8 b + 0.4 <= 2.2 and
 * max >= b >= 0.5. The exact range is [0.5, 2]. */
Test(lower, max_of_two_hand_computed)
{
    int64_t d[4] = {1, 1, 1, 2}, ks[2] = {1, 2};
    nn_graph *g = single("MaxPool", 4, d, 13);
    attr_ints(g, "kernel_shape", 2, ks);
    bnd_net *n = lowered(g);
    double lo[2] = {0, 0.5}, hi[2] = {1, 2}, lb, ub;
    err e = {0};
    cr_assert_eq(bnd_compute(n, BND_IBP, lo, hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, 0, "IBP lower"), near(ub, 3, "IBP upper");
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, 0.5, "CROWN lower"), near(ub, 2.2, "CROWN upper");
    /* overlapping ranges a, b in [0, 1]: IBP upper 2, CROWN 0.5 a + 0.5 b +
     * 0.5 <= 1.5 (slope 1/2 through d = -1), lower b >= 0; exact [0, 1] */
    lo[1] = 0, hi[1] = 1;
    cr_assert_eq(bnd_compute(n, BND_IBP, lo, hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, 0, "IBP lower"), near(ub, 2, "IBP upper");
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, 0, "CROWN lower"), near(ub, 1.5, "CROWN upper");
    bnd_net_free(n);
    nn_graph_free(g);
}

/* A window of one tap is that input; a window inside the padding only is 0
 * (models/ evaluates it so): kernel 1, stride 2, pads (0, 3) on [1, 1, 3]
 * gives outputs x0, x2, 0. */
Test(lower, maxpool_single_tap_and_padding_windows)
{
    int64_t d[3] = {1, 1, 3}, ks[1] = {1}, st[1] = {3}, pd[2] = {0, 3};
    nn_graph *g = single("MaxPool", 3, d, 13);
    attr_ints(g, "kernel_shape", 1, ks);
    attr_ints(g, "strides", 1, st);
    attr_ints(g, "pads", 2, pd);
    bnd_net *n = lowered(g);
    cr_assert_eq(bnd_n_out(n), 2);
    double lo[3] = {-1, 5, 2}, hi[3] = {-0.5, 6, 3}, lb[2], ub[2];
    err e = {0};
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(bnd_compute(n, m ? BND_CROWN : BND_IBP, lo, hi, NULL, 0, lb, ub, &e), 0);
        near(lb[0], -1, "x0 lower"), near(ub[0], -0.5, "x0 upper");
        near(lb[1], 0, "padding lower"), near(ub[1], 0, "padding upper");
    }
    bnd_net_free(n);
    nn_graph_free(g);
}

/* Clip [0, 6] on x in [-1, 7] is hi - relu(hi - (lo + relu(x - lo))):
 * IBP is exact, [0, 6]. CROWN, by hand through the two triangles
 * (relu(x) <= 7/8 (x + 1), >= x; relu(d2) <= 6/7 (d2 + 1), >= d2 with
 * d2 = 6 - relu(x) in [-1, 6]): lower 6/7·min x = -6/7, upper 7. */
Test(lower, clip_hand_computed)
{
    int64_t d[2] = {1, 1};
    nn_graph *g = single("Clip", 2, d, 9);
    attr_float(g, "min", 0);
    attr_float(g, "max", 6);
    bnd_net *n = lowered(g);
    double lo = -1, hi = 7, lb, ub;
    err e = {0};
    cr_assert_eq(bnd_compute(n, BND_IBP, &lo, &hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, 0, "IBP lower"), near(ub, 6, "IBP upper");
    cr_assert_eq(bnd_compute(n, BND_CROWN, &lo, &hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, -6.0 / 7, "CROWN lower"), near(ub, 7, "CROWN upper");
    /* inside [lo, hi] the ReLUs are stable: clip is the identity, exactly */
    lo = 1, hi = 2;
    cr_assert_eq(bnd_compute(n, BND_CROWN, &lo, &hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, 1, "identity lower"), near(ub, 2, "identity upper");
    bnd_net_free(n);
    nn_graph_free(g);
}

/* Softmax of (x0, x1), x0 in [0, 1], x1 = 0: y0 = 1 / (1 + e^{x1 - x0}) is
 * sigmoid(x0), increasing: [0.5, sigmoid(1)], and IBP through the monotone
 * exp and 1/s is exactly that; y1 = 1 - y0. */
Test(lower, softmax_of_two_is_a_sigmoid)
{
    int64_t d[2] = {1, 2};
    nn_graph *g = single("Softmax", 2, d, 13);
    bnd_net *n = lowered(g);
    double lo[2] = {0, 0}, hi[2] = {1, 0}, lb[2], ub[2], s1 = 1 / (1 + exp(-1.0));
    err e = {0};
    cr_assert_eq(bnd_compute(n, BND_IBP, lo, hi, NULL, 0, lb, ub, &e), 0);
    near(lb[0], 0.5, "y0 lower"), near(ub[0], s1, "y0 upper");
    near(lb[1], 1 - s1, "y1 lower"), near(ub[1], 0.5, "y1 upper");
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, lb, ub, &e), 0);
    cr_expect(lb[0] <= 0.5 + 1e-12 && ub[0] >= s1 - 1e-12 && ub[0] - lb[0] < 0.3,
              "CROWN y0 [%.17g, %.17g]", lb[0], ub[0]);
    bnd_net_free(n);
    nn_graph_free(g);
}

/* y = x^T x for x (2x1): MatMul(Transpose(x), x) = sum_t ((xt_t + x_t)² -
 * (xt_t - x_t)²)/4 on x0 in [1, 2], x1 in [-1, 3] (exact range [1, 13]).
 * IBP does not see that xt_t - x_t = 0: s = 2x in [2, 4] and [-2, 6], d in
 * [-1, 1] and [-4, 4], so y in [(4 - 1)/4 + (0 - 16)/4, 16/4 + 36/4] =
 * [-3.25, 13]. CROWN's bounds of d are 0 (the backward pass cancels xt - x),
 * and s² has the tangent at the midpoint below (6s - 9, 4s - 4) and the chord
 * above (6s - 8, 4s + 12): y in [(12 - 8 - 13)/4, (24 + 24 + 4)/4] = [-2.25, 13]. */
Test(lower, gram_matrix_of_a_vector)
{
    nn_graph *g = nn_graph_new("gram");
    err e = {0};
    int x = T(g, "x");
    int64_t d[2] = {2, 1};
    cr_assert_eq(nn_tensor_set_shape(g, x, 2, d, &e), 0);
    int xt = N(g, "Transpose", 1, &x, "xt");
    int y = N(g, "MatMul", 2, (int[]){xt, x}, "y");
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    bnd_net *n = lowered(g);
    double lo[2] = {1, -1}, hi[2] = {2, 3}, lb, ub;
    cr_assert_eq(bnd_compute(n, BND_IBP, lo, hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, -3.25, "IBP lower"), near(ub, 13, "IBP upper");
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, -2.25, "CROWN lower"), near(ub, 13, "CROWN upper");
    bnd_net_free(n);
    nn_graph_free(g);
}

/* ConvTranspose 1-D, kernel (1, 2), stride 2, x (2 values): y = (x0, 2 x0,
 * x1, 2 x1) exactly, a box maps to a box. */
Test(lower, convtranspose_hand_computed)
{
    nn_graph *g = nn_graph_new("ct");
    err e = {0};
    int x = T(g, "x"), w = T(g, "w");
    int64_t d[3] = {1, 1, 2}, wd[3] = {1, 1, 2}, st[1] = {2};
    double wv[2] = {1, 2};
    cr_assert_eq(nn_tensor_set_shape(g, x, 3, d, &e), 0);
    cr_assert_eq(nn_tensor_set_shape(g, w, 3, wd, &e), 0);
    cr_assert_eq(nn_tensor_set_float(g, w, wv, 2, &e), 0);
    int y = N(g, "ConvTranspose", 2, (int[]){x, w}, "y");
    attr_ints(g, "strides", 1, st);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    bnd_net *n = lowered(g);
    cr_assert_eq(bnd_n_out(n), 4);
    double lo[2] = {-1, 2}, hi[2] = {1, 3}, lb[4], ub[4];
    double wl[4] = {-1, -2, 2, 4}, wu[4] = {1, 2, 3, 6};
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(bnd_compute(n, m ? BND_CROWN : BND_IBP, lo, hi, NULL, 0, lb, ub, &e), 0);
        for (int o = 0; o < 4; o++)
            near(lb[o], wl[o], "lower"), near(ub[o], wu[o], "upper");
    }
    bnd_net_free(n);
    nn_graph_free(g);
}

/* Clip whose bound is computed is not a fixed function of x alone in the
 * sense of these lowerings: rejected by name, not mis-lowered. */
Test(lower, clip_with_computed_bound_is_rejected_by_name)
{
    nn_graph *g = nn_graph_new("model.onnx");
    err e = {0};
    int x = T(g, "x");
    int64_t d[2] = {1, 2};
    cr_assert_eq(nn_tensor_set_shape(g, x, 2, d, &e), 0);
    int r = N(g, "ReduceSum", 1, &x, "s");
    int y = N(g, "Clip", 2, (int[]){x, r}, "y");
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    bnd_net *n = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), ERR_UNSUP);
    cr_expect(strstr(e.msg, "node 1 'y' (Clip)") != NULL, "%s", e.msg);
    nn_graph_free(g);
}

/* The conformance models of these ops lower (their point boxes and sampled
 * boxes are checked by soundness/conformance_*). */
Test(lower, conformance_models_of_these_ops_lower)
{
    NEED_SHARED();
    const char *names[] = {"maxpool_k2s2",
                           "maxpool_k3s1p1",
                           "softmax_2d_default",
                           "softmax_axis_last",
                           "softmax_coerced_2d",
                           "clip_attrs",
                           "clip_inputs",
                           "clip_min_only",
                           "clip_max_only",
                           "convtranspose_k2s2",
                           "convtranspose_k3s2_pad1_outpad1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "../shared/conformance/%s/model.onnx", names[i]);
        nn_graph *g = NULL;
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(nn_load(path, &g, &e), 0, "%s", e.msg);
        cr_expect_eq(bnd_net_new(g, &n, &e), 0, "%s: %s", names[i], e.msg);
        bnd_net_free(n);
        nn_graph_free(g);
    }
}

/* ---- the lowered networks in the searches ---- */

/* A small MaxPool (kernel 2-3 over a 1-2 channel 3x3 or 4x4 image) or
 * Clip network, for the exact MILP. */
static int mid_pool_small(nn_graph *g, int x)
{
    int64_t side = irand(3, 4), d[4] = {1, irand(1, 2), side, side}, ks[2], st[2], pd[4];
    for (int i = 0; i < 2; i++) {
        ks[i] = irand(2, 3), st[i] = irand(1, 2);
        pd[i] = irand(0, 1), pd[2 + i] = irand(0, 1);
    }
    int h = reshape(g, dense(g, x, 3, prod(4, d), "fc"), 4, d, "img");
    int y = N(g, "MaxPool", 1, (int[]){h}, "pool");
    attr_ints(g, "kernel_shape", 2, ks);
    attr_ints(g, "strides", 2, st);
    attr_ints(g, "pads", 4, pd);
    return y;
}

static spec_property *below_spec(const double *lo, const double *hi, double t)
{
    char text[2048];
    int at = 0;
    for (int i = 0; i < 3; i++)
        at += snprintf(text + at, sizeof text - (size_t)at, "(declare-const X_%d Real)\n", i);
    at += snprintf(text + at, sizeof text - (size_t)at,
                   "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n");
    for (int i = 0; i < 3; i++)
        at += snprintf(text + at, sizeof text - (size_t)at,
                       "(assert (>= X_%d %.17g))\n(assert (<= X_%d %.17g))\n", i, lo[i], i, hi[i]);
    snprintf(text + at, sizeof text - (size_t)at, "(assert (or (and (<= (- Y_0 Y_1) %.17g))))\n",
             t);
    spec_property *p = NULL;
    err e = {0};
    cr_assert_eq(spec_parse_vnnlib_string("test.vnnlib", text, &p, &e), 0, "%s", e.msg);
    return p;
}

/* The smallest sampled y0 - y1 over the box (corners and uniform points). */
static double sampled_min(const nn_graph *g, const double *lo, const double *hi, int ns)
{
    double best = INFINITY, x[3], y[2];
    err e = {0};
    for (int s = 0; s < ns; s++) {
        for (int i = 0; i < 3; i++)
            x[i] = s < 8 ? ((s >> i) & 1 ? hi[i] : lo[i]) : lo[i] + unif() * (hi[i] - lo[i]);
        cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
        best = fmin(best, y[0] - y[1]);
    }
    return best;
}

/* MaxPool and Clip lower to ReLUs only, so GLPK's MILP gives the exact
 * minimum v of y0 - y1 over the box: CROWN and alpha-CROWN stay below it,
 * no sample goes below it, its minimiser re-evaluated by nn_eval gives v
 * (the lowered network is the function), and ReLU-split BaB (beta-CROWN on
 * these DAGs) never contradicts it on y0 - y1 <= v ± gap. */
Test(lower, relu_lowerings_agree_with_milp_and_relu_bab, .timeout = 120)
{
    int decided = 0, cases = 12;
    for (int c = 0; c < cases; c++) {
        const char *name = c % 2 ? "Clip" : "MaxPool";
        nn_graph *g = NULL;
        for (int tries = 0; !g && tries < 200; tries++)
            g = op_net(name, c % 2 ? mid_clip : mid_pool_small, 13);
        cr_assert_not_null(g);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
        double lo[3], hi[3], C[2] = {1, -1}, lb, alb, v, xm[3], y[2];
        for (int i = 0; i < 3; i++) {
            double mid = 2 * unif() - 1, w = 0.2 + 0.8 * unif();
            lo[i] = mid - w, hi[i] = mid + w;
        }
        cr_assert_eq(bnd_alpha_crown(n, lo, hi, C, 1, 20, &alb, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb, NULL, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_lp_min(n, NULL, 0, C, 1, &v, NULL, xm, &e), 0, "%s: %s", name, e.msg);
        cr_assert_eq(nn_eval(g, xm, y, &e), 0);
        double tol = 1e-6 * (1 + fabs(v));
        cr_expect(fabs(y[0] - y[1] - v) <= tol, "%s: MILP point %.17g vs %.17g", name,
                  y[0] - y[1], v);
        cr_expect(lb <= v + tol && alb <= v + tol, "%s: CROWN %.17g / alpha %.17g above the "
                  "MILP minimum %.17g", name, lb, alb, v);
        cr_expect(alb >= lb - 1e-9 * (1 + fabs(lb)), "%s: alpha %.17g below CROWN %.17g", name,
                  alb, lb);
        double smin = sampled_min(g, lo, hi, 400);
        cr_expect(smin >= v - tol, "%s: sample %.17g below the MILP minimum %.17g", name, smin, v);
        for (int side = 0; side < 2; side++) {
            double gap = 0.02 + 0.1 * unif(), t = side ? v + gap : v - gap;
            spec_property *p = below_spec(lo, hi, t);
            bab_relu_opts o;
            bab_relu_opts_default(&o);
            o.deadline = clock_now() + 3;
            bab_answer a;
            double x[3];
            cr_assert_eq(bab_relu_split(g, p, 0, &o, &a, x, NULL, NULL, &e), 0, "%s", e.msg);
            if (side)
                cr_expect(a != BAB_UNSAT, "%s: unsat, but the MILP minimum %.17g <= %.17g",
                          name, v, t);
            else
                cr_expect(a != BAB_SAT, "%s: sat, but the MILP minimum %.17g > %.17g", name, v,
                          t);
            if (a == BAB_SAT)
                cr_expect_eq(bab_check_counterexample(g, p, 0, x, NULL, &e), 1);
            decided += a == BAB_SAT || a == BAB_UNSAT;
            spec_free(p);
        }
        bnd_net_free(n);
        nn_graph_free(g);
    }
    cr_log_info("relu lowerings: ReLU-split BaB decided %d of %d against the MILP", decided,
                2 * cases);
    cr_expect(decided >= cases, "only %d of %d decided", decided, 2 * cases);
}

/* Softmax networks in GenBaB (Exp and Reciprocal neurons and inputs split)
 * and in bab_verify: y0 - y1 <= d with d just above a sampled value is false
 * and must never be proven; d below CROWN's root bound is proven at once; in
 * between, what GenBaB's branching proves is counted. */
Test(lower, softmax_networks_in_genbab, .timeout = 120)
{
    int proven_mid = 0, cases = 8;
    for (int c = 0; c < cases; c++) {
        nn_graph *g = NULL;
        for (int tries = 0; !g && tries < 200; tries++)
            g = op_net("Softmax", mid_softmax, 13);
        cr_assert_not_null(g);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
        double lo[3], hi[3], C[2] = {1, -1}, root;
        for (int i = 0; i < 3; i++) {
            double mid = 2 * unif() - 1, w = 0.05 + 0.5 * unif();
            lo[i] = mid - w, hi[i] = mid + w;
        }
        cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &root, NULL, &e), 0);
        bnd_net_free(n);
        double smin = sampled_min(g, lo, hi, 400);
        cr_assert(root <= smin + 1e-9 * (1 + fabs(smin)), "root %.17g above a sample %.17g", root,
                  smin);
        bab_genbab_opts o;
        bab_genbab_opts_default(&o);
        o.input_splits = 1;
        bab_genbab_stats st;
        double d[3] = {smin + 1e-6, root - 1e-3, root + 0.5 * (smin - root)};
        for (int q = 0; q < 3; q++) {
            spec_clause cl = {1, C, &d[q]};
            o.deadline = clock_now() + 1;
            int rc = bab_genbab(g, lo, hi, &cl, &o, &st, &e);
            cr_assert(rc >= 0, "%s", e.msg);
            if (q == 0)
                cr_expect_eq(rc, 0, "false property proven (d %.17g, sample %.17g)", d[q], smin);
            else if (q == 1)
                cr_expect_eq(rc, 1, "below the root bound, not proven");
            else
                proven_mid += rc == 1;
            if (q == 2)
                continue;
            /* the whole pipeline (attack, input-split BaB over batched bounds
             * of this chain network): the same answers */
            spec_property *p = below_spec(lo, hi, d[q]);
            bab_opts bo;
            bab_opts_default(&bo);
            bo.timeout = 2;
            bo.threads = 1;
            bab_result res = {0};
            cr_assert_eq(bab_verify(g, p, &bo, &res, &e), 0, "%s", e.msg);
            if (q == 0)
                cr_expect(res.answer != BAB_UNSAT, "verify: false property proven");
            else
                cr_expect_eq(res.answer, BAB_UNSAT, "verify: %s below the root bound",
                             bab_answer_name(res.answer));
            bab_result_free(&res);
            spec_free(p);
        }
        nn_graph_free(g);
    }
    cr_log_info("softmax nets: GenBaB proved %d of %d thresholds halfway to the sampled min",
                proven_mid, cases);
}
