/* genbab.c: branch and bound over general nonlinear splits (GenBaB, Shi et
 * al., "Neural Network Verification with Branch-and-Bound for General
 * Nonlinearities").
 *
 * Key idea: a domain is the input box plus one interval per nonlinear neuron
 * (bnd_split_bound); branching splits one neuron's pre-activation interval
 * [l, u] at p — 0 for ReLU-like kinks, else the lookup-table point of
 * bnd_nl_branch_point (or the midpoint) — and the two children cover the
 * parent. A clause (conjunction C y <= d) is proven impossible on a domain
 * when some row's CROWN lower bound exceeds its threshold or the domain is
 * empty. Domains are explored depth first (memory stays proportional to the
 * depth times the branching), each bounded as soon as it is made.
 *
 * Which neuron: the GenBaB score estimates, from the coefficients a_j of the
 * last bound's backward pass at each neuron's output, how much the line a_j
 * meets (lower line if a_j >= 0, upper otherwise) moves towards f in each
 * child, averaged over the child's interval (= at its midpoint, lines being
 * linear): score_j = min over the two children of |a_j|·gain. Top-1 (the
 * default) scores exactly only the candidates whose upper bound from the
 * parent's line alone (score_bound) can still win. The top-k candidates
 * (k > 1) are re-checked by bounding their children for real and the best
 * worst child wins (its children are kept). Baseline: the widest interval. */
#include "bab.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bound/bound.h"
#include "../bound/nonlin.h"
#include "../core/clock.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

void bab_genbab_opts_default(bab_genbab_opts *o)
{
    memset(o, 0, sizeof *o);
    o->rule = BAB_BRANCH_GENBAB;
    o->topk = 1; /* the re-check's bounds cost more than they save (docs/genbab.md §3) */
    o->max_domains = 200000;
    o->tau_iters = 2;
    o->root_alpha = 20;
    o->root_interm = 3;
    o->input_splits = 1;
    o->refine_frac = 0.25;
}

typedef struct {
    double *plo, *phi;   /* the domain's intervals (n_act each) */
    double *a;           /* coefficients of its best row at the ACT outputs */
    double *z;           /* pre-activations at the relaxed problem's minimiser */
    double *lo, *hi;     /* its input box (n_in each) */
    double *gin;         /* estimated gains of halving each input interval */
    double margin;       /* max over rows of lb - d */
} domain;

typedef struct {
    bnd_net *net;
    const spec_clause *cl;
    int64_t n_act, n_in;
    int input_splits;    /* inputs are candidates (asked for, <= 64 moving) */
    unsigned char *refine; /* neurons whose pre-activations children refine by CROWN */
    double *imp;         /* scratch: importance of each smooth neuron */
    int *kind;
    double *param;
    double *lb, *A;      /* scratch: rows, rows x n_act */
    /* the parent's default line per neuron and side, kept with the interval
     * it was made for (most of a domain's intervals are its predecessor's) */
    double *pkey;        /* l, u (2 per neuron) */
    double *pline;       /* slope, intercept per side (4 per neuron) */
    unsigned char *pok;  /* bit s: side s (1 = upper) holds the line of pkey */
    const bab_genbab_opts *o;
    bab_genbab_stats *st;
} ctx;

static void dom_free(domain *d)
{
    free(d->plo);
    d->plo = d->phi = d->a = d->z = d->lo = d->hi = d->gin = NULL;
}

static int dom_alloc(ctx *c, domain *d)
{
    d->plo = malloc((size_t)(4 * c->n_act + 3 * c->n_in) * sizeof(double));
    d->phi = d->plo ? d->plo + c->n_act : NULL;
    d->a = d->plo ? d->plo + 2 * c->n_act : NULL;
    d->z = d->plo ? d->plo + 3 * c->n_act : NULL;
    d->lo = d->plo ? d->plo + 4 * c->n_act : NULL;
    d->hi = d->plo ? d->lo + c->n_in : NULL;
    d->gin = d->plo ? d->hi + c->n_in : NULL;
    return d->plo ? 0 : -1;
}

struct bab_genbab_root {
    uint64_t net;        /* nn_graph_fingerprint of the intervals' network */
    int64_t n_in, n_act;
    double *lo, *hi;     /* the input box (n_in each) */
    double *plo, *phi;   /* its root intervals (n_act each); NULL until filled */
};

