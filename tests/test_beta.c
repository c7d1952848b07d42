/* test_beta.c: beta-CROWN over ReLU-split domains: sound under sampling with
 * random split sets (only points meeting the splits count), never above the
 * LP optimum of the same relaxation, and empty domains detected. */
#include "relu_mlp.h"

#include "../bound/bound.h"

/* Root CROWN bounds of y0 - y1 and the pre-activation bounds. */
static void root_bounds(bnd_net *n, const double *lo, const double *hi, double *plo, double *phi)
{
    err e = {0};
    double C[2] = {1, -1}, lb;
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb, NULL, &e), 0, "%s", e.msg);
    bnd_relu_bounds(n, plo, phi);
}

/* Up to ns random splits among the root-unstable neurons. */
static int random_splits(rng *r, int64_t nr, const double *plo, const double *phi, int ns,
                         bnd_split *s)
{
    int got = 0;
    for (int tries = 0; tries < 200 && got < ns; tries++) {
        int64_t j = (int64_t)(rng_uniform(r) * (double)nr);
        int dup = 0;
        for (int q = 0; q < got; q++)
            dup |= s[q].neuron == j;
        if (dup || !(plo[j] < 0 && phi[j] > 0))
            continue;
        s[got].neuron = j;
        s[got++].side = rng_uniform(r) < 0.5 ? 1 : -1;
    }
    return got;
}

