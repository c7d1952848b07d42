/* test_batch_pre.c: the pre-activation bounds exchanged by bnd_mlp_bound_pre
 * (a child box meets its parent's intervals): sound under sampling, never
 * wider than what was met, the same as bnd_mlp_bound without (or with NaN)
 * inherited bounds, and not looser in practice. */
#include "relu_mlp.h"

#include "../bound/bound.h"

enum { N_IN = 3, WIDTH = 10, HIDDEN = 3, N_OUT = 2, MAXP = 2 * WIDTH * HIDDEN };

static void sample_box(rng *r, const double *lo, const double *hi, double *x)
{
    for (int j = 0; j < N_IN; j++)
        x[j] = rng_uniform(r) < 0.15 ? (rng_uniform(r) < 0.5 ? lo[j] : hi[j])
                                     : lo[j] + rng_uniform(r) * (hi[j] - lo[j]);
}

/* Every sampled pre-activation inside its interval, every objective above lb. */
/* a child box: a random half along a random dimension */
static void halve_box(rng *r, double *lo, double *hi)
{
    int d = (int)(rng_uniform(r) * N_IN) % N_IN;
    double mid = 0.5 * lo[d] + 0.5 * hi[d];
    if (rng_uniform(r) < 0.5)
        hi[d] = mid;
    else
        lo[d] = mid;
}

static void check_sound(const mlp *m, rng *r, const double *lo, const double *hi,
                        const double *pre, const double *C, const double *lb, int64_t np)
{
    double x[N_IN], y[N_OUT], z[MAXP];
    for (int s = 0; s < 400; s++) {
        sample_box(r, lo, hi, x);
        mlp_eval(m, x, y, z);
        for (int l = 0, at = 0; l < HIDDEN; l++)
            for (int j = 0; j < WIDTH; j++, at++) {
                const double *p = pre + 2 * WIDTH * l;
                cr_assert(z[at] >= p[j] && z[at] <= p[WIDTH + j],
                          "neuron %d of layer %d: %.17g outside [%.17g, %.17g]", j, l, z[at],
                          p[j], p[WIDTH + j]);
            }
        for (int q = 0; q < 2; q++)
            cr_assert(C[2 * q] * y[0] + C[2 * q + 1] * y[1] >= lb[q],
                      "row %d: sampled value below the bound %.17g", q, lb[q]);
    }
    cr_assert_eq(np, MAXP);
}

