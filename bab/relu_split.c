/* relu_split.c: branch and bound over ReLU activation splits (beta-CROWN BaB).
 *
 * A domain is the region's box plus split decisions (neuron -> active or
 * inactive), its pre-activation bounds, its beta (warm start for the
 * children) and the neuron chosen to split it next. Each domain is bounded by
 * bnd_beta_bound over the rows of every clause; it is verified when every
 * clause has a row whose lower bound exceeds its threshold. Open domains wait
 * in a heap ordered by their worst clause margin (best-first: the hardest
 * first); when the domains' memory exceeds a budget a worker keeps going
 * depth-first with one child. The relaxed minimiser x* of each bound is
 * checked as a counterexample (forward pass). Workers (one bnd_net each)
 * share the heap under a mutex; the property holds when the heap is empty
 * and no worker is busy. */
#include "bab.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <glpk.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bound/bound.h"
#include "../core/clock.h"
#include "../core/rng.h"
#include "branch.h"
#include "refine.h"

typedef struct rdom {
    double key;          /* worst clause margin (lower is harder) */
    int ns, depth;
    int64_t branch;      /* neuron to split next */
    bnd_split *splits;   /* ns */
    double *beta;        /* k x ns */
    double *alpha;       /* k x nr lower slopes (warm start), or NULL */
    double *plo, *phi;   /* nr */
    uint8_t *open;       /* n_clauses: 1 while the clause is not refuted */
    size_t bytes;
} rdom;

typedef struct shared {
    const nn_graph *g;
    const spec_property *p;
    int region;
    const bab_relu_opts *o;
    int k, n_clauses;
    double *C, *d;
    int *clause;
    int64_t nr, n_in;
    int n_relu_layers;
    int64_t *starts;
    bnd_mlp *mlp;        /* chain MLP form for batched bounds, or NULL */
    double lp_until;     /* root only: LP tightening until then (0: off) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rdom **heap;
    size_t n_heap, cap_heap, mem;
    size_t mem_local;    /* domains on the workers' depth-first stacks */
    int busy, stop, stuck, out_of_memory;
    double t_report;
    bab_answer ans;
    double *x;           /* counterexample */
    int64_t n_domains, n_evals;
    int rc;
    err e;
} shared;

#define RELU_MAX_BATCH 256

/* ---- heap (min key on top) ---- */
static int heap_push(shared *s, rdom *d)
{
    if (s->n_heap == s->cap_heap) {
        size_t cap = s->cap_heap ? 2 * s->cap_heap : 1024;
        rdom **h = realloc(s->heap, cap * sizeof *h);
        if (!h)
            return -1;
        s->heap = h, s->cap_heap = cap;
    }
    size_t i = s->n_heap++;
    while (i > 0 && s->heap[(i - 1) / 2]->key > d->key) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = d;
    s->mem += d->bytes;
    return 0;
}

static rdom *heap_pop(shared *s)
{
    rdom *top = s->heap[0], *last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && s->heap[c + 1]->key < s->heap[c]->key)
            c++;
        if (s->heap[c]->key >= last->key)
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n)
        s->heap[i] = last;
    s->mem -= top->bytes;
    return top;
}

static rdom *dom_new(int ns, int k, int64_t nr, int nc, int with_alpha)
{
    size_t na = with_alpha ? (size_t)k * (size_t)nr : 0;
    size_t bytes = sizeof(rdom) + (size_t)ns * sizeof(bnd_split) +
                   ((size_t)k * (size_t)ns + 2 * (size_t)nr + na) * sizeof(double) + (size_t)nc;
    rdom *d = calloc(1, bytes);
    if (!d)
        return NULL;
    d->bytes = bytes;
    d->ns = ns;
    d->beta = (double *)(d + 1);
    d->plo = d->beta + (size_t)k * (size_t)ns;
    d->phi = d->plo + nr;
    d->alpha = na ? d->phi + nr : NULL;
    for (size_t q = 0; q < na; q++)
        d->alpha[q] = -1; /* CROWN's slope */
    d->splits = (bnd_split *)(d->phi + nr + na);
    d->open = (uint8_t *)(d->splits + ns);
    memset(d->open, 1, (size_t)nc);
    d->branch = -1;
    return d;
}

/* ---- per-worker state ---- */
typedef struct worker {
    shared *s;
    bnd_net *net;
    double *lb, *A, *xs, *tscore, *y;
    double *Cc, *dc, *lbc, *Ac, *xsc, *alc;  /* compressed rows (bound_rows) */
    int *rmap, *cmap, *clc;
    int64_t *top;
    int8_t *side;
} worker;

static int relu_layer_of(const shared *s, int64_t j)
{
    int l = 0;
    while (l + 1 < s->n_relu_layers && s->starts[l + 1] <= j)
        l++;
    return l;
}

/* Worst clause margin of lb: min over clauses of max over its rows of lb - d;
 * *row gets that clause's best row. */
static double worst_margin(const shared *s, const double *lb, int *row)
{
    double worst = INFINITY;
    *row = 0;
    for (int c = 0; c < s->n_clauses; c++) {
        double best = -INFINITY;
        int br = -1;
        for (int q = 0; q < s->k; q++)
            if (s->clause[q] == c && (br < 0 || lb[q] - s->d[q] > best))
                best = lb[q] - s->d[q], br = q;
        if (isnan(best))
            best = -INFINITY;
        if (best < worst)
            worst = best, *row = br;
    }
    return worst;
}

/* bnd_beta_bound over the rows of the open clauses only (verified clauses
 * stay verified in sub-domains): lb of closed rows is +inf; beta (k x ns),
 * A (k x nr) and xs (k x n_in) are read/written at the full row positions. */
