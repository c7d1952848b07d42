/* alpha.c: alpha-CROWN (Xu et al. 2021) for any network bound/ supports.
 *
 * CROWN's lower line of an unstable ReLU may take any slope in [0, 1]; the
 * lower bound of each objective row is a concave-ish function of those
 * slopes, so they are optimised per row and neuron by projected Adam ascent
 * from CROWN's adaptive slopes, with the gradient from one forward pass of
 * the linearised network at the relaxed minimiser (beta.c's machinery with
 * no splits: beta-CROWN with an empty split set is alpha-CROWN). Every
 * iterate is a sound bound (the rounding-error terms are those of crown.c),
 * so the best per row is kept, and the result is never looser than CROWN:
 * the CROWN bound itself is the first candidate. Intermediate bounds stay
 * CROWN's (see docs/bab.md for why). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int bnd_alpha_crown(bnd_net *n, const double *lo, const double *hi, const double *C, int k,
                    int iters, double *lb, err *e)
{
    if (k <= 0)
        return 0;
    int rc = bnd_compute(n, BND_CROWN, lo, hi, C, k, lb, NULL, e);
    if (rc || iters <= 0 || bnd_relu_count(n) == 0)
        return rc;
    double *lb2 = malloc((size_t)k * sizeof(double));
    if (!lb2)
        return err_set(e, ERR_NOMEM, "%s: out of memory", n->source);
    bnd_domain dom = {.lo = lo, .hi = hi};
    bnd_beta_opts o = {.iters = iters, .lr = 0.1, .alpha = 1, .alpha_lr = 0.1};
    bnd_beta_out out = {.lb = lb2};
    rc = bnd_beta_bound(n, &dom, C, k, &o, &out, e);
    if (rc == 0)
        for (int q = 0; q < k; q++)
            if (lb2[q] > lb[q])
                lb[q] = lb2[q];
    free(lb2);
    return rc < 0 ? rc : 0;
}