Test(batch_pre, children_meeting_parent_bounds_are_sound_and_not_wider)
{
    rng r;
    rng_seed(&r, 23);
    int not_looser = 0, total = 0;
    for (int c = 0; c < 16; c++) {
        mlp m = mlp_random(&r, N_IN, HIDDEN, WIDTH, N_OUT);
        bnd_net *n = NULL;
        bnd_mlp *b = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_mlp_new(n, &b, &e), 0, "%s", e.msg);
        int64_t np = bnd_mlp_n_pre(b);
        cr_assert_eq(np, MAXP);
        /* rounding-sensitive cases: far from the origin, and boxes of width
         * ~1e-9 or exactly 0 in some dimensions */
        double centre = c % 4 == 3 ? 300.0 : 0.0, width = c % 4 == 2 ? 1e-9 : 0.5;
        double plo[N_IN], phi[N_IN], C[4] = {1, -1, -0.5, 1};
        for (int j = 0; j < N_IN; j++) {
            double mid = centre + rng_normal(&r);
            double w = c % 5 == 4 && j == 0 ? 0 : width * (0.2 + rng_uniform(&r));
            plo[j] = mid - w, phi[j] = mid + w;
        }
        double nan_in[MAXP], ppre[MAXP], plb[2], plb0[2], pre0[MAXP];
        for (int t = 0; t < MAXP; t++)
            nan_in[t] = NAN;
        cr_assert_eq(bnd_mlp_bound_pre(b, 1, plo, phi, 2, C, 0, nan_in, ppre, plb, NULL, &e), 0,
                     "%s", e.msg);
        cr_assert_eq(bnd_mlp_bound(b, 1, plo, phi, 2, C, 0, plb0, NULL, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_mlp_bound_pre(b, 1, plo, phi, 2, C, 0, NULL, pre0, plb0, NULL, &e), 0);
        for (int q = 0; q < 2; q++)
            cr_assert(plb[q] == plb0[q], "NaN inherited bounds changed the bound");
        cr_assert(memcmp(ppre, pre0, sizeof ppre) == 0, "NaN inherited bounds changed the intervals");
        check_sound(&m, &r, plo, phi, ppre, C, plb, np);
        /* the two halves along each dimension, both at once */
        for (int d = 0; d < N_IN; d++) {
            double clo[2 * N_IN], chi[2 * N_IN], pin[2 * MAXP], cpre[2 * MAXP], clb[4], clb0[4];
            double mid = 0.5 * plo[d] + 0.5 * phi[d];
            for (int h = 0; h < 2; h++) {
                memcpy(clo + h * N_IN, plo, sizeof plo);
                memcpy(chi + h * N_IN, phi, sizeof phi);
                memcpy(pin + h * MAXP, ppre, sizeof ppre);
            }
            chi[d] = mid, clo[N_IN + d] = mid;
            cr_assert_eq(bnd_mlp_bound_pre(b, 2, clo, chi, 2, C, 0, pin, cpre, clb, NULL, &e), 0);
            cr_assert_eq(bnd_mlp_bound(b, 2, clo, chi, 2, C, 0, clb0, NULL, &e), 0);
            for (int h = 0; h < 2; h++) {
                const double *cp = cpre + h * MAXP;
                for (int l = 0; l < HIDDEN; l++)
                    for (int j = 0; j < WIDTH; j++) {
                        int64_t o = 2 * WIDTH * l;
                        cr_assert(cp[o + j] >= ppre[o + j] && cp[o + WIDTH + j] <= ppre[o + WIDTH + j],
                                  "a child's interval is wider than its parent's");
                    }
                check_sound(&m, &r, clo + h * N_IN, chi + h * N_IN, cp, C, clb + 2 * h, np);
                for (int q = 0; q < 2; q++, total++)
                    not_looser += clb[2 * h + q] >= clb0[2 * h + q] - 1e-12;
            }
        }
        bnd_mlp_free(b);
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
    /* adaptive slopes make this not a theorem, but it holds nearly always */
    cr_assert(not_looser >= total * 9 / 10, "inherited bounds looser in %d of %d rows",
              total - not_looser, total);
}

/* Inherited lines (bnd_mlp_bound_fn): a box's pre-activation lines, passed
 * down two generations of halvings (each re-expressed for the smaller box),
 * keep every sampled pre-activation inside the intervals and the
 * objectives above their bounds; they tighten intervals somewhere. */
Test(batch_pre, inherited_lines_over_generations_are_sound)
{
    rng r;
    rng_seed(&r, 57);
    int tighter = 0;
    for (int c = 0; c < 16; c++) {
        mlp m = mlp_random(&r, N_IN, HIDDEN, WIDTH, N_OUT);
        bnd_net *n = NULL;
        bnd_mlp *b = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_mlp_new(n, &b, &e), 0, "%s", e.msg);
        int64_t np = bnd_mlp_n_pre(b), nf = bnd_mlp_n_fn(b), ld = np + nf;
        cr_assert_eq(nf, 2 * N_IN + MAXP * (N_IN + 1));
        double centre = c % 4 == 3 ? 300.0 : 0.0, width = c % 4 == 2 ? 1e-9 : 0.6;
        double lo[N_IN], hi[N_IN], C[4] = {1, -1, -0.5, 1};
        for (int j = 0; j < N_IN; j++) {
            double mid = centre + rng_normal(&r);
            double w = c % 5 == 4 && j == 0 ? 0 : width * (0.2 + rng_uniform(&r));
            lo[j] = mid - w, hi[j] = mid + w;
        }
        double *rec = malloc((size_t)ld * sizeof(double)), *out = malloc((size_t)ld * sizeof(double));
        double *plain = malloc((size_t)np * sizeof(double));
        cr_assert(rec && out && plain);
        for (int64_t t = 0; t < ld; t++)
            rec[t] = NAN; /* the root: nothing inherited */
        double lb[2];
        for (int gen = 0; gen < 3; gen++) {
            cr_assert_eq(bnd_mlp_bound_fn(b, 1, lo, hi, 2, C, 0, rec, out, rec + np, out + np, ld,
                                          lb, NULL, &e), 0, "%s", e.msg);
            check_sound(&m, &r, lo, hi, out, C, lb, np);
            /* the same box with the intervals only */
            double lb0[2];
            cr_assert_eq(bnd_mlp_bound_pre(b, 1, lo, hi, 2, C, 0, rec, plain, lb0, NULL, &e), 0);
            for (int64_t t = 0; t < np / 2; t++) {
                int64_t l = t / WIDTH, j = t % WIDTH, o = 2 * WIDTH * l;
                tighter += out[o + j] > plain[o + j] || out[o + WIDTH + j] < plain[o + WIDTH + j];
            }
            memcpy(rec, out, (size_t)ld * sizeof(double));
            halve_box(&r, lo, hi);
        }
        free(rec), free(out), free(plain);
        bnd_mlp_free(b);
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
    cr_assert(tighter > 20, "the lines tightened only %d intervals", tighter);
}

/* Chains with smooth activations (sigmoid, tanh, GeLU) and mixed ReLU ones:
 * the batched bounds, with inherited intervals and lines over two
 * generations, stay below sampled objectives and contain sampled
 * pre-activations; they agree with the generic CROWN within its slack. */
Test(batch_pre, smooth_activation_chains_are_sound)
{
    const char *acts[4] = {"Sigmoid", "Tanh", "Gelu", "Relu"};
    rng r;
    rng_seed(&r, 91);
    for (int c = 0; c < 24; c++) {
        mlp m = mlp_random_act(&r, N_IN, HIDDEN, WIDTH, N_OUT, acts[c % 4]);
        bnd_net *n = NULL;
        bnd_mlp *b = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_mlp_new(n, &b, &e), 0, "%s: %s", acts[c % 4], e.msg);
        cr_assert_eq(bnd_mlp_all_relu(b), c % 4 == 3);
        int64_t np = bnd_mlp_n_pre(b), nf = bnd_mlp_n_fn(b), ld = np + nf;
        double lo[N_IN], hi[N_IN], C[4] = {1, -1, -0.5, 1};
        double centre = c % 6 == 5 ? 40.0 : 0.0;
        for (int j = 0; j < N_IN; j++) {
            double mid = centre + rng_normal(&r), w = 0.8 * (0.2 + rng_uniform(&r));
            lo[j] = mid - w, hi[j] = mid + w;
        }
        double *rec = malloc((size_t)ld * sizeof(double)), *out = malloc((size_t)ld * sizeof(double));
        cr_assert(rec && out);
        for (int64_t t = 0; t < ld; t++)
            rec[t] = NAN;
        double lb[2], lbg[2];
        cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 2, lbg, NULL, &e), 0, "%s", e.msg);
        for (int gen = 0; gen < 3; gen++) {
            cr_assert_eq(bnd_mlp_bound_fn(b, 1, lo, hi, 2, C, 3, rec, out, rec + np, out + np, ld,
                                          lb, NULL, &e), 0, "%s", e.msg);
            check_sound(&m, &r, lo, hi, out, C, lb, np);
            if (gen == 0) /* a different relaxation order, same kind of bound */
                for (int q = 0; q < 2; q++)
                    cr_assert(isfinite(lb[q]) && lb[q] > lbg[q] - 1.0 - fabs(lbg[q]),
                              "%s: batched %g far below generic CROWN %g", acts[c % 4], lb[q],
                              lbg[q]);
            memcpy(rec, out, (size_t)ld * sizeof(double));
            halve_box(&r, lo, hi);
        }
        free(rec), free(out);
        bnd_mlp_free(b);
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
}