static int bound_rows(worker *w, const bnd_domain *dom, const uint8_t *open, int iters,
                      double *beta, double *alpha, double *plo, double *phi, double *A, double *xs,
                      err *e)
{
    shared *s = w->s;
    int k = s->k, kc = 0, nc = 0, ns = dom->n_splits;
    int64_t ny = s->p->n_y;
    for (int c = 0; c < s->n_clauses; c++)
        if (open[c])
            w->cmap[c] = nc++;
    for (int q = 0; q < k; q++)
        if (open[s->clause[q]]) {
            w->rmap[kc] = q;
            memcpy(w->Cc + (size_t)kc * (size_t)ny, s->C + (size_t)q * (size_t)ny, (size_t)ny * sizeof(double));
            w->dc[kc] = s->d[q];
            w->clc[kc] = w->cmap[s->clause[q]];
            kc++;
        }
    double *bc = malloc((size_t)(kc ? kc : 1) * (size_t)(ns ? ns : 1) * sizeof(double));
    if (!bc)
        return err_set(e, ERR_NOMEM, "verify: out of memory");
    size_t nr = (size_t)s->nr;
    for (int r = 0; r < kc; r++) {
        memcpy(bc + (size_t)r * (size_t)ns, beta + (size_t)w->rmap[r] * (size_t)ns, (size_t)ns * sizeof(double));
        if (alpha)
            memcpy(w->alc + (size_t)r * nr, alpha + (size_t)w->rmap[r] * nr, nr * sizeof(double));
    }
    bnd_beta_opts bo = {.iters = iters, .lr = s->o->beta_lr, .alpha = s->o->alpha,
                        .alpha_lr = s->o->alpha_lr, .d = w->dc, .clause = w->clc, .n_clauses = nc};
    bnd_beta_out out = {.lb = w->lbc, .beta = bc, .alpha = alpha ? w->alc : NULL, .plo = plo,
                        .phi = phi, .A_relu = A ? w->Ac : NULL, .x_star = xs ? w->xsc : NULL};
    int rc = bnd_beta_bound(w->net, dom, w->Cc, kc, &bo, &out, e);
    if (rc >= 0) {
        for (int q = 0; q < k; q++)
            w->lb[q] = INFINITY;
        for (int r = 0; r < kc; r++) {
            int q = w->rmap[r];
            w->lb[q] = w->lbc[r];
            memcpy(beta + (size_t)q * (size_t)ns, bc + (size_t)r * (size_t)ns, (size_t)ns * sizeof(double));
            if (alpha && rc == 0)
                memcpy(alpha + (size_t)q * nr, w->alc + (size_t)r * nr, nr * sizeof(double));
            if (A && rc == 0)
                memcpy(A + (size_t)q * (size_t)s->nr, w->Ac + (size_t)r * (size_t)s->nr, (size_t)s->nr * sizeof(double));
            if (xs && rc == 0)
                memcpy(xs + (size_t)q * (size_t)s->n_in, w->xsc + (size_t)r * (size_t)s->n_in, (size_t)s->n_in * sizeof(double));
        }
    }
    free(bc);
    return rc;
}

static int finish_domain(worker *w, rdom *d, err *e);

/* Bound the domain (splits, parent bounds plo/phi) into d (beta in/out,
 * plo/phi out, key). Returns 1 if verified, 0 if open, 2 if a counterexample
 * was found (in w->s->x under the lock), < 0 on error. */
static int bound_domain(worker *w, rdom *d, const double *plo, const double *phi, int interm_from,
                        int interm_iters, int iters, err *e)
{
    shared *s = w->s;
    bnd_domain dom = {s->p->regions[s->region].lo, s->p->regions[s->region].hi, plo, phi,
                      d->splits, d->ns, interm_from, interm_iters, plo ? 0 : s->lp_until};
    int rc = bound_rows(w, &dom, d->open, iters, d->beta, d->alpha, d->plo, d->phi, w->A, w->xs, e);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        d->key = INFINITY;
        return 1;
    }
    return finish_domain(w, d, e);
}

/* After bounding d (lower bounds w->lb, ReLU-output coefficients w->A and
 * minimisers w->xs, all k rows): its open clauses, key, counterexample
 * candidates and branching choice. Returns as bound_domain. */
