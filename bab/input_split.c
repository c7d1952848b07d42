/* input_split.c: branch and bound over the input box, for networks with few
 * inputs (ACAS Xu).
 *
 * Each region of the property is one obligation: no x in the region's box
 * with C_c f(x) <= d_c for any clause c (all clauses bounded on every box; a
 * box is dropped when each clause is refuted on it). Sub-boxes wait on a
 * stack (depth first, so memory stays bounded by depth x batch); a worker
 * takes a batch, bounds all of them at once (bnd_mlp_bound: a few dgemms
 * per layer for the whole batch; per-box CROWN through bnd_compute for
 * graphs that are not chains), drops
 * the boxes where some row's lower bound exceeds its threshold, tries two
 * cheap candidates in each remaining box (the corner minimising the lower
 * bound's linear function, and the centre) and splits it in two along the
 * best-scoring input dimension:
 *   SMEAR: |input coefficient of the most refutable row| x width,
 *   WIDTH: width relative to the root box.
 * Every 2 batches the least refuted box gets a short PGD attack, and the
 * child holding the parent's minimising corner is explored first; a long
 * run also attacks the whole box now and then. Children inherit their
 * parent's pre-activation bounds (bnd_mlp_bound_pre). Workers
 * are threads sharing the stack (one lock; bounding runs outside it);
 * OpenBLAS runs single-threaded meanwhile. A candidate is reported only
 * after bab_check_counterexample accepts it against the original region. */
#include "../core/fpstep.h"
#include "internal.h"

#include <cblas.h>
#include <glpk.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bound/bound.h"
#include "../core/clock.h"
#include "exact_box.h"
#include "shrink.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

#define MAX_BOXES ((int64_t)1 << 22)  /* stack budget (boxes), whatever the memory */

typedef struct {
    /* fixed for the run */
    const nn_graph *g;
    const spec_property *p;
    int region;
    const spec_clause *cls;   /* the obligation's clauses (a disjunction) */
    int n_cls;
    spec_clause bc;           /* rows bounded: each clause's rows and their sums */
    int *row_cl;              /* clause of each row of bc */
    int *cl_first;            /* per clause: its first row in bc (n_cls + 1 entries) */
    const bnd_mlp *mlp;       /* NULL: generic path through nets[] */
    bnd_net **nets;           /* one per worker (generic path) */
    const bab_opts *o;
    double deadline;
    int64_t n0, ny;
    int batch, alpha_iters;
    int shrink;               /* cut boxes by the rows' linear bounds (shrink.c) */
    int exact_k;              /* refute open boxes with <= this many unstable
                                 ReLUs pattern by pattern (exact_box.c); -1: off */
    double reshrink;          /* a cut leaving less than this volume: bound again unsplit */
    const double *root_lo, *root_hi; /* the search's box (moving inputs when folded) */
    /* folded fixed inputs: the search runs over n0 = the moving inputs
     * idx[0..n0) of the network's nx; full[] holds the fixed values */
    const int64_t *idx;
    const double *full;
    int64_t nx;
    double *root_pre;
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    double *lo, *hi;          /* stack of boxes */
    double *pre;              /* their inherited pre-activation bounds (np each) */
    int64_t np;               /* npi + nfn (0: generic path) */
    int64_t npi, nfn;         /* bnd_mlp_n_pre, bnd_mlp_n_fn (0: intervals only) */
    int64_t n, cap;
    int64_t max_boxes;        /* the memory budget in boxes (bab_opts.memory) */
    int64_t reserved;         /* boxes the busy workers may still push */
    int out_of_memory;        /* stopped: even batches of 1 would pass max_boxes */
    int busy, done, found, timed_out, rc, n_threads;
    int64_t n_stuck;          /* open boxes too small to split */
    err e;
    double *x;                /* the counterexample */
    int64_t n_boxes, n_batches, n_evals, n_attacks, batches_since_attack;
    double t_start, next_global; /* long runs: attacks on the whole box */
    uint64_t global_seed;
    double t_bound, t_attack;
    double box_time;          /* running mean of bounding seconds per box */
    int64_t ex_tried, ex_refuted, ex_patterns, ex_lps; /* exact_box.c's counts */
} split_run;

static int push(split_run *s, const double *lo, const double *hi, const double *pre)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 1024;
        if (cap > s->max_boxes)
            cap = s->max_boxes;
        if (s->n >= cap)
            return err_set(&s->e, ERR_NOMEM, "input split: more than %lld boxes pending",
                           (long long)s->max_boxes);
        double *a = realloc(s->lo, (size_t)(cap * s->n0) * sizeof(double));
        if (a)
            s->lo = a;
        double *b = a ? realloc(s->hi, (size_t)(cap * s->n0) * sizeof(double)) : NULL;
        if (!a || !b)
            return err_set(&s->e, ERR_NOMEM, "input split: out of memory");
        s->hi = b;
        if (s->np) {
            double *c = realloc(s->pre, (size_t)(cap * s->np) * sizeof(double));
            if (!c)
                return err_set(&s->e, ERR_NOMEM, "input split: out of memory");
            s->pre = c;
        }
        s->cap = cap;
    }
    memcpy(s->lo + s->n * s->n0, lo, (size_t)s->n0 * sizeof(double));
    memcpy(s->hi + s->n * s->n0, hi, (size_t)s->n0 * sizeof(double));
    if (s->np)
        memcpy(s->pre + s->n * s->np, pre, (size_t)s->np * sizeof(double));
    s->n++;
    return 0;
}

