/* verify.c: the verification procedure behind `verify`.
 *
 * 1. A quick attack on every region (counterexamples are common and cheap).
 * 2. A strategy chosen from the property's shape (or --strategy):
 *    - few inputs (n_x <= max_split_inputs): input-split branch and bound
 *      (input_split.c), complete up to the timeout;
 *    - many inputs but few moving (one region, at most max_split_inputs
 *      with lo < hi): the same over the moving inputs, the fixed ones folded
 *      into the first layer, when the folded network is a chain;
 *    - otherwise refutation: CROWN bounds of every clause row over every
 *      region's box; a clause is refuted when some row's lower bound exceeds
 *      its threshold (the row can never hold, so the conjunction cannot).
 *      All refuted -> unsat; else ReLU-split branch and bound (relu_split.c)
 *      on ReLU networks, and a longer attack with the time that is left.
 *      Networks with other nonlinearities (sigmoid, tanh, GeLU, products, ...)
 *      get, instead of ReLU splitting, the longer attack and then branch and
 *      bound over general nonlinear and input splits (genbab.c) on every
 *      clause with the time that is left.
 * Each strategy is one function (g, p, o, deadline, res, e) -> res->answer. */
#include "bab.h"
#include "internal.h"
#include "star.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bound/bound.h"
#include "../core/clock.h"

const char *bab_answer_name(bab_answer a)
{
    switch (a) {
    case BAB_UNSAT: return "unsat";
    case BAB_SAT: return "sat";
    case BAB_TIMEOUT: return "timeout";
    default: return "unknown";
    }
}

void bab_opts_default(bab_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout = 0;
    o->seed = 1;
    o->split = BAB_SPLIT_MIX;
}

size_t bab_default_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || size <= 0)
        return (size_t)4 << 30;
    return (size_t)pages / 2 * (size_t)size;
}

void bab_result_free(bab_result *r)
{
    if (!r)
        return;
    free(r->x);
    free(r->y);
    r->x = r->y = NULL;
}

/* Attack every region; 1 when a validated counterexample was stored in res. */
static int attack_all(const nn_graph *g, const spec_property *p, const bab_attack_opts *ao,
                      bab_result *res, err *e)
{
    for (int r = 0; r < p->n_regions; r++) {
        if (clock_expired(ao->deadline))
            return 0;
        int rc = bab_attack(g, p, r, ao, res->x, &res->n_evals, e);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            res->region = r;
            rc = bab_check_counterexample(g, p, r, res->x, res->y, e);
            return rc < 0 ? rc : 1;
        }
    }
    return 0;
}

/* 1 when CROWN refutes every clause of region r. */
static int region_refuted(bnd_net *net, const spec_property *p, int r, bab_result *res, err *e)
{
    const spec_region *reg = &p->regions[r];
    int rows = 0;
    for (int k = 0; k < reg->n_clauses; k++)
        rows += reg->clauses[k].n_rows;
    if (rows == 0)
        return reg->n_clauses == 0; /* an empty clause is always violated */
    double *C = malloc((size_t)rows * (size_t)p->n_y * sizeof *C);
    double *lb = malloc((size_t)rows * sizeof *lb);
    if (!C || !lb) {
        free(C);
        free(lb);
        return err_set(e, ERR_NOMEM, "verify: out of memory");
    }
    int at = 0;
    for (int k = 0; k < reg->n_clauses; k++) {
        const spec_clause *cl = &reg->clauses[k];
        memcpy(C + (size_t)at * (size_t)p->n_y, cl->C, (size_t)cl->n_rows * (size_t)p->n_y * sizeof *C);
        at += cl->n_rows;
    }
    int rc = bnd_compute(net, BND_CROWN, reg->lo, reg->hi, C, rows, lb, NULL, e);
    res->n_bound_calls++;
    if (rc == 0) {
        rc = 1;
        at = 0;
        for (int k = 0; k < reg->n_clauses && rc == 1; k++) {
            const spec_clause *cl = &reg->clauses[k];
            int refuted = 0;
            for (int i = 0; i < cl->n_rows; i++)
                if (lb[at + i] > cl->d[i])
                    refuted = 1;
            at += cl->n_rows;
            if (!refuted)
                rc = 0;
        }
    }
    free(C);
    free(lb);
    return rc;
}

