/* batch.c: bounds for many input boxes at once on chain networks (a sequence
 * of dense linear layers and ReLUs, e.g. Gemm/ReLU MLPs such as ACAS Xu), the
 * workhorse of input-split branch and bound.
 *
 * Key idea: with few inputs (n0), intermediate bounds are cheapest by the
 * forward linear relaxation (symbolic intervals): every layer output h gets
 * a lower and an upper linear function of the input, HL(x) <= h(x) <= HU(x)
 * on the box, stored as n0 coefficients and a constant. A linear layer maps
 *     ZL = W⁺HL + W⁻HU + b,   ZU = W⁺HU + W⁻HL + b,
 * a ReLU the functions through its CROWN lines (lw, uw >= 0):
 *     HL' = lw·ZL + lb,       HU' = uw·ZU + ub,
 * and each layer's interval is the functions' extremes over the box. With
 * all boxes of a batch side by side as columns, each linear layer is four
 * dgemms for the whole batch. The objective rows C·y are then bounded by the
 * CROWN backward pass over those intermediate bounds (A·W one dgemm for all
 * boxes), which also gives the input coefficients used for branching.
 *
 * Soundness with rounding (docs/soundness.md, the same scheme as crown.c): a
 * computed combination of functions differs from the exact one coefficient-
 * wise by at most gamma_n·sum|w||coef|, so at any x in the box its value
 * differs by at most gamma_n·sum_i |w_i|·m_i with m_i = sum_t |a_it||x_t|max
 * + |c_i| (the function's magnitude); that amount (inflated by bnd_safe) is
 * moved outward into the constant, rounded outward. Concretisation adds
 * gamma_{n0+3}·(|a|·(|c|+r) + |const|) outward. The backward pass carries the
 * error budget of crown.c (|A|·w per linear layer, |A|·v per ReLU, u|cb| per
 * bias update). Stored coefficients may carry relative roundings (coef_err)
 * and bias errors (bias_err) from lowering; both are included. */
#include "internal.h"
#include "batch_internal.h"
#include "nonlin.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MLP_MAX_DENSE ((int64_t)1 << 22)

void bnd_mlp_free(bnd_mlp *m)
{
    if (!m)
        return;
    for (int i = 0; m->L && !m->borrowed && i < m->n_layers; i++) {
        mlp_layer *l = &m->L[i];
        free(l->W), free(l->Wp), free(l->Wn), free(l->Wabs), free(l->Wf), free(l->bias);
        free(l->bias_err);
    }
    if (!m->borrowed)
        free(m->L);
    free(m->pre_off);
    free(m);
}

/* The pre-activation offsets (pre_off, n_pre) of a chain's layers */
static void mlp_index_pre(bnd_mlp *m)
{
    m->n_pre = 0;
    for (int i = 0; i + 1 < m->n_layers; i++)
        if (!m->L[i].act && m->L[i + 1].act) {
            m->pre_off[i] = 2 * m->n_pre;
            m->n_pre += m->L[i].n;
        }
}

int bnd_mlp_prefix(const bnd_mlp *m, int act_layer, bnd_mlp **out, err *e)
{
    *out = NULL;
    int cut = -1;
    for (int i = 0, a = 0; i < m->n_layers; i++)
        if (m->L[i].act && a++ == act_layer) {
            cut = i;
            break;
        }
    if (cut < 1 || m->L[cut - 1].act)
        return err_set(e, ERR_ARG, "batch bounds: no linear layer before activation layer %d",
                       act_layer);
    bnd_mlp *p = calloc(1, sizeof *p);
    if (!p || !(p->pre_off = calloc((size_t)cut, sizeof(int64_t)))) {
        free(p);
        return err_set(e, ERR_NOMEM, "batch bounds: out of memory");
    }
    p->borrowed = 1;
    p->L = m->L;
    p->n_layers = cut;
    p->n_in = m->n_in;
    p->n_out = m->L[cut - 1].n;
    p->widest = p->n_in;
    for (int i = 0; i < cut; i++)
        if (m->L[i].n > p->widest)
            p->widest = m->L[i].n;
    mlp_index_pre(p);
    *out = p;
    return 0;
}

int64_t bnd_mlp_n_pre(const bnd_mlp *m)
{
    return 2 * m->n_pre;
}

int bnd_mlp_all_relu(const bnd_mlp *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->L[i].act && m->L[i].act != &bnd_relu_rule)
            return 0;
    return 1;
}

int64_t bnd_mlp_n_fn(const bnd_mlp *m)
{
    return 2 * m->n_in + 2 * m->n_pre * (m->n_in + 1);
}

int64_t bnd_mlp_n_in(const bnd_mlp *m)
{
    return m->n_in;
}

int64_t bnd_mlp_n_out(const bnd_mlp *m)
{
    return m->n_out;
}

int bnd_mlp_n_layers(const bnd_mlp *m)
{
    return m->n_layers;
}

void bnd_mlp_layer(const bnd_mlp *m, int i, bnd_mlp_layer_info *info)
{
    const mlp_layer *l = &m->L[i];
    memset(info, 0, sizeof *info);
    info->kind = !l->act ? 0 : l->act == &bnd_relu_rule ? 1 : 2;
    info->n = l->n, info->n_in = l->n_in;
    info->pre_off = -1;
    if (!l->act) {
        info->W = l->W, info->bias = l->bias, info->bias_err = l->bias_err;
        info->g = l->g_fwd;
        if (i + 1 < m->n_layers && m->L[i + 1].act)
            info->pre_off = m->pre_off[i];
    }
}

int64_t bnd_mlp_unstable(const bnd_mlp *m, const double *pre, int64_t max, int64_t *pos,
                         int64_t *width, int64_t *neuron)
{
    int64_t cnt = 0;
    for (int i = 0; i + 1 < m->n_layers; i++) {
        if (m->L[i].act || !m->L[i + 1].act)
            continue;
        int64_t n = m->L[i].n, off = m->pre_off[i];
        for (int64_t j = 0; j < n; j++) {
            if (!m->L[i + 1].act->unstable(pre[off + j], pre[off + n + j]))
                continue;
            if (cnt < max) {
                pos[cnt] = off + j;
                width[cnt] = n;
                neuron[cnt] = off / 2 + j;
            }
            cnt++;
        }
    }
    return cnt;
}

int bnd_mlp_pre_empty(const bnd_mlp *m, const double *pre)
{
    for (int i = 0; i + 1 < m->n_layers; i++) {
        if (m->L[i].act || !m->L[i + 1].act)
            continue;
        int64_t n = m->L[i].n, off = m->pre_off[i];
        for (int64_t j = 0; j < n; j++)
            if (pre[off + j] > pre[off + n + j])
                return 1;
    }
    return 0;
}

const double *bnd_mlp_fn_line(const bnd_mlp *m, const double *fn, int64_t neuron, int side)
{
    int64_t n0 = m->n_in;
    return fn + 2 * n0 + (2 * neuron + side) * (n0 + 1);
}

