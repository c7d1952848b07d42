/* test_verify.c: the verification procedure end to end on small networks
 * whose answers are known by hand: attacks find real counterexamples, bounds
 * prove what is true, and nothing wrong is ever claimed. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../bab/bab.h"
#include "../core/rng.h"

/* y = relu(w * x + b) + c, one input, one output. */
static nn_graph *tiny_net(double w, double b, double c)
{
    err e = { 0 };
    nn_graph *g = nn_graph_new("tiny");
    cr_assert(g);
    int64_t d11[2] = { 1, 1 }, d1[1] = { 1 };
    int x = nn_graph_tensor(g, "x", &e), W = nn_graph_tensor(g, "W", &e);
    int B = nn_graph_tensor(g, "b", &e), h = nn_graph_tensor(g, "h", &e);
    int r = nn_graph_tensor(g, "r", &e), C = nn_graph_tensor(g, "c", &e);
    int y = nn_graph_tensor(g, "y", &e);
    cr_assert(nn_tensor_set_shape(g, x, 2, d11, &e) == 0);
    cr_assert(nn_tensor_set_shape(g, W, 2, d11, &e) == 0);
    cr_assert(nn_tensor_set_shape(g, B, 1, d1, &e) == 0);
    cr_assert(nn_tensor_set_shape(g, C, 1, d1, &e) == 0);
    cr_assert(nn_tensor_set_float(g, W, &w, 1, &e) == 0);
    cr_assert(nn_tensor_set_float(g, B, &b, 1, &e) == 0);
    cr_assert(nn_tensor_set_float(g, C, &c, 1, &e) == 0);
    int in1[3] = { x, W, B }, in2[1] = { h }, in3[2] = { r, C };
    cr_assert(nn_graph_add_node(g, "Gemm", "fc", 3, in1, 1, &h, &e) >= 0);
    cr_assert(nn_graph_add_node(g, "Relu", "relu", 1, in2, 1, &r, &e) >= 0);
    cr_assert(nn_graph_add_node(g, "Add", "shift", 2, in3, 1, &y, &e) >= 0);
    cr_assert(nn_graph_add_input(g, x, &e) == 0);
    cr_assert(nn_graph_add_output(g, y, &e) == 0);
    cr_assert(nn_graph_finalize(g, &e) == 0, "%s", e.msg);
    return g;
}

static bab_answer decide(nn_graph *g, const char *vnnlib, double *x_out)
{
    err e = { 0 };
    spec_property *p = NULL;
    cr_assert(spec_parse_vnnlib_string("t.vnnlib", vnnlib, &p, &e) == 0, "%s", e.msg);
    bab_opts o;
    bab_opts_default(&o);
    o.timeout = 20;
    bab_result res;
    cr_assert(bab_verify(g, p, &o, &res, &e) == 0, "%s", e.msg);
    bab_answer a = res.answer;
    if (a == BAB_SAT && x_out)
        *x_out = res.x[0];
    bab_result_free(&res);
    spec_free(p);
    return a;
}

#define HEAD "(declare-const X_0 Real)(declare-const Y_0 Real)" \
             "(assert (>= X_0 -1))(assert (<= X_0 1))"

Test(verify, attack_finds_reachable_output)
{
    /* y = relu(x) - 0.5 on [-1, 1] is >= 0.3 exactly for x >= 0.8 */
    nn_graph *g = tiny_net(1, 0, -0.5);
    double x = 0;
    cr_expect_eq(decide(g, HEAD "(assert (>= Y_0 0.3))", &x), BAB_SAT);
    cr_expect_geq(x, 0.8 - 1e-12, "counterexample x = %g must give relu(x) - 0.5 >= 0.3", x);
    nn_graph_free(g);
}

Test(verify, bounds_prove_unreachable_output)
{
    /* relu(x) - 0.5 <= 0.5 on [-1, 1]: y >= 0.6 is impossible */
    nn_graph *g = tiny_net(1, 0, -0.5);
    cr_expect_eq(decide(g, HEAD "(assert (>= Y_0 0.6))", NULL), BAB_UNSAT);
    /* and y <= -0.6 is impossible too (relu >= 0) */
    cr_expect_eq(decide(g, HEAD "(assert (<= Y_0 -0.6))", NULL), BAB_UNSAT);
    nn_graph_free(g);
}

Test(verify, boundary_counterexample_is_found_or_left_unknown)
{
    /* max of y is exactly 0.5 at x = 1: y >= 0.5 is sat only at the corner */
    nn_graph *g = tiny_net(1, 0, -0.5);
    bab_answer a = decide(g, HEAD "(assert (>= Y_0 0.5))", NULL);
    cr_expect(a == BAB_SAT || a == BAB_UNKNOWN, "got %s", bab_answer_name(a));
    nn_graph_free(g);
}

Test(verify, counterexample_check_rejects_points_outside_box)
{
    nn_graph *g = tiny_net(1, 0, -0.5);
    err e = { 0 };
    spec_property *p = NULL;
    cr_assert(spec_parse_vnnlib_string("t.vnnlib", HEAD "(assert (>= Y_0 0.3))", &p, &e) == 0);
    double x_in = 0.9, x_out = 1.5, x_bad = 0.1, y;
    cr_expect_eq(bab_check_counterexample(g, p, 0, &x_in, &y, &e), 1);
    cr_expect_float_eq(y, 0.4, 1e-15);
    cr_expect_eq(bab_check_counterexample(g, p, 0, &x_out, NULL, &e), 0);
    cr_expect_eq(bab_check_counterexample(g, p, 0, &x_bad, NULL, &e), 0);
    spec_free(p);
    nn_graph_free(g);
}

Test(verify, size_mismatch_is_an_error)
{
    nn_graph *g = tiny_net(1, 0, 0);
    err e = { 0 };
    spec_property *p = NULL;
    cr_assert(spec_parse_vnnlib_string("t.vnnlib",
        "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)"
        "(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= X_1 0))(assert (<= X_1 1))"
        "(assert (>= Y_0 0.6))", &p, &e) == 0);
    bab_opts o;
    bab_opts_default(&o);
    bab_result res;
    cr_expect_eq(bab_verify(g, p, &o, &res, &e), ERR_SHAPE);
    cr_expect(strstr(e.msg, "tiny") != NULL, "%s", e.msg);
    bab_result_free(&res);
    spec_free(p);
    nn_graph_free(g);
}
