/* test_bound.c: hand-computed IBP and CROWN bounds on tiny networks, the
 * error paths of the bound API, and the rounding-error accounting against
 * exact (long double, integer-valued) evaluation on adversarial cases. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../bound/bound.h"
#include "../bound/internal.h"
#include "../core/rng.h"
#include "../models/nn.h"

/* ---- graph building helpers ---- */
static int tens(nn_graph *g, const char *name, int rank, const int64_t *dims)
{
    err e = {0};
    int t = nn_graph_tensor(g, name, &e);
    cr_assert(t >= 0, "%s", e.msg);
    cr_assert_eq(nn_tensor_set_shape(g, t, rank, dims, &e), 0, "%s", e.msg);
    return t;
}

static int cnst(nn_graph *g, const char *name, int rank, const int64_t *dims, const double *v)
{
    err e = {0};
    int t = tens(g, name, rank, dims);
    cr_assert_eq(nn_tensor_set_float(g, t, v, g->tensors[t].size, &e), 0, "%s", e.msg);
    return t;
}

static int node(nn_graph *g, const char *op, const char *name, int n_in, const int *in, int out)
{
    err e = {0};
    int k = nn_graph_add_node(g, op, name, n_in, in, 1, &out, &e);
    cr_assert(k >= 0, "%s", e.msg);
    return k;
}

static void finish(nn_graph *g, int x, int y)
{
    err e = {0};
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
}

/* y = W2 relu(W1 x): x in R^2, W1 = [[1,1],[1,-1]], W2 = [[1,1],[1,-1]] —
 * the classic 2-2-2 CROWN example (output 0 is the 2-2-1 net h1 + h2). */
static nn_graph *classic_net(void)
{
    nn_graph *g = nn_graph_new("classic.onnx");
    int64_t d12[2] = {1, 2}, d22[2] = {2, 2};
    double W[4] = {1, 1, 1, -1};
    int x = tens(g, "x", 2, d12), z = tens(g, "z", 2, d12), h = tens(g, "h", 2, d12);
    int y = tens(g, "y", 2, d12);
    int w1 = cnst(g, "W1", 2, d22, W), w2 = cnst(g, "W2", 2, d22, W);
    int in1[2] = {x, w1}, in2[2] = {h, w2};
    int k = node(g, "Gemm", "fc1", 2, in1, z);
    err e = {0};
    nn_node_attr_int(g, k, "transB", 1, &e);
    node(g, "Relu", "relu", 1, (int[]){z}, h);
    k = node(g, "Gemm", "fc2", 2, in2, y);
    nn_node_attr_int(g, k, "transB", 1, &e);
    finish(g, x, y);
    return g;
}

static void near(double got, double want, const char *what)
{
    cr_expect(fabs(got - want) <= 1e-12 * fmax(1, fabs(want)), "%s: %.17g, want %.17g", what,
              got, want);
}

Test(bound, classic_2_2_2_network_hand_computed)
{
    nn_graph *g = classic_net();
    bnd_net *n = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_n_in(n), 2);
    cr_assert_eq(bnd_n_out(n), 2);
    double lo[2] = {-1, -1}, hi[2] = {1, 1}, lb[2], ub[2];
    /* z in [-2,2]^2; IBP: h in [0,2]^2, y0 = h1+h2 in [0,4], y1 = h1-h2 in [-2,2] */
    cr_assert_eq(bnd_compute(n, BND_IBP, lo, hi, NULL, 0, lb, ub, &e), 0, "%s", e.msg);
    near(lb[0], 0, "IBP lb0"), near(ub[0], 4, "IBP ub0");
    near(lb[1], -2, "IBP lb1"), near(ub[1], 2, "IBP ub1");
    /* CROWN: u = -l, so lower slopes are 0; upper lines h <= z/2 + 1:
     * y0 <= (x1+x2)/2 + (x1-x2)/2 + 2 = x1 + 2 <= 3 */
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, lb, ub, &e), 0, "%s", e.msg);
    near(lb[0], 0, "CROWN lb0"), near(ub[0], 3, "CROWN ub0");
    near(lb[1], -2, "CROWN lb1"), near(ub[1], 2, "CROWN ub1");
    /* C = [1, -1]: C·y = 2 h2; IBP with C merged: [0, 4]; CROWN: x1 - x2 + 2 <= 4 */
    double C[2] = {1, -1};
    cr_assert_eq(bnd_compute(n, BND_IBP, lo, hi, C, 1, lb, ub, &e), 0);
    near(lb[0], 0, "IBP C lb"), near(ub[0], 4, "IBP C ub");
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, lb, ub, &e), 0);
    near(lb[0], 0, "CROWN C lb"), near(ub[0], 4, "CROWN C ub");
    /* one side only */
    double only = 99;
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, NULL, &only, &e), 0);
    near(only, 4, "ub only");
    bnd_net_free(n);
    nn_graph_free(g);
}

