/* polytope.h: a polytope of a low-dimensional input box for star.c: the box
 * and a stack of rows g·x <= h, with LP bounds that never trust the solver
 * (docs/soundness.md §12) and witness points (LP vertices) inside it. */
#ifndef BAB_POLYTOPE_H
#define BAB_POLYTOPE_H

#include <stdint.h>

typedef struct bab_poly bab_poly;

/* The box [lo, hi] (n0 values, kept by reference); NULL when out of memory. */
bab_poly *bab_poly_new(int64_t n0, const double *lo, const double *hi);
void bab_poly_free(bab_poly *P);

int bab_poly_rows(const bab_poly *P);
/* Row i: n0 coefficients g, then h. */
const double *bab_poly_row(const bab_poly *P, int i);
/* Appends g·x <= h (n0 + 1 values); filter: drop the witnesses it cuts off
 * (rows that stay are part of the polytope; temporary rows are not).
 * -1 when a value is not finite or memory runs out. */
int bab_poly_add(bab_poly *P, const double *g, int filter);
/* Keeps the first n rows (the witnesses stay inside). */
void bab_poly_truncate(bab_poly *P, int n);

/* min c·x (c: n0 values) over the polytope: 0 with a safe lower bound *lb
 * and the solver's value *val (its point becomes a witness), 1 when the
 * solver finds no point (only a hint: bab_poly_empty decides), -1 when it
 * failed. */
int bab_poly_min(bab_poly *P, const double *c, double *lb, double *val);
/* min t over the box and g·x - t <= h for every row, t in [-1e4, 1e4]: 0
 * with a safe lower bound *lb, the solver's value *val and its point x (n0
 * values, may be NULL); -1 when the solver failed. A bound above 0 means no
 * point of the box satisfies every row. */
int bab_poly_min_slack(bab_poly *P, double *lb, double *val, double *x);
/* 1 when the rows are proven to leave no point of the box. */
int bab_poly_empty(bab_poly *P);

/* Whether some witness has z·x + z0 > 0 (*pos) or < 0 (*neg), z: n0
 * coefficients then z0 (a point's sign up to a relative 1e-9). */
void bab_poly_signs(const bab_poly *P, const double *z, int *pos, int *neg);

/* LPs solved so far. */
int64_t bab_poly_lps(const bab_poly *P);

#endif