static int mlp_linear(const bnd_net *net, const bnd_layer *S, mlp_layer *l, err *e)
{
    int64_t n = S->size, ni = net->layers[S->in[0]].size;
    if (n * ni > MLP_MAX_DENSE)
        return err_set(e, ERR_UNSUP, "%s: batch bounds: layer of %lld x %lld too large",
                       net->source, (long long)n, (long long)ni);
    l->n = n, l->n_in = ni;
    size_t sz = (size_t)(n * ni);
    if (ni * ni > MLP_MAX_DENSE)
        return err_set(e, ERR_UNSUP, "%s: batch bounds: layer input %lld too wide", net->source,
                       (long long)ni);
    double *eye = calloc((size_t)(ni * ni), sizeof(double)), *Jt = malloc(sz * sizeof(double));
    l->W = malloc(sz * sizeof(double)), l->Wp = malloc(sz * sizeof(double));
    l->Wn = malloc(sz * sizeof(double)), l->Wabs = malloc(sz * sizeof(double));
    l->Wf = malloc(sz * sizeof(float));
    l->bias = calloc((size_t)n, sizeof(double));
    if (S->bias_err)
        l->bias_err = malloc((size_t)n * sizeof(double));
    int rc = 0;
    if (!eye || !Jt || !l->W || !l->Wp || !l->Wn || !l->Wabs || !l->Wf || !l->bias ||
        (S->bias_err && !l->bias_err)) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        goto out;
    }
    if (S->lin[0]) {
        if (S->lin[0]->n_in != ni || S->lin[0]->n_out != n) {
            rc = err_set(e, ERR_UNSUP, "%s: batch bounds: linear map shape", net->source);
            goto out;
        }
        for (int64_t j = 0; j < ni; j++)
            eye[j * ni + j] = 1.0;
        bnd_lin_forward(S->lin[0], 0, ni, eye, Jt); /* Jt = J^T (ni x n) */
    } else {
        if (ni != n) {
            rc = err_set(e, ERR_UNSUP, "%s: batch bounds: identity shape", net->source);
            goto out;
        }
        memset(Jt, 0, sz * sizeof(double));
        for (int64_t j = 0; j < n; j++)
            Jt[j * n + j] = 1.0;
    }
    for (int64_t o = 0; o < n; o++)
        for (int64_t j = 0; j < ni; j++) {
            double w = Jt[j * n + o];
            l->W[o * ni + j] = w;
            l->Wp[o * ni + j] = w > 0 ? w : 0;
            l->Wn[o * ni + j] = w < 0 ? w : 0;
            l->Wabs[o * ni + j] = fabs(w);
            l->Wf[o * ni + j] = (float)w;
        }
    for (size_t t = 0; t < sz; t++)
        if (!(fabs(l->W[t]) < 1e30)) { /* not a float: steering stays in double */
            free(l->Wf);
            l->Wf = NULL;
            break;
        }
    if (S->bias)
        memcpy(l->bias, S->bias, (size_t)n * sizeof(double));
    if (S->bias_err)
        memcpy(l->bias_err, S->bias_err, (size_t)n * sizeof(double));
    /* forward: two n_in-term sums added, the bias, coefficient roundings;
     * backward: crown.c's count (n-term sums A·J and A·b) */
    l->g_fwd = bnd_gamma((double)(2 * ni + S->coef_err + 6));
    l->g_bwd = bnd_gamma((double)(n + S->coef_err + 4));
out:
    free(eye), free(Jt);
    return rc;
}

int bnd_mlp_new(const bnd_net *net, bnd_mlp **out, err *e)
{
    *out = NULL;
    if (net->out != net->n_layers - 1)
        return err_set(e, ERR_UNSUP, "%s: batch bounds: output is not the last layer",
                       net->source);
    for (int i = 1; i < net->n_layers; i++) {
        const bnd_layer *S = &net->layers[i];
        if (S->n_in != 1 || S->in[0] != i - 1 ||
            (S->kind == BND_L_ACT && !S->act) || S->kind == BND_L_INPUT)
            return err_set(e, ERR_UNSUP, "%s: batch bounds: layer %d is not a chain step",
                           net->source, i);
    }
    bnd_mlp *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    m->n_layers = net->n_layers - 1;
    m->L = calloc((size_t)(m->n_layers ? m->n_layers : 1), sizeof(mlp_layer));
    if (!m->L) {
        free(m);
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    }
    m->pre_off = calloc((size_t)(m->n_layers ? m->n_layers : 1), sizeof(int64_t));
    if (!m->pre_off) {
        bnd_mlp_free(m);
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    }
    m->n_in = net->layers[0].size;
    m->n_out = net->layers[net->n_layers - 1].size;
    m->widest = m->n_in;
    for (int i = 1; i < net->n_layers; i++) {
        const bnd_layer *S = &net->layers[i];
        mlp_layer *l = &m->L[i - 1];
        if (S->size > m->widest)
            m->widest = S->size;
        if (S->kind == BND_L_ACT) {
            l->act = S->act;
            l->param = S->act_param;
            l->n = l->n_in = S->size;
            continue;
        }
        int rc = mlp_linear(net, S, l, e);
        if (rc) {
            bnd_mlp_free(m);
            return rc;
        }
    }
    mlp_index_pre(m);
    *out = m;
    return 0;
}

/* ---- forward evaluation (plain double, for candidate points) ---- */

int bnd_mlp_eval(const bnd_mlp *m, int64_t B, const double *x, double *y, err *e)
{
    size_t cap = (size_t)(B * m->widest);
    double *a = malloc(cap * sizeof(double)), *b = malloc(cap * sizeof(double));
    if (!a || !b) {
        free(a), free(b);
        return err_set(e, ERR_NOMEM, "batch eval: out of memory");
    }
    memcpy(a, x, (size_t)(B * m->n_in) * sizeof(double));
    for (int i = 0; i < m->n_layers; i++) {
        const mlp_layer *l = &m->L[i];
        if (l->act == &bnd_relu_rule) {
            for (int64_t t = 0; t < B * l->n; t++)
                a[t] = a[t] > 0 ? a[t] : 0;
            continue;
        }
        if (l->act) { /* libm's value: candidates only, checked later */
            for (int64_t t = 0; t < B * l->n; t++)
                a[t] = bnd_nl_value((bnd_nl_kind)l->act->kind, l->param, a[t]);
            continue;
        }
        for (int64_t r = 0; r < B; r++)
            memcpy(b + r * l->n, l->bias, (size_t)l->n * sizeof(double));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)l->n, (int)l->n_in,
                    1.0, a, (int)l->n_in, l->W, (int)l->n_in, 1.0, b, (int)l->n);
        double *t = a;
        a = b, b = t;
    }
    memcpy(y, a, (size_t)(B * m->n_out) * sizeof(double));
    free(a), free(b);
    return 0;
}

