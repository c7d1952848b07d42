/* crown.c: the CROWN backward pass (Zhang et al. 2018) on a DAG.
 *
 * For objective rows A0 on layer `start`, walk the layers in reverse
 * topological order carrying one coefficient matrix A_i (k x size_i) per layer
 * (summed over consumers, so residual connections work), a bias cb (k) and an
 * error budget er (k):
 *   LINEAR  y = sum J_j x_j + b:  A_{in_j} += A_i·J_j,  cb += A_i·b
 *   ACT     relaxed by lines:     A_z += A⁺·diag(lw) + A⁻·diag(uw),
 *                                 cb  += A⁺·lb + A⁻·ub
 *   INPUT   concretise over the box: A c - |A| r + cb.
 * With stop_at_act, ACT layers are concretised over their interval instead:
 * that is IBP with the objective merged into the linear layers after the
 * last nonlinearity (auto_LiRPA's IBP with C).
 * Soundness with rounding (docs/soundness.md): with z in [lz, uz] and
 * mz = max(|lz|, |uz|), a computed product fl(A·J) = A·J + E with
 * |E| <= gamma_n |A||J| (n = length of the sums), so the neglected E·z is at
 * most gamma_n·|A|·(|J| mz) per row: er += |A_i|·w with
 * w = gamma_g·(sum |J_j| mz_j + |b|) + bias_err — only matrix-vector
 * products. Accumulating into an existing A_z adds u·|A_z|·mz, each bias
 * update u·|cb|. The final lower bound is stepped down after subtracting the
 * inflated budget. Relaxation lines are valid exactly (relax.c). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bnd_net *net;
    int64_t k;
    double **A;   /* per layer, NULL when not reached */
    double *cb, *er;
    const double *const *alpha; /* optional per-row lower slopes, per layer */
    const bnd_bwd_ext *ext;     /* optional beta terms and records (beta.c) */
} bwd;

static int oom(bwd *b, err *e)
{
    return err_set(e, ERR_NOMEM, "%s: out of memory", b->net->source);
}

/* Layer i's max(|lo|, |hi|); only asked for layers below the start of a
 * backward pass, whose bounds are final for this bnd_compute. */
static const double *get_mz(bwd *b, int i)
{
    bnd_layer *L = &b->net->layers[i];
    if (!L->mz_ok) {
        if (!L->mz && !(L->mz = malloc((size_t)L->size * sizeof(double))))
            return NULL;
        for (int64_t t = 0; t < L->size; t++) {
            double a = fabs(L->lo[t]), c = fabs(L->hi[t]);
            L->mz[t] = a > c ? a : c;
        }
        L->mz_ok = 1;
    }
    return L->mz;
}

/* er_r += sum_j |M_rj| v_j for the k rows of M (k x n). */
static void add_abs_matvec(int64_t k, int64_t n, const double *M, const double *v, double *er)
{
    for (int64_t r = 0; r < k; r++) {
        const double *a = M + r * n;
        double s = 0;
        for (int64_t j = 0; j < n; j++)
            s += fabs(a[j]) * v[j];
        er[r] += s;
    }
}

/* Destination matrix for layer z, to be overwritten: A_z itself when it is
 * new, else a scratch buffer added to it by dest_end(). */
static double *dest_begin(bwd *b, int z, int *fresh)
{
    size_t n = (size_t)(b->k * b->net->layers[z].size);
    *fresh = b->A[z] == NULL;
    double *d = malloc((n ? n : 1) * sizeof(double));
    if (d && *fresh)
        b->A[z] = d;
    return d;
}

