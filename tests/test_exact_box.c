/* test_exact_box.c: refuting a box by its activation patterns
 * (bab/exact_box.c) on random small ReLU networks whose minimum of y0 - y1
 * over the box is known exactly (MILP through GLPK): never refuted when the
 * threshold lies above the minimum, however close; refuted for thresholds just
 * below it when the box has few unstable neurons. */
#include "relu_mlp.h"

#include <glpk.h>

#include "../bab/exact_box.h"
#include "../bound/bound.h"

typedef struct {
    int refuted_below, tried_below, wrong;
} tally;

static void one_case(rng *r, int c, tally *t)
{
    int n_in = 2 + c % 3;
    mlp m = mlp_random(r, n_in, 1 + c % 3, 3 + c % 4, 2);
    double lo[4], hi[4];
    for (int i = 0; i < n_in; i++) {
        double mid = 0.5 * rng_normal(r), w = 0.05 + 0.3 * rng_uniform(r);
        lo[i] = mid - w, hi[i] = mid + w;
    }
    bnd_net *n = NULL;
    bnd_mlp *b = NULL;
    err e = {0};
    cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_mlp_new(n, &b, &e), 0, "%s", e.msg);
    double Cm[2] = {1, -1}, lbc, v;
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, Cm, 1, &lbc, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_lp_min(n, NULL, 0, Cm, 1, &v, NULL, NULL, &e), 0, "%s", e.msg);
    /* the box's record, as the input split keeps it */
    int64_t np = bnd_mlp_n_pre(b) + bnd_mlp_n_fn(b);
    double *rin = malloc((size_t)np * sizeof(double)), *rec = malloc((size_t)np * sizeof(double));
    double lb1, A1[4];
    cr_assert(rin && rec);
    for (int64_t q = 0; q < np; q++)
        rin[q] = NAN;
    cr_assert_eq(bnd_mlp_bound_fn(b, 1, lo, hi, 1, Cm, 0, rin, rec, rin + bnd_mlp_n_pre(b),
                                  rec + bnd_mlp_n_pre(b), np, &lb1, A1, &e),
                 0, "%s", e.msg);
    /* thresholds just below (the clause "y0 - y1 <= d" never holds) and
     * just above the exact minimum (it holds somewhere) */
    double eps = 1e-3 * (1 + fabs(v));
    const double ds[4] = {v - 10 * eps, v - eps, v + eps, v + 10 * eps};
    for (int q = 0; q < 4; q++) {
        double C[2] = {1, -1}, d = ds[q];
        spec_clause bc = {1, C, &d};
        int cl_first[2] = {0, 1};
        bab_exact *x = bab_exact_new(b, &bc, cl_first, 1, 6);
        cr_assert(x);
        int got = bab_exact_refute(x, lo, hi, rec, &e);
        cr_assert(got >= 0, "%s", e.msg);
        int64_t tried, refuted, pats, lps;
        bab_exact_stats(x, &tried, &refuted, &pats, &lps);
        if (d > v && got == 1) {
            t->wrong++;
            fprintf(stderr, "case %d: refuted with d %.17g above the minimum %.17g\n", c, d, v);
        }
        if (d < v && tried) {
            t->tried_below++;
            t->refuted_below += got;
        }
        bab_exact_free(x);
    }
    free(rin), free(rec);
    bnd_mlp_free(b);
    bnd_net_free(n);
    nn_graph_free(m.g);
}

Test(exact_box, never_refutes_a_reachable_threshold_and_refutes_near_misses)
{
    rng r;
    rng_seed(&r, 2026);
    tally t = {0};
    for (int c = 0; c < 150; c++)
        one_case(&r, c, &t);
    glp_free_env();
    cr_log_info("exact box: %d of %d boxes refuted below the minimum", t.refuted_below,
                t.tried_below);
    cr_assert_eq(t.wrong, 0, "%d reachable thresholds refuted", t.wrong);
    /* within the budget the search is exact: thresholds below the minimum are
     * refuted (a few boxes may need more nodes than the budget allows) */
    cr_assert_gt(t.tried_below, 60, "only %d boxes tried", t.tried_below);
    cr_assert_geq(t.refuted_below * 10, t.tried_below * 9, "refuted %d of %d", t.refuted_below,
                  t.tried_below);
}
