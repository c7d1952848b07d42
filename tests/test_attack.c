/* test_attack.c: the attack's gradients. On networks with many moving
 * inputs PGD follows the exact gradient of the active row (bnd_point_grad),
 * a few passes per step instead of one pass per input. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bab/bab.h"
#include "../core/rng.h"

#define N 100

/* y = relu(w.x) - relu(-w.x) = w.x through a hidden ReLU layer of two
 * neurons, act between the layers ("Relu" or "Sigmoid"). */
static nn_graph *wide_net(const double *w, const char *act)
{
    err e = {0};
    nn_graph *g = nn_graph_new("wide");
    cr_assert(g);
    double W[2 * N], V[2] = {1, -1}, b[2] = {0, 0};
    for (int i = 0; i < N; i++)
        W[i] = w[i], W[N + i] = -w[i];
    int x = nn_graph_tensor(g, "x", &e), tw = nn_graph_tensor(g, "W", &e);
    int tb = nn_graph_tensor(g, "b", &e), tv = nn_graph_tensor(g, "V", &e);
    int z = nn_graph_tensor(g, "z", &e), h = nn_graph_tensor(g, "h", &e);
    int y = nn_graph_tensor(g, "y", &e);
    int64_t dx[2] = {1, N}, dw[2] = {2, N}, db[1] = {2}, dv[2] = {1, 2};
    cr_assert_eq(nn_tensor_set_shape(g, x, 2, dx, &e), 0);
    cr_assert_eq(nn_tensor_set_shape(g, tw, 2, dw, &e), 0);
    cr_assert_eq(nn_tensor_set_float(g, tw, W, 2 * N, &e), 0);
    cr_assert_eq(nn_tensor_set_shape(g, tb, 1, db, &e), 0);
    cr_assert_eq(nn_tensor_set_float(g, tb, b, 2, &e), 0);
    cr_assert_eq(nn_tensor_set_shape(g, tv, 2, dv, &e), 0);
    cr_assert_eq(nn_tensor_set_float(g, tv, V, 2, &e), 0);
    int k = nn_graph_add_node(g, "Gemm", "fc0", 3, (int[]){x, tw, tb}, 1, &z, &e);
    cr_assert(k >= 0, "%s", e.msg);
    nn_node_attr_int(g, k, "transB", 1, &e);
    cr_assert(nn_graph_add_node(g, act, "act", 1, &z, 1, &h, &e) >= 0, "%s", e.msg);
    k = nn_graph_add_node(g, "Gemm", "fc1", 2, (int[]){h, tv}, 1, &y, &e);
    cr_assert(k >= 0, "%s", e.msg);
    nn_node_attr_int(g, k, "transB", 1, &e);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    return g;
}

/* X in [-1, 1]^N, unsafe when Y_0 >= thr. */
static spec_property *spec_at_least(double thr)
{
    size_t cap = 128 * N + 256, len = 0;
    char *s = malloc(cap);
    cr_assert(s);
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(s + len, cap - len,
                                "(declare-const X_%d Real)(assert (>= X_%d -1))(assert (<= X_%d 1))\n",
                                i, i, i);
    snprintf(s + len, cap - len, "(declare-const Y_0 Real)(assert (>= Y_0 %.17g))\n", thr);
    spec_property *p = NULL;
    err e = {0};
    cr_assert_eq(spec_parse_vnnlib_string("wide.vnnlib", s, &p, &e), 0, "%s", e.msg);
    free(s);
    return p;
}

/* The maximum of w.x over the box is sum |w_i| at x = sign(w); 75 % of it is
 * out of reach of random corners (about 6 standard deviations for 100 random
 * signs) but a few signed-gradient steps get there. With exact gradients
 * that costs a few dozen passes; differences would spend 100 passes on the
 * first step alone. */
Test(attack, exact_gradients_on_a_wide_relu_net)
{
    rng r;
    rng_seed(&r, 11);
    double w[N], top = 0;
    for (int i = 0; i < N; i++)
        w[i] = rng_normal(&r), top += fabs(w[i]);
    nn_graph *g = wide_net(w, "Relu");
    spec_property *p = spec_at_least(0.75 * top);
    bab_attack_opts o = {.restarts = 2, .steps = 10, .samples = 50, .seed = 1};
    double x[N];
    int64_t evals = 0;
    err e = {0};
    int rc = bab_attack(g, p, 0, &o, x, &evals, &e);
    cr_assert_eq(rc, 1, "no counterexample found (rc %d: %s)", rc, e.msg);
    double s = 0;
    for (int i = 0; i < N; i++) {
        cr_assert(x[i] >= -1 && x[i] <= 1);
        s += w[i] * x[i];
    }
    cr_expect_geq(s, 0.75 * top - 1e-9);
    cr_expect_lt(evals, 100, "%lld passes: the gradient was not exact", (long long)evals);
    spec_free(p);
    nn_graph_free(g);
}

/* Smooth nonlinearities too: at a point box their lines are the local
 * linearisation (IBP leaves the intervals a few ulps wide). */
Test(attack, exact_gradients_on_a_wide_sigmoid_net)
{
    rng r;
    rng_seed(&r, 12);
    double w[N], top = 0;
    for (int i = 0; i < N; i++)
        w[i] = 0.05 * rng_normal(&r), top += fabs(w[i]);
    nn_graph *g = wide_net(w, "Sigmoid");
    /* y = sigmoid(w.x) - sigmoid(-w.x), increasing in w.x */
    double sg = 1 / (1 + exp(-0.75 * top));
    spec_property *p = spec_at_least(sg - (1 - sg));
    bab_attack_opts o = {.restarts = 2, .steps = 10, .samples = 50, .seed = 1};
    double x[N];
    int64_t evals = 0;
    err e = {0};
    cr_assert_eq(bab_attack(g, p, 0, &o, x, &evals, &e), 1, "%s", e.msg);
    cr_expect_lt(evals, 100, "%lld passes: the gradient was not exact", (long long)evals);
    spec_free(p);
    nn_graph_free(g);
}
