/* test_nonlin.c: soundness of the per-neuron nonlinearity rules (bound/nonlin.h)
 * by dense sampling against long-double references over thousands of random
 * intervals (narrow, wide, far from zero, across inflections), any tangent
 * parameter; hand-computed lines; branching points against the midpoint;
 * McCormick planes over random boxes. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../bound/nonlin.h"
#include "../core/clock.h"
#include "../core/err.h"
#include "../core/rng.h"

/* Reference in long double (x87: 64-bit significand, libm errors ~1e-19). */
static long double ref(bnd_nl_kind k, double param, double xd)
{
    long double x = xd;
    switch (k) {
    case BND_NL_SIGMOID:
        return x >= 0 ? 1.0L / (1.0L + expl(-x)) : expl(x) / (1.0L + expl(x));
    case BND_NL_TANH:
        return tanhl(x);
    case BND_NL_EXP:
        return expl(x);
    case BND_NL_LOG:
        return logl(x);
    case BND_NL_SIN:
        return sinl(x);
    case BND_NL_COS:
        return cosl(x);
    case BND_NL_ERF:
        return erfl(x);
    case BND_NL_SOFTPLUS:
        return x > 0 ? x + log1pl(expl(-x)) : log1pl(expl(x));
    case BND_NL_SQRT:
        return sqrtl(x);
    case BND_NL_RECIPROCAL:
        return 1.0L / x;
    case BND_NL_POW:
        return powl(x, (long double)param);
    case BND_NL_GELU:
        return 0.5L * x * erfcl(-x / sqrtl(2.0L));
    case BND_NL_RELU:
        return x > 0 ? x : 0;
    case BND_NL_LEAKYRELU:
        return x >= 0 ? x : (long double)param * x;
    case BND_NL_ABS:
        return fabsl(x);
    case BND_NL_GELU_TANH: { /* x * sigmoid(2z): stable at both tails */
        long double w = 2 * sqrtl(2 / M_PIl) * (x + 0.044715L * x * x * x);
        return x * (w >= 0 ? 1.0L / (1.0L + expl(-w)) : expl(w) / (1.0L + expl(w)));
    }
    default:
        return NAN;
    }
}

/* The reference's own error: ~2^-60 relative of the terms involved. */
static long double tol(long double a, long double b, long double c)
{
    return (fabsl(a) + fabsl(b) + fabsl(c)) * 0x1p-58L + 0x1p-1000L;
}

/* Check one relaxation and the interval on [l, u] at 200 points; returns the
 * number of violations (0 expected). */
static int check_one(bnd_nl_kind k, double param, double l, double u, double tl, double tu,
                     int *n_lines)
{
    bnd_lines r;
    double fl, fu;
    int rc = bnd_nl_relax(k, param, l, u, tl, tu, &r);
    cr_assert_eq(rc, 0, "%s [%.17g, %.17g]: rc %d", bnd_nl_name(k), l, u, rc);
    cr_assert_eq(bnd_nl_interval(k, param, l, u, &fl, &fu), 0);
    cr_assert(isfinite(r.lo_slope) && isfinite(r.up_slope));
    cr_assert(!isnan(r.lo_icpt) && !isnan(r.up_icpt) && r.lo_icpt < INFINITY &&
              r.up_icpt > -INFINITY);
    *n_lines += isfinite(r.lo_icpt) + isfinite(r.up_icpt);
    int bad = 0;
    /* 200 even points with both ends, plus 40 clustered where lines touch f
     * (around the midpoint, the default tangent point) and around 0 (the
     * inflection or kink of most kinds) */
    for (int i = 0; i < 240; i++) {
        double x;
        if (i < 200)
            x = i == 0 ? l : i == 199 ? u : l + (u - l) * (i / 199.0);
        else if (i < 220)
            x = 0.5 * (l + u) + (u - l) * 1e-3 * (i - 210);
        else
            x = (i - 230) * 1e-3 * fmin(1.0, u - l);
        if (x < l || x > u)
            continue;
        long double f = ref(k, param, x);
        if (isnan(f))
            continue;
        long double lo = (long double)r.lo_slope * x + r.lo_icpt;
        long double up = (long double)r.up_slope * x + r.up_icpt;
        if (lo > f + tol(f, (long double)r.lo_slope * x, r.lo_icpt) ||
            up < f - tol(f, (long double)r.up_slope * x, r.up_icpt) ||
            (long double)fl > f + tol(f, 0, 0) || (long double)fu < f - tol(f, 0, 0)) {
            if (bad++ < 3)
                fprintf(stderr,
                        "%s(%g) [%.17g, %.17g] tau %g/%g at x=%.17g: f=%.20Lg lo=%.20Lg "
                        "up=%.20Lg iv=[%.17g, %.17g]\n",
                        bnd_nl_name(k), param, l, u, tl, tu, x, f, lo, up, fl, fu);
        }
    }
    return bad;
}

