/* test_beta_batch.c: batched beta-CROWN (bnd_beta_batch) over random split
 * domains of small random MLPs: sound under sampling (with random warm-start
 * alpha and beta, as BaB passes them), never above the LP optimum of the
 * same relaxation nor the exact MILP over the domain. */
#include "relu_mlp.h"

#include "../bound/bound.h"

#define NB 6   /* domains per batch */
#define MAXR 64

typedef struct {
    double plo[32], phi[32];
    bnd_split s[6];
    int ns;
} tdom;

static void root_bounds(bnd_net *n, const double *lo, const double *hi, double *plo, double *phi)
{
    err e = {0};
    double C[2] = {1, -1}, lb;
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &lb, NULL, &e), 0, "%s", e.msg);
    bnd_relu_bounds(n, plo, phi);
}

/* a random split domain: up to ns root-unstable neurons, bounds clipped */
static void random_domain(rng *r, int64_t nr, const double *plo, const double *phi, int ns, tdom *d)
{
    memcpy(d->plo, plo, (size_t)nr * sizeof(double));
    memcpy(d->phi, phi, (size_t)nr * sizeof(double));
    d->ns = 0;
    for (int tries = 0; tries < 200 && d->ns < ns; tries++) {
        int64_t j = (int64_t)(rng_uniform(r) * (double)nr);
        int dup = 0;
        for (int q = 0; q < d->ns; q++)
            dup |= d->s[q].neuron == j;
        if (dup || !(plo[j] < 0 && phi[j] > 0))
            continue;
        int side = rng_uniform(r) < 0.5 ? 1 : -1;
        d->s[d->ns++] = (bnd_split){j, side};
        if (side > 0)
            d->plo[j] = 0;
        else
            d->phi[j] = 0;
    }
}

/* a random 3-input MLP of `layers` hidden layers of 8, its chain form, a
 * random input box and the root's CROWN bounds of every ReLU */
