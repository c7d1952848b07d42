/* star.c: decide a low-dimensional region by enumerating the network's
 * activation regions (star sets, as nnenum does), for chain ReLU MLPs.
 *
 * Why: input splitting covers the region with boxes and bounds each by a
 * relaxation. Where the property's margin is tiny along a whole surface
 * (ACAS Xu 3_3 and 4_2 prop_2: about 1e-3 on a 2-3 dimensional set) the
 * boxes must become so small that millions are needed. Here the region is
 * cut by the network's own ReLU hyperplanes instead, so every piece the
 * search ends with is a polytope on which the network is exactly affine.
 *
 * A node is a polytope P (the region's box and the split constraints on the
 * path to it) and the exact affine map of the current layer on P. Layers are
 * processed in order; a pre-activation z = Z·x + z0 that keeps one sign on P
 * (interval over P's bounding box, the node's CROWN intervals, else an LP
 * over P) maps through its ReLU exactly; one that changes sign splits P into
 * z >= 0 and z <= 0. Depth first; one polytope (polytope.c) per worker
 * whose rows follow the path. At the start of every hidden layer the node is
 * bounded by CROWN from that layer on (bnd_mlp_bound_pre over P's LP
 * bounding box, the decided neurons' intervals clipped at their side), which
 * prunes most nodes long before a leaf; its intervals then decide most of
 * the layer's neurons without an LP. At a leaf (the output layer) the clause
 * rows are affine on P, and one LP decides each clause exactly.
 *
 * Soundness (docs/soundness.md §12):
 * - Every map carries an error bound E over the region's box: the exact
 *   pre-activation is within E of Z·x + z0 (evaluated exactly); E covers the
 *   roundings of composing the layers (each layer's g, bias_err) and the
 *   error carried in.
 * - A split adds a superset of its side: z >= 0 becomes Z·x + z0 >= -E, so
 *   the two children cover P. On the active child the ReLU output is within E
 *   of Z·x + z0 (where z < 0 there, max(0, z) = 0 is within E of
 *   Z·x + z0 >= -E); on the inactive one it is in [0, 2E], the constant E
 *   within E. CROWN sees the clips at -2E / +2E, not at 0.
 * - LP values are never trusted: every bound comes from the LP's duals
 *   lambda >= 0 as min over the box of (c + lambda·G)·x - lambda·h, computed
 *   with outward rounding (any lambda >= 0 gives a valid bound), and an empty
 *   polytope is only concluded from such a bound too (the slack column t).
 * - A leaf's candidate point is a counterexample only if
 *   bab_check_counterexample confirms it; otherwise the leaf is neither
 *   refuted nor sat, and the region's answer becomes unknown. */
#include "star.h"

#include "polytope.h"

#include "../core/clock.h"
#include "../core/fpstep.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

#define RECHECK_SPLITS 2    /* splits in a layer before a node is checked again */
#define MAX_CLAUSES 64

typedef struct {
    int li, j;          /* current linear layer, its next undecided neuron */
    int nc, has_g;      /* constraints on the path (own one included) */
    int checked;        /* CROWN already ran on this layer of the node */
    int box_nc;         /* nc when the bounding box was last made by LP */
    int fresh;          /* splits since the last check */
    uint64_t open;      /* clauses not refuted yet */
} node_hdr;

typedef struct star_ctx star_ctx;

typedef struct {
    star_ctx *c;
    bab_poly *P;        /* the node's polytope (rows follow the path) */
    node_hdr *hdr;      /* the local depth-first stack */
    double *dat;
    int sp, cap;
    node_hdr h;         /* the node being processed */
    double *cur, *zn, *pre_out, *lb, *x, *y, *cobj, *ain;
    int64_t stars, leaves, checks;
    int id;
    uint64_t attacks;
} worker;

typedef struct {
    node_hdr h;
    double *dat, *cons;
    int nrows;
} pooled;

struct star_ctx {
    const nn_graph *g;
    const spec_property *p;
    int r;
    const bnd_mlp *m;
    int nl;
    bnd_mlp_layer_info *L;
    int64_t n0, q, wide, npre, n_out, nd;
    int K, n_cls;
    double *C, *d;      /* all clause rows: K x n_out, K */
    int *cl_of;         /* row -> clause */
    const double *lo, *hi;
    double *xmax;
    double deadline;
    /* the shared pool */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pooled *pool;
    int pn, pcap, idle, n_workers;
    atomic_int hungry;  /* workers waiting for a node (read without the lock) */
    atomic_int stop;    /* 1 done or sat, 2 timeout, 3 error, 4 memory budget */
    size_t memory;      /* bytes for the workers' stacks of nodes */
    int joint;          /* joint_refute at every check */
    int verbose;
    int incomplete;
    int found;
    double *cex;
};

/* Node data offsets (doubles). */
#define OFF_G 0
#define OFF_Z(c) ((c)->q)
#define OFF_EZ(c) (OFF_Z(c) + (c)->wide * (c)->q)
#define OFF_H(c) (OFF_EZ(c) + (c)->wide)
#define OFF_EH(c) (OFF_H(c) + (c)->wide * (c)->q)
#define OFF_IL(c) (OFF_EH(c) + (c)->wide)
#define OFF_IU(c) (OFF_IL(c) + (c)->wide)
#define OFF_BL(c) (OFF_IU(c) + (c)->wide)
#define OFF_BU(c) (OFF_BL(c) + (c)->n0)
#define OFF_PRE(c) (OFF_BU(c) + (c)->n0)
#define NODE_SIZE(c) (OFF_PRE(c) + (c)->npre)

