/* nn.h: the network IR shared by every part of the toolkit.
 *
 * A graph is ONNX-shaped: named tensors, nodes with an op, inputs, outputs and
 * attributes, and constant tensors (initializers). Loaders (ONNX, JSON) fill a
 * raw graph with the builder functions below, then nn_graph_finalize() makes it
 * usable: op names resolved, nodes in topological order, Constant nodes turned
 * into constant tensors, every shape inferred and checked, constant subgraphs
 * folded, weights checked for NaN/Inf. After finalize the graph has exactly one
 * data input and one output, with static shapes (a symbolic batch dimension is
 * taken as 1).
 *
 * Numbers: float tensors are stored as double (ONNX float32 values are exactly
 * representable); int64 tensors (shapes, axes, slice bounds) in idata.
 * Flattening is row-major everywhere: X_i in VNNLIB is element i of the input.
 */
#ifndef MODELS_NN_H
#define MODELS_NN_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

#define NN_MAX_RANK 8
/* Upper limits for untrusted files: a tensor or graph beyond these is rejected
 * with ERR_NOMEM before anything is allocated for it. */
#define NN_MAX_ELEMS ((int64_t)1 << 28)
#define NN_MAX_NODES 100000

/* Adding an op: add it here and to nn_op_names[] (graph.c), give it shape
 * inference and forward evaluation in models/ops_<family>.c registered in
 * nn_op_table (models/eval.c, see the list there), and (if it can be bounded)
 * an interval rule and linear relaxation in bound/. */
typedef enum {
    NN_OP_UNKNOWN = 0,
    /* affine and structural */
    NN_OP_GEMM, NN_OP_MATMUL, NN_OP_ADD, NN_OP_SUB, NN_OP_MUL, NN_OP_DIV,
    NN_OP_NEG, NN_OP_CONV, NN_OP_CONVTRANSPOSE, NN_OP_BATCHNORM,
    NN_OP_FLATTEN, NN_OP_RESHAPE, NN_OP_IDENTITY, NN_OP_DROPOUT, NN_OP_CONSTANT,
    NN_OP_TRANSPOSE, NN_OP_SQUEEZE, NN_OP_UNSQUEEZE, NN_OP_CONCAT, NN_OP_SLICE,
    NN_OP_AVGPOOL, NN_OP_GLOBALAVGPOOL, NN_OP_REDUCESUM, NN_OP_REDUCEMEAN,
    NN_OP_SHAPE, NN_OP_GATHER, NN_OP_CAST,
    /* piecewise linear */
    NN_OP_RELU, NN_OP_LEAKYRELU, NN_OP_ABS, NN_OP_CLIP, NN_OP_MAXPOOL,
    /* smooth nonlinearities */
    NN_OP_SIGMOID, NN_OP_TANH, NN_OP_EXP, NN_OP_LOG, NN_OP_SIN, NN_OP_COS,
    NN_OP_ERF, NN_OP_SOFTPLUS, NN_OP_SQRT, NN_OP_RECIPROCAL, NN_OP_POW,
    NN_OP_SOFTMAX, NN_OP_GELU,
    NN_OP_COUNT
} nn_op;

typedef enum { NN_FLOAT = 1, NN_INT64 = 7 } nn_dtype; /* ONNX TensorProto codes */

typedef struct nn_tensor {
    char *name;
    nn_dtype dtype;
    int rank;                      /* -1 while unknown (before finalize) */
    int64_t dims[NN_MAX_RANK];     /* -1 marks a symbolic dimension before finalize */
    int64_t size;                  /* product of dims, valid when rank >= 0 */
    double *data;                  /* constant float values, else NULL */
    int64_t *idata;                /* constant int64 values, else NULL */
    int producer;                  /* index of the node producing it, -1 if none */
} nn_tensor;

typedef enum {
    NN_ATTR_INT, NN_ATTR_FLOAT, NN_ATTR_STRING, NN_ATTR_INTS, NN_ATTR_FLOATS, NN_ATTR_TENSOR
} nn_attr_kind;

typedef struct nn_attr {
    char *name;
    nn_attr_kind kind;
    int64_t i;          /* INT */
    double f;           /* FLOAT (ONNX stores float32; kept exactly) */
    char *s;            /* STRING */
    int64_t n;          /* length of ints/floats */
    int64_t *ints;      /* INTS */
    double *floats;     /* FLOATS */
    int tensor;         /* TENSOR: index of a constant tensor in the graph */
} nn_attr;

typedef struct nn_node {
    nn_op op;
    char *op_type;      /* as in the file, for messages and the JSON writer */
    char *name;         /* may be "" */
    int n_in, n_out, n_attr;
    int *in;            /* tensor indices; -1 for an omitted optional input */
    int *out;
    nn_attr *attr;
} nn_node;

