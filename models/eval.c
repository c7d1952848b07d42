/* eval.c: the op table and forward evaluation of a finalized graph.
 *
 * Nodes are in topological order, so evaluation is one pass: every non-constant
 * tensor gets a slot in one buffer allocated per call, constants point at their
 * data, and each node's eval function fills its output. nn_eval_float rounds
 * every op's result to float32; matrix products (Gemm, MatMul, Conv,
 * ConvTranspose) run in float32 (sgemm), the other ops compute in double and
 * round, which is the correctly rounded float32 result for single-operation
 * elementwise ops and slightly more accurate than float for sums (pools, Softmax).
 *
 * Adding an op: its enum value and name (nn.h, graph.c), a shape and an eval
 * function in the ops_<family>.c file it belongs to (declared in ops.h), a row
 * in nn_op_table below, a case in tests/test_eval.c, and its bound rules in bound/. */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

const nn_op_impl nn_op_table[NN_OP_COUNT] = {
    [NN_OP_GEMM] = {nn_shape_gemm, nn_eval_gemm, nn_eval_gemm_f32},
    [NN_OP_MATMUL] = {nn_shape_matmul, nn_eval_matmul, nn_eval_matmul_f32},
    [NN_OP_ADD] = {nn_shape_binary, nn_eval_binary},
    [NN_OP_SUB] = {nn_shape_binary, nn_eval_binary},
    [NN_OP_MUL] = {nn_shape_binary, nn_eval_binary},
    [NN_OP_DIV] = {nn_shape_binary, nn_eval_binary},
    [NN_OP_POW] = {nn_shape_binary, nn_eval_binary},
    [NN_OP_NEG] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_CONV] = {nn_shape_conv, nn_eval_conv, nn_eval_conv_f32},
    [NN_OP_CONVTRANSPOSE] = {nn_shape_convtranspose, nn_eval_convtranspose, nn_eval_convtranspose_f32},
    [NN_OP_BATCHNORM] = {nn_shape_batchnorm, nn_eval_batchnorm},
    [NN_OP_FLATTEN] = {nn_shape_flatten, nn_eval_copy},
    [NN_OP_RESHAPE] = {nn_shape_reshape, nn_eval_copy},
    [NN_OP_IDENTITY] = {nn_shape_identity, nn_eval_copy},
    [NN_OP_DROPOUT] = {nn_shape_identity, nn_eval_copy},
    [NN_OP_CONSTANT] = {NULL, NULL}, /* turned into a constant tensor by finalize */
    [NN_OP_TRANSPOSE] = {nn_shape_transpose, nn_eval_transpose},
    [NN_OP_SQUEEZE] = {nn_shape_squeeze, nn_eval_copy},
    [NN_OP_UNSQUEEZE] = {nn_shape_unsqueeze, nn_eval_copy},
    [NN_OP_CONCAT] = {nn_shape_concat, nn_eval_concat},
    [NN_OP_SLICE] = {nn_shape_slice, nn_eval_slice},
    [NN_OP_AVGPOOL] = {nn_shape_pool, nn_eval_pool},
    [NN_OP_MAXPOOL] = {nn_shape_pool, nn_eval_pool},
    [NN_OP_GLOBALAVGPOOL] = {nn_shape_globalavgpool, nn_eval_globalavgpool},
    [NN_OP_REDUCESUM] = {nn_shape_reduce, nn_eval_reduce},
    [NN_OP_REDUCEMEAN] = {nn_shape_reduce, nn_eval_reduce},
    [NN_OP_SHAPE] = {nn_shape_shape, nn_eval_shape},
    [NN_OP_GATHER] = {nn_shape_gather, nn_eval_gather},
    [NN_OP_CAST] = {nn_shape_cast, nn_eval_cast},
    [NN_OP_RELU] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_LEAKYRELU] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_ABS] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_CLIP] = {nn_shape_clip, nn_eval_clip},
    [NN_OP_SIGMOID] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_TANH] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_EXP] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_LOG] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_SIN] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_COS] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_ERF] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_SOFTPLUS] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_SQRT] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_RECIPROCAL] = {nn_shape_unary, nn_eval_unary},
    [NN_OP_SOFTMAX] = {nn_shape_softmax, nn_eval_softmax},
    [NN_OP_GELU] = {nn_shape_unary, nn_eval_unary},
};

int64_t nn_input_size(const nn_graph *g)
{
    return g && g->finalized && g->input >= 0 ? g->tensors[g->input].size : -1;
}

int64_t nn_output_size(const nn_graph *g)
{
    return g && g->finalized && g->output >= 0 ? g->tensors[g->output].size : -1;
}

static int check_ready(const nn_graph *g, err *e)
{
    if (!g || !g->finalized)
        return err_set(e, ERR_ARG, "%s: graph not finalized", g ? g->source : "<null>");
    return 0;
}