static int finish_domain(worker *w, rdom *d, err *e)
{
    shared *s = w->s;
    int rc = 0;
    bnd_domain dom = {s->p->regions[s->region].lo, s->p->regions[s->region].hi, d->plo, d->phi,
                      d->splits, d->ns, INT_MAX, 0, 0};
    for (int q = 0; q < s->k; q++)
        if (w->lb[q] > s->d[q])
            d->open[s->clause[q]] = 0;
    int row;
    d->key = worst_margin(s, w->lb, &row);
    if (d->key > 0)
        return 1;
    /* the relaxed minimisers of the hardest clause's rows as counterexamples,
     * and (clauses of several rows, e.g. an output interval) points on the
     * segments between them: where one row's minimiser overshoots another
     * row, continuity puts violating points in between */
    int cl = s->clause[row];
    for (int q = 0; q < s->k; q++) {
        if (s->clause[q] != cl)
            continue;
        for (int q2 = q; q2 < s->k; q2++) {
            if (s->clause[q2] != cl)
                continue;
            int steps = q2 == q ? 1 : 16;
            for (int t = 0; t < steps; t++) {
                const double *a = w->xs + q * s->n_in, *b = w->xs + q2 * s->n_in;
                double f = steps == 1 ? 0 : (t + 0.5) / steps;
                for (int64_t i = 0; i < s->n_in; i++)
                    w->y[i] = a[i] + f * (b[i] - a[i]);
                rc = bab_check_counterexample(s->g, s->p, s->region, w->y, NULL, e);
                __atomic_add_fetch(&s->n_evals, 1, __ATOMIC_RELAXED);
                if (rc < 0)
                    return rc;
                if (rc == 1) {
                    pthread_mutex_lock(&s->mu);
                    if (!s->stop) {
                        memcpy(s->x, w->y, (size_t)s->n_in * sizeof(double));
                        s->ans = BAB_SAT;
                        s->stop = 1;
                    }
                    pthread_cond_broadcast(&s->cv);
                    pthread_mutex_unlock(&s->mu);
                    return 2;
                }
            }
        }
    }
    /* branching choice */
    memset(w->side, 0, (size_t)s->nr);
    for (int q = 0; q < d->ns; q++)
        w->side[d->splits[q].neuron] = (int8_t)d->splits[q].side;
    int ntop = s->o->branching == BAB_BRANCH_FSB ? s->o->fsb_k : 1;
    int nt = bab_branch_top(s->nr, d->plo, d->phi, w->side, w->A + (size_t)row * (size_t)s->nr,
                            ntop, w->top, w->tscore);
    d->branch = nt > 0 ? w->top[0] : -1;
    if (nt > 1) {
        /* filtered smart branching: one cheap pass per child of each candidate */
        rdom *c = dom_new(d->ns + 1, s->k, s->nr, s->n_clauses, s->o->alpha);
        if (!c)
            return err_set(e, ERR_NOMEM, "verify: out of memory");
        double best = -INFINITY;
        for (int t = 0; t < nt && rc >= 0; t++) {
            double worst = INFINITY;
            for (int sd = 1; sd >= -1 && rc >= 0; sd -= 2) {
                memcpy(c->splits, d->splits, (size_t)d->ns * sizeof(bnd_split));
                c->splits[d->ns] = (bnd_split){w->top[t], sd};
                for (int q = 0; q < s->k; q++) {
                    memcpy(c->beta + (size_t)q * (size_t)(d->ns + 1), d->beta + (size_t)q * (size_t)d->ns,
                           (size_t)d->ns * sizeof(double));
                    c->beta[(size_t)q * (size_t)(d->ns + 1) + (size_t)d->ns] = 0;
                }
                bnd_domain cd = {dom.lo, dom.hi, d->plo, d->phi, c->splits, d->ns + 1, INT_MAX, 0, 0};
                if (c->alpha)
                    memcpy(c->alpha, d->alpha, (size_t)s->k * (size_t)s->nr * sizeof(double));
                rc = bound_rows(w, &cd, d->open, 0, c->beta, c->alpha, NULL, NULL, NULL, NULL, e);
                int r2;
                double m = rc == 1 ? INFINITY : worst_margin(s, w->lb, &r2);
                if (m < worst)
                    worst = m;
            }
            if (rc >= 0 && worst > best)
                best = worst, d->branch = w->top[t];
        }
        free(c);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A domain with no unstable neuron left that beta did not close: every
 * ReLU is fixed, so the triangle LP is exact. Its safe dual bound refutes the
 * open clauses, or its minimiser is checked as a counterexample. Returns 0
 * (closed), -2 (counterexample stored), -3 (still open), < 0 on error. */
static int leaf_lp(worker *w, rdom *d, err *e)
{
    shared *s = w->s;
    bnd_domain dom = {s->p->regions[s->region].lo, s->p->regions[s->region].hi, d->plo, d->phi,
                      d->splits, d->ns, INT_MAX, 0, 0};
    bnd_beta_opts bo = {0};
    double lb;
    bnd_beta_out out = {.lb = &lb};
    int rc = bnd_beta_bound(w->net, &dom, s->C, 1, &bo, &out, e); /* loads the bounds */
    if (rc != 0)
        return rc < 0 ? rc : 0;
    for (int c = 0; c < s->n_clauses; c++) {
        if (!d->open[c])
            continue;
        int closed = 0;
        for (int q = 0; q < s->k && !closed; q++) {
            if (s->clause[q] != c)
                continue;
            double v, safe;
            rc = bnd_lp_min(w->net, d->splits, d->ns, s->C + (size_t)q * (size_t)s->p->n_y, 0, &v,
                            &safe, w->xs, e);
            if (rc < 0)
                return rc == ERR_UNSUP ? -3 : rc;
            if (rc == 0 && safe > s->d[q]) {
                closed = 1;
            } else if (rc == 0) {
                rc = bab_check_counterexample(s->g, s->p, s->region, w->xs, NULL, e);
                if (rc < 0)
                    return rc;
                if (rc == 1) {
                    pthread_mutex_lock(&s->mu);
                    if (!s->stop) {
                        memcpy(s->x, w->xs, (size_t)s->n_in * sizeof(double));
                        s->ans = BAB_SAT;
                        s->stop = 1;
                    }
                    pthread_mutex_unlock(&s->mu);
                    return -2;
                }
            }
        }
        if (!closed)
            return -3;
    }
    return 0;
}

/* The two children of d, bounded; open ones in kids[]. Returns the number
 * of open children, -2 if a counterexample was found, -3 if d cannot be
 * split (no unstable neuron left), < 0 (other) on error. */
static int expand(worker *w, rdom *d, rdom **kids, err *e)
{
    shared *s = w->s;
    int n = 0;
    if (d->branch < 0)
        return leaf_lp(w, d, e);
    int interm_from = s->o->interm ? relu_layer_of(s, d->branch) + 1 : INT_MAX;
    for (int sd = 1; sd >= -1; sd -= 2) {
        rdom *c = dom_new(d->ns + 1, s->k, s->nr, s->n_clauses, s->o->alpha);
        if (!c) {
            err_set(e, ERR_NOMEM, "verify: out of memory");
            return ERR_NOMEM;
        }
        c->depth = d->depth + 1;
        memcpy(c->open, d->open, (size_t)s->n_clauses);
        if (c->alpha)
            memcpy(c->alpha, d->alpha, (size_t)s->k * (size_t)s->nr * sizeof(double));
        memcpy(c->splits, d->splits, (size_t)d->ns * sizeof(bnd_split));
        c->splits[d->ns] = (bnd_split){d->branch, sd};
        for (int q = 0; q < s->k; q++) {
            memcpy(c->beta + (size_t)q * (size_t)(d->ns + 1), d->beta + (size_t)q * (size_t)d->ns,
                   (size_t)d->ns * sizeof(double));
            c->beta[(size_t)q * (size_t)(d->ns + 1) + (size_t)d->ns] = 0;
        }
        int rc = bound_domain(w, c, d->plo, d->phi, interm_from, s->o->interm_iters, s->o->beta_iters, e);
        __atomic_add_fetch(&s->n_domains, 1, __ATOMIC_RELAXED);
        if (rc != 0)
            free(c);
        if (rc < 0 || rc == 2) {
            for (int q = 0; q < n; q++)
                free(kids[q]);
            return rc == 2 ? -2 : rc;
        }
        if (rc == 0)
            kids[n++] = c;
    }
    return n;
}

/* The children of the nd domains ds (each with a branching neuron), all
 * bounded in one batched beta-CROWN call (chain MLPs); open ones in kids[]
 * (room for 2·nd). Returns their number, -2 if a counterexample was found,
 * < 0 (other) on error. */
static int expand_batch(worker *w, rdom **ds, int nd, rdom **kids, err *e)
{
    shared *s = w->s;
    const spec_region *reg = &s->p->regions[s->region];
    int nb = 2 * nd, k = s->k, n = 0, rc = 0;
    int64_t ny = s->p->n_y, nr = s->nr, n_in = s->n_in;
    size_t R = (size_t)nb * (size_t)k;
    rdom **c = calloc((size_t)nb, sizeof *c);
    bnd_bbeta_dom *dm = calloc((size_t)nb, sizeof *dm);
    int64_t *rd = malloc(R * sizeof(int64_t));
    int *rq = malloc(R * sizeof(int));
    double *C = malloc(R * (size_t)ny * sizeof(double)), *thr = malloc(R * sizeof(double));
    double **bp = malloc(R * sizeof(double *)), **ap = malloc(R * sizeof(double *));
    double *lb = malloc(R * sizeof(double)), *A = malloc(R * (size_t)nr * sizeof(double));
    double *xs = malloc(R * (size_t)n_in * sizeof(double));
    if (!c || !dm || !rd || !rq || !C || !thr || !bp || !ap || !lb || !A || !xs) {
        rc = err_set(e, ERR_NOMEM, "verify: out of memory");
        goto out;
    }
    int64_t nrow = 0;
    for (int b = 0; b < nb; b++) {
        const rdom *d = ds[b / 2];
        int sd = b % 2 ? -1 : 1;
        rdom *x = c[b] = dom_new(d->ns + 1, k, nr, s->n_clauses, s->o->alpha);
        if (!x) {
            rc = err_set(e, ERR_NOMEM, "verify: out of memory");
            goto out;
        }
        x->depth = d->depth + 1;
        memcpy(x->open, d->open, (size_t)s->n_clauses);
        if (x->alpha)
            memcpy(x->alpha, d->alpha, (size_t)k * (size_t)nr * sizeof(double));
        memcpy(x->splits, d->splits, (size_t)d->ns * sizeof(bnd_split));
        x->splits[d->ns] = (bnd_split){d->branch, sd};
        for (int q = 0; q < k; q++) {
            memcpy(x->beta + (size_t)q * (size_t)(d->ns + 1), d->beta + (size_t)q * (size_t)d->ns,
                   (size_t)d->ns * sizeof(double));
            x->beta[(size_t)q * (size_t)(d->ns + 1) + (size_t)d->ns] = 0;
        }
        /* the parent's bounds, the new split's side clipped at 0 */
        memcpy(x->plo, d->plo, (size_t)nr * sizeof(double));
        memcpy(x->phi, d->phi, (size_t)nr * sizeof(double));
        if (sd > 0)
            x->plo[d->branch] = fmax(x->plo[d->branch], 0.0);
        else
            x->phi[d->branch] = fmin(x->phi[d->branch], 0.0);
        dm[b] = (bnd_bbeta_dom){x->plo, x->phi, x->splits, x->ns};
        for (int q = 0; q < k; q++) {
            if (!x->open[s->clause[q]])
                continue;
            rd[nrow] = b, rq[nrow] = q;
            memcpy(C + nrow * ny, s->C + (size_t)q * (size_t)ny, (size_t)ny * sizeof(double));
            thr[nrow] = s->d[q];
            bp[nrow] = x->beta + (size_t)q * (size_t)x->ns;
            ap[nrow] = x->alpha ? x->alpha + (size_t)q * (size_t)nr : NULL;
            nrow++;
        }
    }
    bnd_bbeta_rows rows = {nrow, rd, C, thr, bp, s->o->alpha ? ap : NULL, lb, A, xs};
    bnd_bbeta_opts bo = {s->o->beta_iters, s->o->beta_lr, s->o->alpha_lr, s->o->deadline,
                         s->o->f64};
    rc = bnd_beta_batch(s->mlp, reg->lo, reg->hi, nb, dm, &rows, &bo, e);
    __atomic_add_fetch(&s->n_domains, nb, __ATOMIC_RELAXED);
    if (rc)
        goto out;
    for (int b = 0, r = 0; b < nb; b++) {
        for (int q = 0; q < k; q++)
            w->lb[q] = INFINITY;
        for (; r < nrow && rd[r] == b; r++) {
            int q = rq[r];
            w->lb[q] = lb[r];
            memcpy(w->A + (size_t)q * (size_t)nr, A + (size_t)r * (size_t)nr, (size_t)nr * sizeof(double));
            memcpy(w->xs + (size_t)q * (size_t)n_in, xs + (size_t)r * (size_t)n_in,
                   (size_t)n_in * sizeof(double));
        }
        int f = finish_domain(w, c[b], e);
        if (f < 0 || f == 2) {
            rc = f == 2 ? -2 : f;
            goto out;
        }
        if (f == 0)
            kids[n++] = c[b], c[b] = NULL;
    }
out:
    if (rc)
        for (int q = 0; q < n; q++)
            free(kids[q]);
    for (int b = 0; c && b < nb; b++)
        free(c[b]);
    free(c), free(dm), free(rd), free(rq), free(C), free(thr), free(bp), free(ap), free(lb), free(A),
        free(xs);
    return rc ? rc : n;
}

static void *work(void *arg)
{
    worker *w = arg;
    shared *s = w->s;
    err e = {0};
    /* past half the memory budget: depth first on a stack of this worker's
     * own (LIFO keeps it to about one sibling per level) */
    rdom **local = NULL;
    int n_local = 0, cap_local = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        rdom *d = n_local && !s->stop ? local[--n_local] : NULL;
        if (d)
            s->mem_local -= d->bytes;
        if (!d) {
            while (s->n_heap == 0 && s->busy > 0 && !s->stop)
                pthread_cond_wait(&s->cv, &s->mu);
            if (s->stop || s->n_heap == 0)
                break;
            d = heap_pop(s);
        }
        if (clock_expired(s->o->deadline)) {
            s->stop = 1;
            s->ans = BAB_TIMEOUT;
            free(d);
            pthread_cond_broadcast(&s->cv);
            break;
        }
        /* chain MLPs: the hardest domains (up to the batch size) together */
        rdom *ds[RELU_MAX_BATCH], *kids[2 * RELU_MAX_BATCH];
        int nd = 1, batched = s->mlp && d->branch >= 0;
        ds[0] = d;
        int want = s->o->batch < RELU_MAX_BATCH ? s->o->batch : RELU_MAX_BATCH;
        if (s->mem + s->mem_local > s->o->mem_budget / 2)
            want = 1; /* depth first under memory pressure: one domain's children at a time */
        while (batched && nd < want && s->n_heap > 0 && s->heap[0]->branch >= 0)
            ds[nd++] = heap_pop(s);
        s->busy++;
        pthread_mutex_unlock(&s->mu);
        int n = batched ? expand_batch(w, ds, nd, kids, &e) : expand(w, d, kids, &e);
        pthread_mutex_lock(&s->mu);
        s->busy--;
        if (n == -3) {
            /* nothing left to split and still open: beta could not close it */
            s->stuck++;
            n = 0;
        } else if (n == -2) {
            n = 0;
        } else if (n < 0) {
            if (!s->rc) {
                s->rc = n;
                s->e = e;
            }
            s->stop = 1;
            n = 0;
        }
        for (int q = 0; q < nd; q++)
            free(ds[q]);
        if (s->o->verbose && clock_now() > s->t_report) {
            s->t_report = clock_now() + 5;
            fprintf(stderr, "relu bab: %lld domains, %zu open, worst margin %.6g, %.0f MB "
                    "(+%.0f MB depth first; budget %.0f MB)\n",
                    (long long)s->n_domains, s->n_heap, s->n_heap ? s->heap[0]->key : 0.0,
                    (double)s->mem / 1e6, (double)s->mem_local / 1e6, (double)s->o->mem_budget / 1e6);
        }
        size_t kid_bytes = 0;
        for (int q = 0; q < n; q++)
            kid_bytes += kids[q]->bytes;
        if (n > 0 && s->mem + s->mem_local + kid_bytes > s->o->mem_budget) {
            /* over the memory budget even depth first: give up (unknown) */
            for (int q = 0; q < n; q++)
                free(kids[q]);
            n = 0;
            if (!s->stop)
                s->ans = BAB_UNKNOWN, s->stop = 1, s->out_of_memory = 1;
        }
        int keep = n > 0 && s->mem + s->mem_local > s->o->mem_budget / 2;
        if (keep && n_local + n > cap_local) {
            int cap = cap_local ? 2 * cap_local : 64;
            rdom **l = realloc(local, (size_t)cap * sizeof *l);
            if (l)
                local = l, cap_local = cap;
            else
                keep = 0;
        }
        for (int q = 0; q < n; q++) {
            if (keep) {
                local[n_local++] = kids[q];
                s->mem_local += kids[q]->bytes;
                continue;
            }
            if (heap_push(s, kids[q])) {
                free(kids[q]);
                if (!s->rc)
                    s->rc = err_set(&s->e, ERR_NOMEM, "verify: out of memory");
                s->stop = 1;
            }
        }
        pthread_cond_broadcast(&s->cv);
    }
    while (n_local > 0) {
        s->mem_local -= local[n_local - 1]->bytes;
        free(local[--n_local]);
    }
    pthread_mutex_unlock(&s->mu);
    free(local);
    glp_free_env(); /* GLPK keeps a per-thread environment; LP leaves may have used it */
    return NULL;
}

static int worker_init(worker *w, shared *s, err *e)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    int rc = bnd_net_new(s->g, &w->net, e);
    if (rc)
        return rc;
    bnd_set_deadline(w->net, s->o->deadline);
    int nt = s->o->fsb_k > 1 ? s->o->fsb_k : 1;
    w->lb = malloc((size_t)s->k * sizeof(double));
    w->A = malloc((size_t)s->k * (size_t)(s->nr ? s->nr : 1) * sizeof(double));
    w->xs = malloc((size_t)s->k * (size_t)s->n_in * sizeof(double));
    w->top = malloc((size_t)nt * sizeof(int64_t));
    w->tscore = malloc((size_t)nt * sizeof(double));
    w->side = malloc((size_t)(s->nr ? s->nr : 1));
    w->y = malloc((size_t)s->n_in * sizeof(double));
    size_t k = (size_t)s->k;
    w->Cc = malloc(k * (size_t)s->p->n_y * sizeof(double));
    w->dc = malloc(k * sizeof(double));
    w->lbc = malloc(k * sizeof(double));
    w->Ac = malloc(k * (size_t)(s->nr ? s->nr : 1) * sizeof(double));
    w->alc = malloc(k * (size_t)(s->nr ? s->nr : 1) * sizeof(double));
    w->xsc = malloc(k * (size_t)s->n_in * sizeof(double));
    w->rmap = malloc(k * sizeof(int));
    w->clc = malloc(k * sizeof(int));
    w->cmap = malloc((size_t)(s->n_clauses ? s->n_clauses : 1) * sizeof(int));
    if (!w->y || !w->lb || !w->A || !w->xs || !w->top || !w->tscore || !w->side || !w->Cc || !w->dc ||
        !w->lbc || !w->Ac || !w->alc || !w->xsc || !w->rmap || !w->clc || !w->cmap)
        return err_set(e, ERR_NOMEM, "verify: out of memory");
    return 0;
}

