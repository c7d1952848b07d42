/* beta_batch.c: beta-CROWN for many ReLU split domains at once on chain MLPs.
 *
 * Every domain of a batch is one "box" of batch.c's backward pass: the input
 * box is the region's (the same for all), but each domain has its own
 * pre-activation bounds (the parent's, clipped by its splits), hence its own
 * relaxation lines; every objective row belongs to one domain and carries its
 * own lower slopes (alpha) and split multipliers (beta). One backward pass
 * bounds all rows (one dgemm per linear layer over all rows); beta enters as
 * -beta·side added to a row's coefficient at the split neuron's
 * pre-activation (bnd_batch_backward's badd; sound for any beta >= 0, see
 * batch_internal.h). Rounding: the error budget of batch.c's pass; the
 * magnitudes of layers whose bounds are not kept (linear layers not followed
 * by a ReLU) are bounded by interval sums inflated far beyond their rounding.
 *
 * alpha and beta are moved by Adam steps along the gradient of each row's
 * bound at its primal point (the input corner x* the bound is attained at,
 * pushed forward through the chosen lines): d lb/d beta_j = -side_j·z_j,
 * d lb/d alpha_j = lambda_j·z_j. The gradient only steers; every reported
 * bound is the sound pass at some alpha in [0,1], beta >= 0. */
#include "batch_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"

/* mlp layer holding global ReLU neuron j (roff: offset of each ReLU layer's
 * neurons, -1 for linear layers) */
static int layer_of(const bnd_mlp *m, const int64_t *roff, int64_t j)
{
    int best = -1;
    for (int i = 0; i < m->n_layers; i++)
        if (m->L[i].act && roff[i] <= j)
            best = i;
    return best;
}

typedef struct {
    int64_t R, B, nr, n0, W;
    int nl;
    int64_t *roff;
    double **alpha, **saveA, **badd, **ma, **va; /* per mlp layer, R x n (ReLU layers) */
    double **balpha;                              /* each row's best slopes (steered runs) */
    double *mb, *vb, *bbeta;                      /* R x maxns */
    double *G, *G2, *Ain, *best;
    float *fbuf;                                  /* single-precision scratch, R x 2·W */
    int maxns;
} bb_work;

static void bb_free(bb_work *k)
{
    for (int i = 0; i < k->nl; i++) {
        if (k->alpha)
            free(k->alpha[i]);
        if (k->saveA)
            free(k->saveA[i]);
        if (k->badd)
            free(k->badd[i]);
        if (k->ma)
            free(k->ma[i]);
        if (k->va)
            free(k->va[i]);
        if (k->balpha)
            free(k->balpha[i]);
    }
    free(k->alpha), free(k->saveA), free(k->badd), free(k->ma), free(k->va), free(k->balpha);
    free(k->mb), free(k->vb), free(k->bbeta), free(k->G), free(k->G2), free(k->Ain), free(k->best);
    free(k->roff), free(k->fbuf);
}

/* The bounds of every layer and the relaxation lines of every ReLU, per
 * domain; domains whose bounds are contradictory get empty[b] = 1 (and
 * harmless finite bounds). */
