/* test_stress.c: the fast slice of the soundness stress test (stress_gen.h):
 * random networks over every op bound/ lowers, random boxes (narrow, wide,
 * degenerate, far from 0, width 1e-12, dyadic) and weight regimes (normal,
 * dyadic, 1e8 with cancellation, 1e-8, mixed); IBP and CROWN bounds must
 * contain every sampled output, and bab_verify must agree with dense sampling
 * on tiny networks. `make stress N=...` runs the same checks at scale. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "stress_gen.h"

Test(stress, bounds_contain_samples_on_random_networks, .timeout = 60)
{
    sg_opts o = {.max_ops = 8, .max_elems = 48, .max_in = 12, .max_out = 6, .numerics = -1};
    sg_stats st = {0};
    int gen_fail = 0;
    for (uint64_t seed = 1; seed <= 500; seed++) {
        sg_stats one = {0};
        int rc = sg_check_case(seed, &o, 1000, &one, stderr);
        gen_fail += rc != 0;
        sg_stats_add(&st, &one);
    }
    cr_log_info("stress slice: ");
    sg_stats_print(stderr, &st);
    cr_expect_eq(gen_fail, 0, "generator / lowering / eval errors: %d", gen_fail);
    cr_expect_gt(st.cases, 400, "too few cases lowered: %lld", (long long)st.cases);
    cr_expect_eq(st.violations, 0, "bound violations: %lld", (long long)st.violations);
}

/* The same with smooth nonlinearities and products of computed tensors
 * mixed in (one op in 3: Sigmoid, Tanh, Sin, Cos, Erf, Softplus, Gelu,
 * LeakyRelu, Abs, Exp, Log, Sqrt, Reciprocal, Pow, Mul/Div of two tensors,
 * Softmax); MaxPool and Clip join the plain networks' ops. */
Test(stress, bounds_contain_samples_on_random_smooth_networks, .timeout = 60)
{
    sg_opts o = {.max_ops = 8, .max_elems = 48, .max_in = 12, .max_out = 6, .numerics = -1,
                 .smooth = 1};
    sg_stats st = {0};
    int gen_fail = 0;
    for (uint64_t seed = 1; seed <= 500; seed++)
        gen_fail += sg_check_case(seed, &o, 1000, &st, stderr) != 0;
    sg_stats_print(stderr, &st);
    cr_expect_eq(gen_fail, 0, "generator / lowering / eval errors: %d", gen_fail);
    cr_expect_gt(st.cases, 400, "too few cases lowered: %lld", (long long)st.cases);
    cr_expect_eq(st.violations, 0, "bound violations: %lld", (long long)st.violations);
}

/* Rounding-level soundness: f(x) exact in 128-bit integers (stress_gen.c);
 * sensitive enough that nn_eval's own round-to-nearest outputs used as
 * bounds fail it (SG_EXACT_SELFTEST=1 in scripts/stress.c). */
Test(stress, bounds_contain_exact_values_at_rounding_level, .timeout = 60)
{
    sg_stats st = {0};
    for (uint64_t seed = 1; seed <= 400; seed++)
        cr_expect_eq(sg_check_exact(seed, &st, stderr), 0);
    sg_stats_print(stderr, &st);
    cr_expect_eq(st.exact_cases, 400);
    cr_expect_eq(st.violations, 0, "bound violations: %lld", (long long)st.violations);
}

Test(stress, bab_agrees_with_dense_sampling_on_tiny_networks, .timeout = 60)
{
    sg_stats st = {0};
    for (uint64_t seed = 1; seed <= 100; seed++) {
        sg_stats one = {0};
        sg_check_bab(seed, 500, &one, stderr);
        sg_stats_add(&st, &one);
    }
    sg_stats_print(stderr, &st);
    cr_expect_gt(st.bab_cases, 80);
    cr_expect_eq(st.bab_wrong, 0, "wrong BaB answers: %lld", (long long)st.bab_wrong);
}

/* GenBaB on smooth networks: never a proof of a clause a sampled point
 * satisfies; and it does prove some of the clauses below the sampled minimum
 * (else the check could not fail for the right reason). */
Test(stress, genbab_never_proves_a_sampled_counterexample, .timeout = 120)
{
    sg_stats st = {0};
    int fail = 0;
    for (uint64_t seed = 1; seed <= 120; seed++)
        fail += sg_check_genbab(seed, 300, 0.05, seed % 4 == 0, &st, stderr) != 0;
    sg_stats_print(stderr, &st);
    cr_expect_eq(fail, 0, "generator / GenBaB errors: %d", fail);
    cr_expect_gt(st.bab_sat, 80, "false clauses checked: %lld", (long long)st.bab_sat);
    cr_expect_gt(st.bab_unsat, 20, "true clauses proven: %lld", (long long)st.bab_unsat);
    cr_expect_eq(st.bab_wrong, 0, "false clauses proven: %lld", (long long)st.bab_wrong);
}

