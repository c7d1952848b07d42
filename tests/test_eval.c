/* test_eval.c: forward evaluation of small hand-built graphs, op family by op
 * family, against hand-computed values or an independent naive loop (Conv,
 * ConvTranspose); float32 evaluation close to double; nn_eval_all. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../models/nn.h"

/* ---- a tiny builder on top of the nn.h API ---- */

static nn_graph *G;
static err E;

static int T(const char *name)
{
    int t = nn_graph_tensor(G, name, &E);
    cr_assert(t >= 0);
    return t;
}

static int shaped(const char *name, int rank, const int64_t *dims)
{
    int t = T(name);
    cr_assert_eq(nn_tensor_set_shape(G, t, rank, dims, &E), 0);
    return t;
}

static int cfloat(const char *name, int rank, const int64_t *dims, const double *v)
{
    int t = shaped(name, rank, dims);
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    cr_assert_eq(nn_tensor_set_float(G, t, v, n, &E), 0);
    return t;
}

static int cint(const char *name, int64_t n, const int64_t *v)
{
    int t = shaped(name, 1, &n);
    cr_assert_eq(nn_tensor_set_int(G, t, v, n, &E), 0);
    return t;
}

static int input(const char *name, int rank, const int64_t *dims)
{
    int t = shaped(name, rank, dims);
    cr_assert_eq(nn_graph_add_input(G, t, &E), 0);
    return t;
}

/* node("Add", "y", 2, a, b): one output tensor named out; returns the node index */
static int node(const char *op, const char *out, int n_in, ...)
{
    int in[8];
    va_list ap;
    va_start(ap, n_in);
    for (int i = 0; i < n_in; i++)
        in[i] = va_arg(ap, int);
    va_end(ap);
    int o = T(out);
    int k = nn_graph_add_node(G, op, out, n_in, in, 1, &o, &E);
    cr_assert(k >= 0, "%s", E.msg);
    return k;
}

static void output(const char *name)
{
    cr_assert_eq(nn_graph_add_output(G, T(name), &E), 0);
}

static void setup(void)
{
    G = nn_graph_new("test.onnx");
    G->opset = 13;
    memset(&E, 0, sizeof E);
}

static void teardown(void)
{
    nn_graph_free(G);
    G = NULL;
}

static void finalize_ok(void)
{
    int rc = nn_graph_finalize(G, &E);
    cr_assert_eq(rc, 0, "finalize: %s", E.msg);
}

static void eval_ok(const double *x, double *y)
{
    int rc = nn_eval(G, x, y, &E);
    cr_assert_eq(rc, 0, "eval: %s", E.msg);
}

static void assert_close(const double *got, const double *want, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])),
                  "index %lld: got %.17g want %.17g", (long long)i, got[i], want[i]);
}

/* deterministic pseudo-random values in [-1, 1] */
static double rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

TestSuite(eval, .init = setup, .fini = teardown);

/* ---- Gemm, MatMul ---- */

Test(eval, gemm_with_transposes_alpha_beta_and_row_bias)
{
    /* Y = 2 * A^T B^T + 0.5 C; A [3,2] (transA), B [4,3] (transB), C [4] */
    int64_t da[2] = {3, 2}, db[2] = {4, 3}, dc[1] = {4};
    double bv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, cv[4] = {1, -1, 2, -2};
    int a = input("A", 2, da);
    int b = cfloat("B", 2, db, bv), c = cfloat("C", 1, dc, cv);
    int k = node("Gemm", "Y", 3, a, b, c);
    nn_node_attr_int(G, k, "transA", 1, &E);
    nn_node_attr_int(G, k, "transB", 1, &E);
    nn_node_attr_float(G, k, "alpha", 2.0, &E);
    nn_node_attr_float(G, k, "beta", 0.5, &E);
    output("Y");
    finalize_ok();
    cr_assert_eq(nn_output_size(G), 8);
    double x[6] = {1, 2, 3, 4, 5, 6}, y[8], want[8];
    /* A^T = [[1,3,5],[2,4,6]] */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) {
            double s = 0;
            for (int l = 0; l < 3; l++)
                s += x[l * 2 + i] * bv[j * 3 + l];
            want[i * 4 + j] = 2 * s + 0.5 * cv[j];
        }
    cr_assert_float_eq(want[0], 2 * (1 + 6 + 15) + 0.5, 1e-12); /* by hand */
    eval_ok(x, y);
    assert_close(y, want, 8, 1e-14);
}

Test(eval, gemm_column_bias_broadcasts)
{
    int64_t da[2] = {2, 2}, dc[2] = {2, 1};
    double bv[4] = {1, 0, 0, 1}, cv[2] = {10, 20};
    int a = input("A", 2, da);
    node("Gemm", "Y", 3, a, cfloat("B", 2, da, bv), cfloat("C", 2, dc, cv));
    output("Y");
    finalize_ok();
    double x[4] = {1, 2, 3, 4}, y[4], want[4] = {11, 12, 23, 24};
    eval_ok(x, y);
    assert_close(y, want, 4, 0);
}

