/* spec.c: owning and evaluating a parsed property.
 *
 * A region is violated at (x, y) when x lies in its box and some clause has
 * every row  C_r . y <= d_r ; both tests take a tolerance, because
 * counterexamples are checked after a float forward pass (VNN-COMP accepts
 * 1e-4).
 */
#include "spec.h"

#include <stdlib.h>

void spec_free(spec_property *p)
{
    if (!p)
        return;
    for (int r = 0; r < p->n_regions; r++) {
        spec_region *reg = &p->regions[r];
        free(reg->lo);
        free(reg->hi);
        for (int c = 0; c < reg->n_clauses; c++) {
            free(reg->clauses[c].C);
            free(reg->clauses[c].d);
        }
        free(reg->clauses);
    }
    free(p->regions);
    free(p);
}

int spec_clause_holds(const spec_clause *c, int64_t n_y, const double *y, double tol)
{
    for (int r = 0; r < c->n_rows; r++) {
        const double *row = c->C + (int64_t)r * n_y;
        double v = 0.0;
        for (int64_t j = 0; j < n_y; j++)
            v += row[j] * y[j];
        if (!(v <= c->d[r] + tol))   /* NaN never holds */
            return 0;
    }
    return 1;
}

int spec_region_violated(const spec_property *p, int r, const double *x, const double *y, double tol)
{
    if (!p || r < 0 || r >= p->n_regions)
        return 0;
    const spec_region *reg = &p->regions[r];
    for (int64_t i = 0; i < p->n_x; i++)
        if (!(x[i] >= reg->lo[i] - tol && x[i] <= reg->hi[i] + tol))
            return 0;
    for (int c = 0; c < reg->n_clauses; c++)
        if (spec_clause_holds(&reg->clauses[c], p->n_y, y, tol))
            return 1;
    return 0;
}