/* Per-worker buffers for one batch. */
typedef struct {
    int64_t cap;
    double *lo, *hi, *lb, *A, *X, *Y, *score;
    double *clo, *chi;        /* children: 2 per box */
    double *pre, *pre_out;    /* inherited / computed pre-activation records */
    int64_t *cpar;            /* each child's parent in the batch (its record) */
    int64_t n_child, n_stuck;
    double *cand;             /* a candidate that passed the check */
    int has_cand;
    bab_exact *ex;            /* NULL: no exact refutation */
    err e;
} work;

static void work_free(work *w)
{
    bab_exact_free(w->ex);
    free(w->lo), free(w->hi), free(w->lb), free(w->A), free(w->X), free(w->Y);
    free(w->score), free(w->clo), free(w->chi), free(w->cand);
    free(w->pre), free(w->pre_out), free(w->cpar);
}

static int work_init(work *w, const split_run *s)
{
    int64_t B = s->batch, n0 = s->n0, k = s->bc.n_rows;
    memset(w, 0, sizeof *w);
    w->cap = B;
    w->lo = malloc((size_t)(B * n0) * sizeof(double));
    w->hi = malloc((size_t)(B * n0) * sizeof(double));
    w->lb = malloc((size_t)(B * k) * sizeof(double));
    w->A = malloc((size_t)(B * k * n0) * sizeof(double));
    /* candidates: the centre and one corner per clause of each box */
    w->X = malloc((size_t)((1 + s->n_cls) * B * n0) * sizeof(double));
    w->Y = malloc((size_t)((1 + s->n_cls) * B * s->ny) * sizeof(double));
    w->score = malloc((size_t)B * sizeof(double));
    w->clo = malloc((size_t)(2 * B * n0) * sizeof(double));
    w->chi = malloc((size_t)(2 * B * n0) * sizeof(double));
    w->cand = malloc((size_t)s->nx * sizeof(double)); /* the network's input */
    int64_t np = s->np ? s->np : 1;
    w->pre = malloc((size_t)(B * np) * sizeof(double));
    w->pre_out = malloc((size_t)(B * np) * sizeof(double));
    w->cpar = malloc((size_t)(2 * B) * sizeof(int64_t));
    int ex_ok = 1;
    if (s->exact_k >= 0)
        ex_ok = (w->ex = bab_exact_new(s->mlp, &s->bc, s->cl_first, s->n_cls, s->exact_k)) !=
                NULL;
    if (!w->pre || !w->pre_out || !w->cpar || !w->lo || !w->hi || !w->lb || !w->A || !w->X ||
        !w->Y || !w->score || !w->clo || !w->chi || !w->cand || !ex_ok) {
        work_free(w);
        return -1;
    }
    return 0;
}

/* Lower bounds (and input coefficients, when available) of the clause rows
 * over the B boxes of w. Returns 1 if A is filled, 0 if not, < 0 on error. */
static int bound_batch(split_run *s, int tid, work *w, int64_t B)
{
    int k = s->bc.n_rows;
    if (s->mlp && s->nfn) { /* a box's record: its intervals, then its lines */
        int rc = bnd_mlp_bound_fn(s->mlp, B, w->lo, w->hi, k, s->bc.C, s->alpha_iters, w->pre,
                                  w->pre_out, w->pre + s->npi, w->pre_out + s->npi, s->np, w->lb,
                                  w->A, &w->e);
        return rc ? rc : 1;
    }
    if (s->mlp) {
        int rc = bnd_mlp_bound_pre(s->mlp, B, w->lo, w->hi, k, s->bc.C, s->alpha_iters,
                                   s->np ? w->pre : NULL, s->np ? w->pre_out : NULL, w->lb,
                                   w->A, &w->e);
        return rc ? rc : 1;
    }
    for (int64_t b = 0; b < B; b++) {
        int rc = bnd_compute(s->nets[tid], BND_CROWN, w->lo + b * s->n0, w->hi + b * s->n0,
                             s->bc.C, k, w->lb + b * k, NULL, &w->e);
        if (rc)
            return rc;
    }
    return 0;
}

/* A point of the search (n0 coordinates) as the network's input (nx). */
static void to_full(const split_run *s, const double *x, double *xf)
{
    if (!s->idx) {
        memcpy(xf, x, (size_t)s->n0 * sizeof(double));
        return;
    }
    memcpy(xf, s->full, (size_t)s->nx * sizeof(double));
    for (int64_t q = 0; q < s->n0; q++)
        xf[s->idx[q]] = x[q];
}

/* 1 if y violates some clause (all its rows hold, tolerance 0). */
static int clause_holds(const split_run *s, const double *y)
{
    for (int c = 0; c < s->n_cls; c++)
        if (spec_clause_holds(&s->cls[c], s->ny, y, 0.0))
            return 1;
    return 0;
}

/* Candidates in each unrefuted box: the corner minimising the best row's
 * linear lower function (when A is known) and the centre; a violating one
 * is re-checked against the original region. */