/* The largest number of inputs whose interval has width > 0 in a region:
 * what sampling has to cover. */
static int64_t moving_inputs(const spec_property *p)
{
    int64_t most = 0;
    for (int r = 0; r < p->n_regions; r++) {
        int64_t m = 0;
        for (int64_t j = 0; j < p->n_x; j++)
            m += p->regions[r].hi[j] > p->regions[r].lo[j];
        most = m > most ? m : most;
    }
    return most;
}

/* GenBaB on every clause of every region (clauses CROWN refutes are proven
 * at the root): answer UNSAT when all are proven. */
static int genbab_strategy(const nn_graph *g, const spec_property *p, const bab_opts *o,
                           double deadline, bab_result *res, err *e)
{
    bab_genbab_opts go;
    bab_genbab_opts_default(&go);
    go.deadline = deadline;
    go.verbose = o->verbose;
    go.mem_budget = o->memory;
    go.threads = o->threads > 0 ? o->threads : 2;
    go.root = bab_genbab_root_new(); /* one region's root intervals; NULL: none kept */
    for (int r = 0; r < p->n_regions; r++) {
        const spec_region *reg = &p->regions[r];
        for (int k = 0; k < reg->n_clauses; k++) {
            bab_genbab_stats st;
            int rc = bab_genbab(g, reg->lo, reg->hi, &reg->clauses[k], &go, &st, e);
            res->n_domains += st.domains;
            res->n_bound_calls += st.bound_calls;
            if (o->verbose)
                fprintf(stderr, "genbab: region %d clause %d: %s after %lld domains "
                        "(root margin %.4g)\n", r, k, rc == 1 ? "proven" : "open",
                        (long long)st.domains, st.root_margin);
            if (rc <= 0) {
                bab_genbab_root_free(go.root);
                return rc;
            }
        }
    }
    bab_genbab_root_free(go.root);
    res->answer = BAB_UNSAT;
    return 0;
}

/* The automatic strategy choice: ReLU splitting for networks with ReLUs and
 * a high-dimensional input (where input splitting cannot scale). */
static int choose_relu_split(const bnd_net *net, const spec_property *p, const bab_opts *o)
{
    if (o->strategy == BAB_STRATEGY_RELU)
        return bnd_relu_count(net) > 0;
    if (o->strategy != BAB_STRATEGY_AUTO)
        return 0;
    return p->n_x > 16 && bnd_relu_count(net) > 0;
}