bab_genbab_root *bab_genbab_root_new(void)
{
    return calloc(1, sizeof(bab_genbab_root));
}

void bab_genbab_root_free(bab_genbab_root *r)
{
    if (r)
        free(r->lo), free(r); /* one block: box, then intervals */
}

/* The cached intervals if r holds the same network and box, else NULL
 * (the sizes guard the memcmp). */
static const double *root_lookup(const bab_genbab_root *r, uint64_t net, int64_t n_in,
                                 int64_t n_act, const double *lo, const double *hi)
{
    if (!r || !r->plo || r->net != net || r->n_in != n_in || r->n_act != n_act ||
        memcmp(r->lo, lo, (size_t)n_in * sizeof(double)) ||
        memcmp(r->hi, hi, (size_t)n_in * sizeof(double)))
        return NULL;
    return r->plo;
}

static void root_store(bab_genbab_root *r, uint64_t net, int64_t n_in, int64_t n_act,
                       const double *lo, const double *hi, const domain *d)
{
    double *box = malloc((size_t)(2 * n_in + 2 * n_act + 1) * sizeof(double));
    if (!box)
        return; /* only a cache */
    free(r->lo);
    r->net = net, r->n_in = n_in, r->n_act = n_act;
    r->lo = box, r->hi = box + n_in;
    memcpy(r->lo, lo, (size_t)n_in * sizeof(double));
    memcpy(r->hi, hi, (size_t)n_in * sizeof(double));
    r->plo = box + 2 * n_in, r->phi = r->plo + n_act;
    memcpy(r->plo, d->plo, (size_t)n_act * sizeof(double));
    memcpy(r->phi, d->phi, (size_t)n_act * sizeof(double));
}

/* Bound the domain of box [lo, hi] and intervals (plo, phi) changed at
 * neuron j (j < 0: an input split; j >= n_act: nothing changed, keep every
 * interval), or the root (root = 1; plo: cached root intervals or NULL):
 * fills d; returns 1 when proven, 0 if not, < 0. */
static int bound(ctx *c, const double *lo, const double *hi, const double *plo, const double *phi,
                 int64_t j, int root, domain *d, err *e)
{
    const spec_clause *cl = c->cl;
    if (dom_alloc(c, d))
        return err_set(e, ERR_NOMEM, "genbab: out of memory");
    memcpy(d->lo, lo, (size_t)c->n_in * sizeof(double));
    memcpy(d->hi, hi, (size_t)c->n_in * sizeof(double));
    /* the root's alpha-CROWN intervals are every descendant's starting point;
     * the intermediate rounds only when they are not cached */
    int alpha = root && c->o->root_alpha > 0;
    if (root && !plo)
        bnd_set_tau_interm(c->net, c->o->root_interm);
    int rc = bnd_split_bound(c->net, lo, hi, plo, phi, plo ? c->refine : NULL, j, cl->C,
                             cl->n_rows, alpha ? c->o->root_alpha : c->o->tau_iters,
                             c->lb, d->plo, d->phi, c->A, d->z,
                             c->input_splits ? d->gin : NULL, e);
    if (root && !plo)
        bnd_set_tau_interm(c->net, 0);
    c->st->bound_calls++;
    if (rc < 0)
        return rc;
    if (rc == 1) {
        d->margin = INFINITY;
        return 1;
    }
    int best = 0;
    for (int r = 0; r < cl->n_rows; r++)
        if (c->lb[r] - cl->d[r] > c->lb[best] - cl->d[best])
            best = r;
    d->margin = c->lb[best] - cl->d[best];
    if (isnan(d->margin))
        d->margin = -INFINITY;
    memcpy(d->a, c->A + (size_t)best * (size_t)c->n_act, (size_t)c->n_act * sizeof(double));
    return d->margin > 0;
}

static int kinked(int kind)
{
    return kind == BND_NL_RELU || kind == BND_NL_LEAKYRELU || kind == BND_NL_ABS;
}

/* Split point of neuron j in (l, u), or NAN when it cannot be split. */
static double split_point(ctx *c, int64_t j, double l, double u)
{
    if (kinked(c->kind[j]))
        return l < 0 && u > 0 ? 0.0 : NAN;
    if (!(u - l > 1e-9 * (1 + fabs(l) + fabs(u))))
        return NAN;
    if (c->o->midpoint)
        return 0.5 * l + 0.5 * u;
    return bnd_nl_branch_point((bnd_nl_kind)c->kind[j], c->param[j], l, u);
}