static int dest_end(bwd *b, int z, double *d, int fresh, err *e)
{
    if (fresh)
        return 0;
    int64_t n = b->net->layers[z].size;
    double *Az = b->A[z];
    for (int64_t t = 0; t < b->k * n; t++)
        Az[t] += d[t];
    free(d);
    /* each sum rounded once: |error| <= u |A_z| elementwise */
    const double *mz = get_mz(b, z);
    if (!mz)
        return oom(b, e);
    double *tmp = calloc((size_t)b->k, sizeof(double));
    if (!tmp)
        return oom(b, e);
    add_abs_matvec(b->k, n, Az, mz, tmp);
    for (int64_t r = 0; r < b->k; r++)
        b->er[r] += BND_U * tmp[r];
    free(tmp);
    return 0;
}

/* w = gamma_g·(sum_j |J_j| mz_j + |b|) + bias_err for LINEAR layer i (cached:
 * depends only on its inputs' final bounds). g counts the sums over the n
 * outputs of the layer (A·J and A·b), coefficient roundings and the n_in
 * partial products. */
static const double *linear_errw(bwd *b, int i)
{
    bnd_layer *L = &b->net->layers[i];
    int64_t n = L->size;
    if (L->errw_ok)
        return L->errw;
    if (!L->errw && !(L->errw = malloc((size_t)n * sizeof(double))))
        return NULL;
    double *w = L->errw;
    double *tmp = malloc((size_t)n * sizeof(double));
    if (!tmp)
        return NULL;
    memset(w, 0, (size_t)n * sizeof(double));
    for (int j = 0; j < L->n_in; j++) {
        const double *mz = get_mz(b, L->in[j]);
        if (!mz) {
            free(tmp);
            return NULL;
        }
        if (L->lin[j])
            bnd_lin_forward(L->lin[j], 1, 1, mz, tmp);
        else
            memcpy(tmp, mz, (size_t)n * sizeof(double));
        for (int64_t o = 0; o < n; o++)
            w[o] += tmp[o];
    }
    free(tmp);
    double g = bnd_gamma((double)(n + L->coef_err + L->n_in + 3));
    for (int64_t o = 0; o < n; o++) {
        w[o] = g * (w[o] + (L->bias ? fabs(L->bias[o]) : 0.0));
        if (L->bias_err)
            w[o] += L->bias_err[o];
    }
    L->errw_ok = 1;
    return w;
}

/* v = max(|lw|,|uw|)·mz + max(|lb|,|ub|) for ACT layer i (cached). */
static const double *act_errw(bwd *b, int i)
{
    bnd_layer *L = &b->net->layers[i];
    if (L->errw_ok)
        return L->errw;
    const double *mz = get_mz(b, L->in[0]);
    if (!mz || (!L->errw && !(L->errw = malloc((size_t)L->size * sizeof(double)))))
        return NULL;
    for (int64_t j = 0; j < L->size; j++) {
        double sw = fmax(fabs(L->lw[j]), fabs(L->uw[j]));
        double sb = fmax(fabs(L->lb[j]), fabs(L->ub[j]));
        if (L->lw[j] != L->uw[j] && sw < 1)
            sw = 1; /* unstable: an overriding lower slope (alpha) is at most 1 */
        L->errw[j] = sw * mz[j] + sb;
    }
    L->errw_ok = 1;
    return L->errw;
}

static int back_linear(bwd *b, int i, err *e)
{
    bnd_layer *L = &b->net->layers[i];
    int64_t n = L->size, k = b->k;
    const double *Ai = b->A[i];
    const double *w = linear_errw(b, i);
    if (!w)
        return oom(b, e);
    const double *bias = L->bias;
    for (int64_t r = 0; r < k; r++) {
        const double *a = Ai + r * n;
        double s = 0, ea = 0;
        if (bias)
            for (int64_t o = 0; o < n; o++) {
                s += a[o] * bias[o];
                ea += fabs(a[o]) * w[o];
            }
        else
            for (int64_t o = 0; o < n; o++)
                ea += fabs(a[o]) * w[o];
        b->cb[r] += s;
        b->er[r] += ea + BND_U * fabs(b->cb[r]);
    }
    for (int j = 0; j < L->n_in; j++) {
        int z = L->in[j], fresh;
        double *d = dest_begin(b, z, &fresh);
        if (!d)
            return oom(b, e);
        if (L->lin[j])
            bnd_lin_backward(L->lin[j], k, Ai, d, 0);
        else
            memcpy(d, Ai, (size_t)(k * n) * sizeof(double));
        int rc = dest_end(b, z, d, fresh, e);
        if (rc)
            return rc;
    }
    return 0;
}