/* y = -relu(2x + 0.5), x in [-1, 1]: z in [-1.5, 2.5], u > -l so the lower
 * slope is 1: CROWN's upper bound on y is -(2x+0.5) <= 1.5, looser than
 * IBP's 0 (the adaptive slope is a heuristic); its lower bound uses
 * h <= 0.625 (z + 1.5): y >= -(1.25 x + 1.25) >= -2.5. */
Test(bound, adaptive_lower_slope_hand_computed)
{
    nn_graph *g = nn_graph_new("slope.onnx");
    int64_t d11[2] = {1, 1}, d1[1] = {1};
    double two = 2, half = 0.5, mone = -1;
    int x = tens(g, "x", 2, d11), z = tens(g, "z", 2, d11), h = tens(g, "h", 2, d11);
    int y = tens(g, "y", 2, d11);
    int w = cnst(g, "W", 2, d11, &two), b = cnst(g, "B", 1, d1, &half);
    int m = cnst(g, "M", 1, d1, &mone);
    node(g, "Gemm", "fc", 3, (int[]){x, w, b}, z);
    node(g, "Relu", "relu", 1, (int[]){z}, h);
    node(g, "Mul", "neg", 2, (int[]){h, m}, y);
    finish(g, x, y);
    bnd_net *n = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    double lo = -1, hi = 1, lb, ub;
    cr_assert_eq(bnd_compute(n, BND_IBP, &lo, &hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, -2.5, "IBP lb"), near(ub, 0, "IBP ub");
    cr_assert_eq(bnd_compute(n, BND_CROWN, &lo, &hi, NULL, 0, &lb, &ub, &e), 0);
    near(lb, -2.5, "CROWN lb"), near(ub, 1.5, "CROWN ub");
    bnd_net_free(n);
    nn_graph_free(g);
}

Test(bound, unsupported_op_names_the_node)
{
    nn_graph *g = nn_graph_new("model.onnx");
    int64_t d[2] = {1, 3};
    int x = tens(g, "x", 2, d), a = tens(g, "a", 2, d), y = tens(g, "y", 2, d);
    err e = {0};
    node(g, "Relu", "r", 1, (int[]){x}, a);
    nn_node_attr_int(g, node(g, "Cast", "x", 1, (int[]){a}, y), "to", 1, &e);
    finish(g, x, y);
    bnd_net *n = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), ERR_UNSUP);
    cr_assert_null(n);
    cr_expect(strstr(e.msg, "model.onnx: node 1 'x' (Cast): no bound rule yet") != NULL, "%s",
              e.msg);
    nn_graph_free(g);
}

Test(bound, bad_box_is_an_argument_error)
{
    nn_graph *g = classic_net();
    bnd_net *n = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(g, &n, &e), 0);
    double lo[2] = {0, 1}, hi[2] = {1, 0}, lb[2], ub[2];
    cr_expect_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, lb, ub, &e), ERR_ARG);
    cr_expect(strstr(e.msg, "X_1") != NULL, "%s", e.msg);
    double nan_lo[2] = {NAN, 0}, ok_hi[2] = {1, 1};
    cr_expect_eq(bnd_compute(n, BND_IBP, nan_lo, ok_hi, NULL, 0, lb, ub, &e), ERR_ARG);
    bnd_net_free(n);
    nn_graph_free(g);
}

