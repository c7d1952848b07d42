/* nonlin_relax.c: interval rules and linear relaxations of scalar
 * nonlinearities (bnd_nl_interval, bnd_nl_relax).
 *
 * Key idea: soundness and tightness are separated. A slope s is chosen by any
 * (floating-point, heuristic) rule: chord, tangent, or the tangent of the
 * convex/concave envelope at a point. The intercept is then the rigorous
 * bound of max (upper line) or min (lower line) of f(x) - s*x over [l, u],
 * computed piece by piece from the convexity pieces of f: on a piece where
 * f - s*x is convex its max is at the piece's ends; where it is concave, it is
 * below its tangent at any t, f(t) - s*t + (f'(t) - s)(x - t), with f(t),
 * f'(t) enclosed rigorously and every operation rounded outward. The line is
 * therefore valid over the reals whatever the slope's rounding error. */
#include <math.h>
#include <stddef.h>

#include "../core/err.h"
#include "nonlin_ops.h"

static const char *const names[BND_NL_COUNT] = {
    "Sigmoid", "Tanh", "Exp", "Log", "Sin", "Cos", "Erf", "Softplus", "Sqrt",
    "Reciprocal", "Pow", "Gelu", "Relu", "LeakyRelu", "Abs", "GeluTanh"};

const char *bnd_nl_name(bnd_nl_kind k)
{
    return (unsigned)k < BND_NL_COUNT ? names[k] : "?";
}

int bnd_nl_interval(bnd_nl_kind k, double param, double l, double u,
                    double *fl, double *fu)
{
    int rc = nl_check(k, param, l, u);
    if (rc)
        return rc;
    /* Each kind is monotone between the critical points nl_crit lists. */
    nl_iv a = nl_f(k, param, l), b = nl_f(k, param, u), c[4];
    double lo = fmin(a.lo, b.lo), hi = fmax(a.hi, b.hi);
    int n = nl_crit(k, param, l, u, c);
    for (int i = 0; i < n; i++) {
        lo = fmin(lo, c[i].lo);
        hi = fmax(hi, c[i].hi);
    }
    *fl = isnan(lo) ? -INFINITY : lo;
    *fu = isnan(hi) ? INFINITY : hi;
    return 0;
}

/* A finite value inside an enclosure (for choosing slopes only). */
static double mid(nl_iv a)
{
    if (isfinite(a.lo) && isfinite(a.hi))
        return 0.5 * a.lo + 0.5 * a.hi;
    return isfinite(a.lo) ? a.lo : a.hi;
}

static double dmid(bnd_nl_kind k, double param, double x)
{
    return nl_dfa(k, param, x);
}

/* A point t in [a, b] with f'(t) ~ s, f' monotone on [a, b] (increasing when
 * curv > 0): safeguarded Newton. Any t is sound; a good one is tight. */
static double dinv(bnd_nl_kind k, double param, double s, double a, double b, int curv)
{
    double ga = (dmid(k, param, a) - s) * curv, gb = (dmid(k, param, b) - s) * curv;
    if (!(ga < 0))
        return a;
    if (!(gb > 0))
        return b;
    double lo = a, hi = b, x = 0.5 * (a + b);
    for (int it = 0; it < 60; it++) {
        double f0, d1, d2;
        nl_fa3(k, param, x, &f0, &d1, &d2);
        double g = d1 - s;
        if (g == 0)
            return x;
        if (g * curv < 0)
            lo = x;
        else
            hi = x;
        double xn = x - g / d2;
        if (!(xn > lo && xn < hi))
            xn = 0.5 * (lo + hi);
        if (xn == x || hi - lo <= 0x1p-50 * (fabs(lo) + fabs(hi)))
            return xn;
        x = xn;
    }
    return x;
}

/* Upper bound of f - s*x at x (f <= fhi), rounded up; lower likewise. */
static double lin_up(double fhi, double s, double x)
{
    return nl_up(fhi - nl_dn(s * x));
}

static double lin_dn(double flo, double s, double x)
{
    return nl_dn(flo - nl_up(s * x));
}

/* Rigorous bound of max (upper) / min (lower) of f(x) - s*x over the pieces;
 * 'hint' is a preferred tangent point (NAN: none). May return +-INFINITY. */