/* The default line of neuron j over [l, u] that a coefficient of sign
 * `upper` meets (a >= 0: the lower line, else the upper); 0 or < 0. */
static int side_line(ctx *c, int64_t j, double l, double u, int upper, double *s, double *i)
{
    return bnd_nl_relax_line((bnd_nl_kind)c->kind[j], c->param[j], l, u, NAN, upper, s, i, NULL,
                             NULL);
}

/* side_line for a domain's own interval of neuron j, through the cache in
 * c (same bits of l and u: the same line). */
static int parent_line(ctx *c, int64_t j, double l, double u, int upper, double *s, double *i)
{
    double *key = c->pkey + 2 * j, *ln = c->pline + 4 * j + 2 * upper;
    if (memcmp(&key[0], &l, sizeof l) || memcmp(&key[1], &u, sizeof u))
        c->pok[j] = 0, key[0] = l, key[1] = u;
    if (!(c->pok[j] >> upper & 1)) {
        int rc = side_line(c, j, l, u, upper, &ln[0], &ln[1]);
        if (rc != 0)
            return rc; /* not kept: asked again next time */
        c->pok[j] |= (unsigned char)(1 << upper);
    }
    *s = ln[0], *i = ln[1];
    return 0;
}

/* The point of [cl, cu] nearest z. */
static double nearest(double z, double cl, double cu)
{
    return z < cl ? cl : z > cu ? cu : z;
}

/* Gain of the line met by coefficient a on [cl, cu] over the parent's line
 * (ps, pi) at the point of [cl, cu] nearest z (the minimiser's
 * pre-activation): |a| times the distance the line moves towards f there. */
static double child_gain(ctx *c, int64_t j, double a, double ps, double pi, double cl, double cu,
                         double z)
{
    double cs, ci;
    if (side_line(c, j, cl, cu, a < 0, &cs, &ci) != 0)
        return 0;
    double m = nearest(z, cl, cu);
    double g = fabs(a) * (a >= 0 ? (cs * m + ci) - (ps * m + pi) : (ps * m + pi) - (cs * m + ci));
    return isfinite(g) ? g : 0;
}

static double score(ctx *c, const domain *d, int64_t j, double p)
{
    double l = d->plo[j], u = d->phi[j];
    if (c->o->rule == BAB_BRANCH_WIDTH)
        return u - l;
    double a = d->a[j], ps, pi;
    if (parent_line(c, j, l, u, a < 0, &ps, &pi) != 0)
        return 0;
    double z = isfinite(d->z[j]) ? d->z[j] : 0.5 * l + 0.5 * u;
    double g1 = child_gain(c, j, a, ps, pi, l, p, z), g2 = child_gain(c, j, a, ps, pi, p, u, z);
    return fmin(g1, g2);
}

/* An upper bound on score() for the GenBaB rule, from the parent's line
 * alone: a child's line is sound on its interval, so it moves at most to f
 * (lower line: ch.lo(m) <= f(m); upper: ch.up(m) >= f(m)). One line instead
 * of three; branch() computes the exact score only for candidates whose
 * bound can still beat the best so far. */
static double score_bound(ctx *c, const domain *d, int64_t j, double p)
{
    double l = d->plo[j], u = d->phi[j], a = d->a[j], ps, pi;
    if (parent_line(c, j, l, u, a < 0, &ps, &pi) != 0)
        return INFINITY; /* let score() decide */
    double z = isfinite(d->z[j]) ? d->z[j] : 0.5 * l + 0.5 * u, b = INFINITY;
    for (int side = 0; side < 2; side++) {
        double cl = side ? p : l, cu = side ? u : p;
        double m = nearest(z, cl, cu);
        double f = bnd_nl_value((bnd_nl_kind)c->kind[j], c->param[j], m);
        double g = fabs(a) * (a >= 0 ? f - (ps * m + pi) : (ps * m + pi) - f);
        /* slack for the rounding of f and of the line's evaluation */
        g += fabs(a) * 1e-9 * (1 + fabs(f) + fabs(ps * m) + fabs(pi));
        b = fmin(b, isfinite(g) ? fmax(g, 0) : INFINITY);
    }
    return b;
}

/* Depth-first stack of unproven domains. */
typedef struct {
    domain *v;
    int64_t n, cap;
} stack;