/* ReLU-split BaB on every region (region_refuted already failed on some). */
static int relu_split_strategy(const nn_graph *g, const spec_property *p, const bab_opts *o,
                               double deadline, bab_result *res, err *e)
{
    bab_relu_opts ro;
    bab_relu_opts_default(&ro);
    ro.deadline = deadline;
    ro.verbose = o->verbose;
    ro.mem_budget = o->memory; /* bab_verify filled in the default */
    if (o->threads > 0)
        ro.threads = o->threads;
    if (o->branching == 2)
        ro.branching = BAB_BRANCH_FSB;
    /* experiment overrides (documented in docs/relu_bab.md) */
    const char *ev = getenv("NNV_RELU_INTERM");
    if (ev)
        ro.interm = atoi(ev);
    if ((ev = getenv("NNV_BETA_ITERS")))
        ro.beta_iters = atoi(ev);
    if ((ev = getenv("NNV_THREADS")))
        ro.threads = atoi(ev);
    if ((ev = getenv("NNV_ROOT_ITERS")))
        ro.root_interm_iters = atoi(ev);
    if ((ev = getenv("NNV_INTERM_ITERS")))
        ro.interm_iters = atoi(ev);
    if ((ev = getenv("NNV_ALPHA")))
        ro.alpha = atoi(ev);
    if ((ev = getenv("NNV_FSB_K")))
        ro.fsb_k = atoi(ev);
    if ((ev = getenv("NNV_RELU_BATCH")))
        ro.batch = atoi(ev);
    if ((ev = getenv("NNV_ROOT_LP")))
        ro.root_lp = atof(ev);
    if ((ev = getenv("NNV_REFINE")))
        ro.refine = atof(ev);
    if ((ev = getenv("NNV_REFINE_LEAVES")))
        ro.refine_leaves = atoi(ev);
    if ((ev = getenv("NNV_REFINE_LAYER_LEAVES")))
        ro.refine_layer_leaves = atoi(ev);
    if ((ev = getenv("NNV_REFINE_AFTER")))
        ro.refine_after = atof(ev);
    if ((ev = getenv("NNV_F64")))
        ro.f64 = atoi(ev);
    if (ro.refine > 0 && !bab_relu_can_refine(g))
        ro.refine = 0; /* CNNs and others: the plain search, never restarted */
    bab_answer all = BAB_UNSAT;
    for (int r = 0; r < p->n_regions; r++) {
        bab_answer a;
        int rc;
        double now = clock_now();
        if (ro.refine > 0 && deadline > now) {
            /* most properties fall to the search itself within seconds; the
             * refinement (refine.c) costs tens of seconds on wide layers, so it
             * runs only for those left, and the search restarts from its bounds */
            bab_relu_opts quick = ro;
            quick.refine = 0;
            quick.deadline = now + ro.refine_after * (deadline - now);
            rc = bab_relu_split(g, p, r, &quick, &a, res->x, &res->n_domains, &res->n_evals, e);
            if (rc >= 0 && a == BAB_TIMEOUT && !clock_expired(deadline)) {
                if (o->verbose)
                    fprintf(stderr, "relu bab: open after %.2f s: refining the root's bounds\n",
                            clock_now() - now);
                rc = bab_relu_split(g, p, r, &ro, &a, res->x, &res->n_domains, &res->n_evals, e);
            }
        } else {
            rc = bab_relu_split(g, p, r, &ro, &a, res->x, &res->n_domains, &res->n_evals, e);
        }
        if (rc < 0)
            return rc;
        if (a == BAB_SAT) {
            res->region = r;
            rc = bab_check_counterexample(g, p, r, res->x, res->y, e);
            if (rc < 0)
                return rc;
            if (rc == 1) {
                res->answer = BAB_SAT;
                return 0;
            }
            a = BAB_UNKNOWN;
        }
        if (a != BAB_UNSAT)
            all = a == BAB_TIMEOUT ? BAB_TIMEOUT : (all == BAB_UNSAT ? a : all);
        if (all == BAB_TIMEOUT)
            break;
    }
    res->answer = all;
    return 0;
}

/* Refutation by CROWN bounds per region; then ReLU splitting where it
 * applies, then a longer attack. */
