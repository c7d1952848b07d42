/* test_refine.c: intermediate bounds refined by branch and bound (bab/refine.c)
 * against GLPK's exact MILP of the same pre-activation and against sampled
 * points, on small random ReLU MLPs. */
#include "relu_mlp.h"

#include "../bab/refine.h"
#include "../core/clock.h"

#define H 3     /* hidden layers */
#define WIDTH 10

/* exact min of z_t (side +1) or -max (side -1) over the box: the network cut at
 * hidden layer k has the same weights when drawn from the same seed */
static double milp_pre(uint64_t seed, int n_in, int k, const double *lo, const double *hi,
                       int64_t t, int side)
{
    rng r;
    rng_seed(&r, seed);
    mlp cut = mlp_random(&r, n_in, k, WIDTH, WIDTH);
    bnd_net *n = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(cut.g, &n, &e), 0, "%s", e.msg);
    double C[WIDTH] = {0}, lb, v;
    C[t] = side;
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_lp_min(n, NULL, 0, C, 1, &v, NULL, NULL, &e), 0, "%s", e.msg);
    bnd_net_free(n);
    nn_graph_free(cut.g);
    return v;
}

Test(refine, bounds_hold_and_close_most_of_the_gap_to_the_milp)
{
    double gap_crown = 0, gap_refined = 0;
    int64_t checked = 0, tighter = 0;
    for (int c = 0; c < 24; c++) {
        uint64_t seed = 1000 + (uint64_t)c;
        rng r;
        rng_seed(&r, seed);
        int n_in = 2 + c % 3;
        mlp m = mlp_random(&r, n_in, H, WIDTH, 2);
        rng_seed(&r, seed * 7 + 1);
        double lo[4], hi[4];
        for (int i = 0; i < n_in; i++) {
            double mid = 0.5 * rng_normal(&r), w = 0.3 + rng_uniform(&r);
            lo[i] = mid - w, hi[i] = mid + w;
        }
        bnd_net *n = NULL;
        bnd_mlp *cm = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        double C[2] = {1, -1}, lb;
        cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb, NULL, &e), 0, "%s", e.msg);
        int64_t nr = bnd_relu_count(n);
        cr_assert_eq(nr, H * WIDTH);
        double plo[H * WIDTH], phi[H * WIDTH], plo0[H * WIDTH], phi0[H * WIDTH];
        bnd_relu_bounds(n, plo, phi);
        memcpy(plo0, plo, sizeof plo), memcpy(phi0, phi, sizeof phi);
        cr_assert_eq(bnd_mlp_new(n, &cm, &e), 0, "%s", e.msg);
        for (int k = 1; k < H; k++) {
            bab_refine_opts o = {clock_now() + 20, 64, 0, 0, 1 + c % 2, 0};
            bab_refine_stats st = {0};
            double l1[H * WIDTH], u1[H * WIDTH];
            memcpy(l1, plo, sizeof plo), memcpy(u1, phi, sizeof phi);
            cr_assert_eq(bab_refine_layer(cm, lo, hi, plo, phi, k, &o, &st, &e), 0, "%s", e.msg);
            for (int64_t j = 0; j < nr; j++) {
                cr_assert(plo[j] >= l1[j] && phi[j] <= u1[j], "refined bounds are met with the old");
                if (j < k * WIDTH || j >= (k + 1) * WIDTH)
                    cr_assert(plo[j] == l1[j] && phi[j] == u1[j], "only layer %d changes", k);
            }
            for (int64_t t = 0; t < WIDTH; t++) {
                int64_t j = k * WIDTH + t;
                if (!(plo0[j] < 0 && phi0[j] > 0))
                    continue;
                double vmin = milp_pre(seed, n_in, k, lo, hi, t, 1);
                double vmax = -milp_pre(seed, n_in, k, lo, hi, t, -1);
                double tol = 1e-7 * (1 + fabs(vmin) + fabs(vmax));
                cr_assert(plo[j] <= vmin + tol, "case %d layer %d neuron %lld: lower %.17g above the MILP minimum %.17g",
                          c, k, (long long)t, plo[j], vmin);
                cr_assert(phi[j] >= vmax - tol, "case %d layer %d neuron %lld: upper %.17g below the MILP maximum %.17g",
                          c, k, (long long)t, phi[j], vmax);
                gap_crown += (vmin - plo0[j]) + (phi0[j] - vmax);
                gap_refined += (vmin - plo[j]) + (phi[j] - vmax);
                tighter += plo[j] > plo0[j] + 1e-9;
                tighter += phi[j] < phi0[j] - 1e-9;
                checked += 2;
            }
        }
        /* sampled points: their pre-activations lie inside */
        for (int s = 0; s < 500; s++) {
            double x[4], y[2], pre[H * WIDTH];
            for (int i = 0; i < n_in; i++)
                x[i] = lo[i] + (hi[i] - lo[i]) * (s < 16 ? (double)((s >> i) & 1) : rng_uniform(&r));
            mlp_eval(&m, x, y, pre);
            for (int64_t j = 0; j < nr; j++) {
                double tol = 1e-9 * (1 + fabs(pre[j]));
                cr_assert(pre[j] >= plo[j] - tol && pre[j] <= phi[j] + tol,
                          "case %d: sample's pre-activation %lld = %.17g outside [%.17g, %.17g]", c,
                          (long long)j, pre[j], plo[j], phi[j]);
            }
        }
        bnd_mlp_free(cm);
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
    cr_log_info("refine: %lld bounds, %lld tighter; gap to the MILP %.4g (CROWN) -> %.4g",
                (long long)checked, (long long)tighter, gap_crown, gap_refined);
    cr_assert(checked > 50, "only %lld unstable bounds", (long long)checked);
    cr_assert(gap_refined <= 0.25 * gap_crown, "refined gap %.6g of CROWN's %.6g", gap_refined,
              gap_crown);
}

/* only chains of dense layers and ReLUs with two ReLU layers or more are
 * refined; bab_verify restarts the search for no other network */
Test(refine, only_relu_chains_of_two_layers_or_more)
{
    rng r;
    rng_seed(&r, 5);
    mlp one = mlp_random(&r, 3, 1, 6, 2), two = mlp_random(&r, 3, 2, 6, 2);
    mlp sig = mlp_random_act(&r, 3, 2, 6, 2, "Sigmoid");
    cr_assert_eq(bab_relu_can_refine(one.g), 0);
    cr_assert_eq(bab_relu_can_refine(two.g), 1);
    cr_assert_eq(bab_relu_can_refine(sig.g), 0);
    nn_graph_free(one.g), nn_graph_free(two.g), nn_graph_free(sig.g);
}