static int push(stack *s, domain *d)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        domain *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v, s->cap = cap;
    }
    s->v[s->n++] = *d;
    d->plo = NULL;
    return 0;
}

/* Children of d split at neuron j, point p: bounded into ch[0], ch[1];
 * returns the number proven (0..2) or < 0. */
static int children(ctx *c, const domain *d, int64_t j, double p, domain ch[2], err *e)
{
    double *plo = malloc((size_t)(2 * c->n_act + 2 * c->n_in) * sizeof(double));
    if (!plo)
        return err_set(e, ERR_NOMEM, "genbab: out of memory");
    double *phi = plo + c->n_act, *lo = phi + c->n_act, *hi = lo + c->n_in;
    int proven = 0, rc = 0;
    for (int side = 0; side < 2 && rc >= 0; side++) {
        memcpy(plo, d->plo, (size_t)c->n_act * sizeof(double));
        memcpy(phi, d->phi, (size_t)c->n_act * sizeof(double));
        memcpy(lo, d->lo, (size_t)c->n_in * sizeof(double));
        memcpy(hi, d->hi, (size_t)c->n_in * sizeof(double));
        double *l = plo, *h = phi;
        int64_t t = j;
        if (j >= c->n_act) /* an input interval */
            l = lo, h = hi, t = j - c->n_act;
        if (side == 0)
            h[t] = p;
        else
            l[t] = p;
        rc = bound(c, lo, hi, plo, phi, j >= c->n_act ? -1 : j, 0, &ch[side], e);
        /* the parent's bound holds on the child too (a subset); the child's
         * own can be lower: relaxations over a narrower interval are not
         * tighter everywhere */
        if (rc == 0 && d->margin > ch[side].margin) {
            ch[side].margin = d->margin;
            rc = ch[side].margin > 0;
        }
        if (rc > 0)
            proven++;
    }
    free(plo);
    return rc < 0 ? rc : proven;
}

typedef struct {
    int64_t j;
    double p, s;
} cand;

static int by_value_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Children's CROWN intermediate bounds only for the smooth neurons that
 * matter most to the parent's bound, |a_j|·(u_j - l_j), the top
 * refine_frac of them (when there are more than 256), and for every
 * kinked neuron: refining a wide smooth layer is most of a bound's cost. */
static void set_refine(ctx *c, const domain *d)
{
    if (!c->refine)
        return;
    int64_t ns = 0;
    for (int64_t j = 0; j < c->n_act; j++)
        if (!kinked(c->kind[j]))
            c->imp[ns++] = fabs(d->a[j]) * (d->phi[j] - d->plo[j]);
    double thr = -INFINITY;
    if (ns > 256) {
        qsort(c->imp, (size_t)ns, sizeof(double), by_value_desc);
        int64_t keep = (int64_t)(c->o->refine_frac * (double)ns);
        thr = c->imp[keep < ns ? keep : ns - 1];
    }
    for (int64_t j = 0; j < c->n_act; j++)
        c->refine[j] = kinked(c->kind[j]) ||
                       fabs(d->a[j]) * (d->phi[j] - d->plo[j]) > thr;
}

static int by_score(const void *a, const void *b)
{
    double x = ((const cand *)a)->s, y = ((const cand *)b)->s;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The shared depth-first stack and the run's state, under mu. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    stack s;
    int busy, done, rc;      /* rc: 1 all proven, 0 open, < 0 error */
    err e;
    const bab_genbab_opts *o;
    bab_genbab_stats *st;    /* domains, max_queue (others summed at the end) */
    size_t dom_bytes;
} shared;

typedef struct {
    shared *sh;
    ctx c;
    cand *cs;
    bab_genbab_stats st;     /* this worker's counts */
} worker;

