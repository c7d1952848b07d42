/* test_alpha.c: alpha-CROWN (bound/alpha.c) and the batched chain bounds
 * (bound/batch.c): never looser than CROWN where promised, and sound under
 * dense sampling on random networks and on an ACAS Xu network. */
#include "relu_mlp.h"

#include "../bound/bound.h"
#include "../specs/spec.h"
#include "shared_data.h"

/* min over samples of each row of C·f(x), x uniform in the box */
static void sampled_min(const nn_graph *g, const double *lo, const double *hi, int64_t n_in,
                        int64_t n_out, const double *C, int k, int samples, rng *r, double *mn)
{
    double x[16], y[16];
    err e = {0};
    for (int q = 0; q < k; q++)
        mn[q] = INFINITY;
    for (int s = 0; s < samples; s++) {
        for (int64_t j = 0; j < n_in; j++) /* corners now and then */
            x[j] = s % 7 == 0 ? (rng_uniform(r) < 0.5 ? lo[j] : hi[j])
                              : lo[j] + rng_uniform(r) * (hi[j] - lo[j]);
        cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
        for (int q = 0; q < k; q++) {
            double v = 0;
            for (int64_t t = 0; t < n_out; t++)
                v += C[q * n_out + t] * y[t];
            if (v < mn[q])
                mn[q] = v;
        }
    }
}

Test(alpha, alpha_never_looser_than_crown_and_sound_on_random_nets)
{
    rng r;
    rng_seed(&r, 11);
    int tighter = 0;
    for (int c = 0; c < 12; c++) {
        mlp m = mlp_random(&r, 3, 3, 12, 3);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        double lo[3], hi[3], C[6], lbc[2], lba[2], mn[2];
        for (int j = 0; j < 3; j++) {
            double mid = rng_normal(&r), w = 0.2 + rng_uniform(&r);
            lo[j] = mid - w, hi[j] = mid + w;
        }
        for (int q = 0; q < 6; q++)
            C[q] = rng_normal(&r);
        cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 2, lbc, NULL, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_alpha_crown(n, lo, hi, C, 2, 20, lba, &e), 0, "%s", e.msg);
        sampled_min(m.g, lo, hi, 3, 3, C, 2, 3000, &r, mn);
        for (int q = 0; q < 2; q++) {
            cr_assert(lba[q] >= lbc[q], "alpha %.17g looser than CROWN %.17g", lba[q], lbc[q]);
            cr_assert(lba[q] <= mn[q], "alpha %.17g above a sampled value %.17g", lba[q], mn[q]);
            tighter += lba[q] > lbc[q] + 1e-9;
        }
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
    cr_assert(tighter > 0, "alpha never improved on CROWN in 24 rows");
}

Test(alpha, batched_bounds_sound_and_alpha_not_looser)
{
    rng r;
    rng_seed(&r, 5);
    for (int c = 0; c < 10; c++) {
        mlp m = mlp_random(&r, 4, 3, 10, 2);
        bnd_net *n = NULL;
        bnd_mlp *b = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_mlp_new(n, &b, &e), 0, "%s", e.msg);
        enum { B = 5 };
        double lo[B * 4], hi[B * 4], C[2 * 2] = {1, -1, 0.5, 1}, lb0[B * 2], lb1[B * 2], A[B * 2 * 4];
        for (int t = 0; t < B * 4; t++) {
            double mid = rng_normal(&r), w = 0.05 + rng_uniform(&r);
            lo[t] = mid - w, hi[t] = mid + w;
        }
        cr_assert_eq(bnd_mlp_bound(b, B, lo, hi, 2, C, 0, lb0, A, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_mlp_bound(b, B, lo, hi, 2, C, 10, lb1, NULL, &e), 0, "%s", e.msg);
        for (int box = 0; box < B; box++) {
            double mn[2], lbc[2];
            sampled_min(m.g, lo + box * 4, hi + box * 4, 4, 2, C, 2, 1500, &r, mn);
            cr_assert_eq(bnd_compute(n, BND_CROWN, lo + box * 4, hi + box * 4, C, 2, lbc, NULL, &e), 0);
            for (int q = 0; q < 2; q++) {
                double a = lb0[box * 2 + q], al = lb1[box * 2 + q];
                cr_assert(a <= mn[q], "batched %.17g above a sampled value %.17g", a, mn[q]);
                cr_assert(al >= a, "batched alpha %.17g looser than %.17g", al, a);
                cr_assert(al <= mn[q], "batched alpha %.17g above a sampled value %.17g", al, mn[q]);
                /* CROWN's intermediate bounds met with the forward ones and
                 * IBP: at least as tight as CROWN up to rounding */
                cr_assert(mn[q] - a <= 1.05 * (mn[q] - lbc[q]) + 1e-9,
                          "batched %.6g much looser than CROWN %.6g (sampled %.6g)", a, lbc[q], mn[q]);
            }
        }
        /* the batched forward pass agrees with nn_eval */
        double x[4], y[2], yb[2];
        for (int j = 0; j < 4; j++)
            x[j] = lo[j];
        cr_assert_eq(nn_eval(m.g, x, y, &e), 0);
        cr_assert_eq(bnd_mlp_eval(b, 1, x, yb, &e), 0);
        for (int q = 0; q < 2; q++)
            cr_assert(fabs(y[q] - yb[q]) <= 1e-9 * (1 + fabs(y[q])));
        bnd_mlp_free(b);
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
}

Test(alpha, acasxu_alpha_and_batched_sound_under_sampling)
{
    NEED_SHARED();
    nn_graph *g = NULL;
    spec_property *p = NULL;
    err e = {0};
    cr_assert_eq(nn_load("../shared/benchmarks/acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx", &g, &e), 0,
                 "%s", e.msg);
    cr_assert_eq(spec_parse_vnnlib("../shared/benchmarks/acasxu/vnnlib/prop_3.vnnlib", &p, &e), 0, "%s",
                 e.msg);
    const spec_clause *cl = &p->regions[0].clauses[0];
    bnd_net *n = NULL;
    bnd_mlp *b = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_mlp_new(n, &b, &e), 0, "%s", e.msg);
    rng r;
    rng_seed(&r, 3);
    for (int s = 0; s < 3; s++) {
        double lo[5], hi[5], mn[4], lbc[4], lba[4], lbb[4];
        double scale = s == 0 ? 1.0 : s == 1 ? 0.2 : 0.05;
        for (int j = 0; j < 5; j++) {
            double L = p->regions[0].lo[j], H = p->regions[0].hi[j];
            double c = L + rng_uniform(&r) * (H - L), w = 0.5 * scale * (H - L);
            lo[j] = fmax(L, c - w), hi[j] = fmin(H, c + w);
        }
        cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, cl->C, cl->n_rows, lbc, NULL, &e), 0);
        cr_assert_eq(bnd_alpha_crown(n, lo, hi, cl->C, cl->n_rows, 20, lba, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_mlp_bound(b, 1, lo, hi, cl->n_rows, cl->C, 10, lbb, NULL, &e), 0);
        sampled_min(g, lo, hi, 5, 5, cl->C, cl->n_rows, 4000, &r, mn);
        for (int q = 0; q < cl->n_rows; q++) {
            cr_assert(lba[q] >= lbc[q]);
            cr_assert(lba[q] <= mn[q], "alpha %.17g above sampled %.17g", lba[q], mn[q]);
            cr_assert(lbb[q] <= mn[q], "batched %.17g above sampled %.17g", lbb[q], mn[q]);
        }
    }
    bnd_mlp_free(b);
    bnd_net_free(n);
    spec_free(p);
    nn_graph_free(g);
}