/* A random interval of the kind's domain, in one of several regimes. */
static void random_interval(rng *g, bnd_nl_kind k, double param, double *l, double *u)
{
    static const double widths[] = {1e-12, 1e-9, 1e-6, 1e-3, 0.1, 0.5, 1, 2, 5, 10, 50, 300};
    double scale;
    switch ((int)(rng_uniform(g) * 4)) {
    case 0: scale = 1; break;
    case 1: scale = 5; break;
    case 2: scale = 40; break;
    default: scale = k == BND_NL_EXP ? 750 : k == BND_NL_SIN || k == BND_NL_COS ? 1e6 : 1000;
    }
    double c = (2 * rng_uniform(g) - 1) * scale;
    double w = widths[(int)(rng_uniform(g) * 12)] * (0.5 + rng_uniform(g));
    if (k == BND_NL_EXP && fabs(c) > 700 && rng_uniform(g) < 0.5)
        c = copysign(700, c);
    if (k == BND_NL_LOG || k == BND_NL_SQRT || k == BND_NL_RECIPROCAL ||
        (k == BND_NL_POW && param < 0)) {
        double a = fabs(c) * pow(10, -6 * rng_uniform(g)) + (k == BND_NL_SQRT ? 0 : 1e-300);
        if (k == BND_NL_SQRT && rng_uniform(g) < 0.1)
            a = 0;
        *l = a;
        *u = a + w;
        if ((k == BND_NL_RECIPROCAL || k == BND_NL_POW) && rng_uniform(g) < 0.5) {
            *l = -a - w;
            *u = -a;
        }
        return;
    }
    if (k == BND_NL_POW && fabs(c) > 30) /* keep x^n finite-ish */
        c /= 30;
    if (rng_uniform(g) < 0.25) /* across an inflection or kink */
        c = 0.3 * w * (2 * rng_uniform(g) - 1);
    *l = c - 0.5 * w;
    *u = c + 0.5 * w;
    if (!(*l < *u))
        *u = nextafter(*l, INFINITY);
}

static void sound_for(bnd_nl_kind k, double param, int n)
{
    rng g;
    rng_seed(&g, 1234 + k * 77 + (uint64_t)(param * 10 + 1000));
    int bad = 0, lines = 0;
    for (int i = 0; i < n; i++) {
        double l, u;
        random_interval(&g, k, param, &l, &u);
        double tl = NAN, tu = NAN;
        if (i % 3 == 1) {
            tl = rng_uniform(&g);
            tu = rng_uniform(&g);
        } else if (i % 3 == 2) {
            tl = i % 2 ? 0.0 : 1.0;
            tu = i % 2 ? 1.0 : 0.0;
        }
        bad += check_one(k, param, l, u, tl, tu, &lines);
    }
    cr_assert_eq(bad, 0, "%s(%g): %d violations", bnd_nl_name(k), param, bad);
    /* the fallback (no finite line) must stay rare */
    cr_assert_gt(lines, (int)(1.8 * n), "%s: only %d finite lines of %d", bnd_nl_name(k), lines,
                 2 * n);
}

Test(nonlin, sigmoid_sound_on_random_intervals) { sound_for(BND_NL_SIGMOID, 0, 3000); }
Test(nonlin, tanh_sound_on_random_intervals) { sound_for(BND_NL_TANH, 0, 3000); }
Test(nonlin, erf_sound_on_random_intervals) { sound_for(BND_NL_ERF, 0, 3000); }
Test(nonlin, exp_sound_on_random_intervals) { sound_for(BND_NL_EXP, 0, 3000); }
Test(nonlin, softplus_sound_on_random_intervals) { sound_for(BND_NL_SOFTPLUS, 0, 3000); }
Test(nonlin, log_sound_on_random_intervals) { sound_for(BND_NL_LOG, 0, 3000); }
Test(nonlin, sqrt_sound_on_random_intervals) { sound_for(BND_NL_SQRT, 0, 3000); }
Test(nonlin, reciprocal_sound_on_random_intervals) { sound_for(BND_NL_RECIPROCAL, 0, 3000); }
Test(nonlin, sin_sound_on_random_intervals) { sound_for(BND_NL_SIN, 0, 3000); }
Test(nonlin, cos_sound_on_random_intervals) { sound_for(BND_NL_COS, 0, 3000); }
Test(nonlin, gelu_sound_on_random_intervals) { sound_for(BND_NL_GELU, 0, 3000); }
Test(nonlin, gelu_tanh_sound_on_random_intervals) { sound_for(BND_NL_GELU_TANH, 0, 3000); }
Test(nonlin, relu_like_sound_on_random_intervals)
{
    sound_for(BND_NL_RELU, 0, 1000);
    sound_for(BND_NL_LEAKYRELU, 0.01, 1000);
    sound_for(BND_NL_LEAKYRELU, -0.5, 500);
    sound_for(BND_NL_LEAKYRELU, 3, 500);
    sound_for(BND_NL_ABS, 0, 1000);
}
Test(nonlin, pow_sound_on_random_intervals)
{
    const double n[] = {0, 1, 2, 3, 4, 5, -1, -2, -3};
    for (int i = 0; i < 9; i++)
        sound_for(BND_NL_POW, n[i], 600);
}

