/* shrink.h: cutting an input box to where a clause's linear lower bounds
 * still allow a counterexample (shrink.c). */
#ifndef BAB_SHRINK_H
#define BAB_SHRINK_H

#include <stdint.h>

/* Rows i < k of one clause (c_i·f(x) <= d[i] all needed), each with lower
 * bound lb[i] over [lo, hi] and input coefficients A (k x n0, row-major) of
 * the linear function behind it. Fills [nlo, nhi] (inside [lo, hi]) with a
 * box holding every x of [lo, hi] where the clause can hold. Returns 0 when
 * there is none (the clause is refuted on the box), 1 otherwise. */
int bab_shrink_box(int64_t n0, const double *lo, const double *hi, int k, const double *A,
                   const double *lb, const double *d, double *nlo, double *nhi);

#endif