static void worker_free(worker *w)
{
    bnd_net_free(w->net);
    free(w->lb), free(w->A), free(w->xs), free(w->top), free(w->tscore), free(w->side), free(w->y);
    free(w->Cc), free(w->dc), free(w->lbc), free(w->Ac), free(w->alc), free(w->xsc), free(w->rmap), free(w->clc),
        free(w->cmap);
}

/* Signed-gradient PGD per clause (its first row as the objective, exact
 * gradients by bnd_point_grad), from the box centre and random points; every
 * iterate is checked as a counterexample. 1 when one was stored in s->x. */
static int grad_attack(worker *w, shared *s, int restarts, int steps, err *e)
{
    const spec_region *reg = &s->p->regions[s->region];
    int64_t n = s->n_in;
    double *x = w->y, *g = w->xs;
    rng r;
    rng_seed(&r, 7);
    for (int c = 0; c < s->n_clauses; c++) {
        int q = 0;
        while (q < s->k && s->clause[q] != c)
            q++;
        if (q == s->k)
            continue;
        const double *row = s->C + (size_t)q * (size_t)s->p->n_y;
        for (int rs = 0; rs < restarts; rs++) {
            if (clock_expired(s->o->deadline))
                return 0;
            for (int64_t i = 0; i < n; i++) {
                double u = rs == 0 ? 0.5 : rng_uniform(&r);
                x[i] = reg->lo[i] + u * (reg->hi[i] - reg->lo[i]);
            }
            /* restarts beyond the first three cycle through smaller step sizes
             * (NNV_GA_R experiments) */
            double a0 = rs < 3 || rs % 3 == 0 ? 0.5 : (rs % 3 == 1 ? 0.1 : 0.02);
            for (int t = 0; t < steps && !clock_expired(s->o->deadline); t++) {
                int rc = bnd_point_grad(w->net, x, row, 1, g, e);
                if (rc)
                    return rc;
                double step = a0 * (1.0 - (double)t / steps) + 0.04 * a0;
                for (int64_t i = 0; i < n; i++) {
                    double w_i = reg->hi[i] - reg->lo[i];
                    x[i] -= step * w_i * (g[i] > 0 ? 1 : (g[i] < 0 ? -1 : 0));
                    x[i] = fmin(reg->hi[i], fmax(reg->lo[i], x[i]));
                }
                rc = bab_check_counterexample(s->g, s->p, s->region, x, NULL, e);
                s->n_evals++;
                if (rc < 0)
                    return rc;
                if (rc == 1) {
                    memcpy(s->x, x, (size_t)n * sizeof(double));
                    return 1;
                }
            }
        }
    }
    return 0;
}