static int expired(star_ctx *c)
{
    return c->deadline > 0 && clock_now() > c->deadline;
}

/* ---- maps ---- */

/* z = W·H + b for the n_in rows of H (q columns: n0 coefficients, constant)
 * with errors EH; Z and EZ get layer l's n outputs. */
static void compose(const star_ctx *c, const bnd_mlp_layer_info *l, const double *H,
                    const double *EH, double *Z, double *EZ)
{
    int64_t n0 = c->n0, q = c->q;
    for (int64_t o = 0; o < l->n; o++) {
        const double *wr = l->W + o * l->n_in;
        double *zr = Z + o * q;
        for (int64_t t = 0; t < q; t++)
            zr[t] = 0;
        double mag = fabs(l->bias[o]), prop = 0;
        for (int64_t i = 0; i < l->n_in; i++) {
            double wi = wr[i];
            if (wi == 0)
                continue;
            const double *hr = H + i * q;
            double m = fabs(hr[n0]) + EH[i];
            for (int64_t t = 0; t < n0; t++) {
                zr[t] += wi * hr[t];
                m += fabs(hr[t]) * c->xmax[t];
            }
            zr[n0] += wi * hr[n0];
            mag += fabs(wi) * m;
            prop += fabs(wi) * EH[i];
        }
        zr[n0] += l->bias[o];
        double e = l->g * mag + prop;
        if (l->bias_err)
            e += l->bias_err[o];
        EZ[o] = bnd_safe(e);
    }
}

/* Z, EZ = layer li applied to H, EH, then every linear layer right after it
 * (H, EH take each intermediate result; zn is scratch). Returns the last
 * linear layer's index. */
static int advance(const star_ctx *c, int li, double *H, double *EH, double *Z, double *EZ,
                   double *zn)
{
    int64_t q = c->q;
    for (;;) {
        compose(c, &c->L[li], H, EH, zn, EZ);
        memcpy(Z, zn, (size_t)c->L[li].n * (size_t)q * sizeof(double));
        if (li + 1 >= c->nl || c->L[li + 1].kind != 0)
            return li;
        memcpy(H, Z, (size_t)c->L[li].n * (size_t)q * sizeof(double));
        memcpy(EH, EZ, (size_t)c->L[li].n * sizeof(double));
        li++;
    }
}

/* Interval of z = Z·x + z0 (exact) over the box [bl, bu]. */
static void box_interval(const star_ctx *c, const double *z, const double *bl, const double *bu,
                         double *lo, double *hi)
{
    int64_t n0 = c->n0;
    double a = z[n0], b = z[n0], mag = fabs(z[n0]);
    for (int64_t t = 0; t < n0; t++) {
        double p = z[t] * bl[t], s = z[t] * bu[t];
        a += fmin(p, s), b += fmax(p, s);
        mag += fabs(z[t]) * fmax(fabs(bl[t]), fabs(bu[t]));
    }
    double rnd = bnd_safe(bnd_gamma((double)n0 + 3) * mag);
    *lo = fp_down(a - rnd), *hi = fp_up(b + rnd);
}

/* ---- the local stack and the pool ---- */

static int push(worker *w, const node_hdr *h, const double *dat)
{
    star_ctx *c = w->c;
    if ((size_t)(w->sp + 1) * (size_t)c->nd * sizeof(double) * (size_t)c->n_workers > c->memory)
        return -2;
    if (w->sp == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        node_hdr *nh = realloc(w->hdr, (size_t)cap * sizeof *nh);
        if (!nh)
            return -1;
        w->hdr = nh;
        double *nd = realloc(w->dat, (size_t)cap * (size_t)c->nd * sizeof(double));
        if (!nd)
            return -1;
        w->dat = nd, w->cap = cap;
    }
    w->hdr[w->sp] = *h;
    memcpy(w->dat + (size_t)w->sp * (size_t)c->nd, dat, (size_t)c->nd * sizeof(double));
    w->sp++;
    return 0;
}

/* Gives the bottom node of the local stack (the shallowest: the most work)
 * to the pool, with its constraints, for an idle worker. */