Test(eval, matmul_batched_broadcast_and_vectors)
{
    /* [2,2,3] x [3,2] -> [2,2,2] */
    int64_t dx[3] = {2, 2, 3}, dw[2] = {3, 2};
    double wv[6] = {1, 2, 3, 4, 5, 6};
    int x = input("X", 3, dx);
    node("MatMul", "Y", 2, x, cfloat("W", 2, dw, wv));
    output("Y");
    finalize_ok();
    double xv[12], y[8], want[8];
    for (int i = 0; i < 12; i++)
        xv[i] = i - 5;
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 2; j++)
            want[r * 2 + j] = xv[r * 3] * wv[j] + xv[r * 3 + 1] * wv[2 + j] + xv[r * 3 + 2] * wv[4 + j];
    eval_ok(xv, y);
    assert_close(y, want, 8, 0);
}

Test(eval, matmul_batched_both_sides)
{
    /* [2,1,2] x [3,2,1] -> [2,3,1,1]? no: batch dims [2] and [3] broadcast only if one is 1;
     * use [1,2,2] x [3,2,1] -> [3,2,1] */
    int64_t dx[3] = {1, 2, 2}, dw[3] = {3, 2, 1};
    double wv[6] = {1, 2, 3, 4, 5, 6};
    int x = input("X", 3, dx);
    node("MatMul", "Y", 2, x, cfloat("W", 3, dw, wv));
    output("Y");
    finalize_ok();
    cr_assert_eq(G->tensors[G->output].rank, 3);
    cr_assert_eq(G->tensors[G->output].dims[0], 3);
    double xv[4] = {1, 2, 3, 4}, y[6];
    double want[6] = {1 + 4, 3 + 8, 3 + 8, 9 + 16, 5 + 12, 15 + 24};
    eval_ok(xv, y);
    assert_close(y, want, 6, 0);
}

Test(eval, matmul_1d_input_drops_the_axis)
{
    int64_t dx[1] = {3}, dw[2] = {3, 2};
    double wv[6] = {1, 2, 3, 4, 5, 6};
    int x = input("X", 1, dx);
    node("MatMul", "Y", 2, x, cfloat("W", 2, dw, wv));
    output("Y");
    finalize_ok();
    cr_assert_eq(G->tensors[G->output].rank, 1);
    double xv[3] = {1, 1, 1}, y[2], want[2] = {9, 12};
    eval_ok(xv, y);
    assert_close(y, want, 2, 0);
}

/* ---- Conv against a direct loop ---- */

typedef struct {
    int64_t n, c, h, w, m, kh, kw, group, sh, sw, dh, dw, pt, pl, pb, pr;
} conv_case;

static void conv_naive(const conv_case *p, const double *x, const double *wt, const double *b,
                       double *y, int64_t oh, int64_t ow)
{
    int64_t cg = p->c / p->group, mg = p->m / p->group;
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t m = 0; m < p->m; m++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double s = b ? b[m] : 0;
                    int64_t gi = m / mg;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t u = 0; u < p->kh; u++)
                            for (int64_t v = 0; v < p->kw; v++) {
                                int64_t r = i * p->sh - p->pt + u * p->dh;
                                int64_t q = j * p->sw - p->pl + v * p->dw;
                                if (r < 0 || r >= p->h || q < 0 || q >= p->w)
                                    continue;
                                s += x[((n * p->c + gi * cg + c) * p->h + r) * p->w + q] *
                                     wt[((m * cg + c) * p->kh + u) * p->kw + v];
                            }
                    y[((n * p->m + m) * oh + i) * ow + j] = s;
                }
}