/* One worker's bound network (fixed inputs folded, as the root's) and scratch. */
static int ctx_init(ctx *c, const nn_graph *g, const double *lo, const double *hi,
                    const spec_clause *cl, const bab_genbab_opts *o, bab_genbab_stats *st,
                    double *rlo, double *rhi, err *e)
{
    memset(c, 0, sizeof *c);
    c->cl = cl, c->o = o, c->st = st;
    int rc = bnd_net_new(g, &c->net, e);
    if (rc)
        return rc;
    if (o->crown_max_rows > 0)
        bnd_set_crown_max_rows(c->net, o->crown_max_rows);
    bnd_set_deadline(c->net, o->deadline);
    bnd_set_tau_stop(c->net, cl->d); /* a refuted domain needs no more tangent rounds */
    /* the moving inputs only (dist_shift: 8 of 792): backward passes then
     * skip the fixed columns of the first layer */
    int64_t n0 = bnd_n_in(c->net), nm = 0;
    int64_t *idx = malloc((size_t)(n0 ? n0 : 1) * sizeof(int64_t));
    if (!idx)
        return err_set(e, ERR_NOMEM, "genbab: out of memory");
    rc = o->no_fold ? 0 : bnd_fold_fixed_inputs(c->net, lo, hi, idx, &nm, e);
    if (rc == 1 && rlo)
        for (int64_t q = 0; q < nm; q++)
            rlo[q] = lo[idx[q]], rhi[q] = hi[idx[q]];
    else if (rc == 0 && rlo)
        memcpy(rlo, lo, (size_t)n0 * sizeof(double)), memcpy(rhi, hi, (size_t)n0 * sizeof(double));
    free(idx);
    if (rc < 0)
        return rc;
    c->n_act = bnd_act_count(c->net);
    c->n_in = bnd_n_in(c->net);
    int64_t na = c->n_act ? c->n_act : 1;
    c->kind = malloc((size_t)na * sizeof(int));
    c->param = malloc((size_t)na * sizeof(double));
    c->lb = malloc((size_t)cl->n_rows * sizeof(double));
    c->A = malloc((size_t)cl->n_rows * (size_t)na * sizeof(double));
    c->pkey = calloc((size_t)na * 2, sizeof(double));
    c->pline = malloc((size_t)na * 4 * sizeof(double));
    c->pok = calloc((size_t)na, 1);
    if (!c->kind || !c->param || !c->lb || !c->A || !c->pkey || !c->pline || !c->pok)
        return err_set(e, ERR_NOMEM, "genbab: out of memory");
    bnd_act_kinds(c->net, c->kind, c->param);
    if (o->refine_frac > 0 && o->refine_frac < 1) {
        c->refine = malloc((size_t)na);
        c->imp = malloc((size_t)na * sizeof(double));
        if (!c->refine || !c->imp)
            return err_set(e, ERR_NOMEM, "genbab: out of memory");
    }
    return 0;
}

static void ctx_free(ctx *c)
{
    free(c->kind), free(c->param), free(c->lb), free(c->A), free(c->refine), free(c->imp);
    free(c->pkey), free(c->pline), free(c->pok);
    bnd_net_free(c->net);
    memset(c, 0, sizeof *c);
}

/* Branch on domain d (taken off the stack): the children worth keeping go
 * to best[]; returns 0 or < 0. */