static int try_candidates(split_run *s, work *w, int64_t B, const int *open, const int *rows,
                          int have_A, int64_t *n_evals)
{
    int nc = s->n_cls;
    int64_t n0 = s->n0, k = s->bc.n_rows, np = 0;
    for (int64_t b = 0; b < B; b++) {
        if (!open[b])
            continue;
        const double *lo = w->lo + b * n0, *hi = w->hi + b * n0;
        double *x = w->X + np * n0;
        for (int64_t j = 0; j < n0; j++)
            x[j] = 0.5 * lo[j] + 0.5 * hi[j];
        np++;
        for (int c = 0; have_A && c < nc; c++) {
            /* each clause still open here: its best row's minimising corner
             * (rows[] < 0: the clause is refuted on this box) */
            int r = rows[b * nc + c];
            if (r < 0)
                continue;
            const double *a = w->A + (b * k + r) * n0;
            x = w->X + np * n0;
            for (int64_t j = 0; j < n0; j++)
                x[j] = a[j] > 0 ? lo[j] : hi[j];
            np++;
        }
    }
    if (np == 0)
        return 0;
    int rc;
    if (s->mlp) {
        rc = bnd_mlp_eval(s->mlp, np, w->X, w->Y, &w->e);
    } else {
        rc = 0;
        for (int64_t t = 0; t < np && rc == 0; t++)
            rc = nn_eval(s->g, w->X + t * n0, w->Y + t * s->ny, &w->e);
    }
    if (rc)
        return rc;
    *n_evals += np;
    for (int64_t t = 0; t < np; t++) {
        if (!clause_holds(s, w->Y + t * s->ny))
            continue;
        to_full(s, w->X + t * n0, w->cand);
        rc = bab_check_counterexample(s->g, s->p, s->region, w->cand, NULL, &w->e);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            w->has_cand = 1;
            return 1;
        }
    }
    return 0;
}

/* Short PGD inside one box (a one-region property made of the box and the
 * clause); 1 with w->cand filled when it finds a checked counterexample. */
static int attack_box(split_run *s, work *w, const double *blo, const double *bhi,
                      int64_t *n_evals)
{
    double lo[s->nx], hi[s->nx];
    to_full(s, blo, lo);
    to_full(s, bhi, hi);
    spec_region reg = { lo, hi, s->n_cls, (spec_clause *)s->cls };
    spec_property sub = { s->p->n_x, s->p->n_y, 1, &reg };
    bab_attack_opts ao = { .deadline = s->deadline, .restarts = 2, .steps = 15,
                           .samples = 20, .seed = s->o->seed + (uint64_t)*n_evals };
    int rc = bab_attack(s->g, &sub, 0, &ao, w->cand, n_evals, &w->e);
    if (rc == 1) { /* the box lies in the region: check against the original */
        rc = bab_check_counterexample(s->g, s->p, s->region, w->cand, NULL, &w->e);
        w->has_cand = rc == 1;
    }
    return rc;
}

/* Random-restart PGD over the obligation's root box for ~0.1 s; 1 with
 * w->cand filled when it finds a checked counterexample. */
static int attack_global(split_run *s, work *w, uint64_t seed, int64_t *n_evals)
{
    double dl = clock_now() + 0.1;
    if (s->deadline > 0 && dl > s->deadline) /* 0: no deadline */
        dl = s->deadline;
    const spec_region *orig = &s->p->regions[s->region];
    spec_region reg = { orig->lo, orig->hi, s->n_cls, (spec_clause *)s->cls };
    spec_property sub = { s->p->n_x, s->p->n_y, 1, &reg };
    bab_attack_opts ao = { .deadline = dl, .restarts = 10, .steps = 20, .samples = 2000,
                           .local = 20000, .seed = s->o->seed + 7919 * seed };
    int rc = bab_attack(s->g, &sub, 0, &ao, w->cand, n_evals, &w->e);
    if (rc == 1) {
        rc = bab_check_counterexample(s->g, s->p, s->region, w->cand, NULL, &w->e);
        w->has_cand = rc == 1;
    }
    return rc;
}

/* Cut open box b of w to the union over its open clauses of the parts
 * where the clause can hold (shrink.c); 0 when none is left (refuted). */
static int shrink_box(const split_run *s, work *w, int64_t b, const int *rows)
{
    int64_t n0 = s->n0, k = s->bc.n_rows;
    double *lo = w->lo + b * n0, *hi = w->hi + b * n0;
    double ulo[n0], uhi[n0], clo[n0], chi[n0];
    int any = 0;
    for (int c = 0; c < s->n_cls; c++) {
        if (rows[b * s->n_cls + c] < 0)
            continue; /* refuted already */
        int64_t first = s->cl_first[c], cnt = s->cl_first[c + 1] - first;
        if (!bab_shrink_box(n0, lo, hi, (int)cnt, w->A + (b * k + first) * n0,
                            w->lb + b * k + first, s->bc.d + first, clo, chi))
            continue;
        for (int64_t t = 0; t < n0; t++) {
            ulo[t] = any && ulo[t] < clo[t] ? ulo[t] : clo[t];
            uhi[t] = any && uhi[t] > chi[t] ? uhi[t] : chi[t];
        }
        any = 1;
    }
    if (!any)
        return 0;
    double vol = 1;
    for (int64_t t = 0; t < n0; t++) {
        if (hi[t] > lo[t])
            vol *= (uhi[t] - ulo[t]) / (hi[t] - lo[t]);
        lo[t] = ulo[t], hi[t] = uhi[t];
    }
    return vol < s->reshrink ? 2 : 1;
}

