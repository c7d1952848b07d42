/* nonlin_funcs.c: rigorous point enclosures of each nonlinearity f and of f',
 * its convexity pieces and its interior extrema.
 *
 * Key idea: every value is an interval that contains the exact real value.
 * A libm result y is widened by |y|*NL_REL + NL_TINY and then rounded
 * outward; that covers any libm error below NL_REL relative (we assume glibc's
 * documented bound of a few ulp, far below 2^-46) plus underflow. Arguments
 * that are not exact (x/sqrt(2), x*x) are carried as intervals and pushed
 * through monotone functions at both ends, and sums/products round outward
 * one step outward (core/fpstep.h), so no cancellation or argument error is ever ignored. */
#include "../core/fpstep.h"
#include "nonlin_ops.h"

#include <float.h>
#include <math.h>
#include <stddef.h>

#include "../core/err.h"

#define NL_REL 0x1p-46
#define NL_TINY 0x1p-1000

/* GeLU's minimum: at x* = -0.75179152469356446 (mpmath, 40 digits), value
 * -0.16997120747990366...; the constants below enclose both. */
#define GELU_XMIN (-0.7517915246935645)
#define GELU_FMIN_LO (-0.1699712074799040)
#define GELU_FMIN_HI (-0.1699712074799030)
/* The tanh form x*sigmoid(w), w = 2c(x + a x^3), c = sqrt(2/pi), a = 0.044715
 * (mpmath, 50 digits): inflections at +-1.418504008790828355548, minimum
 * -0.17004075057125405064 at -0.75246142207101625849. */
#define GT_INFL 1.4185040087908284
#define GT_XMIN (-0.7524614220710163)
#define GT_FMIN_LO (-0.1700407505712541)
#define GT_FMIN_HI (-0.1700407505712540)

/* A finite value inside an enclosure. */
static double mid_of(nl_iv a)
{
    if (isfinite(a.lo) && isfinite(a.hi))
        return 0.5 * a.lo + 0.5 * a.hi;
    return isfinite(a.lo) ? a.lo : a.hi;
}

static nl_iv pt(double x)
{
    return (nl_iv){x, x};
}

/* Enclosure of the exact value behind a libm result y. */
static nl_iv widen(double y)
{
    if (isnan(y))
        return (nl_iv){-INFINITY, INFINITY};
    if (isinf(y))
        return y > 0 ? (nl_iv){0x1p1023, INFINITY} : (nl_iv){-INFINITY, -0x1p1023};
    double m = fabs(y) * NL_REL + NL_TINY;
    return (nl_iv){nl_dn(y - m), nl_up(y + m)};
}

static nl_iv clamp(nl_iv a, double lo, double hi)
{
    if (a.lo < lo)
        a.lo = lo;
    if (a.hi > hi)
        a.hi = hi;
    return a;
}

nl_iv nl_iv_add(nl_iv a, nl_iv b)
{
    double lo = a.lo + b.lo, hi = a.hi + b.hi;
    return (nl_iv){isnan(lo) ? -INFINITY : nl_dn(lo), isnan(hi) ? INFINITY : nl_up(hi)};
}

static double prod0(double a, double b)
{
    double p = a * b;
    return isnan(p) ? 0.0 : p; /* 0 * inf: an exact 0 times any real */
}

nl_iv nl_iv_mul(nl_iv a, nl_iv b)
{
    double p[4] = {prod0(a.lo, b.lo), prod0(a.lo, b.hi), prod0(a.hi, b.lo),
                   prod0(a.hi, b.hi)};
    double lo = p[0], hi = p[0];
    for (int i = 1; i < 4; i++) { /* no NaN here: plain compares, not libm's fmin */
        lo = p[i] < lo ? p[i] : lo;
        hi = p[i] > hi ? p[i] : hi;
    }
    return (nl_iv){nl_dn(lo), nl_up(hi)};
}

static nl_iv neg(nl_iv a)
{
    return (nl_iv){-a.hi, -a.lo};
}

static nl_iv recip(nl_iv a)
{
    if (a.lo > 0 || a.hi < 0)
        return (nl_iv){nl_dn(1.0 / a.hi), nl_up(1.0 / a.lo)};
    return (nl_iv){-INFINITY, INFINITY};
}