/* ---- batched bounds ---- */

/* Y (R x cols) = X (R x inner) times W (trans: W^T) in single precision,
 * through fbuf (R·(inner + cols) floats): for steering passes only. */
static void sgemm_rows(const mlp_layer *l, int trans, int64_t R, const double *X, double *Y,
                       float *fbuf)
{
    int64_t inner = trans ? l->n_in : l->n, cols = trans ? l->n : l->n_in;
    float *xf = fbuf, *yf = fbuf + R * inner;
    for (int64_t t = 0; t < R * inner; t++)
        xf[t] = (float)X[t];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans ? CblasTrans : CblasNoTrans, (int)R, (int)cols,
                (int)inner, 1.0f, xf, (int)inner, l->Wf, (int)l->n_in, 0.0f, yf, (int)cols);
    for (int64_t t = 0; t < R * cols; t++)
        Y[t] = yf[t];
}

void bnd_batch_affine_rows(const mlp_layer *l, int64_t R, const double *G, double *G2,
                           float *fbuf)
{
    int64_t n = l->n, ni = l->n_in;
    if (fbuf && l->Wf)
        sgemm_rows(l, 1, R, G, G2, fbuf);
    else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)n, (int)ni, 1.0, G,
                    (int)ni, l->W, (int)ni, 0.0, G2, (int)n);
    for (int64_t r = 0; r < R; r++)
        for (int64_t o = 0; o < n; o++)
            G2[r * n + o] += l->bias[o];
}

/* Meet layer i's output (a pre-activation) with the given intervals (sound
 * for the box, e.g. from its parent box), or store its intervals. */
static void pre_exchange(batch *bt, int i, int store)
{
    int64_t n = bt->m->L[i].n, np = bt->pre_ld, off = bt->m->pre_off[i];
    double *lo = bt->lo[i + 1], *hi = bt->hi[i + 1];
    for (int64_t b = 0; b < bt->B; b++) {
        double *l = lo + b * n, *h = hi + b * n;
        if (store) {
            double *p = bt->pre_out + b * np + off;
            memcpy(p, l, (size_t)n * sizeof(double));
            memcpy(p + n, h, (size_t)n * sizeof(double));
            continue;
        }
        const double *p = bt->pre_in + b * np + off;
        for (int64_t j = 0; j < n; j++) {
            l[j] = p[j] > l[j] ? p[j] : l[j];
            h[j] = p[n + j] < h[j] ? p[n + j] : h[j];
        }
    }
}

static void refine_preact(batch *bt, int i);

/* A pre-activation neuron that gets a refinement row and keeps its lines:
 * unstable, or (pattern passes) held at one side of 0 by its interval. */
static int wants_line(const batch *bt, const bnd_act_rule *act, double l, double u)
{
    return act->unstable(l, u) || (bt->lines_at_zero && (l == 0 || u == 0) && l <= u);
}

/* ---- inherited linear bounds of the pre-activations ----
 * Per box (bnd_mlp_n_fn doubles): the box [rlo, rhi] they refer to (2·n0),
 * then per pre-activation neuron two records of n0 + 1 doubles, (v, a), for
 * s = +z and s = -z: s(x) >= v + sum_t |a_t| dist_t(x) on [rlo, rhi], with
 * dist_t(x) = x_t - rlo_t (a_t > 0) or rhi_t - x_t (a_t < 0), exactly as a
 * CROWN row's bound lb with its input coefficients (bab/shrink.c's comment).
 * On a box [lo, hi] inside [rlo, rhi] the same line gives
 * s >= v + sum_t |a_t| md_t, md_t the least dist_t over the box, and the
 * record re-expressed for [lo, hi] is (that value, a). v = -inf: none. */
static double fn_at(int64_t n0, const double *rec, const double *rlo, const double *rhi,
                    const double *lo, const double *hi)
{
    double v = rec[0];
    if (!(v > -INFINITY))
        return -INFINITY;
    double r = v + bnd_line_rise(n0, rec + 1, rlo, rhi, lo, hi);
    r -= fabs(r) * 0x1p-51 + 0x1p-1070; /* the addition's rounding */
    return isnan(r) ? -INFINITY : r;
}

/* Box b's record of pre-activation neuron j of mlp layer i, side s (0: z,
 * 1: -z), in the lines array at base (fn_in or fn_out). */
static double *fn_rec(const batch *bt, const double *base, int64_t b, int i, int64_t j, int s)
{
    int64_t n0 = bt->m->n_in, rec = n0 + 1;
    int64_t off = 2 * n0 + bt->m->pre_off[i] / 2 * 2 * rec; /* pre_off counts 2 per neuron */
    return (double *)base + b * bt->fn_ld + off + (2 * j + s) * rec;
}

/* Layer i's pre-activations of every box: meet the intervals with the
 * inherited records (load), or write this box's records (store): the
 * better of the inherited line and the refinement's row, per side. */
static void fn_exchange(batch *bt, int i, int store, const unsigned char *refined)
{
    const bnd_mlp *m = bt->m;
    int64_t n = m->L[i].n, n0 = m->n_in;
    double *lo = bt->lo[i + 1], *hi = bt->hi[i + 1];
    for (int64_t b = 0; b < bt->B; b++) {
        const double *blo = bt->lo[0] + b * n0, *bhi = bt->hi[0] + b * n0;
        const double *in = bt->fn_in ? bt->fn_in + b * bt->fn_ld : NULL;
        int have = in && in[0] <= in[n0]; /* NaN ref box: none (the root) */
        for (int64_t j = 0; j < n; j++)
            for (int s = 0; s < 2; s++) {
                if (!wants_line(bt, m->L[i + 1].act, lo[b * n + j], hi[b * n + j])) {
                    /* stable: its line is not needed here, nor in the
                     * children (the inherited interval keeps it stable) */
                    if (store)
                        fn_rec(bt, bt->fn_out, b, i, j, s)[0] = -INFINITY;
                    continue;
                }
                const double *r = have ? fn_rec(bt, bt->fn_in, b, i, j, s) : NULL;
                double v = r ? fn_at(n0, r, in, in + n0, blo, bhi) : -INFINITY;
                if (!store) {
                    if (s == 0 && v > lo[b * n + j])
                        lo[b * n + j] = v;
                    if (s == 1 && -v < hi[b * n + j])
                        hi[b * n + j] = -v;
                    continue;
                }
                double *o = fn_rec(bt, bt->fn_out, b, i, j, s);
                /* the refinement's row for (b, j, s), if any, is in o already */
                if (refined && refined[(b * n + j) * 2 + s] && o[0] >= v)
                    continue;
                o[0] = v;
                if (r)
                    memcpy(o + 1, r + 1, (size_t)n0 * sizeof(double));
                else
                    memset(o + 1, 0, (size_t)n0 * sizeof(double));
            }
    }
}

