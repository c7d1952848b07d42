/* stress_genbab.c: GenBaB (bab/genbab.c) must never prove a clause that a
 * sampled point satisfies.
 *
 * A random network with smooth ops (sg_network, smooth = 1), a random box,
 * and two clauses C y <= d over it:
 * - a false one: the thresholds sit just above the rows' values at the best
 *   of the sampled points x_s (the point minimising the clause's largest row),
 *   checked in all three rounding modes, so x_s is a counterexample whatever
 *   the network's true minimum is, and a proof is a soundness bug. The gap is
 *   1e-12 .. 1e-3 relative, so the search has to go deep around x_s;
 * - a probably true one: one row, its threshold below the row's sampled
 *   minimum. Proofs are allowed and counted, so a GenBaB that proves nothing
 *   shows.
 * Both run with random GenBaB options (rule, top-k, midpoint or table points,
 * tangent rounds, root alpha, input splits, folding, refine fraction, CROWN
 * row cap, workers) over the same box, sometimes sharing the root's intervals
 * (bab_genbab_root), in random order. */
#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../bab/bab.h"
#include "../bound/bound.h"
#include "../core/clock.h"
#include "stress_gen.h"

static int urand(rng *r, int n)
{
    return n <= 1 ? 0 : (int)(rng_next(r) % (uint64_t)n);
}

static int eval_mode(const nn_graph *g, int mode, const double *x, double *y, err *e)
{
    fesetround(mode);
    int rc = nn_eval(g, x, y, e);
    fesetround(FE_TONEAREST);
    return rc;
}

static double row(const double *C, int64_t ny, int i, const double *y)
{
    double s = 0;
    for (int64_t j = 0; j < ny; j++)
        s += C[i * ny + j] * y[j];
    return s;
}

static int finite_all(const double *v, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        if (!isfinite(v[j]))
            return 0;
    return 1;
}

static void random_opts(rng *r, bab_genbab_opts *go)
{
    bab_genbab_opts_default(go);
    go->rule = urand(r, 4) == 0 ? BAB_BRANCH_WIDTH : BAB_BRANCH_GENBAB;
    go->topk = 1 + urand(r, 3);
    go->midpoint = urand(r, 3) == 0;
    go->no_fold = urand(r, 3) == 0;
    go->tau_iters = urand(r, 3);
    go->root_alpha = urand(r, 2) ? 0 : 1 + urand(r, 20);
    go->root_interm = urand(r, 3);
    go->input_splits = urand(r, 4) != 0;
    go->refine_frac = urand(r, 2) ? 0.25 : 0;
    go->crown_max_rows = urand(r, 5) == 0 ? 1 + urand(r, 3) : 0;
    go->threads = 1 + urand(r, 2);
    go->max_domains = 50 + urand(r, 1000);
}