void bab_relu_opts_default(bab_relu_opts *o)
{
    memset(o, 0, sizeof *o);
    o->threads = 2;
    o->branching = BAB_BRANCH_BABSR;
    o->fsb_k = 4;
    o->beta_iters = 20;
    o->beta_lr = 0.05;
    o->alpha = 1;
    o->root_interm_iters = 20;
    o->interm_iters = 0;
    o->alpha_lr = 0.1;
    o->interm = 0;
    o->mem_budget = (size_t)4 << 30;
    o->batch = 32;
    o->refine = 0.5;
    o->refine_leaves = 64;
    o->refine_after = 0.05;
}

int bab_relu_can_refine(const nn_graph *g)
{
    bnd_net *n = NULL;
    bnd_mlp *m = NULL;
    err e = {0};
    int ok = bnd_net_new(g, &n, &e) == 0 && bnd_relu_layers(n, NULL) >= 2 &&
             bnd_mlp_new(n, &m, &e) == 0 && bnd_mlp_all_relu(m) &&
             bnd_mlp_relu_count(m) == bnd_relu_count(n);
    bnd_mlp_free(m);
    bnd_net_free(n);
    return ok;
}

/* The root's intermediate bounds tightened layer by layer (refine.c), each
 * layer's within its share of o->refine of the time left; after each, the
 * layers after it and the rows are bounded again from the tighter bounds.
 * Returns as bound_domain (errors in s->e). */
