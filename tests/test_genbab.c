/* test_genbab.c: bounds over nonlinear split domains are sound, and GenBaB
 * proves true properties CROWN alone cannot while never proving false ones.
 * Networks: 2 inputs, Gemm-act-Gemm-act-Gemm with sigmoid, tanh, sin, GeLU
 * or mixed ReLU/sigmoid; the true minimum of y0 - y1 over the box is found
 * on a dense grid (with a Lipschitz margin for what lies between). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bab/bab.h"
#include "../bound/bound.h"
#include "../models/nn.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1p-53;
}

static int T(nn_graph *g, const char *name)
{
    err e = {0};
    int t = nn_graph_tensor(g, name, &e);
    cr_assert(t >= 0, "%s", e.msg);
    return t;
}

static int dense(nn_graph *g, int x, int64_t n_in, int64_t n_out, const char *name, double sc)
{
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "%s_W", name);
    snprintf(bn, sizeof bn, "%s_b", name);
    err e = {0};
    int64_t dw[2] = {n_in, n_out}, db[1] = {n_out};
    int w = T(g, wn), b = T(g, bn);
    double v[64];
    cr_assert_eq(nn_tensor_set_shape(g, w, 2, dw, &e), 0);
    cr_assert_eq(nn_tensor_set_shape(g, b, 1, db, &e), 0);
    for (int i = 0; i < n_in * n_out; i++)
        v[i] = (double)(float)(sc * (2 * unif() - 1));
    cr_assert_eq(nn_tensor_set_float(g, w, v, n_in * n_out, &e), 0);
    for (int i = 0; i < n_out; i++)
        v[i] = (double)(float)(0.5 * (2 * unif() - 1));
    cr_assert_eq(nn_tensor_set_float(g, b, v, n_out, &e), 0);
    int o = T(g, name);
    cr_assert(nn_graph_add_node(g, "Gemm", name, 3, (int[]){x, w, b}, 1, &o, &e) >= 0);
    return o;
}

static int act(nn_graph *g, const char *op, int x, const char *name)
{
    err e = {0};
    int o = T(g, name);
    cr_assert(nn_graph_add_node(g, op, name, 1, &x, 1, &o, &e) >= 0, "%s", e.msg);
    return o;
}

/* x (1x2) -> 8 -> act1 -> 8 -> act2 -> 2 */
static nn_graph *net(const char *a1, const char *a2)
{
    nn_graph *g = nn_graph_new("genbab-net");
    err e = {0};
    int x = T(g, "x");
    int64_t dx[2] = {1, 2};
    cr_assert_eq(nn_tensor_set_shape(g, x, 2, dx, &e), 0);
    int h = act(g, a1, dense(g, x, 2, 8, "fc1", 2.0), "a1");
    h = act(g, a2, dense(g, h, 8, 8, "fc2", 1.5), "a2");
    int y = dense(g, h, 8, 2, "fc3", 1.0);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    return g;
}

/* min of y0 - y1 over a 201 x 201 grid of the box, and the largest change
 * between grid neighbours (a margin for points in between). */
static void grid_min(const nn_graph *g, const double *lo, const double *hi, double *mn,
                     double *step)
{
    const int G = 201;
    double x[2], y[2], *row = malloc(sizeof(double) * G), prev = 0;
    err e = {0};
    *mn = INFINITY, *step = 0;
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            x[0] = lo[0] + (hi[0] - lo[0]) * i / (G - 1);
            x[1] = lo[1] + (hi[1] - lo[1]) * j / (G - 1);
            cr_assert_eq(nn_eval(g, x, y, &e), 0);
            double v = y[0] - y[1];
            *mn = fmin(*mn, v);
            if (j > 0)
                *step = fmax(*step, fabs(v - prev));
            if (i > 0)
                *step = fmax(*step, fabs(v - row[j]));
            row[j] = v, prev = v;
        }
    free(row);
}

/* Random split domains: intervals of every nonlinear neuron cut at random
 * points; points of the box whose pre-activations fall in the domain must
 * meet its bound, and an "empty" answer must have no such point. */