/* Monotone increasing / decreasing libm function of an interval argument. */
static nl_iv inc(double (*fn)(double), nl_iv a)
{
    nl_iv lo = widen(fn(a.lo));
    nl_iv hi = a.hi == a.lo ? lo : widen(fn(a.hi));
    return (nl_iv){lo.lo, hi.hi};
}

static nl_iv dec(double (*fn)(double), nl_iv a)
{
    nl_iv lo = widen(fn(a.hi));
    nl_iv hi = a.hi == a.lo ? lo : widen(fn(a.lo));
    return (nl_iv){lo.lo, hi.hi};
}

static double exp_neg(double x)
{
    return exp(-x);
}

/* sigmoid(x) = 1/(1+e), e = exp(-x), for x >= 0; e/(1+e), e = exp(x),
 * below. Both are monotone in e, so the enclosure of e is pushed through at
 * its ends, each operation rounded outward (the hot path of GenBaB on sigmoid
 * nets: no general interval products). */
static nl_iv sigmoid_iv(double x)
{
    nl_iv e = widen(exp(-fabs(x)));
    nl_iv r;
    if (x >= 0)
        r = (nl_iv){nl_dn(1.0 / nl_up(1.0 + e.hi)), nl_up(1.0 / nl_dn(1.0 + e.lo))};
    else
        r = (nl_iv){nl_dn(e.lo / nl_up(1.0 + e.lo)), nl_up(e.hi / nl_dn(1.0 + e.hi))};
    return clamp(r, 0.0, 1.0);
}

/* scale * e/(1+e)^2 with e = exp(-c|x|) enclosed, e <= 1 where the function
 * increases in e: the derivative of sigmoid (c = 1, scale 1) and of tanh
 * (c = 2, scale 4) without cancellation. */
static nl_iv bell(double x, double c, double scale)
{
    nl_iv e = clamp(widen(exp(-c * fabs(x))), 0.0, 1.0);
    double dl = nl_up(1.0 + e.lo), dh = nl_dn(1.0 + e.hi);
    return (nl_iv){nl_dn(nl_dn(scale * e.lo) / nl_up(dl * dl)),
                   nl_up(nl_up(scale * e.hi) / nl_dn(dh * dh))};
}

static nl_iv const_iv(double c)
{
    return (nl_iv){nl_dn(c), nl_up(c)}; /* c is the rounded-to-nearest constant */
}

/* Phi(x) = erfc(-x/sqrt 2)/2 and phi(x) = exp(-x^2/2)/sqrt(2 pi). */
static nl_iv Phi_iv(double x)
{
    nl_iv z = nl_iv_mul(pt(-x), const_iv(M_SQRT1_2));
    return nl_iv_mul(dec(erfc, z), pt(0.5));
}

static nl_iv phi_iv(double x)
{
    nl_iv h = nl_iv_mul(nl_iv_mul(pt(x), pt(x)), pt(0.5));
    nl_iv e = inc(exp, neg(h));
    nl_iv k = nl_iv_mul(nl_iv_mul(const_iv(M_2_SQRTPI), const_iv(M_SQRT1_2)), pt(0.5));
    return nl_iv_mul(e, k);
}

/* sigmoid over an interval (increasing) and sigmoid' over an interval
 * (decreasing in |w|). */
static nl_iv sigmoid_of(nl_iv w)
{
    return (nl_iv){sigmoid_iv(w.lo).lo, sigmoid_iv(w.hi).hi};
}

static nl_iv bell_of(nl_iv w)
{
    double mlo = w.lo >= 0 ? w.lo : w.hi <= 0 ? -w.hi : 0.0;
    double mhi = fmax(fabs(w.lo), fabs(w.hi));
    return (nl_iv){bell(mhi, 1.0, 1.0).lo, bell(mlo, 1.0, 1.0).hi};
}

/* 2c with c = sqrt(2/pi): sqrt(2.0/M_PI) is within 3 ulp of c. */
static nl_iv gt_2c(void)
{
    return nl_iv_mul(pt(2.0), widen(sqrt(2.0 / M_PI)));
}

static nl_iv gt_w(double x)
{
    nl_iv X = pt(x), x3 = nl_iv_mul(nl_iv_mul(X, X), X);
    return nl_iv_mul(gt_2c(), nl_iv_add(X, nl_iv_mul(const_iv(0.044715), x3)));
}

static nl_iv gt_dw(double x)
{
    nl_iv X = pt(x), a3 = nl_iv_mul(pt(3.0), const_iv(0.044715));
    return nl_iv_mul(gt_2c(), nl_iv_add(pt(1.0), nl_iv_mul(a3, nl_iv_mul(X, X))));
}