static double icpt_bound(bnd_nl_kind k, double param, const nl_pieces *pc, double s,
                         double hint, int upper)
{
    double best = upper ? -INFINITY : INFINITY;
    for (int i = 0; i < pc->n; i++) {
        double a = pc->x[i], b = pc->x[i + 1], v;
        int c = pc->curv[i];
        if (c == 0 || (upper ? c > 0 : c < 0)) {
            v = upper ? fmax(lin_up(pc->fx[i].hi, s, a), lin_up(pc->fx[i + 1].hi, s, b))
                      : fmin(lin_dn(pc->fx[i].lo, s, a), lin_dn(pc->fx[i + 1].lo, s, b));
        } else {
            double t = hint >= a && hint <= b ? hint : dinv(k, param, s, a, b, c);
            nl_iv ft = nl_f(k, param, t), d = nl_df(k, param, t);
            nl_iv ds = {nl_dn(d.lo - s), nl_up(d.hi - s)};
            nl_iv dx = {nl_dn(a - t), nl_up(b - t)};
            nl_iv term = nl_iv_mul(ds, dx);
            v = upper ? nl_up(lin_up(ft.hi, s, t) + term.hi)
                      : nl_dn(lin_dn(ft.lo, s, t) + term.lo);
        }
        if (isnan(v))
            return upper ? INFINITY : -INFINITY;
        best = upper ? fmax(best, v) : fmin(best, v);
    }
    return upper ? nl_up(best + pc->slack) : nl_dn(best - pc->slack);
}

/* Floating-point estimate of the same (for searching slopes). */
static double icpt_approx(bnd_nl_kind k, double param, const nl_pieces *pc, double s,
                          int upper)
{
    double best = upper ? -INFINITY : INFINITY;
    for (int i = 0; i < pc->n; i++) {
        double a = pc->x[i], b = pc->x[i + 1], v;
        int c = pc->curv[i];
        if (c == 0 || (upper ? c > 0 : c < 0)) {
            double va = mid(pc->fx[i]) - s * a, vb = mid(pc->fx[i + 1]) - s * b;
            v = upper ? fmax(va, vb) : fmin(va, vb);
        } else {
            double t = dinv(k, param, s, a, b, c);
            v = nl_fa(k, param, t) - s * t;
        }
        best = upper ? fmax(best, v) : fmin(best, v);
    }
    return best;
}

/* Slope of the tangent to the concave (upper) / convex (lower) envelope of f
 * over [l, u] at p: the s minimising s*p + max(f - s*x) (resp. maximising
 * s*p + min(f - s*x)), a convex problem in s solved by golden section. */
static double envelope_slope(bnd_nl_kind k, double param, const nl_pieces *pc, double p,
                             int upper)
{
    double sa = INFINITY, sb = -INFINITY;
    for (int i = 0; i <= pc->n; i++) {
        double d = dmid(k, param, pc->x[i]);
        sa = fmin(sa, d);
        sb = fmax(sb, d);
    }
    const double g = 0.6180339887498949;
    double sign = upper ? 1.0 : -1.0;
    double x1 = sb - g * (sb - sa), x2 = sa + g * (sb - sa);
    double h1 = sign * (x1 * p) + sign * icpt_approx(k, param, pc, x1, upper);
    double h2 = sign * (x2 * p) + sign * icpt_approx(k, param, pc, x2, upper);
    for (int it = 0; it < 80 && sb - sa > 0x1p-32 * (fabs(sa) + fabs(sb)); it++) {
        if (h1 <= h2) {
            sb = x2;
            x2 = x1;
            h2 = h1;
            x1 = sb - g * (sb - sa);
            h1 = sign * (x1 * p) + sign * icpt_approx(k, param, pc, x1, upper);
        } else {
            sa = x1;
            x1 = x2;
            h1 = h2;
            x2 = sa + g * (sb - sa);
            h2 = sign * (x2 * p) + sign * icpt_approx(k, param, pc, x2, upper);
        }
    }
    /* the envelope is often the chord: keep it when it is at least as good */
    double s = 0.5 * (sa + sb);
    double chord = (mid(pc->fx[pc->n]) - mid(pc->fx[0])) / (pc->x[pc->n] - pc->x[0]);
    double hs = sign * (s * p + icpt_approx(k, param, pc, s, upper));
    double hc = sign * (chord * p + icpt_approx(k, param, pc, chord, upper));
    return hc <= hs ? chord : s;
}

