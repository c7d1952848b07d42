/* test_lp.c: the GLPK LP/MILP of bound/lp.c: the safe dual bound is below
 * the LP optimum and close to it, every sampled output stays above it, the
 * MILP optimum is attained by its own minimiser and lies between the LP
 * optimum and every sample. */
#include "relu_mlp.h"

#include "../bound/bound.h"
#include "../core/clock.h"

Test(lp, safe_bound_is_below_the_lp_optimum_and_sound)
{
    rng r;
    rng_seed(&r, 21);
    for (int c = 0; c < 40; c++) {
        int n_in = 2 + c % 3;
        mlp m = mlp_random(&r, n_in, 1 + c % 3, 8, 2);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        double lo[4], hi[4], C[2] = {1, -1}, lb, v, safe, vm, x[4];
        for (int i = 0; i < n_in; i++) {
            double mid = rng_normal(&r), w = 0.1 + rng_uniform(&r);
            lo[i] = mid - w, hi[i] = mid + w;
        }
        cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb, NULL, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_lp_min(n, NULL, 0, C, 0, &v, &safe, NULL, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_lp_min(n, NULL, 0, C, 1, &vm, NULL, x, &e), 0, "%s", e.msg);
        cr_assert(safe <= v, "case %d: safe %.17g above the LP optimum %.17g", c, safe, v);
        cr_assert(safe >= v - 1e-6 * (1 + fabs(v)), "case %d: safe %.17g far below %.17g", c, safe, v);
        cr_assert(lb <= v + 1e-9 * (1 + fabs(v)), "case %d: CROWN %.17g above the LP %.17g", c, lb, v);
        cr_assert(vm >= v - 1e-9 * (1 + fabs(v)), "case %d: MILP %.17g below the LP %.17g", c, vm, v);
        double y[2], pre[64];
        mlp_eval(&m, x, y, pre);
        cr_assert(fabs(y[0] - y[1] - vm) <= 1e-6 * (1 + fabs(vm)));
        for (int t = 0; t < 2000; t++) {
            double xs[4];
            for (int i = 0; i < n_in; i++)
                xs[i] = lo[i] + (hi[i] - lo[i]) * rng_uniform(&r);
            mlp_eval(&m, xs, y, pre);
            cr_assert(y[0] - y[1] >= safe, "case %d: sample below the safe bound", c);
            cr_assert(y[0] - y[1] >= vm - 1e-9 * (1 + fabs(vm)), "case %d: sample below the MILP", c);
        }
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
}

Test(lp, safe_bound_with_a_split_is_sound)
{
    /* with a split the LP shrinks; the safe bound stays sound on the points
     * meeting it */
    rng r;
    rng_seed(&r, 5);
    mlp m = mlp_random(&r, 2, 2, 6, 2);
    bnd_net *n = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
    double lo[2] = {-1, -1}, hi[2] = {1, 1}, C[2] = {1, -1}, plo[12], phi[12], lb, v, safe;
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb, NULL, &e), 0);
    bnd_relu_bounds(n, plo, phi);
    int j = -1;
    for (int q = 0; q < 6 && j < 0; q++)
        if (plo[q] < 0 && phi[q] > 0)
            j = q;
    cr_assert(j >= 0);
    bnd_split s = {j, 1};
    bnd_domain dom = {lo, hi, plo, phi, &s, 1, 0, 5, 0};
    bnd_beta_opts o = {.iters = 10, .lr = 0.05};
    bnd_beta_out out = {.lb = &lb};
    cr_assert_eq(bnd_beta_bound(n, &dom, C, 1, &o, &out, &e), 0);
    cr_assert_eq(bnd_lp_min(n, &s, 1, C, 0, &v, &safe, NULL, &e), 0, "%s", e.msg);
    cr_assert(safe <= v && lb <= v + 1e-9);
    for (int t = 0; t < 5000; t++) {
        double x[2] = {-1 + 2 * rng_uniform(&r), -1 + 2 * rng_uniform(&r)}, y[2], pre[12];
        mlp_eval(&m, x, y, pre);
        if (pre[j] >= 0)
            cr_assert(y[0] - y[1] >= safe);
    }
    bnd_net_free(n);
    nn_graph_free(m.g);
}

Test(lp, a_passed_deadline_stops_crown_and_the_lp_with_err_timeout)
{
    /* --timeout inside a bound computation: once the net's deadline has
     * passed, CROWN, the beta pass and the LP return ERR_TIMEOUT (no bound);
     * a deadline in the future changes nothing */
    rng r;
    rng_seed(&r, 8);
    mlp m = mlp_random(&r, 3, 2, 8, 2);
    bnd_net *n = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
    double lo[3] = {-1, -1, -1}, hi[3] = {1, 1, 1}, C[2] = {1, -1}, lb, lb2, v, safe;
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb, NULL, &e), 0, "%s", e.msg);
    bnd_set_deadline(n, clock_now() - 1);
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb2, NULL, &e), ERR_TIMEOUT);
    cr_assert(strstr(e.msg, "time limit") != NULL, "%s", e.msg);
    cr_assert_eq(bnd_lp_min(n, NULL, 0, C, 0, &v, &safe, NULL, &e), ERR_TIMEOUT);
    bnd_domain dom = {lo, hi, NULL, NULL, NULL, 0, 0, 0, 0};
    bnd_beta_opts bo = {.iters = 5};
    bnd_beta_out out = {.lb = &lb2};
    cr_assert_eq(bnd_beta_bound(n, &dom, C, 1, &bo, &out, &e), ERR_TIMEOUT);
    bnd_set_deadline(n, clock_now() + 1e6);
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb2, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(lb2, lb);
    cr_assert_eq(bnd_lp_min(n, NULL, 0, C, 0, &v, &safe, NULL, &e), 0, "%s", e.msg);
    bnd_net_free(n);
    nn_graph_free(m.g);
}
