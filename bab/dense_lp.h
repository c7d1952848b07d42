/* dense_lp.h: a small dense dual simplex for LPs with few variables and a
 * growing, stack-like set of rows (bab/star.c's polytopes): min c·x over
 * lo <= x <= hi and rows a_i·x <= b_i.
 *
 * Nothing it returns is trusted for soundness: callers recompute their
 * bounds from its multipliers with outward rounding (any lambda >= 0 gives a
 * valid bound), so this solver only has to be good, not exact. It replaces
 * GLPK there because GLPK's per-call setup cost ~20 us on these 6-column
 * problems, most of the search's time. */
#ifndef BAB_DENSE_LP_H
#define BAB_DENSE_LP_H

#define BAB_DLP_MAX_VARS 32

typedef struct bab_dlp bab_dlp;

/* n variables (1..BAB_DLP_MAX_VARS), all bounds [0, 0] until set; NULL when
 * out of memory or n is out of range. */
bab_dlp *bab_dlp_new(int n);
void bab_dlp_free(bab_dlp *p);
/* Finite bounds of variable j (lo <= hi). */
void bab_dlp_set_bounds(bab_dlp *p, int j, double lo, double hi);
/* Appends a·x <= b (n values); -1 when out of memory. */
int bab_dlp_add_row(bab_dlp *p, const double *a, double b);
/* Keeps the first m rows. */
void bab_dlp_truncate(bab_dlp *p, int m);
int bab_dlp_rows(const bab_dlp *p);
/* min c·x: 0 optimal (value, the point x and lam, one multiplier >= 0 per
 * row with c + sum lam_i a_i zero up to the active bounds' terms), 1
 * infeasible (a row that cannot hold together with the others), -1 when
 * the iteration limit or a near-singular basis stopped it. x and lam may be
 * NULL. */
int bab_dlp_min(bab_dlp *p, const double *c, double *value, double *x, double *lam);

#endif