Test(nonlin, far_from_zero_and_huge_intervals)
{
    int lines = 0, bad = 0;
    bad += check_one(BND_NL_SIGMOID, 0, 30, 40, NAN, NAN, &lines);
    bad += check_one(BND_NL_SIGMOID, 0, -40, -30, NAN, NAN, &lines);
    bad += check_one(BND_NL_SIGMOID, 0, -800, -750, NAN, NAN, &lines);
    bad += check_one(BND_NL_SIGMOID, 0, -1e6, 1e6, NAN, NAN, &lines);
    bad += check_one(BND_NL_TANH, 0, 400, 1e6, 0.3, 0.7, &lines);
    bad += check_one(BND_NL_EXP, 0, -700, 700, NAN, NAN, &lines);
    bad += check_one(BND_NL_EXP, 0, -1e6, -700, NAN, NAN, &lines);
    bad += check_one(BND_NL_EXP, 0, 700, 709.7, NAN, NAN, &lines);
    bad += check_one(BND_NL_SIN, 0, 1e6, 1e6 + 3, NAN, NAN, &lines);
    bad += check_one(BND_NL_GELU, 0, -1e6, 1e6, NAN, NAN, &lines);
    bad += check_one(BND_NL_GELU, 0, -40, -30, NAN, NAN, &lines);
    bad += check_one(BND_NL_LOG, 0, 1e-300, 1e300, NAN, NAN, &lines);
    bad += check_one(BND_NL_RECIPROCAL, 0, 1e-300, 1e-299, NAN, NAN, &lines);
    cr_assert_eq(bad, 0);
    /* exp beyond overflow: no finite upper line, the interval says +inf */
    bnd_lines r;
    double fl, fu;
    cr_assert_eq(bnd_nl_relax(BND_NL_EXP, 0, -700, 720, NAN, NAN, &r), 0);
    cr_assert_eq(r.up_icpt, INFINITY);
    cr_assert(isfinite(r.lo_icpt) && r.lo_slope > 0);
    cr_assert_eq(bnd_nl_interval(BND_NL_EXP, 0, 0, 800, &fl, &fu), 0);
    cr_assert_eq(fu, INFINITY);
    cr_assert(fl <= 1.0 && fl > 0.999999);
}

Test(nonlin, undefined_domains_are_rejected)
{
    bnd_lines r;
    double a, b;
    cr_assert_eq(bnd_nl_relax(BND_NL_LOG, 0, -1, 2, NAN, NAN, &r), ERR_VALUE);
    cr_assert_eq(bnd_nl_relax(BND_NL_LOG, 0, 0, 2, NAN, NAN, &r), ERR_VALUE);
    cr_assert_eq(bnd_nl_relax(BND_NL_SQRT, 0, -1e-9, 2, NAN, NAN, &r), ERR_VALUE);
    cr_assert_eq(bnd_nl_relax(BND_NL_RECIPROCAL, 0, -1, 1, NAN, NAN, &r), ERR_VALUE);
    cr_assert_eq(bnd_nl_interval(BND_NL_POW, -2, -1, 1, &a, &b), ERR_VALUE);
    cr_assert_eq(bnd_nl_relax(BND_NL_POW, 2.5, 0, 1, NAN, NAN, &r), ERR_ARG);
    cr_assert_eq(bnd_nl_relax(BND_NL_SIGMOID, 0, 2, 1, NAN, NAN, &r), ERR_ARG);
    cr_assert_eq(bnd_nl_relax(BND_NL_SIGMOID, 0, NAN, 1, NAN, NAN, &r), ERR_ARG);
    cr_assert_eq(bnd_nl_relax(BND_NL_COUNT, 0, 0, 1, NAN, NAN, &r), ERR_ARG);
}