static void fill_bounds(batch *bt, const bb_work *k, const bnd_bbeta_dom *doms, const double *lo,
                        const double *hi, uint8_t *empty)
{
    const bnd_mlp *m = bt->m;
    int64_t B = bt->B, n0 = m->n_in;
    for (int64_t b = 0; b < B; b++) {
        memcpy(bt->lo[0] + b * n0, lo, (size_t)n0 * sizeof(double));
        memcpy(bt->hi[0] + b * n0, hi, (size_t)n0 * sizeof(double));
        empty[b] = 0;
    }
    for (int i = 0; i < m->n_layers; i++) {
        const mlp_layer *l = &m->L[i];
        int64_t n = l->n, ni = l->n_in;
        double *zl = bt->lo[i + 1], *zu = bt->hi[i + 1];
        if (l->act) {
            const double *pl = bt->lo[i], *pu = bt->hi[i];
            bnd_relu_rule.relax(0.0, B * n, pl, pu, bt->lw[i + 1], bt->lb[i + 1], bt->uw[i + 1],
                                bt->ub[i + 1]);
            for (int64_t t = 0; t < B * n; t++)
                zl[t] = pl[t] > 0 ? pl[t] : 0, zu[t] = pu[t] > 0 ? pu[t] : 0;
            continue;
        }
        if (i + 1 < m->n_layers && m->L[i + 1].act) {
            int64_t off = k->roff[i + 1];
            for (int64_t b = 0; b < B; b++)
                for (int64_t j = 0; j < n; j++) {
                    double a = doms[b].plo[off + j], c = doms[b].phi[off + j];
                    if (!(a <= c)) {
                        empty[b] = 1;
                        a = c = 0;
                    }
                    zl[b * n + j] = a, zu[b * n + j] = c;
                }
            /* interval arithmetic from the (split-clipped) layer below can
             * be tighter; the domain keeps the met bounds for its children */
            if (i > 0) {
                bnd_batch_ibp_meet(bt, i, NULL, NULL);
                for (int64_t b = 0; b < B; b++)
                    for (int64_t j = 0; j < n; j++) {
                        double a = zl[b * n + j], c = zu[b * n + j];
                        if (!(a <= c) || empty[b]) {
                            empty[b] = 1;
                            zl[b * n + j] = zu[b * n + j] = 0;
                            continue;
                        }
                        doms[b].plo[off + j] = a, doms[b].phi[off + j] = c;
                    }
            }
            continue;
        }
        /* a magnitude only: |W|·max|in| + |b| (+ bias_err), inflated by a
         * factor far above the sum's relative rounding gamma_ni */
        double *mz = bt->mz;
        for (int64_t t = 0; t < B * ni; t++)
            mz[t] = fmax(fabs(bt->lo[i][t]), fabs(bt->hi[i][t]));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)n, (int)ni, 1.0, mz,
                    (int)ni, l->Wabs, (int)ni, 0.0, zu, (int)n);
        for (int64_t b = 0; b < B; b++)
            for (int64_t o = 0; o < n; o++) {
                double v = zu[b * n + o] + fabs(l->bias[o]) + (l->bias_err ? l->bias_err[o] : 0);
                v = bnd_up(v * (1 + 1e-6) + 1e-300);
                zu[b * n + o] = v, zl[b * n + o] = -v;
            }
    }
}