/* Rounding: y = w·x with w = (2^53, 1, -2^53) at x = (1, 1, 1): exactly 1,
 * but any left-to-right double evaluation gives 0 (2^53 + 1 rounds to 2^53).
 * Both methods must contain the exact value; a naive bound [0, 0] would not. */
Test(bound, cancellation_is_covered_by_the_error_terms)
{
    nn_graph *g = nn_graph_new("cancel.onnx");
    int64_t d13[2] = {1, 3}, d31[2] = {3, 1}, d11[2] = {1, 1};
    double w[3] = {0x1p53, 1, -0x1p53};
    int x = tens(g, "x", 2, d13), y = tens(g, "y", 2, d11), h = tens(g, "h", 2, d11);
    int W = cnst(g, "W", 2, d31, w);
    node(g, "MatMul", "mm", 2, (int[]){x, W}, y);
    node(g, "Relu", "relu", 1, (int[]){y}, h);
    finish(g, x, h);
    bnd_net *n = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    double lo[3] = {1, 1, 1}, hi[3] = {1, 1, 1}, lb, ub;
    volatile double naive = w[0] * 1.0;
    naive += 1.0;
    naive += w[2];
    cr_assert_eq(naive, 0.0); /* the trap is real */
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(bnd_compute(n, m ? BND_CROWN : BND_IBP, lo, hi, NULL, 0, &lb, &ub, &e), 0);
        cr_expect(lb <= 1.0 && ub >= 1.0, "method %d: [%.17g, %.17g] misses 1", m, lb, ub);
        cr_expect(ub - lb < 64, "method %d: width %g", m, ub - lb);
    }
    bnd_net_free(n);
    nn_graph_free(g);
}

/* Random integer-weight 2-layer nets with huge cancelling weights, point and
 * tiny boxes of integer inputs: every value is an integer below 2^62, so
 * long double evaluates them exactly; our bounds must contain them. */
Test(bound, random_adversarial_nets_contain_exact_values)
{
    srand(7);
    int bad = 0, cases = 0;
    for (int it = 0; it < 200; it++) {
        int nx = 2 + rand() % 5, nh = 2 + rand() % 5;
        nn_graph *g = nn_graph_new("adv.onnx");
        int64_t dx[2] = {1, nx}, dh[2] = {1, nh}, dw1[2] = {nx, nh}, dw2[2] = {nh, 1},
                dy[2] = {1, 1};
        double W1[64], W2[8];
        for (int i = 0; i < nx * nh; i++) {
            long big = (long)1 << (40 + rand() % 12);
            W1[i] = (double)((rand() % 3 - 1) * big + (rand() % 7 - 3));
        }
        for (int i = 0; i < nh; i++)
            W2[i] = (double)((rand() % 3 - 1) * ((long)1 << 10) + rand() % 5 - 2);
        int x = tens(g, "x", 2, dx), z = tens(g, "z", 2, dh), h = tens(g, "h", 2, dh);
        int y = tens(g, "y", 2, dy);
        int w1 = cnst(g, "W1", 2, dw1, W1), w2 = cnst(g, "W2", 2, dw2, W2);
        node(g, "MatMul", "mm1", 2, (int[]){x, w1}, z);
        node(g, "Relu", "relu", 1, (int[]){z}, h);
        node(g, "MatMul", "mm2", 2, (int[]){h, w2}, y);
        finish(g, x, y);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
        double lo[8], hi[8], xs[8];
        for (int i = 0; i < nx; i++) {
            lo[i] = (double)(rand() % 3 - 1);
            hi[i] = lo[i] + (rand() % 2);
        }
        for (int s = 0; s < 8; s++) { /* corners and points of the box */
            for (int i = 0; i < nx; i++)
                xs[i] = rand() % 2 ? lo[i] : hi[i];
            long double yv = 0;
            for (int j = 0; j < nh; j++) {
                long double zj = 0;
                for (int i = 0; i < nx; i++)
                    zj += (long double)xs[i] * W1[i * nh + j];
                yv += (zj > 0 ? zj : 0) * W2[j];
            }
            for (int m = 0; m < 2; m++) {
                double lb, ub;
                cr_assert_eq(bnd_compute(n, m ? BND_CROWN : BND_IBP, lo, hi, NULL, 0, &lb, &ub,
                                         &e), 0);
                bad += !((long double)lb <= yv && yv <= (long double)ub);
                cases++;
            }
        }
        bnd_net_free(n);
        nn_graph_free(g);
    }
    cr_expect_eq(bad, 0, "%d of %d exact values outside the bounds", bad, cases);
}