#define NEAR(a, b, eps) cr_assert(fabsl((long double)(a) - (long double)(b)) <= (eps), "%.17g vs %.17g", (double)(a), (double)(b))

Test(nonlin, exp_on_unit_interval_hand_computed)
{
    bnd_lines r;
    cr_assert_eq(bnd_nl_relax(BND_NL_EXP, 0, 0, 1, NAN, NAN, &r), 0);
    NEAR(r.up_slope, M_E - 1, 1e-14); /* chord */
    NEAR(r.up_icpt, 1.0, 1e-12);
    cr_assert_geq(r.up_icpt, 1.0);
    NEAR(r.lo_slope, exp(0.5), 1e-14); /* tangent at the midpoint */
    NEAR(r.lo_icpt, 0.5 * exp(0.5), 1e-12);
    cr_assert_leq(r.lo_icpt, 0.5 * exp(0.5));
    cr_assert_eq(bnd_nl_relax(BND_NL_EXP, 0, 0, 1, 0.0, NAN, &r), 0);
    NEAR(r.lo_slope, 1.0, 1e-14); /* tangent at 0 */
    NEAR(r.lo_icpt, 1.0, 1e-12);
}

static long double sigl(long double x)
{
    return 1.0L / (1.0L + expl(-x));
}

Test(nonlin, sigmoid_hand_computed_lines)
{
    /* [-1, 1]: the upper line is the tangent at d > 0 passing through
     * (-1, sig(-1)) (CROWN's), since the midpoint 0 < d; found here by bisection. */
    long double a = 0, b = 1;
    for (int i = 0; i < 100; i++) {
        long double d = 0.5L * (a + b), s = sigl(d) * (1 - sigl(d));
        if (sigl(d) + s * (-1 - d) - sigl(-1) < 0)
            a = d;
        else
            b = d;
    }
    long double d = a, s = sigl(d) * (1 - sigl(d));
    bnd_lines r;
    cr_assert_eq(bnd_nl_relax(BND_NL_SIGMOID, 0, -1, 1, NAN, NAN, &r), 0);
    NEAR(r.up_slope, s, 1e-12);
    NEAR(r.up_icpt, sigl(d) - s * d, 1e-12);
    /* by symmetry sig(x) = 1 - sig(-x): the lower line mirrors it */
    NEAR(r.lo_slope, s, 1e-12);
    NEAR(r.lo_icpt, 1 - (sigl(d) - s * d), 1e-12);
    /* [-4, 0.5]: the chord is a valid upper line (sig'(0.5) > chord slope) */
    cr_assert_eq(bnd_nl_relax(BND_NL_SIGMOID, 0, -4, 0.5, NAN, NAN, &r), 0);
    long double ch = (sigl(0.5L) - sigl(-4)) / 4.5L;
    NEAR(r.up_slope, ch, 1e-13);
    NEAR(r.up_icpt, sigl(0.5L) - ch * 0.5L, 1e-12);
    /* [1, 3], concave: lower chord, upper tangent at 2 */
    cr_assert_eq(bnd_nl_relax(BND_NL_SIGMOID, 0, 1, 3, NAN, NAN, &r), 0);
    NEAR(r.lo_slope, (sigl(3) - sigl(1)) / 2, 1e-13);
    NEAR(r.up_slope, sigl(2) * (1 - sigl(2)), 1e-13);
    NEAR(r.up_icpt, sigl(2) - 2 * sigl(2) * (1 - sigl(2)), 1e-12);
}

Test(nonlin, relu_and_pow_hand_computed)
{
    bnd_lines r;
    cr_assert_eq(bnd_nl_relax(BND_NL_RELU, 0, -1, 2, NAN, NAN, &r), 0);
    NEAR(r.up_slope, 2.0 / 3, 1e-15);
    NEAR(r.up_icpt, 2.0 / 3, 1e-15);
    cr_assert_eq(r.lo_slope, 1.0);
    cr_assert_eq(bnd_nl_relax(BND_NL_RELU, 0, -2, 1, NAN, NAN, &r), 0);
    cr_assert_eq(r.lo_slope, 0.0);
    cr_assert_eq(bnd_nl_relax(BND_NL_RELU, 0, -2, 1, 0.25, NAN, &r), 0);
    NEAR(r.lo_slope, 0.25, 1e-15);
    /* x^3 on [-2, 1]: lower line 3x - 2 (tangent at 1 through (-2, -8)),
     * upper = tangent at the midpoint -0.5: 0.75x + 0.25 */
    cr_assert_eq(bnd_nl_relax(BND_NL_POW, 3, -2, 1, NAN, NAN, &r), 0);
    NEAR(r.lo_slope, 3.0, 1e-9);
    NEAR(r.lo_icpt, -2.0, 1e-9);
    NEAR(r.up_slope, 0.75, 1e-12);
    NEAR(r.up_icpt, 0.25, 1e-12);
}

