/* tau_opt.c: alpha-CROWN for smooth activations (Sigmoid, Tanh, Sin, GeLU...).
 *
 * Each smooth neuron's lower and upper lines touch the convex / concave
 * envelope of f over its input interval at a free point p = l + tau (u - l)
 * (nonlin.h); every tau in [0, 1] gives valid lines, so every choice gives a
 * sound bound, and each objective row may use its own. For fixed lines the
 * row's bound is the value of the linearised network at the relaxed
 * minimiser x* (a box corner), so its derivative by a neuron's tau is
 * A_j (dw z_j + db), with A_j the row's coefficient at the neuron's output,
 * z_j its pre-activation in the linearised network at x*, and (dw, db) the
 * derivative of the line used (lower where A_j >= 0). The first round moves
 * every tangent point to z_j (where the line's value at x* is largest for a
 * convex piece); later rounds are projected Adam steps. Each row keeps its
 * best bound over the rounds, so the result is never looser than the
 * default lines', whatever the steps do. ReLU-like layers keep their lines
 * (their alpha is beta.c's). */
#include "internal.h"

#include "nonlin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_smooth(const bnd_layer *L)
{
    if (L->kind != BND_L_ACT || L->act == &bnd_relu_rule)
        return 0;
    int kind = L->act->kind;
    return kind != BND_NL_RELU && kind != BND_NL_LEAKYRELU && kind != BND_NL_ABS;
}

int bnd_has_smooth_before(const bnd_net *n, int start)
{
    for (int i = 0; i < start; i++)
        if (is_smooth(&n->layers[i]))
            return 1;
    return 0;
}

/* Values of layers 0..last of the linearised network with row r's lines
 * (per-row ones where given; the lower line where sel is 1) at x. */
static void linear_forward(bnd_net *net, int last, uint8_t *const *sel, const bnd_row_lines *rows,
                           int64_t r, const double *x, double **val, double *tmp)
{
    memcpy(val[0], x, (size_t)net->layers[0].size * sizeof(double));
    for (int i = 1; i <= last; i++) {
        const bnd_layer *L = &net->layers[i];
        int64_t n = L->size;
        double *y = val[i];
        if (L->kind == BND_L_LINEAR) {
            for (int64_t o = 0; o < n; o++)
                y[o] = L->bias ? L->bias[o] : 0.0;
            for (int j = 0; j < L->n_in; j++) {
                const double *xj = val[L->in[j]];
                if (L->lin[j])
                    bnd_lin_forward(L->lin[j], 0, 1, xj, tmp);
                for (int64_t o = 0; o < n; o++)
                    y[o] += L->lin[j] ? tmp[o] : xj[o];
            }
        } else if (L->kind == BND_L_ACT) {
            const double *z = val[L->in[0]];
            const uint8_t *s = sel[i] ? sel[i] + r * n : NULL;
            const bnd_row_lines *rl = rows && rows[i].lw ? &rows[i] : NULL;
            const double *lw = rl ? rl->lw + r * n : L->lw, *lb = rl ? rl->lb + r * n : L->lb;
            const double *uw = rl ? rl->uw + r * n : L->uw, *ub = rl ? rl->ub + r * n : L->ub;
            for (int64_t t = 0; t < n; t++)
                y[t] = !s || s[t] ? lw[t] * z[t] + lb[t] : uw[t] * z[t] + ub[t];
        }
    }
}

/* Per smooth layer state (k x size each). */
typedef struct {
    double *tl, *tu;              /* tangent parameters */
    double *ml, *vl, *mu, *vu;    /* Adam moments */
    double *dw, *db;              /* derivative by tau of the line last computed */
    uint8_t *dside;               /* its side: 1 lower, 2 upper, 0 none known */
    char *prep;                   /* per neuron: bnd_nl_prep, the interval's part */
    size_t psz;                   /* bytes per bnd_nl_prep */
} tau_layer;

static bnd_nl_prep *prep_of(const tau_layer *T, int64_t t)
{
    return (bnd_nl_prep *)(void *)(T->prep + (size_t)t * T->psz);
}

/* Row q's line of smooth layer i on the side it uses (low: the lower one) at
 * its current tau; the layer's line where that fails, the interval where a
 * line is missing. The other side keeps its line, which stays valid: the
 * input interval is fixed during the rounds. */