static int branch(worker *w, domain *d, domain best[2], err *e)
{
    ctx *c = &w->c;
    const bab_genbab_opts *o = c->o;
    cand *cs = w->cs;
    domain ch[2] = {{0}};
    int64_t nc = 0;
    int k = o->rule == BAB_BRANCH_GENBAB && o->topk > 1 ? o->topk : 1;
    /* top-1 by the GenBaB score: candidates carry score_bound first */
    int pruned = k == 1 && o->rule == BAB_BRANCH_GENBAB;
    for (int64_t j = 0; j < c->n_act; j++) {
        double p = split_point(c, j, d->plo[j], d->phi[j]);
        if (isnan(p))
            continue;
        cs[nc++] = (cand){j, p, pruned ? score_bound(c, d, j, p) : score(c, d, j, p)};
    }
    for (int64_t t = 0; c->input_splits && t < c->n_in; t++) {
        double wd = d->hi[t] - d->lo[t];
        if (!(wd > 1e-9 * (1 + fabs(d->lo[t]) + fabs(d->hi[t]))))
            continue;
        double s_in = o->rule == BAB_BRANCH_WIDTH ? wd : d->gin[t];
        cs[nc++] = (cand){c->n_act + t, 0.5 * d->lo[t] + 0.5 * d->hi[t], s_in};
    }
    if (nc == 0)
        return 1; /* nothing left to split: the clause stays open */
    set_refine(c, d);
    if (k > nc)
        k = (int)nc;
    if (pruned) {
        /* exact scores in the order of their bounds, until no bound can beat
         * the best; ties go to the lower index, as in the plain scan */
        qsort(cs, (size_t)nc, sizeof *cs, by_score);
        int64_t b = -1;
        double best_s = -INFINITY;
        for (int64_t q = 0; q < nc && cs[q].s >= best_s; q++) {
            double sq = cs[q].j < c->n_act ? score(c, d, cs[q].j, cs[q].p) : cs[q].s;
            if (b < 0 || sq > best_s || (sq == best_s && cs[q].j < cs[b].j))
                b = q, best_s = sq;
        }
        cs[0] = cs[b];
        cs[0].s = best_s;
    } else if (k == 1) { /* the single best: a linear scan, no sort */
        int64_t b = 0;
        for (int64_t q = 1; q < nc; q++)
            if (cs[q].s > cs[b].s)
                b = q;
        cs[0] = cs[b];
    } else {
        qsort(cs, (size_t)nc, sizeof *cs, by_score);
    }
    /* an input on top: split it without re-checking (an input split
     * recomputes every layer, so re-checks cost k full bounds; on
     * dist_shift top-1 explores 2.8x the domains in the same time) */
    if (cs[0].j >= c->n_act)
        k = 1;
    double best_worst = -INFINITY;
    int64_t best_j = cs[0].j;
    for (int q = 0; q < k; q++) {
        int rc = children(c, d, cs[q].j, cs[q].p, ch, e);
        if (rc < 0) {
            dom_free(&ch[0]), dom_free(&ch[1]);
            return rc;
        }
        double worst = fmin(ch[0].margin, ch[1].margin);
        if (q == 0 || worst > best_worst) {
            best_j = cs[q].j;
            dom_free(&best[0]), dom_free(&best[1]);
            best[0] = ch[0], best[1] = ch[1];
            best_worst = worst;
            ch[0].plo = ch[1].plo = NULL;
        } else {
            dom_free(&ch[0]), dom_free(&ch[1]);
        }
        if (rc == 2)
            break;
    }
    if (best_j >= c->n_act)
        w->st.input_splits++;
    else if (kinked(c->kind[best_j]))
        w->st.kink_splits++;
    else
        w->st.smooth_splits++;
    return 0;
}

/* A worker: take the deepest open domain, branch, push the unproven
 * children (the harder one last, so it is explored first). */
static void *work_loop(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    const bab_genbab_opts *o = sh->o;
    err e = {0};
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        while (!sh->done && sh->s.n == 0 && sh->busy > 0)
            pthread_cond_wait(&sh->cv, &sh->mu);
        if (sh->done)
            break;
        if (sh->s.n == 0) { /* nothing open and nobody busy: all proven */
            sh->done = 1, sh->rc = 1;
            break;
        }
        if (clock_expired(o->deadline) || sh->st->domains >= o->max_domains ||
            (o->mem_budget && (size_t)sh->s.n * sh->dom_bytes > o->mem_budget)) {
            sh->done = 1, sh->rc = 0;
            break;
        }
        domain d = sh->s.v[--sh->s.n], best[2] = {{0}};
        sh->busy++;
        pthread_mutex_unlock(&sh->mu);
        int rc = branch(w, &d, best, &e);
        dom_free(&d);
        pthread_mutex_lock(&sh->mu);
        sh->busy--;
        if (rc != 0) { /* an error, the deadline inside a bound, or nothing to split */
            if (!sh->done) {
                sh->done = 1;
                sh->rc = rc == ERR_TIMEOUT || rc == 1 ? 0 : rc;
                if (rc < 0 && rc != ERR_TIMEOUT)
                    sh->e = e;
            }
            dom_free(&best[0]), dom_free(&best[1]);
            break;
        }
        sh->st->domains += 2;
        int order[2] = {best[0].margin >= best[1].margin ? 0 : 1,
                        best[0].margin >= best[1].margin ? 1 : 0};
        for (int q = 0; q < 2; q++) {
            domain *b = &best[order[q]];
            if (b->margin > 0 || sh->done) {
                dom_free(b);
                continue;
            }
            if (push(&sh->s, b)) {
                dom_free(b);
                sh->done = 1;
                sh->rc = err_set(&sh->e, ERR_NOMEM, "genbab: out of memory");
            }
        }
        if (sh->s.n > sh->st->max_queue)
            sh->st->max_queue = sh->s.n;
        if (o->verbose && sh->st->domains % 50 == 1)
            fprintf(stderr, "genbab: %lld domains, %lld open, worst margin %.4g\n",
                    (long long)sh->st->domains, (long long)sh->s.n,
                    fmin(best[0].margin, best[1].margin));
        pthread_cond_broadcast(&sh->cv);
    }
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