Test(genbab, split_domain_bounds_hold_on_their_points, .timeout = 30)
{
    const char *acts[4][2] = {{"Sigmoid", "Tanh"}, {"Relu", "Sigmoid"}, {"Sin", "Gelu"},
                              {"Tanh", "Relu"}};
    long checked = 0, outside = 0, empty_with_points = 0, lower_than_root = 0;
    for (int v = 0; v < 4; v++) {
        nn_graph *g = net(acts[v][0], acts[v][1]);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
        int64_t na = bnd_act_count(n);
        cr_assert_eq(na, 16);
        double *plo = malloc(sizeof(double) * 4 * (size_t)na), *phi = plo + na;
        double *qlo = plo + 2 * na, *qhi = plo + 3 * na;
        double lo[2] = {-1, -0.5}, hi[2] = {0.5, 1}, C[2] = {1, -1}, lb, root;
        cr_assert_eq(bnd_split_bound(n, lo, hi, NULL, NULL, NULL, 0, C, 1, 0, &root, plo, phi, NULL, NULL, NULL, &e),
                     0, "%s", e.msg);
        for (int trial = 0; trial < 40; trial++) {
            memcpy(qlo, plo, sizeof(double) * (size_t)na);
            memcpy(qhi, phi, sizeof(double) * (size_t)na);
            int64_t first = na;
            for (int s = 0; s < 3; s++) {
                int64_t j = (int64_t)(unif() * (double)na);
                double p = qlo[j] + unif() * (qhi[j] - qlo[j]);
                if (unif() < 0.5)
                    qhi[j] = p;
                else
                    qlo[j] = p;
                first = j < first ? j : first;
            }
            int rc = bnd_split_bound(n, lo, hi, qlo, qhi, NULL, first, C, 1, 2, &lb, NULL, NULL, NULL, NULL, NULL, &e);
            cr_assert(rc == 0 || rc == 1, "%s", e.msg);
            for (int s = 0; s < 2000; s++) {
                double x[2] = {lo[0] + unif() * (hi[0] - lo[0]), lo[1] + unif() * (hi[1] - lo[1])};
                double **val = NULL;
                cr_assert_eq(nn_eval_all(g, x, &val, &e), 0);
                /* pre-activations: the inputs of the two act nodes */
                int in_dom = 1;
                for (int a = 0, at = 0; a < g->n_nodes; a++) {
                    const nn_node *nd = &g->nodes[a];
                    if (nd->op == NN_OP_GEMM)
                        continue;
                    const double *z = val[nd->in[0]];
                    for (int t = 0; t < 8; t++, at++)
                        in_dom &= z[t] >= qlo[at] && z[t] <= qhi[at];
                }
                const double *y = val[g->output];
                double obj = y[0] - y[1];
                nn_values_free(g, val);
                if (!in_dom)
                    continue;
                checked++;
                if (rc == 1)
                    empty_with_points++;
                else if (obj < lb - 1e-9 * (1 + fabs(obj)))
                    outside++;
            }
            /* (a sub-domain's bound may be below the root's: relaxations over
             * narrower intervals are not tighter everywhere; GenBaB keeps the
             * parent's bound for that reason) */
            lower_than_root += rc == 0 && lb < root;
        }
        free(plo);
        bnd_net_free(n);
        nn_graph_free(g);
    }
    cr_log_info("split domains: %ld points inside their domain, %ld below the bound, %ld in "
                "domains called empty; %ld of 160 domain bounds below the root's", checked,
                outside, empty_with_points, lower_than_root);
    cr_expect(checked > 1000);
    cr_expect_eq(outside, 0);
    cr_expect_eq(empty_with_points, 0);
}

/* GenBaB on random nets: thresholds just below the grid minimum (minus the
 * grid margin) are true and should be proven where CROWN fails, with the
 * GenBaB score at least as often as with the width baseline; thresholds
 * above it are false (a grid point violates) and must never be proven. */
typedef struct {
    int hard, proven[2], proven2; /* proven2: by two workers */
    int64_t domains[2];
} tally;

