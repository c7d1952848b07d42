/* test_act.c: IBP and CROWN through every nonlinearity and through products
 * of computed tensors. For each op, random small networks containing it
 * twice (Gemm, op, Gemm, op, Gemm) over random boxes (narrow to wide,
 * centred near and away from 0): 10^4 sampled points per op stay inside both
 * bounds (identity objective and a random row); point boxes pin nn_eval's
 * value. Plus hand-computed cases and the conformance models with these ops. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bound/bound.h"
#include "../models/nn.h"

#define GB_SEED 0x9e3779b97f4a7c15ull
#include "graph_build.h"
#include "shared_data.h"

/* ---- graph building ---- */
/* The op under test applied to x; `tag` makes tensor names unique. */
static int apply(nn_graph *g, const char *op, int x, int64_t width, int tag)
{
    char nm[8][64];
    for (int i = 0; i < 8; i++)
        snprintf(nm[i], sizeof nm[i], "t%d_%d", tag, i);
    err e = {0};
    if (!strcmp(op, "Log") || !strcmp(op, "Sqrt") || !strcmp(op, "PowNeg2")) {
        int p = N(g, "Exp", 1, (int[]){x}, nm[0]); /* positive inputs */
        if (!strcmp(op, "PowNeg2"))
            return N(g, "Pow", 2, (int[]){p, scalar(g, nm[1], -2)}, nm[2]);
        return N(g, op, 1, (int[]){p}, nm[1]);
    }
    if (!strcmp(op, "Reciprocal")) {
        int p = N(g, "Softplus", 1, (int[]){x}, nm[0]);
        int q = N(g, "Add", 2, (int[]){p, scalar(g, nm[1], 0.25)}, nm[2]);
        return N(g, "Reciprocal", 1, (int[]){q}, nm[3]);
    }
    if (!strcmp(op, "Pow2") || !strcmp(op, "Pow3"))
        return N(g, "Pow", 2, (int[]){x, scalar(g, nm[0], op[3] - '0')}, nm[1]);
    if (!strcmp(op, "LeakyRelu")) {
        int o = N(g, "LeakyRelu", 1, (int[]){x}, nm[0]);
        nn_node_attr_float(g, g->tensors[o].producer >= 0 ? g->tensors[o].producer
                                                          : g->n_nodes - 1,
                           "alpha", 0.2, &e);
        return o;
    }
    if (!strcmp(op, "GeluTanh")) {
        int o = N(g, "Gelu", 1, (int[]){x}, nm[0]);
        nn_node_attr_string(g, g->n_nodes - 1, "approximate", "tanh", &e);
        return o;
    }
    if (!strcmp(op, "MulSilu")) /* x * sigmoid(x) */
        return N(g, "Mul", 2, (int[]){x, N(g, "Sigmoid", 1, (int[]){x}, nm[0])}, nm[1]);
    if (!strcmp(op, "MulSquare"))
        return N(g, "Mul", 2, (int[]){x, x}, nm[0]);
    if (!strcmp(op, "MulPair") || !strcmp(op, "DivPair")) {
        /* x * y or x / exp(y), y a second linear map of x */
        int y = dense(g, x, width, width, nm[0]);
        if (op[0] == 'D')
            y = N(g, "Exp", 1, (int[]){y}, nm[1]);
        return N(g, op[0] == 'M' ? "Mul" : "Div", 2, (int[]){x, y}, nm[2]);
    }
    if (!strcmp(op, "ConstDiv")) { /* 2 / (1 + x^2) */
        int s = N(g, "Pow", 2, (int[]){x, scalar(g, nm[0], 2)}, nm[1]);
        int q = N(g, "Add", 2, (int[]){s, scalar(g, nm[2], 1)}, nm[3]);
        return N(g, "Div", 2, (int[]){scalar(g, nm[4], 2), q}, nm[5]);
    }
    if (!strcmp(op, "GeluErf")) { /* x * 0.5 * (1 + erf(x / sqrt 2)) as PyTorch exports it */
        int a = N(g, "Div", 2, (int[]){x, scalar(g, nm[0], 1.4142135381698608)}, nm[1]);
        int b = N(g, "Erf", 1, (int[]){a}, nm[2]);
        int c = N(g, "Add", 2, (int[]){b, scalar(g, nm[3], 1)}, nm[4]);
        int d = N(g, "Mul", 2, (int[]){x, c}, nm[5]);
        return N(g, "Mul", 2, (int[]){d, scalar(g, nm[6], 0.5)}, nm[7]);
    }
    return N(g, op, 1, (int[]){x}, nm[0]);
}

