/* lp.c: LP and MILP over a ReLU network's layers with GLPK, and the
 * rigorous ("safe") lower bound from an LP dual (Neumaier & Shcherbina 2004).
 *
 * Variables: every neuron of every layer (input: the box); a LINEAR layer
 * gives equality rows z_o - sum J x = b_o; an unstable ReLU y = relu(z) with
 * sound pre-activation bounds [l, u] gives y >= 0, y >= z, y <= z - l(1-a),
 * y <= u·a with a in {0,1} (MILP: exact) or a in [0,1] (LP: whose projection
 * is the triangle relaxation); stable or split ReLUs are exact (y = z or
 * y = 0, with z >= 0 / z <= 0 for splits). The bounds [l, u] are those left
 * in the net by the last bound computation over the same region.
 * GLPK works in floating point: its optimum is not a proof. The safe bound
 * takes GLPK's row duals y only as a guess: for any y, with rows
 * rl <= A x <= ru and l <= x <= u, c·x = y·(A x) + (c - A^T y)·x, so
 *     c·x >= sum_i min(y_i rl_i, y_i ru_i) + sum_j min over [l_j, u_j] of r_j x_j,
 * r = c - A^T y, computed with an error bound per entry and the whole sum
 * with an error budget, then stepped down: a valid lower bound whatever y is.
 * The MILP is a test oracle and counterexample generator only. */
#include "internal.h"

#include "../core/clock.h"

#include <glpk.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LP_MAX_DENSE ((int64_t)1 << 22)

typedef struct lp_model {
    glp_prob *P;
    int n_vars;          /* columns (1-based in GLPK) */
    int *col0;           /* first column of each layer */
    /* the rows as a dense copy for the safe bound: row r: ind/val CSR */
    int n_rows, cap_rows;
    int64_t *rp;
    int *ci;
    double *cv, *rl, *ru;
    int64_t nnz, cap_nnz;
    double *xl, *xu;     /* column bounds, 1-based */
} lp_model;

typedef struct {
    int col;
    double val;
} lp_entry;

static int entry_cmp(const void *a, const void *b)
{
    int x = ((const lp_entry *)a)->col, y = ((const lp_entry *)b)->col;
    return (x > y) - (x < y);
}

/* GLPK aborts on a row naming a column twice (a layer reading the same tensor
 * twice, e.g. Add(h, h)): sort the 1-based entries and sum equal columns. */
static int merge_duplicates(int *len, int *ind, double *val)
{
    int n = *len, dup = 0;
    for (int i = 2; i <= n && !dup; i++)
        dup = ind[i] <= ind[i - 1];
    if (!dup)
        return 0;
    lp_entry *t = malloc((size_t)n * sizeof *t);
    if (!t)
        return -1;
    for (int i = 0; i < n; i++)
        t[i].col = ind[i + 1], t[i].val = val[i + 1];
    qsort(t, (size_t)n, sizeof *t, entry_cmp);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k > 0 && ind[k] == t[i].col) {
            val[k] += t[i].val;
        } else {
            k++;
            ind[k] = t[i].col, val[k] = t[i].val;
        }
    }
    free(t);
    *len = k;
    return 0;
}

static int add_row(lp_model *m, int len, int *ind, double *val, double lo, double hi)
{
    if (merge_duplicates(&len, ind, val))
        return -1;
    if (m->n_rows == m->cap_rows) {
        int cap = m->cap_rows ? 2 * m->cap_rows : 64;
        int64_t *rp = realloc(m->rp, (size_t)(cap + 1) * sizeof *rp);
        double *rl = rp ? realloc(m->rl, (size_t)cap * sizeof *rl) : NULL;
        double *ru = rl ? realloc(m->ru, (size_t)cap * sizeof *ru) : NULL;
        if (rp)
            m->rp = rp;
        if (rl)
            m->rl = rl;
        if (!ru)
            return -1;
        m->ru = ru;
        m->cap_rows = cap;
        if (m->n_rows == 0)
            m->rp[0] = 0;
    }
    if (m->nnz + len > m->cap_nnz) {
        int64_t cap = 2 * (m->nnz + len) + 64;
        int *ci = realloc(m->ci, (size_t)cap * sizeof *ci);
        double *cv = ci ? realloc(m->cv, (size_t)cap * sizeof *cv) : NULL;
        if (ci)
            m->ci = ci;
        if (!cv)
            return -1;
        m->cv = cv;
        m->cap_nnz = cap;
    }
    memcpy(m->ci + m->nnz, ind + 1, (size_t)len * sizeof(int));
    memcpy(m->cv + m->nnz, val + 1, (size_t)len * sizeof(double));
    m->nnz += len;
    m->rl[m->n_rows] = lo, m->ru[m->n_rows] = hi;
    m->rp[++m->n_rows] = m->nnz;
    int r = glp_add_rows(m->P, 1);
    int type = lo == hi ? GLP_FX : (isinf(lo) ? GLP_UP : (isinf(hi) ? GLP_LO : GLP_DB));
    glp_set_row_bnds(m->P, r, type, isinf(lo) ? 0 : lo, isinf(hi) ? 0 : hi);
    glp_set_mat_row(m->P, r, len, ind, val);
    return 0;
}

