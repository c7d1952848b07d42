/* test_shrink.c: cutting input boxes by the clause rows' linear lower bounds
 * (bab/shrink.c). The linear function behind each bound (with and without
 * alpha steps) lies below the sampled objective; every sampled point where
 * the clause holds stays inside the cut box; cuts and refutations happen. */
#include "relu_mlp.h"

#include "../bab/shrink.h"
#include "../bound/bound.h"

enum { N_IN = 3, WIDTH = 8, HIDDEN = 2, N_OUT = 3, K = 2 };

Test(shrink, cut_boxes_keep_every_point_where_the_clause_holds)
{
    rng r;
    rng_seed(&r, 41);
    int cut = 0, refuted = 0, held = 0;
    for (int c = 0; c < 60; c++) {
        mlp m = mlp_random(&r, N_IN, HIDDEN, WIDTH, N_OUT);
        bnd_net *n = NULL;
        bnd_mlp *b = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(m.g, &n, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_mlp_new(n, &b, &e), 0, "%s", e.msg);
        double lo[N_IN], hi[N_IN], centre = c % 6 == 5 ? 200.0 : 0.0;
        for (int j = 0; j < N_IN; j++) {
            double mid = centre + rng_normal(&r), w = (c % 7 == 6 && j == 1) ? 0 : 0.5 * rng_uniform(&r);
            lo[j] = mid - w, hi[j] = mid + w;
        }
        /* the clause y0 >= y1 and y0 >= y2 as rows y_i - y0 <= d_i, with d
         * near the values at the centre so it holds on part of the box */
        double C[K * N_OUT] = {-1, 1, 0, -1, 0, 1}, d[K], x[N_IN], y[N_OUT], z[2 * HIDDEN * WIDTH];
        for (int j = 0; j < N_IN; j++)
            x[j] = 0.5 * (lo[j] + hi[j]);
        mlp_eval(&m, x, y, z);
        for (int i = 0; i < K; i++)
            d[i] = C[i * N_OUT] * y[0] + C[i * N_OUT + 1] * y[1] + C[i * N_OUT + 2] * y[2] +
                   0.3 * rng_normal(&r);
        double lb[K], A[K * N_IN], nlo[N_IN], nhi[N_IN];
        int iters = c % 2 ? 5 : 0; /* alpha: A must follow the kept bound */
        cr_assert_eq(bnd_mlp_bound(b, 1, lo, hi, K, C, iters, lb, A, &e), 0, "%s", e.msg);
        int ok = bab_shrink_box(N_IN, lo, hi, K, A, lb, d, nlo, nhi);
        if (!ok)
            refuted++;
        else
            for (int j = 0; j < N_IN; j++) {
                cr_assert(nlo[j] >= lo[j] && nhi[j] <= hi[j] && nlo[j] <= nhi[j]);
                cut += nlo[j] > lo[j] || nhi[j] < hi[j];
            }
        for (int s = 0; s < 3000; s++) {
            for (int j = 0; j < N_IN; j++) {
                double t = rng_uniform(&r);
                if (s % 5 == 0)
                    t = t < 0.5 ? 0 : 1;
                x[j] = fmin(hi[j], lo[j] + t * (hi[j] - lo[j])); /* inside the box */
            }
            mlp_eval(&m, x, y, z);
            int holds = 1;
            for (int i = 0; i < K; i++) {
                const double *ci = C + i * N_OUT, *a = A + i * N_IN;
                double v = ci[0] * y[0] + ci[1] * y[1] + ci[2] * y[2], lin = lb[i];
                for (int j = 0; j < N_IN; j++)
                    lin += fabs(a[j]) * (a[j] > 0 ? x[j] - lo[j] : hi[j] - x[j]);
                cr_assert(v >= lin - 1e-12 * (1 + fabs(v)),
                          "case %d row %d: objective %.17g below its linear bound %.17g", c, i, v,
                          lin);
                holds &= v <= d[i];
            }
            if (!holds)
                continue;
            held++;
            cr_assert(ok, "case %d: refuted, but the clause holds at a sample", c);
            for (int j = 0; j < N_IN; j++)
                cr_assert(x[j] >= nlo[j] && x[j] <= nhi[j],
                          "case %d: x_%d = %.17g outside the cut [%.17g, %.17g]", c, j, x[j],
                          nlo[j], nhi[j]);
        }
        bnd_mlp_free(b);
        bnd_net_free(n);
        nn_graph_free(m.g);
    }
    cr_assert(cut > 5 && refuted > 0 && held > 100, "cut %d, refuted %d, held %d", cut, refuted,
              held);
}