/* Extremes of the functions F (n x B·q, lower ones when upper = 0) over each
 * box: out (B x n), rounded outward; mag (B x n) gets their magnitudes. */
static void concretize_fn(const batch *bt, int64_t n, const double *F, int upper, double *out,
                          double *mag)
{
    int64_t n0 = bt->m->n_in, q = bt->q;
    double g = bnd_gamma((double)(n0 + 3));
    for (int64_t i = 0; i < n; i++)
        for (int64_t b = 0; b < bt->B; b++) {
            const double *a = F + i * bt->B * q + b * q;
            const double *c = bt->ctr + b * n0, *r = bt->rad + b * n0;
            double ac = 0, ar = 0, am = 0;
            for (int64_t t = 0; t < n0; t++) {
                double aa = fabs(a[t]);
                ac += a[t] * c[t];
                ar += aa * r[t];
                am += aa * (fabs(c[t]) + r[t]);
            }
            double v = upper ? ac + ar + a[n0] : ac - ar + a[n0];
            double er = bnd_safe(g * (am + fabs(a[n0]) + fabs(v)));
            out[b * n + i] = upper ? bnd_up(v + er) : bnd_down(v - er);
            mag[b * n + i] = am + fabs(a[n0]);
        }
}

/* Meet layer i+1's interval (linear layer i) with interval arithmetic on
 * layer i's: centre c, radius r, out = W c + b ± (|W| r + E) with the
 * rounding E = g·(|W|(|c| + r) + |b|) + bias_err. */
void bnd_batch_ibp_meet(batch *bt, int i, double *M, double *Ew)
{
    const mlp_layer *l = &bt->m->L[i];
    int64_t B = bt->B, n = l->n, ni = l->n_in;
    double *c = malloc((size_t)(3 * B * ni + 3 * B * n) * sizeof(double));
    if (!c)
        return; /* optional tightening: skipping it stays sound */
    double *r = c + B * ni, *a = r + B * ni, *zc = a + B * ni, *zr = zc + B * n, *za = zr + B * n;
    bnd_center_radius(B * ni, bt->lo[i], bt->hi[i], c, r);
    for (int64_t t = 0; t < B * ni; t++)
        a[t] = fabs(c[t]) + r[t];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)n, (int)ni, 1.0, c, (int)ni,
                l->W, (int)ni, 0.0, zc, (int)n);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)n, (int)ni, 1.0, r, (int)ni,
                l->Wabs, (int)ni, 0.0, zr, (int)n);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)n, (int)ni, 1.0, a, (int)ni,
                l->Wabs, (int)ni, 0.0, za, (int)n);
    double *lo = bt->lo[i + 1], *hi = bt->hi[i + 1];
    for (int64_t b = 0; b < B; b++)
        for (int64_t o = 0; o < n; o++) {
            int64_t t = b * n + o;
            double E = l->g_fwd * (za[t] + fabs(l->bias[o]) + zr[t]);
            if (l->bias_err)
                E += l->bias_err[o];
            E = bnd_safe(E);
            double v = zc[t] + l->bias[o];
            double L = bnd_down(v - zr[t] - E), U = bnd_up(v + zr[t] + E);
            if (L > lo[t])
                lo[t] = L;
            if (U < hi[t])
                hi[t] = U;
        }
    free(c);
    (void)M, (void)Ew;
}

static int batch_forward(batch *bt, double *M, double *Ew, err *e)
{
    double *FL = bt->FL[0], *FU = bt->FU[0], *magL = bt->mL[0], *magU = bt->mU[0];
    const bnd_mlp *m = bt->m;
    int64_t B = bt->B, q = bt->q, n0 = m->n_in, P = B * q;
    (void)e;
    /* the input layer: x itself */
    memset(FL, 0, (size_t)(n0 * P) * sizeof(double));
    for (int64_t j = 0; j < n0; j++)
        for (int64_t b = 0; b < B; b++)
            FL[j * P + b * q + j] = 1.0;
    memcpy(FU, FL, (size_t)(n0 * P) * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < n0; j++)
            magL[b * n0 + j] = magU[b * n0 + j] = fabs(bt->ctr[b * n0 + j]) + bt->rad[b * n0 + j];
    for (int i = 0; i < m->n_layers; i++) {
        const mlp_layer *l = &m->L[i];
        int64_t n = l->n, ni = l->n_in;
        double *GL = bt->FL[i + 1], *GU = bt->FU[i + 1];
        FL = bt->FL[i], FU = bt->FU[i], magL = bt->mL[i], magU = bt->mU[i];
        if (!l->act) {
            /* Z = W⁺F + W⁻F' + b, one dgemm per term for all boxes */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)P, (int)ni, 1.0,
                        l->Wp, (int)ni, FL, (int)P, 0.0, GL, (int)P);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)P, (int)ni, 1.0,
                        l->Wn, (int)ni, FU, (int)P, 1.0, GL, (int)P);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)P, (int)ni, 1.0,
                        l->Wp, (int)ni, FU, (int)P, 0.0, GU, (int)P);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)P, (int)ni, 1.0,
                        l->Wn, (int)ni, FL, (int)P, 1.0, GU, (int)P);
            /* E (B x n) = g·((magL + magU)·|W|^T + |b|) + bias_err: each
             * coefficient's sum has terms |W⁺||FL| and |W⁻||FU| */
            for (int64_t t = 0; t < B * ni; t++)
                M[t] = magL[t] + magU[t];
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)n, (int)ni, 1.0, M,
                        (int)ni, l->Wabs, (int)ni, 0.0, Ew, (int)n);
            for (int64_t o = 0; o < n; o++)
                for (int64_t b = 0; b < B; b++) {
                    double E = l->g_fwd * (Ew[b * n + o] + fabs(l->bias[o]));
                    if (l->bias_err)
                        E += l->bias_err[o];
                    E = bnd_safe(E);
                    double *cl = GL + o * P + b * q + n0, *cu = GU + o * P + b * q + n0;
                    *cl = bnd_down(*cl + l->bias[o] - E);
                    *cu = bnd_up(*cu + l->bias[o] + E);
                }
        } else {
            /* ReLU: lines from the input interval, functions through them */
            const double *zl = bt->lo[i], *zu = bt->hi[i];
            double *lw = bt->lw[i + 1], *lb = bt->lb[i + 1], *uw = bt->uw[i + 1],
                   *ub = bt->ub[i + 1];
            l->act->relax(l->param, B * n, zl, zu, lw, lb, uw, ub);
            double g = bnd_gamma(3.0);
            for (int64_t j = 0; j < n; j++)
                for (int64_t b = 0; b < B; b++) {
                    int64_t s = b * n + j;
                    const double *fl = FL + j * P + b * q, *fu = FU + j * P + b * q;
                    double *hl = GL + j * P + b * q, *hu = GU + j * P + b * q;
                    for (int pass = 0; pass < 2; pass++) {
                        const double *f = pass ? fu : fl;
                        double *h = pass ? hu : hl;
                        double w = pass ? uw[s] : lw[s], c = pass ? ub[s] : lb[s];
                        double mg = pass ? magU[s] : magL[s];
                        if (w == 1.0 && c == 0.0) {
                            memcpy(h, f, (size_t)q * sizeof(double));
                        } else if (w == 0.0) {
                            memset(h, 0, (size_t)n0 * sizeof(double));
                            h[n0] = c;
                        } else {
                            for (int64_t t = 0; t <= n0; t++)
                                h[t] = w * f[t];
                            double E = bnd_safe(g * (fabs(w) * mg + fabs(c)));
                            h[n0] = pass ? bnd_up(h[n0] + c + E) : bnd_down(h[n0] + c - E);
                        }
                    }
                }
        }
        /* the new layer's interval and magnitudes */
        concretize_fn(bt, n, GL, 0, bt->lo[i + 1], bt->mL[i + 1]);
        concretize_fn(bt, n, GU, 1, bt->hi[i + 1], bt->mU[i + 1]);
        if (!l->act) /* IBP may be tighter than the functions' extremes */
            bnd_batch_ibp_meet(bt, i, M, Ew);
        if (!l->act && i + 1 < m->n_layers && m->L[i + 1].act) {
            if (bt->pre_in)
                pre_exchange(bt, i, 0);
            if (bt->fn_in)
                fn_exchange(bt, i, 0, NULL);
            refine_preact(bt, i);
            if (bt->pre_out)
                pre_exchange(bt, i, 1);
        }
        if (l->act) { /* the interval rule may be tighter (M, Ew: scratch) */
            l->act->interval(l->param, B * n, bt->lo[i], bt->hi[i], M, Ew);
            for (int64_t s = 0; s < B * n; s++) {
                if (M[s] > bt->lo[i + 1][s])
                    bt->lo[i + 1][s] = M[s];
                if (Ew[s] < bt->hi[i + 1][s])
                    bt->hi[i + 1][s] = Ew[s];
            }
        }
    }
    return 0;
}

