/* test_dense_lp.c: bab/dense_lp.c against GLPK on random small LPs (status,
 * value, and the multipliers' bound c·x >= min_box (c + lam·A)·x - lam·b). */
#include <criterion/criterion.h>
#include <glpk.h>
#include <math.h>
#include <string.h>

#include "../bab/dense_lp.h"
#include "../core/rng.h"

/* GLPK's answer: 0 optimal (value), 1 infeasible */
static int glpk_min(int n, int m, const double *A, const double *b, const double *lo,
                    const double *hi, const double *c, double *value)
{
    glp_prob *P = glp_create_prob();
    glp_add_cols(P, n);
    for (int j = 0; j < n; j++) {
        glp_set_col_bnds(P, j + 1, lo[j] < hi[j] ? GLP_DB : GLP_FX, lo[j], hi[j]);
        glp_set_obj_coef(P, j + 1, c[j]);
    }
    int ind[40];
    double val[40];
    if (m)
        glp_add_rows(P, m);
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++)
            ind[j + 1] = j + 1, val[j + 1] = A[i * n + j];
        glp_set_mat_row(P, i + 1, n, ind, val);
        glp_set_row_bnds(P, i + 1, GLP_UP, 0, b[i]);
    }
    glp_smcp prm;
    glp_init_smcp(&prm);
    prm.msg_lev = GLP_MSG_OFF;
    cr_assert_eq(glp_simplex(P, &prm), 0);
    int st = glp_get_status(P), rc = st == GLP_OPT ? 0 : st == GLP_NOFEAS ? 1 : -1;
    *value = glp_get_obj_val(P);
    glp_delete_prob(P);
    return rc;
}

Test(dense_lp, agrees_with_glpk_on_random_lps)
{
    rng r;
    rng_seed(&r, 11);
    int n_opt = 0, n_inf = 0;
    for (int cs = 0; cs < 600; cs++) {
        int n = 1 + cs % 8, m = (cs * 7) % 61;
        double A[61 * 8], b[61], lo[8], hi[8], c[8], x[8], lam[61];
        for (int j = 0; j < n; j++) {
            double mid = rng_normal(&r), w = cs % 11 == 5 && j == 0 ? 0 : 0.1 + rng_uniform(&r);
            lo[j] = mid - w, hi[j] = mid + w;
            c[j] = cs % 13 == 0 && j == 1 ? 0 : rng_normal(&r);
        }
        /* rows that a point x0 of the box satisfies, some tightly; every 5th
         * case pushes one row's right-hand side far down (mostly infeasible) */
        double x0[8];
        for (int j = 0; j < n; j++)
            x0[j] = lo[j] + rng_uniform(&r) * (hi[j] - lo[j]);
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int j = 0; j < n; j++) {
                A[i * n + j] = rng_normal(&r);
                s += A[i * n + j] * x0[j];
            }
            b[i] = s + (i % 3 == 0 ? 0 : 0.3 * rng_uniform(&r));
            if (cs % 5 == 4 && i == m - 1)
                b[i] -= 3;
        }
        bab_dlp *p = bab_dlp_new(n);
        cr_assert(p);
        for (int j = 0; j < n; j++)
            bab_dlp_set_bounds(p, j, lo[j], hi[j]);
        for (int i = 0; i < m; i++)
            cr_assert_eq(bab_dlp_add_row(p, A + i * n, b[i]), 0);
        double v = 0, vg = 0;
        int rc = bab_dlp_min(p, c, &v, x, lam);
        int rg = glpk_min(n, m, A, b, lo, hi, c, &vg);
        cr_assert_eq(rc, rg, "case %d (n %d, m %d): dense %d, GLPK %d", cs, n, m, rc, rg);
        if (rc == 0) {
            cr_assert(fabs(v - vg) <= 1e-7 * (1 + fabs(vg)), "case %d: %.17g vs %.17g", cs, v, vg);
            /* the multipliers' bound reaches the value */
            double rr[8], bound = 0;
            memcpy(rr, c, sizeof(double) * (size_t)n);
            for (int i = 0; i < m; i++) {
                cr_assert(lam[i] >= 0);
                for (int j = 0; j < n; j++)
                    rr[j] += lam[i] * A[i * n + j];
                bound -= lam[i] * b[i];
            }
            for (int j = 0; j < n; j++)
                bound += fmin(rr[j] * lo[j], rr[j] * hi[j]);
            cr_assert(bound >= vg - 1e-7 * (1 + fabs(vg)), "case %d: bound %.17g, value %.17g", cs,
                      bound, vg);
            n_opt++;
        } else {
            n_inf++;
        }
        /* truncating back to fewer rows answers that smaller LP */
        if (m > 2) {
            bab_dlp_truncate(p, m / 2);
            cr_assert_eq(bab_dlp_rows(p), m / 2);
            rc = bab_dlp_min(p, c, &v, NULL, NULL);
            rg = glpk_min(n, m / 2, A, b, lo, hi, c, &vg);
            cr_assert_eq(rc, rg, "case %d truncated", cs);
            if (rc == 0)
                cr_assert(fabs(v - vg) <= 1e-7 * (1 + fabs(vg)));
        }
        bab_dlp_free(p);
    }
    cr_log_info("dense LP: %d optimal, %d infeasible", n_opt, n_inf);
    cr_assert(n_opt > 300 && n_inf > 30, "%d optimal, %d infeasible", n_opt, n_inf);
}
