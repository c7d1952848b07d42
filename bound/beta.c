/* beta.c: bounds over a ReLU-split domain (beta-CROWN, Wang et al. 2021).
 *
 * A split neuron's pre-activation interval is clipped at 0 on its side, so
 * its relaxation becomes exact (identity or zero). The split constraints
 * s_j·z_j >= 0 also enter the final backward pass as Lagrange terms: for any
 * beta >= 0, obj(x) >= obj(x) - sum_j beta_j s_j z_j(x) on the points meeting
 * the splits, and the CROWN bound of the right-hand side is a bound of the
 * objective there. The bound is concave in beta for fixed relaxation lines;
 * its supergradient is -s_j·ẑ_j, where ẑ is the pre-activation value of the
 * relaxed (linearised) network at the relaxed minimiser x* (the box corner
 * chosen by the last coefficients): one forward pass. Beta is improved by
 * projected Adam ascent and the best bound of every row is kept — each
 * iterate is sound, so the maximum is.
 * Intermediate bounds: the given plo/phi (the parent's) intersected with IBP,
 * clipped by the splits; ReLU layers from `interm_from` on get CROWN
 * intermediate bounds again (which see the exact relaxations of the split
 * neurons before them). */
#include "internal.h"

#include "../core/clock.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_relu(const bnd_layer *L)
{
    return L->kind == BND_L_ACT && L->act == &bnd_relu_rule;
}

int bnd_relu_layers(const bnd_net *n, int64_t *starts)
{
    int c = 0;
    int64_t at = 0;
    for (int i = 0; i < n->n_layers; i++)
        if (is_relu(&n->layers[i])) {
            if (starts)
                starts[c] = at;
            c++;
            at += n->layers[i].size;
        }
    if (starts)
        starts[c] = at;
    return c;
}

int64_t bnd_relu_count(const bnd_net *n)
{
    int64_t at = 0;
    for (int i = 0; i < n->n_layers; i++)
        if (is_relu(&n->layers[i]))
            at += n->layers[i].size;
    return at;
}

void bnd_relu_bounds(const bnd_net *n, double *lo, double *hi)
{
    int64_t at = 0;
    for (int i = 0; i < n->n_layers; i++)
        if (is_relu(&n->layers[i])) {
            const bnd_layer *X = &n->layers[n->layers[i].in[0]];
            memcpy(lo + at, X->lo, (size_t)X->size * sizeof(double));
            memcpy(hi + at, X->hi, (size_t)X->size * sizeof(double));
            at += X->size;
        }
}

/* Per layer: the ReLU layer index whose input it is (-1 if none), and the
 * first neuron of that ReLU layer. */
typedef struct {
    int *relu_of_pre;    /* n_layers */
    int64_t *start_of;   /* n_layers: first neuron of the ReLU layer i (ACT) */
    int *relu_index;     /* n_layers: ReLU layer index of ACT layer i, or -1 */
} relu_map;

static int map_new(const bnd_net *n, relu_map *m)
{
    int nl = n->n_layers;
    m->relu_of_pre = malloc((size_t)nl * sizeof(int));
    m->relu_index = malloc((size_t)nl * sizeof(int));
    m->start_of = malloc((size_t)nl * sizeof(int64_t));
    if (!m->relu_of_pre || !m->relu_index || !m->start_of)
        return -1;
    int c = 0;
    int64_t at = 0;
    for (int i = 0; i < nl; i++)
        m->relu_of_pre[i] = -1, m->relu_index[i] = -1, m->start_of[i] = 0;
    for (int i = 0; i < nl; i++)
        if (is_relu(&n->layers[i])) {
            m->relu_of_pre[n->layers[i].in[0]] = i;
            m->relu_index[i] = c++;
            m->start_of[i] = at;
            at += n->layers[i].size;
        }
    return 0;
}

static void map_free(relu_map *m)
{
    free(m->relu_of_pre), free(m->relu_index), free(m->start_of);
}

static int opt_bound(bnd_net *net, const relu_map *mp, const int8_t *side, const bnd_domain *dom,
                     int start, const double *C, int k, const bnd_beta_opts *o, bnd_beta_out *out,
                     err *e);

/* Layer i's bounds intersected with the parent's and clipped by the splits;
 * 1 if empty. */
