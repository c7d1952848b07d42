/* act_split.c: bounds over a domain of general nonlinear splits (GenBaB).
 *
 * Key idea: a domain is the input box plus, for every neuron of every ACT
 * layer, an interval [plo, phi] its pre-activation is known (or assumed, by
 * a split) to lie in. The forward sweep intersects each pre-activation
 * layer's IBP/CROWN bounds with these intervals, so every relaxation after it
 * is taken over the narrower interval: the bounds hold for every input of the
 * box whose exact pre-activations lie in the domain's intervals. Splitting a
 * neuron's interval at any point p gives two domains whose union is the
 * parent, so proving both proves the parent. An empty intersection proves the
 * domain outright. The parent's final intervals are valid for its children,
 * so layers up to the first changed neuron keep them without CROWN. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t bnd_act_count(const bnd_net *n)
{
    int64_t c = 0;
    for (int i = 0; i < n->n_layers; i++)
        if (n->layers[i].kind == BND_L_ACT)
            c += n->layers[i].size;
    return c;
}

void bnd_act_kinds(const bnd_net *n, int *kind, double *param)
{
    int64_t at = 0;
    for (int i = 0; i < n->n_layers; i++) {
        const bnd_layer *L = &n->layers[i];
        if (L->kind != BND_L_ACT)
            continue;
        for (int64_t t = 0; t < L->size; t++, at++) {
            if (kind)
                kind[at] = L->act->kind;
            if (param)
                param[at] = L->act_param;
        }
    }
}

/* Intersect pre-activation layer i with the domain's intervals of every ACT
 * layer reading it; 1 if some interval becomes empty. */
static int clip_preact(bnd_net *net, int i, const int64_t *start, const double *plo,
                       const double *phi)
{
    bnd_layer *P = &net->layers[i];
    for (int j = i + 1; j < net->n_layers; j++) {
        const bnd_layer *A = &net->layers[j];
        if (A->kind != BND_L_ACT || A->in[0] != i)
            continue;
        const double *l = plo + start[j], *h = phi + start[j];
        for (int64_t t = 0; t < P->size; t++) {
            double lo = fmax(P->lo[t], l[t]), hi = fmin(P->hi[t], h[t]);
            if (!(lo <= hi))
                return 1;
            P->lo[t] = lo, P->hi[t] = hi;
        }
    }
    P->mz_ok = 0;
    return 0;
}

/* The final backward pass with per-row tangent points (tau_opt.c); A_out,
 * z_out and Ain_out are flat over the ACT neurons / inputs. */
static int final_pass(bnd_net *net, const int64_t *start, int64_t n_act, const double *C, int k,
                      int iters, double *lb, double **A_act, double *A_out, double *z_out,
                      double *Ain_out, err *e)
{
    int nl = net->n_layers;
    double **zl = z_out ? calloc((size_t)nl, sizeof(double *)) : NULL;
    if (z_out && !zl)
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    for (int i = 0; zl && i < nl; i++)
        if (net->layers[i].kind == BND_L_ACT)
            zl[i] = z_out + start[i];
    int rc = bnd_tau_backward(net, net->out, k, C, iters, lb, net->tau_stop, A_out ? A_act : NULL,
                              Ain_out, zl, e);
    for (int q = 0; rc == 0 && A_out && q < k; q++)
        for (int i = 0; i < nl; i++)
            if (A_act[i])
                memcpy(A_out + (size_t)q * (size_t)n_act + start[i],
                       A_act[i] + (size_t)q * (size_t)net->layers[i].size,
                       (size_t)net->layers[i].size * sizeof(double));
    free(zl);
    return rc;
}

/* For each input whose interval has width w > 0 (at most 64 of them),
 * gain = |a|·w/4 with a the best row's final coefficient of that input (the
 * bound is linear in the box centre with slope a): what halving the interval
 * removes from the bound's -|a|·w/2 term. */
static void input_gains(const bnd_net *net, int k, const double *lb, const double *A_in,
                        double *gain)
{
    const bnd_layer *L0 = &net->layers[0];
    int64_t n = L0->size, moving = 0;
    for (int64_t t = 0; t < n; t++) {
        gain[t] = 0;
        moving += L0->hi[t] > L0->lo[t];
    }
    if (moving > 64)
        return;
    int r = 0;
    for (int q = 1; q < k; q++)
        if (lb[q] > lb[r])
            r = q;
    for (int64_t t = 0; t < n; t++) {
        double w = L0->hi[t] - L0->lo[t], a = A_in[(size_t)r * (size_t)n + (size_t)t];
        gain[t] = w > 0 && isfinite(a) ? fabs(a) * w / 4 : 0;
    }
}

/* CROWN bounds (rows +e_t, -e_t; alpha-CROWN rounds for smooth layers before
 * it when the net asks for them) for the neurons of pre-activation layer i
 * whose ACT neuron is marked in `refine` (all when NULL) and that its rule
 * calls unstable, intersected with the current bounds; the others keep them
 * (IBP, clipped by the domain later). */