Test(nonlin, interval_hand_computed)
{
    double a, b;
    cr_assert_eq(bnd_nl_interval(BND_NL_SIN, 0, 0, 3, &a, &b), 0);
    NEAR(a, 0.0, 1e-15);
    cr_assert_eq(b, 1.0);
    cr_assert_eq(bnd_nl_interval(BND_NL_GELU, 0, -2, 1, &a, &b), 0);
    NEAR(a, -0.16997120747990366, 1e-14);
    cr_assert_leq(a, -0.16997120747990366);
    NEAR(b, 0.8413447460685429, 5e-14);
    cr_assert_geq(b, 0.8413447460685429);
    cr_assert_eq(bnd_nl_interval(BND_NL_GELU_TANH, 0, -2, 1, &a, &b), 0);
    NEAR(a, -0.17004075057125405, 1e-14);
    cr_assert_leq(a, -0.17004075057125405);
    cr_assert_eq(bnd_nl_interval(BND_NL_POW, 2, -1, 3, &a, &b), 0);
    cr_assert_eq(a, 0.0);
    NEAR(b, 9.0, 1e-12);
    cr_assert_eq(bnd_nl_interval(BND_NL_COS, 0, 1e6, 1e6 + 7, &a, &b), 0);
    cr_assert(a == -1.0 && b == 1.0);
}

Test(nonlin, default_is_no_looser_than_crown_choice)
{
    /* The default (envelope tangent at the midpoint) has the least area; CROWN's
     * choice (tangents through the far endpoints when crossing the inflection,
     * i.e. tau_lo = 1, tau_up = 0; else chord + tangent at the midpoint, which
     * is our default there) can only be looser. */
    const bnd_nl_kind ks[] = {BND_NL_SIGMOID, BND_NL_TANH, BND_NL_ERF};
    const double R[] = {8, 4, 3};
    for (int j = 0; j < 3; j++) {
        rng g;
        rng_seed(&g, 7);
        double sum_def = 0, sum_crown = 0;
        for (int i = 0; i < 500; i++) {
            double l = -R[j] * rng_uniform(&g), u = R[j] * rng_uniform(&g) + 1e-3;
            if (i % 4 == 0) /* some one-sided intervals too */
                l = 0.5 * u;
            bnd_lines a, b;
            cr_assert_eq(bnd_nl_relax(ks[j], 0, l, u, NAN, NAN, &a), 0);
            double tl = l < 0 && u > 0 ? 1.0 : NAN, tu = l < 0 && u > 0 ? 0.0 : NAN;
            cr_assert_eq(bnd_nl_relax(ks[j], 0, l, u, tl, tu, &b), 0);
            double m = 0.5 * (l + u);
            double area_a = (a.up_slope - a.lo_slope) * m + a.up_icpt - a.lo_icpt;
            double area_b = (b.up_slope - b.lo_slope) * m + b.up_icpt - b.lo_icpt;
            cr_assert_leq(area_a, area_b + 1e-9);
            sum_def += area_a * (u - l);
            sum_crown += area_b * (u - l);
        }
        fprintf(stderr, "%s looseness over 500 intervals: default %.4f vs CROWN %.4f\n",
                bnd_nl_name(ks[j]), sum_def, sum_crown);
        cr_assert_lt(sum_def, sum_crown);
    }
}