static int clip_layer(bnd_net *net, const relu_map *m, const bnd_domain *dom, const int8_t *side,
                      int i)
{
    bnd_layer *L = &net->layers[i];
    int r = m->relu_of_pre[i];
    if (r < 0)
        return 0;
    int64_t s0 = m->start_of[r];
    for (int64_t t = 0; t < L->size; t++) {
        double lo = L->lo[t], hi = L->hi[t];
        if (dom->plo) {
            lo = fmax(lo, dom->plo[s0 + t]);
            hi = fmin(hi, dom->phi[s0 + t]);
        }
        if (side[s0 + t] > 0)
            lo = fmax(lo, 0.0);
        else if (side[s0 + t] < 0)
            hi = fmin(hi, 0.0);
        if (!(lo <= hi))
            return 1;
        L->lo[t] = lo, L->hi[t] = hi;
    }
    L->mz_ok = 0;
    return 0;
}

/* Optimised (alpha, and beta for earlier splits) bounds of the unstable
 * neurons of pre-activation layer i: rows +e_t and -e_t, met with the current
 * bounds. Falls back to CROWN when there are too many rows. */
static int refine_opt(bnd_net *net, const relu_map *m, const bnd_domain *dom, const int8_t *side,
                      int i, err *e)
{
    bnd_layer *L = &net->layers[i];
    int64_t n = L->size, ku = 0;
    for (int64_t t = 0; t < n; t++)
        ku += L->lo[t] < 0 && L->hi[t] > 0;
    if (ku == 0)
        return 0;
    if (ku > net->crown_max_rows || 2 * ku * n > BND_MAX_A_ENTRIES)
        return bnd_crown_refine(net, i, e);
    int64_t *idx = malloc((size_t)ku * sizeof(int64_t));
    double *A0 = calloc((size_t)(2 * ku * n), sizeof(double));
    double *lb = malloc((size_t)(2 * ku) * sizeof(double));
    double *beta = calloc((size_t)(2 * ku) * (size_t)(dom->n_splits ? dom->n_splits : 1), sizeof(double));
    int rc = 0;
    if (!idx || !A0 || !lb || !beta) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        goto out;
    }
    for (int64_t t = 0, q = 0; t < n; t++)
        if (L->lo[t] < 0 && L->hi[t] > 0) {
            idx[q] = t;
            A0[q * n + t] = 1.0;
            A0[(ku + q) * n + t] = -1.0;
            q++;
        }
    bnd_beta_opts o = {.iters = dom->interm_iters, .lr = 0.05, .alpha = 1, .alpha_lr = 0.1};
    bnd_beta_out bo = {.lb = lb, .beta = beta};
    rc = opt_bound(net, m, side, dom, i, A0, (int)(2 * ku), &o, &bo, e);
    for (int64_t q = 0; rc == 0 && q < ku; q++) {
        int64_t t = idx[q];
        double l = lb[q], u = -lb[ku + q];
        if (l > L->lo[t])
            L->lo[t] = l;
        if (u < L->hi[t])
            L->hi[t] = u;
    }
    L->mz_ok = 0;
out:
    free(idx), free(A0), free(lb), free(beta);
    return rc;
}

typedef struct {
    double score;
    int64_t t;
} lp_cand;

static int cand_cmp(const void *a, const void *b)
{
    double x = ((const lp_cand *)a)->score, y = ((const lp_cand *)b)->score;
    return (x < y) - (x > y); /* descending */
}

/* LP tightening of pre-activation layer i (ReLU layer index ri >= 1) within
 * its share of the time left until dom->lp_until: the unstable neurons in
 * order of the triangle's height -l·u/(u-l) (the relaxation's largest gap). */