nl_iv nl_f(bnd_nl_kind k, double param, double x)
{
    switch (k) {
    case BND_NL_SIGMOID:
        return sigmoid_iv(x);
    case BND_NL_TANH:
        return clamp(widen(tanh(x)), -1.0, 1.0);
    case BND_NL_EXP:
        return clamp(widen(exp(x)), 0.0, INFINITY);
    case BND_NL_LOG:
        return widen(log(x));
    case BND_NL_SIN:
        return clamp(widen(sin(x)), -1.0, 1.0);
    case BND_NL_COS:
        return clamp(widen(cos(x)), -1.0, 1.0);
    case BND_NL_ERF:
        return clamp(widen(erf(x)), -1.0, 1.0);
    case BND_NL_SOFTPLUS:
        if (x <= 0)
            return clamp(inc(log1p, widen(exp(x))), 0.0, INFINITY);
        return nl_iv_add(pt(x), clamp(inc(log1p, widen(exp(-x))), 0.0, INFINITY));
    case BND_NL_SQRT: {
        double y = sqrt(x); /* correctly rounded (IEEE 754) */
        return (nl_iv){fmax(0.0, nl_dn(y)), nl_up(y)};
    }
    case BND_NL_RECIPROCAL:
        return recip(pt(x));
    case BND_NL_POW:
        if (param == 0)
            return pt(1.0);
        return widen(pow(x, param));
    case BND_NL_GELU:
        return nl_iv_mul(pt(x), Phi_iv(x));
    case BND_NL_GELU_TANH: /* 0.5(1 + tanh z) = sigmoid(2z): no cancellation */
        return nl_iv_mul(pt(x), sigmoid_of(gt_w(x)));
    case BND_NL_RELU:
        return pt(x > 0 ? x : 0.0);
    case BND_NL_LEAKYRELU:
        return x >= 0 ? pt(x) : nl_iv_mul(pt(param), pt(x));
    case BND_NL_ABS:
        return pt(fabs(x));
    default:
        return (nl_iv){-INFINITY, INFINITY};
    }
}

nl_iv nl_df(bnd_nl_kind k, double param, double x)
{
    switch (k) {
    case BND_NL_SIGMOID:
        return bell(x, 1.0, 1.0);
    case BND_NL_TANH:
        return bell(x, 2.0, 4.0);
    case BND_NL_EXP:
        return clamp(widen(exp(x)), 0.0, INFINITY);
    case BND_NL_LOG:
        return recip(pt(x));
    case BND_NL_SIN:
        return clamp(widen(cos(x)), -1.0, 1.0);
    case BND_NL_COS:
        return clamp(neg(widen(sin(x))), -1.0, 1.0);
    case BND_NL_ERF: {
        nl_iv sq = nl_iv_mul(pt(x), pt(x));
        nl_iv e = dec(exp_neg, sq);
        return nl_iv_mul(e, const_iv(M_2_SQRTPI));
    }
    case BND_NL_SOFTPLUS:
        return sigmoid_iv(x);
    case BND_NL_SQRT:
        if (x <= 0)
            return pt(INFINITY);
        return nl_iv_mul(pt(0.5), recip(nl_f(k, param, x)));
    case BND_NL_RECIPROCAL: {
        nl_iv r = recip(pt(x));
        return neg(nl_iv_mul(r, r));
    }
    case BND_NL_POW:
        if (param == 0)
            return pt(0.0);
        return nl_iv_mul(pt(param), widen(pow(x, param - 1)));
    case BND_NL_GELU:
        return nl_iv_add(Phi_iv(x), nl_iv_mul(pt(x), phi_iv(x)));
    case BND_NL_GELU_TANH: {
        nl_iv w = gt_w(x);
        return nl_iv_add(sigmoid_of(w), nl_iv_mul(pt(x), nl_iv_mul(bell_of(w), gt_dw(x))));
    }
    case BND_NL_RELU:
        return pt(x >= 0 ? 1.0 : 0.0);
    case BND_NL_LEAKYRELU:
        return pt(x >= 0 ? 1.0 : param);
    case BND_NL_ABS:
        return pt(x >= 0 ? 1.0 : -1.0);
    default:
        return (nl_iv){-INFINITY, INFINITY};
    }
}