Test(nonlin, branch_points_beat_midpoint)
{
    const bnd_nl_kind ks[] = {BND_NL_SIGMOID, BND_NL_TANH, BND_NL_GELU, BND_NL_SIN, BND_NL_EXP,
                              BND_NL_GELU_TANH};
    for (int j = 0; j < 6; j++) {
        bnd_nl_kind k = ks[j];
        double t0 = clock_now();
        (void)bnd_nl_branch_point(k, 0, -1, 1); /* builds the table */
        double t_build = clock_now() - t0;
        /* < 1 s at -O2 on one core; slack for sanitizer builds and loaded CI */
        cr_assert_lt(t_build, 3.0, "%s table build %.3f s", bnd_nl_name(k), t_build);
        rng g;
        rng_seed(&g, 99 + j);
        double lut = 0, midp = 0;
        int better = 0, n = 400;
        for (int i = 0; i < n; i++) {
            double l = -4.5 + 8 * rng_uniform(&g), u = l + 0.05 + 4 * rng_uniform(&g);
            if (u > 4.5)
                u = 4.5;
            double p = bnd_nl_branch_point(k, 0, l, u), m = 0.5 * (l + u);
            cr_assert(p > l && p < u);
            double a = bnd_nl_looseness(k, 0, l, p) + bnd_nl_looseness(k, 0, p, u);
            double b = bnd_nl_looseness(k, 0, l, m) + bnd_nl_looseness(k, 0, m, u);
            lut += a;
            midp += b;
            better += a < b;
        }
        fprintf(stderr, "%s branch points: looseness %.4f (table) vs %.4f (midpoint), "
                "better on %d/%d, table built in %.3f s\n",
                bnd_nl_name(k), lut, midp, better, n, t_build);
        cr_assert_lt(lut, midp);
    }
    /* outside the grid: the same search for the one interval, so never
     * worse than the midpoint, and strictly better on asymmetric ones */
    const double off[][2] = {{1, 9}, {-8, 2}, {-2, 10}, {-100, 50}, {3, 40}};
    for (int j = 0; j < 2; j++) {
        bnd_nl_kind k = j ? BND_NL_SIGMOID : BND_NL_TANH;
        for (int i = 0; i < 5; i++) {
            double l = off[i][0], u = off[i][1], m = 0.5 * (l + u);
            if (k == BND_NL_SIGMOID)
                l *= 3, u *= 3, m *= 3; /* off the sigmoid's wider grid too */
            double p = bnd_nl_branch_point(k, 0, l, u);
            double a = bnd_nl_looseness(k, 0, l, p) + bnd_nl_looseness(k, 0, p, u);
            double b = bnd_nl_looseness(k, 0, l, m) + bnd_nl_looseness(k, 0, m, u);
            cr_assert(p > l && p < u);
            cr_assert_leq(a, b * (1 + 1e-12), "%s [%g, %g]", bnd_nl_name(k), l, u);
            if (i < 3)
                cr_assert_lt(a, 0.8 * b, "%s [%g, %g]: %g vs midpoint %g", bnd_nl_name(k), l, u,
                             a, b);
        }
    }
    /* kinds without a table: the midpoint */
    cr_assert_eq(bnd_nl_branch_point(BND_NL_LOG, 0, 1, 3), 2.0);
}

Test(nonlin, mccormick_sound_on_random_boxes)
{
    rng g;
    rng_seed(&g, 5);
    for (int i = 0; i < 2000; i++) {
        double s = pow(10, 4 * rng_uniform(&g) - 2);
        double xl = s * (2 * rng_uniform(&g) - 1), xu = xl + s * rng_uniform(&g);
        double yl = s * (2 * rng_uniform(&g) - 1), yu = yl + s * rng_uniform(&g);
        bnd_plane lo[2], up[2];
        double zl, zu;
        cr_assert_eq(bnd_nl_mccormick(xl, xu, yl, yu, lo, up), 0);
        bnd_nl_product_interval(xl, xu, yl, yu, &zl, &zu);
        for (int j = 0; j < 60; j++) {
            double x = j < 4 ? (j & 1 ? xu : xl) : xl + (xu - xl) * rng_uniform(&g);
            double y = j < 4 ? (j & 2 ? yu : yl) : yl + (yu - yl) * rng_uniform(&g);
            if (x > xu)
                x = xu;
            if (y > yu)
                y = yu;
            long double z = (long double)x * y;
            for (int p = 0; p < 2; p++) {
                long double a = (long double)lo[p].a_x * x + (long double)lo[p].a_y * y + lo[p].c;
                long double b = (long double)up[p].a_x * x + (long double)up[p].a_y * y + up[p].c;
                long double t = tol(z, (long double)lo[p].a_x * x, (long double)lo[p].a_y * y) +
                                tol(lo[p].c, up[p].c, 0);
                cr_assert(a <= z + t && b >= z - t, "box %d point %d plane %d", i, j, p);
            }
            cr_assert(zl <= z && z <= zu);
        }
    }
    bnd_plane lo[2], up[2];
    cr_assert_eq(bnd_nl_mccormick(1, 0, 0, 1, lo, up), ERR_ARG);
    /* [0,1]x[0,1]: z >= 0, z >= x + y - 1, z <= x, z <= y */
    cr_assert_eq(bnd_nl_mccormick(0, 1, 0, 1, lo, up), 0);
    cr_assert(lo[0].a_x == 0 && lo[0].a_y == 0 && lo[0].c == 0);
    cr_assert(lo[1].a_x == 1 && lo[1].a_y == 1 && lo[1].c == -1);
}