/* max(|lo|, |hi|) of layer i, B x size */
static void layer_mz(const batch *bt, int i, int64_t n, double *mz)
{
    for (int64_t s = 0; s < bt->B * n; s++) {
        double a = fabs(bt->lo[i][s]), c = fabs(bt->hi[i][s]);
        mz[s] = a > c ? a : c;
    }
}

/* ---- row kernels (2-wide vectors, SSE2; sums in any order are covered by
 * gamma_n) ---- */
typedef double v2d __attribute__((vector_size(16)));
typedef long long v2l __attribute__((vector_size(16)));

static inline v2d ld2(const double *p)
{
    v2d v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline v2d vabs(v2d v)
{
    const v2l m = {0x7fffffffffffffffLL, 0x7fffffffffffffffLL};
    return (v2d)((v2l)v & m);
}

static inline v2d vpos(v2d v) /* max(v, 0) */
{
    const v2d z = {0, 0};
    return (v2d)((v2l)v & (v2l)(v > z));
}

/* s = a·bias, ea = |a|·w */
static void row_linear(int64_t n, const double *a, const double *bias, const double *w,
                       double *s_out, double *ea_out)
{
    v2d s0 = {0, 0}, s1 = {0, 0}, e0 = {0, 0}, e1 = {0, 0};
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        v2d a0 = ld2(a + j), a1 = ld2(a + j + 2);
        s0 += a0 * ld2(bias + j);
        s1 += a1 * ld2(bias + j + 2);
        e0 += vabs(a0) * ld2(w + j);
        e1 += vabs(a1) * ld2(w + j + 2);
    }
    double ss = (s0[0] + s0[1]) + (s1[0] + s1[1]), ee = (e0[0] + e0[1]) + (e1[0] + e1[1]);
    for (; j < n; j++) {
        ss += a[j] * bias[j];
        ee += fabs(a[j]) * w[j];
    }
    *s_out = ss, *ea_out = ee;
}

/* a <- a⁺·lw + a⁻·uw; s = a⁺·lb + a⁻·ub; ea = |a|·v */
static void row_relu(int64_t n, double *a, const double *lw, const double *lb, const double *uw,
                     const double *ub, const double *v, double *s_out, double *ea_out)
{
    v2d s0 = {0, 0}, e0 = {0, 0};
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
        v2d av = ld2(a + j);
        v2d p = vpos(av), q = av - p;
        v2d na = p * ld2(lw + j) + q * ld2(uw + j);
        memcpy(a + j, &na, sizeof na);
        s0 += p * ld2(lb + j) + q * ld2(ub + j);
        e0 += (p - q) * ld2(v + j);
    }
    double ss = s0[0] + s0[1], ee = e0[0] + e0[1];
    for (; j < n; j++) {
        double p = a[j] > 0 ? a[j] : 0, q = a[j] - p;
        a[j] = p * lw[j] + q * uw[j];
        ss += p * lb[j] + q * ub[j];
        ee += (p - q) * v[j];
    }
    *s_out = ss, *ea_out = ee;
}

/* CROWN backward pass from the output of layer `top` (mlp index; -1: the
 * input) for R rows A (R x size(top)), row r belonging to box rbox[r],
 * continuing the bias cb and error budget er (R each, set by the caller):
 * lower bounds lbv (R),
 * and the input coefficients A_in (R x n0) when not NULL. A and A2 hold
 * R x widest each; cb, er R each; mz, w B x widest. */