/* Plain sigmoid(w(x)) for the tanh form, with sigmoid'(w) and w'(x). */
static double gt_sig(double x, double *s1, double *dw)
{
    double c = sqrt(2.0 / M_PI), w = 2 * c * (x + 0.044715 * x * x * x);
    double s = w >= 0 ? 1.0 / (1.0 + exp(-w)) : exp(w) / (1.0 + exp(w));
    if (s1) {
        double e = exp(-fabs(w));
        *s1 = e / ((1 + e) * (1 + e));
        *dw = 2 * c * (1 + 3 * 0.044715 * x * x);
    }
    return s;
}

double nl_fa(bnd_nl_kind k, double param, double x)
{
    switch (k) {
    case BND_NL_SIGMOID:
        return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case BND_NL_TANH:
        return tanh(x);
    case BND_NL_SIN:
        return sin(x);
    case BND_NL_COS:
        return cos(x);
    case BND_NL_ERF:
        return erf(x);
    case BND_NL_POW:
        return pow(x, param);
    case BND_NL_GELU:
        return 0.5 * x * erfc(-x * M_SQRT1_2);
    case BND_NL_GELU_TANH:
        return x * gt_sig(x, NULL, NULL);
    default:
        return mid_of(nl_f(k, param, x));
    }
}

double nl_dfa(bnd_nl_kind k, double param, double x)
{
    switch (k) {
    case BND_NL_SIGMOID: {
        double e = exp(-fabs(x));
        return e / ((1 + e) * (1 + e));
    }
    case BND_NL_TANH: {
        double e = exp(-2 * fabs(x));
        return 4 * e / ((1 + e) * (1 + e));
    }
    case BND_NL_SIN:
        return cos(x);
    case BND_NL_COS:
        return -sin(x);
    case BND_NL_ERF:
        return M_2_SQRTPI * exp(-x * x);
    case BND_NL_POW:
        return param * pow(x, param - 1);
    case BND_NL_GELU:
        return 0.5 * erfc(-x * M_SQRT1_2) +
               x * exp(-0.5 * x * x) * 0.5 * M_2_SQRTPI * M_SQRT1_2;
    case BND_NL_GELU_TANH: {
        double s1, dw, s = gt_sig(x, &s1, &dw);
        return s + x * s1 * dw;
    }
    default:
        return mid_of(nl_df(k, param, x));
    }
}

double nl_d2f(bnd_nl_kind k, double param, double x)
{
    switch (k) {
    case BND_NL_SIGMOID: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1 - s) * (1 - 2 * s);
    }
    case BND_NL_TANH: {
        double t = tanh(x);
        return -2 * t * (1 - t * t);
    }
    case BND_NL_EXP:
        return exp(x);
    case BND_NL_LOG:
        return -1.0 / (x * x);
    case BND_NL_SIN:
        return -sin(x);
    case BND_NL_COS:
        return -cos(x);
    case BND_NL_ERF:
        return -2 * x * M_2_SQRTPI * exp(-x * x);
    case BND_NL_SOFTPLUS: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1 - s);
    }
    case BND_NL_SQRT:
        return -0.25 / (x * sqrt(x));
    case BND_NL_RECIPROCAL:
        return 2.0 / (x * x * x);
    case BND_NL_POW:
        return param * (param - 1) * pow(x, param - 2);
    case BND_NL_GELU:
        return exp(-0.5 * x * x) * 0.5 * M_2_SQRTPI * M_SQRT1_2 * (2 - x * x);
    case BND_NL_GELU_TANH: {
        double s1, dw, s = gt_sig(x, &s1, &dw);
        double c = sqrt(2.0 / M_PI), ddw = 12 * c * 0.044715 * x;
        return 2 * s1 * dw + x * (s1 * (1 - 2 * s) * dw * dw + s1 * ddw);
    }
    default:
        return 0.0;
    }
}

void nl_fa3(bnd_nl_kind k, double param, double x, double *f, double *d1, double *d2)
{
    switch (k) {
    case BND_NL_SIN:
    case BND_NL_COS: {
        double sn, cs;
        sincos(x, &sn, &cs);
        if (k == BND_NL_SIN)
            *f = sn, *d1 = cs, *d2 = -sn;
        else
            *f = cs, *d1 = -sn, *d2 = -cs;
        return;
    }
    case BND_NL_SIGMOID: {
        double e = exp(-fabs(x)), r = 1.0 / (1.0 + e);
        *f = x >= 0 ? r : e * r;
        *d1 = e * r * r;
        *d2 = *d1 * (1 - 2 * *f);
        return;
    }
    case BND_NL_TANH: {
        double m = expm1(-2 * fabs(x)), e = m + 1, t = -m / (2 + m); /* tanh |x| */
        *f = x >= 0 ? t : -t;
        *d1 = 4 * e / ((1 + e) * (1 + e));
        *d2 = -2 * *f * *d1;
        return;
    }
    default:
        *f = nl_fa(k, param, x);
        *d1 = nl_dfa(k, param, x);
        *d2 = nl_d2f(k, param, x);
    }
}

