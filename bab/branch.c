/* branch.c: which ReLU to split (branching heuristics).
 *
 * BaBSR-style score (Bunel et al. 2020): for an unstable, unsplit neuron j
 * with pre-activation bounds [l, u] and coefficient lambda_j at its output in
 * the backward pass of the objective row, the upper line's intercept
 * -l·u/(u-l) costs the bound lambda_j·(-l·u/(u-l)) when lambda_j < 0; when
 * lambda_j > 0 the lower line loses up to lambda_j·min(u, -l). Splitting
 * removes both, so the score is their sum; ties broken by the interval width.
 * The filtered smart branching (FSB) of relu_split.c re-bounds the children
 * of the top few neurons by this score and keeps the best. */
#include "branch.h"

#include <math.h>

static double score_of(double lambda, double l, double u)
{
    double gap = -l * u / (u - l);
    double s = lambda < 0 ? -lambda * gap : lambda * fmin(u, -l) * 0.5;
    return s + 1e-12 * (u - l);
}

int bab_branch_top(int64_t nr, const double *plo, const double *phi, const int8_t *side,
                   const double *lambda, int ntop, int64_t *top, double *top_score)
{
    int n = 0;
    for (int64_t j = 0; j < nr; j++) {
        if (side[j] || !(plo[j] < 0 && phi[j] > 0))
            continue;
        double s = score_of(lambda ? lambda[j] : 1.0, plo[j], phi[j]);
        if (!isfinite(s))
            s = 1e300;
        /* insertion into the sorted top list */
        int at = n < ntop ? n : ntop;
        while (at > 0 && top_score[at - 1] < s)
            at--;
        if (at >= ntop)
            continue;
        int last = n < ntop ? n : ntop - 1;
        for (int q = last; q > at; q--)
            top[q] = top[q - 1], top_score[q] = top_score[q - 1];
        top[at] = j, top_score[at] = s;
        if (n < ntop)
            n++;
    }
    return n;
}