Test(beta, sound_under_sampling_with_random_splits)
{
    rng r;
    rng_seed(&r, 4);
    int checked = 0, improved = 0;
    for (int c = 0; c < 60; c++) {
        mlp m = mlp_random(&r, 3, 2 + c % 2, 8, 2);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        int64_t nr = bnd_relu_count(n);
        cr_assert_eq(nr, 8 * m.n_hidden);
        double lo[3], hi[3], plo[32], phi[32], qlo[32], qhi[32];
        for (int i = 0; i < 3; i++) {
            double mid = rng_normal(&r), w = 0.2 + rng_uniform(&r);
            lo[i] = mid - w, hi[i] = mid + w;
        }
        root_bounds(n, lo, hi, plo, phi);
        bnd_split s[6];
        int ns = random_splits(&r, nr, plo, phi, 1 + c % 5, s);
        double C[2] = {1, -1}, lb0, lb, beta[6] = {0};
        bnd_domain dom = {lo, hi, plo, phi, s, ns, c % 3 == 0 ? 0 : 1 << 30, c % 4 == 0 ? 10 : 0, 0};
        bnd_beta_opts o = {.iters = 0, .lr = 0.05};
        bnd_beta_out out0 = {.lb = &lb0};
        int rc0 = bnd_beta_bound(n, &dom, C, 1, &o, &out0, &e);
        o.iters = 30;
        o.alpha = c % 2, o.alpha_lr = 0.1; /* joint alpha on every other case */
        bnd_beta_out out = {.lb = &lb, .beta = beta, .plo = qlo, .phi = qhi};
        int rc = bnd_beta_bound(n, &dom, C, 1, &o, &out, &e);
        cr_assert(rc >= 0 && rc0 >= 0, "%s", e.msg);
        cr_assert(lb >= lb0, "the best iterate is kept: %g < %g", lb, lb0);
        improved += lb > lb0 + 1e-9;
        for (int q = 0; q < ns; q++)
            cr_assert(beta[q] >= 0);
        for (int t = 0; t < 3000; t++) {
            double x[3], y[2], pre[32];
            for (int i = 0; i < 3; i++)
                x[i] = lo[i] + (hi[i] - lo[i]) * rng_uniform(&r);
            mlp_eval(&m, x, y, pre);
            int meets = 1;
            for (int q = 0; q < ns; q++)
                meets &= s[q].side > 0 ? pre[s[q].neuron] >= 0 : pre[s[q].neuron] <= 0;
            if (!meets)
                continue;
            cr_assert(rc == 0, "a point meets splits declared contradictory");
            checked++;
            cr_assert(y[0] - y[1] >= lb, "case %d: %.17g < lb %.17g", c, y[0] - y[1], lb);
            for (int64_t j = 0; j < nr; j++)
                cr_assert(pre[j] >= qlo[j] && pre[j] <= qhi[j], "case %d: neuron %lld outside",
                          c, (long long)j);
        }
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
    cr_assert(checked > 10000, "only %d sampled points met their splits", checked);
    cr_assert(improved >= 5, "beta improved the bound in only %d cases", improved);
}

Test(beta, never_above_the_lp_optimum_of_the_same_relaxation)
{
    rng r;
    rng_seed(&r, 9);
    for (int c = 0; c < 40; c++) {
        mlp m = mlp_random(&r, 3, 2, 6, 2);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        double lo[3] = {-1, -1, -1}, hi[3] = {1, 1, 1}, plo[12], phi[12];
        root_bounds(n, lo, hi, plo, phi);
        bnd_split s[4];
        int ns = random_splits(&r, 12, plo, phi, 3, s);
        double C[2] = {1, -1}, lb, beta[4] = {0};
        bnd_domain dom = {lo, hi, plo, phi, s, ns, 1 << 30, 0, 0};
        bnd_beta_opts o = {.iters = 50, .lr = 0.05, .alpha = c % 2, .alpha_lr = 0.1};
        bnd_beta_out out = {.lb = &lb, .beta = beta};
        int rc = bnd_beta_bound(n, &dom, C, 1, &o, &out, &e);
        cr_assert(rc >= 0, "%s", e.msg);
        /* the net now holds the domain's bounds: the LP of the same relaxation */
        double v, safe;
        if (rc == 0)
            rc = bnd_lp_min(n, s, ns, C, 0, &v, &safe, NULL, &e);
        else
            rc = 1;
        cr_assert(rc >= 0, "%s", e.msg);
        if (rc == 0)
            cr_assert(lb <= v + 1e-7 * (1 + fabs(v)), "case %d: beta %.17g above LP %.17g", c, lb, v);
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
}

Test(beta, contradictory_split_is_an_empty_domain)
{
    rng r;
    rng_seed(&r, 2);
    mlp m = mlp_random(&r, 2, 1, 4, 2);
    bnd_net *n = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
    double lo[2] = {-1, -1}, hi[2] = {1, 1}, plo[4], phi[4];
    root_bounds(n, lo, hi, plo, phi);
    /* force a neuron's parent bounds to be stably positive, then split it off */
    plo[0] = 0.5, phi[0] = fmax(phi[0], 1.0);
    bnd_split s = {0, -1};
    double C[2] = {1, -1}, lb;
    bnd_domain dom = {lo, hi, plo, phi, &s, 1, 1 << 30, 0, 0};
    bnd_beta_opts o = {.iters = 5, .lr = 0.05};
    bnd_beta_out out = {.lb = &lb};
    cr_assert_eq(bnd_beta_bound(n, &dom, C, 1, &o, &out, &e), 1);
    cr_assert(isinf(lb) && lb > 0);
    s.neuron = 99;
    cr_assert_eq(bnd_beta_bound(n, &dom, C, 1, &o, &out, &e), ERR_ARG);
    bnd_net_free(n);
    nn_graph_free(m.g);
}

Test(beta, point_gradient_matches_finite_differences)
{
    rng r;
    rng_seed(&r, 3);
    for (int c = 0; c < 20; c++) {
        mlp m = mlp_random(&r, 4, 2, 8, 2);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        double x[4], g[4], C[2] = {1, -1}, y[2], pre[16];
        for (int i = 0; i < 4; i++)
            x[i] = rng_normal(&r);
        cr_assert_eq(bnd_point_grad(n, x, C, 1, g, &e), 0, "%s", e.msg);
        mlp_eval(&m, x, y, pre);
        double f0 = y[0] - y[1];
        for (int i = 0; i < 4; i++) {
            double h = 1e-6, xs = x[i];
            x[i] = xs + h;
            mlp_eval(&m, x, y, pre);
            x[i] = xs;
            double fd = (y[0] - y[1] - f0) / h;
            cr_assert(fabs(fd - g[i]) <= 1e-4 * (1 + fabs(fd)), "case %d: d/dx%d %g vs %g", c, i,
                      g[i], fd);
        }
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
}