int bab_genbab(const nn_graph *g, const double *lo, const double *hi, const spec_clause *cl,
               const bab_genbab_opts *o, bab_genbab_stats *st, err *e)
{
    memset(st, 0, sizeof *st);
    if (cl->n_rows <= 0)
        return 0; /* an empty conjunction always holds */
    int nth = o->threads > 1 ? (o->threads < 8 ? o->threads : 8) : 1;
    worker w[8];
    memset(w, 0, sizeof w);
    shared sh = {0};
    sh.o = o, sh.st = st;
    int64_t n_full = g->tensors[g->input].size;
    double *rlo = malloc((size_t)(n_full ? n_full : 1) * sizeof(double));
    double *rhi = malloc((size_t)(n_full ? n_full : 1) * sizeof(double));
    /* one domain's products are small: BLAS threads mostly spin (25 % of
     * the time in sched_yield on dist_shift); the workers are the threads */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    int rc = !rlo || !rhi ? err_set(e, ERR_NOMEM, "genbab: out of memory") : 0;
    for (int t = 0; t < nth && rc == 0; t++) {
        w[t].sh = &sh;
        rc = ctx_init(&w[t].c, g, lo, hi, cl, o, &w[t].st, t == 0 ? rlo : NULL,
                      t == 0 ? rhi : NULL, e);
        if (rc == 0 && !(w[t].cs = malloc((size_t)(w[t].c.n_act + w[t].c.n_in + 1) * sizeof(cand))))
            rc = err_set(e, ERR_NOMEM, "genbab: out of memory");
    }
    domain d = {0};
    if (rc == 0) {
        ctx *c = &w[0].c;
        int64_t moving = 0;
        for (int64_t t = 0; t < c->n_in; t++)
            moving += rhi[t] > rlo[t];
        for (int t = 0; t < nth; t++)
            w[t].c.input_splits = o->input_splits && moving <= 64;
        sh.dom_bytes = (size_t)(4 * c->n_act + 3 * c->n_in) * sizeof(double) + sizeof(domain);
        uint64_t net = o->root ? nn_graph_fingerprint(g) : 0;
        const double *cplo = root_lookup(o->root, net, n_full, c->n_act, lo, hi);
        rc = bound(c, rlo, rhi, cplo, cplo ? o->root->phi : NULL, c->n_act, 1, &d, e);
        if (rc >= 0 && o->root && !cplo && d.margin < INFINITY)
            root_store(o->root, net, n_full, c->n_act, lo, hi, &d);
        st->root_margin = d.margin;
        st->domains = 1;
    }
    if (rc == 0 && push(&sh.s, &d))
        rc = err_set(e, ERR_NOMEM, "genbab: out of memory");
    if (rc == 0) {
        pthread_mutex_init(&sh.mu, NULL);
        pthread_cond_init(&sh.cv, NULL);
        pthread_t tid[8];
        int started = 1;
        for (int t = 1; t < nth; t++) {
            if (pthread_create(&tid[t], NULL, work_loop, &w[t]) != 0)
                break; /* fewer workers: still correct */
            started++;
        }
        work_loop(&w[0]);
        for (int t = 1; t < started; t++)
            pthread_join(tid[t], NULL);
        pthread_mutex_destroy(&sh.mu);
        pthread_cond_destroy(&sh.cv);
        rc = sh.rc;
        if (rc < 0)
            *e = sh.e;
    }
    if (rc == ERR_TIMEOUT)
        rc = 0; /* the deadline passed inside a bound: not proven */
    dom_free(&d);
    for (int64_t q = 0; q < sh.s.n; q++)
        dom_free(&sh.s.v[q]);
    free(sh.s.v);
    for (int t = 0; t < nth; t++) {
        st->bound_calls += w[t].st.bound_calls;
        st->input_splits += w[t].st.input_splits;
        st->kink_splits += w[t].st.kink_splits;
        st->smooth_splits += w[t].st.smooth_splits;
        free(w[t].cs);
        ctx_free(&w[t].c);
    }
    free(rlo), free(rhi);
    openblas_set_num_threads(blas_threads);
    return rc;
}