/* Bound, test and split one batch; children go to w->clo/chi. */
static int process(split_run *s, int tid, work *w, int64_t B, int attack_worst,
                   int64_t *n_evals, double *t_bound, double *t_attack)
{
    int64_t n0 = s->n0, k = s->bc.n_rows;
    int open[B > 0 ? B : 1], row[B > 0 ? B : 1], rows[B > 0 ? B * s->n_cls : 1];
    int again[B > 0 ? B : 1]; /* cut a lot: bound the cut box again, unsplit */
    double t0 = clock_now();
    int have_A = bound_batch(s, tid, w, B);
    *t_bound += clock_now() - t0;
    if (have_A < 0)
        return have_A;
    int64_t worst = -1;
    double worst_gap = INFINITY;
    int nc = s->n_cls;
    double cbest[nc];
    int crow[nc];
    for (int64_t b = 0; b < B; b++) {
        /* a clause is refuted when some of its rows can never hold, the box
         * when every clause is; else branch on the row closest to refuting
         * the least refuted clause */
        for (int c = 0; c < nc; c++)
            cbest[c] = -INFINITY, crow[c] = 0;
        for (int64_t i = 0; i < k; i++) {
            double gap = w->lb[b * k + i] - s->bc.d[i];
            int c = s->row_cl[i];
            if (gap > cbest[c])
                cbest[c] = gap, crow[c] = (int)i;
        }
        double best = INFINITY;
        row[b] = 0;
        for (int c = 0; c < nc; c++) {
            if (!(cbest[c] > 0) && cbest[c] < best)
                best = cbest[c], row[b] = crow[c];
            rows[b * nc + c] = cbest[c] > 0 ? -1 : crow[c];
        }
        open[b] = best < INFINITY;
        again[b] = 0;
        if (open[b] && have_A && s->shrink) {
            int k2 = shrink_box(s, w, b, rows);
            open[b] = k2 > 0;
            again[b] = k2 == 2;
        }
        if (open[b] && !again[b] && w->ex) {
            int xr = bab_exact_refute(w->ex, w->lo + b * n0, w->hi + b * n0,
                                      w->pre_out + b * s->np, &w->e);
            if (xr < 0)
                return xr;
            open[b] = !xr;
        }
        if (open[b] && best < worst_gap)
            worst_gap = best, worst = b;
    }
    t0 = clock_now();
    int rc = try_candidates(s, w, B, open, rows, have_A, n_evals);
    if (rc == 0 && attack_worst && worst >= 0)
        rc = attack_box(s, w, w->lo + worst * n0, w->hi + worst * n0, n_evals);
    *t_attack += clock_now() - t0;
    if (rc)
        return rc;
    w->n_child = w->n_stuck = 0;
    for (int64_t b = 0; b < B; b++) {
        if (!open[b])
            continue;
        const double *lo = w->lo + b * n0, *hi = w->hi + b * n0;
        const double *a = w->A + (b * k + row[b]) * n0;
        int64_t dim = -1;
        double best = -1, ms = 0, mw = 0;
        double sm[n0 > 0 ? n0 : 1], wr[n0 > 0 ? n0 : 1];
        for (int64_t j = 0; j < n0; j++) {
            double width = hi[j] - lo[j];
            sm[j] = have_A && width > 0 ? fabs(a[j]) * width : 0;
            wr[j] = width > 0 ? width / (s->root_hi[j] - s->root_lo[j]) : 0;
            ms = sm[j] > ms ? sm[j] : ms;
            mw = wr[j] > mw ? wr[j] : mw;
        }
        for (int64_t j = 0; j < n0; j++) {
            if (!(hi[j] - lo[j] > 0))
                continue;
            double sc;
            if (have_A && s->o->split == BAB_SPLIT_SMEAR)
                sc = sm[j];
            else if (have_A && s->o->split == BAB_SPLIT_MIX)
                sc = (ms > 0 ? sm[j] / ms : 0) + (mw > 0 ? wr[j] / mw : 0);
            else
                sc = wr[j];
            if (sc > best)
                best = sc, dim = j;
        }
        if (again[b]) {
            double *l1 = w->clo + w->n_child * n0, *h1 = w->chi + w->n_child * n0;
            memcpy(l1, lo, (size_t)n0 * sizeof(double));
            memcpy(h1, hi, (size_t)n0 * sizeof(double));
            w->cpar[w->n_child++] = b;
            continue;
        }
        double mid = dim >= 0 ? 0.5 * lo[dim] + 0.5 * hi[dim] : 0;
        if (dim < 0 || !(mid > lo[dim] && mid < hi[dim])) {
            w->n_stuck++; /* a point-like box still open: cannot decide it */
            continue;
        }
        double *l1 = w->clo + w->n_child * n0, *h1 = w->chi + w->n_child * n0;
        memcpy(l1, lo, (size_t)n0 * sizeof(double));
        memcpy(h1, hi, (size_t)n0 * sizeof(double));
        memcpy(l1 + n0, lo, (size_t)n0 * sizeof(double));
        memcpy(h1 + n0, hi, (size_t)n0 * sizeof(double));
        h1[dim] = mid;
        l1[n0 + dim] = mid;
        /* the parent's bounds hold on both halves */
        w->cpar[w->n_child] = w->cpar[w->n_child + 1] = b;
        if (have_A && a[dim] > 0) {
            /* the lower bound's minimising corner is in the lower half: push
             * it last, so depth first visits it first (sat comes sooner) */
            for (int64_t j = 0; j < n0; j++) {
                double t = l1[j];
                l1[j] = l1[n0 + j], l1[n0 + j] = t;
                t = h1[j];
                h1[j] = h1[n0 + j], h1[n0 + j] = t;
            }
        }
        w->n_child += 2;
    }
    return 0;
}

typedef struct {
    split_run *s;
    int tid;
} worker_arg;