static void donate(worker *w)
{
    star_ctx *c = w->c;
    node_hdr h = w->hdr[0];
    int pre = h.nc - h.has_g;
    pooled pd = {h, malloc((size_t)c->nd * sizeof(double)),
                 malloc((size_t)(h.nc ? h.nc : 1) * (size_t)c->q * sizeof(double)), h.nc};
    if (!pd.dat || !pd.cons) {
        free(pd.dat), free(pd.cons);
        return;
    }
    memcpy(pd.dat, w->dat, (size_t)c->nd * sizeof(double));
    if (pre)
        memcpy(pd.cons, bab_poly_row(w->P, 0), (size_t)pre * (size_t)c->q * sizeof(double));
    if (h.has_g)
        memcpy(pd.cons + (size_t)pre * (size_t)c->q, pd.dat + OFF_G, (size_t)c->q * sizeof(double));
    pd.h.has_g = 0;
    pthread_mutex_lock(&c->mu);
    if (c->pn == c->pcap) {
        int cap = c->pcap ? 2 * c->pcap : 16;
        pooled *np = realloc(c->pool, (size_t)cap * sizeof *np);
        if (!np) {
            pthread_mutex_unlock(&c->mu);
            free(pd.dat), free(pd.cons);
            return;
        }
        c->pool = np, c->pcap = cap;
    }
    c->pool[c->pn++] = pd;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    w->sp--;
    memmove(w->hdr, w->hdr + 1, (size_t)w->sp * sizeof *w->hdr);
    memmove(w->dat, w->dat + c->nd, (size_t)w->sp * (size_t)c->nd * sizeof(double));
}

static void stop_all(star_ctx *c, int why)
{
    pthread_mutex_lock(&c->mu);
    if (!atomic_load(&c->stop))
        atomic_store(&c->stop, why);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Next node into w->h / w->cur with the LP rows set: 1, or 0 when the search is over. */
static int next_node(worker *w)
{
    star_ctx *c = w->c;
    if (w->sp > 0) {
        w->sp--;
        w->h = w->hdr[w->sp];
        memcpy(w->cur, w->dat + (size_t)w->sp * (size_t)c->nd, (size_t)c->nd * sizeof(double));
        bab_poly_truncate(w->P, w->h.nc - w->h.has_g);
        if (w->h.has_g && bab_poly_add(w->P, w->cur + OFF_G, 1))
            return -1;
        return 1;
    }
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (c->stop) {
            pthread_mutex_unlock(&c->mu);
            return 0;
        }
        if (c->pn > 0)
            break;
        c->idle++;
        if (c->idle == c->n_workers) { /* nothing left anywhere */
            atomic_store(&c->stop, 1);
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
            return 0;
        }
        atomic_fetch_add(&c->hungry, 1);
        pthread_cond_wait(&c->cv, &c->mu);
        atomic_fetch_sub(&c->hungry, 1);
        c->idle--;
    }
    pooled pd = c->pool[--c->pn];
    pthread_mutex_unlock(&c->mu);
    w->h = pd.h;
    memcpy(w->cur, pd.dat, (size_t)c->nd * sizeof(double));
    bab_poly_truncate(w->P, 0);
    int rc = 0;
    for (int k = 0; k < pd.nrows && !rc; k++)
        rc = bab_poly_add(w->P, pd.cons + (size_t)k * (size_t)c->q, 1);
    free(pd.dat), free(pd.cons);
    return rc ? -1 : 1;
}

/* ---- one node ---- */

/* 1 (and the search stops with it) when x is a counterexample that
 * bab_check_counterexample confirms, else 0. */
static int try_point(worker *w, const double *x)
{
    star_ctx *c = w->c;
    err e = {0};
    if (bab_check_counterexample(c->g, c->p, c->r, x, w->y, &e) != 1)
        return 0;
    pthread_mutex_lock(&c->mu);
    if (!c->found) {
        c->found = 1;
        memcpy(c->cex, x, (size_t)c->n0 * sizeof(double));
    }
    atomic_store(&c->stop, 1);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 1;
}

/* Each open clause with its rows' CROWN lower functions on the polytope
 * instead of its bounding box: row k holds at x only if
 * lb_k + sum_t |a_kt| dist_t(x) <= d_k (the bound's linear function, as in
 * shrink.c), i.e. a_k·x <= d_k - lb_k + min over the box of a_k·x; one LP
 * min t over the polytope and these rows minus t refutes the clause when its
 * safe bound is above 0 (rows of a conjunction together, where the box
 * refutes them one at a time). An LP minimiser that does not refute is tried
 * as a counterexample. Returns 1 when every open clause is refuted or a
 * counterexample stopped the search, else 0. */
static int joint_refute(worker *w)
{
    star_ctx *c = w->c;
    int64_t n0 = c->n0;
    const double *bl = w->cur + OFF_BL(c), *bu = w->cur + OFF_BU(c);
    int base = bab_poly_rows(w->P);
    for (int cl = 0; cl < c->n_cls; cl++) {
        if (!(w->h.open >> cl & 1))
            continue;
        bab_poly_truncate(w->P, base);
        int ok = 1;
        for (int k = 0; k < c->K && ok; k++) {
            if (c->cl_of[k] != cl)
                continue;
            const double *a = w->ain + (size_t)k * (size_t)n0;
            double *g = w->zn, mb = 0, mag = 0;
            for (int64_t t = 0; t < n0; t++) {
                double v = fmin(a[t] * bl[t], a[t] * bu[t]);
                mb += v, mag += fabs(v);
                g[t] = a[t];
            }
            /* the box minimum rounded up, then the right-hand side */
            mb = fp_up(mb + bnd_safe(bnd_gamma((double)n0 + 2) * mag));
            g[n0] = fp_up(fp_up(c->d[k] - w->lb[k]) + mb);
            ok = isfinite(g[n0]) && isfinite(w->lb[k]) && bab_poly_add(w->P, g, 0) == 0;
        }
        double lb = -INFINITY, val = 0;
        int rc = ok ? bab_poly_min_slack(w->P, &lb, &val, w->x) : -1;
        if (rc == 0 && lb > 0)
            w->h.open &= ~((uint64_t)1 << cl);
        else if (rc == 0 && val <= 0 && try_point(w, w->x)) {
            /* the relaxation's minimiser on the polytope: often a real
             * counterexample long before a leaf */
            bab_poly_truncate(w->P, base);
            return 1;
        }
    }
    bab_poly_truncate(w->P, base);
    return w->h.open ? 0 : 1;
}