/* x (1x3) -> Gemm 3x6 -> op -> Gemm 6x5 -> op -> Gemm 5x2 */
static nn_graph *op_net(const char *op)
{
    nn_graph *g = nn_graph_new(op);
    err e = {0};
    int x = T(g, "x");
    int64_t dx[2] = {1, 3};
    cr_assert_eq(nn_tensor_set_shape(g, x, 2, dx, &e), 0);
    int h = dense(g, x, 3, 6, "fc1");
    h = apply(g, op, h, 6, 1);
    h = dense(g, h, 6, 5, "fc2");
    h = apply(g, op, h, 5, 2);
    int y = dense(g, h, 5, 2, "fc3");
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s: %s", op, e.msg);
    return g;
}

static void check_point(const nn_graph *g, bnd_net *n, const double *x)
{
    double y[2], lb[2], ub[2];
    err e = {0};
    cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(bnd_compute(n, m ? BND_CROWN : BND_IBP, x, x, NULL, 0, lb, ub, &e), 0);
        for (int o = 0; o < 2; o++) {
            double tol = 1e-9 * (1 + fabs(y[o]));
            cr_expect(ub[o] - lb[o] <= tol && lb[o] <= y[o] + tol && y[o] <= ub[o] + tol,
                      "%s point box, method %d, output %d: [%.17g, %.17g] vs %.17g", g->source,
                      m, o, lb[o], ub[o], y[o]);
        }
    }
}

/* 4 networks x 10 boxes x 250 samples = 10^4 points per op. */
static void op_sound(const char *op, int tight)
{
    tally t = {0};
    for (int net = 0; net < 4; net++) {
        nn_graph *g = op_net(op);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s: %s", op, e.msg);
        double lo[3], hi[3];
        for (int b = 0; b < 10; b++) {
            double c = b % 3 == 0 ? 0.0 : 3 * (2 * unif() - 1);
            double r = pow(10.0, -4 + 4.3 * unif()); /* 1e-4 .. 2 */
            for (int i = 0; i < 3; i++) {
                double ci = c + 0.5 * (2 * unif() - 1);
                lo[i] = ci - r * unif();
                hi[i] = ci + r * unif();
            }
            check_box(g, n, lo, hi, 250, &t);
        }
        check_point(g, n, lo);
        bnd_net_free(n);
        nn_graph_free(g);
    }
    cr_log_info("%-10s %ld samples, %ld outside (worst %.3g); CROWN/IBP width %.3f", op,
                t.samples, t.outside, t.worst, t.crown_w / t.ibp_w);
    cr_expect_eq(t.outside, 0, "%s: %ld of %ld samples outside", op, t.outside, t.samples);
    if (tight) /* CROWN can be looser than IBP through exp's wide chords (Log, 1/x of exp) */
        cr_expect(t.crown_w <= t.ibp_w * 1.05, "%s: CROWN much looser than IBP", op);
}