static void check_conv(const conv_case *p, int with_bias)
{
    uint64_t seed = 7;
    int64_t dx[4] = {p->n, p->c, p->h, p->w}, dw[4] = {p->m, p->c / p->group, p->kh, p->kw};
    int64_t db[1] = {p->m};
    int64_t nx = p->n * p->c * p->h * p->w, nw = dw[0] * dw[1] * dw[2] * dw[3];
    double *x = malloc((size_t)nx * sizeof *x), *w = malloc((size_t)nw * sizeof *w), b[64];
    for (int64_t i = 0; i < nx; i++)
        x[i] = rnd(&seed);
    for (int64_t i = 0; i < nw; i++)
        w[i] = rnd(&seed);
    for (int64_t i = 0; i < p->m; i++)
        b[i] = rnd(&seed);
    int xi = input("X", 4, dx);
    int k = with_bias ? node("Conv", "Y", 3, xi, cfloat("W", 4, dw, w), cfloat("B", 1, db, b))
                      : node("Conv", "Y", 2, xi, cfloat("W", 4, dw, w));
    int64_t strides[2] = {p->sh, p->sw}, dil[2] = {p->dh, p->dw}, pads[4] = {p->pt, p->pl, p->pb, p->pr};
    nn_node_attr_ints(G, k, "strides", strides, 2, &E);
    nn_node_attr_ints(G, k, "dilations", dil, 2, &E);
    nn_node_attr_ints(G, k, "pads", pads, 4, &E);
    nn_node_attr_int(G, k, "group", p->group, &E);
    output("Y");
    finalize_ok();
    int64_t oh = (p->h + p->pt + p->pb - (p->kh - 1) * p->dh - 1) / p->sh + 1;
    int64_t ow = (p->w + p->pl + p->pr - (p->kw - 1) * p->dw - 1) / p->sw + 1;
    const nn_tensor *o = &G->tensors[G->output];
    cr_assert_eq(o->dims[2], oh);
    cr_assert_eq(o->dims[3], ow);
    double *y = malloc((size_t)o->size * sizeof *y), *want = malloc((size_t)o->size * sizeof *y);
    conv_naive(p, x, w, with_bias ? b : NULL, want, oh, ow);
    eval_ok(x, y);
    assert_close(y, want, o->size, 1e-12);
    free(x);
    free(w);
    free(y);
    free(want);
}

Test(eval, conv_matches_direct_loop_with_asymmetric_pads_and_strides)
{
    conv_case p = {2, 3, 7, 6, 4, 3, 2, 1, 2, 1, 1, 1, 1, 0, 2, 1};
    check_conv(&p, 1);
}

Test(eval, conv_matches_direct_loop_with_groups_and_dilation)
{
    conv_case p = {1, 4, 9, 9, 6, 3, 3, 2, 1, 2, 2, 1, 0, 1, 1, 0};
    check_conv(&p, 0);
}

Test(eval, conv_depthwise_matches_direct_loop)
{
    conv_case p = {1, 3, 5, 5, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    check_conv(&p, 1);
}

Test(eval, conv_same_upper_keeps_the_size)
{
    int64_t dx[4] = {1, 1, 5, 5}, dw[4] = {1, 1, 2, 2};
    double w[4] = {1, 1, 1, 1};
    int k = node("Conv", "Y", 2, input("X", 4, dx), cfloat("W", 4, dw, w));
    nn_node_attr_string(G, k, "auto_pad", "SAME_UPPER", &E);
    output("Y");
    finalize_ok();
    const nn_tensor *o = &G->tensors[G->output];
    cr_assert_eq(o->dims[2], 5);
    cr_assert_eq(o->dims[3], 5);
    double x[25], y[25];
    for (int i = 0; i < 25; i++)
        x[i] = 1;
    eval_ok(x, y);
    /* SAME_UPPER pads at the end: the last row/column sees half the window */
    cr_assert_float_eq(y[0], 4, 0);
    cr_assert_float_eq(y[4], 2, 0);
    cr_assert_float_eq(y[24], 1, 0);
}

Test(eval, conv1d_with_stride)
{
    int64_t dx[3] = {1, 1, 5}, dw[3] = {1, 1, 2};
    double w[2] = {1, -1};
    int k = node("Conv", "Y", 2, input("X", 3, dx), cfloat("W", 3, dw, w));
    int64_t s = 2;
    nn_node_attr_ints(G, k, "strides", &s, 1, &E);
    output("Y");
    finalize_ok();
    double x[5] = {1, 4, 9, 16, 25}, y[2], want[2] = {-3, -7};
    eval_ok(x, y);
    assert_close(y, want, 2, 0);
}

Test(eval, convtranspose_is_the_adjoint_of_conv)
{
    /* <ConvT(x), z> == <x, Conv(z)> with the same weights (no bias, no output padding) */
    int64_t dx[4] = {1, 2, 3, 3}, dw[4] = {2, 3, 3, 3};
    uint64_t seed = 3;
    double w[54], x[18];
    for (int i = 0; i < 54; i++)
        w[i] = rnd(&seed);
    for (int i = 0; i < 18; i++)
        x[i] = rnd(&seed);
    int k = node("ConvTranspose", "Y", 2, input("X", 4, dx), cfloat("W", 4, dw, w));
    int64_t s[2] = {2, 2}, pads[4] = {1, 1, 1, 1};
    nn_node_attr_ints(G, k, "strides", s, 2, &E);
    nn_node_attr_ints(G, k, "pads", pads, 4, &E);
    output("Y");
    finalize_ok();
    const nn_tensor *o = &G->tensors[G->output];
    cr_assert_eq(o->dims[1], 3);
    cr_assert_eq(o->dims[2], 5); /* 2*(3-1) + 3 - 2 */
    double y[75], z[75], cz[18];
    for (int i = 0; i < 75; i++)
        z[i] = rnd(&seed);
    eval_ok(x, y);
    /* Conv of z [1,3,5,5] with W viewed as [M=2, C=3, 3, 3], stride 2, pads 1 */
    conv_case p = {1, 3, 5, 5, 2, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1};
    conv_naive(&p, z, w, NULL, cz, 3, 3);
    double lhs = 0, rhs = 0;
    for (int i = 0; i < 75; i++)
        lhs += y[i] * z[i];
    for (int i = 0; i < 18; i++)
        rhs += x[i] * cz[i];
    cr_assert(fabs(lhs - rhs) < 1e-12, "%.17g vs %.17g", lhs, rhs);
}

Test(eval, batchnorm_inference_formula)
{
    int64_t dx[4] = {1, 2, 1, 2}, dc[1] = {2};
    double sc[2] = {2, 1}, bi[2] = {1, 0}, mu[2] = {1, -1}, var[2] = {3, 0};
    int k = node("BatchNormalization", "Y", 5, input("X", 4, dx), cfloat("s", 1, dc, sc),
                 cfloat("b", 1, dc, bi), cfloat("m", 1, dc, mu), cfloat("v", 1, dc, var));
    nn_node_attr_float(G, k, "epsilon", 1.0, &E);
    output("Y");
    finalize_ok();
    double x[4] = {1, 3, -1, 0}, y[4], want[4] = {1, 3, 0, 1};
    eval_ok(x, y);
    assert_close(y, want, 4, 1e-15);
}

/* ---- elementwise ---- */

Test(eval, add_broadcasts_both_ways)
{
    int64_t da[3] = {2, 3, 1}, db[2] = {1, 4};
    double bv[4] = {10, 20, 30, 40};
    node("Add", "Y", 2, input("X", 3, da), cfloat("B", 2, db, bv));
    output("Y");
    finalize_ok();
    const nn_tensor *o = &G->tensors[G->output];
    cr_assert_eq(o->rank, 3);
    cr_assert_eq(o->size, 24);
    double x[6] = {1, 2, 3, 4, 5, 6}, y[24];
    eval_ok(x, y);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++)
            cr_assert_float_eq(y[i * 4 + j], x[i] + bv[j], 0);
}