/* CROWN from the current layer on over the box [bl, bu] (which holds the
 * polytope): 1 when it refutes every open clause or shows the node empty;
 * else the current layer's intervals go to il/iu. */
static int crown(worker *w)
{
    star_ctx *c = w->c;
    double *bl = w->cur + OFF_BL(c), *bu = w->cur + OFF_BU(c);
    err e = {0};
    if (bnd_mlp_bound_pre(c->m, 1, bl, bu, c->K, c->C, 0, w->cur + OFF_PRE(c), w->pre_out, w->lb,
                          w->ain, &e))
        return 0;
    if (bnd_mlp_pre_empty(c->m, w->pre_out))
        return 1;
    for (int k = 0; k < c->K; k++)
        if (w->lb[k] > c->d[k])
            w->h.open &= ~((uint64_t)1 << c->cl_of[k]);
    if (!w->h.open)
        return 1;
    if (c->joint && joint_refute(w))
        return 1;
    const bnd_mlp_layer_info *l = &c->L[w->h.li];
    double *il = w->cur + OFF_IL(c), *iu = w->cur + OFF_IU(c);
    for (int64_t j = 0; j < l->n; j++) {
        il[j] = w->pre_out[l->pre_off + j];
        iu[j] = w->pre_out[l->pre_off + l->n + j];
    }
    return 0;
}

/* The node's check at the start of a layer: CROWN over the polytope's
 * bounding box by LP (CROWN over the inherited box first saved a sixth of
 * the LPs and cost as much in CROWN calls).
 * Returns 1 when the node is refuted (or empty), 0 otherwise. */
static int check(worker *w)
{
    star_ctx *c = w->c;
    int64_t n0 = c->n0;
    double *bl = w->cur + OFF_BL(c), *bu = w->cur + OFF_BU(c);
    w->checks++;
    w->h.checked = 1, w->h.fresh = 0;
    /* rows only grow along a path: the same count is the same polytope */
    for (int64_t t = 0; w->h.box_nc != w->h.nc && t < n0; t++) {
        if (bl[t] >= bu[t])
            continue;
        double lb, val;
        memset(w->cobj, 0, (size_t)n0 * sizeof(double));
        w->cobj[t] = 1;
        int rc = bab_poly_min(w->P, w->cobj, &lb, &val);
        if (rc == 1)
            return bab_poly_empty(w->P);
        if (rc == 0 && lb > bl[t])
            bl[t] = lb;
        w->cobj[t] = -1;
        rc = bab_poly_min(w->P, w->cobj, &lb, &val);
        if (rc == 0 && -lb < bu[t])
            bu[t] = -lb;
        if (bl[t] > bu[t]) /* two valid bounds cross: no point */
            return 1;
    }
    w->h.box_nc = w->h.nc;
    return crown(w);
}

/* The output layer: each open clause's rows are affine on the polytope.
 * Returns 1 refuted, 0 not (sat found or incomplete), -1 error. */
static int leaf(worker *w)
{
    star_ctx *c = w->c;
    int64_t n0 = c->n0, q = c->q;
    const double *Z = w->cur + OFF_Z(c), *EZ = w->cur + OFF_EZ(c);
    w->leaves++;
    int base = bab_poly_rows(w->P), refuted_all = 1;
    for (int cl = 0; cl < c->n_cls; cl++) {
        if (!(w->h.open >> cl & 1))
            continue;
        bab_poly_truncate(w->P, base);
        for (int k = 0; k < c->K; k++) {
            if (c->cl_of[k] != cl)
                continue;
            /* row k at y = Z·x + z0 within EZ: (C_k Z)·x - t <= d_k - C_k z0 + err */
            double *g = w->zn;
            for (int64_t t = 0; t < q; t++)
                g[t] = 0;
            double mag = 0, prop = 0;
            for (int64_t o = 0; o < c->n_out; o++) {
                double co = c->C[k * c->n_out + o];
                if (co == 0)
                    continue;
                const double *zr = Z + o * q;
                double m = fabs(zr[n0]);
                for (int64_t t = 0; t < q; t++)
                    g[t] += co * zr[t];
                for (int64_t t = 0; t < n0; t++)
                    m += fabs(zr[t]) * c->xmax[t];
                mag += fabs(co) * m;
                prop += fabs(co) * EZ[o];
            }
            double errk = bnd_safe(bnd_gamma((double)c->n_out + 3) * mag + prop);
            g[n0] = fp_up(fp_up(c->d[k] - g[n0]) + errk);
            if (bab_poly_add(w->P, g, 0))
                return -1;
        }
        double lb = -INFINITY, val = 0;
        int rc = bab_poly_min_slack(w->P, &lb, &val, w->x);
        if (rc == 0 && lb > 0)
            continue;
        refuted_all = 0;
        if (rc == 0 && val <= 0) {
            if (try_point(w, w->x))
                break;
        }
        pthread_mutex_lock(&c->mu);
        c->incomplete = 1;
        pthread_mutex_unlock(&c->mu);
    }
    bab_poly_truncate(w->P, base);
    return refuted_all;
}