static void prove_case(const char *a1, const char *a2, tally *t)
{
    for (int v = 0; v < 3; v++) {
        nn_graph *g = net(a1, a2);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(g, &n, &e), 0);
        double lo[2] = {-0.3, -0.3}, hi[2] = {0.3, 0.3}, C[2] = {1, -1}, root, mn, step;
        cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, &root, NULL, &e), 0);
        bnd_net_free(n);
        grid_min(g, lo, hi, &mn, &step);
        double d_true = mn - step - 0.2 * fabs(mn - root);
        double d_false = mn + 1e-6;
        spec_clause cl = {1, C, &d_true};
        bab_genbab_opts o;
        bab_genbab_opts_default(&o);
        bab_genbab_stats st;
        if (root <= d_true) { /* CROWN alone cannot prove it */
            t->hard++;
            for (int r = 0; r < 2; r++) {
                o.rule = r ? BAB_BRANCH_WIDTH : BAB_BRANCH_GENBAB;
                o.topk = 1;
                o.max_domains = 600;
                int rc = bab_genbab(g, lo, hi, &cl, &o, &st, &e);
                cr_assert(rc >= 0, "%s", e.msg);
                t->proven[r] += rc == 1;
                t->domains[r] += st.domains;
            }
            /* two workers sharing the stack: the same kind of answer */
            o.rule = BAB_BRANCH_GENBAB;
            o.threads = 2;
            int rc2 = bab_genbab(g, lo, hi, &cl, &o, &st, &e);
            o.threads = 0;
            cr_assert(rc2 >= 0, "%s", e.msg);
            t->proven2 += rc2 == 1;
            /* --memory: a stack that may not hold one domain stops at the
             * root (open, unless the root bound proves it) */
            o.mem_budget = 1;
            int rc = bab_genbab(g, lo, hi, &cl, &o, &st, &e);
            o.mem_budget = 0;
            cr_assert(rc >= 0, "%s", e.msg);
            cr_assert_eq(st.domains, 1, "%lld domains within a 1-byte budget", (long long)st.domains);
        }
        /* a root cache shared by two clauses of the box (as verify does for
         * a region): the false one fills it and stays unproven; the true
         * one reuses it and gets the answer it gets without the cache */
        bab_genbab_root *cache = bab_genbab_root_new();
        cr_assert(cache);
        bab_genbab_opts oc;
        bab_genbab_opts_default(&oc);
        oc.topk = 1;
        oc.max_domains = 300;
        cl.d = &d_false;
        oc.root = cache;
        cr_expect_eq(bab_genbab(g, lo, hi, &cl, &oc, &st, &e), 0, "%s/%s: false property proven "
                     "(filling the root cache)", a1, a2);
        cl.d = &d_true;
        int with = bab_genbab(g, lo, hi, &cl, &oc, &st, &e);
        oc.root = NULL;
        int without = bab_genbab(g, lo, hi, &cl, &oc, &st, &e);
        cr_expect_eq(with, without, "%s/%s: %d with the root cache, %d without", a1, a2, with,
                     without);
        bab_genbab_root_free(cache);
        cl.d = &d_false;
        o.rule = BAB_BRANCH_GENBAB;
        o.max_domains = 150;
        cr_expect_eq(bab_genbab(g, lo, hi, &cl, &o, &st, &e), 0, "%s/%s: false property proven",
                     a1, a2);
        o.threads = 2;
        cr_expect_eq(bab_genbab(g, lo, hi, &cl, &o, &st, &e), 0,
                     "%s/%s: false property proven by two workers", a1, a2);
        o.threads = 0;
        nn_graph_free(g);
    }
}

Test(genbab, proves_true_and_never_false_properties, .timeout = 30)
{
    const char *acts[4][2] = {{"Sigmoid", "Sigmoid"}, {"Tanh", "Tanh"}, {"Sin", "Sigmoid"},
                              {"Relu", "Sigmoid"}};
    tally t = {0};
    for (int v = 0; v < 4; v++)
        prove_case(acts[v][0], acts[v][1], &t);
    cr_log_info("genbab: of %d properties CROWN cannot prove, GenBaB score proves %d (%lld "
                "domains), width baseline %d (%lld domains)", t.hard, t.proven[0],
                (long long)t.domains[0], t.proven[1], (long long)t.domains[1]);
    cr_expect(t.hard >= 5, "only %d hard cases", t.hard);
    cr_expect(t.proven[0] > t.proven[1], "GenBaB %d, width %d", t.proven[0], t.proven[1]);
    cr_expect(3 * t.proven[0] >= t.hard, "GenBaB proved only %d of %d", t.proven[0], t.hard);
    cr_expect(t.proven2 + 1 >= t.proven[0], "two workers proved %d, one %d", t.proven2,
              t.proven[0]);
}

/* The root cache belongs to one network: a second network of the same shape
 * over the same box must not start from the first one's intervals (they
 * would not contain its pre-activations). */
Test(genbab, root_cache_tells_networks_of_one_shape_apart, .timeout = 30)
{
    nn_graph *a = net("Sigmoid", "Tanh"), *b = net("Sigmoid", "Tanh");
    cr_assert_neq(nn_graph_fingerprint(a), nn_graph_fingerprint(b));
    cr_assert_eq(nn_graph_fingerprint(a), nn_graph_fingerprint(a));
    double lo[2] = {-0.3, -0.3}, hi[2] = {0.3, 0.3}, C[2] = {1, -1}, mn, step;
    grid_min(b, lo, hi, &mn, &step);
    double d_false = mn + 1e-6; /* a grid point of b violates it */
    spec_clause cl = {1, C, &d_false};
    bab_genbab_opts o;
    bab_genbab_opts_default(&o);
    o.max_domains = 200;
    bab_genbab_stats st;
    err e = {0};
    cr_assert_eq(bab_genbab(b, lo, hi, &cl, &o, &st, &e), 0, "%s", e.msg);
    double margin_alone = st.root_margin;
    bab_genbab_root *cache = bab_genbab_root_new();
    cr_assert(cache);
    o.root = cache;
    cr_assert(bab_genbab(a, lo, hi, &cl, &o, &st, &e) >= 0, "%s", e.msg); /* fills it with a's */
    cr_expect_eq(bab_genbab(b, lo, hi, &cl, &o, &st, &e), 0, "b's false property proven");
    cr_expect_eq(st.root_margin, margin_alone, "b's root margin %.17g with a's cache, %.17g alone",
                 st.root_margin, margin_alone);
    bab_genbab_root_free(cache);
    nn_graph_free(a);
    nn_graph_free(b);
}