static int back_act(bwd *b, int i, err *e)
{
    bnd_layer *L = &b->net->layers[i];
    int64_t n = L->size, k = b->k;
    int z = L->in[0], fresh;
    const double *Ai = b->A[i];
    const double *v = act_errw(b, i);
    double *d = v ? dest_begin(b, z, &fresh) : NULL;
    if (!d)
        return oom(b, e);
    /* one rounding per product, n-term bias sums, the update of cb */
    double g = bnd_gamma((double)(n + 3));
    const double *lw = L->lw, *uw = L->uw, *lb = L->lb, *ub = L->ub;
    const double *al = b->alpha && L->act->lower_alpha ? b->alpha[i] : NULL;
    const bnd_bwd_ext *x = b->ext;
    const double *bt = x && x->beta_add ? x->beta_add[i] : NULL;
    uint8_t *sel = x && x->sel ? x->sel[i] : NULL;
    const bnd_row_lines *rl = x && x->rows && x->rows[i].lw ? &x->rows[i] : NULL;
    const double *mzz = bt || rl ? get_mz(b, z) : NULL;
    if ((bt || rl) && !mzz) {
        free(d);
        if (fresh)
            b->A[z] = NULL;
        return oom(b, e);
    }
    if (x && x->A_act && x->A_act[i])
        memcpy(x->A_act[i], Ai, (size_t)(k * n) * sizeof(double));
    for (int64_t r = 0; r < k; r++) {
        const double *a = Ai + r * n, *alr = al ? al + r * n : NULL;
        double *dr = d + r * n, s = 0, ea = 0;
        if (sel)
            for (int64_t j = 0; j < n; j++)
                sel[r * n + j] = a[j] >= 0;
        if (rl) {
            /* this row's own lines; the error weight as act_errw's, per row */
            const double *rlw = rl->lw + r * n, *rlb = rl->lb + r * n;
            const double *ruw = rl->uw + r * n, *rub = rl->ub + r * n;
            for (int64_t j = 0; j < n; j++) {
                double aj = a[j];
                int pos = aj >= 0;
                dr[j] = aj * (pos ? rlw[j] : ruw[j]);
                s += aj * (pos ? rlb[j] : rub[j]);
                double vj = fmax(fabs(rlw[j]), fabs(ruw[j])) * mzz[j] + fmax(fabs(rlb[j]), fabs(rub[j]));
                ea += fabs(aj) * vj;
                if (bt && bt[r * n + j] != 0) {
                    dr[j] += bt[r * n + j];
                    ea += fabs(dr[j]) * mzz[j];
                }
            }
        } else if (!alr && !bt) {
            for (int64_t j = 0; j < n; j++) {
                double aj = a[j];
                if (aj >= 0) {
                    dr[j] = aj * lw[j];
                    s += aj * lb[j];
                    ea += aj * v[j];
                } else {
                    dr[j] = aj * uw[j];
                    s += aj * ub[j];
                    ea -= aj * v[j];
                }
            }
        } else {
            for (int64_t j = 0; j < n; j++) {
                double aj = a[j];
                int pos = aj >= 0;
                double slope = pos ? lw[j] : uw[j];
                if (alr && pos && lb[j] == 0 && lw[j] != uw[j]) /* unstable, line through 0 */
                    slope = fmin(1.0, fmax(0.0, alr[j]));
                dr[j] = aj * slope;
                s += aj * (pos ? lb[j] : ub[j]);
                ea += fabs(aj) * v[j];
                if (bt && bt[r * n + j] != 0) {
                    /* Lagrange term added to the input's coefficient: one
                     * more rounding of the entry, <= u·|dr_j|·mz_j */
                    dr[j] += bt[r * n + j];
                    ea += fabs(dr[j]) * mzz[j];
                }
            }
        }
        b->cb[r] += s;
        b->er[r] += g * ea + BND_U * fabs(b->cb[r]);
    }
    return dest_end(b, z, d, fresh, e);
}