static int strategy_refute(const nn_graph *g, const spec_property *p, const bab_opts *o,
                           double deadline, bab_result *res, err *e)
{
    double tb = clock_now();
    bnd_net *net = NULL;
    int all_refuted = 1;
    int rc = bnd_net_new(g, &net, e);
    if (rc == ERR_UNSUP) {
        if (o->verbose)
            fprintf(stderr, "verify: no bounds (%s); attacking only\n", e->msg);
        all_refuted = 0;
        rc = 0;
    } else if (rc) {
        return rc;
    }
    if (net)
        bnd_set_deadline(net, deadline);
    for (int r = 0; net && r < p->n_regions && all_refuted; r++) {
        if (clock_expired(deadline)) {
            all_refuted = 0;
            break;
        }
        rc = region_refuted(net, p, r, res, e);
        if (rc < 0) {
            bnd_net_free(net);
            return rc;
        }
        if (rc == 0)
            all_refuted = 0;
    }
    /* nonlinearities other than ReLU: general splits instead of ReLU ones */
    int use_genbab = net && bnd_act_count(net) > bnd_relu_count(net);
    int use_relu = net && !use_genbab && choose_relu_split(net, p, o);
    bnd_net_free(net);
    res->t_bound += clock_now() - tb;
    if (all_refuted) {
        res->answer = BAB_UNSAT;
        return 0;
    }
    if (use_relu) {
        double tr = clock_now();
        res->strategy = "relu-split";
        rc = relu_split_strategy(g, p, o, deadline, res, e);
        res->t_bound += clock_now() - tr;
        if (rc < 0)
            return rc;
        if (res->answer == BAB_UNSAT || res->answer == BAB_SAT)
            return 0;
    }

    /* a longer attack with what is left (bounded so `unknown` comes soon) */
    double ta = clock_now();
    double budget = 5.0;
    if (deadline > 0 && deadline - ta < budget)
        budget = deadline - ta;
    bab_attack_opts ao = { .deadline = ta + (budget > 0 ? budget : 0), .restarts = 20,
                           .steps = 50, .samples = moving_inputs(p) <= 16 ? 20000 : 500,
                           .local = moving_inputs(p) <= 16 ? 50000 : 2000, .seed = o->seed + 1 };
    res->n_attacks++;
    rc = attack_all(g, p, &ao, res, e);
    res->t_attack += clock_now() - ta;
    if (rc < 0)
        return rc;
    if (rc == 1) {
        res->answer = BAB_SAT, res->n_attack_hits++;
        return 0;
    }
    if (use_genbab && !clock_expired(deadline)) {
        double tg = clock_now();
        res->strategy = "genbab";
        rc = genbab_strategy(g, p, o, deadline, res, e);
        res->t_bound += clock_now() - tg;
        if (rc < 0)
            return rc;
    }
    if (res->answer != BAB_UNSAT && clock_expired(deadline))
        res->answer = BAB_TIMEOUT;
    return 0;
}

/* Low-dimensional ReLU chains (ACAS Xu): the activation-region enumeration
 * (star.c) decides most properties sooner than input splitting, the hard
 * ones by far (3_3 and 4_2 prop_2: 4-6 s, where input splitting needs
 * minutes), but input splitting settles the easiest ones (a CROWN bound
 * or two: ACAS Xu prop_3 and prop_4) in a few hundredths of a second. So
 * input splitting gets the first 0.1 s, then star.c (at most 15 s, below);
 * if star.c ends undecided, input splitting gets what time is left. Over all of ACAS Xu (docs/bab.md) a
 * hand-over after 0, 0.1, 0.25, 0.5 and 1 s took 41.8, 42.0-44.9, 48.2-48.5,
 * 50.1-50.5 and 54.2 s. NNV_STAR_AFTER=s changes it (experiments). */
static int split_then_star(const nn_graph *g, const spec_property *p, const bab_opts *o,
                           double deadline, bab_result *res, err *e)
{
    const char *env = getenv("NNV_STAR_AFTER");
    double after = env ? atof(env) : 0.1;
    double hand = clock_now() + after;
    res->strategy = "input-split";
    int rc = bab_input_split(g, p, o, deadline > 0 && deadline < hand ? deadline : hand, res, e);
    if (rc || res->answer == BAB_SAT || res->answer == BAB_UNSAT || clock_expired(deadline))
        return rc;
    /* star.c gets at most 15 s and a quarter of the time left: on networks
     * whose regions CROWN cannot prune early it is far slower than input
     * splitting (random 6-input 3x48 nets: input splitting unsat in 5-19 s,
     * star.c nothing in 30 s), so input splitting gets the rest. ACAS Xu's
     * hardest takes star.c 6 s. */
    double now = clock_now(), budget = 15;
    if (deadline > 0 && (deadline - now) / 4 < budget)
        budget = (deadline - now) / 4;
    res->strategy = "star";
    res->answer = BAB_UNKNOWN;
    rc = bab_star(g, p, o, now + budget, res, e);
    if (rc || res->answer == BAB_SAT || res->answer == BAB_UNSAT || clock_expired(deadline))
        return rc;
    res->strategy = "input-split";
    res->answer = BAB_UNKNOWN;
    return bab_input_split(g, p, o, deadline, res, e);
}