Test(eval, sub_div_pow_with_scalars_and_rows)
{
    int64_t dx[2] = {2, 2}, dr[1] = {2};
    double two = 2, row[2] = {1, 2};
    int x = input("X", 2, dx);
    node("Sub", "a", 2, cfloat("two", 0, NULL, &two), x);
    node("Div", "b", 2, T("a"), cfloat("row", 1, dr, row));
    node("Pow", "Y", 2, T("b"), cfloat("two2", 0, NULL, &two));
    output("Y");
    finalize_ok();
    double xv[4] = {0, 1, 2, 3}, y[4], want[4] = {4, 0.25, 0, 0.25};
    eval_ok(xv, y);
    assert_close(y, want, 4, 1e-15);
}

Test(eval, activations_by_hand)
{
    const char *ops[] = {"Relu", "LeakyRelu", "Abs", "Neg", "Sigmoid", "Tanh", "Exp",
                         "Softplus", "Erf", "Sin", "Cos"};
    double x[3] = {-2, 0, 1.5}, y[3];
    double want[][3] = {
        {0, 0, 1.5}, {-2 * (double)0.01f, 0, 1.5}, {2, 0, 1.5}, {2, 0, -1.5},
        {1 / (1 + exp(2)), 0.5, 1 / (1 + exp(-1.5))}, {tanh(-2), 0, tanh(1.5)},
        {exp(-2), 1, exp(1.5)}, {log1p(exp(-2)), log(2), log1p(exp(1.5))},
        {erf(-2), 0, erf(1.5)}, {sin(-2), 0, sin(1.5)}, {cos(-2), 1, cos(1.5)}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        teardown();
        setup();
        int64_t d = 3;
        node(ops[i], "Y", 1, input("X", 1, &d));
        output("Y");
        finalize_ok();
        eval_ok(x, y);
        for (int j = 0; j < 3; j++)
            cr_assert(fabs(y[j] - want[i][j]) < 1e-15, "%s(%g) = %.17g", ops[i], x[j], y[j]);
    }
}

Test(eval, gelu_exact_and_tanh)
{
    int64_t d = 2;
    int x = input("X", 1, &d);
    node("Gelu", "a", 1, x);
    int k = node("Gelu", "b", 1, x);
    nn_node_attr_string(G, k, "approximate", "tanh", &E);
    node("Sub", "Y", 2, T("a"), T("b"));
    output("Y");
    finalize_ok();
    double xv[2] = {1, -0.5}, y[2];
    eval_ok(xv, y);
    double e1 = 0.5 * (1 + erf(1 / sqrt(2)));
    double t1 = 0.5 * (1 + tanh(sqrt(2 / M_PI) * (1 + 0.044715)));
    cr_assert(fabs(y[0] - (e1 - t1)) < 1e-15);
    cr_assert(fabs(y[0]) > 1e-6); /* the two forms differ */
}

