/* check.c: re-checking a counterexample with plain forward passes.
 * A point is accepted only if it lies in the region's box and violates one of
 * its clauses in double evaluation (tolerance 0) and in float32 evaluation
 * (tolerance 1e-4, the VNN-COMP check), so what we print survives the
 * competition's own check with onnxruntime. */
#include "bab.h"

#include <stdlib.h>

int bab_check_counterexample(const nn_graph *g, const spec_property *p, int r,
                             const double *x, double *y_out, err *e)
{
    if (r < 0 || r >= p->n_regions)
        return err_set(e, ERR_ARG, "check: bad region %d", r);
    int64_t nx = p->n_x, ny = p->n_y;
    double *y = malloc((size_t)ny * sizeof *y);
    float *xf = malloc((size_t)nx * sizeof *xf), *yf = malloc((size_t)ny * sizeof *yf);
    double *yd = malloc((size_t)ny * sizeof *yd);
    int rc = 0;
    if (!y || !xf || !yf || !yd) {
        rc = err_set(e, ERR_NOMEM, "check: out of memory");
        goto out;
    }
    const spec_region *reg = &p->regions[r];
    for (int64_t j = 0; j < nx; j++)
        if (!(x[j] >= reg->lo[j] && x[j] <= reg->hi[j]))
            goto out; /* rc = 0: outside the box */
    if ((rc = nn_eval(g, x, y, e)))
        goto out;
    for (int64_t j = 0; j < nx; j++)
        xf[j] = (float)x[j];
    if ((rc = nn_eval_float(g, xf, yf, e)))
        goto out;
    for (int64_t j = 0; j < ny; j++)
        yd[j] = yf[j];
    for (int k = 0; k < reg->n_clauses && rc == 0; k++)
        if (spec_clause_holds(&reg->clauses[k], ny, y, 0.0) &&
            spec_clause_holds(&reg->clauses[k], ny, yd, 1e-4))
            rc = 1;
    if (rc == 1 && y_out)
        for (int64_t j = 0; j < ny; j++)
            y_out[j] = y[j];
out:
    free(y);
    free(xf);
    free(yf);
    free(yd);
    return rc;
}
