/* nonlin_lut.c: branching points for general nonlinearities (GenBaB).
 *
 * Key idea: splitting a neuron's input interval [l, u] at p replaces one
 * relaxation by two; a good p minimises the looseness (area between the
 * upper and lower lines) of the two halves. That optimum depends only on
 * (l, u), so it is tabulated once per kind on a grid of (l, u) pairs (a
 * 12-point scan refined by golden section; symmetric kinds compute half), stored as the fraction
 * (p - l)/(u - l), built lazily on first use under a mutex, and read by
 * bilinear interpolation of the fraction between the four surrounding grid
 * pairs. Outside the grid the same search runs for the one interval (it
 * used to be the midpoint: tanh on [1, 9] split at 5 leaves 0.457 of
 * looseness in the children, its optimum near 2.36 leaves 0.141); kinds without a table
 * split at the midpoint. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#include "nonlin_ops.h"

#define LUT_N 41 /* grid points per axis */

typedef struct lut_spec {
    double lo, step; /* grid lo + i*step, i < LUT_N; step 0 = no table */
} lut_spec;

static const lut_spec specs[BND_NL_COUNT] = {
    [BND_NL_SIGMOID] = {-10.0, 0.5}, /* sigmoid(x) = (1 + tanh(x/2))/2 */
    [BND_NL_TANH] = {-5.0, 0.25},
    [BND_NL_ERF] = {-4.0, 0.2},
    [BND_NL_GELU] = {-5.0, 0.25},
    [BND_NL_GELU_TANH] = {-5.0, 0.25},
    [BND_NL_SIN] = {-5.0, 0.25},
    [BND_NL_COS] = {-5.0, 0.25},
    [BND_NL_EXP] = {-5.0, 0.25},
    [BND_NL_SOFTPLUS] = {-10.0, 0.5},
};

static float table[BND_NL_COUNT][LUT_N * LUT_N];
static atomic_int built[BND_NL_COUNT];
static pthread_mutex_t build_mutex = PTHREAD_MUTEX_INITIALIZER;

static double split_cost(bnd_nl_kind k, double l, double u, double f)
{
    double p = l + f * (u - l);
    double c = bnd_nl_looseness(k, 0, l, p) + bnd_nl_looseness(k, 0, p, u);
    return isfinite(c) ? c : 1e300;
}

static double best_fraction(bnd_nl_kind k, double l, double u)
{
    int best = 6;
    double best_c = INFINITY;
    for (int i = 1; i < 12; i++) {
        double c = split_cost(k, l, u, i / 12.0);
        if (c < best_c) {
            best_c = c;
            best = i;
        }
    }
    const double g = 0.6180339887498949;
    double a = (best - 1) / 12.0, b = (best + 1) / 12.0;
    double x1 = b - g * (b - a), x2 = a + g * (b - a);
    double c1 = split_cost(k, l, u, x1), c2 = split_cost(k, l, u, x2);
    for (int it = 0; it < 10; it++) {
        if (c1 <= c2) {
            b = x2, x2 = x1, c2 = c1;
            x1 = b - g * (b - a);
            c1 = split_cost(k, l, u, x1);
        } else {
            a = x1, x1 = x2, c1 = c2;
            x2 = a + g * (b - a);
            c2 = split_cost(k, l, u, x2);
        }
    }
    double f = 0.5 * (a + b);
    return split_cost(k, l, u, f) <= best_c ? f : best / 12.0;
}

/* Kinds with f(-x) = c - f(x) or f(-x) = f(x): the looseness of [l, u] is
 * that of [-u, -l], so on the symmetric grid half the table mirrors the other. */
static int symmetric(bnd_nl_kind k)
{
    return k == BND_NL_SIGMOID || k == BND_NL_TANH || k == BND_NL_ERF || k == BND_NL_SIN ||
           k == BND_NL_COS;
}

static void build(bnd_nl_kind k)
{
    const lut_spec *s = &specs[k];
    for (int i = 0; i < LUT_N; i++)
        for (int j = i + 1; j < LUT_N; j++) {
            int mi = LUT_N - 1 - j, mj = LUT_N - 1 - i; /* the mirrored pair */
            if (symmetric(k) && mi < i)
                table[k][i * LUT_N + j] = 1.0f - table[k][mi * LUT_N + mj];
            else
                table[k][i * LUT_N + j] =
                    (float)best_fraction(k, s->lo + i * s->step, s->lo + j * s->step);
        }
}

static void ensure_built(bnd_nl_kind k)
{
    if (atomic_load_explicit(&built[k], memory_order_acquire))
        return;
    pthread_mutex_lock(&build_mutex);
    if (!atomic_load_explicit(&built[k], memory_order_relaxed)) {
        build(k);
        atomic_store_explicit(&built[k], 1, memory_order_release);
    }
    pthread_mutex_unlock(&build_mutex);
}

double bnd_nl_branch_point(bnd_nl_kind k, double param, double l, double u)
{
    double m = 0.5 * l + 0.5 * u;
    (void)param;
    if ((unsigned)k >= BND_NL_COUNT || !(l < u) || specs[k].step == 0)
        return m;
    const lut_spec *s = &specs[k];
    double hi = s->lo + (LUT_N - 1) * s->step;
    if (!(l >= s->lo && u <= hi)) {
        /* off the grid: the same search, for this interval only (~50
         * looseness evaluations, small next to the bounds of two children) */
        if (!isfinite(l) || !isfinite(u))
            return m;
        double p = l + best_fraction(k, l, u) * (u - l);
        return p > l && p < u ? p : m;
    }
    ensure_built(k);
    double gl = (l - s->lo) / s->step, gu = (u - s->lo) / s->step;
    int il = (int)gl, iu = (int)gu;
    il = il > LUT_N - 2 ? LUT_N - 2 : il;
    iu = iu > LUT_N - 2 ? LUT_N - 2 : iu;
    double fl = gl - il, fu = gu - iu, wsum = 0, fsum = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            int i = il + a, j = iu + b;
            if (i >= j)
                continue;
            double w = (a ? fl : 1 - fl) * (b ? fu : 1 - fu);
            wsum += w;
            fsum += w * table[k][i * LUT_N + j];
        }
    double f = wsum > 1e-9 ? fsum / wsum : 0.5;
    double p = l + f * (u - l);
    return p > l && p < u ? p : m;
}