int sg_check_genbab(uint64_t seed, int samples, double budget, int medium, sg_stats *st,
                    FILE *log)
{
    rng r;
    rng_seed(&r, seed);
    err e = {0};
    char desc[512];
    sg_opts o = {.max_ops = 5, .max_elems = 24, .max_in = 6, .max_out = 3,
                 .numerics = urand(&r, 2) ? SG_NUM_NORMAL : SG_NUM_DYADIC, .smooth = 1};
    if (medium)
        o.max_ops = 10, o.max_elems = 64, o.max_in = 12, o.max_out = 4;
    nn_graph *g = NULL;
    int rc = sg_network(&r, &o, &g, desc, sizeof desc, &e);
    if (rc)
        return rc;
    int64_t nx = nn_input_size(g), ny = nn_output_size(g);
    static const int boxes[] = {SG_BOX_NARROW, SG_BOX_WIDE, SG_BOX_SOMEPOINT, SG_BOX_DYADIC};
    double *buf = calloc((size_t)(5 * nx + 8 * ny + 8), sizeof(double));
    if (!buf) {
        nn_graph_free(g);
        return ERR_NOMEM;
    }
    double *lo = buf, *hi = lo + nx, *x = hi + nx, *xs = x + nx, *y = xs + nx, *yu = y + ny,
           *yd = yu + ny, *C = yd + ny; /* C: 2 rows of the false clause, 1 of the true */
    double d[3];
    sg_box(&r, boxes[urand(&r, 4)], nx, lo, hi);
    int m = 1 + urand(&r, 2);
    for (int i = 0; i < m + 1; i++)
        for (int64_t j = 0; j < ny; j++)
            C[i * ny + j] = urand(&r, 3) ? rng_normal(&r) : 0;
    /* sample: corners first (all of them up to 6 inputs, else 64 random
     * ones), then uniform points */
    double best = INFINITY, tmin = INFINITY;
    int64_t corners = nx <= 6 ? (int64_t)1 << nx : 64;
    for (int s = 0; s < samples; s++) {
        for (int64_t i = 0; i < nx; i++) {
            double t = s >= corners ? rng_uniform(&r)
                       : nx <= 6    ? (double)((s >> i) & 1)
                                    : (double)urand(&r, 2);
            x[i] = lo[i] + t * (hi[i] - lo[i]);
            if (x[i] > hi[i])
                x[i] = hi[i];
        }
        if (nn_eval(g, x, y, &e) || !finite_all(y, ny))
            continue;
        st->samples++;
        double worst = -INFINITY;
        for (int i = 0; i < m; i++)
            worst = fmax(worst, row(C, ny, i, y));
        if (worst < best)
            best = worst, memcpy(xs, x, (size_t)nx * sizeof(double));
        tmin = fmin(tmin, row(C, ny, m, y));
    }
    if (!isfinite(best) || !isfinite(tmin)) { /* nothing finite to anchor on */
        st->unsupported++;
        goto done;
    }
    /* the false clause's thresholds: above the rows at x_s in every mode */
    double gap = pow(10.0, -3.0 * (1 + urand(&r, 4)));
    if (eval_mode(g, FE_TONEAREST, xs, y, &e) || eval_mode(g, FE_UPWARD, xs, yu, &e) ||
        eval_mode(g, FE_DOWNWARD, xs, yd, &e) || !finite_all(yu, ny) || !finite_all(yd, ny)) {
        st->unsupported++;
        goto done;
    }
    for (int i = 0; i < m; i++) {
        double v = fmax(row(C, ny, i, y), fmax(row(C, ny, i, yu), row(C, ny, i, yd)));
        d[i] = v + gap * (1 + fabs(v));
    }
    spec_clause cf = {m, C, d}, ct = {1, C + m * ny, d + 2};
    if (!spec_clause_holds(&cf, ny, y, 0) || !spec_clause_holds(&cf, ny, yu, 0) ||
        !spec_clause_holds(&cf, ny, yd, 0)) {
        st->unsupported++; /* cannot happen short of an overflow in the rows */
        goto done;
    }
    d[2] = tmin - pow(10.0, -3.0 * (1 + urand(&r, 3))) * (1 + fabs(tmin));
    bab_genbab_opts go;
    random_opts(&r, &go);
    if (urand(&r, 2))
        go.root = bab_genbab_root_new();
    int false_first = urand(&r, 2);
    for (int k = 0; k < 2; k++) {
        int is_false = (k == 0) == false_first;
        bab_genbab_stats gs;
        go.deadline = clock_now() + budget;
        rc = bab_genbab(g, lo, hi, is_false ? &cf : &ct, &go, &gs, &e);
        if (rc == ERR_UNSUP) {
            st->unsupported++;
            rc = 0;
            break;
        }
        if (rc < 0) {
            if (log)
                fprintf(log, "GENBAB ERROR seed %llu: %s [%s]\n", (unsigned long long)seed,
                        e.msg, desc);
            break;
        }
        st->bab_cases++;
        st->bab_domains += gs.domains;
        if (!is_false) {
            st->bab_unsat += rc == 1;
            st->bab_unknown += rc != 1;
        } else if (rc == 1) {
            st->bab_wrong++;
            if (log) {
                fprintf(log, "GENBAB WRONG seed %llu: proved a clause x_s satisfies (gap %g) [%s]\n  x_s:",
                        (unsigned long long)seed, gap, desc);
                for (int64_t i = 0; i < nx; i++)
                    fprintf(log, " %.17g", xs[i]);
                fprintf(log, "\n");
            }
        } else {
            st->bab_sat++; /* the false clause stayed open: right */
        }
        rc = 0;
    }
    bab_genbab_root_free(go.root);
done:
    free(buf);
    nn_graph_free(g);
    return rc;
}