static int lp_layer(bnd_net *net, const relu_map *m, const bnd_domain *dom, const int8_t *side,
                    int i, int ri, err *e)
{
    bnd_layer *L = &net->layers[i];
    int nrl = 0;
    for (int j = 0; j < net->n_layers; j++)
        nrl += m->relu_index[j] >= 0;
    double now = clock_now();
    if (!(dom->lp_until > now) || ri >= nrl)
        return 0;
    double until = now + (dom->lp_until - now) / (double)(nrl - ri);
    lp_cand *c = malloc((size_t)(L->size ? L->size : 1) * sizeof *c);
    int64_t *idx = malloc((size_t)(L->size ? L->size : 1) * sizeof *idx);
    if (!c || !idx) {
        free(c), free(idx);
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    }
    int64_t k = 0;
    for (int64_t t = 0; t < L->size; t++)
        if (L->lo[t] < 0 && L->hi[t] > 0)
            c[k].score = -L->lo[t] * L->hi[t] / (L->hi[t] - L->lo[t]), c[k++].t = t;
    qsort(c, (size_t)k, sizeof *c, cand_cmp);
    for (int64_t q = 0; q < k; q++)
        idx[q] = c[q].t;
    int64_t done = 0;
    double w0 = 0, w1 = 0;
    for (int64_t q = 0; q < k; q++)
        w0 += L->hi[c[q].t] - L->lo[c[q].t];
    int rc = bnd_lp_refine(net, side, ri, idx, k, until, &done, e);
    if (getenv("NNV_LP_LOG")) {
        int64_t ku = 0;
        for (int64_t t = 0; t < L->size; t++)
            ku += L->lo[t] < 0 && L->hi[t] > 0;
        for (int64_t q = 0; q < k; q++)
            w1 += L->hi[c[q].t] - L->lo[c[q].t];
        fprintf(stderr, "lp refine: relu layer %d: %lld of %lld unstable done, %lld left unstable, "
                "width sum %.6g -> %.6g, %.2f s\n", ri, (long long)done, (long long)k,
                (long long)ku, w0, w1, clock_now() - now);
    }
    free(c), free(idx);
    return rc;
}

