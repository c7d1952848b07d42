/* polytope.c: star.c's polytopes (see polytope.h).
 *
 * The LP has the n0 inputs and a slack t as columns and every row as
 * g·x - t <= h; t is fixed at 0 except in bab_poly_min_slack. The solver
 * (dense_lp.c) only proposes multipliers lambda >= 0: for min c·(x, t),
 * c·z >= (c + lambda·G)·z - lambda·h on the whole column box whatever lambda
 * is, and that is evaluated with outward rounding (docs/soundness.md §12).
 * Witnesses are the solver's optimal vertices with t = 0: points of the
 * polytope up to its tolerance, which only steer star.c between splitting
 * and an LP. */
#include "polytope.h"

#include "../bound/bound.h"
#include "../core/fpstep.h"
#include "dense_lp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define T_RANGE 1e4  /* bounds of t when it is free */
#define N_WIT 8      /* witnesses kept */

struct bab_poly {
    int64_t n0, q;          /* inputs; q = n0 + 1 values a row */
    const double *lo, *hi;
    bab_dlp *lp;
    double *rows;           /* cap x q: g, h */
    double *lam;            /* the last solve's multipliers, one a row */
    int n, cap;
    double *c, *x, *r, *er; /* q each */
    double *wit;            /* N_WIT x n0 */
    int n_wit, wit_next;
    int64_t lps;
};

bab_poly *bab_poly_new(int64_t n0, const double *lo, const double *hi)
{
    bab_poly *P = calloc(1, sizeof *P);
    if (!P)
        return NULL;
    P->n0 = n0, P->q = n0 + 1, P->lo = lo, P->hi = hi;
    P->lp = bab_dlp_new((int)n0 + 1);
    P->c = malloc((size_t)P->q * sizeof(double));
    P->x = malloc((size_t)P->q * sizeof(double));
    P->r = malloc((size_t)P->q * sizeof(double));
    P->er = malloc((size_t)P->q * sizeof(double));
    P->wit = malloc((size_t)N_WIT * (size_t)n0 * sizeof(double));
    if (!P->lp || !P->c || !P->x || !P->r || !P->er || !P->wit) {
        bab_poly_free(P);
        return NULL;
    }
    for (int64_t t = 0; t < n0; t++)
        bab_dlp_set_bounds(P->lp, (int)t, lo[t], hi[t]);
    bab_dlp_set_bounds(P->lp, (int)n0, 0, 0);
    return P;
}

void bab_poly_free(bab_poly *P)
{
    if (!P)
        return;
    bab_dlp_free(P->lp);
    free(P->rows), free(P->lam), free(P->c), free(P->x), free(P->r), free(P->er), free(P->wit);
    free(P);
}

int bab_poly_rows(const bab_poly *P)
{
    return P->n;
}

const double *bab_poly_row(const bab_poly *P, int i)
{
    return P->rows + (size_t)i * (size_t)P->q;
}

int64_t bab_poly_lps(const bab_poly *P)
{
    return P->lps;
}

/* Keeps the witnesses that satisfy g·x <= h. */
static void wit_filter(bab_poly *P, const double *g)
{
    int64_t n0 = P->n0;
    int kept = 0;
    for (int i = 0; i < P->n_wit; i++) {
        const double *x = P->wit + (size_t)i * (size_t)n0;
        double s = 0, mag = fabs(g[n0]);
        for (int64_t t = 0; t < n0; t++)
            s += g[t] * x[t], mag += fabs(g[t] * x[t]);
        if (s <= g[n0] + 1e-9 * (1 + mag)) {
            if (kept != i)
                memcpy(P->wit + (size_t)kept * (size_t)n0, x, (size_t)n0 * sizeof(double));
            kept++;
        }
    }
    P->n_wit = kept, P->wit_next = kept % N_WIT;
}

int bab_poly_add(bab_poly *P, const double *g, int filter)
{
    int64_t n0 = P->n0;
    for (int64_t t = 0; t <= n0; t++)
        if (!isfinite(g[t]))
            return -1;
    if (P->n == P->cap) {
        int cap = P->cap ? 2 * P->cap : 64;
        double *rows = realloc(P->rows, (size_t)cap * (size_t)P->q * sizeof(double));
        if (!rows)
            return -1;
        P->rows = rows;
        double *lam = realloc(P->lam, (size_t)cap * sizeof(double));
        if (!lam)
            return -1;
        P->lam = lam, P->cap = cap;
    }
    memcpy(P->rows + (size_t)P->n * (size_t)P->q, g, (size_t)P->q * sizeof(double));
    memcpy(P->x, g, (size_t)n0 * sizeof(double));
    P->x[n0] = -1; /* the slack's column */
    if (bab_dlp_add_row(P->lp, P->x, g[n0]))
        return -1;
    P->n++;
    if (filter)
        wit_filter(P, g);
    return 0;
}