int nl_is_kinked(bnd_nl_kind k)
{
    return k == BND_NL_RELU || k == BND_NL_LEAKYRELU || k == BND_NL_ABS;
}

int nl_check(bnd_nl_kind k, double param, double l, double u)
{
    if ((unsigned)k >= BND_NL_COUNT || !isfinite(l) || !isfinite(u) || l > u ||
        !isfinite(param))
        return ERR_ARG;
    if (k == BND_NL_POW && (param != floor(param) || fabs(param) > BND_NL_POW_MAX))
        return ERR_ARG;
    switch (k) {
    case BND_NL_LOG:
        return l > 0 ? 0 : ERR_VALUE;
    case BND_NL_SQRT:
        return l >= 0 ? 0 : ERR_VALUE;
    case BND_NL_RECIPROCAL:
        return l > 0 || u < 0 ? 0 : ERR_VALUE;
    case BND_NL_POW:
        return param >= 0 || l > 0 || u < 0 ? 0 : ERR_VALUE;
    default:
        return 0;
    }
}

static void add_cut(nl_pieces *pc, double x, int curv_right)
{
    if (pc->n >= NL_MAX_PIECES)
        return;
    pc->x[pc->n] = x;
    pc->n++;
    pc->curv[pc->n - 1] = curv_right;
}

/* Sin and cos: inflections at (k + h) pi, h = 0 (sin) or 1/2 (cos); the piece
 * right of inflection k is concave when sin / cos is >= 0 there. */
static int trig_pieces(double h, int cos_shift, double l, double u, nl_pieces *pc)
{
    if (u - l >= 6.28 || fabs(l) > 1e15 || fabs(u) > 1e15)
        return ERR_VALUE;
    double k = floor(l / M_PI - h);
    double idx = k + cos_shift;
    pc->n = 0;
    pc->x[0] = l;
    double cuts[8];
    int ncut = 0;
    double ids[8];
    for (double j = k + 1; ncut < 6; j++) {
        double b = (j + h) * M_PI;
        if (b >= u)
            break;
        if (b <= l) {
            idx = j + cos_shift;
            continue;
        }
        cuts[ncut] = b;
        ids[ncut++] = j + cos_shift;
    }
    add_cut(pc, l, fmod(fabs(idx), 2.0) == 0 ? -1 : 1);
    for (int i = 0; i < ncut; i++)
        add_cut(pc, cuts[i], fmod(fabs(ids[i]), 2.0) == 0 ? -1 : 1);
    /* Inflections are off by at most delta; |f''| <= |x - inflection| and a
     * sliver of width delta changes any bound by at most 2 W delta^2 per
     * piece (docs/nonlin.md). */
    double delta = (fabs(l) + fabs(u) + 8) * 0x1p-50;
    pc->slack = 4.0 * (pc->n + 1) * (u - l + 1) * delta * delta;
    return 0;
}