/* Two pieces of opposite curvature meeting at c (S-shapes, or any kind
 * whose [l, u] holds one inflection): the tangent of the concave envelope of
 * F = sgn*f at p, in closed form up to one root. With the concave piece on the
 * right, the envelope is the chord from (l, F(l)) to the point d where the
 * tangent passes through (l, F(l)), then F itself on [d, u]; g(t) = F(t) +
 * F'(t)(e - t) - F(e), e the far end, is monotone on the concave piece and
 * vanishes at d. Mirrored when the concave piece is on the left. *touch is
 * where the tangent touches f (NAN when the chord is returned). */
static double two_piece_slope(bnd_nl_kind k, double param, const nl_pieces *pc, double p,
                              double sgn, double *touch)
{
    *touch = NAN;
    double l = pc->x[0], c = pc->x[1], u = pc->x[2];
    int right = sgn * pc->curv[1] < 0; /* concave piece of F on the right */
    double e = right ? l : u, fe = sgn * mid(pc->fx[right ? 0 : 2]);
    double chord = sgn * (mid(pc->fx[2]) - mid(pc->fx[0])) / (u - l);
#define G(t) (sgn * nl_fa(k, param, t) + sgn * nl_dfa(k, param, t) * (e - (t)) - fe)
    if (right ? p >= c : p <= c) {
        if (G(p) >= 0) {
            *touch = p;
            return sgn * nl_dfa(k, param, p);
        }
    }
    /* g < 0 towards the inflection, > 0 towards the far end of the piece */
    double a = right ? fmax(c, p) : fmin(c, p), b = right ? u : l;
    if (!(G(b) > 0))
        return chord;
    double t = 0.5 * (a + b);
    for (int it = 0; it < 60; it++) {
        double f0, d1, d2;
        nl_fa3(k, param, t, &f0, &d1, &d2);
        double g = sgn * f0 + sgn * d1 * (e - t) - fe;
        if (g == 0)
            break;
        if (g < 0)
            a = t;
        else
            b = t;
        double dg = sgn * d2 * (e - t);
        double tn = t - g / dg;
        if (!(tn > fmin(a, b) && tn < fmax(a, b)))
            tn = 0.5 * (a + b);
        if (tn == t || fabs(b - a) <= 0x1p-45 * (fabs(a) + fabs(b)))
            break;
        t = tn;
    }
#undef G
    *touch = t;
    return sgn * nl_dfa(k, param, t);
}

static double frac(double tau, double dflt)
{
    if (isnan(tau))
        return dflt;
    return tau < 0 ? 0.0 : tau > 1 ? 1.0 : tau;
}

/* The interval of f over [l, u] from the pieces' end values (nl_pieces_of
 * already enclosed f(l) and f(u)) and the interior extrema: bnd_nl_interval
 * without evaluating f twice. */
static void interval_of(bnd_nl_kind k, double param, const nl_pieces *pc, double *fl,
                        double *fu)
{
    nl_iv c[4];
    double lo = fmin(pc->fx[0].lo, pc->fx[pc->n].lo), hi = fmax(pc->fx[0].hi, pc->fx[pc->n].hi);
    int n = nl_crit(k, param, pc->x[0], pc->x[pc->n], c);
    for (int i = 0; i < n; i++) {
        lo = fmin(lo, c[i].lo);
        hi = fmax(hi, c[i].hi);
    }
    *fl = isnan(lo) ? -INFINITY : lo;
    *fu = isnan(hi) ? INFINITY : hi;
}

enum { SIDE_LO = 1, SIDE_UP = 2 };

/* Derivative by tau of a line that touches f at t, when the tangent point is
 * p = l + tau w itself: slope f'(p), intercept f(p) - f'(p) p. A line that
 * touches elsewhere (a chord, or the tangent from the far end) does not move
 * with tau. */
static void line_dtau(bnd_nl_kind k, double param, double t, double p, double w, double *ds,
                      double *db)
{
    if (t == p) {
        double f0, d1, d2;
        nl_fa3(k, param, p, &f0, &d1, &d2);
        *ds = d2 * w;
        *db = -d2 * p * w;
    } else {
        *ds = *db = 0.0;
    }
}

/* What the lines of [l, u] share whatever their tau and side: the checks,
 * the convexity pieces with f at their ends, and f's range (nonlin.h). */