static int refine_some(bnd_net *net, int i, const int64_t *start, const unsigned char *refine,
                       err *e)
{
    bnd_layer *L = &net->layers[i];
    int64_t n = L->size, ku = 0;
    const unsigned char *mark = NULL;
    for (int j = i + 1; refine && j < net->n_layers && !mark; j++)
        if (net->layers[j].kind == BND_L_ACT && net->layers[j].in[0] == i)
            mark = refine + start[j];
    int tau = net->tau_interm > 0 && bnd_has_smooth_before(net, i);
    if (!mark && !tau)
        return bnd_crown_refine(net, i, e);
    for (int64_t t = 0; t < n; t++)
        ku += (!mark || mark[t]) && L->preact_rule->unstable(L->lo[t], L->hi[t]);
    if (ku == 0)
        return 0;
    if (ku > net->crown_max_rows || 2 * ku * n > BND_MAX_A_ENTRIES)
        return bnd_crown_refine(net, i, e);
    int64_t *idx = malloc((size_t)ku * sizeof(int64_t));
    if (!idx)
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    for (int64_t t = 0, q = 0; t < n; t++)
        if ((!mark || mark[t]) && L->preact_rule->unstable(L->lo[t], L->hi[t]))
            idx[q++] = t;
    /* 0 rounds: plain CROWN rows */
    int rc = bnd_tau_refine(net, i, idx, ku, tau ? net->tau_interm : 0, e);
    free(idx);
    return rc;
}

int bnd_split_bound(bnd_net *net, const double *lo, const double *hi, const double *plo,
                    const double *phi, const unsigned char *refine, int64_t changed,
                    const double *C, int k, int tau_iters, double *lb, double *plo_out,
                    double *phi_out, double *A_out, double *z_out, double *gain_in, err *e)
{
    int nl = net->n_layers;
    int64_t *start = calloc((size_t)nl, sizeof(int64_t));
    double **A_act = calloc((size_t)nl, sizeof(double *));
    double *A_in = NULL;
    int rc = 0;
    if (!start || !A_act) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        goto done;
    }
    int64_t at = 0;
    for (int i = 0; i < nl; i++)
        if (net->layers[i].kind == BND_L_ACT) {
            start[i] = at;
            at += net->layers[i].size;
        }
    /* the ACT layer holding neuron `changed`: CROWN intermediate bounds for
     * the layers after it; up to it the domain's (parent's) intervals stand */
    int first = plo && changed >= 0 ? nl : 0;
    for (int i = 0; plo && i < nl; i++)
        if (net->layers[i].kind == BND_L_ACT && changed >= start[i] &&
            changed < start[i] + net->layers[i].size) {
            first = i + 1; /* its own input keeps the parent's bounds, clipped */
            break;
        }
    bnd_layer *L0 = &net->layers[0];
    memcpy(L0->lo, lo, (size_t)L0->size * sizeof(double));
    memcpy(L0->hi, hi, (size_t)L0->size * sizeof(double));
    for (int i = 0; i < nl; i++)
        net->layers[i].mz_ok = net->layers[i].errw_ok = 0;
    int empty = 0;
    for (int i = 1; i < nl && rc == 0 && !empty; i++) {
        bnd_layer *L = &net->layers[i];
        rc = bnd_ibp_layer(net, i, e);
        if (rc == 0 && L->is_preact && !L->ibp_exact && i >= first)
            rc = refine || net->tau_interm > 0 ? refine_some(net, i, start, refine, e)
                                               : bnd_crown_refine(net, i, e);
        if (rc == 0 && L->is_preact && plo)
            empty = clip_preact(net, i, start, plo, phi);
        if (rc == 0 && !empty && L->kind == BND_L_ACT) {
            rc = bnd_ibp_layer(net, i, e); /* the interval of the clipped input */
            if (rc == 0)
                rc = bnd_act_relax(net, i, e);
        }
    }
    if (rc)
        goto done;
    if (empty) {
        for (int q = 0; q < k; q++)
            lb[q] = INFINITY;
        rc = 1;
        goto done;
    }
    for (int i = 0; i < nl; i++) {
        const bnd_layer *L = &net->layers[i];
        if (L->kind != BND_L_ACT)
            continue;
        const bnd_layer *P = &net->layers[L->in[0]];
        if (plo_out)
            memcpy(plo_out + start[i], P->lo, (size_t)L->size * sizeof(double));
        if (phi_out)
            memcpy(phi_out + start[i], P->hi, (size_t)L->size * sizeof(double));
        if (A_out && !(A_act[i] = calloc((size_t)k * (size_t)L->size, sizeof(double)))) {
            rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
            goto done;
        }
    }
    if (gain_in && !(A_in = malloc((size_t)k * (size_t)L0->size * sizeof(double)))) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        goto done;
    }
    rc = final_pass(net, start, at, C, k, tau_iters, lb, A_act, A_out, z_out, A_in, e);
    if (rc == 0 && gain_in)
        input_gains(net, k, lb, A_in, gain_in);
done:
    free(A_in);
    for (int i = 0; A_act && i < nl; i++)
        free(A_act[i]);
    free(A_act);
    free(start);
    return rc;
}
