/* relax.c: the ReLU rule: interval max(l,0), max(u,0) (exact), and the CROWN
 * relaxation on [l, u]:
 *   stable active (l >= 0): y = x; stable inactive (u <= 0): y = 0;
 *   unstable: upper line s·(x - l) with s >= u/(u-l), lower line alpha·x with
 *   alpha = 1 if u > -l else 0 (auto_LiRPA's adaptive slope).
 * Rounding: any s >= u/(u-l) gives a valid upper line through (l, 0) — it
 * lies above 0 on [l,0] and above x at x = u — so s is rounded UP, and the
 * intercept -s·l is rounded up; the lines are then valid in exact arithmetic
 * for the stored coefficients. alpha·x with alpha in {0,1} is exact. */
#include "internal.h"

#include <math.h>

#include "nonlin.h"

static void relu_interval(double param, int64_t n, const double *l, const double *u,
                          double *lo, double *hi)
{
    (void)param;
    for (int64_t i = 0; i < n; i++) {
        lo[i] = l[i] > 0 ? l[i] : 0;
        hi[i] = u[i] > 0 ? u[i] : 0;
    }
}

static void relu_relax(double param, int64_t n, const double *l, const double *u, double *lw,
                       double *lb, double *uw, double *ub)
{
    (void)param;
    for (int64_t i = 0; i < n; i++) {
        if (l[i] >= 0) {
            lw[i] = uw[i] = 1, lb[i] = ub[i] = 0;
        } else if (u[i] <= 0) {
            lw[i] = uw[i] = 0, lb[i] = ub[i] = 0;
        } else {
            /* d <= fl(u - l)·(1+u); s = fl(u/d) may be below u/(u-l) by a few
             * ulps: inflate by 4u and step up. s <= 1 exactly is not needed. */
            double s = u[i] / (u[i] - l[i]);
            s = bnd_up(s * (1.0 + 4 * BND_U));
            if (!(s <= 1.0)) /* also NaN from overflow: slope 1 is valid too */
                s = 1.0;
            uw[i] = s;
            ub[i] = bnd_up(-s * l[i]);
            lw[i] = u[i] > -l[i] ? 1.0 : 0.0;
            lb[i] = 0;
        }
    }
}

static int relu_unstable(double l, double u)
{
    return l < 0 && u > 0;
}

const bnd_act_rule bnd_relu_rule = {"Relu", relu_interval, relu_relax, relu_unstable, 1,
                                     BND_NL_RELU};
