/* nonlin_product.c: McCormick planes and the interval of z = x*y over a box.
 *
 * Key idea: (x - xl)(y - yl) >= 0 and (xu - x)(yu - y) >= 0 give the lower
 * planes z >= yl x + xl y - xl yl and z >= yu x + xu y - xu yu;
 * (xu - x)(y - yl) >= 0 and (x - xl)(yu - y) >= 0 the upper ones. The slopes
 * are the box bounds themselves (exact doubles); only the constant -xl*yl
 * etc. is rounded, and it is rounded outward (down for lower planes, up for
 * upper ones), which moves an exactly valid plane further out. */
#include <math.h>

#include "../core/err.h"
#include "nonlin_ops.h"

/* 1 when a*b is computed exactly (checked with fma, away from underflow). */
static int exact_prod(double a, double b)
{
    double p = a * b;
    return a == 0 || b == 0 || (isfinite(p) && fabs(p) >= 0x1p-960 && fma(a, b, -p) == 0);
}

static double neg_prod_dn(double a, double b) /* <= -(a*b) */
{
    return exact_prod(a, b) ? -(a * b) : -nl_up(a * b);
}

static double neg_prod_up(double a, double b) /* >= -(a*b) */
{
    return exact_prod(a, b) ? -(a * b) : -nl_dn(a * b);
}

int bnd_nl_mccormick(double xl, double xu, double yl, double yu, bnd_plane lower[2],
                     bnd_plane upper[2])
{
    if (!(xl <= xu) || !(yl <= yu) || !isfinite(xl) || !isfinite(xu) || !isfinite(yl) ||
        !isfinite(yu))
        return ERR_ARG;
    lower[0] = (bnd_plane){yl, xl, neg_prod_dn(xl, yl)};
    lower[1] = (bnd_plane){yu, xu, neg_prod_dn(xu, yu)};
    upper[0] = (bnd_plane){yl, xu, neg_prod_up(xu, yl)};
    upper[1] = (bnd_plane){yu, xl, neg_prod_up(xl, yu)};
    for (int i = 0; i < 2; i++) {
        if (lower[i].c == 0) /* -0.0 from an exact zero product */
            lower[i].c = 0;
        if (upper[i].c == 0)
            upper[i].c = 0;
        if (!isfinite(lower[i].c) || !isfinite(upper[i].c))
            return ERR_VALUE;
    }
    return 0;
}

void bnd_nl_product_interval(double xl, double xu, double yl, double yu, double *zl,
                             double *zu)
{
    nl_iv z = nl_iv_mul((nl_iv){xl, xu}, (nl_iv){yl, yu});
    *zl = z.lo;
    *zu = z.hi;
}