static int refine_root(worker *w, rdom *root)
{
    shared *s = w->s;
    const bab_relu_opts *o = s->o;
    const spec_region *reg = &s->p->regions[s->region];
    double t0 = clock_now();
    double until = t0 + o->refine * (o->deadline > 0 ? o->deadline - t0 : 60.0);
    size_t nr = (size_t)s->nr;
    double *plo = malloc(2 * nr * sizeof(double));
    if (!plo)
        return err_set(&s->e, ERR_NOMEM, "verify: out of memory");
    double *phi = plo + nr;
    int rc = 0;
    for (int k = 1; k < s->n_relu_layers && rc == 0; k++) {
        double now = clock_now();
        if (now >= until)
            break;
        bab_refine_opts ro = {now + (until - now) / (double)(s->n_relu_layers - k),
                              o->refine_leaves, o->refine_layer_leaves, o->mem_budget / 8,
                              o->threads, o->f64};
        bab_refine_stats st = {0};
        memcpy(plo, root->plo, nr * sizeof(double));
        memcpy(phi, root->phi, nr * sizeof(double));
        err e2 = {0};
        rc = bab_refine_layer(s->mlp, reg->lo, reg->hi, plo, phi, k, &ro, &st, &e2);
        if (rc == ERR_NOMEM || rc == ERR_ARG) { /* the search goes on with the bounds it has */
            if (o->verbose)
                fprintf(stderr, "relu bab: refinement stopped: %s\n", e2.msg);
            rc = 0;
            break;
        }
        if (rc) {
            s->e = e2;
            break;
        }
        if (o->verbose)
            fprintf(stderr, "relu bab: refine layer %d: %lld rounds, unstable %lld -> %lld, "
                    "width %.6g -> %.6g, %.2f s\n", k, (long long)st.rounds,
                    (long long)st.unstable_before, (long long)st.unstable_after, st.width_before,
                    st.width_after, clock_now() - now);
        rc = bound_domain(w, root, plo, phi, k + 1, o->root_interm_iters, o->beta_iters, &s->e);
        if (o->verbose && rc >= 0)
            fprintf(stderr, "relu bab: root margin %.6g after refining layer %d (%.2f s)\n",
                    root->key, k, clock_now() - t0);
    }
    free(plo);
    return rc;
}

