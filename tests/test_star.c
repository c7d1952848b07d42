/* test_star.c: the activation-region enumeration (bab/star.c) against exact
 * answers: random ReLU networks with 2-4 inputs whose minimum of y0 - y1 is
 * known from GLPK's MILP, thresholds placed within 1e-7..1e-3 of it on either
 * side (an exact method must decide both), properties of several clauses and
 * several regions; ACAS Xu instances with known answers. */
#include "relu_mlp.h"

#include "../bab/bab.h"
#include "../bound/bound.h"
#include "../specs/spec.h"
#include "acas.h"
#include "shared_data.h"


/* Unsafe: y0 - y1 <= t over [lo, hi]; form 0 one row, 1 with an always-true
 * second row, 2 as the second clause of two (the first never holds: y0 - y1 <=
 * t - 1e3), 3 as two regions (the box halved along x0) */
static spec_property *make_spec(const double *lo, const double *hi, int n_in, double t, int form)
{
    char text[4096];
    int at = mlp_spec_begin(text, sizeof text, n_in, lo, hi, form != 3);
    if (form == 3) {
        double mid = 0.5 * (lo[0] + hi[0]);
        at += snprintf(text + at, sizeof text - (size_t)at, "(assert (or");
        for (int h = 0; h < 2; h++) {
            at += snprintf(text + at, sizeof text - (size_t)at, " (and");
            for (int i = 0; i < n_in; i++)
                at += snprintf(text + at, sizeof text - (size_t)at,
                               " (>= X_%d %.17g) (<= X_%d %.17g)", i,
                               i == 0 && h == 1 ? mid : lo[i], i, i == 0 && h == 0 ? mid : hi[i]);
            at += snprintf(text + at, sizeof text - (size_t)at, ")");
        }
        at += snprintf(text + at, sizeof text - (size_t)at, "))\n");
    }
    if (form == 1)
        at += snprintf(text + at, sizeof text - (size_t)at,
                       "(assert (and (<= (- Y_0 Y_1) %.17g) (<= Y_0 1e6)))\n", t);
    else if (form == 2)
        at += snprintf(text + at, sizeof text - (size_t)at,
                       "(assert (or (and (<= (- Y_0 Y_1) %.17g)) (and (<= (- Y_0 Y_1) %.17g))))\n",
                       t - 1e3, t);
    else
        at += snprintf(text + at, sizeof text - (size_t)at, "(assert (<= (- Y_0 Y_1) %.17g))\n", t);
    return mlp_spec_parse(text);
}

Test(star, agrees_with_milp_within_tiny_gaps)
{
    rng r;
    rng_seed(&r, 77);
    int n_unsat = 0, n_sat = 0;
    int64_t nodes = 0;
    for (int c = 0; c < 80; c++) {
        int n_in;
        double lo[4], hi[4];
        mlp m = mlp_random_case(&r, c, &n_in, lo, hi);
        if (c % 7 == 3) /* a fixed input */
            lo[n_in - 1] = hi[n_in - 1];
        double v = mlp_milp_min(&m, lo, hi, NULL);
        int want_sat = c % 2;
        /* relative gaps 1e-7 .. 1e-3 */
        double gap = pow(10, -7 + 4 * rng_uniform(&r)) * (1 + fabs(v));
        double t = want_sat ? v + gap : v - gap;
        spec_property *p = make_spec(lo, hi, n_in, t, (c / 2) % 4);
        bab_opts o;
        bab_opts_default(&o);
        o.strategy = BAB_STRATEGY_STAR;
        o.threads = 1 + c % 2;
        o.timeout = 20;
        bab_result res;
        mlp_expect(&m, p, &o, want_sat, c, v, t, &res);
        n_sat += want_sat, n_unsat += !want_sat;
        nodes += res.n_domains;
        bab_result_free(&res);
        spec_free(p);
        nn_graph_free(m.g);
    }
    cr_log_info("star: %d unsat, %d sat, %lld nodes", n_unsat, n_sat, (long long)nodes);
    cr_assert_eq(n_sat + n_unsat, 80);
}

/* More inputs than any layer has neurons (down to a single Gemm): the root's
 * identity map must still fit every input's column (it did not: an input was
 * dropped and a sat property came out unsat, stress seed 3078761). */
Test(star, inputs_wider_than_every_layer)
{
    rng r;
    rng_seed(&r, 91);
    for (int c = 0; c < 24; c++) {
        int n_in = 3 + c % 4;
        double lo[6], hi[6];
        mlp_random_box(&r, n_in, lo, hi);
        mlp m = mlp_random(&r, n_in, c % 3, 2, 2);
        double v = mlp_milp_min(&m, lo, hi, NULL);
        int want_sat = c % 2;
        double gap = 1e-5 * (1 + fabs(v));
        double t = want_sat ? v + gap : v - gap;
        spec_property *p = make_spec(lo, hi, n_in, t, 0);
        bab_opts o;
        bab_opts_default(&o);
        o.strategy = BAB_STRATEGY_STAR;
        o.threads = 1;
        o.timeout = 20;
        bab_result res;
        mlp_expect(&m, p, &o, want_sat, c, v, t, &res);
        bab_result_free(&res);
        spec_free(p);
        nn_graph_free(m.g);
    }
}

/* Networks the enumeration does not take are refused, not guessed at. */
Test(star, refuses_other_activations)
{
    rng r;
    rng_seed(&r, 5);
    mlp m = mlp_random_act(&r, 2, 2, 6, 2, "Sigmoid");
    double lo[2] = {-1, -1}, hi[2] = {1, 1};
    spec_property *p = make_spec(lo, hi, 2, -1e3, 0);
    bab_opts o;
    bab_opts_default(&o);
    o.strategy = BAB_STRATEGY_STAR;
    o.timeout = 5;
    bab_result res;
    err e = {0};
    cr_assert_eq(bab_verify(m.g, p, &o, &res, &e), ERR_UNSUP);
    cr_assert(strstr(e.msg, "star") != NULL, "%s", e.msg);
    bab_result_free(&res);
    spec_free(p);
    nn_graph_free(m.g);
}

static bab_answer acas(const char *net, const char *prop, int strategy, bab_result *res)
{
    bab_opts o;
    bab_opts_default(&o);
    o.timeout = 120;
    o.strategy = strategy;
    return acas_verify(net, prop, &o, res);
}

/* the automatic choice: 0.1 s of input splitting, then star.c */
Test(star, acasxu_1_9_prop2_is_unsat, .timeout = 240)
{
    NEED_SHARED();
    bab_result res;
    cr_assert_eq(acas("1_9", "prop_2", BAB_STRATEGY_AUTO, &res), BAB_UNSAT);
    cr_assert_str_eq(res.strategy, "star");
    cr_assert(res.n_domains > 1000, "%lld nodes", (long long)res.n_domains);
    bab_result_free(&res);
}

/* sat with a margin of 2.5e-5 at best: the counterexample comes from a leaf's LP */
Test(star, acasxu_5_3_prop2_is_sat, .timeout = 240)
{
    NEED_SHARED();
    bab_result res;
    cr_assert_eq(acas("5_3", "prop_2", BAB_STRATEGY_STAR, &res), BAB_SAT);
    bab_result_free(&res);
}