static int bb_alloc(bb_work *k, const bnd_mlp *m, int64_t R, int maxns, int fast, err *e)
{
    int nl = m->n_layers;
    k->nl = nl, k->R = R, k->maxns = maxns, k->n0 = m->n_in, k->W = m->widest;
    k->roff = malloc((size_t)nl * sizeof(int64_t));
    k->alpha = calloc((size_t)nl, sizeof(double *));
    k->saveA = calloc((size_t)nl, sizeof(double *));
    k->badd = calloc((size_t)nl, sizeof(double *));
    k->ma = calloc((size_t)nl, sizeof(double *));
    k->va = calloc((size_t)nl, sizeof(double *));
    k->balpha = calloc((size_t)nl, sizeof(double *));
    size_t ms = (size_t)R * (size_t)(maxns ? maxns : 1);
    k->mb = calloc(ms, sizeof(double)), k->vb = calloc(ms, sizeof(double));
    k->bbeta = malloc(ms * sizeof(double));
    if (fast && !(k->fbuf = malloc(2 * (size_t)(R * k->W) * sizeof(float))))
        return err_set(e, ERR_NOMEM, "beta batch: out of memory (%lld rows)", (long long)R);
    k->G = malloc((size_t)(R * k->W) * sizeof(double));
    k->G2 = malloc((size_t)(R * k->W) * sizeof(double));
    k->Ain = malloc((size_t)(R * k->n0) * sizeof(double));
    k->best = malloc((size_t)R * sizeof(double));
    if (!k->roff || !k->alpha || !k->saveA || !k->badd || !k->ma || !k->va || !k->balpha ||
        !k->mb || !k->vb || !k->bbeta || !k->G || !k->G2 || !k->Ain || !k->best)
        return err_set(e, ERR_NOMEM, "beta batch: out of memory (%lld rows)", (long long)R);
    int64_t nr = 0;
    for (int i = 0; i < nl; i++) {
        k->roff[i] = -1;
        if (!m->L[i].act)
            continue;
        k->roff[i] = nr;
        int64_t n = m->L[i].n;
        nr += n;
        size_t sz = (size_t)(R * n);
        k->alpha[i] = malloc(sz * sizeof(double)), k->saveA[i] = malloc(sz * sizeof(double));
        k->badd[i] = malloc(sz * sizeof(double));
        k->ma[i] = calloc(sz, sizeof(double)), k->va[i] = calloc(sz, sizeof(double));
        if (fast)
            k->balpha[i] = malloc(sz * sizeof(double));
        if (!k->alpha[i] || !k->saveA[i] || !k->badd[i] || !k->ma[i] || !k->va[i] ||
            (fast && !k->balpha[i]))
            return err_set(e, ERR_NOMEM, "beta batch: out of memory (%lld rows)", (long long)R);
    }
    k->nr = nr;
    return 0;
}

/* one Adam step direction; c1, c2: the bias corrections 1/(1 - 0.9^t), 1/(1 - 0.999^t) */
static inline double adam(double *mm, double *vv, double g, double c1, double c2)
{
    *mm = 0.9 * *mm + 0.1 * g;
    *vv = 0.999 * *vv + 0.001 * g * g;
    return *mm * c1 / (sqrt(*vv * c2) + 1e-8);
}

/* the Lagrange terms -beta·side at the split neurons, from rows->beta */
static void set_badd(bb_work *k, const bnd_mlp *m, const batch *bt, const bnd_bbeta_dom *doms,
                     const bnd_bbeta_rows *rows)
{
    int64_t R = k->R;
    for (int i = 0; i < m->n_layers; i++)
        if (m->L[i].act)
            memset(k->badd[i], 0, (size_t)(R * m->L[i].n) * sizeof(double));
    for (int64_t r = 0; r < R; r++) {
        const bnd_bbeta_dom *d = &doms[bt->rbox[r]];
        for (int q = 0; q < d->ns; q++) {
            int li = layer_of(m, k->roff, d->splits[q].neuron);
            int64_t j = d->splits[q].neuron - k->roff[li];
            double bv = rows->beta[r][q];
            k->badd[li][r * m->L[li].n + j] = d->splits[q].side > 0 ? -bv : bv;
        }
    }
}

/* one backward pass over all rows from C (fast: a steering pass) */
static void pass(bb_work *k, const bnd_mlp *m, batch *bt, const bnd_bbeta_dom *doms,
                 const bnd_bbeta_rows *rows, int fast)
{
    int64_t R = k->R;
    set_badd(k, m, bt, doms, rows);
    for (int64_t r = 0; r < R; r++)
        memcpy(bt->A + r * m->n_out, rows->C + r * m->n_out, (size_t)m->n_out * sizeof(double));
    memset(bt->cb, 0, (size_t)R * sizeof(double));
    memset(bt->er, 0, (size_t)R * sizeof(double));
    bnd_batch_backward(bt, m->n_layers - 1, R, bt->rbox, bt->A, bt->A2, bt->cb, bt->er, bt->mz,
                       bt->w, bt->lbv, k->Ain, k->alpha, k->saveA, k->badd,
                       fast ? k->fbuf : NULL);
}

