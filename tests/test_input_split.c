/* test_input_split.c: input-split branch and bound (bab/input_split.c)
 * against exact answers: random ReLU networks with 2-4 inputs whose minimum of
 * y0 - y1 over the box is known exactly (MILP through GLPK) and cross-checked
 * by dense sampling, with the threshold placed clearly on either side; every
 * branching heuristic; two ACAS Xu instances with known answers. */
#include "relu_mlp.h"

#include "../bab/bab.h"
#include "../bound/bound.h"
#include "../specs/spec.h"
#include "acas.h"
#include "shared_data.h"

/* "y0 - y1 <= t" unsafe (with a second, always-true row when two_rows) */
static spec_property *make_spec(const double *lo, const double *hi, int n_in, double t,
                                int two_rows)
{
    char text[2048];
    int at = mlp_spec_begin(text, sizeof text, n_in, lo, hi, 1);
    if (two_rows)
        at += snprintf(text + at, sizeof text - (size_t)at,
                       "(assert (and (<= (- Y_0 Y_1) %.17g) (<= Y_0 1e6)))\n", t);
    else
        at += snprintf(text + at, sizeof text - (size_t)at, "(assert (<= (- Y_0 Y_1) %.17g))\n", t);
    return mlp_spec_parse(text);
}


static double sampled_min(const mlp *m, const double *lo, const double *hi, int n_in, rng *r)
{
    double best = INFINITY, x[4], y[2];
    err e = {0};
    for (int s = 0; s < 4000; s++) {
        for (int i = 0; i < n_in; i++)
            x[i] = lo[i] + rng_uniform(r) * (hi[i] - lo[i]);
        cr_assert_eq(nn_eval(m->g, x, y, &e), 0);
        if (y[0] - y[1] < best)
            best = y[0] - y[1];
    }
    return best;
}

static double gap_scale = 1; /* of the thresholds' distance to the minimum */

static void agree(int cases, bab_split split, uint64_t seed, int *domains)
{
    rng r;
    rng_seed(&r, seed);
    int n_unsat = 0, n_sat = 0;
    *domains = 0;
    for (int c = 0; c < cases; c++) {
        int n_in;
        double lo[4], hi[4];
        mlp m = mlp_random_case(&r, c, &n_in, lo, hi);
        double v = mlp_milp_min(&m, lo, hi, NULL), vs = sampled_min(&m, lo, hi, n_in, &r);
        cr_assert(vs >= v - 1e-6 * (1 + fabs(v)), "sampling %.17g below the MILP %.17g", vs, v);
        int want_sat = c % 2;
        double gap = (0.02 + 0.1 * rng_uniform(&r)) * gap_scale;
        double t = want_sat ? v + gap : v - gap;
        spec_property *p = make_spec(lo, hi, n_in, t, c % 4 == 1);
        bab_opts o;
        bab_opts_default(&o);
        o.strategy = BAB_STRATEGY_INPUT;
        o.split = split;
        o.threads = 1 + c % 2;
        o.batch = c % 3 == 0 ? 4 : 64;
        o.timeout = 10;
        /* never unsat where sampling finds a violation; complete here */
        if (!want_sat)
            cr_assert(vs > t);
        bab_result res;
        mlp_expect(&m, p, &o, want_sat, c, v, t, &res);
        n_sat += want_sat, n_unsat += !want_sat;
        *domains += (int)res.n_domains;
        bab_result_free(&res);
        spec_free(p);
        nn_graph_free(m.g);
    }
    cr_assert_eq(n_sat + n_unsat, cases);
}

Test(input_split, agrees_with_milp_and_sampling_mix)
{
    int d;
    agree(40, BAB_SPLIT_MIX, 21, &d);
    cr_log_info("input split (mix): %d domains", d);
}

/* The same with boxes of few unstable ReLUs refuted by their activation
 * patterns (bab/exact_box.c, NNV_EXACT): the same answers. */
Test(input_split, agrees_with_milp_with_exact_boxes)
{
    int d0, d1;
    gap_scale = 0.01; /* thresholds within 2e-4..1.2e-3 of the minimum: deep searches */
    setenv("NNV_EXACT", "-1", 1);
    agree(24, BAB_SPLIT_MIX, 33, &d0);
    setenv("NNV_EXACT", "8", 1);
    agree(24, BAB_SPLIT_MIX, 33, &d1);
    unsetenv("NNV_EXACT");
    gap_scale = 1;
    cr_log_info("input split: %d domains, %d with exact boxes", d0, d1);
    cr_assert_lt(d1, d0);
}