Test(eval, clip_attributes_before_opset_11_and_inputs_after)
{
    int64_t d = 4;
    G->opset = 9;
    int k = node("Clip", "Y", 1, input("X", 1, &d));
    nn_node_attr_float(G, k, "min", -1, &E);
    nn_node_attr_float(G, k, "max", 0.5, &E);
    output("Y");
    finalize_ok();
    double x[4] = {-3, -0.5, 0.25, 7}, y[4], want[4] = {-1, -0.5, 0.25, 0.5};
    eval_ok(x, y);
    assert_close(y, want, 4, 0);
    teardown();
    setup();
    double lo = 0;
    int in[3] = {input("X", 1, &d), -1, -1};
    in[1] = cfloat("lo", 0, NULL, &lo);
    int o = T("Y");
    cr_assert(nn_graph_add_node(G, "Clip", "c", 3, (int[]){in[0], in[1], -1}, 1, &o, &E) >= 0);
    output("Y");
    finalize_ok();
    double want2[4] = {0, 0, 0.25, 7};
    eval_ok(x, y);
    assert_close(y, want2, 4, 0);
}

Test(eval, softmax_coerces_to_2d_before_opset_13)
{
    int64_t d[2] = {2, 2};
    G->opset = 11;
    node("Softmax", "Y", 1, input("X", 2, d)); /* axis 1: rows */
    output("Y");
    finalize_ok();
    double x[4] = {0, log(3), 1, 1}, y[4], want[4] = {0.25, 0.75, 0.5, 0.5};
    eval_ok(x, y);
    assert_close(y, want, 4, 1e-15);
    teardown();
    setup();
    int64_t d3[3] = {1, 2, 2};
    G->opset = 11;
    node("Softmax", "Y", 1, input("X", 3, d3)); /* axis 1 of rank 3: all 4 values together */
    output("Y");
    finalize_ok();
    double x3[4] = {0, 0, 0, 0};
    eval_ok(x3, y);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(y[i], 0.25, 1e-15);
    teardown();
    setup();
    node("Softmax", "Y", 1, input("X", 3, d3)); /* opset 13: last axis only */
    output("Y");
    finalize_ok();
    eval_ok(x3, y);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(y[i], 0.5, 1e-15);
}

/* ---- shape ops ---- */

Test(eval, slice_with_negative_steps_and_clamping)
{
    int64_t d[2] = {3, 4};
    int64_t st[2] = {-1, INT64_MAX}, en[2] = {INT64_MIN, 0}, ax[2] = {0, 1}, sp[2] = {-2, -1};
    node("Slice", "Y", 5, input("X", 2, d), cint("st", 2, st), cint("en", 2, en),
         cint("ax", 2, ax), cint("sp", 2, sp));
    output("Y");
    finalize_ok();
    const nn_tensor *o = &G->tensors[G->output];
    cr_assert_eq(o->dims[0], 2); /* rows 2, 0 */
    cr_assert_eq(o->dims[1], 3); /* cols 3, 2, 1 */
    double x[12], y[6], want[6] = {11, 10, 9, 3, 2, 1};
    for (int i = 0; i < 12; i++)
        x[i] = i;
    eval_ok(x, y);
    assert_close(y, want, 6, 0);
}

Test(eval, slice_opset9_attributes)
{
    int64_t d[2] = {2, 5}, st = 1, en = 100, ax = 1;
    G->opset = 9;
    int k = node("Slice", "Y", 1, input("X", 2, d));
    nn_node_attr_ints(G, k, "starts", &st, 1, &E);
    nn_node_attr_ints(G, k, "ends", &en, 1, &E);
    nn_node_attr_ints(G, k, "axes", &ax, 1, &E);
    output("Y");
    finalize_ok();
    double x[10], y[8], want[8] = {1, 2, 3, 4, 6, 7, 8, 9};
    for (int i = 0; i < 10; i++)
        x[i] = i;
    eval_ok(x, y);
    assert_close(y, want, 8, 0);
}