static void set_col(lp_model *m, int j, double lo, double hi)
{
    m->xl[j] = lo, m->xu[j] = hi;
    glp_set_col_bnds(m->P, j, lo == hi ? GLP_FX : GLP_DB, lo, hi);
}

static void model_free(lp_model *m)
{
    if (m->P)
        glp_delete_prob(m->P);
    free(m->col0), free(m->rp), free(m->ci), free(m->cv), free(m->rl), free(m->ru);
    free(m->xl), free(m->xu);
}

/* Build the model of layers 0..last over the net's current bounds, with
 * objective c (over the output layer, n_out) unless c is NULL. */
static int build(bnd_net *net, const int8_t *side, const double *c, int exact, int last,
                 lp_model *m, err *e)
{
    int nl = last + 1;
    memset(m, 0, sizeof *m);
    m->col0 = malloc((size_t)(nl + 1) * sizeof(int));
    if (!m->col0)
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    int64_t nv = 0, nmax = 1;
    for (int i = 0; i < nl; i++) {
        m->col0[i] = (int)nv + 1;
        nv += net->layers[i].size;
        if (net->layers[i].kind == BND_L_ACT)
            nv += net->layers[i].size; /* indicator per neuron */
        if (net->layers[i].size > nmax)
            nmax = net->layers[i].size;
    }
    if (nv > 1000000)
        return err_set(e, ERR_UNSUP, "%s: LP: network too large", net->source);
    m->n_vars = (int)nv;
    m->P = glp_create_prob();
    m->xl = malloc((size_t)(nv + 1) * sizeof(double));
    m->xu = malloc((size_t)(nv + 1) * sizeof(double));
    int *ind = malloc((size_t)(nv + 2) * sizeof(int));
    double *val = malloc((size_t)(nv + 2) * sizeof(double));
    double *I = NULL;
    int rc = 0;
    if (!m->xl || !m->xu || !ind || !val) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        goto out;
    }
    glp_set_obj_dir(m->P, GLP_MIN);
    glp_add_cols(m->P, (int)nv);
    int64_t relu_at = 0;
    for (int i = 0; i < nl && rc == 0; i++) {
        bnd_layer *L = &net->layers[i];
        int c0 = m->col0[i];
        for (int64_t t = 0; t < L->size; t++)
            set_col(m, c0 + (int)t, L->lo[t], L->hi[t]);
        if (L->kind == BND_L_LINEAR) {
            /* dense J_j^T by forward passes of unit vectors */
            for (int j = 0; j < L->n_in && rc == 0; j++) {
                int64_t ni = net->layers[L->in[j]].size;
                if (ni * L->size > LP_MAX_DENSE) {
                    rc = err_set(e, ERR_UNSUP, "%s: LP: layer %d too large", net->source, i);
                    break;
                }
            }
            double **Jt = calloc((size_t)(L->n_in > 0 ? L->n_in : 1), sizeof(double *));
            if (!Jt) {
                rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
                break;
            }
            for (int j = 0; j < L->n_in && rc == 0; j++) {
                int64_t ni = net->layers[L->in[j]].size;
                if (!L->lin[j])
                    continue;
                I = calloc((size_t)(ni * ni), sizeof(double));
                Jt[j] = malloc((size_t)(ni * L->size) * sizeof(double));
                if (!I || !Jt[j]) {
                    rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
                } else {
                    for (int64_t t = 0; t < ni; t++)
                        I[t * ni + t] = 1.0;
                    bnd_lin_forward(L->lin[j], 0, ni, I, Jt[j]); /* row t: J e_t */
                }
                free(I);
                I = NULL;
            }
            for (int64_t o = 0; o < L->size && rc == 0; o++) {
                int len = 0;
                ind[++len] = c0 + (int)o, val[len] = 1.0;
                for (int j = 0; j < L->n_in; j++) {
                    int64_t ni = net->layers[L->in[j]].size;
                    int cj = m->col0[L->in[j]];
                    for (int64_t t = 0; t < ni; t++) {
                        double w = Jt[j] ? Jt[j][t * L->size + o] : (t == o ? 1.0 : 0.0);
                        if (w != 0)
                            ind[++len] = cj + (int)t, val[len] = -w;
                    }
                }
                double b = L->bias ? L->bias[o] : 0.0;
                if (add_row(m, len, ind, val, b, b))
                    rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
            }
            for (int j = 0; j < L->n_in; j++)
                free(Jt[j]);
            free(Jt);
        } else if (L->kind == BND_L_ACT) {
            if (L->act != &bnd_relu_rule) {
                rc = err_set(e, ERR_UNSUP, "%s: LP: nonlinearity %s", net->source, L->act->name);
                break;
            }
            int z0 = m->col0[L->in[0]], a0 = c0 + (int)L->size;
            const bnd_layer *Z = &net->layers[L->in[0]];
            for (int64_t t = 0; t < L->size && rc == 0; t++) {
                double l = Z->lo[t], u = Z->hi[t];
                int s = side ? side[relu_at + t] : 0;
                int zc = z0 + (int)t, yc = c0 + (int)t, ac = a0 + (int)t;
                int on = l >= 0 || s > 0, off = u <= 0 || s < 0;
                if (exact)
                    glp_set_col_kind(m->P, ac, GLP_BV);
                set_col(m, ac, off ? 0 : (on ? 1 : 0), on ? 1 : (off ? 0 : 1));
                set_col(m, yc, 0, u > 0 ? u : 0);
                if (on && off) { /* contradictory: z = 0 = y */
                    set_col(m, zc, fmax(l, 0) > 0 ? l : 0, 0);
                    rc = add_row(m, 1, (int[]){0, yc}, (double[]){0, 1}, 0, 0);
                } else if (on) { /* y = z, z >= 0 */
                    if (s > 0 && l < 0)
                        set_col(m, zc, 0, u);
                    rc = add_row(m, 2, (int[]){0, yc, zc}, (double[]){0, 1, -1}, 0, 0);
                } else if (off) { /* y = 0, z <= 0 */
                    if (s < 0 && u > 0)
                        set_col(m, zc, l, 0);
                    set_col(m, yc, 0, 0);
                } else {
                    /* y >= z;  y - z - l·a <= -l;  y - u·a <= 0 */
                    rc = add_row(m, 2, (int[]){0, yc, zc}, (double[]){0, 1, -1}, 0, INFINITY);
                    if (!rc)
                        rc = add_row(m, 3, (int[]){0, yc, zc, ac}, (double[]){0, 1, -1, -l},
                                     -INFINITY, -l);
                    if (!rc)
                        rc = add_row(m, 2, (int[]){0, yc, ac}, (double[]){0, 1, -u}, -INFINITY, 0);
                }
                if (rc)
                    rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
            }
            relu_at += L->size;
        }
    }
    for (int64_t o = 0; rc == 0 && c && o < net->layers[net->out].size; o++)
        glp_set_obj_coef(m->P, m->col0[net->out] + (int)o, c[o]);