/* Alpha override (the hook for alpha-CROWN, internal API): any lower slopes
 * (clipped to [0, 1]) on unstable ReLUs, per objective row, give lower bounds
 * below every sampled output. */
Test(bound, alpha_slopes_in_unit_interval_stay_sound)
{
    nn_graph *g = classic_net();
    bnd_net *n = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(g, &n, &e), 0);
    double lo[2] = {-1, -0.5}, hi[2] = {0.7, 1}, lb[2], ub[2];
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, lb, ub, &e), 0);
    int act = -1;
    for (int i = 0; i < n->n_layers; i++)
        if (n->layers[i].kind == BND_L_ACT)
            act = i;
    cr_assert(act > 0);
    srand(3);
    for (int it = 0; it < 200; it++) {
        double alpha[4], A0[4] = {1, 0, 0, 1}, v[2];
        for (int t = 0; t < 4; t++)
            alpha[t] = (double)rand() / RAND_MAX * 1.4 - 0.2; /* clipped to [0,1] */
        const double *al[16] = {0};
        al[act] = alpha;
        cr_assert_eq(bnd_backward(n, n->out, 2, A0, 0, al, v, &e), 0);
        for (int s = 0; s < 50; s++) {
            double x1 = lo[0] + (hi[0] - lo[0]) * rand() / RAND_MAX;
            double x2 = lo[1] + (hi[1] - lo[1]) * rand() / RAND_MAX;
            double h1 = fmax(x1 + x2, 0), h2 = fmax(x1 - x2, 0);
            cr_assert(v[0] <= h1 + h2 && v[1] <= h1 - h2, "alpha bound %g %g above sample", v[0],
                      v[1]);
        }
    }
    bnd_net_free(n);
    nn_graph_free(g);
}

/* core/fpstep.h steps the bit pattern; it must agree with nextafter on every
 * double: signed zeros, subnormals, DBL_MAX, infinities, NaN, random bits. */
Test(bound, fp_step_matches_nextafter)
{
    const double edge[] = {0.0, -0.0, 0x1p-1074, -0x1p-1074, 0x1p-1022, -0x1p-1022, 1.0, -1.0,
                           DBL_MAX, -DBL_MAX, INFINITY, -INFINITY, 0.1, -3e300, 5e-324};
    uint64_t r = 0x243f6a8885a308d3ull;
    for (int i = 0; i < 100000 + (int)(sizeof edge / sizeof edge[0]); i++) {
        double x;
        if (i < (int)(sizeof edge / sizeof edge[0])) {
            x = edge[i];
        } else {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            memcpy(&x, &r, sizeof x);
        }
        double u = fp_up(x), d = fp_down(x), nu = nextafter(x, INFINITY), nd = nextafter(x, -INFINITY);
        if (isnan(x)) {
            cr_assert(isnan(u) && isnan(d));
            continue;
        }
        cr_assert(memcmp(&u, &nu, sizeof u) == 0, "up(%a) = %a, nextafter %a", x, u, nu);
        cr_assert(memcmp(&d, &nd, sizeof d) == 0, "down(%a) = %a, nextafter %a", x, d, nd);
    }
}

/* The convolution kernel (im2col + dgemm, bound/linop.c) against a direct
 * sum over random geometries: strides, dilations, asymmetric-looking pads
 * (pads larger than the kernel reach included), groups, 2 rows at once;
 * forward with W and |W|, and backward as the exact adjoint. */