/* cb_r += A_r c - |A_r| r over layer i's current interval [c - r, c + r]
 * (the input box for layer 0); the sums' rounding goes to er. */
static int concretize(bwd *b, int i, err *e)
{
    const bnd_layer *L = &b->net->layers[i];
    int64_t n = L->size, k = b->k;
    const double *A = b->A[i];
    double *c = malloc((size_t)(3 * n) * sizeof(double));
    if (!c)
        return oom(b, e);
    double *r = c + n, *m = c + 2 * n;
    bnd_center_radius(n, L->lo, L->hi, c, r);
    for (int64_t t = 0; t < n; t++)
        m[t] = fabs(c[t]) + r[t];
    double *xs = i == 0 && b->ext ? b->ext->x_star : NULL;
    if (i == 0 && b->ext && b->ext->A_in)
        memcpy(b->ext->A_in, A, (size_t)(k * n) * sizeof(double));
    for (int64_t q = 0; xs && q < k; q++)
        for (int64_t t = 0; t < n; t++)
            xs[q * n + t] = A[q * n + t] >= 0 ? L->lo[t] : L->hi[t];
    /* n-term sums, their difference, the update of cb */
    double g = bnd_gamma((double)(n + 3));
    for (int64_t q = 0; q < k; q++) {
        const double *a = A + q * n;
        double ac = 0, ar = 0, am = 0;
        for (int64_t t = 0; t < n; t++) {
            ac += a[t] * c[t];
            ar += fabs(a[t]) * r[t];
            am += fabs(a[t]) * m[t];
        }
        b->cb[q] += ac - ar;
        b->er[q] += g * (am + fabs(b->cb[q]));
    }
    free(c);
    return 0;
}

int bnd_backward(bnd_net *net, int start, int64_t k, const double *A0, int stop_at_act,
                 const double *const *alpha, double *lbv, err *e)
{
    return bnd_backward_ext(net, start, k, A0, stop_at_act, alpha, NULL, lbv, e);
}

int bnd_backward_ext(bnd_net *net, int start, int64_t k, const double *A0, int stop_at_act,
                     const double *const *alpha, const bnd_bwd_ext *ext, double *lbv, err *e)
{
    int nl = net->n_layers;
    bwd b = {net, k, NULL, NULL, NULL, alpha, ext};
    b.A = calloc((size_t)nl, sizeof(double *));
    b.cb = calloc((size_t)(k ? k : 1), sizeof(double));
    b.er = calloc((size_t)(k ? k : 1), sizeof(double));
    int rc = 0;
    if (!b.A || !b.cb || !b.er) {
        rc = oom(&b, e);
        goto done;
    }
    size_t ns = (size_t)(k * net->layers[start].size);
    b.A[start] = malloc((ns ? ns : 1) * sizeof(double));
    if (!b.A[start]) {
        rc = oom(&b, e);
        goto done;
    }
    memcpy(b.A[start], A0, ns * sizeof(double));
    for (int i = start; i >= 0 && rc == 0; i--) {
        if (!b.A[i])
            continue;
        if ((rc = bnd_check_deadline(net, e)))
            break;
        bnd_layer_kind kind = net->layers[i].kind;
        if (kind == BND_L_INPUT || (kind == BND_L_ACT && stop_at_act))
            rc = concretize(&b, i, e);
        else if (kind == BND_L_LINEAR)
            rc = back_linear(&b, i, e);
        else
            rc = back_act(&b, i, e);
        free(b.A[i]);
        b.A[i] = NULL;
    }
    /* the final value, less the inflated budget, stepped down: a lower bound */
    for (int64_t q = 0; rc == 0 && q < k; q++) {
        double v = bnd_down(b.cb[q] - bnd_safe(b.er[q]));
        lbv[q] = isnan(v) ? -INFINITY : v;
    }
done:
    if (b.A)
        for (int i = 0; i < nl; i++)
            free(b.A[i]);
    free(b.A), free(b.cb), free(b.er);
    return rc;
}