/* A check in the middle of a layer, after RECHECK_SPLITS splits there, can
 * prune a node before it splits further. That pays where nodes end at
 * checks (ACAS Xu prop_1, no leaf reached: 4_9 3.1 -> 1.6 s, 4_7 2.1 -> 1.0 s,
 * 2_9 1.5 -> 0.7 s), not where CROWN cannot refute the nodes near a tight
 * surface and half of them run to a leaf (prop_2: 4_2 7.4 -> 9.7 s, though
 * 72% vs 50% of the extra checks pruned). So nodes are checked again while
 * fewer than one in 8 has reached a leaf. */
static int recheck_pays(const worker *w)
{
    return w->leaves * 8 < w->stars;
}

/* Processes w->h / w->cur until it is refuted, reaches a leaf, or the
 * search stops; splits push the inactive side and go on with the active. */
static int process(worker *w)
{
    star_ctx *c = w->c;
    int64_t n0 = c->n0, q = c->q;
    double *Z = w->cur + OFF_Z(c), *EZ = w->cur + OFF_EZ(c);
    double *H = w->cur + OFF_H(c), *EH = w->cur + OFF_EH(c);
    double *il = w->cur + OFF_IL(c), *iu = w->cur + OFF_IU(c);
    double *bl = w->cur + OFF_BL(c), *bu = w->cur + OFF_BU(c), *pre = w->cur + OFF_PRE(c);
    w->stars++;
    for (;;) {
        if (c->stop)
            return 0;
        const bnd_mlp_layer_info *l = &c->L[w->h.li];
        if (l->pre_off < 0) /* the output layer */
            return leaf(w) < 0 ? -1 : 0;
        if (!w->h.checked && check(w))
            return 0;
        int64_t n = l->n;
        for (; w->h.j < n; w->h.j++) {
            int64_t j = w->h.j;
            const double *z = Z + j * q;
            double lo, hi;
            if (w->h.fresh >= RECHECK_SPLITS && recheck_pays(w) && check(w))
                return 0;
            box_interval(c, z, bl, bu, &lo, &hi);
            lo = fp_down(lo - EZ[j]), hi = fp_up(hi + EZ[j]);
            if (il[j] > lo)
                lo = il[j];
            if (iu[j] < hi)
                hi = iu[j];
            int side = lo >= 0 ? 1 : hi <= 0 ? 0 : -1;
            /* witnesses of both signs: a split without LPs; of one sign: only
             * the other side's LP can still show the neuron stable */
            int pos = 0, neg = 0;
            if (side < 0)
                bab_poly_signs(w->P, z, &pos, &neg);
            if (side < 0 && !(pos && neg)) {
                /* the polytope's exact range of Z·x, then z's */
                double lb, val;
                int rc = 0;
                if (!neg)
                    rc = bab_poly_min(w->P, z, &lb, &val);
                if (rc == 1 && bab_poly_empty(w->P))
                    return 0;
                if (!neg && rc == 0) {
                    double v = fp_down(fp_down(lb + z[n0]) - EZ[j]);
                    lo = fmax(lo, v);
                    if (lo >= 0)
                        side = 1;
                }
                if (side < 0 && !pos) {
                    for (int64_t t = 0; t < n0; t++)
                        w->cobj[t] = -z[t];
                    rc = bab_poly_min(w->P, w->cobj, &lb, &val);
                    if (rc == 0) {
                        double v = fp_up(fp_up(z[n0] - lb) + EZ[j]);
                        hi = fmin(hi, v);
                        if (hi <= 0)
                            side = 0;
                    }
                }
            }
            double *hr = H + j * q;
            if (side < 0) {
                /* split: z <= 0 pushed (Z·x <= E - z0), z >= 0 continued (-Z·x <= z0 + E) */
                double e = EZ[j];
                node_hdr ch = w->h;
                ch.j = (int)j + 1, ch.nc = bab_poly_rows(w->P) + 1, ch.has_g = 1;
                ch.fresh++;
                w->h.fresh++;
                double *g = w->cur + OFF_G;
                for (int64_t t = 0; t < n0; t++)
                    g[t] = z[t];
                g[n0] = fp_up(e - z[n0]);
                /* the inactive child: z <= 2E there, so the ReLU output is in
                 * [0, 2E]: the constant E within E */
                for (int64_t t = 0; t < n0; t++)
                    hr[t] = 0;
                hr[n0] = e;
                EH[j] = e;
                pre[l->pre_off + j] = lo;
                pre[l->pre_off + n + j] = fp_up(2 * e);
                int prc = push(w, &ch, w->cur);
                if (prc)
                    return prc;
                if (atomic_load_explicit(&c->hungry, memory_order_relaxed) > 0 && w->sp >= 2)
                    donate(w);
                /* this node: active (-Z·x <= z0 + E) */
                for (int64_t t = 0; t < n0; t++)
                    g[t] = -z[t];
                g[n0] = fp_up(z[n0] + e);
                if (bab_poly_add(w->P, g, 1))
                    return -1;
                w->h.nc = bab_poly_rows(w->P), w->h.has_g = 1;
                /* max(0, z) is within E of Z·x + z0 where Z·x + z0 >= -E */
                memcpy(hr, z, (size_t)q * sizeof(double));
                EH[j] = e;
                pre[l->pre_off + j] = fp_down(-2 * e);
                pre[l->pre_off + n + j] = hi;
                continue;
            }
            if (side == 1) {
                memcpy(hr, z, (size_t)q * sizeof(double));
                EH[j] = EZ[j];
                pre[l->pre_off + j] = fmax(lo, 0);
                pre[l->pre_off + n + j] = hi;
            } else {
                for (int64_t t = 0; t < q; t++)
                    hr[t] = 0;
                EH[j] = 0;
                pre[l->pre_off + j] = lo;
                pre[l->pre_off + n + j] = fmin(hi, 0);
            }
        }
        /* the next linear layer after the ReLU, and any linear ones after it */
        w->h.li = advance(c, w->h.li + 2, H, EH, Z, EZ, w->zn);
        w->h.j = 0, w->h.checked = 0, w->h.fresh = 0;
        for (int64_t t = 0; t < c->wide; t++)
            il[t] = -INFINITY, iu[t] = INFINITY;
    }
}

