/* Tests of alpha-CROWN for smooth activations (bound/tau_opt.c): optimised
 * per-row tangent points give bounds that hold on sampled points, are never
 * looser than the default lines' in the final pass, and do improve. */
#define GB_SEED 0x9e3779b97f4a7c15ull
#include "graph_build.h"

/* x (1x3) -> Gemm 3x8 -> a1 -> Gemm 8x7 -> a2 -> Gemm 7x2 */
static nn_graph *smooth_net(const char *a1, const char *a2)
{
    nn_graph *g = nn_graph_new("tau");
    err e = {0};
    int x = T(g, "x");
    int64_t dx[2] = {1, 3};
    cr_assert_eq(nn_tensor_set_shape(g, x, 2, dx, &e), 0);
    int h = dense(g, x, 3, 8, "fc1");
    h = N(g, a1, 1, (int[]){h}, "h1");
    h = dense(g, h, 8, 7, "fc2");
    h = N(g, a2, 1, (int[]){h}, "h2");
    int y = dense(g, h, 7, 2, "fc3");
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    return g;
}

typedef struct {
    long samples, outside, rows, looser, better;
} tau_tally;

/* Three random rows over one random box: default lines (lb0), optimised
 * final pass (lb1), optimised intermediate bounds too (lb2); every sampled
 * point must satisfy C y >= lb1, lb2. */
static void check_case(const nn_graph *g, const char *a1, const char *a2, tau_tally *t)
{
    err e = {0};
    bnd_net *n = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    double lo[3], hi[3], C[6], lb0[3], lb1[3], lb2[3], x[3], y[2];
    double wide = unif() < 0.3 ? 3.0 : 0.6;
    for (int i = 0; i < 3; i++) {
        double c = 2 * unif() - 1, r = wide * unif() + 1e-6;
        lo[i] = c - r, hi[i] = c + r;
    }
    for (int i = 0; i < 6; i++)
        C[i] = 2 * unif() - 1;
    cr_assert_eq(bnd_split_bound(n, lo, hi, NULL, NULL, NULL, 0, C, 3, 0, lb0, NULL, NULL, NULL,
                                 NULL, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_split_bound(n, lo, hi, NULL, NULL, NULL, 0, C, 3, 10, lb1, NULL, NULL, NULL,
                                 NULL, NULL, &e), 0, "%s", e.msg);
    /* thresholds every row already exceeds: no rounds, the default lines' bound */
    double lbs[3], low[3] = {-INFINITY, -INFINITY, -INFINITY};
    bnd_set_tau_stop(n, low);
    cr_assert_eq(bnd_split_bound(n, lo, hi, NULL, NULL, NULL, 0, C, 3, 10, lbs, NULL, NULL, NULL,
                                 NULL, NULL, &e), 0, "%s", e.msg);
    bnd_set_tau_stop(n, NULL);
    for (int q = 0; q < 3; q++)
        cr_assert_eq(lbs[q], lb0[q], "row %d: %.17g with the stop, %.17g without rounds", q,
                     lbs[q], lb0[q]);
    bnd_set_tau_interm(n, 10);
    cr_assert_eq(bnd_split_bound(n, lo, hi, NULL, NULL, NULL, 0, C, 3, 10, lb2, NULL, NULL, NULL,
                                 NULL, NULL, &e), 0, "%s", e.msg);
    for (int q = 0; q < 3; q++) {
        t->rows++;
        t->looser += lb1[q] < lb0[q];
        t->better += lb2[q] > lb0[q] + 1e-9 * (1 + fabs(lb0[q]));
    }
    for (int s = 0; s < 400; s++) {
        int corner = s % 8 == 0;
        for (int i = 0; i < 3; i++) {
            double r = unif();
            x[i] = corner ? (r < 0.5 ? lo[i] : hi[i]) : fmin(hi[i], lo[i] + r * (hi[i] - lo[i]));
        }
        cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
        for (int q = 0; q < 3; q++) {
            double cy = C[2 * q] * y[0] + C[2 * q + 1] * y[1];
            double tol = 1e-10 * (1 + fabs(cy));
            if (lb1[q] > cy + tol || lb2[q] > cy + tol) {
                t->outside++;
                cr_log_error("%s/%s row %d: y %.17g lb1 %.17g lb2 %.17g", a1, a2, q, cy, lb1[q],
                             lb2[q]);
            }
        }
        t->samples++;
    }
    bnd_net_free(n);
}

Test(tau_opt, optimised_tangents_are_sound_never_looser_and_help, .timeout = 60)
{
    static const char *ops[][2] = {{"Sigmoid", "Sigmoid"}, {"Tanh", "Tanh"}, {"Sin", "Sin"},
                                   {"Gelu", "Gelu"},       {"Sigmoid", "Relu"}, {"Relu", "Tanh"},
                                   {"Softplus", "Erf"},   {"Exp", "Sigmoid"}};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        tau_tally t = {0};
        for (int c = 0; c < 40; c++) {
            nn_graph *g = smooth_net(ops[o][0], ops[o][1]);
            check_case(g, ops[o][0], ops[o][1], &t);
            nn_graph_free(g);
        }
        cr_log_info("%s/%s: %ld samples, %ld rows, %ld improved", ops[o][0], ops[o][1],
                    t.samples, t.rows, t.better);
        cr_expect_eq(t.outside, 0, "%s/%s: %ld sampled points below the bound", ops[o][0],
                     ops[o][1], t.outside);
        cr_expect_eq(t.looser, 0, "%s/%s: optimised final pass looser than the default",
                     ops[o][0], ops[o][1]);
        /* the optimisation must actually move the bound on most rows */
        cr_expect_gt(t.better, t.rows / 2, "%s/%s: improved only %ld of %ld rows", ops[o][0],
                     ops[o][1], t.better, t.rows);
    }
}