/* ---- minimised reproducers of bugs the stress run found in bound/ ----
 * (all fixed since). Point boxes (lo = hi = x), so the sound answer
 * is lb <= f(x) <= ub with f(x) computed by nn_eval. */

#include <math.h>
#include <string.h>

#include "../bound/bound.h"

static void point_bounds_contain_eval(nn_graph *g, const double *x)
{
    err e = {0};
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    double y[16], lb[16], ub[16];
    int64_t ny = nn_output_size(g);
    cr_assert(ny <= 16);
    cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
    bnd_net *n = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(bnd_compute(n, m ? BND_CROWN : BND_IBP, x, x, NULL, 0, lb, ub, &e), 0, "%s",
                     e.msg);
        for (int64_t j = 0; j < ny; j++)
            cr_expect(lb[j] <= y[j] && y[j] <= ub[j], "%s: output %lld = %.17g outside [%.17g, %.17g]",
                      m ? "CROWN" : "IBP", (long long)j, y[j], lb[j], ub[j]);
    }
    bnd_net_free(n);
    nn_graph_free(g);
}

static int tensor(nn_graph *g, const char *name, int rank, const int64_t *d, const double *v)
{
    err e = {0};
    int t = nn_graph_tensor(g, name, &e);
    cr_assert(t >= 0);
    cr_assert_eq(nn_tensor_set_shape(g, t, rank, d, &e), 0);
    if (v) {
        int64_t n = 1;
        for (int i = 0; i < rank; i++)
            n *= d[i];
        cr_assert_eq(nn_tensor_set_float(g, t, v, n, &e), 0);
    }
    return t;
}

/* Was a bug (stress seed 61 and others; fixed in 8b7d222): BatchNormalization
 * without an epsilon attribute. ONNX's default is the float32 1e-5f, which
 * models/ops_linear.c uses; bound/elementwise.c used the double 1e-5, so the
 * bounds were of a different network. With var = 0 the scale 1/sqrt(eps)
 * differs by 1.3e-9 relative. */