typedef struct nn_graph {
    char *source;       /* file name, prefixed to every error message */
    int64_t ir_version, opset;
    char *producer_name;
    int n_tensors, cap_tensors;
    nn_tensor *tensors;
    int n_nodes, cap_nodes;
    nn_node *nodes;
    int n_inputs, n_outputs;  /* graph inputs/outputs as declared (tensor indices) */
    int *inputs, *outputs;
    /* Set by finalize: */
    int input;          /* the one data input (the graph input that is not constant) */
    int output;         /* the one output */
    int finalized;
    void *index;        /* name -> tensor hash (private to graph.c) */
} nn_graph;

/* ---- building (used by loaders and by code that creates networks) ---- */
nn_graph *nn_graph_new(const char *source);
void nn_graph_free(nn_graph *g);
/* A hash of what the graph computes (ops, wiring, attributes, shapes,
 * constants; not names): equal graphs give equal values. */
uint64_t nn_graph_fingerprint(const nn_graph *g);
/* Tensor by name, created (rank -1, no data) if absent; -1 on allocation failure. */
int nn_graph_tensor(nn_graph *g, const char *name, err *e);
/* Index of an existing tensor, or -1. */
int nn_graph_find(const nn_graph *g, const char *name);
/* Set a tensor's shape (dims < 0 are symbolic). */
int nn_tensor_set_shape(nn_graph *g, int t, int rank, const int64_t *dims, err *e);
/* Make t a constant: copies the values (n must equal the shape's size). */
int nn_tensor_set_float(nn_graph *g, int t, const double *v, int64_t n, err *e);
int nn_tensor_set_int(nn_graph *g, int t, const int64_t *v, int64_t n, err *e);
/* Append a node; op_type is resolved at finalize. Returns its index or < 0. */
int nn_graph_add_node(nn_graph *g, const char *op_type, const char *name,
                      int n_in, const int *in, int n_out, const int *out, err *e);
/* Attributes of node k (copied). */
int nn_node_attr_int(nn_graph *g, int k, const char *name, int64_t v, err *e);
int nn_node_attr_float(nn_graph *g, int k, const char *name, double v, err *e);
int nn_node_attr_string(nn_graph *g, int k, const char *name, const char *s, err *e);
int nn_node_attr_ints(nn_graph *g, int k, const char *name, const int64_t *v, int64_t n, err *e);
int nn_node_attr_floats(nn_graph *g, int k, const char *name, const double *v, int64_t n, err *e);
int nn_node_attr_tensor(nn_graph *g, int k, const char *name, int tensor, err *e);
int nn_graph_add_input(nn_graph *g, int t, err *e);
int nn_graph_add_output(nn_graph *g, int t, err *e);

/* Resolve, sort, infer shapes, fold constants, validate (see the top). */
int nn_graph_finalize(nn_graph *g, err *e);

/* ---- reading attributes ---- */
const nn_attr *nn_node_attr(const nn_node *n, const char *name);
int64_t nn_attr_int(const nn_node *n, const char *name, int64_t dflt);
double nn_attr_float(const nn_node *n, const char *name, double dflt);

/* ---- ops ---- */
nn_op nn_op_from_name(const char *op_type);
const char *nn_op_name(nn_op op);

/* ---- loading and saving ---- */
/* By extension: .onnx, .json, optionally followed by .gz. */
int nn_load(const char *path, nn_graph **out, err *e);
int nn_load_onnx(const char *path, nn_graph **out, err *e);
int nn_load_onnx_buffer(const char *source, const uint8_t *buf, size_t len,
                        nn_graph **out, err *e);
int nn_load_json(const char *path, nn_graph **out, err *e);
int nn_load_json_string(const char *source, const char *text, nn_graph **out, err *e);
/* Write the graph as the project's JSON format (docs/json-format.md). */
int nn_save_json(const nn_graph *g, const char *path, err *e);
char *nn_json_string(const nn_graph *g, err *e); /* malloc'd, caller frees */
/* Write the graph as ONNX protobuf. */
int nn_save_onnx(const nn_graph *g, const char *path, err *e);

/* ---- forward evaluation (finalized graphs) ---- */
int64_t nn_input_size(const nn_graph *g);
int64_t nn_output_size(const nn_graph *g);
/* y = f(x) in double / in float32 arithmetic (each op rounded to float). */
int nn_eval(const nn_graph *g, const double *x, double *y, err *e);
int nn_eval_float(const nn_graph *g, const float *x, float *y, err *e);
/* Every tensor's value in double: vals[t] points to tensors[t].size values
 * (constants included). Caller frees with nn_values_free. For bound/ and tests. */
int nn_eval_all(const nn_graph *g, const double *x, double ***vals, err *e);
void nn_values_free(const nn_graph *g, double **vals);

#endif
