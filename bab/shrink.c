/* shrink.c: cut an input box down to the part where a clause can still hold.
 *
 * A row's lower bound lb over the box [lo, hi] comes with its input
 * coefficients a (bnd_mlp_bound's A_in): for every x in the box
 *     c·f(x) >= lb + sum_t |a_t| dist_t(x),
 *     dist_t(x) = x_t - lo_t (a_t > 0),  hi_t - x_t (a_t < 0),
 * because lb is at most the linear function's minimum, which it takes at the
 * corner where every dist_t is 0. A counterexample needs c·f(x) <= d on every
 * row of the clause, so sum_t |a_t| dist_t(x) <= d - lb. With the least
 * dist_u over the current (already cut) box, md_u, this gives per dimension
 *     dist_t(x) <= md_t + (d - lb - sum_u |a_u| md_u) / |a_t|,
 * i.e. x_t <= nlo_t + delta (a_t > 0) or x_t >= nhi_t - delta (a_t < 0).
 * A negative right side leaves nothing: the clause is refuted on the box.
 * Rows are applied in turn, a few passes, so cuts by one row tighten the
 * others: a conjunction can be refuted with no single row refuting it.
 *
 * Every step rounds towards keeping points: the sum of the least distances
 * rounded down (bnd_line_rise), d - lb and the division rounded up, the new
 * ends rounded outward. */
#include "../core/fpstep.h"
#include "shrink.h"

#include <math.h>

#include "../bound/bound.h"

#define PASSES 3

int bab_shrink_box(int64_t n0, const double *lo, const double *hi, int k, const double *A,
                   const double *lb, const double *d, double *nlo, double *nhi)
{
    for (int64_t t = 0; t < n0; t++)
        nlo[t] = lo[t], nhi[t] = hi[t];
    for (int pass = 0; pass < PASSES; pass++) {
        int moved = 0;
        for (int i = 0; i < k; i++) {
            if (!(lb[i] > -INFINITY) || isnan(lb[i]))
                continue; /* no information */
            const double *a = A + (int64_t)i * n0;
            double s = fp_up(d[i] - lb[i]);
            if (isnan(s))
                continue;
            for (int64_t t = 0; t < n0; t++)
                if (!isfinite(a[t]))
                    goto next_row; /* a useless row (overflow) */
            /* the least sum over the cut box so far, rounded down */
            double S = bnd_line_rise(n0, a, lo, hi, nlo, nhi);
            double R = fp_up(s - S);
            if (R < 0)
                return 0; /* the clause cannot hold anywhere in the box */
            for (int64_t t = 0; t < n0; t++) {
                if (a[t] == 0)
                    continue;
                double delta = fp_up(R / fabs(a[t]));
                if (a[t] > 0) {
                    double h = fp_up(nlo[t] + delta);
                    if (h < nhi[t])
                        nhi[t] = h, moved = 1;
                } else {
                    double l = fp_down(nhi[t] - delta);
                    if (l > nlo[t])
                        nlo[t] = l, moved = 1;
                }
                if (!(nlo[t] <= nhi[t]))
                    return 0;
            }
        next_row:;
        }
        if (!moved)
            break;
    }
    return 1;
}