/* bnd_backward over row blocks small enough that each coefficient matrix
 * stays within BND_MAX_A_ENTRIES doubles (rows are independent). */
int bnd_backward_rows(bnd_net *net, int start, int64_t k, const double *A0, int stop_at_act,
                      double *lbv, err *e)
{
    int64_t widest = 1, n0 = net->layers[start].size;
    for (int i = 0; i <= start; i++)
        if (net->layers[i].size > widest)
            widest = net->layers[i].size;
    int64_t block = BND_MAX_A_ENTRIES / widest;
    if (block < 1)
        block = 1;
    for (int64_t r = 0; r < k; r += block) {
        int64_t kk = k - r < block ? k - r : block;
        int rc = bnd_backward(net, start, kk, A0 + r * n0, stop_at_act, NULL, lbv + r, e);
        if (rc)
            return rc;
    }
    return 0;
}

/* CROWN bounds for the neurons of pre-activation layer i selected by the
 * policy (bnd_interm; rows +e_t and -e_t), replacing or intersecting the
 * current IBP bounds. Rows go in blocks that keep every coefficient matrix
 * within BND_MAX_A_ENTRIES doubles. */
int bnd_crown_refine(bnd_net *net, int i, err *e)
{
    bnd_layer *L = &net->layers[i];
    if (L->kind == BND_L_INPUT)
        return 0;
    int all = net->interm == BND_INTERM_ALL, meet = net->interm == BND_INTERM_BEST;
    int64_t n = L->size, ku = 0, widest = 1;
    for (int64_t t = 0; t < n; t++)
        ku += all || L->preact_rule->unstable(L->lo[t], L->hi[t]);
    if (ku == 0 || ku > net->crown_max_rows)
        return 0; /* policy: too many rows -> keep IBP bounds */
    for (int j = 0; j <= i; j++)
        if (net->layers[j].size > widest)
            widest = net->layers[j].size;
    int64_t block = BND_MAX_A_ENTRIES / (2 * widest);
    if (block < 1)
        block = 1;
    if (block > ku)
        block = ku;
    int64_t *idx = malloc((size_t)ku * sizeof(int64_t));
    double *A0 = malloc((size_t)(2 * block * n) * sizeof(double));
    double *lbv = malloc((size_t)(2 * block) * sizeof(double));
    int rc = 0;
    if (!idx || !A0 || !lbv) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        goto done;
    }
    for (int64_t t = 0, q = 0; t < n; t++)
        if (all || L->preact_rule->unstable(L->lo[t], L->hi[t]))
            idx[q++] = t;
    for (int64_t q0 = 0; q0 < ku && rc == 0; q0 += block) {
        int64_t kb = ku - q0 < block ? ku - q0 : block;
        memset(A0, 0, (size_t)(2 * kb * n) * sizeof(double));
        for (int64_t q = 0; q < kb; q++) {
            A0[q * n + idx[q0 + q]] = 1.0;
            A0[(kb + q) * n + idx[q0 + q]] = -1.0;
        }
        rc = bnd_backward(net, i, 2 * kb, A0, 0, NULL, lbv, e);
        for (int64_t q = 0; rc == 0 && q < kb; q++) {
            int64_t t = idx[q0 + q];
            double l = lbv[q], u = -lbv[kb + q];
            L->lo[t] = meet && L->lo[t] > l ? L->lo[t] : l;
            L->hi[t] = meet && L->hi[t] < u ? L->hi[t] : u;
        }
    }
done:
    free(idx), free(A0), free(lbv);
    return rc;
}
