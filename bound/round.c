/* round.c: the small pieces of floating-point error accounting.
 *
 * u = 2^-53 (round to nearest). A sum of n products computed in any order
 * (BLAS blocking, FMA) differs from the exact value by at most
 * gamma_n · sum |terms|, gamma_n = n u / (1 - n u) (Higham, Thm 3.1).
 * Error terms themselves are computed from nonnegative numbers, so their own
 * rounding is a relative error of at most gamma_N with N below 3·2^28 (the
 * element limit times the few chained stages) — under 2^-23; bnd_safe()
 * inflates by 2^-20 to cover it, and adds 2^-1000 to cover underflow
 * (absolute error at most 2^-1075 per operation). See docs/soundness.md. */
#include "internal.h"

#include <math.h>

double bnd_gamma(double n)
{
    double nu = n * BND_U;
    /* nu < 2^-20 in practice; the division is inflated by one ulp-step. */
    return fp_up(nu / (1.0 - nu) * (1.0 + 0x1p-50));
}

double bnd_safe(double x)
{
    return x * (1.0 + 0x1p-20) + 0x1p-1000;
}

void bnd_center_radius(int64_t n, const double *l, const double *u, double *c, double *r)
{
    for (int64_t i = 0; i < n; i++) {
        /* l + u may round; c is only some point, r covers both ends from it
         * (u - c and c - l are rounded, so step r up once more). */
        c[i] = 0.5 * l[i] + 0.5 * u[i];
        double a = u[i] - c[i], b = c[i] - l[i];
        r[i] = bnd_up(a > b ? a : b);
        if (r[i] < 0)
            r[i] = 0;
    }
}

double bnd_line_rise(int64_t n, const double *a, const double *rlo, const double *rhi,
                     const double *lo, const double *hi)
{
    /* S = sum |a_t| md_t in floating point: fl(lo - rlo) is at most (1 + u)
     * times the exact difference, the products and the sum of n nonnegative
     * terms carry gamma_{n+1} <= (n + 1) 2u; the factor 1 - (n + 4) 2^-50
     * covers all of them and its own multiplication, and 2^-1070 any
     * underflow. md_t <= 0 (no rise, or rounding noise) adds nothing. */
    double S = 0;
    for (int64_t t = 0; t < n; t++) {
        double md = a[t] > 0 ? lo[t] - rlo[t] : a[t] < 0 ? rhi[t] - hi[t] : 0;
        if (md > 0)
            S += fabs(a[t]) * md;
    }
    double r = S * (1.0 - (double)(n + 4) * 0x1p-50) - 0x1p-1070;
    return r > 0 ? r : 0; /* NaN (infinite coefficients) gives 0 too */
}