out:
    free(ind), free(val);
    return rc;
}

/* The safe lower bound of min c·x (c over all columns, 1-based) from duals y. */
static double safe_bound(const lp_model *m, const double *cfull, const double *y)
{
    int n = m->n_vars;
    double *r = malloc((size_t)(n + 1) * sizeof(double));
    double *er = calloc((size_t)(n + 1), sizeof(double));
    int64_t *cnt = calloc((size_t)(n + 1), sizeof(int64_t));
    if (!r || !er || !cnt) {
        free(r), free(er), free(cnt);
        return -INFINITY;
    }
    for (int j = 1; j <= n; j++)
        r[j] = cfull[j], er[j] = fabs(cfull[j]);
    double total = 0, budget = 0;
    int64_t terms = 0;
    for (int i = 0; i < m->n_rows; i++) {
        double yi = y[i];
        if (yi == 0)
            continue;
        for (int64_t p = m->rp[i]; p < m->rp[i + 1]; p++) {
            int j = m->ci[p];
            r[j] -= m->cv[p] * yi;
            er[j] += fabs(m->cv[p] * yi);
            cnt[j]++;
        }
        /* y_i·(A x)_i >= y_i·rl_i (y_i > 0) or y_i·ru_i (y_i < 0) */
        double bnd = yi > 0 ? m->rl[i] : m->ru[i];
        if (isinf(bnd)) { /* this dual sign is not usable: drop y_i */
            for (int64_t p = m->rp[i]; p < m->rp[i + 1]; p++) {
                int j = m->ci[p];
                r[j] += m->cv[p] * yi;
                er[j] += fabs(m->cv[p] * yi);
                cnt[j]++;
            }
            continue;
        }
        double t = yi * bnd;
        total += t;
        budget += fabs(t);
        terms++;
    }
    for (int j = 1; j <= n; j++) {
        /* r_j is within g·er_j of the exact c_j - (A^T y)_j, g = gamma_(2 cnt + 2) */
        double ej = bnd_safe(bnd_gamma((double)(2 * cnt[j] + 2)) * er[j]);
        double lo = m->xl[j], hi = m->xu[j];
        /* min over x in [lo, hi] of r x, r in [r_j - ej, r_j + ej] */
        double cands[4] = {(r[j] - ej) * lo, (r[j] - ej) * hi, (r[j] + ej) * lo, (r[j] + ej) * hi};
        double mn = cands[0];
        for (int q = 1; q < 4; q++)
            mn = fmin(mn, cands[q]);
        total += mn;
        budget += fabs(mn);
        terms++;
    }
    free(r), free(er), free(cnt);
    /* products (each one rounding) and a sum of `terms` values */
    double v = bnd_down(total - bnd_safe(bnd_gamma((double)(terms + 2)) * budget));
    return isnan(v) ? -INFINITY : v;
}