static void *worker(void *arg)
{
    split_run *s = ((worker_arg *)arg)->s;
    int tid = ((worker_arg *)arg)->tid;
    work w;
    int init = work_init(&w, s);
    pthread_mutex_lock(&s->mu);
    if (init) {
        s->rc = err_set(&s->e, ERR_NOMEM, "input split: out of memory");
        s->done = 1;
    }
    for (;;) {
        while (!s->done && s->n == 0 && s->busy > 0)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->done || (s->n == 0 && s->busy == 0))
            break;
        if (clock_expired(s->deadline)) {
            s->timed_out = 1;
            break;
        }
        int64_t take = (s->n + s->n_threads - 1) / s->n_threads;
        if (take > s->batch)
            take = s->batch;
        /* the deadline is checked between batches: keep one batch near
         * 0.25 s (dist_shift's boxes cost ~10 ms, ACAS Xu's 0.1 ms) */
        if (s->box_time > 0 && (double)take * s->box_time > 0.25) {
            take = (int64_t)(0.25 / s->box_time);
            if (take < 1)
                take = 1;
        }
        /* the memory budget: a box taken comes back as at most two, so the
         * stack can grow to n + 2·reserved once the busy workers push, and
         * taking t more boxes makes that n + 2·reserved + t; smaller batches
         * (down to depth-first with 1) keep it in the budget */
        int64_t room = s->max_boxes - s->n - 2 * s->reserved;
        if (take > room) {
            if (room < 1 && s->busy > 0) {
                pthread_cond_wait(&s->cv, &s->mu);
                continue;
            }
            if (room < 1) {
                s->out_of_memory = 1;
                break;
            }
            take = room;
        }
        s->reserved += take;
        s->n -= take;
        memcpy(w.lo, s->lo + s->n * s->n0, (size_t)(take * s->n0) * sizeof(double));
        memcpy(w.hi, s->hi + s->n * s->n0, (size_t)(take * s->n0) * sizeof(double));
        if (s->np)
            memcpy(w.pre, s->pre + s->n * s->np, (size_t)(take * s->np) * sizeof(double));
        int attack = 0, global = 0;
        double now = clock_now();
        if (now >= s->next_global) {
            /* a run that lasts: a small counterexample region may hide
             * from the per-box attacks, so every 2 s, 0.1 s (~5% of the
             * time) goes to random-restart PGD over the whole box */
            global = 1;
            s->next_global = now + 2.0;
            s->global_seed++;
        }
        if (++s->batches_since_attack >= 2) {
            s->batches_since_attack = 0;
            attack = 1;
        }
        s->busy++;
        pthread_mutex_unlock(&s->mu);

        int64_t n_evals = 0;
        double t_bound = 0, t_attack = 0;
        w.has_cand = 0;
        int rc = 0;
        if (global) {
            double t0 = clock_now();
            rc = attack_global(s, &w, s->global_seed, &n_evals);
            t_attack += clock_now() - t0;
        }
        if (rc == 0)
            rc = process(s, tid, &w, take, attack, &n_evals, &t_bound, &t_attack);

        pthread_mutex_lock(&s->mu);
        s->busy--;
        s->reserved -= take;
        s->n_boxes += take;
        s->n_batches++;
        s->n_evals += n_evals;
        s->t_bound += t_bound;
        if (take > 0) { /* seconds of bounding per box, a running mean */
            double bt = t_bound / (double)take;
            s->box_time = s->box_time > 0 ? 0.8 * s->box_time + 0.2 * bt : bt;
        }
        s->t_attack += t_attack;
        s->n_attacks += attack;
        s->n_stuck += w.n_stuck;
        if (rc < 0) {
            if (!s->rc) {
                s->rc = rc;
                s->e = w.e;
            }
            s->done = 1;
        } else if (rc == 1 && w.has_cand) {
            if (!s->found) {
                memcpy(s->x, w.cand, (size_t)s->nx * sizeof(double));
                s->found = 1;
            }
            s->done = 1;
        } else {
            for (int64_t c = 0; c < w.n_child && !s->rc; c++) {
                int prc = push(s, w.clo + c * s->n0, w.chi + c * s->n0,
                               s->np ? w.pre_out + w.cpar[c] * s->np : NULL);
                if (prc) {
                    s->rc = prc;
                    s->done = 1;
                }
            }
        }
        pthread_cond_broadcast(&s->cv);
    }
    if (w.ex) {
        int64_t a, b, c, d;
        bab_exact_stats(w.ex, &a, &b, &c, &d);
        s->ex_tried += a, s->ex_refuted += b, s->ex_patterns += c, s->ex_lps += d;
    }
    s->done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!init) {
        work_free(&w);
        if (s->exact_k >= 0)
            glp_free_env(); /* GLPK's per-thread environment */
    }
    return NULL;
}

/* *s = a + b; 1 if that sum is exact (TwoSum's error term is 0). A summed
 * row stands for the sum of the real rows only when no entry rounded. */
static int exact_sum(double a, double b, double *s)
{
    double t = a + b, bb = t - a;
    *s = t;
    return (a - (t - bb)) + (b - bb) == 0;
}

/* The rows to bound for clause cl: its own, then the sums of pairs and of
 * all (k >= 3). If every row holds, so does every sum: a sum whose lower
 * bound exceeds its threshold refutes the clause too, and it is often
 * tighter than any single row (the relaxation errors partly cancel). Sums
 * whose coefficients would round are left out. */