/* row r's current slopes as its warm start */
static void hand_back_alpha(const bb_work *k, const bnd_mlp *m, const bnd_bbeta_rows *rows,
                            int64_t r)
{
    if (rows->alpha)
        for (int i = 0; i < m->n_layers; i++)
            if (m->L[i].act)
                memcpy(rows->alpha[r] + k->roff[i], k->alpha[i] + r * m->L[i].n,
                       (size_t)m->L[i].n * sizeof(double));
}

/* row r's outputs from the last (sound) pass: its coefficients at the ReLU
 * outputs and its relaxed minimiser */
static void report_row(const bb_work *k, const bnd_mlp *m, const bnd_bbeta_rows *rows,
                       const double *lo, const double *hi, int64_t r)
{
    int64_t n0 = m->n_in;
    if (rows->A_relu)
        for (int i = 0; i < m->n_layers; i++)
            if (m->L[i].act)
                memcpy(rows->A_relu + r * k->nr + k->roff[i], k->saveA[i] + r * m->L[i].n,
                       (size_t)m->L[i].n * sizeof(double));
    if (rows->x_star) {
        const double *a = k->Ain + r * n0;
        double *x = rows->x_star + r * n0;
        for (int64_t t = 0; t < n0; t++)
            x[t] = a[t] > 0 ? lo[t] : (a[t] < 0 ? hi[t] : 0.5 * (lo[t] + hi[t]));
    }
}

/* keep row r's slopes and multipliers as its best */
static void keep_params(bb_work *k, const bnd_mlp *m, const bnd_bbeta_rows *rows, int ns, int64_t r)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->L[i].act)
            memcpy(k->balpha[i] + r * m->L[i].n, k->alpha[i] + r * m->L[i].n,
                   (size_t)m->L[i].n * sizeof(double));
    memcpy(k->bbeta + r * k->maxns, rows->beta[r], (size_t)ns * sizeof(double));
}

/* exchange row r's current slopes and multipliers with its kept best */
static void swap_params(bb_work *k, const bnd_mlp *m, const bnd_bbeta_rows *rows, int ns, int64_t r)
{
    for (int i = 0; i < m->n_layers; i++) {
        if (!m->L[i].act)
            continue;
        double *a = k->alpha[i] + r * m->L[i].n, *b = k->balpha[i] + r * m->L[i].n;
        for (int64_t j = 0; j < m->L[i].n; j++) {
            double t = a[j];
            a[j] = b[j], b[j] = t;
        }
    }
    double *bb = k->bbeta + r * k->maxns, *cur = rows->beta[r];
    for (int q = 0; q < ns; q++) {
        double t = cur[q];
        cur[q] = bb[q], bb[q] = t;
    }
}

int64_t bnd_mlp_relu_count(const bnd_mlp *m)
{
    int64_t nr = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->L[i].act)
            nr += m->L[i].n;
    return nr;
}

