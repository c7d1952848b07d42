/* exact_box.c: refute a small input box by splitting its few unstable ReLUs.
 *
 * Deep in an input split the boxes that stay open often have only a few
 * unstable ReLUs left (ACAS Xu 3_3 prop_2: most of them 1 to 7), yet CROWN's
 * triangle relaxation of those few is still too loose for a margin of 1e-3,
 * and halving the box shrinks that looseness only slowly. Fixing a neuron's
 * phase instead makes its relaxation exact on the part of the box where that
 * phase holds. A small search inside the box does this, level by level:
 *
 * 1. A node is a set of fixed neurons: its record's intervals are clipped at
 *    0 (active: lower bound 0, inactive: upper bound 0) and the clause rows
 *    are bounded with them (bnd_mlp_bound_patterns, a whole level in one
 *    batch). The bounds hold where the node's phases hold, which is all a
 *    node has to cover; a child starts from its parent's tightened record.
 * 2. The phases are linear constraints on x: an active neuron has z >= 0, so
 *    the node's lower line of -z is <= 0 there; an inactive one z <= 0, so
 *    the lower line of z is <= 0 (the pattern pass refines those lines with
 *    the earlier fixed neurons exact).
 * 3. A counterexample of a clause would need every row's lower line <= d and
 *    every constraint line <= 0. The box is cut by those lines (shrink.c);
 *    then an LP over the cut box (max t with every line + t <= its bound)
 *    either finds them jointly satisfiable or gives multipliers lambda >= 0
 *    whose combination of the lines is > 0 on the whole cut box. That
 *    inequality is checked again with outward rounding, so GLPK's floating
 *    point only proposes the multipliers and never decides.
 * 4. A node whose intervals cross (lower > upper) holds nowhere. A node not
 *    refuted splits its first unstable neuron (earliest layer first, so the
 *    later constraint lines are computed with the earlier phases exact).
 *
 * The box is refuted when every leaf is; a node with no unstable neuron left
 * that is not refuted, or a search past its node budget, gives up (the input
 * split goes on). */
#include "exact_box.h"

#include "../core/fpstep.h"
#include "shrink.h"

#include <glpk.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH BAB_EXACT_MAX

struct bab_exact {
    const bnd_mlp *m;
    const spec_clause *bc;
    const int *cl_first;
    int n_cls, kmax, k, budget;
    int64_t n0, npi, np;
    /* a level of nodes (up to cap): the box, the records in and out, the
     * fixed neurons (index, phase), row bounds and lines */
    int64_t cap;
    double *blo, *bhi, *rin, *rout, *lb, *A;
    int64_t *fix;             /* cap x MAX_DEPTH: neuron index * 2 + active */
    int *depth;
    double *nrec;             /* the next level's records */
    int64_t *nfix;
    int *ndepth;
    /* one clause's lines for the cut and the LP: (v, a) over the box, d */
    double *lv, *la, *ld, *lam, *clo, *chi;
    int *ind;
    double *val;
    glp_prob *P;
    int64_t tried, refuted, patterns, lps;
};

bab_exact *bab_exact_new(const bnd_mlp *m, const spec_clause *bc, const int *cl_first,
                         int n_cls, int kmax)
{
    if (kmax < 0 || kmax > MAX_DEPTH)
        return NULL;
    bab_exact *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    int64_t n0 = bnd_mlp_n_in(m), k = bc->n_rows;
    x->m = m, x->bc = bc, x->cl_first = cl_first;
    x->n_cls = n_cls, x->kmax = kmax, x->k = bc->n_rows;
    x->budget = 4 * kmax + 4; /* nodes per box */
    x->cap = 2 * (int64_t)x->budget + 2;
    x->n0 = n0, x->npi = bnd_mlp_n_pre(m), x->np = x->npi + bnd_mlp_n_fn(m);
    int64_t C = x->cap, rows = k + MAX_DEPTH; /* a clause's rows and the constraints */
    x->blo = malloc((size_t)(C * n0) * sizeof(double));
    x->bhi = malloc((size_t)(C * n0) * sizeof(double));
    x->rin = malloc((size_t)(C * x->np) * sizeof(double));
    x->rout = malloc((size_t)(C * x->np) * sizeof(double));
    x->nrec = malloc((size_t)(C * x->np) * sizeof(double));
    x->lb = malloc((size_t)(C * k) * sizeof(double));
    x->A = malloc((size_t)(C * k * n0) * sizeof(double));
    x->fix = malloc((size_t)(C * MAX_DEPTH) * sizeof(int64_t));
    x->nfix = malloc((size_t)(C * MAX_DEPTH) * sizeof(int64_t));
    x->depth = malloc((size_t)C * sizeof(int));
    x->ndepth = malloc((size_t)C * sizeof(int));
    x->lv = malloc((size_t)rows * sizeof(double));
    x->la = malloc((size_t)(rows * n0) * sizeof(double));
    x->ld = malloc((size_t)rows * sizeof(double));
    x->lam = malloc((size_t)rows * sizeof(double));
    x->clo = malloc((size_t)n0 * sizeof(double));
    x->chi = malloc((size_t)n0 * sizeof(double));
    x->ind = malloc((size_t)(n0 + 2) * sizeof(int));
    x->val = malloc((size_t)(n0 + 2) * sizeof(double));
    x->P = glp_create_prob();
    if (!x->blo || !x->bhi || !x->rin || !x->rout || !x->nrec || !x->lb || !x->A || !x->fix ||
        !x->nfix || !x->depth || !x->ndepth || !x->lv || !x->la || !x->ld || !x->lam || !x->clo ||
        !x->chi || !x->ind || !x->val || !x->P) {
        bab_exact_free(x);
        return NULL;
    }
    return x;
}