void bab_poly_truncate(bab_poly *P, int n)
{
    if (n < P->n) {
        bab_dlp_truncate(P->lp, n);
        P->n = n;
    }
}

/* A lower bound of min c·(x, t) (c: q values) over the rows and the column
 * box from the last solve's multipliers, rounded outward. */
static double safe_min(bab_poly *P, const double *c, double tlo, double thi)
{
    int64_t n0 = P->n0, q = P->q;
    double *r = P->r, *er = P->er;
    for (int64_t j = 0; j <= n0; j++)
        r[j] = c[j], er[j] = fabs(c[j]);
    double total = 0, budget = 0, scale = 1;
    if (thi > tlo) {
        /* t free: dual feasibility wants sum lambda = c_t exactly, the solver
         * meets it only to its tolerance, and the rest times t's range would
         * swamp the bound; any positive multiple of lambda is valid, so
         * rescale. */
        double sum = 0;
        for (int k = 0; k < P->n; k++)
            if (P->lam[k] > 0)
                sum += P->lam[k];
        if (sum > 0 && c[n0] > 0)
            scale = c[n0] / sum;
    }
    for (int k = 0; k < P->n; k++) {
        double lam = P->lam[k] * scale;
        if (!(lam > 0))
            continue;
        const double *g = P->rows + (size_t)k * (size_t)q;
        for (int64_t j = 0; j < n0; j++) {
            double v = lam * g[j];
            r[j] += v, er[j] += fabs(v);
        }
        r[n0] -= lam, er[n0] += lam;
        double t = lam * g[n0];
        total -= t, budget += fabs(t);
    }
    double gr = bnd_gamma(2.0 * P->n + 4);
    for (int64_t j = 0; j <= n0; j++) {
        double ej = bnd_safe(gr * er[j]);
        double lo = j < n0 ? P->lo[j] : tlo, hi = j < n0 ? P->hi[j] : thi;
        double a = r[j] - ej, b = r[j] + ej;
        double mn = fmin(fmin(a * lo, a * hi), fmin(b * lo, b * hi));
        total += mn, budget += fabs(mn);
    }
    double v = fp_down(total - bnd_safe(bnd_gamma(2.0 * (double)(P->n + n0) + 6) * budget));
    return isnan(v) ? -INFINITY : v;
}

/* min c·(x, t) with t in [tlo, thi]: 0 (safe *lb, solver's *val, point in
 * P->x), 1 infeasible by the solver, -1 failed. */
static int solve(bab_poly *P, const double *c, double tlo, double thi, double *lb, double *val)
{
    for (int64_t j = 0; j <= P->n0; j++)
        if (!isfinite(c[j]))
            return -1;
    bab_dlp_set_bounds(P->lp, (int)P->n0, tlo, thi);
    P->lps++;
    int rc = bab_dlp_min(P->lp, c, val, P->x, P->lam);
    if (rc == 0)
        *lb = safe_min(P, c, tlo, thi);
    if (thi != 0 || tlo != 0)
        bab_dlp_set_bounds(P->lp, (int)P->n0, 0, 0);
    return rc;
}

int bab_poly_min(bab_poly *P, const double *c, double *lb, double *val)
{
    memcpy(P->c, c, (size_t)P->n0 * sizeof(double));
    P->c[P->n0] = 0;
    int rc = solve(P, P->c, 0, 0, lb, val);
    if (rc == 0) { /* a vertex of the polytope: a witness */
        memcpy(P->wit + (size_t)P->wit_next * (size_t)P->n0, P->x, (size_t)P->n0 * sizeof(double));
        P->wit_next = (P->wit_next + 1) % N_WIT;
        if (P->n_wit < N_WIT)
            P->n_wit++;
    }
    return rc;
}

int bab_poly_min_slack(bab_poly *P, double *lb, double *val, double *x)
{
    memset(P->c, 0, (size_t)P->q * sizeof(double));
    P->c[P->n0] = 1;
    int rc = solve(P, P->c, -T_RANGE, T_RANGE, lb, val);
    if (rc == 0 && x)
        memcpy(x, P->x, (size_t)P->n0 * sizeof(double));
    return rc ? -1 : 0;
}

int bab_poly_empty(bab_poly *P)
{
    double lb = -INFINITY, val;
    return bab_poly_min_slack(P, &lb, &val, NULL) == 0 && lb > 0;
}

void bab_poly_signs(const bab_poly *P, const double *z, int *pos, int *neg)
{
    int64_t n0 = P->n0;
    *pos = *neg = 0;
    for (int i = 0; i < P->n_wit; i++) {
        const double *x = P->wit + (size_t)i * (size_t)n0;
        double v = z[n0], mag = fabs(z[n0]);
        for (int64_t t = 0; t < n0; t++)
            v += z[t] * x[t], mag += fabs(z[t] * x[t]);
        *pos |= v > 1e-9 * (1 + mag), *neg |= v < -1e-9 * (1 + mag);
    }
}
