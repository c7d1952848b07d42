/* test_relu_bab.c: ReLU-split branch and bound against an exact MILP (GLPK)
 * on small random networks: the property "y0 - y1 <= t is unsafe" with t
 * placed clearly above or below the exact minimum of y0 - y1 over the box;
 * with batched beta-CROWN (the default on these chain MLPs) and per domain. */
#include "relu_mlp.h"

#include "../bab/bab.h"
#include "../bound/bound.h"
#include "../core/clock.h"
#include "../specs/spec.h"

static spec_property *make_spec(const double *lo, const double *hi, int n_in, double t)
{
    char text[2048];
    int at = mlp_spec_begin(text, sizeof text, n_in, lo, hi, 1);
    /* y0 - y1 <= t, written as y0 <= y1 + t through an or of one clause */
    at += snprintf(text + at, sizeof text - (size_t)at,
                   "(assert (or (and (<= (- Y_0 Y_1) %.17g))))\n", t);
    return mlp_spec_parse(text);
}


static size_t mem_budget; /* 0: the default */
static double refine;      /* bab_relu_opts.refine (0: the plain search) */

static void agree(int cases, int branching, int batch, uint64_t seed)
{
    rng r;
    rng_seed(&r, seed);
    int n_unsat = 0, n_sat = 0, n_undecided = 0;
    for (int c = 0; c < cases; c++) {
        int n_in = 2 + c % 3;
        mlp m = mlp_random(&r, n_in, 1 + c % 3, 6 + c % 5, 2);
        double lo[4], hi[4], xm[4];
        for (int i = 0; i < n_in; i++) {
            double mid = 0.5 * rng_normal(&r), w = 0.1 + rng_uniform(&r);
            lo[i] = mid - w, hi[i] = mid + w;
        }
        double v = mlp_milp_min(&m, lo, hi, xm);
        /* the MILP's minimiser, re-evaluated, is a real point */
        double y[2], pre[64];
        mlp_eval(&m, xm, y, pre);
        cr_assert(fabs(y[0] - y[1] - v) <= 1e-6 * (1 + fabs(v)), "MILP point %.17g vs %.17g",
                  y[0] - y[1], v);
        int want_sat = c % 2;
        double gap = 0.02 + 0.1 * rng_uniform(&r);
        double t = want_sat ? v + gap : v - gap;
        spec_property *p = make_spec(lo, hi, n_in, t);
        bab_relu_opts o;
        bab_relu_opts_default(&o);
        o.threads = 1 + c % 2;
        o.branching = branching;
        o.batch = batch;
        o.deadline = clock_now() + 5;
        o.refine = refine;
        if (mem_budget)
            o.mem_budget = mem_budget;
        bab_answer a;
        double x[4];
        err e = {0};
        cr_assert_eq(bab_relu_split(m.g, p, 0, &o, &a, x, NULL, NULL, &e), 0, "%s", e.msg);
        if (want_sat) {
            cr_assert(a != BAB_UNSAT, "case %d: unsat but the MILP minimum %.17g < %.17g", c, v, t);
            if (a == BAB_SAT) {
                n_sat++;
                cr_assert_eq(bab_check_counterexample(m.g, p, 0, x, NULL, &e), 1);
            } else {
                n_undecided++;
            }
        } else {
            cr_assert(a != BAB_SAT, "case %d: sat but the MILP minimum %.17g > %.17g", c, v, t);
            if (a == BAB_UNSAT)
                n_unsat++;
            else
                n_undecided++;
        }
        spec_free(p);
        nn_graph_free(m.g);
    }
    /* no attack here: sat comes from relaxed minimisers and leaf LPs */
    cr_assert(n_unsat >= cases / 2 - 2, "unsat decided %d of %d", n_unsat, cases / 2);
    cr_assert(n_sat + n_unsat + n_undecided == cases);
    cr_log_info("relu bab vs MILP: %d unsat, %d sat, %d undecided of %d", n_unsat, n_sat,
                n_undecided, cases);
    cr_assert(n_sat >= cases / 2 - 3, "sat found in %d of %d", n_sat, cases / 2);
}

Test(relu_bab, agrees_with_milp_babsr)
{
    agree(200, BAB_BRANCH_BABSR, 32, 11); /* batched bounds (chain MLPs) */
}

Test(relu_bab, agrees_with_milp_per_domain)
{
    agree(100, BAB_BRANCH_BABSR, 0, 13);
}

Test(relu_bab, agrees_with_milp_fsb)
{
    agree(100, BAB_BRANCH_FSB, 32, 12);
}

/* the root's intermediate bounds refined by branch and bound (refine.c) first */
Test(relu_bab, agrees_with_milp_after_refining)
{
    refine = 0.5;
    agree(100, BAB_BRANCH_BABSR, 32, 17);
    refine = 0;
}

/* --memory: a budget of a few domains makes the workers go depth first on
 * their own stacks almost at once; the answers stay right and as many are
 * decided (agree() checks both). */
Test(relu_bab, agrees_with_milp_under_a_tiny_memory_budget)
{
    mem_budget = 16 << 10; /* per-domain path: its domains carry no alpha */
    agree(100, BAB_BRANCH_BABSR, 0, 11);
    mem_budget = 64 << 10; /* batched path: larger domains, batches shrink to one */
    agree(100, BAB_BRANCH_BABSR, 32, 11);
    mem_budget = 0;
}