/* Every heuristic is complete on the same cases; the numbers (domains) are
 * logged for docs/bab.md's comparison. */
Test(input_split, every_heuristic_decides_the_same_cases)
{
    int ds, dw, dm;
    agree(16, BAB_SPLIT_SMEAR, 7, &ds);
    agree(16, BAB_SPLIT_WIDTH, 7, &dw);
    agree(16, BAB_SPLIT_MIX, 7, &dm);
    cr_log_info("domains: smear %d, width %d, mix %d", ds, dw, dm);
    cr_assert(ds > 0 && dw > 0 && dm > 0);
}

static size_t acas_memory; /* bab_opts.memory; 0: the default */

static bab_answer acas(const char *net, const char *prop, bab_result *res)
{
    bab_opts o;
    bab_opts_default(&o);
    o.timeout = 60;
    o.memory = acas_memory;
    o.strategy = BAB_STRATEGY_INPUT; /* automatic: star.c after 0.1 s */
    return acas_verify(net, prop, &o, res);
}

Test(input_split, acasxu_prop3_on_1_1_is_unsat)
{
    NEED_SHARED();
    bab_result res;
    cr_assert_eq(acas("1_1", "prop_3", &res), BAB_UNSAT);
    cr_assert(res.n_domains > 1, "decided without splitting?");
    cr_assert_str_eq(res.strategy, "input-split");
    bab_result_free(&res);
}

/* --memory: with 16 KB the batches shrink to one box and the stack to a few
 * dozen (bab_input_split); the search goes depth first and still decides. */
Test(input_split, acasxu_prop3_on_1_1_is_unsat_under_a_tiny_memory_budget)
{
    NEED_SHARED();
    bab_result res, res_default;
    cr_assert_eq(acas("1_1", "prop_3", &res_default), BAB_UNSAT);
    acas_memory = 16 << 10;
    bab_answer a = acas("1_1", "prop_3", &res);
    acas_memory = 0;
    cr_assert_eq(a, BAB_UNSAT);
    /* smaller batches: more bound calls for about as many boxes */
    cr_assert_gt(res.n_bound_calls, res_default.n_bound_calls);
    bab_result_free(&res);
    bab_result_free(&res_default);
}

Test(input_split, acasxu_prop2_on_2_1_is_sat)
{
    NEED_SHARED();
    bab_result res;
    cr_assert_eq(acas("2_1", "prop_2", &res), BAB_SAT);
    bab_result_free(&res);
}

/* A disjunction "y0 - y1 <= t0 or y1 - y0 <= t1" is one obligation (both
 * clauses bounded on every box): unsat exactly when both thresholds lie
 * below the MILP minima, sat when either lies above. */
Test(input_split, disjunctions_agree_with_milp)
{
    rng r;
    rng_seed(&r, 41);
    for (int c = 0; c < 12; c++) {
        int n_in;
        double lo[4], hi[4];
        mlp m = mlp_random_case(&r, c, &n_in, lo, hi);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        double C[2][2] = {{1, -1}, {-1, 1}}, v[2], lb;
        for (int q = 0; q < 2; q++) {
            cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C[q], 1, &lb, NULL, &e), 0);
            cr_assert_eq(bnd_lp_min(n, NULL, 0, C[q], 1, &v[q], NULL, NULL, &e), 0, "%s", e.msg);
        }
        bnd_net_free(n);
        int sat_clause = c % 3 - 1; /* -1: neither */
        double t[2];
        for (int q = 0; q < 2; q++) {
            double gap = 0.02 + 0.1 * rng_uniform(&r);
            t[q] = q == sat_clause ? v[q] + gap : v[q] - gap;
        }
        char text[2048];
        int at = 0;
        for (int i = 0; i < n_in; i++)
            at += snprintf(text + at, sizeof text - (size_t)at, "(declare-const X_%d Real)\n", i);
        at += snprintf(text + at, sizeof text - (size_t)at,
                       "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n");
        for (int i = 0; i < n_in; i++)
            at += snprintf(text + at, sizeof text - (size_t)at,
                           "(assert (>= X_%d %.17g))\n(assert (<= X_%d %.17g))\n", i, lo[i], i,
                           hi[i]);
        snprintf(text + at, sizeof text - (size_t)at,
                 "(assert (or (and (<= (- Y_0 Y_1) %.17g)) (and (<= (- Y_1 Y_0) %.17g))))\n",
                 t[0], t[1]);
        spec_property *p = NULL;
        cr_assert_eq(spec_parse_vnnlib_string("test.vnnlib", text, &p, &e), 0, "%s", e.msg);
        cr_assert_eq(p->n_regions, 1);
        cr_assert_eq(p->regions[0].n_clauses, 2);
        bab_opts o;
        bab_opts_default(&o);
        o.strategy = BAB_STRATEGY_INPUT;
        o.threads = 1 + c % 2;
        o.timeout = 10;
        bab_result res;
        cr_assert_eq(bab_verify(m.g, p, &o, &res, &e), 0, "%s", e.msg);
        if (sat_clause >= 0) {
            cr_assert_eq(res.answer, BAB_SAT, "case %d: %s", c, bab_answer_name(res.answer));
            cr_assert_eq(bab_check_counterexample(m.g, p, res.region, res.x, NULL, &e), 1);
        } else {
            cr_assert_eq(res.answer, BAB_UNSAT, "case %d: %s", c, bab_answer_name(res.answer));
        }
        bab_result_free(&res);
        spec_free(p);
        nn_graph_free(m.g);
    }
}