Test(bound, conv_kernel_matches_direct_sums)
{
    rng r;
    rng_seed(&r, 0xc0117);
    for (int trial = 0; trial < 300; trial++) {
        bnd_conv_geom g;
        g.group = rng_uniform(&r) < 0.3 ? 2 : 1;
        g.C = g.group * (1 + (int64_t)(rng_uniform(&r) * 2));
        g.M = g.group * (1 + (int64_t)(rng_uniform(&r) * 2));
        g.H = 1 + (int64_t)(rng_uniform(&r) * 6), g.W = 1 + (int64_t)(rng_uniform(&r) * 6);
        g.KH = 1 + (int64_t)(rng_uniform(&r) * 3), g.KW = 1 + (int64_t)(rng_uniform(&r) * 3);
        g.sh = 1 + (int64_t)(rng_uniform(&r) * 3), g.sw = 1 + (int64_t)(rng_uniform(&r) * 3);
        g.dh = 1 + (int64_t)(rng_uniform(&r) * 2), g.dw = 1 + (int64_t)(rng_uniform(&r) * 2);
        g.ph = (int64_t)(rng_uniform(&r) * 4), g.pw = (int64_t)(rng_uniform(&r) * 4);
        int64_t eh = (g.KH - 1) * g.dh + 1, ew = (g.KW - 1) * g.dw + 1;
        if (g.H + 2 * g.ph < eh || g.W + 2 * g.pw < ew)
            continue;
        g.OH = (g.H + 2 * g.ph - eh) / g.sh + 1, g.OW = (g.W + 2 * g.pw - ew) / g.sw + 1;
        int64_t cg = g.C / g.group, mg = g.M / g.group, ck = cg * g.KH * g.KW;
        int64_t nin = g.C * g.H * g.W, nout = g.M * g.OH * g.OW;
        double *W = malloc((size_t)(g.M * ck) * sizeof(double));
        double *x = malloc((size_t)(2 * nin) * sizeof(double)), *y = malloc((size_t)(2 * nout) * sizeof(double));
        double *a = malloc((size_t)(2 * nout) * sizeof(double)), *b = malloc((size_t)(2 * nin) * sizeof(double));
        double *ref = calloc((size_t)(2 * nout), sizeof(double)), *refa = calloc((size_t)(2 * nout), sizeof(double));
        double *refb = calloc((size_t)(2 * nin), sizeof(double));
        cr_assert(W && x && y && a && b && ref && refa && refb);
        for (int64_t i = 0; i < g.M * ck; i++)
            W[i] = rng_normal(&r);
        for (int64_t i = 0; i < 2 * nin; i++)
            x[i] = rng_normal(&r);
        for (int64_t i = 0; i < 2 * nout; i++)
            a[i] = rng_normal(&r);
        for (int rr = 0; rr < 2; rr++)
            for (int64_t m = 0; m < g.M; m++)
                for (int64_t oh = 0; oh < g.OH; oh++)
                    for (int64_t ow = 0; ow < g.OW; ow++) {
                        int64_t gi = m / mg, o = rr * nout + (m * g.OH + oh) * g.OW + ow;
                        for (int64_t c = 0; c < cg; c++)
                            for (int64_t kh = 0; kh < g.KH; kh++)
                                for (int64_t kw = 0; kw < g.KW; kw++) {
                                    int64_t ih = oh * g.sh - g.ph + kh * g.dh;
                                    int64_t iw = ow * g.sw - g.pw + kw * g.dw;
                                    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W)
                                        continue;
                                    double wv = W[(m * cg + c) * g.KH * g.KW + kh * g.KW + kw];
                                    int64_t in = rr * nin + ((gi * cg + c) * g.H + ih) * g.W + iw;
                                    ref[o] += wv * x[in];
                                    refa[o] += fabs(wv) * x[in];
                                    refb[in] += wv * a[o];
                                }
                    }
        bnd_linop *L = bnd_lin_conv_new(&g, W);
        cr_assert(L);
        for (int use_abs = 0; use_abs < 2; use_abs++) {
            bnd_lin_forward(L, use_abs, 2, x, y);
            for (int64_t i = 0; i < 2 * nout; i++) {
                double want = use_abs ? refa[i] : ref[i];
                cr_assert(fabs(y[i] - want) <= 1e-12 * (1 + fabs(want)),
                          "trial %d forward%s [%lld]: %g vs %g", trial, use_abs ? " |W|" : "",
                          (long long)i, y[i], want);
            }
        }
        for (int64_t i = 0; i < 2 * nin; i++)
            b[i] = 1.0; /* accumulate onto ones */
        bnd_lin_backward(L, 2, a, b, 1);
        for (int64_t i = 0; i < 2 * nin; i++)
            cr_assert(fabs(b[i] - 1.0 - refb[i]) <= 1e-12 * (1 + fabs(refb[i])),
                      "trial %d backward [%lld]: %g vs %g", trial, (long long)i, b[i] - 1.0, refb[i]);
        bnd_lin_free(L);
        free(W), free(x), free(y), free(a), free(b), free(ref), free(refa), free(refb);
    }
}