static mlp random_case(rng *r, int layers, bnd_net **n, bnd_mlp **mm, double *lo, double *hi,
                       double *plo, double *phi)
{
    mlp m = mlp_random(r, 3, layers, 8, 2);
    err e = {0};
    cr_assert_eq(bnd_net_new(m.g, n, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_mlp_new(*n, mm, &e), 0, "%s", e.msg);
    for (int i = 0; i < 3; i++) {
        double mid = rng_normal(r), w = 0.2 + rng_uniform(r);
        lo[i] = mid - w, hi[i] = mid + w;
    }
    root_bounds(*n, lo, hi, plo, phi);
    return m;
}

Test(beta_batch, sound_under_sampling_with_random_splits)
{
    rng r;
    rng_seed(&r, 21);
    int checked = 0;
    for (int c = 0; c < 40; c++) {
        bnd_net *n = NULL;
        bnd_mlp *mm = NULL;
        err e = {0};
        double lo[3], hi[3], plo[32], phi[32];
        mlp m = random_case(&r, 1 + c % 3, &n, &mm, lo, hi, plo, phi);
        int64_t nr = bnd_relu_count(n);
        cr_assert_eq(bnd_mlp_relu_count(mm), nr);
        tdom d[NB];
        bnd_bbeta_dom dm[NB];
        for (int b = 0; b < NB; b++) {
            random_domain(&r, nr, plo, phi, 1 + (b + c) % 5, &d[b]);
            dm[b] = (bnd_bbeta_dom){d[b].plo, d[b].phi, d[b].s, d[b].ns};
        }
        /* rows: y0 - y1 and y1 - y0 for every domain */
        int64_t R = 2 * NB, dom[MAXR];
        double C[MAXR * 2], beta[MAXR][6], alpha[MAXR][32], lb[MAXR], xs[MAXR * 3];
        double *bp[MAXR], *ap[MAXR];
        for (int64_t q = 0; q < R; q++) {
            dom[q] = q / 2;
            C[2 * q] = q % 2 ? -1 : 1, C[2 * q + 1] = -C[2 * q];
            for (int t = 0; t < 6; t++)
                beta[q][t] = c % 2 ? rng_uniform(&r) : 0;
            for (int t = 0; t < 32; t++)
                alpha[q][t] = c % 3 == 0 ? -1 : rng_uniform(&r);
            bp[q] = beta[q], ap[q] = alpha[q];
        }
        bnd_bbeta_rows rows = {R, dom, C, NULL, bp, ap, lb, NULL, xs};
        /* single-precision steering (f64 = 0) on most cases, all-double on some */
        bnd_bbeta_opts o = {c % 4 == 0 ? 1 : 20, 0.05, 0.1, 0, c % 8 == 6};
        cr_assert_eq(bnd_beta_batch(mm, lo, hi, NB, dm, &rows, &o, &e), 0, "%s", e.msg);
        for (int64_t q = 0; q < R; q++)
            for (int t = 0; t < d[dom[q]].ns; t++)
                cr_assert(beta[q][t] >= 0);
        for (int t = 0; t < 4000; t++) {
            double x[3], y[2], pre[32];
            for (int i = 0; i < 3; i++)
                x[i] = lo[i] + (hi[i] - lo[i]) * rng_uniform(&r);
            mlp_eval(&m, x, y, pre);
            for (int b = 0; b < NB; b++) {
                int meets = 1;
                for (int q = 0; q < d[b].ns; q++)
                    meets &= d[b].s[q].side > 0 ? pre[d[b].s[q].neuron] >= 0
                                                : pre[d[b].s[q].neuron] <= 0;
                if (!meets)
                    continue;
                checked++;
                cr_assert(y[0] - y[1] >= lb[2 * b], "case %d dom %d: %.17g < lb %.17g", c, b,
                          y[0] - y[1], lb[2 * b]);
                cr_assert(y[1] - y[0] >= lb[2 * b + 1], "case %d dom %d: %.17g < lb %.17g", c, b,
                          y[1] - y[0], lb[2 * b + 1]);
            }
        }
        /* the relaxed minimisers lie in the box */
        for (int64_t q = 0; q < R * 3; q++)
            cr_assert(xs[q] >= lo[q % 3] && xs[q] <= hi[q % 3]);
        bnd_mlp_free(mm);
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
    cr_assert(checked > 50000, "only %d sampled points met their splits", checked);
}

Test(beta_batch, never_above_the_lp_or_milp_optimum)
{
    rng r;
    rng_seed(&r, 22);
    int improved = 0;
    for (int c = 0; c < 40; c++) {
        mlp m = mlp_random(&r, 3, 2, 6, 2);
        bnd_net *n = NULL;
        bnd_mlp *mm = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_mlp_new(n, &mm, &e), 0, "%s", e.msg);
        double lo[3] = {-1, -1, -1}, hi[3] = {1, 1, 1}, plo[12], phi[12];
        root_bounds(n, lo, hi, plo, phi);
        tdom d;
        random_domain(&r, 12, plo, phi, 3, &d);
        bnd_bbeta_dom dm = {d.plo, d.phi, d.s, d.ns};
        double C[2] = {1, -1}, beta[6] = {0}, lb0, lb;
        double *bp[1] = {beta};
        int64_t dom[1] = {0};
        bnd_bbeta_rows rows = {1, dom, C, NULL, bp, NULL, &lb0, NULL, NULL};
        bnd_bbeta_opts o = {1, 0.05, 0.1, 0, c % 2};
        cr_assert_eq(bnd_beta_batch(mm, lo, hi, 1, &dm, &rows, &o, &e), 0, "%s", e.msg);
        o.iters = 40;
        rows.lb = &lb;
        cr_assert_eq(bnd_beta_batch(mm, lo, hi, 1, &dm, &rows, &o, &e), 0, "%s", e.msg);
        /* all-double steps keep the best sound pass, which includes the start;
         * single-precision steering chooses by estimates within rounding */
        cr_assert(lb >= lb0 - (c % 2 ? 0 : 1e-9 * (1 + fabs(lb0))), "case %d: %.17g < %.17g", c,
                  lb, lb0);
        improved += lb > lb0 + 1e-9;
        /* the one-domain path on the same bounds (no intermediate refresh),
         * then the LP of its relaxation, which is at least as tight */
        bnd_domain bd = {lo, hi, d.plo, d.phi, d.s, d.ns, 1 << 30, 0, 0};
        bnd_beta_opts bo = {.iters = 0, .lr = 0.05};
        double lbs, beta2[6] = {0};
        bnd_beta_out out = {.lb = &lbs, .beta = beta2};
        int rc = bnd_beta_bound(n, &bd, C, 1, &bo, &out, &e);
        cr_assert(rc >= 0, "%s", e.msg);
        double v = INFINITY, safe;
        if (rc == 0)
            rc = bnd_lp_min(n, d.s, d.ns, C, 0, &v, &safe, NULL, &e);
        cr_assert(rc >= 0, "%s", e.msg);
        if (rc == 0)
            cr_assert(lb <= v + 1e-7 * (1 + fabs(v)), "case %d: batch %.17g above LP %.17g", c,
                      lb, v);
        /* exact MILP over the domain: also an upper limit */
        double vm;
        if (bnd_lp_min(n, d.s, d.ns, C, 1, &vm, NULL, NULL, &e) == 0)
            cr_assert(lb <= vm + 1e-7 * (1 + fabs(vm)), "case %d: batch %.17g above MILP %.17g",
                      c, lb, vm);
        bnd_mlp_free(mm);
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
    cr_assert(improved >= 5, "alpha/beta improved the bound in only %d cases", improved);
}

/* Single-precision steering: the reported bound is exactly the sound
 * double pass at the parameters it reports for (with learning rates 0 every
 * iterate has the warm start's, so that pass is an all-double pass there),
 * and with the usual rates it is as tight as all-double steps up to the
 * steering's noise. */
Test(beta_batch, steered_bound_is_the_sound_pass_at_its_parameters)
{
    rng r;
    rng_seed(&r, 23);
    double sum_fast = 0, sum_f64 = 0;
    int compared = 0;
    for (int c = 0; c < 30; c++) {
        bnd_net *n = NULL;
        bnd_mlp *mm = NULL;
        err e = {0};
        double lo[3], hi[3], plo[32], phi[32];
        mlp m = random_case(&r, 2 + c % 2, &n, &mm, lo, hi, plo, phi);
        int64_t nr = bnd_relu_count(n);
        tdom d[NB];
        for (int b = 0; b < NB; b++)
            random_domain(&r, nr, plo, phi, 1 + (b + c) % 4, &d[b]);
        int64_t R = 2 * NB, dom[MAXR];
        double C[MAXR * 2];
        for (int64_t q = 0; q < R; q++) {
            dom[q] = q / 2;
            C[2 * q] = q % 2 ? -1 : 1, C[2 * q + 1] = -C[2 * q];
        }
        /* v: 0 steered, rates 0; 1 all double, one pass; 2 steered; 3 all double */
        double lb[4][MAXR], a0[MAXR][32], b0[MAXR][6];
        for (int64_t q = 0; q < R; q++) {
            for (int t = 0; t < 32; t++)
                a0[q][t] = rng_uniform(&r);
            for (int t = 0; t < 6; t++)
                b0[q][t] = rng_uniform(&r);
        }
        for (int v = 0; v < 4; v++) {
            tdom dv[NB];
            bnd_bbeta_dom dm[NB];
            double beta[MAXR][6], alpha[MAXR][32], *bp[MAXR], *ap[MAXR];
            for (int b = 0; b < NB; b++) {
                dv[b] = d[b];
                dm[b] = (bnd_bbeta_dom){dv[b].plo, dv[b].phi, dv[b].s, dv[b].ns};
            }
            for (int64_t q = 0; q < R; q++) {
                memcpy(beta[q], b0[q], sizeof beta[q]);
                memcpy(alpha[q], a0[q], sizeof alpha[q]);
                bp[q] = beta[q], ap[q] = alpha[q];
            }
            bnd_bbeta_rows rows = {R, dom, C, NULL, bp, ap, lb[v], NULL, NULL};
            double lr = v < 2 ? 0 : 1;
            bnd_bbeta_opts o = {v == 1 ? 1 : 20, 0.05 * lr, 0.1 * lr, 0, v % 2};
            cr_assert_eq(bnd_beta_batch(mm, lo, hi, NB, dm, &rows, &o, &e), 0, "%s", e.msg);
        }
        for (int64_t q = 0; q < R; q++) {
            cr_assert(lb[0][q] == lb[1][q], "case %d row %lld: steered %.17g, double pass %.17g",
                      c, (long long)q, lb[0][q], lb[1][q]);
            if (isfinite(lb[2][q]) && isfinite(lb[3][q]))
                sum_fast += lb[2][q], sum_f64 += lb[3][q], compared++;
        }
        bnd_mlp_free(mm);
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
    cr_assert(compared > 100, "only %d rows compared", compared);
    cr_assert(fabs(sum_fast - sum_f64) <= 1e-3 * (1 + fabs(sum_f64)),
              "steered %.9g vs all-double %.9g", sum_fast, sum_f64);
}