/* The first worker spends 0.1 s of every 2 s on random-restart PGD over the
 * whole region, as input splitting does: a depth-first enumeration of a
 * large network can spend minutes far from a counterexample (a 6-input
 * 4x64 net: input splitting sat in 0.5 s, the enumeration alone nothing in
 * 60 s). */
static void attack_region(worker *w, double *next)
{
    star_ctx *c = w->c;
    double now = clock_now();
    if (now < *next)
        return;
    *next = now + 2.0;
    double dl = now + 0.1;
    if (c->deadline > 0 && dl > c->deadline)
        dl = c->deadline;
    bab_attack_opts ao = {.deadline = dl, .restarts = 10, .steps = 20, .samples = 2000,
                          .local = 20000, .seed = ++w->attacks};
    err e = {0};
    if (bab_attack(c->g, c->p, c->r, &ao, w->x, NULL, &e) == 1)
        try_point(w, w->x);
}

static void *work(void *arg)
{
    worker *w = arg;
    star_ctx *c = w->c;
    double next_attack = clock_now() + 0.5;
    for (;;) {
        if (expired(c)) {
            stop_all(c, 2);
            break;
        }
        if (w->id == 0)
            attack_region(w, &next_attack);
        int rc = next_node(w);
        if (rc < 0) {
            stop_all(c, 3);
            break;
        }
        if (rc == 0)
            break;
        int prc = process(w);
        if (prc < 0) {
            stop_all(c, prc == -2 ? 4 : 3);
            break;
        }
    }
    return NULL;
}

static void worker_free(worker *w)
{
    bab_poly_free(w->P);
    free(w->hdr), free(w->dat), free(w->cur), free(w->zn), free(w->pre_out);
    free(w->lb), free(w->x), free(w->y), free(w->cobj), free(w->ain);
}

static int worker_init(worker *w, star_ctx *c, int id)
{
    memset(w, 0, sizeof *w);
    w->c = c, w->id = id;
    w->P = bab_poly_new(c->n0, c->lo, c->hi);
    w->cur = malloc((size_t)c->nd * sizeof(double));
    w->zn = malloc((size_t)c->wide * (size_t)c->q * sizeof(double));
    w->pre_out = malloc((size_t)(c->npre ? c->npre : 1) * sizeof(double));
    w->lb = malloc((size_t)c->K * sizeof(double));
    w->x = malloc((size_t)c->n0 * sizeof(double));
    w->y = malloc((size_t)c->n_out * sizeof(double));
    w->cobj = malloc((size_t)c->q * sizeof(double));
    w->ain = malloc((size_t)c->K * (size_t)c->n0 * sizeof(double));
    if (!w->P || !w->cur || !w->zn || !w->pre_out || !w->lb || !w->x || !w->y || !w->cobj ||
        !w->ain)
        return -1;
    return 0;
}

static void ctx_free(star_ctx *c)
{
    free(c->C), free(c->d), free(c->cl_of), free(c->xmax);
    for (int i = 0; i < c->pn; i++)
        free(c->pool[i].dat), free(c->pool[i].cons);
    free(c->pool);
}