void bnd_batch_backward(batch *bt, int top, int64_t R, const int64_t *rbox, double *A,
                        double *A2, double *cb, double *er, double *mz, double *w,
                        double *lbv, double *A_in, double *const *alpha, double **saveA,
                        double *const *badd, float *fast)
{
    const bnd_mlp *m = bt->m;
    int64_t B = bt->B, n0 = m->n_in;
    for (int i = top; i >= 0; i--) {
        const mlp_layer *l = &m->L[i];
        int64_t n = l->n, ni = l->n_in;
        if (!l->act && fast) { /* steering: no error budget (row_linear's ea unused) */
            for (int64_t r = 0; r < R; r++) {
                double s, ea;
                row_linear(n, A + r * n, l->bias, l->bias, &s, &ea);
                cb[r] += s;
            }
            if (l->Wf)
                sgemm_rows(l, 0, R, A, A2, fast);
            else
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)ni, (int)n,
                            1.0, A, (int)n, l->W, (int)ni, 0.0, A2, (int)ni);
            double *t = A;
            A = A2, A2 = t;
        } else if (!l->act) {
            layer_mz(bt, i, ni, mz);
            /* w (B x n) = g·(mz·|W|^T + |b|) + bias_err */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)n, (int)ni, 1.0, mz,
                        (int)ni, l->Wabs, (int)ni, 0.0, w, (int)n);
            for (int64_t b = 0; b < B; b++)
                for (int64_t o = 0; o < n; o++) {
                    double v = l->g_bwd * (w[b * n + o] + fabs(l->bias[o]));
                    w[b * n + o] = l->bias_err ? v + l->bias_err[o] : v;
                }
            for (int64_t r = 0; r < R; r++) {
                double s, ea;
                row_linear(n, A + r * n, l->bias, w + rbox[r] * n, &s, &ea);
                cb[r] += s;
                er[r] += ea + BND_U * fabs(cb[r]);
            }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)ni, (int)n, 1.0, A,
                        (int)n, l->W, (int)ni, 0.0, A2, (int)ni);
            double *t = A;
            A = A2, A2 = t;
        } else {
            const double *lw = bt->lw[i + 1], *lb = bt->lb[i + 1], *uw = bt->uw[i + 1],
                         *ub = bt->ub[i + 1];
            /* v = max(|lw|,|uw|)·mz + max(|lb|,|ub|) per box, into w; an
             * unstable neuron's slope (alpha) is at most 1 (a steering pass
             * needs none: its error sums are dropped) */
            if (!fast)
                layer_mz(bt, i, n, mz);
            for (int64_t t = 0; !fast && t < B * n; t++) {
                double sw = fmax(fabs(lw[t]), fabs(uw[t]));
                if (alpha && alpha[i] && lw[t] != uw[t] && sw < 1)
                    sw = 1;
                w[t] = sw * mz[t] + fmax(fabs(lb[t]), fabs(ub[t]));
            }
            if (saveA)
                memcpy(saveA[i], A, (size_t)(R * n) * sizeof(double));
            double g = bnd_gamma((double)(n + 3));
            double *lwr = NULL;
            if (alpha) /* per-row lower slopes on unstable neurons (lines through 0) */
                lwr = alpha[i];
            for (int64_t r = 0; r < R; r++) {
                int64_t o = rbox[r] * n;
                double s, ea;
                const double *lws = lw + o;
                if (lwr) {
                    double *ar = lwr + r * n;
                    for (int64_t j = 0; j < n; j++) {
                        int64_t t = o + j;
                        if (!(lb[t] == 0 && lw[t] != uw[t]))
                            ar[j] = lw[t]; /* stable: its own line */
                        else
                            ar[j] = fmin(1.0, fmax(0.0, ar[j]));
                    }
                    lws = ar;
                }
                row_relu(n, A + r * n, lws, lb + o, uw + o, ub + o, fast ? lb + o : w + o, &s, &ea);
                if (badd && badd[i]) /* beta terms: see batch_internal.h */
                    for (int64_t j = 0; j < n; j++)
                        A[r * n + j] += badd[i][r * n + j];
                cb[r] += s;
                er[r] += g * ea + BND_U * fabs(cb[r]);
            }
        }
    }
    /* the input box */
    double g = bnd_gamma((double)(n0 + 3));
    for (int64_t r = 0; r < R; r++) {
        int64_t b = rbox[r];
        const double *a = A + r * n0, *c = bt->ctr + b * n0, *rd = bt->rad + b * n0;
        double ac = 0, ar = 0, am = 0;
        for (int64_t t = 0; t < n0; t++) {
            ac += a[t] * c[t];
            ar += fabs(a[t]) * rd[t];
            am += fabs(a[t]) * (fabs(c[t]) + rd[t]);
        }
        cb[r] += ac - ar;
        if (fast) {
            lbv[r] = isnan(cb[r]) ? -INFINITY : cb[r];
            continue;
        }
        er[r] += g * (am + fabs(cb[r]));
        double v = bnd_down(cb[r] - bnd_safe(er[r]));
        lbv[r] = isnan(v) ? -INFINITY : v;
    }
    if (A_in)
        memcpy(A_in, A, (size_t)(R * n0) * sizeof(double));
}

/* Backward CROWN for the neurons of layer i's output (a pre-activation)
 * that the forward bounds leave unstable: rows +e_j and -e_j per such
 * neuron and box, all boxes in one pass; the results tighten lo/hi. */
static void refine_preact(batch *bt, int i)
{
    double *A = bt->A, *A2 = bt->A2, *cb = bt->cb, *er = bt->er, *mz = bt->mz, *w = bt->w,
           *lbv = bt->lbv;
    int64_t *rbox = bt->rbox, *rneu = bt->rneu;
    int64_t n = bt->m->L[i].n, R = 0;
    double *lo = bt->lo[i + 1], *hi = bt->hi[i + 1];
    const bnd_act_rule *act = bt->m->L[i + 1].act;
    for (int64_t b = 0; b < bt->B; b++)
        for (int64_t j = 0; j < n; j++)
            if (wants_line(bt, act, lo[b * n + j], hi[b * n + j])) {
                rbox[R] = b, rneu[R] = j;
                rbox[R + 1] = b, rneu[R + 1] = j;
                R += 2;
            }
    unsigned char *refined = NULL;
    if (bt->fn_out) { /* which (box, neuron, side) get a refinement row */
        refined = calloc((size_t)(2 * bt->B * n), 1);
        if (!refined)
            R = 0; /* optional: the intervals stay as they are (sound) */
    }
    if (R == 0) {
        if (bt->fn_out) /* the inherited lines, re-expressed for these boxes */
            fn_exchange(bt, i, 1, NULL);
        free(refined);
        return;
    }
    /* rows ±e_j through layer i itself are ±(row j of W, b_j), exactly;
     * their error budget is that of the linear step (batch_backward's) */
    const mlp_layer *l = &bt->m->L[i];
    int64_t ni = l->n_in;
    layer_mz(bt, i, ni, mz);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)bt->B, (int)n, (int)ni, 1.0, mz,
                (int)ni, l->Wabs, (int)ni, 0.0, w, (int)n);
    for (int64_t r = 0; r < R; r += 2) {
        int64_t j = rneu[r], t = rbox[r] * n + j;
        const double *wj = l->W + j * ni;
        double *a = A + r * ni, *an = A + (r + 1) * ni;
        for (int64_t c = 0; c < ni; c++)
            a[c] = wj[c], an[c] = -wj[c];
        double ew = l->g_bwd * (w[t] + fabs(l->bias[j]));
        if (l->bias_err)
            ew += l->bias_err[j];
        cb[r] = l->bias[j], cb[r + 1] = -l->bias[j];
        er[r] = er[r + 1] = ew + BND_U * fabs(l->bias[j]);
    }
    bnd_batch_backward(bt, i - 1, R, rbox, A, A2, cb, er, mz, w, lbv, refined ? bt->Ain : NULL,
                       NULL, NULL, NULL, NULL);
    for (int64_t r = 0; r < R; r += 2) {
        int64_t t = rbox[r] * n + rneu[r];
        if (lbv[r] > lo[t])
            lo[t] = lbv[r];
        if (-lbv[r + 1] < hi[t])
            hi[t] = -lbv[r + 1];
    }
    if (refined) {
        int64_t n0 = bt->m->n_in;
        for (int64_t r = 0; r < R; r++) {
            int s = (int)(r & 1);
            double *o = fn_rec(bt, bt->fn_out, rbox[r], i, rneu[r], s);
            o[0] = lbv[r];
            memcpy(o + 1, bt->Ain + r * n0, (size_t)n0 * sizeof(double));
            refined[(rbox[r] * n + rneu[r]) * 2 + s] = 1;
        }
        fn_exchange(bt, i, 1, refined);
        free(refined);
    }
}