void bab_exact_free(bab_exact *x)
{
    if (!x)
        return;
    free(x->blo), free(x->bhi), free(x->rin), free(x->rout), free(x->nrec), free(x->lb);
    free(x->A), free(x->fix), free(x->nfix), free(x->depth), free(x->ndepth);
    free(x->lv), free(x->la), free(x->ld), free(x->lam), free(x->clo), free(x->chi);
    free(x->ind), free(x->val);
    if (x->P)
        glp_delete_prob(x->P);
    free(x);
}

void bab_exact_stats(const bab_exact *x, int64_t *tried, int64_t *refuted, int64_t *patterns,
                     int64_t *lps)
{
    *tried = x->tried, *refuted = x->refuted, *patterns = x->patterns, *lps = x->lps;
}

/* A lower bound of sum_t |a_t| dist_t(x) over x in [l, h] inside [lo, hi]
 * for a combination of rows: per dimension the function is linear in x_t,
 * so its least value is at l_t or h_t; both ends' values are summed from
 * nonnegative terms rounded down. */
static double combo_rise(int64_t n0, int nr, const double *lam, const double *a,
                         const double *lo, const double *hi, const double *l, const double *h)
{
    double s = 0;
    for (int64_t t = 0; t < n0; t++) {
        double el = 0, eh = 0;
        for (int r = 0; r < nr; r++) {
            double c = a[r * n0 + t];
            if (c == 0 || lam[r] == 0)
                continue;
            double w = fp_down(lam[r] * fabs(c));
            double dl = c > 0 ? fp_down(l[t] - lo[t]) : fp_down(hi[t] - l[t]);
            double dh = c > 0 ? fp_down(h[t] - lo[t]) : fp_down(hi[t] - h[t]);
            el = fp_down(el + fp_down(w * (dl > 0 ? dl : 0)));
            eh = fp_down(eh + fp_down(w * (dh > 0 ? dh : 0)));
        }
        double e = el < eh ? el : eh;
        s = fp_down(s + (e > 0 ? e : 0));
    }
    return s;
}

/* The nr lines (v, a) over [lo, hi] with bounds ld, restricted to the cut box
 * [l, h]: 1 when the LP's multipliers prove that no x there satisfies all of
 * them, 0 when not. */
static int lp_refutes(bab_exact *x, int nr, const double *lo, const double *hi, const double *l,
                      const double *h)
{
    int64_t n0 = x->n0;
    glp_prob *P = x->P;
    glp_erase_prob(P);
    glp_set_obj_dir(P, GLP_MAX);
    glp_add_cols(P, (int)n0 + 1);
    for (int64_t t = 0; t < n0; t++)
        glp_set_col_bnds(P, (int)t + 1, l[t] < h[t] ? GLP_DB : GLP_FX, l[t], h[t]);
    glp_set_col_bnds(P, (int)n0 + 1, GLP_FR, 0, 0);
    glp_set_obj_coef(P, (int)n0 + 1, 1.0);
    glp_add_rows(P, nr);
    for (int r = 0; r < nr; r++) {
        /* v + sum_t a_t (x_t - m_t) + t <= d, m_t the end where a_t x_t is least */
        const double *a = x->la + r * n0;
        double rhs = x->ld[r] - x->lv[r];
        int len = 0;
        for (int64_t t = 0; t < n0; t++) {
            if (a[t] == 0)
                continue;
            if (!isfinite(a[t]))
                return 0; /* never hand GLPK a non-finite coefficient */
            rhs += a[t] * (a[t] > 0 ? lo[t] : hi[t]);
            x->ind[++len] = (int)t + 1;
            x->val[len] = a[t];
        }
        x->ind[++len] = (int)n0 + 1;
        x->val[len] = 1.0;
        if (!isfinite(rhs))
            return 0;
        glp_set_row_bnds(P, r + 1, GLP_UP, 0, rhs);
        glp_set_mat_row(P, r + 1, len, x->ind, x->val);
    }
    glp_smcp sp;
    glp_init_smcp(&sp);
    sp.msg_lev = GLP_MSG_OFF;
    x->lps++;
    if (glp_simplex(P, &sp) != 0 || glp_get_status(P) != GLP_OPT || !(glp_get_obj_val(P) < 0))
        return 0;
    /* the multipliers of the rows, checked soundly */
    double s = 0;
    for (int r = 0; r < nr; r++) {
        double y = fabs(glp_get_row_dual(P, r + 1));
        x->lam[r] = isfinite(y) ? y : 0;
        if (x->lam[r] > 0)
            s = fp_down(s + fp_down(x->lam[r] * fp_down(x->lv[r] - x->ld[r])));
    }
    s = fp_down(s + combo_rise(n0, nr, x->lam, x->la, lo, hi, l, h));
    return s > 0;
}