/* 2_9 prop_8 is a disjunction of three clauses whose counterexamples are
 * rare (the quick attack misses them); the whole-box attacks of a long run
 * find one. */
Test(input_split, acasxu_prop8_on_2_9_is_sat)
{
    NEED_SHARED();
    bab_result res;
    cr_assert_eq(acas("2_9", "prop_8", &res), BAB_SAT);
    bab_result_free(&res);
}

/* Many inputs, few moving (dist_shift's shape): bab_verify folds the fixed
 * ones into the first layer and splits the moving ones (sigmoid, tanh and
 * ReLU chains). Thresholds on either side of the sampled minimum, 0.2 away:
 * a violated one must come back sat with a valid counterexample, a clear
 * one unsat. */
Test(input_split, folded_fixed_inputs_agree_with_sampling)
{
    const char *acts[3] = {"Sigmoid", "Tanh", "Relu"};
    rng r;
    rng_seed(&r, 77);
    int folded = 0;
    for (int c = 0; c < 18; c++) {
        enum { N = 6 };
        mlp m = mlp_random_act(&r, N, 2, 10, 2, acts[c % 3]);
        double lo[N], hi[N], x[N], y[2], best = INFINITY;
        for (int i = 0; i < N; i++) {
            double mid = 0.5 * rng_normal(&r), w = i % 2 ? 0.3 + rng_uniform(&r) : 0;
            lo[i] = mid - w, hi[i] = mid + w; /* inputs 0, 2, 4 fixed */
        }
        err e = {0};
        for (int s = 0; s < 20000; s++) {
            for (int i = 0; i < N; i++)
                x[i] = fmin(hi[i], lo[i] + rng_uniform(&r) * (hi[i] - lo[i]));
            cr_assert_eq(nn_eval(m.g, x, y, &e), 0);
            best = fmin(best, y[0] - y[1]);
        }
        int want_sat = c % 2;
        double t = want_sat ? best + 0.2 : best - 0.2;
        spec_property *p = make_spec(lo, hi, N, t, c % 4 == 1);
        bab_opts o;
        bab_opts_default(&o);
        o.max_split_inputs = 4; /* 6 inputs: not plain input split; 3 move */
        o.timeout = 20;
        bab_result res;
        cr_assert_eq(bab_verify(m.g, p, &o, &res, &e), 0, "%s", e.msg);
        folded += strcmp(res.strategy, "input-split") == 0;
        if (want_sat) {
            cr_assert_eq(res.answer, BAB_SAT, "case %d (%s): %s, but sampling reaches %.17g < %.17g",
                         c, acts[c % 3], bab_answer_name(res.answer), best, t);
            cr_assert_eq(bab_check_counterexample(m.g, p, res.region, res.x, NULL, &e), 1);
        } else {
            cr_assert_eq(res.answer, BAB_UNSAT, "case %d (%s): %s with the sampled minimum %.17g > %.17g",
                         c, acts[c % 3], bab_answer_name(res.answer), best, t);
        }
        bab_result_free(&res);
        spec_free(p);
        nn_graph_free(m.g);
    }
    /* sat cases may end in the first attack; the unsat ones go through the search */
    cr_assert(folded >= 9, "the folded input split ran on %d of 18 cases", folded);
}
