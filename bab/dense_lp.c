/* dense_lp.c: a dense dual simplex over vertices (see dense_lp.h).
 *
 * Constraints are the m rows and the 2n bounds (x_j <= hi_j as e_j, and
 * -x_j <= -lo_j). A vertex is n active constraints B with A_B invertible:
 * x = A_B^-1 b_B, multipliers lambda = -(A_B^-T c). The box corner that
 * minimises c·x is such a vertex with lambda >= 0 (dual feasible), so every
 * solve starts there and needs no phase 1. Each step takes the most violated
 * constraint r, writes a_r = A_B^T alpha, and swaps it for the active k with
 * alpha_k > 0 that minimises lambda_k / alpha_k (so lambda stays >= 0);
 * with no alpha_k > 0, a_r·x <= b_r contradicts the active constraints and
 * the LP is infeasible. The inverse of A_B gets a rank-one update per step
 * and is recomputed (Gauss-Jordan with partial pivoting) every REFACTOR
 * steps. */
#include "dense_lp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FEAS_TOL 1e-9     /* relative violation still counted as feasible */
#define PIV_TOL 1e-11     /* smallest alpha_k taken as a pivot */
#define REFACTOR 16       /* rank-one updates of the inverse between refactorings */

struct bab_dlp {
    int n, m, cap;
    double *A, *b;        /* rows: cap x n, cap */
    double *inv_scale;    /* per row: 1 / (1 + |b| + sum_j |a_j| max(|lo_j|, |hi_j|)) */
    double lo[BAB_DLP_MAX_VARS], hi[BAB_DLP_MAX_VARS];
    int B[BAB_DLP_MAX_VARS];                 /* active constraints */
    double AB[BAB_DLP_MAX_VARS * BAB_DLP_MAX_VARS];
    double inv[BAB_DLP_MAX_VARS * BAB_DLP_MAX_VARS];
    double lam[BAB_DLP_MAX_VARS], x[BAB_DLP_MAX_VARS], al[BAB_DLP_MAX_VARS];
};

bab_dlp *bab_dlp_new(int n)
{
    if (n < 1 || n > BAB_DLP_MAX_VARS)
        return NULL;
    bab_dlp *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n;
    return p;
}

void bab_dlp_free(bab_dlp *p)
{
    if (!p)
        return;
    free(p->A), free(p->b), free(p->inv_scale);
    free(p);
}

void bab_dlp_set_bounds(bab_dlp *p, int j, double lo, double hi)
{
    p->lo[j] = lo, p->hi[j] = hi;
}

int bab_dlp_add_row(bab_dlp *p, const double *a, double b)
{
    if (p->m == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        double *A = realloc(p->A, (size_t)cap * (size_t)p->n * sizeof(double));
        if (!A)
            return -1;
        p->A = A;
        double *nb = realloc(p->b, (size_t)cap * sizeof(double));
        if (!nb)
            return -1;
        p->b = nb;
        double *ns = realloc(p->inv_scale, (size_t)cap * sizeof(double));
        if (!ns)
            return -1;
        p->inv_scale = ns, p->cap = cap;
    }
    /* a violation counts relative to the row's size over the box (the bounds
     * when the row is added: close enough for a tolerance) */
    double sc = 1 + fabs(b);
    for (int j = 0; j < p->n; j++)
        sc += fabs(a[j]) * fmax(fabs(p->lo[j]), fabs(p->hi[j]));
    memcpy(p->A + (size_t)p->m * (size_t)p->n, a, (size_t)p->n * sizeof(double));
    p->inv_scale[p->m] = 1 / sc;
    p->b[p->m++] = b;
    return 0;
}

void bab_dlp_truncate(bab_dlp *p, int m)
{
    if (m < p->m)
        p->m = m;
}

int bab_dlp_rows(const bab_dlp *p)
{
    return p->m;
}

/* Constraint i's normal into a (n values) and its right-hand side. */
static double constraint(const bab_dlp *p, int i, double *a)
{
    int n = p->n;
    if (i < p->m) {
        memcpy(a, p->A + (size_t)i * (size_t)n, (size_t)n * sizeof(double));
        return p->b[i];
    }
    int j = (i - p->m) / 2, up = (i - p->m) % 2 == 0;
    memset(a, 0, (size_t)n * sizeof(double));
    a[j] = up ? 1 : -1;
    return up ? p->hi[j] : -p->lo[j];
}