int bnd_lp_min(bnd_net *net, const bnd_split *splits, int ns, const double *c, int exact,
               double *value, double *safe, double *x, err *e)
{
    int64_t nr = bnd_relu_count(net);
    int8_t *side = calloc((size_t)(nr ? nr : 1), 1);
    if (!side)
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    for (int q = 0; q < ns; q++)
        if (splits[q].neuron >= 0 && splits[q].neuron < nr)
            side[splits[q].neuron] = (int8_t)(splits[q].side > 0 ? 1 : -1);
    lp_model m;
    int rc = build(net, side, c, exact, net->n_layers - 1, &m, e);
    free(side);
    if (rc) {
        model_free(&m);
        return rc;
    }
    /* the net's deadline as GLPK's time limit (ms): an LP stops in time */
    int tm_lim = INT_MAX;
    if (net->deadline > 0) {
        double left = (net->deadline - clock_now()) * 1000.0;
        if (!(left >= 1)) {
            model_free(&m);
            glp_free_env();
            return err_set(e, ERR_TIMEOUT, "%s: LP: time limit reached", net->source);
        }
        tm_lim = left < INT_MAX ? (int)left : INT_MAX;
    }
    glp_smcp sp;
    glp_init_smcp(&sp);
    sp.msg_lev = GLP_MSG_OFF;
    sp.presolve = GLP_OFF;
    sp.tm_lim = tm_lim;
    int st = glp_simplex(m.P, &sp);
    int status = glp_get_status(m.P);
    if (st == GLP_ETMLIM) {
        rc = err_set(e, ERR_TIMEOUT, "%s: LP: time limit reached", net->source);
    } else if (st == 0 && status == GLP_NOFEAS) {
        rc = 1;
    } else if (st != 0 || status != GLP_OPT) {
        rc = err_set(e, ERR_UNSUP, "%s: LP: GLPK simplex failed (%d, status %d)", net->source, st,
                     status);
    } else if (exact) {
        glp_iocp ip;
        glp_init_iocp(&ip);
        ip.msg_lev = GLP_MSG_OFF;
        if (net->deadline > 0) {
            double left = (net->deadline - clock_now()) * 1000.0;
            ip.tm_lim = left >= 1 ? (left < INT_MAX ? (int)left : INT_MAX) : 1;
        }
        st = glp_intopt(m.P, &ip);
        status = glp_mip_status(m.P);
        if (st == GLP_ETMLIM)
            rc = err_set(e, ERR_TIMEOUT, "%s: MILP: time limit reached", net->source);
        else if (st == 0 && status == GLP_NOFEAS)
            rc = 1;
        else if (st != 0 || status != GLP_OPT)
            rc = err_set(e, ERR_UNSUP, "%s: MILP: GLPK intopt failed (%d, status %d)", net->source,
                         st, status);
        else {
            *value = glp_mip_obj_val(m.P);
            for (int64_t t = 0; x && t < net->layers[0].size; t++)
                x[t] = glp_mip_col_val(m.P, m.col0[0] + (int)t);
        }
    } else {
        *value = glp_get_obj_val(m.P);
        for (int64_t t = 0; x && t < net->layers[0].size; t++)
            x[t] = glp_get_col_prim(m.P, m.col0[0] + (int)t);
        if (safe) {
            double *y = malloc((size_t)(m.n_rows + 1) * sizeof(double));
            double *cf = calloc((size_t)(m.n_vars + 1), sizeof(double));
            if (!y || !cf) {
                rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
            } else {
                for (int i = 0; i < m.n_rows; i++)
                    y[i] = glp_get_row_dual(m.P, i + 1);
                for (int64_t o = 0; o < net->layers[net->out].size; o++)
                    cf[m.col0[net->out] + o] = c[o];
                *safe = safe_bound(&m, cf, y);
            }
            free(y), free(cf);
        }
    }
    if (rc == 1) {
        *value = INFINITY;
        if (safe)
            *safe = -INFINITY; /* GLPK's word only: no certificate, no claim */
    }
    model_free(&m);
    glp_free_env(); /* GLPK's per-thread environment (workers are threads) */
    return rc;
}