Test(eval, transpose_perm_and_default)
{
    int64_t d[3] = {2, 3, 4};
    int x = input("X", 3, d);
    int k = node("Transpose", "a", 1, x);
    int64_t perm[3] = {1, 0, 2};
    nn_node_attr_ints(G, k, "perm", perm, 3, &E);
    node("Transpose", "Y", 1, T("a")); /* reverse: [4,2,3] */
    output("Y");
    finalize_ok();
    const nn_tensor *o = &G->tensors[G->output];
    cr_assert_eq(o->dims[0], 4);
    cr_assert_eq(o->dims[1], 2);
    cr_assert_eq(o->dims[2], 3);
    double xv[24], y[24];
    for (int i = 0; i < 24; i++)
        xv[i] = i;
    eval_ok(xv, y);
    /* y[w][i][j] = a[j][i][w] = x[i][j][w] */
    for (int w = 0; w < 4; w++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                cr_assert_float_eq(y[(w * 2 + i) * 3 + j], xv[(i * 3 + j) * 4 + w], 0);
}

Test(eval, concat_flatten_reshape_squeeze_unsqueeze)
{
    int64_t d[2] = {1, 2}, dc[2] = {1, 3};
    double c[3] = {7, 8, 9};
    int k = node("Concat", "cat", 2, input("X", 2, d), cfloat("C", 2, dc, c));
    nn_node_attr_int(G, k, "axis", -1, &E);
    int64_t ax0 = 0, shp[3] = {5, -1, 1};
    node("Unsqueeze", "u", 2, T("cat"), cint("ax0", 1, &ax0)); /* [1,1,5] */
    node("Squeeze", "s", 1, T("u"));                          /* [5] */
    node("Reshape", "r", 2, T("s"), cint("shape", 3, shp));   /* [5,1,1] */
    k = node("Flatten", "Y", 1, T("r"));
    nn_node_attr_int(G, k, "axis", 0, &E); /* [1,5] */
    output("Y");
    finalize_ok();
    const nn_tensor *o = &G->tensors[G->output];
    cr_assert_eq(o->rank, 2);
    cr_assert_eq(o->dims[0], 1);
    cr_assert_eq(o->dims[1], 5);
    double x[2] = {1, 2}, y[5], want[5] = {1, 2, 7, 8, 9};
    eval_ok(x, y);
    assert_close(y, want, 5, 0);
}

Test(eval, shape_gather_concat_reshape_chain_folds)
{
    /* The PyTorch flatten export: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) */
    int64_t d[3] = {-1, 2, 3}, zero = 0, minus1 = -1;
    int x = input("X", 3, d);
    node("Shape", "shp", 1, x);
    int ix = T("i0");
    cr_assert_eq(nn_tensor_set_shape(G, ix, 0, NULL, &E), 0);
    cr_assert_eq(nn_tensor_set_int(G, ix, &zero, 1, &E), 0);
    node("Gather", "n", 2, T("shp"), ix);
    node("Unsqueeze", "n1", 2, T("n"), cint("ax", 1, &zero));
    int k = node("Concat", "newshape", 2, T("n1"), cint("m1", 1, &minus1));
    nn_node_attr_int(G, k, "axis", 0, &E);
    node("Reshape", "flat", 2, x, T("newshape"));
    node("Relu", "Y", 1, T("flat"));
    output("Y");
    finalize_ok();
    cr_assert_eq(G->n_nodes, 2, "everything but Reshape and Relu folds");
    const nn_tensor *o = &G->tensors[G->output];
    cr_assert_eq(o->rank, 2);
    cr_assert_eq(o->dims[0], 1);
    cr_assert_eq(o->dims[1], 6);
    double xv[6] = {-1, 2, -3, 4, -5, 6}, y[6], want[6] = {0, 2, 0, 4, 0, 6};
    eval_ok(xv, y);
    assert_close(y, want, 6, 0);
}

Test(eval, gather_on_data_axis1)
{
    int64_t d[2] = {2, 3}, idx[2] = {2, -3};
    int k = node("Gather", "Y", 2, input("X", 2, d), cint("idx", 2, idx));
    nn_node_attr_int(G, k, "axis", 1, &E);
    output("Y");
    finalize_ok();
    double x[6] = {0, 1, 2, 3, 4, 5}, y[4], want[4] = {2, 0, 5, 3};
    eval_ok(x, y);
    assert_close(y, want, 4, 0);
}

/* ---- pooling and reductions ---- */

Test(eval, maxpool_padding_never_wins)
{
    int64_t d[4] = {1, 1, 2, 2}, ks[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
    int k = node("MaxPool", "Y", 1, input("X", 4, d));
    nn_node_attr_ints(G, k, "kernel_shape", ks, 2, &E);
    nn_node_attr_ints(G, k, "pads", pads, 4, &E);
    output("Y");
    finalize_ok();
    double x[4] = {-4, -3, -2, -1}, y[4], want[4] = {-1, -1, -1, -1};
    eval_ok(x, y);
    assert_close(y, want, 4, 0);
}

Test(eval, avgpool_count_include_pad_and_ceil_mode)
{
    int64_t d[4] = {1, 1, 3, 3}, ks[2] = {2, 2}, st[2] = {2, 2}, pads[4] = {1, 1, 0, 0};
    int k = node("AveragePool", "a", 1, input("X", 4, d));
    nn_node_attr_ints(G, k, "kernel_shape", ks, 2, &E);
    nn_node_attr_ints(G, k, "strides", st, 2, &E);
    nn_node_attr_ints(G, k, "pads", pads, 4, &E);
    nn_node_attr_int(G, k, "count_include_pad", 1, &E);
    k = node("AveragePool", "b", 1, T("X"));
    nn_node_attr_ints(G, k, "kernel_shape", ks, 2, &E);
    nn_node_attr_ints(G, k, "strides", st, 2, &E);
    nn_node_attr_int(G, k, "ceil_mode", 1, &E);
    node("Concat", "Y", 2, T("a"), T("b"));
    nn_node_attr_int(G, 2, "axis", 1, &E);
    output("Y");
    finalize_ok();
    double x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y[8];
    eval_ok(x, y);
    /* a: windows at (-1,-1),(-1,1),(1,-1),(1,1), divisor 4 */
    double want[8] = {1 / 4.0, (2 + 3) / 4.0, (4 + 7) / 4.0, (5 + 6 + 8 + 9) / 4.0,
                      /* b (ceil): windows clipped to the input, divisor = valid count */
                      (1 + 2 + 4 + 5) / 4.0, (3 + 6) / 2.0, (7 + 8) / 2.0, 9};
    assert_close(y, want, 8, 1e-15);
}

Test(eval, global_avgpool_and_reductions)
{
    int64_t d[4] = {1, 2, 2, 2}, axes[1] = {1};
    int x = input("X", 4, d);
    node("GlobalAveragePool", "g", 1, x);
    int k = node("ReduceSum", "s", 2, x, cint("axes", 1, axes));
    nn_node_attr_int(G, k, "keepdims", 0, &E); /* [1,2,2] */
    k = node("ReduceMean", "m", 1, T("s"));     /* all axes (attribute absent) -> [1,1,1] */
    node("Flatten", "f1", 1, T("g"));           /* [1,2] */
    node("Flatten", "f2", 1, T("m"));           /* [1,1] */
    k = node("Concat", "Y", 2, T("f1"), T("f2"));
    nn_node_attr_int(G, k, "axis", 1, &E);
    output("Y");
    finalize_ok();
    double xv[8] = {1, 2, 3, 4, 10, 20, 30, 40}, y[3], want[3] = {2.5, 25, 27.5};
    eval_ok(xv, y);
    assert_close(y, want, 3, 1e-15);
}

/* ---- whole-graph entry points ---- */

Test(eval, float_evaluation_is_close_to_double)
{
    int64_t d[2] = {1, 4}, dw[2] = {4, 3};
    uint64_t seed = 11;
    double w[12];
    for (int i = 0; i < 12; i++)
        w[i] = (double)(float)rnd(&seed);
    node("MatMul", "a", 2, input("X", 2, d), cfloat("W", 2, dw, w));
    node("Tanh", "Y", 1, T("a"));
    output("Y");
    finalize_ok();
    float xf[4] = {0.1f, -0.7f, 0.3f, 0.9f}, yf[3];
    double x[4], y[3];
    for (int i = 0; i < 4; i++)
        x[i] = xf[i];
    eval_ok(x, y);
    cr_assert_eq(nn_eval_float(G, xf, yf, &E), 0, "%s", E.msg);
    for (int i = 0; i < 3; i++) {
        cr_assert(fabs(yf[i] - y[i]) < 1e-6, "%g vs %g", yf[i], y[i]);
        cr_assert_eq((double)yf[i], (double)(float)yf[i]);
    }
}

Test(eval, eval_all_gives_every_tensor)
{
    int64_t d = 2;
    double c[2] = {1, -5};
    node("Add", "a", 2, input("X", 1, &d), cfloat("C", 1, &d, c));
    node("Relu", "Y", 1, T("a"));
    output("Y");
    finalize_ok();
    double x[2] = {1, 2}, **vals = NULL;
    cr_assert_eq(nn_eval_all(G, x, &vals, &E), 0, "%s", E.msg);
    int a = nn_graph_find(G, "a"), cc = nn_graph_find(G, "C"), y = nn_graph_find(G, "Y");
    cr_assert_float_eq(vals[a][0], 2, 0);
    cr_assert_float_eq(vals[a][1], -3, 0);
    cr_assert_float_eq(vals[cc][1], -5, 0);
    cr_assert_float_eq(vals[y][1], 0, 0);
    nn_values_free(G, vals);
}

Test(eval, eval_rejects_unfinalized_graph)
{
    int64_t d = 1;
    node("Relu", "Y", 1, input("X", 1, &d));
    output("Y");
    double x = 1, y;
    cr_assert_eq(nn_eval(G, &x, &y, &E), ERR_ARG);
    cr_assert_eq(nn_input_size(G), -1);
}

Test(eval, convtranspose_groups_and_output_padding_match_scatter_loop)
{
    /* X [1,4,3,2], W [4, 3, 3, 2] (group 2 -> 6 output channels), stride (2,1),
     * pads (1,0,0,1), output_padding (1,0) */
    int64_t dx[4] = {1, 4, 3, 2}, dw[4] = {4, 3, 3, 2}, db[1] = {6};
    uint64_t seed = 5;
    double x[24], w[72], b[6];
    for (int i = 0; i < 24; i++)
        x[i] = rnd(&seed);
    for (int i = 0; i < 72; i++)
        w[i] = rnd(&seed);
    for (int i = 0; i < 6; i++)
        b[i] = rnd(&seed);
    int k = node("ConvTranspose", "Y", 3, input("X", 4, dx), cfloat("W", 4, dw, w),
                 cfloat("B", 1, db, b));
    int64_t s[2] = {2, 1}, pads[4] = {1, 0, 0, 1}, op[2] = {1, 0};
    nn_node_attr_ints(G, k, "strides", s, 2, &E);
    nn_node_attr_ints(G, k, "pads", pads, 4, &E);
    nn_node_attr_ints(G, k, "output_padding", op, 2, &E);
    nn_node_attr_int(G, k, "group", 2, &E);
    output("Y");
    finalize_ok();
    const int64_t oh = 2 * 2 + 1 + 3 - 1 - 0, ow = 1 * 1 + 0 + 2 - 0 - 1; /* 7, 2 */
    const nn_tensor *o = &G->tensors[G->output];
    cr_assert_eq(o->dims[1], 6);
    cr_assert_eq(o->dims[2], oh);
    cr_assert_eq(o->dims[3], ow);
    double want[6 * 7 * 2], y[6 * 7 * 2];
    for (int m = 0; m < 6; m++)
        for (int i = 0; i < oh * ow; i++)
            want[m * oh * ow + i] = b[m];
    for (int c = 0; c < 4; c++)
        for (int ih = 0; ih < 3; ih++)
            for (int iw = 0; iw < 2; iw++)
                for (int ml = 0; ml < 3; ml++)
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 2; kw++) {
                            int64_t r = ih * 2 - 1 + kh, q = iw * 1 - 0 + kw;
                            if (r < 0 || r >= oh || q < 0 || q >= ow)
                                continue;
                            int m = (c / 2) * 3 + ml;
                            want[(m * oh + r) * ow + q] +=
                                x[(c * 3 + ih) * 2 + iw] * w[((c * 3 + ml) * 3 + kh) * 2 + kw];
                        }
    eval_ok(x, y);
    assert_close(y, want, 6 * 7 * 2, 1e-12);
}

Test(eval, reshape_allowzero_keeps_a_literal_zero_dim_apart)
{
    int64_t d[2] = {2, 3}, shp[2] = {0, 3};
    node("Reshape", "Y", 2, input("X", 2, d), cint("shape", 2, shp)); /* 0 copies dim 0 */
    output("Y");
    finalize_ok();
    cr_assert_eq(G->tensors[G->output].dims[0], 2);
    teardown();
    setup();
    int k = node("Reshape", "Y", 2, input("X", 2, d), cint("shape", 2, shp));
    nn_node_attr_int(G, k, "allowzero", 1, &E); /* a literal 0: 6 elements cannot fit */
    output("Y");
    cr_assert_eq(nn_graph_finalize(G, &E), ERR_SHAPE, "%s", E.msg);
}

Test(eval, float_conv_is_close_to_double_and_rounded)
{
    int64_t dx[4] = {1, 2, 6, 6}, dw[4] = {3, 2, 3, 3};
    uint64_t seed = 9;
    double w[54], x[72], y[108];
    float xf[72], yf[108];
    for (int i = 0; i < 54; i++)
        w[i] = (double)(float)rnd(&seed);
    for (int i = 0; i < 72; i++)
        xf[i] = (float)rnd(&seed), x[i] = xf[i];
    int k = node("Conv", "Y", 2, input("X", 4, dx), cfloat("W", 4, dw, w));
    int64_t pads[4] = {1, 1, 1, 1};
    nn_node_attr_ints(G, k, "pads", pads, 4, &E);
    output("Y");
    finalize_ok();
    eval_ok(x, y);
    cr_assert_eq(nn_eval_float(G, xf, yf, &E), 0, "%s", E.msg);
    for (int i = 0; i < 108; i++)
        cr_assert(fabs(yf[i] - y[i]) < 1e-5, "%d: %g vs %g", i, yf[i], y[i]);
}

Test(eval, cast_truncates_and_reduce_noop_with_empty_axes)
{
    int64_t d = 3;
    int k = node("Cast", "c", 1, input("X", 1, &d));
    nn_node_attr_int(G, k, "to", NN_INT64, &E);
    k = node("Cast", "f", 1, T("c"));
    nn_node_attr_int(G, k, "to", NN_FLOAT, &E);
    k = node("ReduceSum", "Y", 1, T("f"));
    nn_node_attr_int(G, k, "noop_with_empty_axes", 1, &E);
    output("Y");
    finalize_ok();
    cr_assert_eq(nn_output_size(G), 3);
    double x[3] = {-1.7, 2.9, 0.2}, y[3], want[3] = {-1, 2, 0};
    eval_ok(x, y);
    assert_close(y, want, 3, 0);
}