static void row_relax(const bnd_layer *L, const tau_layer *T,
                      const bnd_row_lines *rl, int64_t q, int64_t t, int low)
{
    int64_t at = q * L->size + t;
    double w, b;
    T->dside[at] = 0;
    if (bnd_nl_relax_line_prep(prep_of(T, t), low ? T->tl[at] : T->tu[at], !low, &w, &b,
                               &T->dw[at], &T->db[at])) {
        w = low ? L->lw[t] : L->uw[t];
        b = low ? L->lb[t] : L->ub[t];
    } else if (isfinite(T->dw[at]) && isfinite(T->db[at])) {
        T->dside[at] = low ? 1 : 2;
    }
    if (!isfinite(w) || !isfinite(b))
        w = 0, b = low ? L->lo[t] : L->hi[t];
    if (low)
        rl->lw[at] = w, rl->lb[at] = b;
    else
        rl->uw[at] = w, rl->ub[at] = b;
}

static double clamp01(double v)
{
    return v < 0 ? 0 : (v > 1 ? 1 : (v >= 0 ? v : 0.5));
}

/* One round for row q: move the taus of every smooth neuron the row uses. */
static void step_row(bnd_net *net, int start, int64_t q, int round, int t_adam, double lr,
                     tau_layer *T, bnd_row_lines *rows, uint8_t **sel, double **A, double **val)
{
    const double b1 = 0.9, b2 = 0.999;
    double c1 = 1 - pow(b1, t_adam), c2 = 1 - pow(b2, t_adam);
    for (int i = 0; i < start; i++) {
        const bnd_layer *L = &net->layers[i];
        if (!rows[i].lw)
            continue;
        const bnd_layer *X = &net->layers[L->in[0]];
        const double *z = val[L->in[0]];
        tau_layer *S = &T[i];
        int64_t n = L->size;
        for (int64_t t = 0; t < n; t++) {
            int64_t at = q * n + t;
            double a = A[i][at], l = X->lo[t], u = X->hi[t];
            if (a == 0 || !(l < u))
                continue;
            int low = sel[i][at];
            if (round == 0) {
                /* tangent at the minimiser's pre-activation */
                double f = clamp01((z[t] - l) / (u - l));
                if (low)
                    S->tl[at] = f;
                else
                    S->tu[at] = f;
            } else {
                /* the line's derivative, kept from its last computation
                 * where known in closed form; else a one-sided difference
                 * against its current coefficients */
                double g;
                if (S->dside[at] == (low ? 1 : 2)) {
                    g = a * (S->dw[at] * z[t] + S->db[at]);
                } else {
                    const double h = 1e-4;
                    double tau0 = low ? S->tl[at] : S->tu[at];
                    double dh = tau0 + h <= 1 ? h : -h;
                    double w, b;
                    if (bnd_nl_relax_line_prep(prep_of(S, t), tau0 + dh, !low, &w, &b, NULL,
                                               NULL))
                        continue;
                    const bnd_row_lines *R = &rows[i];
                    g = low ? a * ((w - R->lw[at]) * z[t] + b - R->lb[at])
                            : a * ((w - R->uw[at]) * z[t] + b - R->ub[at]);
                    g /= dh;
                }
                if (!isfinite(g))
                    continue;
                double *tau = low ? S->tl : S->tu, *m = low ? S->ml : S->mu, *v = low ? S->vl : S->vu;
                m[at] = b1 * m[at] + (1 - b1) * g;
                v[at] = b2 * v[at] + (1 - b2) * g * g;
                tau[at] = clamp01(tau[at] + lr * (m[at] / c1) / (sqrt(v[at] / c2) + 1e-12));
            }
            row_relax(L, S, &rows[i], q, t, low);
        }
    }
}

/* The interval's part of every neuron's lines in smooth layer L (input X),
 * kept in L with the interval it was made for: a pure function of the
 * interval, so only neurons whose interval changed (bit for bit) are made
 * again (docs/soundness.md §15). 0 or -1 (out of memory). */