struct bnd_nl_prep {
    bnd_nl_kind k;
    double param, l, u;
    int rc, cut;       /* rc: nl_check's or the interval's error; cut: pc is valid */
    double fl, fu;     /* f's interval over [l, u] */
    nl_pieces pc;
};

size_t bnd_nl_prep_size(void)
{
    return sizeof(bnd_nl_prep);
}

int bnd_nl_prep_make(bnd_nl_kind k, double param, double l, double u, bnd_nl_prep *p)
{
    p->k = k, p->param = param, p->l = l, p->u = u, p->cut = 0;
    p->rc = nl_check(k, param, l, u);
    if (p->rc)
        return p->rc;
    p->cut = l != u && nl_pieces_of(k, param, l, u, &p->pc) == 0;
    if (p->cut)
        interval_of(k, param, &p->pc, &p->fl, &p->fu);
    else
        p->rc = bnd_nl_interval(k, param, l, u, &p->fl, &p->fu);
    return p->rc;
}

/* bnd_nl_relax for the sides asked (SIDE_LO | SIDE_UP); the other side's
 * fields are left as they are. With d, also the asked sides' derivatives by
 * their tau where known in closed form (NAN where not: wide sin/cos
 * intervals, whose envelope is searched). */
static int relax_prep(const bnd_nl_prep *pp, double tau_lo, double tau_up, int sides,
                      bnd_lines *out, bnd_lines *d)
{
    if (d)
        *d = (bnd_lines){0.0, 0.0, 0.0, 0.0};
    if (pp->rc)
        return pp->rc;
    bnd_nl_kind k = pp->k;
    double param = pp->param, l = pp->l, u = pp->u, fl = pp->fl, fu = pp->fu;
    int cut = pp->cut;
    const nl_pieces *pcp = &pp->pc;
    /* the interval is always a valid (flat) pair of lines: the fallback */
    if (sides & SIDE_LO)
        out->lo_slope = 0.0, out->lo_icpt = fl;
    if (sides & SIDE_UP)
        out->up_slope = 0.0, out->up_icpt = fu;
    if (!cut)
        return 0;
    double w = u - l;
    double chord = (mid(pcp->fx[pcp->n]) - mid(pcp->fx[0])) / w;
    double s_lo = NAN, s_up = NAN, h_lo = NAN, h_up = NAN;
    int same = 1;
    for (int i = 1; i < pcp->n; i++)
        same &= pcp->curv[i] == pcp->curv[0];
    if (nl_is_kinked(k) && pcp->n == 2) {
        /* the free line pivots at the kink (0, 0) between the two pieces'
         * slopes; CROWN's adaptive default follows the longer side (no
         * closed-form derivative is given: beta.c optimises these) */
        if (d)
            *d = (bnd_lines){NAN, NAN, NAN, NAN};
        d = NULL;
        double sl = dmid(k, param, l), sr = dmid(k, param, u);
        double dflt = l + u > 0 ? 1.0 : 0.0;
        if (sl <= sr) { /* convex kink (ReLU, Abs, LeakyReLU slope <= 1) */
            s_up = chord;
            s_lo = sl + frac(tau_lo, dflt) * (sr - sl);
        } else { /* concave kink (LeakyReLU slope > 1) */
            s_lo = chord;
            s_up = sl + frac(tau_up, dflt) * (sr - sl);
        }
    } else if (same) {
        int c = pcp->curv[0];
        double p_lo = l + frac(tau_lo, 0.5) * w, p_up = l + frac(tau_up, 0.5) * w;
        if (c > 0) {
            s_up = chord;
            s_lo = sides & SIDE_LO ? dmid(k, param, p_lo) : NAN;
            h_lo = p_lo;
        } else if (c < 0) {
            s_lo = chord;
            s_up = sides & SIDE_UP ? dmid(k, param, p_up) : NAN;
            h_up = p_up;
        } else {
            s_lo = s_up = chord;
        }
    } else if (pcp->n == 2) {
        /* the touching points are where f' equals the slopes: the hints
         * that spare icpt_bound its own search */
        if (sides & SIDE_LO)
            s_lo = -two_piece_slope(k, param, pcp, l + frac(tau_lo, 0.5) * w, -1.0, &h_lo);
        if (sides & SIDE_UP)
            s_up = two_piece_slope(k, param, pcp, l + frac(tau_up, 0.5) * w, 1.0, &h_up);
    } else {
        if (sides & SIDE_LO)
            s_lo = envelope_slope(k, param, pcp, l + frac(tau_lo, 0.5) * w, 0);
        if (sides & SIDE_UP)
            s_up = envelope_slope(k, param, pcp, l + frac(tau_up, 0.5) * w, 1);
        if (d)
            *d = (bnd_lines){NAN, NAN, NAN, NAN};
        d = NULL;
    }
    if ((sides & SIDE_LO) && isfinite(s_lo)) {
        double b = icpt_bound(k, param, pcp, s_lo, h_lo, 0);
        if (isfinite(b)) {
            out->lo_slope = s_lo;
            out->lo_icpt = b;
            if (d)
                line_dtau(k, param, h_lo, l + frac(tau_lo, 0.5) * w, w, &d->lo_slope,
                          &d->lo_icpt);
        }
    }
    if ((sides & SIDE_UP) && isfinite(s_up)) {
        double b = icpt_bound(k, param, pcp, s_up, h_up, 1);
        if (isfinite(b)) {
            out->up_slope = s_up;
            out->up_icpt = b;
            if (d)
                line_dtau(k, param, h_up, l + frac(tau_up, 0.5) * w, w, &d->up_slope,
                          &d->up_icpt);
        }
    }
    return 0;
}