int nl_pieces_of(bnd_nl_kind k, double param, double l, double u, nl_pieces *pc)
{
    pc->n = 0;
    pc->slack = 0;
    switch (k) {
    case BND_NL_SIGMOID:
    case BND_NL_TANH:
    case BND_NL_ERF:
        add_cut(pc, l, l < 0 ? 1 : -1);
        if (l < 0 && u > 0)
            add_cut(pc, 0.0, -1);
        break;
    case BND_NL_EXP:
    case BND_NL_SOFTPLUS:
        add_cut(pc, l, 1);
        break;
    case BND_NL_LOG:
    case BND_NL_SQRT:
        add_cut(pc, l, -1);
        break;
    case BND_NL_RECIPROCAL:
        add_cut(pc, l, l > 0 ? 1 : -1);
        break;
    case BND_NL_POW: {
        int n = (int)param, odd = n % 2 != 0;
        if (n == 0 || n == 1) {
            add_cut(pc, l, 0);
        } else if (!odd || (n < 0 && l > 0)) {
            add_cut(pc, l, 1);
        } else if (n < 0) {
            add_cut(pc, l, -1); /* odd negative power on x < 0 */
        } else {
            add_cut(pc, l, l < 0 ? -1 : 1);
            if (l < 0 && u > 0)
                add_cut(pc, 0.0, 1);
        }
        break;
    }
    case BND_NL_GELU:
    case BND_NL_GELU_TANH: {
        /* Gelu: f'' = phi(x)(2 - x^2): concave, convex, concave; +-M_SQRT2
         * is within 2^-52 of +-sqrt 2 and |f'''| <= 1. The tanh form has the
         * same pattern (f'' < 0 for |x| > GT_INFL: checked on [-15, 15] with
         * mpmath, and for |x| >= 12 f'' ~ e^-|w| x w'^2 dominates), inflections
         * within 2^-51 of +-GT_INFL, |f'''| <= 0.78. */
        double r2 = k == BND_NL_GELU ? M_SQRT2 : GT_INFL;
        const double b[2] = {-r2, r2};
        const int c[3] = {-1, 1, -1};
        int r = l < b[0] ? 0 : l < b[1] ? 1 : 2;
        add_cut(pc, l, c[r]);
        for (int i = r; i < 2; i++)
            if (b[i] > l && b[i] < u)
                add_cut(pc, b[i], c[i + 1]);
        double delta = 0x1p-51;
        pc->slack = 4.0 * 3 * (u - l + 1) * delta * delta;
        break;
    }
    case BND_NL_SIN:
    case BND_NL_COS: {
        int rc = trig_pieces(k == BND_NL_SIN ? 0.0 : 0.5, k == BND_NL_COS, l, u, pc);
        if (rc)
            return rc;
        break;
    }
    case BND_NL_RELU:
    case BND_NL_LEAKYRELU:
    case BND_NL_ABS:
        add_cut(pc, l, 0);
        if (l < 0 && u > 0)
            add_cut(pc, 0.0, 0);
        break;
    default:
        return ERR_ARG;
    }
    pc->x[pc->n] = u;
    for (int i = 0; i <= pc->n; i++)
        pc->fx[i] = nl_f(k, param, pc->x[i]);
    return 0;
}

int nl_crit(bnd_nl_kind k, double param, double l, double u, nl_iv *val)
{
    int n = 0;
    switch (k) {
    case BND_NL_SIN:
    case BND_NL_COS: {
        /* extrema at (j + h) pi with value (-1)^j; h = 1/2 for sin, 0 for cos */
        double h = k == BND_NL_SIN ? 0.5 : 0.0;
        if (u - l >= 6.28 || fabs(l) > 1e15 || fabs(u) > 1e15) {
            val[n++] = pt(1.0);
            val[n++] = pt(-1.0);
            break;
        }
        double delta = (fabs(l) + fabs(u) + 8) * 0x1p-50;
        for (double j = floor((l - delta) / M_PI - h) - 1; n < 4; j++) {
            double c = (j + h) * M_PI;
            if (c > u + delta)
                break;
            if (c >= l - delta)
                val[n++] = pt(fmod(fabs(j), 2.0) == 0 ? 1.0 : -1.0);
        }
        break;
    }
    case BND_NL_GELU:
        if (l <= GELU_XMIN + 1e-9 && u >= GELU_XMIN - 1e-9)
            val[n++] = (nl_iv){GELU_FMIN_LO, GELU_FMIN_HI};
        break;
    case BND_NL_GELU_TANH:
        if (l <= GT_XMIN + 1e-9 && u >= GT_XMIN - 1e-9)
            val[n++] = (nl_iv){GT_FMIN_LO, GT_FMIN_HI};
        break;
    case BND_NL_ABS:
        if (l <= 0 && u >= 0)
            val[n++] = pt(0.0);
        break;
    case BND_NL_LEAKYRELU:
        if (param < 0 && l <= 0 && u >= 0)
            val[n++] = pt(0.0);
        break;
    case BND_NL_POW:
        if (param > 0 && fmod(param, 2.0) == 0 && l <= 0 && u >= 0)
            val[n++] = pt(0.0);
        break;
    default:
        break;
    }
    return n;
}

double bnd_nl_value(bnd_nl_kind k, double param, double x)
{
    return nl_fa(k, param, x);
}
