/* test_finalize.c: nn_graph_finalize on hand-built graphs (every error names the
 * file and the node or tensor), idempotence, input/output discovery, and every
 * benchmark network: finalizes and gives finite outputs. */
#include <criterion/criterion.h>
#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../models/nn.h"
#include "shared_data.h"

static nn_graph *G;
static err E;

static int T(const char *name)
{
    int t = nn_graph_tensor(G, name, &E);
    cr_assert(t >= 0);
    return t;
}

static int shaped(const char *name, int rank, const int64_t *dims)
{
    int t = T(name);
    cr_assert_eq(nn_tensor_set_shape(G, t, rank, dims, &E), 0);
    return t;
}

static int cfloat(const char *name, int rank, const int64_t *dims, const double *v)
{
    int t = shaped(name, rank, dims);
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    cr_assert_eq(nn_tensor_set_float(G, t, v, n, &E), 0);
    return t;
}

static int input(const char *name, int rank, const int64_t *dims)
{
    int t = shaped(name, rank, dims);
    cr_assert_eq(nn_graph_add_input(G, t, &E), 0);
    return t;
}

static int node2(const char *op, const char *name, int a, int b, const char *out)
{
    int in[2] = {a, b}, o = T(out);
    int k = nn_graph_add_node(G, op, name, b >= 0 ? 2 : 1, in, 1, &o, &E);
    cr_assert(k >= 0, "%s", E.msg);
    return k;
}

static void setup(void)
{
    G = nn_graph_new("model.onnx");
    G->opset = 13;
    memset(&E, 0, sizeof E);
}

static void teardown(void)
{
    nn_graph_free(G);
}

TestSuite(finalize, .init = setup, .fini = teardown);

static void expect_error(int code, const char *part1, const char *part2)
{
    int rc = nn_graph_finalize(G, &E);
    cr_assert_eq(rc, code, "rc %d, message: %s", rc, E.msg);
    cr_assert_eq(E.code, code);
    cr_assert(strstr(E.msg, "model.onnx") != NULL, "%s", E.msg);
    cr_assert(strstr(E.msg, part1) != NULL, "'%s' not in: %s", part1, E.msg);
    if (part2)
        cr_assert(strstr(E.msg, part2) != NULL, "'%s' not in: %s", part2, E.msg);
}

