/* spec.h: a verification property, parsed from VNNLIB.
 *
 * A property is a list of regions. Each region is an input box together with
 * the unsafe output condition that applies to it, in disjunctive normal form:
 * a list of clauses, each a conjunction of rows  C y <= d.  The property HOLDS
 * (answer "unsat") iff no region has an x in its box and a clause whose rows
 * all hold at y = f(x). VNN-COMP files either give one box (or an `or` of
 * boxes, each becoming a region sharing the output condition) and an output
 * condition, or an `or` of `and`s pairing boxes with output constraints.
 */
#ifndef SPECS_SPEC_H
#define SPECS_SPEC_H

#include <stdint.h>

#include "../core/err.h"

typedef struct spec_clause {
    int n_rows;
    double *C;   /* n_rows x n_y, row-major */
    double *d;   /* n_rows */
} spec_clause;

typedef struct spec_region {
    double *lo, *hi;      /* n_x each */
    int n_clauses;
    spec_clause *clauses;
} spec_region;

typedef struct spec_property {
    int64_t n_x, n_y;     /* number of declared X_i and Y_j */
    int n_regions;
    spec_region *regions;
} spec_property;

/* Parse a .vnnlib or .vnnlib.gz file (gz detected from content). Streaming. */
int spec_parse_vnnlib(const char *path, spec_property **out, err *e);
int spec_parse_vnnlib_string(const char *source, const char *text, spec_property **out, err *e);
void spec_free(spec_property *p);

/* 1 if y (n_y values) satisfies every row of clause c within tol
 * (row value <= d + tol), else 0. */
int spec_clause_holds(const spec_clause *c, int64_t n_y, const double *y, double tol);
/* 1 if x lies in region r's box (within tol) and some clause holds at y. */
int spec_region_violated(const spec_property *p, int r, const double *x, const double *y, double tol);

#endif