/* One region: BAB_UNSAT, BAB_SAT (x), BAB_UNKNOWN or BAB_TIMEOUT in *ans. */
static int star_region(star_ctx *c, int threads, bab_answer *ans, double *x, bab_result *res,
                       err *e)
{
    const spec_region *rg = &c->p->regions[c->r];
    int64_t n0 = c->n0, q = c->q;
    c->lo = rg->lo, c->hi = rg->hi;
    c->n_cls = rg->n_clauses;
    c->K = 0; /* star_net checked 1..MAX_CLAUSES clauses, each with rows */
    for (int k = 0; k < rg->n_clauses; k++)
        c->K += rg->clauses[k].n_rows;
    c->C = malloc((size_t)c->K * (size_t)c->n_out * sizeof(double));
    c->d = malloc((size_t)c->K * sizeof(double));
    c->cl_of = malloc((size_t)c->K * sizeof(int));
    c->xmax = malloc((size_t)n0 * sizeof(double));
    if (!c->C || !c->d || !c->cl_of || !c->xmax)
        return err_set(e, ERR_NOMEM, "star: out of memory");
    for (int k = 0, row = 0; k < rg->n_clauses; k++)
        for (int i = 0; i < rg->clauses[k].n_rows; i++, row++) {
            memcpy(c->C + (size_t)row * (size_t)c->n_out, rg->clauses[k].C + (size_t)i * (size_t)c->n_out,
                   (size_t)c->n_out * sizeof(double));
            c->d[row] = rg->clauses[k].d[i];
            c->cl_of[row] = k;
        }
    for (int64_t t = 0; t < n0; t++)
        c->xmax[t] = fmax(fabs(c->lo[t]), fabs(c->hi[t]));

    worker ws[BAB_MAX_THREADS];
    int nw = threads < 1 ? 1 : threads > BAB_MAX_THREADS ? BAB_MAX_THREADS : threads;
    int rc = 0, started = 0;
    for (int i = 0; i < nw; i++)
        if (worker_init(&ws[i], c, i)) {
            for (int k = 0; k <= i; k++)
                worker_free(&ws[k]);
            return err_set(e, ERR_NOMEM, "star: out of memory");
        }
    /* the root: the first linear layers composed from the identity */
    double *cur = ws[0].cur;
    double *Z = cur + OFF_Z(c), *EZ = cur + OFF_EZ(c), *H = cur + OFF_H(c), *EH = cur + OFF_EH(c);
    for (int64_t i = 0; i < c->nd; i++)
        cur[i] = NAN;
    for (int64_t i = 0; i < n0; i++) {
        for (int64_t t = 0; t < q; t++)
            H[i * q + t] = t == i ? 1 : 0;
        EH[i] = 0;
    }
    int li = advance(c, 0, H, EH, Z, EZ, ws[0].zn);
    for (int64_t t = 0; t < c->wide; t++)
        cur[OFF_IL(c) + t] = -INFINITY, cur[OFF_IU(c) + t] = INFINITY;
    memcpy(cur + OFF_BL(c), c->lo, (size_t)n0 * sizeof(double));
    memcpy(cur + OFF_BU(c), c->hi, (size_t)n0 * sizeof(double));
    node_hdr root = {.li = li, .j = 0, .nc = 0, .has_g = 0, .checked = 0, .box_nc = -1,
                     .open = c->n_cls == 64 ? ~(uint64_t)0 : (((uint64_t)1 << c->n_cls) - 1)};
    c->n_workers = nw; /* push's memory budget counts the workers */
    if (push(&ws[0], &root, cur))
        rc = err_set(e, ERR_NOMEM, "star: out of memory");

    atomic_store(&c->stop, 0);
    atomic_store(&c->hungry, 0);
    c->incomplete = 0, c->found = 0, c->idle = 0, c->pn = 0;
    c->cex = x;
    pthread_t th[BAB_MAX_THREADS];
    if (!rc && pthread_mutex_init(&c->mu, NULL) == 0) {
        if (pthread_cond_init(&c->cv, NULL) == 0) {
            for (started = 0; started < nw; started++)
                if (pthread_create(&th[started], NULL, work, &ws[started]))
                    break;
            if (started < nw) /* the ones that started carry the search */
                c->n_workers = started ? started : 1;
            if (started == 0)
                work(&ws[0]);
            for (int i = 0; i < started; i++)
                pthread_join(th[i], NULL);
            pthread_cond_destroy(&c->cv);
        } else {
            rc = err_set(e, ERR_NOMEM, "star: cannot create a condition variable");
        }
        pthread_mutex_destroy(&c->mu);
    } else if (!rc) {
        rc = err_set(e, ERR_NOMEM, "star: cannot create a mutex");
    }
    if (c->verbose) {
        int64_t a = 0, b = 0, cc = 0, d = 0;
        for (int i = 0; i < nw; i++)
            a += ws[i].stars, b += ws[i].leaves, cc += bab_poly_lps(ws[i].P), d += ws[i].checks;
        fprintf(stderr, "star: region %d: %lld nodes, %lld leaves, %lld LPs, %lld checks\n", c->r,
                (long long)a, (long long)b, (long long)cc, (long long)d);
    }
    for (int i = 0; i < nw; i++) {
        res->n_domains += ws[i].stars;
        res->n_bound_calls += ws[i].checks;
        worker_free(&ws[i]);
    }
    if (rc)
        return rc;
    if (c->found)
        *ans = BAB_SAT;
    else if (atomic_load(&c->stop) == 2)
        *ans = BAB_TIMEOUT;
    else if (atomic_load(&c->stop) == 4)
        *ans = BAB_UNKNOWN; /* the search outgrew its memory budget */
    else if (atomic_load(&c->stop) == 3)
        return err_set(e, ERR_NOMEM, "star: out of memory or a non-finite constraint");
    else
        *ans = c->incomplete ? BAB_UNKNOWN : BAB_UNSAT;
    return 0;
}