/* The forward sweep of intermediate bounds over the domain; 1 if empty. */
static int domain_bounds(bnd_net *net, const relu_map *m, const bnd_domain *dom,
                         const int8_t *side, err *e)
{
    bnd_layer *L0 = &net->layers[0];
    memcpy(L0->lo, dom->lo, (size_t)L0->size * sizeof(double));
    memcpy(L0->hi, dom->hi, (size_t)L0->size * sizeof(double));
    for (int i = 0; i < net->n_layers; i++)
        net->layers[i].mz_ok = net->layers[i].errw_ok = 0;
    for (int i = 1; i < net->n_layers; i++) {
        bnd_layer *L = &net->layers[i];
        int rc = bnd_ibp_layer(net, i, e);
        if (rc)
            return rc;
        int r = m->relu_of_pre[i];
        if (clip_layer(net, m, dom, side, i))
            return 1;
        if (L->is_preact && !L->ibp_exact &&
            (r < 0 || m->relu_index[r] >= dom->interm_from || !dom->plo)) {
            rc = r >= 0 && dom->interm_iters > 0 ? refine_opt(net, m, dom, side, i, e)
                                                  : bnd_crown_refine(net, i, e);
            if (rc)
                return rc;
            if (clip_layer(net, m, dom, side, i))
                return 1;
            if (r >= 0 && dom->lp_until > 0 && !dom->plo && m->relu_index[r] >= 1) {
                rc = lp_layer(net, m, dom, side, i, m->relu_index[r], e);
                if (rc)
                    return rc;
                if (clip_layer(net, m, dom, side, i))
                    return 1;
            }
        }
        if (L->kind == BND_L_ACT) {
            rc = bnd_ibp_layer(net, i, e);
            if (rc == 0)
                rc = bnd_act_relax(net, i, e);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Values of every layer up to `last` of the linearised network (the lines
 * chosen in sel) at the k points xs (k x n_in): val[i] is k x size. */
static int primal_forward(bnd_net *net, int64_t k, const double *xs, uint8_t *const *sel,
                          double *const *alpha, int last, double **val)
{
    memcpy(val[0], xs, (size_t)(k * net->layers[0].size) * sizeof(double));
    double *tmp = NULL;
    for (int i = 1; i <= last; i++) {
        bnd_layer *L = &net->layers[i];
        int64_t n = L->size;
        double *y = val[i];
        if (L->kind == BND_L_LINEAR) {
            memset(y, 0, (size_t)(k * n) * sizeof(double));
            if (!tmp && !(tmp = malloc((size_t)(k * n) * sizeof(double))))
                return -1;
            for (int j = 0; j < L->n_in; j++) {
                const double *xj = val[L->in[j]];
                if (L->lin[j]) {
                    double *t2 = realloc(tmp, (size_t)(k * n) * sizeof(double));
                    if (!t2)
                        return free(tmp), -1;
                    tmp = t2;
                    bnd_lin_forward(L->lin[j], 0, k, xj, tmp);
                    for (int64_t q = 0; q < k * n; q++)
                        y[q] += tmp[q];
                } else {
                    for (int64_t q = 0; q < k * n; q++)
                        y[q] += xj[q];
                }
            }
            if (L->bias)
                for (int64_t r = 0; r < k; r++)
                    for (int64_t o = 0; o < n; o++)
                        y[r * n + o] += L->bias[o];
        } else if (L->kind == BND_L_ACT) {
            const double *z = val[L->in[0]];
            const uint8_t *s = sel[i];
            const double *al = alpha ? alpha[i] : NULL;
            for (int64_t q = 0; q < k * n; q++) {
                int64_t j = q % n;
                int low = s ? s[q] : 1;
                double lw = L->lw[j];
                if (al && L->lb[j] == 0 && L->lw[j] != L->uw[j])
                    lw = al[q];
                y[q] = low ? lw * z[q] + L->lb[j] : L->uw[j] * z[q] + L->ub[j];
            }
        }
    }
    free(tmp);
    return 0;
}

static int all_clauses_refuted(const bnd_beta_opts *o, int k, const double *lb)
{
    if (!o->d || !o->clause || o->n_clauses <= 0)
        return 0;
    for (int c = 0; c < o->n_clauses; c++) {
        int ok = 0;
        for (int q = 0; q < k && !ok; q++)
            ok = o->clause[q] == c && lb[q] > o->d[q];
        if (!ok)
            return 0;
    }
    return 1;
}

/* The optimisation of the bounds of the k rows of C on layer `start` over the
 * current layer bounds (beta for the splits before `start`, alpha if asked). */
static int opt_bound(bnd_net *net, const relu_map *mp, const int8_t *side, const bnd_domain *dom,
                     int start, const double *C, int k, const bnd_beta_opts *o, bnd_beta_out *out,
                     err *e)
{
    int nl = net->n_layers;
    int64_t nr = bnd_relu_count(net), n_in = net->layers[0].size, ns = dom->n_splits;
    void **arena = calloc((size_t)(7 * nl + 8), sizeof(void *));
    int rc = 0;
    if (!arena)
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    /* scratch: beta_add/sel/A_act per ACT layer, primal values per layer */
    double **badd = (double **)arena, **A_act = (double **)arena + nl, **val = (double **)arena + 2 * nl;
    uint8_t **sel = (uint8_t **)(arena + 3 * nl);
    double **alpha = (double **)(arena + 4 * nl), **am = (double **)(arena + 5 * nl),
           **av = (double **)(arena + 6 * nl);
    int use_alpha = o && o->alpha;
    double *beta = NULL, *best_beta = NULL, *mom = NULL, *vel = NULL, *lbv = NULL, *xs = NULL;
    int *split_pre = calloc((size_t)(ns ? ns : 1), sizeof(int));
    if (!split_pre)
        rc = -1;
    int last = 0; /* last layer with a split neuron's pre-activation */
    size_t kk = (size_t)(k ? k : 1);
    for (int i = 0; i < nl && rc == 0; i++) {
        const bnd_layer *L = &net->layers[i];
        size_t sz = kk * (size_t)L->size;
        if (!(val[i] = malloc(sz * sizeof(double))))
            rc = -1;
        if (L->kind != BND_L_ACT)
            continue;
        if (!(sel[i] = malloc(sz)))
            rc = -1;
        if (mp->relu_index[i] >= 0 && (out->A_relu || use_alpha) &&
            !(A_act[i] = calloc(sz, sizeof(double))))
            rc = -1;
        if (mp->relu_index[i] >= 0 && use_alpha) {
            /* alpha starts at the adaptive CROWN slope */
            alpha[i] = malloc(sz * sizeof(double));
            am[i] = calloc(sz, sizeof(double));
            av[i] = calloc(sz, sizeof(double));
            if (!alpha[i] || !am[i] || !av[i])
                rc = -1;
            else
                for (size_t q = 0; q < sz; q++) {
                    size_t j = q % (size_t)L->size, r = q / (size_t)L->size;
                    double a0 = out->alpha ? out->alpha[r * (size_t)nr + (size_t)mp->start_of[i] + j] : NAN;
                    alpha[i][q] = a0 >= 0 && a0 <= 1 ? a0 : L->lw[j]; /* warm start or CROWN */
                }
        }
    }
    for (int64_t q = 0; q < ns && rc == 0; q++) {
        int64_t j = dom->splits[q].neuron;
        for (int i = 0; i < nl; i++)
            if (mp->relu_index[i] >= 0 && j >= mp->start_of[i] && j < mp->start_of[i] + net->layers[i].size) {
                if (!badd[i] && !(badd[i] = calloc(kk * (size_t)net->layers[i].size, sizeof(double))))
                    rc = -1;
                split_pre[q] = net->layers[i].in[0];
                if (split_pre[q] > last && split_pre[q] < start)
                    last = split_pre[q];
            }
    }
    size_t nb = kk * (size_t)(ns ? ns : 1);
    beta = calloc(nb, sizeof(double)), best_beta = calloc(nb, sizeof(double));
    mom = calloc(nb, sizeof(double)), vel = calloc(nb, sizeof(double));
    lbv = malloc(kk * sizeof(double));
    xs = malloc(kk * (size_t)n_in * sizeof(double));
    if (rc || !beta || !best_beta || !mom || !vel || !lbv || !xs) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        goto free_scratch;
    }
    if (out->beta)
        for (size_t q = 0; q < (size_t)k * (size_t)ns; q++)
            beta[q] = out->beta[q] > 0 ? out->beta[q] : 0;
    for (int q = 0; q < k; q++)
        out->lb[q] = -INFINITY;
    bnd_bwd_ext ext = {(const double *const *)badd, sel, out->A_relu || use_alpha ? A_act : NULL, xs, NULL, NULL};
    double lr = o && o->lr > 0 ? o->lr : 0.05;
    int iters = o ? o->iters : 0;
    for (int it = 0; it <= iters; it++) {
        for (int64_t q = 0; q < ns; q++) {
            int64_t j = dom->splits[q].neuron;
            for (int i = 0; i < nl; i++)
                if (badd[i] && j >= mp->start_of[i] && j < mp->start_of[i] + net->layers[i].size) {
                    int64_t n = net->layers[i].size, t = j - mp->start_of[i];
                    for (int r = 0; r < k; r++)
                        badd[i][r * n + t] = -beta[r * ns + q] * side[j];
                }
        }
        rc = bnd_backward_ext(net, start, k, C, 0, use_alpha ? (const double *const *)alpha : NULL,
                              &ext, lbv, e);
        if (rc)
            goto free_scratch;
        for (int r = 0; r < k; r++) {
            if (!(lbv[r] > out->lb[r]))
                continue;
            out->lb[r] = lbv[r];
            memcpy(best_beta + (size_t)r * (size_t)ns, beta + (size_t)r * (size_t)ns,
                   (size_t)ns * sizeof(double));
            for (int i = 0; use_alpha && out->alpha && i < start; i++)
                if (alpha[i]) {
                    int64_t n = net->layers[i].size;
                    memcpy(out->alpha + r * nr + mp->start_of[i], alpha[i] + r * n,
                           (size_t)n * sizeof(double));
                }
            if (out->x_star)
                memcpy(out->x_star + r * n_in, xs + r * n_in, (size_t)n_in * sizeof(double));
            for (int i = 0; out->A_relu && i < nl; i++)
                if (A_act[i]) {
                    int64_t n = net->layers[i].size;
                    memcpy(out->A_relu + r * nr + mp->start_of[i], A_act[i] + r * n,
                           (size_t)n * sizeof(double));
                }
        }
        if (it == iters || (ns == 0 && !use_alpha) || all_clauses_refuted(o, k, out->lb))
            break;
        /* supergradient -s_j ẑ_j at the relaxed minimiser, Adam ascent */
        if (primal_forward(net, k, xs, sel, use_alpha ? alpha : NULL, use_alpha ? start - 1 : last, val)) {
            rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
            goto free_scratch;
        }
        double b1 = 0.9, b2 = 0.999, c1 = 1 - pow(b1, it + 1), c2 = 1 - pow(b2, it + 1);
        for (int64_t q = 0; q < ns; q++) {
            int64_t j = dom->splits[q].neuron;
            int li = -1;
            if (split_pre[q] >= start)
                continue; /* not reached from start */
            for (int i = 0; i < nl && li < 0; i++)
                if (mp->relu_index[i] >= 0 && j >= mp->start_of[i] && j < mp->start_of[i] + net->layers[i].size)
                    li = i;
            int pre = net->layers[li].in[0];
            int64_t n = net->layers[pre].size, t = j - mp->start_of[li];
            for (int r = 0; r < k; r++) {
                size_t at = (size_t)r * (size_t)ns + (size_t)q;
                double gq = -side[j] * val[pre][r * n + t];
                if (!isfinite(gq))
                    gq = 0;
                mom[at] = b1 * mom[at] + (1 - b1) * gq;
                vel[at] = b2 * vel[at] + (1 - b2) * gq * gq;
                beta[at] += lr * (mom[at] / c1) / (sqrt(vel[at] / c2) + 1e-8);
                if (!(beta[at] > 0))
                    beta[at] = 0;
            }
        }
        /* alpha: d lb / d alpha_j = A_j·ẑ_j where the lower line is used */
        for (int i = 0; use_alpha && i < start; i++) {
            if (!alpha[i])
                continue;
            const bnd_layer *L = &net->layers[i];
            int64_t n = L->size;
            const double *z = val[L->in[0]];
            for (int64_t q = 0; q < k * n; q++) {
                int64_t j = q % n;
                if (!(L->lb[j] == 0 && L->lw[j] != L->uw[j]) || !sel[i][q])
                    continue;
                double gq = A_act[i][q] * z[q];
                if (!isfinite(gq))
                    gq = 0;
                am[i][q] = b1 * am[i][q] + (1 - b1) * gq;
                av[i][q] = b2 * av[i][q] + (1 - b2) * gq * gq;
                double a = alpha[i][q] + o->alpha_lr * (am[i][q] / c1) / (sqrt(av[i][q] / c2) + 1e-8);
                alpha[i][q] = a < 0 ? 0 : (a > 1 ? 1 : a);
            }
        }
        lr *= 0.98;
    }
    if (out->beta)
        memcpy(out->beta, best_beta, (size_t)k * (size_t)ns * sizeof(double));
free_scratch:
    for (int i = 0; i < 7 * nl; i++)
        free(arena[i]);
    free(beta), free(best_beta), free(mom), free(vel), free(lbv), free(xs), free(split_pre);
    free(arena);
    if (rc == -1)
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    return rc;
}

int bnd_beta_bound(bnd_net *net, const bnd_domain *dom, const double *C, int k,
                   const bnd_beta_opts *o, bnd_beta_out *out, err *e)
{
    int64_t nr = bnd_relu_count(net), ns = dom->n_splits;
    relu_map m = {0};
    int8_t *side = calloc((size_t)(nr ? nr : 1), 1);
    int rc = 0;
    if (map_new(net, &m) || !side) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        goto done;
    }
    for (int64_t q = 0; q < ns; q++) {
        int64_t j = dom->splits[q].neuron;
        if (j < 0 || j >= nr) {
            rc = err_set(e, ERR_ARG, "%s: split of neuron %lld: no such ReLU neuron", net->source,
                         (long long)j);
            goto done;
        }
        side[j] = (int8_t)(dom->splits[q].side > 0 ? 1 : -1);
    }
    rc = domain_bounds(net, &m, dom, side, e);
    if (rc < 0)
        goto done;
    if (rc == 1) {
        for (int q = 0; q < k; q++)
            out->lb[q] = INFINITY;
        goto done;
    }
    if (out->plo)
        bnd_relu_bounds(net, out->plo, out->phi);

    rc = opt_bound(net, &m, side, dom, net->out, C, k, o, out, e);
done:
    map_free(&m);
    free(side);
    return rc;
}

/* At a point box every ReLU's relaxation is (up to rounding width) its local
 * linearisation, so the coefficients reaching the input are the gradient. */
int bnd_point_grad(bnd_net *net, const double *x, const double *C, int k, double *grad, err *e)
{
    bnd_layer *L0 = &net->layers[0];
    memcpy(L0->lo, x, (size_t)L0->size * sizeof(double));
    memcpy(L0->hi, x, (size_t)L0->size * sizeof(double));
    for (int i = 0; i < net->n_layers; i++)
        net->layers[i].mz_ok = net->layers[i].errw_ok = 0;
    for (int i = 1; i < net->n_layers; i++) {
        int rc = bnd_ibp_layer(net, i, e);
        if (rc == 0 && net->layers[i].kind == BND_L_ACT)
            rc = bnd_act_relax(net, i, e);
        if (rc)
            return rc;
    }
    double *lbv = malloc((size_t)(k ? k : 1) * sizeof(double));
    if (!lbv)
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    bnd_bwd_ext ext = {.A_in = grad};
    int rc = bnd_backward_ext(net, net->out, k, C, 0, NULL, &ext, lbv, e);
    free(lbv);
    return rc;
}