static int layer_preps(bnd_layer *L, const bnd_layer *X, size_t psz)
{
    if (!L->prep) {
        L->prep = malloc((size_t)L->size * psz);
        L->pl = malloc((size_t)L->size * sizeof(double));
        L->pu = malloc((size_t)L->size * sizeof(double));
        if (!L->prep || !L->pl || !L->pu) {
            free(L->prep), free(L->pl), free(L->pu);
            L->prep = NULL, L->pl = L->pu = NULL;
            return -1;
        }
        L->prepped = 0;
    }
    for (int64_t t = 0; t < L->size; t++) {
        if (L->prepped && bnd_same_bits(X->lo[t], L->pl[t]) && bnd_same_bits(X->hi[t], L->pu[t]))
            continue;
        if (X->lo[t] < X->hi[t])
            bnd_nl_prep_make((bnd_nl_kind)L->act->kind, L->act_param, X->lo[t], X->hi[t],
                             (bnd_nl_prep *)(void *)(L->prep + (size_t)t * psz));
        L->pl[t] = X->lo[t], L->pu[t] = X->hi[t];
    }
    L->prepped = 1;
    return 0;
}

int bnd_tau_backward(bnd_net *net, int start, int64_t k, const double *C, int iters, double *lb,
                     const double *stop, double **A_act_out, double *A_in_out,
                     double *const *z_out, err *e)
{
    int nl = net->n_layers, rc = 0;
    int64_t n_in = net->layers[0].size, widest = 1;
    if (k <= 0)
        return 0;
    if (!bnd_has_smooth_before(net, start))
        iters = 0;
    if (iters == 0 && !A_act_out && !A_in_out && !z_out) /* plain CROWN */
        return bnd_backward(net, start, k, C, 0, NULL, lb, e);
    int need = iters > 0 || z_out;
    for (int i = 0; i <= start; i++)
        widest = net->layers[i].size > widest ? net->layers[i].size : widest;
    /* per layer: the lines chosen, ACT coefficients, values, row lines, taus */
    uint8_t **sel = calloc((size_t)nl, sizeof(uint8_t *));
    double **A = calloc((size_t)nl, sizeof(double *));
    double **val = calloc((size_t)nl, sizeof(double *));
    bnd_row_lines *rows = calloc((size_t)nl, sizeof(bnd_row_lines));
    tau_layer *T = calloc((size_t)nl, sizeof(tau_layer));
    double *xs = malloc((size_t)(k * n_in) * sizeof(double));
    double *ain = A_in_out ? malloc((size_t)(k * n_in) * sizeof(double)) : NULL;
    double *lbv = malloc((size_t)(k ? k : 1) * sizeof(double));
    double *tmp = malloc((size_t)widest * sizeof(double));
    int ok = sel && A && val && rows && T && xs && (ain || !A_in_out) && lbv && tmp;
    for (int i = 0; ok && i < start; i++) {
        const bnd_layer *L = &net->layers[i];
        size_t kn = (size_t)k * (size_t)L->size;
        if (need)
            ok = (val[i] = malloc((size_t)L->size * sizeof(double))) != NULL;
        if (ok && L->kind == BND_L_ACT)
            ok = (sel[i] = malloc(kn)) && (A[i] = malloc(kn * sizeof(double)));
        if (ok && iters > 0 && is_smooth(L)) {
            double *blk = malloc(12 * kn * sizeof(double) + kn);
            if (!(ok = blk != NULL))
                break;
            rows[i] = (bnd_row_lines){blk, blk + kn, blk + 2 * kn, blk + 3 * kn};
            T[i] = (tau_layer){blk + 4 * kn,  blk + 5 * kn,  blk + 6 * kn,
                               blk + 7 * kn,  blk + 8 * kn,  blk + 9 * kn,
                               blk + 10 * kn, blk + 11 * kn, (uint8_t *)(blk + 12 * kn), NULL, 0};
            memset(T[i].dside, 0, kn);
            /* the interval's part of every neuron's lines, once: the
             * intervals stay fixed during the rounds */
            T[i].psz = bnd_nl_prep_size();
            if (!(ok = layer_preps(&net->layers[i], &net->layers[L->in[0]], T[i].psz) == 0))
                break;
            T[i].prep = net->layers[i].prep; /* the layer's: not freed here */
            for (size_t q = 0; q < kn; q++) {
                size_t t = q % (size_t)L->size;
                rows[i].lw[q] = L->lw[t], rows[i].lb[q] = L->lb[t];
                rows[i].uw[q] = L->uw[t], rows[i].ub[q] = L->ub[t];
                T[i].tl[q] = T[i].tu[q] = 0.5;
                T[i].ml[q] = T[i].vl[q] = T[i].mu[q] = T[i].vu[q] = 0;
            }
        }
    }
    if (ok && need)
        ok = (val[start] = malloc((size_t)net->layers[start].size * sizeof(double))) != NULL;
    if (!ok) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        goto done;
    }
    double lr = 0.2; /* of the unit interval, x0.7 per round (docs/genbab.md) */
    for (int it = 0; it <= iters && rc == 0; it++) {
        bnd_bwd_ext ext = {.sel = sel, .A_act = A, .x_star = xs, .A_in = ain,
                           .rows = it > 0 ? rows : NULL};
        rc = bnd_backward_ext(net, start, k, C, 0, NULL, &ext, lbv, e);
        if (rc)
            break;
        int best = 0, done = it == iters;
        for (int64_t q = 0; q < k; q++) {
            if (lbv[q] > lbv[best])
                best = (int)q;
            if (stop && lbv[q] > stop[q])
                done = 1; /* a row refutes: more rounds cannot matter */
            if (it > 0 && !(lbv[q] > lb[q]))
                continue;
            lb[q] = lbv[q];
            if (A_in_out)
                memcpy(A_in_out + q * n_in, ain + q * n_in, (size_t)n_in * sizeof(double));
            for (int i = 0; A_act_out && i < start; i++)
                if (A_act_out[i] && A[i])
                    memcpy(A_act_out[i] + q * net->layers[i].size, A[i] + q * net->layers[i].size,
                           (size_t)net->layers[i].size * sizeof(double));
        }
        if (done) {
            if (z_out) {
                linear_forward(net, start, sel, it > 0 ? rows : NULL, best, xs + best * n_in, val,
                               tmp);
                for (int i = 0; i < start; i++)
                    if (z_out[i] && net->layers[i].kind == BND_L_ACT)
                        memcpy(z_out[i], val[net->layers[i].in[0]],
                               (size_t)net->layers[i].size * sizeof(double));
            }
            break;
        }
        for (int64_t q = 0; q < k; q++) {
            linear_forward(net, start, sel, it > 0 ? rows : NULL, q, xs + q * n_in, val, tmp);
            step_row(net, start, q, it, it, lr, T, rows, sel, A, val);
        }
        lr *= 0.7;
    }