Test(nonlin, relaxation_is_fast)
{
    const bnd_nl_kind ks[] = {BND_NL_SIGMOID, BND_NL_TANH, BND_NL_GELU, BND_NL_SIN, BND_NL_EXP,
                              BND_NL_GELU_TANH};
    for (int j = 0; j < 6; j++) {
        double t0 = clock_now();
        bnd_lines r;
        for (int i = 0; i < 20000; i++)
            bnd_nl_relax(ks[j], 0, -3 + 0.0003 * i, -2.5 + 0.00025 * i, NAN, NAN, &r);
        double us = (clock_now() - t0) / 20000 * 1e6;
        fprintf(stderr, "%s: %.2f us per relaxation\n", bnd_nl_name(ks[j]), us);
        cr_assert_lt(us, 100.0);
    }
}

Test(nonlin, vector_form_matches_scalar)
{
    double l[4] = {-1, 0.5, -3, -1}, u[4] = {1, 2, -2, 1}, tl[4] = {NAN, 0.2, 1, NAN};
    double lw[4], lb[4], uw[4], ub[4];
    cr_assert_eq(bnd_nl_relax_n(BND_NL_TANH, 0, 4, l, u, tl, NULL, lw, lb, uw, ub), 0);
    for (int i = 0; i < 4; i++) {
        bnd_lines r;
        cr_assert_eq(bnd_nl_relax(BND_NL_TANH, 0, l[i], u[i], tl[i], NAN, &r), 0);
        cr_assert(r.lo_slope == lw[i] && r.lo_icpt == lb[i] && r.up_slope == uw[i] &&
                  r.up_icpt == ub[i]);
    }
    /* log of a negative range: error, and the neuron gets no finite line */
    cr_assert_eq(bnd_nl_relax_n(BND_NL_LOG, 0, 2, l + 1, u + 1, NULL, NULL, lw, lb, uw, ub),
                 ERR_VALUE);
    cr_assert(isfinite(lb[0]) && lb[1] == -INFINITY && ub[1] == INFINITY);
}

/* bnd_nl_relax_line (alpha-CROWN's rounds compute only the side a row uses)
 * gives exactly the line bnd_nl_relax gives on that side. */
Test(nonlin, one_line_matches_both_lines)
{
    static const bnd_nl_kind kinds[] = {BND_NL_SIGMOID, BND_NL_TANH, BND_NL_SIN, BND_NL_COS,
                                        BND_NL_GELU, BND_NL_GELU_TANH, BND_NL_EXP, BND_NL_LOG,
                                        BND_NL_ERF, BND_NL_SOFTPLUS, BND_NL_RELU, BND_NL_ABS};
    rng g;
    rng_seed(&g, 99);
    int differ = 0;
    for (size_t kk = 0; kk < sizeof kinds / sizeof *kinds; kk++) {
        for (int i = 0; i < 300; i++) {
            double l, u, tau = i % 4 == 0 ? NAN : rng_uniform(&g);
            random_interval(&g, kinds[kk], 0, &l, &u);
            bnd_lines r;
            double wl, bl, wu, bu;
            int rc = bnd_nl_relax(kinds[kk], 0, l, u, tau, tau, &r);
            cr_assert_eq(bnd_nl_relax_line(kinds[kk], 0, l, u, tau, 0, &wl, &bl, NULL, NULL), rc);
            cr_assert_eq(bnd_nl_relax_line(kinds[kk], 0, l, u, tau, 1, &wu, &bu, NULL, NULL), rc);
            if (rc == 0 && (memcmp(&wl, &r.lo_slope, sizeof wl) || memcmp(&bl, &r.lo_icpt, sizeof bl) ||
                            memcmp(&wu, &r.up_slope, sizeof wu) || memcmp(&bu, &r.up_icpt, sizeof bu)))
                differ++;
        }
    }
    cr_assert_eq(differ, 0, "%d intervals with a different line", differ);
}

/* The closed-form derivative by tau that bnd_nl_relax_line gives matches
 * differences of the lines (where the line is smooth in tau: both one-sided
 * differences agree). */