/* inv = AB^-1 by Gauss-Jordan with partial pivoting; -1 when near singular. */
static int invert(bab_dlp *p)
{
    int n = p->n;
    double M[BAB_DLP_MAX_VARS * 2 * BAB_DLP_MAX_VARS];
    int w = 2 * n;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            M[i * w + j] = p->AB[i * n + j];
            M[i * w + n + j] = i == j;
        }
    }
    for (int col = 0; col < n; col++) {
        int piv = col;
        double best = fabs(M[col * w + col]);
        for (int i = col + 1; i < n; i++)
            if (fabs(M[i * w + col]) > best)
                best = fabs(M[i * w + col]), piv = i;
        if (!(best > 1e-13))
            return -1;
        if (piv != col)
            for (int j = 0; j < w; j++) {
                double t = M[col * w + j];
                M[col * w + j] = M[piv * w + j], M[piv * w + j] = t;
            }
        double d = 1 / M[col * w + col];
        for (int j = 0; j < w; j++)
            M[col * w + j] *= d;
        for (int i = 0; i < n; i++) {
            if (i == col)
                continue;
            double f = M[i * w + col];
            if (f == 0)
                continue;
            for (int j = 0; j < w; j++)
                M[i * w + j] -= f * M[col * w + j];
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            p->inv[i * n + j] = M[i * w + n + j];
    return 0;
}

/* x = AB^-1 b_B and lambda = -(AB^-T c) for the current B. */
static void primal_dual(bab_dlp *p, const double *c)
{
    int n = p->n;
    double bb[BAB_DLP_MAX_VARS], a[BAB_DLP_MAX_VARS];
    for (int k = 0; k < n; k++)
        bb[k] = constraint(p, p->B[k], a);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < n; k++)
            s += p->inv[i * n + k] * bb[k];
        p->x[i] = s;
    }
    for (int k = 0; k < n; k++) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += p->inv[i * n + k] * c[i];
        p->lam[k] = -s;
    }
}

int bab_dlp_min(bab_dlp *p, const double *c, double *value, double *x, double *lam)
{
    int n = p->n, m = p->m;
    /* the box corner minimising c·x: AB is diagonal ±1, its own inverse */
    memset(p->AB, 0, sizeof(double) * (size_t)(n * n));
    for (int j = 0; j < n; j++) {
        int up = c[j] < 0;
        p->B[j] = m + 2 * j + (up ? 0 : 1);
        p->AB[j * n + j] = up ? 1 : -1;
    }
    memcpy(p->inv, p->AB, sizeof(double) * (size_t)(n * n));
    primal_dual(p, c);
    int updates = 0;
    int max_iter = 50 + 8 * (m + 2 * n);
    double a[BAB_DLP_MAX_VARS];
    for (int it = 0;; it++) {
        if (it > max_iter)
            return -1;
        /* the most violated constraint (relative to its scale) */
        int r = -1;
        double worst = 0;
        for (int i = 0; i < m; i++) {
            const double *ai = p->A + (size_t)i * (size_t)n;
            double s = 0;
            for (int j = 0; j < n; j++)
                s += ai[j] * p->x[j];
            double v = (s - p->b[i]) * p->inv_scale[i];
            if (v > worst)
                worst = v, r = i;
        }
        for (int j = 0; j < n; j++) {
            double v = (p->x[j] - p->hi[j]) / (1 + fabs(p->hi[j]));
            if (v > worst)
                worst = v, r = m + 2 * j;
            v = (p->lo[j] - p->x[j]) / (1 + fabs(p->lo[j]));
            if (v > worst)
                worst = v, r = m + 2 * j + 1;
        }
        if (r < 0 || worst <= FEAS_TOL)
            break;
        /* alpha = AB^-T a_r; the dual ratio test */
        constraint(p, r, a);
        int k = -1;
        double best = INFINITY, amax = 0;
        for (int q = 0; q < n; q++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += p->inv[i * n + q] * a[i];
            p->al[q] = s;
            amax = fmax(amax, fabs(s));
        }
        for (int q = 0; q < n; q++) {
            if (p->al[q] <= PIV_TOL * (1 + amax))
                continue;
            double th = fmax(p->lam[q], 0) / p->al[q];
            if (th < best || (k >= 0 && th == best && p->al[q] > p->al[k]))
                best = th, k = q;
        }
        if (k < 0)
            return 1;
        p->B[k] = r;
        memcpy(p->AB + k * n, a, (size_t)n * sizeof(double));
        if (++updates % REFACTOR == 0) {
            if (invert(p))
                return -1;
        } else {
            /* row k of AB replaced by a_r: inv -= inv[:,k] (alpha - e_k)^T / alpha_k
             * (Sherman-Morrison; a_r^T inv = alpha^T, a_k^T inv = e_k^T) */
            double ak = p->al[k];
            for (int i = 0; i < n; i++) {
                double f = p->inv[i * n + k] / ak;
                for (int j = 0; j < n; j++)
                    if (j != k)
                        p->inv[i * n + j] -= f * p->al[j];
                p->inv[i * n + k] = f;
            }
        }
        primal_dual(p, c);
    }
    double v = 0;
    for (int j = 0; j < n; j++)
        v += c[j] * p->x[j];
    *value = v;
    if (x)
        memcpy(x, p->x, (size_t)n * sizeof(double));
    if (lam) {
        memset(lam, 0, (size_t)m * sizeof(double));
        for (int k = 0; k < n; k++)
            if (p->B[k] < m && p->lam[k] > 0)
                lam[p->B[k]] = p->lam[k];
    }
    return 0;
}