int bnd_beta_batch(const bnd_mlp *m, const double *lo, const double *hi, int64_t B,
                   const bnd_bbeta_dom *doms, const bnd_bbeta_rows *rows, const bnd_bbeta_opts *o,
                   err *e)
{
    int64_t R = rows->R, n0 = m->n_in, Wd = m->widest;
    int nl = m->n_layers;
    if (B <= 0 || R <= 0)
        return 0;
    int maxns = 0;
    for (int64_t b = 0; b < B; b++)
        if (doms[b].ns > maxns)
            maxns = doms[b].ns;
    bb_work k;
    memset(&k, 0, sizeof k);
    batch bt;
    memset(&bt, 0, sizeof bt);
    double *buf = NULL, **ptrs = NULL;
    uint8_t *empty = NULL;
    /* steering in single precision, then one sound pass: pays from two steps */
    int fast = !o->f64 && o->iters > 1;
    int rc = bb_alloc(&k, m, R, maxns, fast, e);
    if (rc)
        goto out;
    size_t total = 2 * (size_t)(B * n0) + 2 * (size_t)(B * Wd) + 2 * (size_t)(R * Wd) + 3 * (size_t)R;
    for (int i = 0; i <= nl; i++) {
        int64_t sz = i == 0 ? n0 : m->L[i - 1].n;
        total += 2 * (size_t)(B * sz);
        if (i > 0 && m->L[i - 1].act)
            total += 4 * (size_t)(B * sz);
    }
    buf = malloc(total * sizeof(double));
    ptrs = calloc((size_t)(6 * (nl + 1)), sizeof(double *));
    empty = malloc((size_t)B);
    bt.rbox = malloc((size_t)R * sizeof(int64_t));
    if (!buf || !ptrs || !empty || !bt.rbox) {
        rc = err_set(e, ERR_NOMEM, "beta batch: out of memory (%lld domains)", (long long)B);
        goto out;
    }
    double *p = buf;
#define TAKE(n) (p += (n), p - (n))
    bt.m = m, bt.B = B, bt.q = n0 + 1;
    bt.ctr = TAKE(B * n0), bt.rad = TAKE(B * n0);
    bt.mz = TAKE(B * Wd), bt.w = TAKE(B * Wd);
    bt.A = TAKE(R * Wd), bt.A2 = TAKE(R * Wd);
    bt.cb = TAKE(R), bt.er = TAKE(R), bt.lbv = TAKE(R);
    int L1 = nl + 1;
    bt.lo = ptrs, bt.hi = ptrs + L1, bt.lw = ptrs + 2 * L1, bt.lb = ptrs + 3 * L1,
    bt.uw = ptrs + 4 * L1, bt.ub = ptrs + 5 * L1;
    for (int i = 0; i <= nl; i++) {
        int64_t sz = i == 0 ? n0 : m->L[i - 1].n;
        bt.lo[i] = TAKE(B * sz), bt.hi[i] = TAKE(B * sz);
        if (i > 0 && m->L[i - 1].act) {
            bt.lw[i] = TAKE(B * sz), bt.lb[i] = TAKE(B * sz);
            bt.uw[i] = TAKE(B * sz), bt.ub[i] = TAKE(B * sz);
        }
    }
#undef TAKE
    for (int64_t t = 0; t < n0; t++)
        if (!(lo[t] <= hi[t]) || isinf(lo[t]) || isinf(hi[t])) {
            rc = err_set(e, ERR_ARG, "beta batch: bad interval for X_%lld", (long long)t);
            goto out;
        }
    for (int64_t b = 0; b < B; b++)
        bnd_center_radius(n0, lo, hi, bt.ctr + b * n0, bt.rad + b * n0);
    fill_bounds(&bt, &k, doms, lo, hi, empty);
    for (int64_t r = 0; r < R; r++) {
        bt.rbox[r] = rows->dom[r];
        k.best[r] = -INFINITY;
    }
    /* per-row slopes: the warm start where given (>= 0), else CROWN's */
    for (int i = 0; i < nl; i++) {
        if (!m->L[i].act)
            continue;
        int64_t n = m->L[i].n;
        for (int64_t r = 0; r < R; r++) {
            double *a = k.alpha[i] + r * n;
            const double *lw = bt.lw[i + 1] + bt.rbox[r] * n;
            const double *src = rows->alpha ? rows->alpha[r] + k.roff[i] : NULL;
            for (int64_t j = 0; j < n; j++)
                a[j] = src && src[j] >= 0 ? src[j] : lw[j];
        }
    }
    int iters = o->iters > 0 ? o->iters : 1;
    double lr_b = o->lr_beta, lr_a = o->lr_alpha;
    for (int it = 1; it <= iters; it++, lr_b *= 0.98, lr_a *= 0.98) {
        pass(&k, m, &bt, doms, rows, fast);
        int all_done = 1;
        for (int64_t r = 0; r < R; r++) {
            double v = empty[bt.rbox[r]] ? INFINITY : bt.lbv[r];
            if (v > k.best[r] || it == 1) {
                k.best[r] = v;
                if (fast) {
                    keep_params(&k, m, rows, doms[bt.rbox[r]].ns, r);
                } else {
                    report_row(&k, m, rows, lo, hi, r);
                    hand_back_alpha(&k, m, rows, r);
                }
            }
            if (!(rows->thr && k.best[r] > rows->thr[r]))
                all_done = 0;
        }
        if (all_done || it == iters || clock_expired(o->deadline))
            break;
        double c1 = 1 / (1 - pow(0.9, it)), c2 = 1 / (1 - pow(0.999, it));
        /* the primal points pushed forward through the chosen lines */
        double *G = k.G, *G2 = k.G2;
        for (int64_t r = 0; r < R; r++) {
            const double *a = k.Ain + r * n0;
            for (int64_t t = 0; t < n0; t++)
                G[r * n0 + t] = a[t] > 0 ? lo[t] : (a[t] < 0 ? hi[t] : 0.5 * (lo[t] + hi[t]));
        }
        for (int i = 0; i < nl; i++) {
            const mlp_layer *l = &m->L[i];
            int64_t n = l->n;
            if (!l->act) {
                bnd_batch_affine_rows(l, R, G, G2, fast ? k.fbuf : NULL);
                double *t = G;
                G = G2, G2 = t;
                continue;
            }
            const double *lw = bt.lw[i + 1], *lbl = bt.lb[i + 1], *uw = bt.uw[i + 1],
                         *ub = bt.ub[i + 1];
            for (int64_t r = 0; r < R; r++) {
                int64_t bo = bt.rbox[r] * n;
                const bnd_bbeta_dom *d = &doms[bt.rbox[r]];
                double *z = G + r * n, *al = k.alpha[i] + r * n;
                const double *a = k.saveA[i] + r * n;
                /* beta: d lb / d beta_q = -side·z (ascent, projected to >= 0) */
                for (int q = 0; q < d->ns; q++) {
                    if (layer_of(m, k.roff, d->splits[q].neuron) != i)
                        continue;
                    int64_t j = d->splits[q].neuron - k.roff[i];
                    double g = -(double)d->splits[q].side * z[j];
                    size_t s = (size_t)r * (size_t)k.maxns + (size_t)q;
                    double bv = rows->beta[r][q] + lr_b * adam(&k.mb[s], &k.vb[s], g, c1, c2);
                    rows->beta[r][q] = bv > 0 ? bv : 0;
                }
                for (int64_t j = 0; j < n; j++) {
                    int64_t t = bo + j;
                    double zj = z[j];
                    if (a[j] > 0) {
                        z[j] = zj * al[j] + lbl[t];
                        if (lbl[t] == 0 && lw[t] != uw[t]) {
                            double st = adam(&k.ma[i][r * n + j], &k.va[i][r * n + j], a[j] * zj, c1, c2);
                            al[j] = fmin(1.0, fmax(0.0, al[j] + lr_a * st));
                        }
                    } else {
                        z[j] = zj * uw[t] + ub[t];
                    }
                }
            }
        }
    }
    if (fast) {
        /* the reported bound: a sound pass at each row's best parameters;
         * the warm starts handed back: the last iterate's, which is where
         * the steps were heading (256x4 prop_10_0.05: the best iterate's
         * made the search need far more domains) */
        for (int64_t r = 0; r < R; r++)
            swap_params(&k, m, rows, doms[bt.rbox[r]].ns, r);
        pass(&k, m, &bt, doms, rows, 0);
        for (int64_t r = 0; r < R; r++) {
            k.best[r] = empty[bt.rbox[r]] ? INFINITY : bt.lbv[r];
            report_row(&k, m, rows, lo, hi, r);
            swap_params(&k, m, rows, doms[bt.rbox[r]].ns, r);
            hand_back_alpha(&k, m, rows, r);
        }
    }
    for (int64_t r = 0; r < R; r++)
        rows->lb[r] = k.best[r];
out:
    bb_free(&k);
    free(buf), free(ptrs), free(empty), free(bt.rbox);
    return rc;
}