static int augment_clause(split_run *s, int64_t ny, err *e)
{
    int total = 0;
    for (int c = 0; c < s->n_cls; c++) {
        int k = s->cls[c].n_rows;
        total += k > 8 ? k : k + (k >= 2 ? k * (k - 1) / 2 : 0) + (k >= 3 ? 1 : 0);
    }
    free(s->bc.C), free(s->bc.d), free(s->row_cl), free(s->cl_first);
    s->bc.C = calloc((size_t)(total * ny), sizeof(double));
    s->bc.d = calloc((size_t)total, sizeof(double));
    s->row_cl = calloc((size_t)total, sizeof(int));
    s->cl_first = calloc((size_t)(s->n_cls + 1), sizeof(int));
    if (!s->bc.C || !s->bc.d || !s->row_cl || !s->cl_first)
        return err_set(e, ERR_NOMEM, "input split: out of memory");
    s->bc.n_rows = total;
    int at = 0;
    for (int c = 0; c < s->n_cls; c++) {
        const spec_clause *cl = &s->cls[c];
        int k = cl->n_rows, first = at;
        double *C = s->bc.C, *d = s->bc.d;
        memcpy(C + at * ny, cl->C, (size_t)(k * ny) * sizeof(double));
        memcpy(d + at, cl->d, (size_t)k * sizeof(double));
        at += k;
        for (int i = 0; i < k && k <= 8; i++)
            for (int j = i + 1; j < k; j++) {
                int exact = 1;
                for (int64_t t = 0; t < ny; t++)
                    exact &= exact_sum(cl->C[i * ny + t], cl->C[j * ny + t], &C[at * ny + t]);
                /* the threshold rounded up: refuting needs lb > d_i + d_j */
                d[at] = fp_up(cl->d[i] + cl->d[j]);
                at += exact;
            }
        if (k >= 3 && k <= 8) {
            double dd = 0;
            int exact = 1;
            memset(C + at * ny, 0, (size_t)ny * sizeof(double));
            for (int i = 0; i < k; i++) {
                for (int64_t t = 0; t < ny; t++)
                    exact &= exact_sum(C[at * ny + t], cl->C[i * ny + t], &C[at * ny + t]);
                dd = fp_up(dd + cl->d[i]);
            }
            d[at] = dd;
            at += exact;
        }
        for (int i = first; i < at; i++)
            s->row_cl[i] = c;
        s->cl_first[c] = first;
    }
    s->cl_first[s->n_cls] = at;
    s->bc.n_rows = at;
    return 0;
}

/* Few inputs: the 3^n0 points of the root box whose coordinates are lower
 * ends, midpoints or upper ends (243 forward passes for ACAS Xu). ReLU
 * networks often violate at such points, and depth-first splitting reaches
 * them late or not at all (1_9 prop_7: a corner of a half box). 1 with s->x
 * filled when one passes bab_check_counterexample. */
static int grid_candidates(split_run *s, err *e)
{
    int64_t n0 = s->n0, n = 1;
    if (n0 > 8)
        return 0;
    for (int64_t j = 0; j < n0; j++)
        n *= 3;
    double *X = malloc((size_t)(n * n0) * sizeof(double));
    double *Y = malloc((size_t)(n * s->ny) * sizeof(double));
    int rc = 0;
    if (!X || !Y) {
        free(X), free(Y);
        return 0; /* optional: the search proper decides */
    }
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0, q = t; j < n0; j++, q /= 3) {
            double lo = s->root_lo[j], hi = s->root_hi[j];
            X[t * n0 + j] = q % 3 == 0 ? lo : q % 3 == 1 ? 0.5 * lo + 0.5 * hi : hi;
        }
    if (s->mlp)
        rc = bnd_mlp_eval(s->mlp, n, X, Y, e);
    else
        for (int64_t t = 0; t < n && rc == 0; t++)
            rc = nn_eval(s->g, X + t * n0, Y + t * s->ny, e);
    for (int64_t t = 0; t < n && rc == 0; t++) {
        if (!clause_holds(s, Y + t * s->ny))
            continue;
        to_full(s, X + t * n0, s->x);
        rc = bab_check_counterexample(s->g, s->p, s->region, s->x, NULL, e);
        if (rc == 1 || rc < 0)
            break;
    }
    free(X), free(Y);
    return rc;
}

/* One obligation: region r's box against the clauses cls. Sets *answer. */
static int run_obligation(split_run *s, bab_result *res, bab_answer *answer, err *e)
{
    s->n = s->reserved = 0;
    s->busy = s->done = s->found = s->timed_out = s->rc = s->out_of_memory = 0;
    s->n_stuck = 0;
    s->batches_since_attack = 0;
    s->t_start = clock_now();
    s->next_global = s->t_start + 0.5;
    int grc = grid_candidates(s, e);
    if (grc < 0)
        return grc;
    if (grc == 1) {
        *answer = BAB_SAT;
        return 0;
    }
    for (int64_t t = 0; t < s->np; t++) /* the root inherits nothing (NaN: no bound) */
        s->root_pre[t] = NAN;
    if (push(s, s->root_lo, s->root_hi, s->root_pre)) {
        *e = s->e;
        return ERR_NOMEM;
    }
    pthread_t th[BAB_MAX_THREADS];
    worker_arg args[BAB_MAX_THREADS];
    int started = 0;
    for (int t = 1; t < s->n_threads; t++) {
        args[t] = (worker_arg){ s, t };
        if (pthread_create(&th[t], NULL, worker, &args[t]) != 0)
            break;
        started++;
    }
    args[0] = (worker_arg){ s, 0 };
    worker(&args[0]);
    for (int t = 1; t <= started; t++)
        pthread_join(th[t], NULL);
    res->n_domains += s->n_boxes;
    res->n_bound_calls += s->n_batches;
    res->n_evals += s->n_evals;
    res->t_bound += s->t_bound;
    res->t_attack += s->t_attack;
    res->n_attacks += s->n_attacks;
    s->n_boxes = s->n_batches = s->n_evals = s->n_attacks = 0;
    s->t_bound = s->t_attack = 0;
    if (s->rc == ERR_TIMEOUT && !s->found) /* stopped inside a bound computation */
        s->rc = 0, s->timed_out = 1;
    if (s->rc) {
        *e = s->e;
        return s->rc;
    }
    if (s->found)
        *answer = BAB_SAT;
    else if (s->timed_out)
        *answer = BAB_TIMEOUT;
    else if (s->n_stuck || s->out_of_memory)
        *answer = BAB_UNKNOWN;
    else
        *answer = BAB_UNSAT;
    return 0;
}