#define OP_TEST(id, name) OP_TEST2(id, name, 1)
#define OP_TEST2(id, name, tight)                                                          \
    Test(act, id##_bounds_contain_samples, .timeout = 30)                                  \
    {                                                                                      \
        op_sound(name, tight);                                                             \
    }

OP_TEST(sigmoid, "Sigmoid")
OP_TEST(tanh, "Tanh")
OP_TEST(exp, "Exp")
OP_TEST2(log, "Log", 0)
OP_TEST(sin, "Sin")
OP_TEST(cos, "Cos")
OP_TEST(erf, "Erf")
OP_TEST(softplus, "Softplus")
OP_TEST2(sqrt, "Sqrt", 0)
OP_TEST(reciprocal, "Reciprocal")
OP_TEST(pow2, "Pow2")
OP_TEST(pow3, "Pow3")
OP_TEST2(pow_neg2, "PowNeg2", 0)
OP_TEST(gelu, "Gelu")
OP_TEST(gelu_tanh, "GeluTanh")
OP_TEST(gelu_erf_decomposed, "GeluErf")
OP_TEST(leakyrelu, "LeakyRelu")
OP_TEST(abs, "Abs")
OP_TEST(relu, "Relu")
OP_TEST(mul_silu, "MulSilu")
OP_TEST(mul_square, "MulSquare")
OP_TEST(mul_pair, "MulPair")
OP_TEST2(div_pair, "DivPair", 0)
OP_TEST(const_div, "ConstDiv")

/* Hand-computed: y = x * x on [-1, 2] via Mul(x, x) is Pow 2: IBP [0, 4];
 * CROWN's upper line is the chord x + 2 (so max over the box 4) and the
 * lower line the tangent at the midpoint 0.5: x - 0.25, min -1.25 -> the
 * lower bound is max of nothing: CROWN gives -1.25, IBP 0. */
Test(act, square_by_mul_has_the_expected_lines)
{
    nn_graph *g = nn_graph_new("sq");
    err e = {0};
    int x = T(g, "x");
    int64_t d[2] = {1, 1};
    nn_tensor_set_shape(g, x, 2, d, &e);
    int y = N(g, "Mul", 2, (int[]){x, x}, "y");
    nn_graph_add_input(g, x, &e);
    nn_graph_add_output(g, y, &e);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    bnd_net *n = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    double lo = -1, hi = 2, lb, ub;
    cr_assert_eq(bnd_compute(n, BND_IBP, &lo, &hi, NULL, 0, &lb, &ub, &e), 0);
    cr_expect(fabs(lb - 0) < 1e-12 && fabs(ub - 4) < 1e-12, "IBP [%g, %g]", lb, ub);
    cr_assert_eq(bnd_compute(n, BND_CROWN, &lo, &hi, NULL, 0, &lb, &ub, &e), 0);
    cr_expect(fabs(lb + 1.25) < 1e-9 && fabs(ub - 4) < 1e-9, "CROWN [%g, %g]", lb, ub);
    bnd_net_free(n);
    nn_graph_free(g);
}

/* Hand-computed: sigmoid on [0, 2] is concave; CROWN's lower line is the
 * chord, so the lower bound is sigmoid(0) = 0.5 at x = 0 and the upper
 * the tangent at 1 evaluated at 2: s(1) + s'(1). */
Test(act, sigmoid_concave_piece_lines)
{
    nn_graph *g = nn_graph_new("sig");
    err e = {0};
    int x = T(g, "x");
    int64_t d[2] = {1, 1};
    nn_tensor_set_shape(g, x, 2, d, &e);
    int y = N(g, "Sigmoid", 1, (int[]){x}, "y");
    nn_graph_add_input(g, x, &e);
    nn_graph_add_output(g, y, &e);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    bnd_net *n = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    double lo = 0, hi = 2, lb, ub;
    cr_assert_eq(bnd_compute(n, BND_CROWN, &lo, &hi, NULL, 0, &lb, &ub, &e), 0);
    double s1 = 1 / (1 + exp(-1.0));
    cr_expect(fabs(lb - 0.5) < 1e-9, "lb %.17g", lb);
    cr_expect(fabs(ub - (s1 + s1 * (1 - s1))) < 1e-9, "ub %.17g", ub);
    bnd_net_free(n);
    nn_graph_free(g);
}

/* The conformance models of these ops must lower (point boxes and sampled
 * boxes of every lowered model are checked by soundness/conformance_*). */
Test(act, conformance_nonlinear_models_lower)
{
    NEED_SHARED();
    const char *names[] = {"sigmoid", "tanh", "exp", "sin", "cos", "erf", "softplus",
                           "sqrt", "reciprocal", "pow_2", "pow_3", "mul_silu", "leakyrelu_alpha",
                           "leakyrelu_default", "abs", "gelu_erf_decomposed", "div_const_by_x",
                           "sub_div_computed", "mul_full_shape"};
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