Test(finalize, unknown_op_is_unsupported_and_named)
{
    int64_t d = 2;
    node2("Relu", "r", input("x", 1, &d), -1, "a");
    node2("FancyOp", "fancy", T("a"), -1, "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_UNSUP, "node 1 'fancy' (FancyOp)", "unsupported op");
}

Test(finalize, foreign_domain_op_is_unsupported)
{
    int64_t d = 2;
    node2("com.microsoft.Gelu", "g", input("x", 1, &d), -1, "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_UNSUP, "com.microsoft.Gelu", "unsupported op");
}

Test(finalize, cycle_is_detected_and_names_a_tensor)
{
    int64_t d = 2;
    int x = input("x", 1, &d);
    node2("Add", "first", x, T("c"), "a");
    node2("Relu", "second", T("a"), -1, "b");
    node2("Relu", "third", T("b"), -1, "c");
    node2("Relu", "out", T("c"), -1, "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_PARSE, "cycle through tensor", NULL);
}

Test(finalize, dangling_input_is_named)
{
    int64_t d = 2;
    node2("Add", "adder", input("x", 1, &d), T("ghost"), "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_PARSE, "'ghost'", "adder");
}

Test(finalize, tensor_produced_twice_is_named)
{
    int64_t d = 2;
    int x = input("x", 1, &d);
    node2("Relu", "r1", x, -1, "y");
    node2("Abs", "r2", x, -1, "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_PARSE, "'y'", "produced by node");
}

Test(finalize, gemm_shape_mismatch_names_both_shapes)
{
    int64_t da[2] = {5, 3}, db[2] = {4, 2};
    double w[8] = {0};
    node2("Gemm", "fc1", input("x", 2, da), cfloat("W", 2, db, w), "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_SHAPE, "[5,3]", "[4,2]");
    cr_assert(strstr(E.msg, "node 0 'fc1' (Gemm)") != NULL, "%s", E.msg);
}

Test(finalize, add_broadcast_mismatch_is_a_shape_error)
{
    int64_t da[2] = {2, 3}, db[1] = {2};
    double w[2] = {0};
    node2("Add", "plus", input("x", 2, da), cfloat("b", 1, db, w), "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_SHAPE, "[2,3]", "do not broadcast");
}

Test(finalize, nan_weight_names_initializer_and_index)
{
    int64_t d[2] = {4, 5};
    double w[20] = {0};
    w[17] = NAN;
    int64_t dx[2] = {1, 4};
    node2("MatMul", "mm", input("x", 2, dx), cfloat("W", 2, d, w), "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_VALUE, "initializer 'W': NaN at index 17", NULL);
}

Test(finalize, inf_weight_is_rejected)
{
    int64_t d = 2;
    double w[2] = {1, -INFINITY};
    node2("Add", "add", input("x", 1, &d), cfloat("b", 1, &d, w), "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_VALUE, "initializer 'b': Inf at index 1", NULL);
}

Test(finalize, two_data_inputs_are_rejected)
{
    int64_t d = 2;
    node2("Add", "add", input("x1", 1, &d), input("x2", 1, &d), "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_UNSUP, "'x1'", "'x2'");
}

Test(finalize, two_outputs_are_unsupported)
{
    int64_t d = 2;
    int x = input("x", 1, &d);
    node2("Relu", "a", x, -1, "y1");
    node2("Abs", "b", x, -1, "y2");
    nn_graph_add_output(G, T("y1"), &E);
    nn_graph_add_output(G, T("y2"), &E);
    expect_error(ERR_UNSUP, "outputs", NULL);
}

Test(finalize, declared_output_shape_is_checked)
{
    int64_t d[2] = {1, 3}, bad[2] = {1, 4};
    node2("Relu", "r", input("x", 2, d), -1, "y");
    shaped("y", 2, bad);
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_SHAPE, "'y'", "[1,4]");
}

Test(finalize, initializers_listed_as_inputs_and_symbolic_batch)
{
    int64_t dw[2] = {2, 2}, dx[2] = {-1, 2}, dy[2] = {-1, 2};
    double w[4] = {1, 2, 3, 4};
    int wt = cfloat("W", 2, dw, w);
    nn_graph_add_input(G, wt, &E); /* before */
    int x = input("x", 2, dx);
    double b[2] = {1, 1};
    int bt = cfloat("b", 1, (int64_t[]){2}, b);
    nn_graph_add_input(G, bt, &E); /* after */
    node2("MatMul", "mm", x, wt, "a");
    node2("Add", "add", T("a"), bt, "y");
    shaped("y", 2, dy);
    nn_graph_add_output(G, T("y"), &E);
    cr_assert_eq(nn_graph_finalize(G, &E), 0, "%s", E.msg);
    cr_assert_eq(G->input, x);
    cr_assert_eq(G->tensors[x].dims[0], 1);
    cr_assert_eq(nn_input_size(G), 2);
    cr_assert_eq(nn_output_size(G), 2);
    double xv[2] = {1, 1}, y[2];
    cr_assert_eq(nn_eval(G, xv, y, &E), 0);
    cr_assert_float_eq(y[0], 5, 0);
    cr_assert_float_eq(y[1], 7, 0);
}

Test(finalize, constant_nodes_become_tensors_and_nodes_are_sorted)
{
    int64_t d = 3;
    int x = input("x", 1, &d);
    /* listed out of order: the Mul comes before the Constant that feeds it */
    node2("Mul", "scale", x, T("k"), "y");
    int o = T("k");
    int k = nn_graph_add_node(G, "Constant", "const", 0, NULL, 1, &o, &E);
    cr_assert(k >= 0);
    nn_node_attr_float(G, k, "value_float", 2.5, &E);
    nn_graph_add_output(G, T("y"), &E);
    cr_assert_eq(nn_graph_finalize(G, &E), 0, "%s", E.msg);
    cr_assert_eq(G->n_nodes, 1);
    cr_assert_eq(G->nodes[0].op, NN_OP_MUL);
    cr_assert(G->tensors[T("k")].data != NULL);
    cr_assert_eq(G->tensors[T("k")].rank, 0);
    double xv[3] = {1, 2, 4}, y[3];
    cr_assert_eq(nn_eval(G, xv, y, &E), 0);
    cr_assert_float_eq(y[2], 10, 0);
}

Test(finalize, dead_nodes_are_removed)
{
    int64_t d = 2;
    int x = input("x", 1, &d);
    node2("Relu", "live", x, -1, "y");
    node2("Abs", "dead", x, -1, "unused");
    node2("Neg", "dead2", T("unused"), -1, "unused2");
    nn_graph_add_output(G, T("y"), &E);
    cr_assert_eq(nn_graph_finalize(G, &E), 0, "%s", E.msg);
    cr_assert_eq(G->n_nodes, 1);
    cr_assert_str_eq(G->nodes[0].name, "live");
    cr_assert_eq(G->tensors[G->output].producer, 0);
}

Test(finalize, finalize_is_idempotent)
{
    int64_t dx[4] = {-1, 1, 4, 4}, dw[4] = {2, 1, 3, 3}, shp[2] = {1, -1};
    double w[18];
    for (int i = 0; i < 18; i++)
        w[i] = (i % 5) - 2;
    int x = input("x", 4, dx);
    node2("Conv", "conv", x, cfloat("W", 4, dw, w), "c");
    node2("Relu", "relu", T("c"), -1, "r");
    int st = shaped("shape", 1, (int64_t[]){2});
    nn_tensor_set_int(G, st, shp, 2, &E);
    node2("Reshape", "flat", T("r"), st, "y");
    nn_graph_add_output(G, T("y"), &E);
    cr_assert_eq(nn_graph_finalize(G, &E), 0, "%s", E.msg);
    int n1 = G->n_nodes, t1 = G->n_tensors;
    nn_tensor out1 = G->tensors[G->output];
    double xv[16], y1[8], y2[8];
    for (int i = 0; i < 16; i++)
        xv[i] = i * 0.25 - 2;
    cr_assert_eq(nn_eval(G, xv, y1, &E), 0);
    cr_assert_eq(nn_graph_finalize(G, &E), 0, "%s", E.msg);
    cr_assert_eq(G->n_nodes, n1);
    cr_assert_eq(G->n_tensors, t1);
    cr_assert_eq(G->tensors[G->output].rank, out1.rank);
    cr_assert_eq(G->tensors[G->output].size, 8);
    cr_assert_eq(nn_eval(G, xv, y2, &E), 0);
    cr_assert_arr_eq(y1, y2, sizeof y1);
    for (int k = 0; k < G->n_nodes; k++)
        cr_assert_eq(G->tensors[G->nodes[k].out[0]].producer, k);
}

Test(finalize, huge_reshape_is_rejected_before_allocation)
{
    int64_t d = 4, shp[3] = {1 << 20, 1 << 20, 1 << 20};
    int st = shaped("shape", 1, (int64_t[]){3});
    nn_tensor_set_int(G, st, shp, 3, &E);
    node2("Reshape", "r", input("x", 1, &d), st, "y");
    nn_graph_add_output(G, T("y"), &E);
    int rc = nn_graph_finalize(G, &E);
    cr_assert(rc == ERR_NOMEM || rc == ERR_SHAPE, "%d %s", rc, E.msg);
}

Test(finalize, every_benchmark_network_finalizes_and_evaluates_finite)
{
    NEED_SHARED();
    glob_t gl;
    cr_assert_eq(glob("../shared/benchmarks/*/onnx/*.onnx", 0, NULL, &gl), 0);
    cr_assert(gl.gl_pathc >= 10);
    for (size_t i = 0; i < gl.gl_pathc; i++) {
        nn_graph *g = NULL;
        err e = {0};
        int rc = nn_load(gl.gl_pathv[i], &g, &e);
        cr_assert_eq(rc, 0, "%s: %s", gl.gl_pathv[i], e.msg);
        int64_t nx = nn_input_size(g), ny = nn_output_size(g);
        cr_assert(nx > 0 && ny > 0);
        double *x = malloc((size_t)nx * sizeof *x), *y = malloc((size_t)ny * sizeof *y);
        cr_assert(x && y);
        for (int64_t j = 0; j < nx; j++)
            x[j] = 0.5;
        cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
        for (int64_t j = 0; j < ny; j++)
            cr_assert(isfinite(y[j]), "%s: output %lld", gl.gl_pathv[i], (long long)j);
        int nodes = g->n_nodes;
        cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
        cr_assert_eq(g->n_nodes, nodes);
        free(x);
        free(y);
        nn_graph_free(g);
    }
    globfree(&gl);
}

Test(finalize, int64_weight_used_as_data_is_rejected)
{
    int64_t d[2] = {2, 2}, w[4] = {1, 2, 3, 4};
    int wt = shaped("W", 2, d);
    nn_tensor_set_int(G, wt, w, 4, &E);
    node2("MatMul", "mm", input("x", 2, d), wt, "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_UNSUP, "'W'", "node 0 'mm'");
}

Test(finalize, pooling_beyond_the_work_limit_is_rejected)
{
    int64_t d[4] = {1, 1, 16384, 16384}, ks[2] = {8192, 8192};
    int k = node2("MaxPool", "pool", input("x", 4, d), -1, "y");
    nn_node_attr_ints(G, k, "kernel_shape", ks, 2, &E);
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_UNSUP, "node 0 'pool'", NULL);
}

Test(finalize, dropout_mask_in_use_is_unsupported)
{
    int64_t d = 2;
    int x = input("x", 1, &d);
    int outs[2] = {T("a"), T("mask")};
    cr_assert(nn_graph_add_node(G, "Dropout", "drop", 1, &x, 2, outs, &E) >= 0);
    node2("Add", "use", T("a"), T("mask"), "y");
    nn_graph_add_output(G, T("y"), &E);
    expect_error(ERR_UNSUP, "'mask'", "node 0 'drop' (Dropout)");
}

Test(finalize, dropout_unused_mask_is_fine)
{
    int64_t d = 2;
    int x = input("x", 1, &d);
    int outs[2] = {T("y"), T("mask")};
    cr_assert(nn_graph_add_node(G, "Dropout", "drop", 1, &x, 2, outs, &E) >= 0);
    nn_graph_add_output(G, T("y"), &E);
    cr_assert_eq(nn_graph_finalize(G, &E), 0, "%s", E.msg);
    double xv[2] = {3, -4}, y[2];
    cr_assert_eq(nn_eval(G, xv, y, &E), 0);
    cr_assert_float_eq(y[1], -4, 0);
}

Test(finalize, file_order_is_kept_when_already_sorted)
{
    int64_t d = 2;
    int x = input("x", 1, &d);
    node2("Relu", "n0", x, -1, "a");
    node2("Abs", "n1", x, -1, "b");
    node2("Neg", "n2", T("a"), -1, "c");
    node2("Add", "n3", T("b"), T("c"), "y");
    nn_graph_add_output(G, T("y"), &E);
    cr_assert_eq(nn_graph_finalize(G, &E), 0, "%s", E.msg);
    for (int k = 0; k < 4; k++) {
        char want[4] = {'n', (char)('0' + k), 0};
        cr_assert_str_eq(G->nodes[k].name, want);
    }
}
