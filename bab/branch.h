/* branch.h: ReLU branching heuristics (private to bab/). */
#ifndef BAB_BRANCH_H
#define BAB_BRANCH_H

#include <stdint.h>

/* The (at most ntop) best unstable unsplit neurons by the BaBSR-style score,
 * best first: their indices in top, scores in top_score. side[j] != 0 marks
 * split neurons; lambda (nr) the coefficients at the ReLU outputs of the
 * objective row (NULL: all 1). Returns how many were found. */
int bab_branch_top(int64_t nr, const double *plo, const double *phi, const int8_t *side,
                   const double *lambda, int ntop, int64_t *top, double *top_score);

#endif