int bab_verify(const nn_graph *g, const spec_property *p, const bab_opts *o_in,
               bab_result *res, err *e)
{
    double t0 = clock_now();
    bab_opts opts = *o_in, *o = &opts;
    if (!o->memory)
        o->memory = bab_default_memory();
    double deadline = o->timeout > 0 ? t0 + o->timeout : 0;
    memset(res, 0, sizeof *res);
    res->answer = BAB_UNKNOWN;
    res->n_x = p->n_x;
    res->n_y = p->n_y;
    if (p->n_x != nn_input_size(g) || p->n_y != nn_output_size(g))
        return err_set(e, ERR_SHAPE, "%s: the property has %lld inputs and %lld outputs, the network %lld and %lld",
                       g->source, (long long)p->n_x, (long long)p->n_y,
                       (long long)nn_input_size(g), (long long)nn_output_size(g));
    res->x = calloc((size_t)p->n_x, sizeof *res->x);
    res->y = calloc((size_t)p->n_y, sizeof *res->y);
    if (!res->x || !res->y)
        return err_set(e, ERR_NOMEM, "verify: out of memory");

    /* 1. quick attack */
    bab_attack_opts ao = { .deadline = deadline, .restarts = 2, .steps = 10,
                           .samples = moving_inputs(p) <= 16 ? 1000 : 50,
                           .local = moving_inputs(p) <= 16 ? 2000 : 0, .seed = o->seed };
    res->n_attacks++;
    int rc = attack_all(g, p, &ao, res, e);
    res->t_attack = clock_now() - t0;
    if (rc < 0)
        return rc;
    if (rc == 1) {
        res->answer = BAB_SAT;
        res->n_attack_hits++;
        res->strategy = "attack";
        goto done;
    }

    /* 2. a strategy */
    int max_split = o->max_split_inputs ? o->max_split_inputs : 20;
    int input_split = o->strategy == BAB_STRATEGY_INPUT ||
                      (o->strategy == BAB_STRATEGY_AUTO && p->n_x <= max_split);
    if (o->strategy == BAB_STRATEGY_STAR) {
        res->strategy = "star";
        rc = bab_star(g, p, o, deadline, res, e);
    } else if (input_split && o->strategy == BAB_STRATEGY_AUTO && bab_star_fits(g, p) &&
               !getenv("NNV_NOSTAR")) {
        rc = split_then_star(g, p, o, deadline, res, e);
    } else if (input_split) {
        res->strategy = "input-split";
        rc = bab_input_split(g, p, o, deadline, res, e);
        if (rc == ERR_UNSUP) { /* no bounds for this graph: fall back */
            if (o->verbose)
                fprintf(stderr, "verify: %s; refutation instead\n", e->msg);
            rc = 0;
            res->strategy = "refute";
            rc = strategy_refute(g, p, o, deadline, res, e);
        }
    } else if (o->strategy == BAB_STRATEGY_AUTO && p->n_regions == 1 && moving_inputs(p) > 0 &&
               moving_inputs(p) <= max_split && !getenv("NNV_NOFOLDSPLIT")) {
        /* many inputs but few moving (dist_shift: 8 of 792): input split
         * over the moving ones when the folded network is a chain */
        res->strategy = "input-split";
        rc = bab_input_split_folded(g, p, o, deadline, res, e);
        if (rc == ERR_UNSUP) {
            if (o->verbose)
                fprintf(stderr, "verify: %s; refutation instead\n", e->msg);
            res->strategy = "refute";
            rc = strategy_refute(g, p, o, deadline, res, e);
        }
    } else {
        res->strategy = "refute";
        rc = strategy_refute(g, p, o, deadline, res, e);
    }
    if (rc == ERR_TIMEOUT) { /* a bound computation stopped at the deadline */
        res->answer = BAB_TIMEOUT;
        rc = 0;
    }
    if (rc)
        return rc;
    if (res->answer == BAB_UNKNOWN && clock_expired(deadline))
        res->answer = BAB_TIMEOUT;
done:
    res->t_total = clock_now() - t0;
    return 0;
}