Test(nonlin, closed_form_tau_derivative_matches_differences)
{
    static const bnd_nl_kind kinds[] = {BND_NL_SIGMOID, BND_NL_TANH, BND_NL_SIN, BND_NL_GELU,
                                        BND_NL_EXP, BND_NL_LOG, BND_NL_SOFTPLUS};
    rng g;
    rng_seed(&g, 7);
    int compared = 0, bad = 0, moving = 0;
    for (size_t kk = 0; kk < sizeof kinds / sizeof *kinds; kk++) {
        for (int i = 0; i < 400; i++) {
            double l, u, tau = 0.05 + 0.9 * rng_uniform(&g), h = 1e-5;
            random_interval(&g, kinds[kk], 0, &l, &u);
            if (!(u - l > 1e-3) || u - l > 20)
                continue;
            for (int up = 0; up < 2; up++) {
                double w, b, dw, db, w0, b0, w1, b1;
                if (bnd_nl_relax_line(kinds[kk], 0, l, u, tau, up, &w, &b, &dw, &db) ||
                    bnd_nl_relax_line(kinds[kk], 0, l, u, tau - h, up, &w0, &b0, NULL, NULL) ||
                    bnd_nl_relax_line(kinds[kk], 0, l, u, tau + h, up, &w1, &b1, NULL, NULL) ||
                    isnan(dw))
                    continue;
                double z = l + rng_uniform(&g) * (u - l);
                double fl = ((w - w0) * z + b - b0) / h, fr = ((w1 - w) * z + b1 - b) / h;
                double d = dw * z + db, scale = 1e-3 * (1 + fabs(fl) + fabs(fr)) + 1e-6 * (u - l);
                if (fabs(fl - fr) > scale)
                    continue; /* a switch between regimes inside [tau - h, tau + h] */
                compared++;
                moving += d != 0;
                if (fabs(d - 0.5 * (fl + fr)) > scale && bad++ < 3)
                    fprintf(stderr, "%s [%g, %g] tau %g up %d: closed form %g, difference %g\n",
                            bnd_nl_name(kinds[kk]), l, u, tau, up, d, 0.5 * (fl + fr));
            }
        }
    }
    cr_assert_eq(bad, 0, "%d of %d derivatives differ", bad, compared);
    cr_assert_gt(compared, 1000);
    cr_assert_gt(moving, 300, "only %d moving lines compared", moving);
}

Test(nonlin, tau_derivatives_match_the_tangent)
{
    /* exp on [0, 2], lower line = tangent at p = 2 tau: slope e^p, intercept
     * e^p (1 - p); d/dtau = 2 e^p and -2 p e^p. The upper chord does not move. */
    double w, b, dw, db, p = 0.5;
    cr_assert_eq(bnd_nl_relax_line(BND_NL_EXP, 0, 0, 2, 0.25, 0, &w, &b, &dw, &db), 0);
    NEAR(dw, 2 * exp(p), 1e-9);
    NEAR(db, -2 * p * exp(p), 1e-9);
    cr_assert_eq(bnd_nl_relax_line(BND_NL_EXP, 0, 0, 2, 0.7, 1, &w, &b, &dw, &db), 0);
    NEAR(dw, 0.0, 0);
    NEAR(db, 0.0, 0);
    /* ReLU's pivoting line has no closed form here (beta.c optimises it) */
    cr_assert_eq(bnd_nl_relax_line(BND_NL_RELU, 0, -1, 3, 0.3, 0, &w, &b, &dw, &db), 0);
    cr_assert(isnan(dw) && isnan(db));
}

static double any_double(rng *g)
{
    uint64_t b = rng_next(g);
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

Test(nonlin, garbage_inputs_never_crash_or_give_nan)
{
    rng g;
    rng_seed(&g, 2024);
    int ok = 0;
    for (int i = 0; i < 30000; i++) {
        bnd_nl_kind k = (bnd_nl_kind)(rng_next(&g) % (BND_NL_COUNT + 1));
        double v[5];
        for (int j = 0; j < 5; j++) /* raw bit patterns, or small values */
            v[j] = rng_uniform(&g) < 0.5 ? any_double(&g) : 8 * rng_uniform(&g) - 4;
        double param = rng_uniform(&g) < 0.5 ? v[0] : round(fmod(v[0], 100.0));
        double l = fmin(v[1], v[2]), u = fmax(v[1], v[2]);
        if (rng_uniform(&g) < 0.1)
            l = v[1], u = v[2];
        bnd_lines r;
        double fl, fu;
        int rc = bnd_nl_relax(k, param, l, u, v[3], v[4], &r);
        cr_assert(rc == 0 || rc == ERR_ARG || rc == ERR_VALUE);
        cr_assert_eq(bnd_nl_interval(k, param, l, u, &fl, &fu), rc);
        if (rc)
            continue;
        ok++;
        cr_assert(isfinite(r.lo_slope) && isfinite(r.up_slope));
        cr_assert(!isnan(r.lo_icpt) && !isnan(r.up_icpt) && !isnan(fl) && !isnan(fu));
        (void)bnd_nl_branch_point(k, param, l, u);
    }
    cr_assert_gt(ok, 5000);
}
