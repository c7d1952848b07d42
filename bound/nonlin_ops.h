/* nonlin_ops.h: private to bound/nonlin_*.c. Rigorous enclosures of each
 * nonlinearity and its derivative at a point, its convexity pieces and its
 * critical points, plus the outward-rounding helpers they are built from. */
#ifndef BOUND_NONLIN_OPS_H
#define BOUND_NONLIN_OPS_H

#include "../core/fpstep.h"
#include "nonlin.h"

/* A closed real interval [lo, hi] that contains the exact value. */
typedef struct nl_iv {
    double lo, hi;
} nl_iv;

#define NL_MAX_PIECES 8

/* [l, u] cut at the inflection points of f (and kinks): piece i is
 * [x[i], x[i+1]] with curvature curv[i] (+1 convex, -1 concave, 0 linear).
 * fx[i] encloses f(x[i]). 'slack' is an absolute amount that covers
 * inflection points known only approximately (sin, cos, gelu): every bound
 * derived from the pieces is loosened by it. */
typedef struct nl_pieces {
    int n;
    double x[NL_MAX_PIECES + 1];
    nl_iv fx[NL_MAX_PIECES + 1];
    int curv[NL_MAX_PIECES];
    double slack;
} nl_pieces;

/* one step down / up: inline, they sit in every enclosure */
static inline double nl_dn(double x) { return fp_down(x); }
static inline double nl_up(double x) { return fp_up(x); }
nl_iv nl_iv_add(nl_iv a, nl_iv b);
nl_iv nl_iv_mul(nl_iv a, nl_iv b);

/* 0 if (k, param) is valid and f is defined on all of [l, u], else an ERR_*. */
int nl_check(bnd_nl_kind k, double param, double l, double u);
/* Enclosures of f(x) and f'(x) (one-sided derivatives agree except at kinks,
 * where the right derivative is returned). */
nl_iv nl_f(bnd_nl_kind k, double param, double x);
nl_iv nl_df(bnd_nl_kind k, double param, double x);
/* Plain floating-point f(x), f'(x) (guide the choice of slopes only). */
double nl_fa(bnd_nl_kind k, double param, double x);
double nl_dfa(bnd_nl_kind k, double param, double x);
/* Approximate f''(x) (only guides Newton steps, never used for soundness). */
double nl_d2f(bnd_nl_kind k, double param, double x);
/* nl_fa, nl_dfa and nl_d2f at one x, sharing the costly part (one sincos or
 * one exp for the common kinds): the Newton searches' inner loop. */
void nl_fa3(bnd_nl_kind k, double param, double x, double *f, double *d1, double *d2);
/* Pieces of [l, u] (l < u, f defined there). Returns 0 or ERR_VALUE when
 * [l, u] is too wide to cut (the caller then uses the interval). */
int nl_pieces_of(bnd_nl_kind k, double param, double l, double u, nl_pieces *pc);
/* Enclosures of f at its interior extrema that may lie in [l, u] (included
 * conservatively when near an end); returns how many (<= 4). */
int nl_crit(bnd_nl_kind k, double param, double l, double u, nl_iv *val);
/* 1 for ReLU-like kinds whose pieces are all linear. */
int nl_is_kinked(bnd_nl_kind k);

#endif