/* Run every node; v[t] must point at room for every tensor the nodes read or write. */
static int run_nodes(const nn_graph *g, double **v, int round_float, err *e)
{
    for (int k = 0; k < g->n_nodes; k++) {
        const nn_node *n = &g->nodes[k];
        nn_eval_fn f = round_float && nn_op_table[n->op].eval_f32 ? nn_op_table[n->op].eval_f32
                                                                   : nn_op_table[n->op].eval;
        int rc = f(g, k, v, e);
        if (rc)
            return rc;
        if (round_float) {
            double *y = v[n->out[0]];
            int64_t size = g->tensors[n->out[0]].size;
            for (int64_t i = 0; i < size; i++)
                y[i] = (double)(float)y[i];
        }
    }
    return 0;
}

/* One allocation: the pointer table followed by the slots of all computed tensors
 * (the input and every node output). Constant float tensors point at their data. */
static double **alloc_values(const nn_graph *g, err *e)
{
    int64_t total = 0;
    for (int t = 0; t < g->n_tensors; t++) {
        const nn_tensor *ts = &g->tensors[t];
        if (!ts->data && !ts->idata && ts->rank >= 0)
            total += ts->size;
    }
    size_t head = ((size_t)g->n_tensors * sizeof(double *) + sizeof(double) - 1) / sizeof(double);
    double *mem = malloc((head + (size_t)total + 1) * sizeof(double));
    if (!mem) {
        err_set(e, ERR_NOMEM, "%s: out of memory for evaluation", g->source);
        return NULL;
    }
    double **v = (double **)(void *)mem;
    double *slot = mem + head;
    for (int t = 0; t < g->n_tensors; t++) {
        nn_tensor *ts = &g->tensors[t];
        if (ts->data) {
            v[t] = ts->data;
        } else if (ts->idata || ts->rank < 0) {
            v[t] = NULL;
        } else {
            v[t] = slot;
            slot += ts->size;
        }
    }
    return v;
}

static void copy_output(const nn_graph *g, double *const *v, double *y)
{
    const nn_tensor *o = &g->tensors[g->output];
    if (v[g->output])
        memcpy(y, v[g->output], (size_t)o->size * sizeof *y);
    else
        for (int64_t i = 0; i < o->size; i++)
            y[i] = (double)o->idata[i];
}

int nn_eval(const nn_graph *g, const double *x, double *y, err *e)
{
    int rc = check_ready(g, e);
    if (rc)
        return rc;
    double **v = alloc_values(g, e);
    if (!v)
        return ERR_NOMEM;
    if (v[g->input])
        memcpy(v[g->input], x, (size_t)g->tensors[g->input].size * sizeof *x);
    rc = run_nodes(g, v, 0, e);
    if (!rc)
        copy_output(g, v, y);
    free(v);
    return rc;
}

int nn_eval_float(const nn_graph *g, const float *x, float *y, err *e)
{
    int rc = check_ready(g, e);
    if (rc)
        return rc;
    double **v = alloc_values(g, e);
    if (!v)
        return ERR_NOMEM;
    int64_t nx = g->tensors[g->input].size, ny = g->tensors[g->output].size;
    if (v[g->input])
        for (int64_t i = 0; i < nx; i++)
            v[g->input][i] = (double)x[i];
    rc = run_nodes(g, v, 1, e);
    if (!rc) {
        const nn_tensor *o = &g->tensors[g->output];
        for (int64_t i = 0; i < ny; i++)
            y[i] = v[g->output] ? (float)v[g->output][i] : (float)o->idata[i];
    }
    free(v);
    return rc;
}

int nn_eval_all(const nn_graph *g, const double *x, double ***vals, err *e)
{
    int rc = check_ready(g, e);
    if (rc)
        return rc;
    double **v = calloc((size_t)(g->n_tensors ? g->n_tensors : 1), sizeof *v);
    if (!v)
        return err_set(e, ERR_NOMEM, "%s: out of memory for evaluation", g->source);
    for (int t = 0; t < g->n_tensors; t++) {
        const nn_tensor *ts = &g->tensors[t];
        if (ts->rank < 0)
            continue;
        v[t] = malloc((size_t)(ts->size ? ts->size : 1) * sizeof(double));
        if (!v[t]) {
            nn_values_free(g, v);
            return err_set(e, ERR_NOMEM, "%s: out of memory for evaluation", g->source);
        }
        for (int64_t i = 0; i < ts->size; i++)
            v[t][i] = ts->data ? ts->data[i] : ts->idata ? (double)ts->idata[i] : 0.0;
    }
    if (v[g->input])
        memcpy(v[g->input], x, (size_t)g->tensors[g->input].size * sizeof *x);
    rc = run_nodes(g, v, 0, e);
    if (rc) {
        nn_values_free(g, v);
        return rc;
    }
    *vals = v;
    return 0;
}

void nn_values_free(const nn_graph *g, double **vals)
{
    if (!vals)
        return;
    for (int t = 0; t < g->n_tensors; t++)
        free(vals[t]);
    free(vals);
}