/* bnd_act_relax remakes only the lines of neurons whose input interval
 * changed (bit for bit) since the last call, and tau_opt.c its bnd_nl_preps:
 * after random changes to a few intervals (including 0.0 -> -0.0), every
 * line must equal a fresh relaxation's; and a net bounding a sequence of
 * boxes or split domains must give the same bounds, bit for bit, as a fresh
 * net for each. */
static nn_graph *sig_relu_net(rng *r)
{
    nn_graph *g = nn_graph_new("cache.onnx");
    int64_t dx[2] = {1, 4}, dh[2] = {1, 6}, dy[2] = {1, 2}, d1[2] = {4, 6}, d2[2] = {6, 6},
            d3[2] = {6, 2};
    double W[36];
    int x = tens(g, "x", 2, dx), z1 = tens(g, "z1", 2, dh), h1 = tens(g, "h1", 2, dh);
    int z2 = tens(g, "z2", 2, dh), h2 = tens(g, "h2", 2, dh), y = tens(g, "y", 2, dy);
    for (int i = 0; i < 36; i++)
        W[i] = 2 * rng_uniform(r) - 1;
    int w1 = cnst(g, "W1", 2, d1, W), w2 = cnst(g, "W2", 2, d2, W), w3 = cnst(g, "W3", 2, d3, W);
    node(g, "MatMul", "mm1", 2, (int[]){x, w1}, z1);
    node(g, "Sigmoid", "sig", 1, (int[]){z1}, h1);
    node(g, "MatMul", "mm2", 2, (int[]){h1, w2}, z2);
    node(g, "Relu", "relu", 1, (int[]){z2}, h2);
    node(g, "MatMul", "mm3", 2, (int[]){h2, w3}, y);
    finish(g, x, y);
    return g;
}