/* GLPK's time limit (ms) until deadline (0: none); 0 if it has passed. */
static int ms_until(double deadline)
{
    if (deadline <= 0)
        return INT_MAX;
    double left = (deadline - clock_now()) * 1000.0;
    return left >= 1 ? (left < INT_MAX ? (int)left : INT_MAX) : 0;
}

int bnd_lp_refine(bnd_net *net, const int8_t *side, int relu_layer, const int64_t *idx, int64_t n,
                  double deadline, int64_t *n_done, err *e)
{
    *n_done = 0;
    int li = -1;
    for (int i = 0, c = 0; i < net->n_layers && li < 0; i++)
        if (net->layers[i].kind == BND_L_ACT && net->layers[i].act == &bnd_relu_rule && c++ == relu_layer)
            li = net->layers[i].in[0];
    if (li <= 0 || n <= 0)
        return 0;
    if (net->deadline > 0 && (deadline <= 0 || net->deadline < deadline))
        deadline = net->deadline;
    bnd_layer *L = &net->layers[li];
    lp_model m;
    int rc = build(net, side, NULL, 0, li, &m, e);
    double *y = NULL, *cf = NULL;
    if (rc)
        goto out;
    y = malloc((size_t)(m.n_rows + 1) * sizeof(double));
    cf = calloc((size_t)(m.n_vars + 1), sizeof(double));
    if (!y || !cf) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        goto out;
    }
    glp_smcp sp;
    glp_init_smcp(&sp);
    sp.msg_lev = GLP_MSG_OFF;
    sp.presolve = GLP_OFF; /* keeps the basis: each solve starts from the last one */
    int prev = 0;
    for (int64_t q = 0; q < n; q++) {
        int64_t t = idx[q];
        if (t < 0 || t >= L->size || !(L->lo[t] < 0 && L->hi[t] > 0))
            continue;
        int col = m.col0[li] + (int)t;
        /* sign +1: min z_t (new lower bound); -1: min -z_t (new upper bound) */
        for (int sg = 1; sg >= -1; sg -= 2) {
            if (!(L->lo[t] < 0 && L->hi[t] > 0))
                break; /* already stable */
            sp.tm_lim = ms_until(deadline);
            if (sp.tm_lim == 0)
                goto out;
            if (prev)
                glp_set_obj_coef(m.P, prev, 0.0);
            glp_set_obj_coef(m.P, col, (double)sg);
            prev = col;
            int st = glp_simplex(m.P, &sp);
            if (st == GLP_ETMLIM)
                goto out;
            if (st != 0 || glp_get_status(m.P) != GLP_OPT) {
                /* no certificate; a fresh basis for the next solve */
                glp_std_basis(m.P);
                continue;
            }
            for (int i = 0; i < m.n_rows; i++)
                y[i] = glp_get_row_dual(m.P, i + 1);
            cf[col] = (double)sg;
            double v = safe_bound(&m, cf, y); /* v <= min sg·z_t: never GLPK's value */
            cf[col] = 0;
            if (sg > 0 && v > L->lo[t])
                L->lo[t] = v;
            else if (sg < 0 && -v < L->hi[t])
                L->hi[t] = -v;
        }
        (*n_done)++;
    }
out:
    L->mz_ok = 0;
    L->errw_ok = 0;
    free(y), free(cf);
    model_free(&m);
    glp_free_env();
    return rc;
}