static int relax_sides(bnd_nl_kind k, double param, double l, double u, double tau_lo,
                       double tau_up, int sides, bnd_lines *out, bnd_lines *d)
{
    bnd_nl_prep p;
    bnd_nl_prep_make(k, param, l, u, &p);
    return relax_prep(&p, tau_lo, tau_up, sides, out, d);
}

int bnd_nl_relax(bnd_nl_kind k, double param, double l, double u, double tau_lo,
                 double tau_up, bnd_lines *out)
{
    return relax_sides(k, param, l, u, tau_lo, tau_up, SIDE_LO | SIDE_UP, out, NULL);
}

int bnd_nl_relax_line(bnd_nl_kind k, double param, double l, double u, double tau, int upper,
                      double *slope, double *icpt, double *dslope, double *dicpt)
{
    bnd_nl_prep p;
    bnd_nl_prep_make(k, param, l, u, &p);
    return bnd_nl_relax_line_prep(&p, tau, upper, slope, icpt, dslope, dicpt);
}

int bnd_nl_relax_line_prep(const bnd_nl_prep *p, double tau, int upper, double *slope,
                           double *icpt, double *dslope, double *dicpt)
{
    bnd_lines r, d;
    int rc = relax_prep(p, upper ? NAN : tau, upper ? tau : NAN, upper ? SIDE_UP : SIDE_LO, &r,
                        dslope ? &d : NULL);
    if (rc == 0) {
        *slope = upper ? r.up_slope : r.lo_slope;
        *icpt = upper ? r.up_icpt : r.lo_icpt;
        if (dslope) {
            *dslope = upper ? d.up_slope : d.lo_slope;
            *dicpt = upper ? d.up_icpt : d.lo_icpt;
        }
    }
    return rc;
}

double bnd_nl_looseness(bnd_nl_kind k, double param, double l, double u)
{
    bnd_lines r;
    if (bnd_nl_relax(k, param, l, u, NAN, NAN, &r) != 0)
        return INFINITY;
    double v = (u - l) * ((r.up_slope - r.lo_slope) * 0.5 * (l + u) + r.up_icpt - r.lo_icpt);
    return isnan(v) ? INFINITY : v;
}

int bnd_nl_relax_n(bnd_nl_kind k, double param, int64_t n, const double *l, const double *u,
                   const double *tau_lo, const double *tau_up, double *lw, double *lb,
                   double *uw, double *ub)
{
    int first = 0;
    for (int64_t i = 0; i < n; i++) {
        bnd_lines r;
        int rc = bnd_nl_relax(k, param, l[i], u[i], tau_lo ? tau_lo[i] : NAN,
                              tau_up ? tau_up[i] : NAN, &r);
        if (rc) {
            r = (bnd_lines){0.0, -INFINITY, 0.0, INFINITY};
            first = first ? first : rc;
        }
        lw[i] = r.lo_slope, lb[i] = r.lo_icpt, uw[i] = r.up_slope, ub[i] = r.up_icpt;
    }
    return first;
}