/* The chain form of g, or ERR_UNSUP when star.c cannot take it. */
static int star_net(const nn_graph *g, const spec_property *p, bnd_net **net, bnd_mlp **m,
                    err *e)
{
    *net = NULL, *m = NULL;
    if (p->n_x > BAB_STAR_MAX_INPUTS)
        return err_set(e, ERR_UNSUP, "star: %lld inputs (at most %d)", (long long)p->n_x,
                       BAB_STAR_MAX_INPUTS);
    int rc = bnd_net_new(g, net, e);
    if (!rc)
        rc = bnd_mlp_new(*net, m, e);
    if (!rc && !bnd_mlp_all_relu(*m))
        rc = err_set(e, ERR_UNSUP, "star: not a ReLU network");
    /* linear layers, each ReLU between two of them */
    int nl = rc ? 0 : bnd_mlp_n_layers(*m);
    bnd_mlp_layer_info prev = {0}, cur;
    for (int i = 0; !rc && i < nl; i++, prev = cur) {
        bnd_mlp_layer(*m, i, &cur);
        if (cur.kind != 0 && (i == 0 || prev.kind != 0 || i == nl - 1))
            rc = err_set(e, ERR_UNSUP, "star: a ReLU not between two linear layers");
        else if (cur.kind == 0 && cur.n > BAB_STAR_MAX_WIDTH)
            rc = err_set(e, ERR_UNSUP, "star: a layer of %lld neurons (at most %d)",
                         (long long)cur.n, BAB_STAR_MAX_WIDTH);
    }
    if (!rc && nl == 0)
        rc = err_set(e, ERR_UNSUP, "star: no layers");
    for (int r = 0; !rc && r < p->n_regions; r++) {
        const spec_region *rg = &p->regions[r];
        if (rg->n_clauses < 1 || rg->n_clauses > MAX_CLAUSES)
            rc = err_set(e, ERR_UNSUP, "star: %d clauses (1 to %d)", rg->n_clauses, MAX_CLAUSES);
        for (int k = 0; !rc && k < rg->n_clauses; k++)
            if (rg->clauses[k].n_rows < 1)
                rc = err_set(e, ERR_UNSUP, "star: a clause without rows");
    }
    return rc;
}

int bab_star_fits(const nn_graph *g, const spec_property *p)
{
    bnd_net *net;
    bnd_mlp *m;
    err e = {0};
    int rc = star_net(g, p, &net, &m, &e);
    bnd_mlp_free(m);
    bnd_net_free(net);
    return rc == 0;
}

int bab_star(const nn_graph *g, const spec_property *p, const bab_opts *o, double deadline,
             bab_result *res, err *e)
{
    bnd_net *net = NULL;
    bnd_mlp *m = NULL;
    int rc = star_net(g, p, &net, &m, e);
    star_ctx c;
    memset(&c, 0, sizeof c);
    if (!rc) {
        c.g = g, c.p = p, c.m = m, c.deadline = deadline;
        c.memory = o->memory ? o->memory : bab_default_memory();
        c.verbose = o->verbose;
        c.joint = !getenv("NNV_STAR_NOJOINT");
        c.nl = bnd_mlp_n_layers(m);
        c.L = calloc((size_t)c.nl, sizeof *c.L);
        if (!c.L)
            rc = err_set(e, ERR_NOMEM, "star: out of memory");
    }
    if (!rc) {
        c.n0 = p->n_x, c.q = c.n0 + 1, c.n_out = p->n_y;
        /* H holds the identity map of the inputs at the root: a network
         * narrower than its input (stress seed 3078761: 3 inputs, one Gemm
         * to 2 outputs) overran H and lost an input's column */
        c.wide = c.n0;
        for (int i = 0; i < c.nl; i++) {
            bnd_mlp_layer(m, i, &c.L[i]);
            if (c.L[i].kind == 0 && c.L[i].n > c.wide)
                c.wide = c.L[i].n;
        }
        c.npre = bnd_mlp_n_pre(m);
        c.nd = NODE_SIZE(&c);
    }
    int threads = o->threads > 0 ? o->threads : 2;
    int blas_threads = openblas_get_num_threads(), blas_set = !rc;
    if (blas_set)
        openblas_set_num_threads(1);
    bab_answer all = BAB_UNSAT;
    for (int r = 0; !rc && r < p->n_regions; r++) {
        c.r = r;
        bab_answer a = BAB_UNKNOWN;
        rc = star_region(&c, threads, &a, res->x, res, e);
        ctx_free(&c);
        c.C = c.d = c.xmax = NULL, c.cl_of = NULL, c.pool = NULL, c.pn = c.pcap = 0;
        if (rc)
            break;
        if (a == BAB_SAT) {
            all = BAB_SAT;
            res->region = r;
            err e2 = {0};
            bab_check_counterexample(g, p, r, res->x, res->y, &e2);
            break;
        }
        if (a == BAB_TIMEOUT) {
            all = BAB_TIMEOUT;
            break;
        }
        if (a == BAB_UNKNOWN)
            all = BAB_UNKNOWN;
    }
    if (blas_set)
        openblas_set_num_threads(blas_threads);
    if (!rc)
        res->answer = all;
    free(c.L);
    bnd_mlp_free(m);
    bnd_net_free(net);
    return rc;
}