static int split_all(const nn_graph *g, const spec_property *p, const bab_opts *o,
                     double deadline, int fold, bab_result *res, err *e)
{
    split_run s;
    memset(&s, 0, sizeof s);
    s.g = g, s.p = p, s.o = o, s.deadline = deadline;
    s.n0 = s.nx = p->n_x, s.ny = p->n_y;
    s.batch = o->batch > 0 ? o->batch : 128;
    s.alpha_iters = getenv("NNV_ALPHA") ? atoi(getenv("NNV_ALPHA")) : 0;
    s.shrink = !(getenv("NNV_SHRINK") && atoi(getenv("NNV_SHRINK")) == 0);
    s.reshrink = getenv("NNV_RESHRINK") ? atof(getenv("NNV_RESHRINK")) : 0.8;
    s.n_threads = o->threads > 0 ? o->threads : 2;
    if (s.n_threads > BAB_MAX_THREADS)
        s.n_threads = BAB_MAX_THREADS;
    s.x = res->x;
    bnd_net *net0 = NULL;
    bnd_mlp *mlp = NULL;
    int rc = bnd_net_new(g, &net0, e);
    if (rc)
        return rc;
    bnd_set_deadline(net0, deadline);
    int64_t *idx = NULL;
    double *flo = NULL, *fhi = NULL;
    if (fold) { /* the moving inputs only; a chain after folding, or nothing */
        const spec_region *reg = &p->regions[0];
        int64_t nm = 0;
        idx = malloc((size_t)p->n_x * sizeof(int64_t));
        flo = malloc((size_t)p->n_x * sizeof(double));
        fhi = malloc((size_t)p->n_x * sizeof(double));
        rc = !idx || !flo || !fhi ? err_set(e, ERR_NOMEM, "input split: out of memory")
             : p->n_regions != 1 ? err_set(e, ERR_UNSUP, "input split: folding needs one region")
                                 : bnd_fold_fixed_inputs(net0, reg->lo, reg->hi, idx, &nm, e);
        if (rc == 0)
            rc = err_set(e, ERR_UNSUP, "input split: no fixed inputs to fold");
        if (rc == 1)
            rc = bnd_mlp_new(net0, &mlp, e);
        if (rc)
            goto out;
        for (int64_t q = 0; q < nm; q++)
            flo[q] = reg->lo[idx[q]], fhi[q] = reg->hi[idx[q]];
        s.n0 = nm, s.idx = idx, s.full = reg->lo;
    }
    rc = mlp ? 0 : getenv("NNV_GENERIC") ? ERR_UNSUP : bnd_mlp_new(net0, &mlp, e);
    if (rc == ERR_UNSUP) {
        /* generic path: one bnd_net per worker */
        rc = 0;
        s.nets = calloc((size_t)s.n_threads, sizeof *s.nets);
        if (!s.nets)
            rc = err_set(e, ERR_NOMEM, "input split: out of memory");
        for (int t = 0; rc == 0 && t < s.n_threads; t++)
            if ((rc = t == 0 ? (s.nets[0] = net0, net0 = NULL, 0) : bnd_net_new(g, &s.nets[t], e)) == 0)
                bnd_set_deadline(s.nets[t], deadline);
    }
    if (rc)
        goto out;
    s.mlp = mlp;
    s.npi = mlp && !getenv("NNV_NOREUSE") ? bnd_mlp_n_pre(mlp) : 0;
    s.nfn = s.npi && !(getenv("NNV_LINES") && atoi(getenv("NNV_LINES")) == 0) ? bnd_mlp_n_fn(mlp)
                                                                              : 0;
    s.np = s.npi + s.nfn;
    s.root_pre = malloc((size_t)(s.np ? s.np : 1) * sizeof(double));
    if (!s.root_pre) {
        rc = err_set(e, ERR_NOMEM, "input split: out of memory");
        goto out;
    }
    /* the memory budget: at most a quarter for the workers' batch buffers
     * (work_init: 8 n0 + k + k n0 + 2 ny + 3 + 2 np doubles a box, k the
     * rows bounded for a region: every clause's with their sums), the rest
     * for the stack (2 n0 + np doubles a box) */
    size_t memory = o->memory ? o->memory : bab_default_memory();
    int64_t k_max = 1;
    for (int r = 0; r < p->n_regions; r++) {
        int64_t kr = 0;
        for (int c = 0; c < p->regions[r].n_clauses; c++) {
            int64_t k = p->regions[r].clauses[c].n_rows;
            kr += k > 8 ? k : k + k * (k - 1) / 2 + (k >= 3);
        }
        k_max = kr > k_max ? kr : k_max;
    }
    int batch0 = s.batch;
budget:
    s.batch = batch0;
    size_t per_box = (size_t)(8 * s.n0 + k_max + k_max * s.n0 + 2 * s.ny + 3 + 2 * s.np) *
                     sizeof(double);
    size_t fit = memory / 4 / ((size_t)s.n_threads * per_box);
    if ((size_t)s.batch > fit)
        s.batch = fit > 1 ? (int)fit : 1;
    size_t batch_bytes = (size_t)s.batch * (size_t)s.n_threads * per_box;
    size_t stack_bytes = memory > batch_bytes ? memory - batch_bytes : 0;
    s.max_boxes = (int64_t)(stack_bytes / ((2 * (size_t)s.n0 + (size_t)s.np) * sizeof(double)));
    if (s.max_boxes > MAX_BOXES)
        s.max_boxes = MAX_BOXES;
    if (s.nfn && s.max_boxes < 4096) {
        s.np = s.npi, s.nfn = 0; /* a tight budget: intervals only, 6x smaller */
        goto budget;
    }
    if (s.np && s.max_boxes < 4096) {
        s.np = s.npi = 0; /* tighter: boxes without inherited bounds, 60x smaller */
        goto budget;
    }
    if (s.max_boxes < 2)
        s.max_boxes = 2;
    /* exact refutation of boxes with few unstable ReLUs needs the boxes'
     * lines (nfn) and ReLU-only chains */
    s.exact_k = -1;
    if (s.mlp && s.nfn && bnd_mlp_all_relu(s.mlp))
        s.exact_k = getenv("NNV_EXACT") ? atoi(getenv("NNV_EXACT")) : -1;
    if (s.exact_k > BAB_EXACT_MAX)
        s.exact_k = BAB_EXACT_MAX;
    if (o->verbose)
        fprintf(stderr, "input split: batch %d, at most %lld boxes pending (%.0f MB)\n", s.batch,
                (long long)s.max_boxes, (double)memory / 1e6);
    int blas_threads = openblas_get_num_threads();
    /* chain nets: the matrices are small, OpenBLAS's own threads only spin
     * (20% of a single worker's time on ACAS Xu went to sched_yield) */
    int one_blas = s.n_threads > 1 || s.mlp;
    if (one_blas)
        openblas_set_num_threads(1);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    bab_answer overall = BAB_UNSAT;
    for (int r = 0; r < p->n_regions && overall != BAB_SAT && rc == 0; r++) {
        const spec_region *reg = &p->regions[r];
        s.region = r;
        s.root_lo = fold ? flo : reg->lo, s.root_hi = fold ? fhi : reg->hi;
        /* the clauses together, one obligation (intermediate bounds, the
         * costly part, are shared, and a counterexample to any clause ends
         * the search); NNV_SEPARATE=1: one obligation per clause */
        int joint = !getenv("NNV_SEPARATE");
        for (int c = 0; c < reg->n_clauses && joint; c++)
            joint = reg->clauses[c].n_rows > 0;
        for (int c = 0; c < (joint ? 1 : reg->n_clauses) && rc == 0; c++) {
            s.cls = &reg->clauses[c];
            s.n_cls = joint ? reg->n_clauses : 1;
            if (s.cls->n_rows == 0) {
                /* no condition: any point of the box is a counterexample */
                for (int64_t j = 0; j < p->n_x; j++)
                    res->x[j] = 0.5 * reg->lo[j] + 0.5 * reg->hi[j];
                rc = bab_check_counterexample(g, p, r, res->x, NULL, e);
                if (rc == 1) {
                    overall = BAB_SAT, res->region = r, rc = 0;
                    break;
                }
                if (rc == 0)
                    overall = BAB_UNKNOWN;
                continue;
            }
            bab_answer a;
            rc = augment_clause(&s, p->n_y, e);
            if (rc == 0)
                rc = run_obligation(&s, res, &a, e);
            if (rc)
                break;
            if (o->verbose)
                fprintf(stderr, "input split: region %d clause %d: %s (%lld boxes so far)\n", r,
                        c, bab_answer_name(a), (long long)res->n_domains);
            if (o->verbose && s.exact_k >= 0)
                fprintf(stderr, "input split: exact patterns: %lld boxes tried, %lld refuted, "
                        "%lld patterns, %lld LPs\n", (long long)s.ex_tried,
                        (long long)s.ex_refuted, (long long)s.ex_patterns, (long long)s.ex_lps);
            if (a == BAB_SAT) {
                overall = BAB_SAT;
                res->region = r;
                break;
            }
            if (a == BAB_TIMEOUT) {
                overall = BAB_TIMEOUT;
                break;
            }
            if (a == BAB_UNKNOWN)
                overall = BAB_UNKNOWN;
        }
        if (overall == BAB_TIMEOUT)
            break;
    }
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    if (one_blas)
        openblas_set_num_threads(blas_threads);
    if (rc == 0) {
        res->answer = overall;
        if (overall == BAB_SAT)
            rc = bab_check_counterexample(g, p, res->region, res->x, res->y, e) == 1
                     ? 0
                     : err_set(e, ERR_VALUE, "input split: counterexample failed its re-check");
    }
out:
    if (s.nets)
        for (int t = 0; t < s.n_threads; t++)
            bnd_net_free(s.nets[t]);
    free(s.nets);
    bnd_mlp_free(mlp);
    bnd_net_free(net0);
    free(s.lo), free(s.hi), free(s.pre), free(s.root_pre);
    free(s.bc.C), free(s.bc.d), free(s.row_cl), free(s.cl_first);
    free(idx), free(flo), free(fhi);
    return rc;
}

int bab_input_split(const nn_graph *g, const spec_property *p, const bab_opts *o,
                    double deadline, bab_result *res, err *e)
{
    return split_all(g, p, o, deadline, 0, res, e);
}

int bab_input_split_folded(const nn_graph *g, const spec_property *p, const bab_opts *o,
                           double deadline, bab_result *res, err *e)
{
    return split_all(g, p, o, deadline, 1, res, e);
}