/* alpha-CROWN on the objective rows: the lower slopes of the unstable ReLUs,
 * one per row and neuron, moved by signed gradient steps on the row's lower
 * bound (the gradient by reverse mode through the backward pass, plain
 * double: it only steers). Every iterate's bound comes from the sound pass
 * (any slope in [0,1] is valid), so lb takes the best of them. */
/* lb (and A_in's rows, when not NULL: they stay the linear functions behind
 * lb) improve to the best of the iterations. */
static int optimise_alpha(batch *bt, const double *C, int k, int iters, double *lb, double *A_in,
                          err *e)
{
    const bnd_mlp *m = bt->m;
    int64_t B = bt->B, R = B * k, n0 = m->n_in, W = m->widest;
    int nl = m->n_layers;
    double **alpha = calloc((size_t)nl, sizeof(double *));
    double **saveA = calloc((size_t)nl, sizeof(double *));
    double *G = malloc((size_t)(R * W) * sizeof(double));
    double *G2 = malloc((size_t)(R * W) * sizeof(double));
    double *a0 = malloc((size_t)(R * n0) * sizeof(double));
    double *lbt = malloc((size_t)R * sizeof(double));
    int rc = 0;
    if (!alpha || !saveA || !G || !G2 || !a0 || !lbt) {
        rc = err_set(e, ERR_NOMEM, "alpha: out of memory");
        goto out;
    }
    for (int i = 0; i < nl; i++) {
        int64_t n = m->L[i].n;
        if (!m->L[i].act)
            continue;
        alpha[i] = malloc((size_t)(R * n) * sizeof(double));
        saveA[i] = malloc((size_t)(R * n) * sizeof(double));
        if (!alpha[i] || !saveA[i]) {
            rc = err_set(e, ERR_NOMEM, "alpha: out of memory");
            goto out;
        }
        for (int64_t r = 0; r < R; r++)
            memcpy(alpha[i] + r * n, bt->lw[i + 1] + bt->rbox[r] * n, (size_t)n * sizeof(double));
    }
    double lr = 0.2;
    for (int it = 0; it < iters; it++, lr *= 0.8) {
        /* the sound bound at the current slopes; it moves them to [0, 1] */
        for (int64_t b = 0; b < B; b++)
            memcpy(bt->A + b * k * m->n_out, C, (size_t)(k * m->n_out) * sizeof(double));
        memset(bt->cb, 0, (size_t)R * sizeof(double));
        memset(bt->er, 0, (size_t)R * sizeof(double));
        bnd_batch_backward(bt, nl - 1, R, bt->rbox, bt->A, bt->A2, bt->cb, bt->er, bt->mz, bt->w, lbt,
                       a0, alpha, saveA, NULL, NULL);
        for (int64_t r = 0; r < R; r++)
            if (lbt[r] > lb[r]) {
                lb[r] = lbt[r];
                if (A_in)
                    memcpy(A_in + r * n0, a0 + r * n0, (size_t)n0 * sizeof(double));
            }
        if (it + 1 == iters)
            break;
        /* reverse mode: G = d lb / d a, from the input box upward */
        for (int64_t r = 0; r < R; r++) {
            const double *c = bt->ctr + bt->rbox[r] * n0, *rd = bt->rad + bt->rbox[r] * n0;
            for (int64_t t = 0; t < n0; t++) {
                double a = a0[r * n0 + t];
                G[r * n0 + t] = c[t] - (a > 0 ? rd[t] : a < 0 ? -rd[t] : 0);
            }
        }
        for (int i = 0; i < nl; i++) {
            const mlp_layer *l = &m->L[i];
            int64_t n = l->n;
            if (!l->act) {
                bnd_batch_affine_rows(l, R, G, G2, NULL);
                double *t = G;
                G = G2, G2 = t;
                continue;
            }
            const double *lw = bt->lw[i + 1], *lbl = bt->lb[i + 1], *uw = bt->uw[i + 1],
                         *ub = bt->ub[i + 1];
            for (int64_t r = 0; r < R; r++) {
                int64_t o = bt->rbox[r] * n;
                double *g = G + r * n, *al = alpha[i] + r * n;
                const double *a = saveA[i] + r * n;
                for (int64_t j = 0; j < n; j++) {
                    int64_t t = o + j;
                    double aj = a[j], gj = g[j];
                    if (aj > 0) {
                        g[j] = gj * al[j] + lbl[t];
                        if (lbl[t] == 0 && lw[t] != uw[t]) {
                            double step = gj * aj > 0 ? lr : gj * aj < 0 ? -lr : 0;
                            al[j] = fmin(1.0, fmax(0.0, al[j] + step));
                        }
                    } else {
                        g[j] = gj * uw[t] + ub[t];
                    }
                }
            }
        }
    }
out:
    for (int i = 0; alpha && saveA && i < nl; i++)
        free(alpha[i]), free(saveA[i]);
    free(alpha), free(saveA), free(G), free(G2), free(a0), free(lbt);
    return rc;
}

int bnd_mlp_bound(const bnd_mlp *m, int64_t B, const double *lo, const double *hi, int k,
                  const double *C, int alpha_iters, double *lb, double *A_in, err *e)
{
    return bnd_mlp_bound_pre(m, B, lo, hi, k, C, alpha_iters, NULL, NULL, lb, A_in, e);
}

int bnd_mlp_bound_pre(const bnd_mlp *m, int64_t B, const double *lo, const double *hi, int k,
                      const double *C, int alpha_iters, const double *pre_in, double *pre_out,
                      double *lb, double *A_in, err *e)
{
    return bnd_mlp_bound_fn(m, B, lo, hi, k, C, alpha_iters, pre_in, pre_out, NULL, NULL, 0, lb,
                            A_in, e);
}

static int bound_fn(const bnd_mlp *m, int64_t B, const double *lo, const double *hi, int k,
                    const double *C, int alpha_iters, const double *pre_in, double *pre_out,
                    const double *fn_in, double *fn_out, int64_t ld, double *lb, double *A_in,
                    int lines_at_zero, err *e);