done:
    for (int i = 0; i < nl; i++) {
        if (sel)
            free(sel[i]);
        if (A)
            free(A[i]);
        if (val)
            free(val[i]);
        if (rows)
            free(rows[i].lw);
    }
    free(sel), free(A), free(val), free(rows), free(T), free(xs), free(ain), free(lbv), free(tmp);
    return rc;
}

int bnd_tau_refine(bnd_net *net, int i, const int64_t *idx, int64_t m, int iters, err *e)
{
    bnd_layer *L = &net->layers[i];
    int64_t n = L->size, per_row = n;
    if (m == 0)
        return 0;
    /* rows go in blocks: the optimiser keeps ~12 values per row and earlier
     * ACT neuron, the backward pass a row per layer */
    for (int j = 0; j < i; j++)
        per_row += (net->layers[j].kind == BND_L_ACT ? 12 : 1) * net->layers[j].size;
    int64_t block = BND_MAX_A_ENTRIES / (2 * per_row);
    block = block < 1 ? 1 : (block > m ? m : block);
    double *A0 = malloc((size_t)(2 * block * n) * sizeof(double));
    double *lbv = malloc((size_t)(2 * block) * sizeof(double));
    int rc = 0;
    if (!A0 || !lbv)
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    for (int64_t q0 = 0; rc == 0 && q0 < m; q0 += block) {
        int64_t b = m - q0 < block ? m - q0 : block;
        memset(A0, 0, (size_t)(2 * b * n) * sizeof(double));
        for (int64_t q = 0; q < b; q++) {
            A0[q * n + idx[q0 + q]] = 1.0;
            A0[(b + q) * n + idx[q0 + q]] = -1.0;
        }
        rc = bnd_tau_backward(net, i, 2 * b, A0, iters, lbv, NULL, NULL, NULL, NULL, e);
        for (int64_t q = 0; rc == 0 && q < b; q++) {
            int64_t t = idx[q0 + q];
            L->lo[t] = fmax(L->lo[t], lbv[q]);
            L->hi[t] = fmin(L->hi[t], -lbv[b + q]);
        }
    }
    L->mz_ok = 0;
    free(A0), free(lbv);
    return rc;
}