Test(bound, act_relax_remakes_exactly_the_changed_lines)
{
    rng r;
    rng_seed(&r, 0xca5e);
    nn_graph *g = sig_relu_net(&r);
    bnd_net *n = NULL, *f = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    double lo[4] = {-1, -1, -1, -1}, hi[4] = {1, 1, 1, 1}, lb[2], ub[2], lb2[2], ub2[2];
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, lb, ub, &e), 0);
    int checked = 0, changed = 0;
    for (int i = 0; i < n->n_layers; i++) {
        bnd_layer *L = &n->layers[i];
        if (L->kind != BND_L_ACT)
            continue;
        bnd_layer *X = &n->layers[L->in[0]];
        int64_t m = L->size;
        double lw[6], lbv[6], uw[6], ubv[6];
        for (int it = 0; it < 300; it++) {
            for (int64_t t = 0; t < m; t++) {
                double u = rng_uniform(&r);
                if (u < 0.2) { /* a new interval, often with an end at +-0 */
                    double a = rng_uniform(&r) < 0.3 ? 0.0 : 4 * rng_uniform(&r) - 2;
                    X->lo[t] = rng_uniform(&r) < 0.5 ? -a : a - 2;
                    X->hi[t] = X->lo[t] + 3 * rng_uniform(&r);
                    changed++;
                } else if (u < 0.25 && X->lo[t] == 0) {
                    X->lo[t] = -X->lo[t]; /* the other zero */
                    changed++;
                }
            }
            cr_assert_eq(bnd_act_relax(n, i, &e), 0);
            L->act->relax(L->act_param, m, X->lo, X->hi, lw, lbv, uw, ubv);
            for (int64_t t = 0; t < m; t++, checked++)
                cr_assert(!memcmp(&lw[t], &L->lw[t], 8) && !memcmp(&lbv[t], &L->lb[t], 8) &&
                              !memcmp(&uw[t], &L->uw[t], 8) && !memcmp(&ubv[t], &L->ub[t], 8),
                          "layer %d neuron %lld: kept lines differ from a fresh relaxation", i,
                          (long long)t);
        }
    }
    for (int it = 0; it < 100; it++) { /* boxes: new, nested, repeated */
        int k = (int)(rng_uniform(&r) * 3);
        for (int t = 0; t < 4; t++)
            if (k == 0 || rng_uniform(&r) < 0.5) {
                lo[t] = 2 * rng_uniform(&r) - 1;
                hi[t] = lo[t] + (k == 1 ? 0 : rng_uniform(&r));
            }
        cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, lb, ub, &e), 0);
        cr_assert_eq(bnd_net_new(g, &f, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_compute(f, BND_CROWN, lo, hi, NULL, 0, lb2, ub2, &e), 0);
        bnd_net_free(f);
        for (int q = 0; q < 2; q++)
            cr_assert(!memcmp(&lb[q], &lb2[q], 8) && !memcmp(&ub[q], &ub2[q], 8),
                      "box %d output %d: [%.17g, %.17g] reused, [%.17g, %.17g] fresh", it, q,
                      lb[q], ub[q], lb2[q], ub2[q]);
    }
    /* split domains as GenBaB bounds them, tangent rounds included (which
     * keep each neuron's bnd_nl_prep the same way): one net in sequence
     * against a fresh net per domain */
    int64_t na = bnd_act_count(n);
    double plo[12], phi[12], dlo[12], dhi[12], C[2] = {1, -1}, l1, l2;
    cr_assert(na <= 12);
    double blo[4] = {-0.5, -0.5, -0.5, -0.5}, bhi[4] = {0.5, 0.5, 0.5, 0.5};
    cr_assert(bnd_split_bound(n, blo, bhi, NULL, NULL, NULL, 0, C, 1, 2, &l1, plo, phi, NULL,
                              NULL, NULL, &e) >= 0);
    for (int it = 0; it < 60; it++) {
        memcpy(dlo, plo, sizeof plo), memcpy(dhi, phi, sizeof phi);
        int64_t j = (int64_t)(rng_uniform(&r) * (double)na);
        double p = dlo[j] + (dhi[j] - dlo[j]) * rng_uniform(&r);
        if (rng_uniform(&r) < 0.5)
            dhi[j] = p;
        else
            dlo[j] = p;
        int r1 = bnd_split_bound(n, blo, bhi, dlo, dhi, NULL, j, C, 1, 2, &l1, NULL, NULL, NULL,
                                 NULL, NULL, &e);
        cr_assert_eq(bnd_net_new(g, &f, &e), 0, "%s", e.msg);
        int r2 = bnd_split_bound(f, blo, bhi, dlo, dhi, NULL, j, C, 1, 2, &l2, NULL, NULL, NULL,
                                 NULL, NULL, &e);
        bnd_net_free(f);
        cr_assert(r1 == r2 && !memcmp(&l1, &l2, 8), "domain %d: %d %.17g reused, %d %.17g fresh",
                  it, r1, l1, r2, l2);
    }
    cr_log_info("act relax cache: %d lines checked after %d interval changes", checked, changed);
    bnd_net_free(n);
    nn_graph_free(g);
}
