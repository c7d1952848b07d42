/* exact_box.h: refuting a small input box exactly, one activation pattern of
 * its few unstable ReLUs at a time (exact_box.c). */
#ifndef BAB_EXACT_BOX_H
#define BAB_EXACT_BOX_H

#include <stdint.h>

#include "../bound/bound.h"
#include "../core/err.h"
#include "../specs/spec.h"

typedef struct bab_exact bab_exact;

/* The most unstable neurons a box may have to be tried. */
#define BAB_EXACT_MAX 24

/* State for one worker: the chain MLP m (all ReLU), the rows bounded (bc:
 * every clause's rows, clause c's from row cl_first[c] to cl_first[c + 1],
 * n_cls clauses), boxes with at most kmax (<= BAB_EXACT_MAX) unstable
 * neurons. NULL when out of memory or kmax is out of range. */
bab_exact *bab_exact_new(const bnd_mlp *m, const spec_clause *bc, const int *cl_first,
                         int n_cls, int kmax);
void bab_exact_free(bab_exact *x);

/* Box [lo, hi] with its record rec (bnd_mlp_n_pre intervals then
 * bnd_mlp_n_fn lines, as bnd_mlp_bound_fn stores them, for this box or one
 * containing it): 1 when no point of the box is a counterexample to any
 * clause, shown for every pattern of its unstable neurons; 0 when that was
 * not shown (or the box has more than kmax unstable neurons); < 0 on error. */
int bab_exact_refute(bab_exact *x, const double *lo, const double *hi, const double *rec, err *e);

/* Counters: boxes tried, refuted, patterns and LPs solved. */
void bab_exact_stats(const bab_exact *x, int64_t *tried, int64_t *refuted, int64_t *patterns,
                     int64_t *lps);

#endif