int bab_relu_split(const nn_graph *g, const spec_property *p, int region, const bab_relu_opts *o,
                   bab_answer *ans, double *x, int64_t *n_domains, int64_t *n_evals, err *e)
{
    const spec_region *reg = &p->regions[region];
    shared s = {0};
    s.g = g, s.p = p, s.region = region, s.o = o, s.n_in = p->n_x, s.x = x;
    s.ans = BAB_UNSAT;
    *ans = BAB_UNKNOWN;
    for (int c = 0; c < reg->n_clauses; c++) {
        if (reg->clauses[c].n_rows == 0)
            return 0; /* an empty clause: only an attack can decide */
        s.k += reg->clauses[c].n_rows;
    }
    s.n_clauses = reg->n_clauses;
    if (s.k == 0) {
        *ans = BAB_UNSAT;
        return 0;
    }
    int nth = o->threads > 1 ? o->threads : 1;
    worker *ws = calloc((size_t)nth, sizeof *ws);
    pthread_t *tid = calloc((size_t)nth, sizeof *tid);
    s.C = malloc((size_t)s.k * (size_t)p->n_y * sizeof(double));
    s.d = malloc((size_t)s.k * sizeof(double));
    s.clause = malloc((size_t)s.k * sizeof(int));
    int rc = 0, n_ok = 0;
    if (!ws || !tid || !s.C || !s.d || !s.clause) {
        rc = err_set(e, ERR_NOMEM, "verify: out of memory");
        goto done;
    }
    for (int c = 0, at = 0; c < reg->n_clauses; c++)
        for (int q = 0; q < reg->clauses[c].n_rows; q++, at++) {
            memcpy(s.C + (size_t)at * (size_t)p->n_y, reg->clauses[c].C + (size_t)q * (size_t)p->n_y,
                   (size_t)p->n_y * sizeof(double));
            s.d[at] = reg->clauses[c].d[q];
            s.clause[at] = c;
        }
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    bnd_net *probe = NULL;
    rc = bnd_net_new(g, &probe, e);
    if (rc)
        goto done_sync;
    s.nr = bnd_relu_count(probe);
    s.n_relu_layers = bnd_relu_layers(probe, NULL);
    bnd_net_free(probe);
    s.starts = malloc((size_t)(s.n_relu_layers + 1) * sizeof(int64_t));
    if (!s.starts) {
        rc = err_set(e, ERR_NOMEM, "verify: out of memory");
        goto done_sync;
    }
    for (; n_ok < nth; n_ok++) {
        rc = worker_init(&ws[n_ok], &s, e);
        if (rc) {
            worker_free(&ws[n_ok]);
            goto done_sync;
        }
    }
    bnd_relu_layers(ws[0].net, s.starts);
    if (o->batch > 0) {
        err e2 = {0};
        if (bnd_mlp_new(ws[0].net, &s.mlp, &e2) == 0 &&
            (!bnd_mlp_all_relu(s.mlp) || bnd_mlp_relu_count(s.mlp) != s.nr)) {
            bnd_mlp_free(s.mlp); /* not the numbering of bnd_relu_count: per-domain path */
            s.mlp = NULL;
        }
        if (o->verbose)
            fprintf(stderr, "relu bab: %s\n", s.mlp ? "batched bounds (chain MLP)" : "per-domain bounds");
    }
    /* the root: optimised intermediate bounds, then alpha/beta on the rows */
    rdom *root = dom_new(0, s.k, s.nr, s.n_clauses, o->alpha);
    if (!root) {
        rc = err_set(e, ERR_NOMEM, "verify: out of memory");
        goto done_sync;
    }
    double t_root = clock_now();
    /* first the cheap root: CROWN's intermediate bounds, alpha/beta on the
     * rows only. Optimising every unstable neuron's bounds costs far more on
     * wide nets (F-MNIST CNN-7: 25 s, where this pass alone proves it in
     * 3.9 s); it runs only when this pass leaves a clause open, warm-started
     * from its slopes, and the clauses it refuted stay refuted. The
     * gradient attack waits for it too: on that CNN it took 1.7 s of a
     * property the cheap root proves. */
    rc = 0;
    if (o->root_interm_iters > 0 && o->root_lp <= 0) {
        rc = bound_domain(&ws[0], root, NULL, NULL, 0, 0, o->beta_iters, e);
        if (o->verbose && rc == 0)
            fprintf(stderr, "relu bab: cheap root margin %.6g after %.2f s\n", root->key,
                    clock_now() - t_root);
        if (rc != 0)
            goto root_done;
    }
    {
        const char *ev = getenv("NNV_GA_R");
        int gr = ev ? atoi(ev) : 3;
        ev = getenv("NNV_GA_T");
        int gt = ev ? atoi(ev) : 30;
        double tg = clock_now();
        int bt = openblas_get_num_threads(); /* one pass's products are small (attack.c) */
        openblas_set_num_threads(1);
        rc = grad_attack(&ws[0], &s, gr, gt, e);
        openblas_set_num_threads(bt);
        if (o->verbose)
            fprintf(stderr, "relu bab: gradient attack %d x %d: %d after %.2f s\n", gr, gt, rc, clock_now() - tg);
    }
    if (rc < 0 || rc == 1 || (getenv("NNV_GA_ONLY") && rc == 0)) {
        free(root);
        if (rc == 1) {
            *ans = BAB_SAT;
            rc = 0;
            if (o->verbose)
                fprintf(stderr, "relu bab: gradient attack found a counterexample\n");
        }
        goto done_sync;
    }
    t_root = clock_now();
    if (o->root_lp > 0)
        s.lp_until = t_root + (o->deadline > 0 ? o->root_lp * (o->deadline - t_root) : 1e9);
    rc = bound_domain(&ws[0], root, NULL, NULL, 0, o->root_interm_iters, o->beta_iters, e);
root_done:
    s.lp_until = 0;
    s.n_domains++;
    if (rc != 0) {
        free(root);
        if (rc == 1)
            *ans = BAB_UNSAT;
        else if (rc == 2)
            *ans = BAB_SAT, rc = 0;
        rc = rc < 0 ? rc : 0;
        goto done_sync;
    }
    if (o->verbose)
        fprintf(stderr, "relu bab: root margin %.6g after %.2f s\n", root->key, clock_now() - t_root);
    if (o->refine > 0 && s.mlp && s.n_relu_layers >= 2) {
        rc = refine_root(&ws[0], root);
        if (rc != 0) {
            free(root);
            if (rc == 1)
                *ans = BAB_UNSAT;
            else if (rc == 2)
                *ans = BAB_SAT;
            if (rc > 0)
                rc = 0;
            else
                *e = s.e;
            goto done_sync;
        }
    }
    heap_push(&s, root);
    /* a domain's products are small: extra BLAS threads only spin (about a
     * quarter of the cycles with one worker), so BLAS runs single-threaded */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    int started = 0;
    for (int t = 1; t < nth; t++)
        if (pthread_create(&tid[t], NULL, work, &ws[t]) == 0)
            started = t;
        else
            break;
    work(&ws[0]);
    for (int t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
    openblas_set_num_threads(blas_threads);
    while (s.n_heap)
        free(heap_pop(&s));
    if (s.rc) {
        rc = s.rc;
        *e = s.e;
        if (rc == ERR_TIMEOUT) /* converted at done_sync */
            *ans = s.ans == BAB_SAT ? BAB_SAT : BAB_TIMEOUT;
    } else if (s.ans == BAB_UNSAT && s.stuck) {
        *ans = BAB_UNKNOWN;
    } else {
        *ans = s.ans;
    }
    if (o->verbose)
        fprintf(stderr, "relu bab: %lld domains, %d stuck, answer %s%s\n", (long long)s.n_domains,
                s.stuck, bab_answer_name(*ans), s.out_of_memory ? " (memory budget reached)" : "");
done_sync:
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    if (rc == ERR_TIMEOUT) { /* stopped inside a bound computation */
        rc = 0;
        *ans = s.ans == BAB_SAT ? BAB_SAT : BAB_TIMEOUT;
    }
done:
    if (ws)
        for (int t = 0; t < n_ok; t++)
            worker_free(&ws[t]);
    if (n_domains)
        *n_domains += s.n_domains;
    if (n_evals)
        *n_evals += s.n_evals;
    bnd_mlp_free(s.mlp);
    free(ws), free(tid), free(s.C), free(s.d), free(s.clause), free(s.starts), free(s.heap);
    return rc;
}