Test(stress, regression_batchnorm_default_epsilon)
{
    err e = {0};
    nn_graph *g = nn_graph_new("bn.onnx");
    g->opset = 13;
    int64_t d[2] = {1, 1}, c = 1;
    double one = 1, zero = 0;
    int in[5] = {tensor(g, "x", 2, d, NULL), tensor(g, "gamma", 1, &c, &one),
                 tensor(g, "beta", 1, &c, &zero), tensor(g, "mean", 1, &c, &zero),
                 tensor(g, "var", 1, &c, &zero)};
    cr_assert_eq(nn_graph_add_input(g, in[0], &e), 0);
    int y = nn_graph_tensor(g, "y", &e);
    cr_assert(nn_graph_add_node(g, "BatchNormalization", "bn", 5, in, 1, &y, &e) >= 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    double x = 1;
    point_bounds_contain_eval(g, &x);
}

/* Was a bug (stress seeds 1041, 1503; fixed in 8b7d222): AveragePool with
 * count_include_pad=1 and asymmetric pads. bound/conv.c kept only the begin
 * pads and counted taps inside [-pad_begin, H + pad_begin) instead of
 * [-pad_begin, H + pad_end). Here x = 1..5, kernel 3, pads (0, 1): the last
 * window is (4 + 5 + 0) / 3 = 3; bound/ divided by 2 and gave 4.5. */
Test(stress, regression_avgpool_count_include_pad_asymmetric)
{
    err e = {0};
    nn_graph *g = nn_graph_new("pool.onnx");
    g->opset = 13;
    int64_t d[3] = {1, 1, 5}, ks = 3, st = 1, pads[2] = {0, 1};
    int x = tensor(g, "x", 3, d, NULL);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    int y = nn_graph_tensor(g, "y", &e);
    int k = nn_graph_add_node(g, "AveragePool", "pool", 1, &x, 1, &y, &e);
    cr_assert(k >= 0);
    nn_node_attr_ints(g, k, "kernel_shape", &ks, 1, &e);
    nn_node_attr_ints(g, k, "strides", &st, 1, &e);
    nn_node_attr_ints(g, k, "pads", pads, 2, &e);
    nn_node_attr_int(g, k, "count_include_pad", 1, &e);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    double xv[5] = {1, 2, 3, 4, 5};
    point_bounds_contain_eval(g, xv);
}

/* Was a bug (stress; fixed in 8b7d222): AveragePool's dilations attribute
 * (opset 19) was read by bound/conv.c but not used: taps at oh*sh - ph + kh
 * instead of oh*sh - ph + kh*dh. x = 1..5, kernel 2, dilation 2: the first
 * window is (1 + 3) / 2 = 2; bound/ gave (1 + 2) / 2 = 1.5. */
Test(stress, regression_avgpool_dilations)
{
    err e = {0};
    nn_graph *g = nn_graph_new("pool.onnx");
    g->opset = 19;
    int64_t d[3] = {1, 1, 5}, ks = 2, dl = 2;
    int x = tensor(g, "x", 3, d, NULL);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    int y = nn_graph_tensor(g, "y", &e);
    int k = nn_graph_add_node(g, "AveragePool", "pool", 1, &x, 1, &y, &e);
    cr_assert(k >= 0);
    nn_node_attr_ints(g, k, "kernel_shape", &ks, 1, &e);
    nn_node_attr_ints(g, k, "dilations", &dl, 1, &e);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    double xv[5] = {1, 2, 3, 4, 5};
    point_bounds_contain_eval(g, xv);
}

/* Was a bug of models/ops_pool.c (the evaluation, found by the stress run):
 * AveragePool with count_include_pad=1 and dilations divided by the span of
 * the window instead of the number of taps. x = (1), kernel 2, dilation 2,
 * pads (0, 2): one window, taps at 0 and 2 (a pad), so y = (1 + 0) / 2 = 0.5,
 * not 1/3. */
Test(stress, regression_avgpool_dilated_count_include_pad)
{
    err e = {0};
    nn_graph *g = nn_graph_new("pool.onnx");
    g->opset = 19;
    int64_t d[3] = {1, 1, 1}, ks = 2, dl = 2, pads[2] = {0, 2};
    int x = tensor(g, "x", 3, d, NULL);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    int y = nn_graph_tensor(g, "y", &e);
    int k = nn_graph_add_node(g, "AveragePool", "pool", 1, &x, 1, &y, &e);
    cr_assert(k >= 0);
    nn_node_attr_ints(g, k, "kernel_shape", &ks, 1, &e);
    nn_node_attr_ints(g, k, "dilations", &dl, 1, &e);
    nn_node_attr_ints(g, k, "pads", pads, 2, &e);
    nn_node_attr_int(g, k, "count_include_pad", 1, &e);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    double xv = 1, yv[1];
    cr_assert_eq(nn_output_size(g), 1);
    cr_assert_eq(nn_eval(g, &xv, yv, &e), 0);
    cr_expect_eq(yv[0], 0.5, "the window: %.17g", yv[0]);
    nn_graph_free(g);
}

/* FIXED (was: stress seeds 4009299, 4018107 and others):
 * bound/conv.c:134 lowers a Conv whose kernel covers the whole input
 * (group 1, one output position, no begin pads) as a dense layer, but the
 * test ignores dilations: with kernel 2, dilation 2 on an input of width 2
 * and pads (0, 1) the taps are x0 and a pad, y = w0·x0 = 1, while the dense
 * layer computes w0·x0 + w1·x1 = 1 + 11·2 = 23. Fix: add
 * `w.dh == 1 && w.dw == 1` to the condition (commit 68648c5 introduced it). */
Test(stress, fixed_conv_whole_input_kernel_dilated)
{
    err e = {0};
    nn_graph *g = nn_graph_new("conv.onnx");
    g->opset = 13;
    int64_t d[3] = {1, 1, 2}, wd[3] = {1, 1, 2}, dl = 2, pads[2] = {0, 1};
    double w[2] = {1, 11};
    int in[2] = {tensor(g, "x", 3, d, NULL), tensor(g, "w", 3, wd, w)};
    cr_assert_eq(nn_graph_add_input(g, in[0], &e), 0);
    int y = nn_graph_tensor(g, "y", &e);
    int k = nn_graph_add_node(g, "Conv", "conv", 2, in, 1, &y, &e);
    cr_assert(k >= 0);
    nn_node_attr_ints(g, k, "dilations", &dl, 1, &e);
    nn_node_attr_ints(g, k, "pads", pads, 2, &e);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    double xv[2] = {1, 2};
    point_bounds_contain_eval(g, xv);
}

/* FIXED (was: stress seed 5072101, a crash): a LINEAR layer whose
 * two inputs are the same layer (a residual x + x, written Add(h, h)) makes
 * bound/lp.c build() (the row loop near line 163) emit the same column twice
 * in one row; glp_set_mat_row (add_row, line 77) rejects duplicate indices
 * by calling abort(), so bab_verify kills the whole process when ReLU BaB
 * reaches a leaf LP. Fix: accumulate the coefficients of equal columns (or of
 * inputs j, j' with L->in[j] == L->in[j']) before add_row. The exact answer
 * is sat: x = (1, 0.5) gives y0 = relu(2.5) - relu(0) = 2.5. */
#include "../bab/bab.h"

Test(stress, fixed_lp_duplicate_columns_abort, .timeout = 30)
{
    err e = {0};
    nn_graph *g = nn_graph_new("dup.onnx");
    g->opset = 13;
    int64_t d[2] = {1, 2}, wd[2] = {2, 2};
    double W[4] = {1, -1, 0.5, 2}, W2[4] = {1, -1, -1, 1};
    int x = tensor(g, "x", 2, d, NULL), w = tensor(g, "W", 2, wd, W), w2 = tensor(g, "W2", 2, wd, W2);
    int h = nn_graph_tensor(g, "h", &e), s = nn_graph_tensor(g, "s", &e);
    int r = nn_graph_tensor(g, "r", &e), y = nn_graph_tensor(g, "y", &e);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert(nn_graph_add_node(g, "MatMul", "", 2, (int[]){x, w}, 1, &h, &e) >= 0);
    cr_assert(nn_graph_add_node(g, "Add", "", 2, (int[]){h, h}, 1, &s, &e) >= 0);
    cr_assert(nn_graph_add_node(g, "Relu", "", 1, &s, 1, &r, &e) >= 0);
    cr_assert(nn_graph_add_node(g, "MatMul", "", 2, (int[]){r, w2}, 1, &y, &e) >= 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    spec_property *p = NULL;
    cr_assert_eq(spec_parse_vnnlib_string("dup.vnnlib",
                                          "(declare-const X_0 Real)(declare-const X_1 Real)"
                                          "(declare-const Y_0 Real)(declare-const Y_1 Real)"
                                          "(assert (>= X_0 -1))(assert (<= X_0 1))"
                                          "(assert (>= X_1 -1))(assert (<= X_1 1))"
                                          "(assert (>= Y_0 2.5))",
                                          &p, &e),
                 0, "%s", e.msg);
    bab_opts o;
    bab_opts_default(&o);
    o.timeout = 5;
    o.strategy = BAB_STRATEGY_RELU;
    bab_result res = {0};
    cr_expect_eq(bab_verify(g, p, &o, &res, &e), 0, "%s", e.msg);
    cr_expect_neq(res.answer, BAB_UNSAT, "unsat, but x = (1, 0.5) reaches y0 = 2.5");
    bab_result_free(&res);
    spec_free(p);
    nn_graph_free(g);
}

/* Was a bug (stress with smooth ops, seed 9000920 and ~7800 others in 2000
 * cases): a nonlinearity fed directly by another (Sin -> Relu). CROWN refines
 * each pre-activation layer before the nonlinearity after it is relaxed; when
 * that layer was itself an ACT (Sin), its own lines did not exist yet and
 * stale memory was used. On [-7.53, 6.80] x [0.40, 2.26], relu(sin(x0)) reaches
 * 0.864 at x0 = 2.098; CROWN gave the upper bound 0.5. Fix: an identity
 * LINEAR layer between two ACTs (bound/net.c, bnd_add_act_layer). */
Test(stress, regression_act_after_act_crown)
{
    static const char *const first[] = {"Sin", "Tanh", "Sigmoid", "Cos", "Erf"};
    for (int f = 0; f < 5; f++) {
        err e = {0};
        nn_graph *g = nn_graph_new("actact.onnx");
        g->opset = 13;
        int64_t d[2] = {1, 2};
        int x = tensor(g, "x", 2, d, NULL), s = nn_graph_tensor(g, "s", &e),
            y = nn_graph_tensor(g, "y", &e);
        cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
        cr_assert(nn_graph_add_node(g, first[f], "f", 1, &x, 1, &s, &e) >= 0);
        cr_assert(nn_graph_add_node(g, "Relu", "r", 1, &s, 1, &y, &e) >= 0);
        cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
        cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
        bnd_net *net = NULL;
        cr_assert_eq(bnd_net_new(g, &net, &e), 0, "%s", e.msg);
        double lo[2] = {-7.5335431566140398, 0.40046075924109292},
               hi[2] = {6.7984194877826072, 2.2597232759409462}, lb[2], ub[2], yv[2];
        cr_assert_eq(bnd_compute(net, BND_CROWN, lo, hi, NULL, 2, lb, ub, &e), 0, "%s", e.msg);
        for (int t = 0; t <= 1000; t++) {
            double xv[2] = {lo[0] + (hi[0] - lo[0]) * t / 1000, lo[1] + (hi[1] - lo[1]) * t / 1000};
            cr_assert_eq(nn_eval(g, xv, yv, &e), 0);
            for (int j = 0; j < 2; j++)
                cr_assert(yv[j] >= lb[j] && yv[j] <= ub[j], "%s -> Relu: y%d = %.17g outside [%.17g, %.17g]",
                          first[f], j, yv[j], lb[j], ub[j]);
        }
        bnd_net_free(net);
        nn_graph_free(g);
    }
}
