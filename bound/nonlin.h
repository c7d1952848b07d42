/* nonlin.h: sound per-neuron interval rules and linear relaxations of scalar
 * nonlinearities, McCormick planes of products, and branching points.
 *
 * Everything here is valid over the reals for the real function, whatever the
 * rounding of libm and of our own arithmetic (docs/nonlin.md gives the
 * argument): a line lo_slope*x + lo_icpt <= f(x) <= up_slope*x + up_icpt holds
 * for every real x in [l, u] when the coefficients are read as exact doubles.
 * Slopes are always finite. An intercept may be -INFINITY (lower) or +INFINITY
 * (upper), meaning "no finite line on that side" (e.g. exp overflowing): the
 * caller then uses the interval from bnd_nl_interval instead.
 *
 * The free parameter of a relaxation ('tau', for alpha-CROWN) picks the point
 * p = l + tau*(u - l) at which the line touches the convex (lower line) or
 * concave (upper line) envelope of f over [l, u]; NAN means tau = 0.5, the line
 * of least area. For ReLU/LeakyReLU/Abs crossing 0, the free line instead
 * has slope left + tau*(right - left) through the kink (the usual alpha-CROWN
 * parameter); NAN = CROWN's adaptive choice. docs/nonlin.md has the details
 * (CROWN's own S-shape choice is tau_lo = 1, tau_up = 0). */
#ifndef BOUND_NONLIN_H
#define BOUND_NONLIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct bnd_lines {
    double lo_slope, lo_icpt, up_slope, up_icpt;
} bnd_lines;

/* 'param': LeakyReLU's negative slope; Pow's exponent (an integer in
 * [-BND_NL_POW_MAX, BND_NL_POW_MAX]); unused (pass 0) for the others. */
typedef enum {
    BND_NL_SIGMOID, BND_NL_TANH, BND_NL_EXP, BND_NL_LOG, BND_NL_SIN, BND_NL_COS,
    BND_NL_ERF, BND_NL_SOFTPLUS, BND_NL_SQRT, BND_NL_RECIPROCAL, BND_NL_POW,
    BND_NL_GELU, BND_NL_RELU, BND_NL_LEAKYRELU, BND_NL_ABS,
    BND_NL_GELU_TANH, /* 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), ONNX approximate="tanh" */
    BND_NL_COUNT
} bnd_nl_kind;

#define BND_NL_POW_MAX 64

/* f(x) by libm, not rounded outward: for candidate points and attacks,
 * never for bounds. */
double bnd_nl_value(bnd_nl_kind k, double param, double x);

/* Name for messages ("Sigmoid"). */
const char *bnd_nl_name(bnd_nl_kind k);

/* Sound enclosure [*fl, *fu] of f over [l, u] (outward rounded; may be
 * infinite, e.g. exp beyond 709.78). Returns 0, ERR_ARG for a bad kind, param
 * or l > u / NaN, ERR_VALUE where f is undefined somewhere on [l, u] (Log of
 * x <= 0, Sqrt of x < 0, Reciprocal or negative Pow across 0). */
int bnd_nl_interval(bnd_nl_kind k, double param, double l, double u,
                    double *fl, double *fu);

/* Sound lower and upper lines of f over [l, u]; tau_lo / tau_up in [0, 1]
 * (or NAN) choose the free lower / upper line as described above. Returns as
 * bnd_nl_interval. */
int bnd_nl_relax(bnd_nl_kind k, double param, double l, double u,
                 double tau_lo, double tau_up, bnd_lines *out);

/* One of the two lines (upper != 0: the upper one) for its tau: the same
 * line bnd_nl_relax gives, at about half the cost. With dslope (and dicpt)
 * not NULL, also the line's derivative by tau where it has a closed form
 * (the tangent point moves with tau, or the line does not move), NAN where
 * not (wide sin/cos intervals): for alpha-CROWN's steps only, not a bound.
 * Returns as bnd_nl_relax. */
int bnd_nl_relax_line(bnd_nl_kind k, double param, double l, double u, double tau, int upper,
                      double *slope, double *icpt, double *dslope, double *dicpt);

/* The part of the lines that depends on the interval alone (its convexity
 * pieces, f's enclosures at their ends, f's range): made once per neuron and
 * shared by the many lines alpha-CROWN's rounds ask of it. Opaque; an array
 * of them is bnd_nl_prep_size() bytes apart. _make returns as bnd_nl_relax
 * would; bnd_nl_relax_line_prep gives exactly bnd_nl_relax_line's line. */
typedef struct bnd_nl_prep bnd_nl_prep;
size_t bnd_nl_prep_size(void);
int bnd_nl_prep_make(bnd_nl_kind k, double param, double l, double u, bnd_nl_prep *p);
int bnd_nl_relax_line_prep(const bnd_nl_prep *p, double tau, int upper, double *slope,
                           double *icpt, double *dslope, double *dicpt);

/* The same for n neurons (arrays of n; tau_lo / tau_up may be NULL for the
 * defaults); lines go to lw·x + lb <= f(x) <= uw·x + ub. Returns 0 or the
 * first error (the remaining neurons still get lines, the interval ones
 * [-inf, inf] where f is undefined). */
int bnd_nl_relax_n(bnd_nl_kind k, double param, int64_t n, const double *l, const double *u,
                   const double *tau_lo, const double *tau_up, double *lw, double *lb,
                   double *uw, double *ub);

/* Split point in (l, u) for branching on this neuron: the point that
 * minimises the summed looseness (area between the lines) of the two halves,
 * from a lookup table built lazily at first use (thread-safe); the midpoint
 * outside the table's grid or for kinds without a table. */
double bnd_nl_branch_point(bnd_nl_kind k, double param, double l, double u);

/* Looseness of the default relaxation: integral over [l, u] of (upper line -
 * lower line); +INFINITY when a line is missing or on error. */
double bnd_nl_looseness(bnd_nl_kind k, double param, double l, double u);

/* McCormick planes of z = x*y over [xl, xu] x [yl, yu]:
 *   z >= lower[i].a_x*x + lower[i].a_y*y + lower[i].c   (i = 0, 1)
 *   z <= upper[i].a_x*x + upper[i].a_y*y + upper[i].c   (i = 0, 1)
 * valid over the reals on the box (constants rounded outward); any convex
 * combination of the two planes of one side is valid too (alpha-CROWN).
 * Returns ERR_ARG for NaN or empty boxes, ERR_VALUE if a constant overflows. */
typedef struct bnd_plane {
    double a_x, a_y, c;
} bnd_plane;

int bnd_nl_mccormick(double xl, double xu, double yl, double yu,
                     bnd_plane lower[2], bnd_plane upper[2]);

/* Outward-rounded enclosure of x*y over the box. */
void bnd_nl_product_interval(double xl, double xu, double yl, double yu,
                             double *zl, double *zu);

#endif