int bnd_mlp_bound_fn(const bnd_mlp *m, int64_t B, const double *lo, const double *hi, int k,
                     const double *C, int alpha_iters, const double *pre_in, double *pre_out,
                     const double *fn_in, double *fn_out, int64_t ld, double *lb, double *A_in,
                     err *e)
{
    return bound_fn(m, B, lo, hi, k, C, alpha_iters, pre_in, pre_out, fn_in, fn_out, ld, lb, A_in,
                    0, e);
}

int bnd_mlp_bound_patterns(const bnd_mlp *m, int64_t B, const double *lo, const double *hi,
                           int k, const double *C, const double *rec_in, double *rec_out,
                           double *lb, double *A_in, err *e)
{
    int64_t npi = bnd_mlp_n_pre(m), ld = npi + bnd_mlp_n_fn(m);
    return bound_fn(m, B, lo, hi, k, C, 0, rec_in, rec_out, rec_in + npi, rec_out + npi, ld, lb,
                    A_in, 1, e);
}

static int bound_fn(const bnd_mlp *m, int64_t B, const double *lo, const double *hi, int k,
                    const double *C, int alpha_iters, const double *pre_in, double *pre_out,
                    const double *fn_in, double *fn_out, int64_t ld, double *lb, double *A_in,
                    int lines_at_zero, err *e)
{
    if (B <= 0 || k <= 0)
        return 0;
    int64_t n0 = m->n_in, q = n0 + 1, P = B * q, W = m->widest, nl = m->n_layers + 1;
    int64_t Rmax = 2 * B * W > B * k ? 2 * B * W : B * k;
    batch bt;
    memset(&bt, 0, sizeof bt);
    bt.m = m, bt.B = B, bt.q = q;
    bt.pre_in = pre_in, bt.pre_out = pre_out;
    bt.fn_in = fn_in, bt.fn_out = fn_out;
    bt.lines_at_zero = lines_at_zero;
    bt.pre_ld = ld > 0 ? ld : bnd_mlp_n_pre(m);
    bt.fn_ld = ld > 0 ? ld : bnd_mlp_n_fn(m);
    size_t total = 2 * (size_t)(B * n0) + 4 * (size_t)(B * W) +
                   2 * (size_t)(Rmax * W) + 3 * (size_t)Rmax + (fn_out ? (size_t)(Rmax * n0) : 0);
    for (int i = 0; i < nl; i++) {
        int64_t sz = i == 0 ? n0 : m->L[i - 1].n;
        total += (size_t)(2 * B * sz) + (size_t)(2 * sz * P) + (size_t)(2 * B * sz);
        if (i > 0 && m->L[i - 1].act)
            total += (size_t)(4 * B * sz);
    }
    double *buf = malloc(total * sizeof(double));
    double **ptrs = calloc((size_t)(10 * nl), sizeof(double *));
    int64_t *ibuf = malloc((size_t)(2 * Rmax) * sizeof(int64_t));
    if (!buf || !ptrs || !ibuf) {
        free(buf), free(ptrs), free(ibuf);
        return err_set(e, ERR_NOMEM, "batch bounds: out of memory (%lld boxes)", (long long)B);
    }
    double *p = buf;
#define TAKE(n) (p += (n), p - (n))
    bt.ctr = TAKE(B * n0), bt.rad = TAKE(B * n0);
    double *M = TAKE(B * W), *Ew = TAKE(B * W);
    bt.mz = TAKE(B * W), bt.w = TAKE(B * W);
    bt.A = TAKE(Rmax * W), bt.A2 = TAKE(Rmax * W);
    bt.cb = TAKE(Rmax), bt.er = TAKE(Rmax), bt.lbv = TAKE(Rmax);
    bt.Ain = fn_out ? TAKE(Rmax * n0) : NULL;
    bt.rbox = ibuf, bt.rneu = ibuf + Rmax;
    bt.lo = ptrs, bt.hi = ptrs + nl, bt.lw = ptrs + 2 * nl, bt.lb = ptrs + 3 * nl,
    bt.uw = ptrs + 4 * nl, bt.ub = ptrs + 5 * nl;
    bt.FL = ptrs + 6 * nl, bt.FU = ptrs + 7 * nl, bt.mL = ptrs + 8 * nl, bt.mU = ptrs + 9 * nl;
    for (int i = 0; i < nl; i++) {
        int64_t sz = i == 0 ? n0 : m->L[i - 1].n;
        bt.lo[i] = TAKE(B * sz), bt.hi[i] = TAKE(B * sz);
        bt.FL[i] = TAKE(sz * P), bt.FU[i] = TAKE(sz * P);
        bt.mL[i] = TAKE(B * sz), bt.mU[i] = TAKE(B * sz);
        if (i > 0 && m->L[i - 1].act) {
            bt.lw[i] = TAKE(B * sz), bt.lb[i] = TAKE(B * sz);
            bt.uw[i] = TAKE(B * sz), bt.ub[i] = TAKE(B * sz);
        }
    }
#undef TAKE
    int rc = 0;
    for (int64_t t = 0; t < B * n0; t++) {
        if (!(lo[t] <= hi[t]) || isinf(lo[t]) || isinf(hi[t])) {
            rc = err_set(e, ERR_ARG, "batch bounds: bad interval for X_%lld of box %lld",
                         (long long)(t % n0), (long long)(t / n0));
            goto out;
        }
    }
    memcpy(bt.lo[0], lo, (size_t)(B * n0) * sizeof(double));
    memcpy(bt.hi[0], hi, (size_t)(B * n0) * sizeof(double));
    for (int64_t b = 0; fn_out && b < B; b++) { /* the box the stored lines refer to */
        memcpy(fn_out + b * bt.fn_ld, lo + b * n0, (size_t)n0 * sizeof(double));
        memcpy(fn_out + b * bt.fn_ld + n0, hi + b * n0, (size_t)n0 * sizeof(double));
    }
    bnd_center_radius(B * n0, lo, hi, bt.ctr, bt.rad);
    rc = batch_forward(&bt, M, Ew, e);
    if (rc == 0) {
        int64_t R = B * k;
        for (int64_t r = 0; r < R; r++)
            bt.rbox[r] = r / k;
        for (int64_t b = 0; b < B; b++)
            memcpy(bt.A + b * k * m->n_out, C, (size_t)(k * m->n_out) * sizeof(double));
        memset(bt.cb, 0, (size_t)R * sizeof(double));
        memset(bt.er, 0, (size_t)R * sizeof(double));
        bnd_batch_backward(&bt, m->n_layers - 1, R, bt.rbox, bt.A, bt.A2, bt.cb, bt.er, bt.mz, bt.w,
                       lb, A_in, NULL, NULL, NULL, NULL);
        if (alpha_iters > 0 && bnd_mlp_all_relu(m))
            rc = optimise_alpha(&bt, C, k, alpha_iters, lb, A_in, e);
    }
out:
    free(buf), free(ptrs), free(ibuf);
    return rc;
}