/* Node p's lines for clause c: its rows, then one constraint line per fixed
 * neuron (from the node's own record, re-expressed over [lo, hi]). */
static int clause_lines(bab_exact *x, int64_t p, int c, const double *lo, const double *hi)
{
    int64_t n0 = x->n0, k = x->k;
    int nr = 0;
    for (int i = x->cl_first[c]; i < x->cl_first[c + 1]; i++, nr++) {
        x->lv[nr] = x->lb[p * k + i];
        memcpy(x->la + nr * n0, x->A + (p * k + i) * n0, (size_t)n0 * sizeof(double));
        x->ld[nr] = x->bc->d[i];
    }
    const double *fn = x->rout + p * x->np + x->npi;
    for (int q = 0; q < x->depth[p]; q++) {
        int64_t f = x->fix[p * MAX_DEPTH + q];
        const double *ln = bnd_mlp_fn_line(x->m, fn, f / 2, (int)(f % 2));
        if (!(ln[0] > -INFINITY))
            continue; /* no line (stable on the whole node): a weaker test, still sound */
        double v = fp_down(ln[0] + bnd_line_rise(n0, ln + 1, fn, fn + n0, lo, hi));
        if (!isfinite(v))
            continue;
        x->lv[nr] = v;
        memcpy(x->la + nr * n0, ln + 1, (size_t)n0 * sizeof(double));
        x->ld[nr] = 0;
        nr++;
    }
    return nr;
}

/* 1 when node p holds no counterexample of any clause (shown), 0 if not. */
static int node_refuted(bab_exact *x, int64_t p, const double *lo, const double *hi)
{
    if (bnd_mlp_pre_empty(x->m, x->rout + p * x->np))
        return 1;
    for (int c = 0; c < x->n_cls; c++) {
        int nr = clause_lines(x, p, c, lo, hi);
        if (nr == 0)
            return 0;
        if (!bab_shrink_box(x->n0, lo, hi, nr, x->la, x->lv, x->ld, x->clo, x->chi))
            continue; /* the cut leaves nothing */
        if (!lp_refutes(x, nr, lo, hi, x->clo, x->chi))
            return 0;
    }
    return 1;
}

int bab_exact_refute(bab_exact *x, const double *lo, const double *hi, const double *rec, err *e)
{
    int64_t n0 = x->n0, np = x->np, pos, width, neuron;
    if (bnd_mlp_unstable(x->m, rec, 0, &pos, &width, &neuron) > x->kmax)
        return 0;
    x->tried++;
    /* the root: the box itself (its record is already bounded, but the rows
     * of the record's pass are not at hand: bound it again with the rest) */
    memcpy(x->rin, rec, (size_t)np * sizeof(double));
    x->depth[0] = 0;
    int64_t F = 1, nodes = 0;
    while (F > 0) {
        for (int64_t p = 0; p < F; p++) {
            memcpy(x->blo + p * n0, lo, (size_t)n0 * sizeof(double));
            memcpy(x->bhi + p * n0, hi, (size_t)n0 * sizeof(double));
        }
        int rc = bnd_mlp_bound_patterns(x->m, F, x->blo, x->bhi, x->k, x->bc->C, x->rin,
                                        x->rout, x->lb, x->A, e);
        if (rc)
            return rc;
        x->patterns += F;
        nodes += F;
        int64_t N = 0;
        for (int64_t p = 0; p < F; p++) {
            if (node_refuted(x, p, lo, hi))
                continue;
            const double *ro = x->rout + p * np;
            if (bnd_mlp_unstable(x->m, ro, 1, &pos, &width, &neuron) == 0 ||
                x->depth[p] >= MAX_DEPTH || nodes + N + 2 > x->budget)
                return 0;
            for (int side = 0; side < 2; side++, N++) {
                double *r = x->nrec + N * np;
                memcpy(r, ro, (size_t)np * sizeof(double));
                if (side) /* active: z >= 0 */
                    r[pos] = 0;
                else      /* inactive: z <= 0 */
                    r[pos + width] = 0;
                memcpy(x->nfix + N * MAX_DEPTH, x->fix + p * MAX_DEPTH,
                       (size_t)x->depth[p] * sizeof(int64_t));
                x->nfix[N * MAX_DEPTH + x->depth[p]] = 2 * neuron + side;
                x->ndepth[N] = x->depth[p] + 1;
            }
        }
        /* the next level becomes the current one */
        double *t = x->rin;
        x->rin = x->nrec, x->nrec = t;
        int64_t *tf = x->fix;
        x->fix = x->nfix, x->nfix = tf;
        int *td = x->depth;
        x->depth = x->ndepth, x->ndepth = td;
        F = N;
    }
    x->refuted++;
    return 1;
}
