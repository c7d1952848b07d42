/* verify.c: the verification procedure behind `verify`.
 *
 * 1. A quick attack on every region (counterexamples are common and cheap).
 * 2. CROWN bounds of every clause row over every region's box: a clause is
 *    refuted when some row's lower bound exceeds its threshold (the row can
 *    never hold, so the conjunction cannot). All refuted -> unsat.
 * 3. Otherwise a longer attack (a few seconds) -> sat.
 * 4. Then branch and bound over nonlinear splits (genbab.c) on every clause
 *    CROWN left open, with the time that is left -> unsat, or unknown /
 *    timeout. */
#include "bab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* 1 when CROWN refutes every clause of region r; open[k] (if not NULL) is
 * set to 1 for each clause it leaves open. */
static int region_refuted(bnd_net *net, const spec_property *p, int r, bab_result *res,
                          char *open, err *e)
{
    const spec_region *reg = &p->regions[r];
    int rows = 0;
    for (int k = 0; k < reg->n_clauses; k++)
        rows += reg->clauses[k].n_rows;
    if (rows == 0) { /* an empty clause is always violated */
        for (int k = 0; open && k < reg->n_clauses; k++)
            open[k] = 1;
        return reg->n_clauses == 0;
    }
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
        for (int k = 0; k < reg->n_clauses && (rc == 1 || open); k++) {
            const spec_clause *cl = &reg->clauses[k];
            int refuted = 0;
            for (int i = 0; i < cl->n_rows; i++)
                if (lb[at + i] > cl->d[i])
                    refuted = 1;
            at += cl->n_rows;
            if (!refuted)
                rc = 0;
            if (!refuted && open)
                open[k] = 1;
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

static void free_open(char **open, int n)
{
    for (int r = 0; r < n; r++)
        free(open[r]);
    free(open);
}

/* GenBaB on every clause left open by CROWN: 1 when all are proven. */
static int genbab_open(const nn_graph *g, const spec_property *p, char **open, double deadline,
                       const bab_opts *o, bab_result *res, err *e)
{
    bab_genbab_opts go;
    bab_genbab_opts_default(&go);
    go.deadline = deadline;
    go.verbose = o->verbose;
    for (int r = 0; r < p->n_regions; r++) {
        const spec_region *reg = &p->regions[r];
        for (int k = 0; k < reg->n_clauses; k++) {
            if (!open[r] || !open[r][k])
                continue;
            bab_genbab_stats st;
            int rc = bab_genbab(g, reg->lo, reg->hi, &reg->clauses[k], &go, &st, e);
            res->n_domains += st.domains;
            res->n_bound_calls += st.bound_calls;
            if (o->verbose)
                fprintf(stderr, "genbab: region %d clause %d: %s after %lld domains "
                        "(root margin %.4g)\n", r, k, rc == 1 ? "proven" : "open",
                        (long long)st.domains, st.root_margin);
            if (rc != 1)
                return rc;
        }
    }
    return 1;
}

int bab_verify(const nn_graph *g, const spec_property *p, const bab_opts *o,
               bab_result *res, err *e)
{
    double t0 = clock_now();
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
                           .samples = moving_inputs(p) <= 16 ? 1000 : 50, .seed = o->seed };
    int rc = attack_all(g, p, &ao, res, e);
    res->t_attack = clock_now() - t0;
    if (rc < 0)
        return rc;
    if (rc == 1) {
        res->answer = BAB_SAT;
        goto done;
    }

    /* 2. bounds */
    double tb = clock_now();
    bnd_net *net = NULL;
    int all_refuted = 1, genbab_ok = 1;
    char **open = calloc((size_t)(p->n_regions ? p->n_regions : 1), sizeof(char *));
    if (!open)
        return err_set(e, ERR_NOMEM, "verify: out of memory");
    rc = bnd_net_new(g, &net, e);
    if (rc == ERR_UNSUP) {
        if (o->verbose)
            fprintf(stderr, "verify: no bounds (%s); attacking only\n", e->msg);
        all_refuted = 0;
        genbab_ok = 0;
        rc = 0;
    } else if (rc) {
        free(open);
        return rc;
    }
    for (int r = 0; net && r < p->n_regions && genbab_ok; r++) {
        if (clock_expired(deadline)) {
            all_refuted = genbab_ok = 0;
            break;
        }
        open[r] = calloc((size_t)(p->regions[r].n_clauses + 1), 1);
        if (!open[r]) {
            rc = err_set(e, ERR_NOMEM, "verify: out of memory");
        } else {
            rc = region_refuted(net, p, r, res, open[r], e);
        }
        if (rc < 0) {
            bnd_net_free(net);
            free_open(open, p->n_regions);
            return rc;
        }
        if (rc == 0)
            all_refuted = 0;
    }
    bnd_net_free(net);
    res->t_bound = clock_now() - tb;
    if (all_refuted) {
        res->answer = BAB_UNSAT;
        free_open(open, p->n_regions);
        goto done;
    }

    /* 3. a longer attack with what is left (bounded so `unknown` comes soon) */
    double ta = clock_now();
    double budget = 5.0;
    if (deadline > 0 && deadline - ta < budget)
        budget = deadline - ta;
    ao.deadline = ta + (budget > 0 ? budget : 0);
    ao.restarts = 20;
    ao.steps = 50;
    ao.samples = moving_inputs(p) <= 16 ? 20000 : 500;
    ao.seed = o->seed + 1;
    rc = attack_all(g, p, &ao, res, e);
    res->t_attack += clock_now() - ta;
    if (rc == 0 && genbab_ok) {
        /* 4. branch and bound on every open clause */
        double tg = clock_now();
        rc = genbab_open(g, p, open, deadline, o, res, e);
        res->t_bound += clock_now() - tg;
        if (rc == 1) {
            res->answer = BAB_UNSAT;
            rc = 0;
        } else if (rc == 0) {
            rc = 2; /* not proven */
        }
    }
    free_open(open, p->n_regions);
    if (rc < 0)
        return rc;
    if (rc == 1)
        res->answer = BAB_SAT;
    else if (res->answer != BAB_UNSAT && clock_expired(deadline))
        res->answer = BAB_TIMEOUT;
done:
    res->t_total = clock_now() - t0;
    return 0;
}
