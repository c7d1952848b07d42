/* ops.h: private interface between finalize/eval and the per-op code.
 *
 * Every op has two functions, registered in nn_op_table (eval.c):
 *   shape: read the node's input shapes, attributes and constant inputs, check
 *          them, and set the output tensors' dtype and shape;
 *   eval:  compute the outputs from v[t] (the values of every tensor, in double;
 *          int64 constants are read from tensors[t].idata, since ops that take
 *          integer parameters require them to be constant).
 * Files: ops_linear.c (Gemm, MatMul, Conv, ConvTranspose, BatchNormalization),
 * ops_elementwise.c (binary with broadcasting, unary, Clip, Softmax, Cast),
 * ops_shape.c (Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Concat, Slice,
 * Shape, Gather, Identity, Dropout), ops_pool.c, ops_reduce.c. */
#ifndef MODELS_OPS_H
#define MODELS_OPS_H

#include "nn.h"

/* Upper limit on the multiply-adds of one node (about a minute of work): shape
 * inference rejects nodes beyond it, so a hostile file cannot make eval hang. */
#define NN_MAX_WORK ((int64_t)1 << 36)

typedef int (*nn_shape_fn)(nn_graph *g, int k, err *e);
typedef int (*nn_eval_fn)(const nn_graph *g, int k, double *const *v, err *e);

typedef struct {
    nn_shape_fn shape;
    nn_eval_fn eval;
    nn_eval_fn eval_f32; /* float32 arithmetic where it differs (matrix products); may be NULL */
} nn_op_impl;

extern const nn_op_impl nn_op_table[NN_OP_COUNT];

/* Fill e with "source: node k 'name' (OpType): ..." and return code. */
int nn_op_fail(const nn_graph *g, int k, err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Input i of node k, or NULL when absent or omitted. */
const nn_tensor *nn_op_in(const nn_graph *g, int k, int i);
/* Tensor index of input i (-1 when absent). */
int nn_op_in_id(const nn_graph *g, int k, int i);
/* Set the shape of output i (checks NN_MAX_ELEMS). */
int nn_op_set_out(nn_graph *g, int k, int i, nn_dtype dtype, int rank, const int64_t *dims,
                  err *e);
/* Integer values of input i, which must be a constant (int64 or float). n = -1 if absent. */
int nn_op_const_ints(const nn_graph *g, int k, int i, int64_t *buf, int max, int *n, err *e);
/* Ints attribute into buf; returns count, -1 if absent; error if longer than max. */
int nn_op_attr_ints(const nn_graph *g, int k, const char *name, int64_t *buf, int max, err *e);
/* Normalise a possibly negative axis into [0, rank); error naming the node if out of range. */
int nn_op_axis(const nn_graph *g, int k, int64_t axis, int rank, int *out, err *e);
/* "[1,3,32,32]" into buf. */
const char *nn_shape_str(const nn_tensor *t, char *buf, size_t len);
/* auto_pad SAME_UPPER / SAME_LOWER: the begin and end pads that give
 * ceil(in / stride) outputs for a window spanning ext inputs (ONNX). */
void nn_same_pads(int64_t in, int64_t stride, int64_t ext, int upper, int64_t *pad0,
                  int64_t *pad1);
/* Whether input i of op is read as integers (from idata) rather than as values. */
int nn_op_int_input(nn_op op, int i);
/* Multidirectional broadcast of shapes (a, b) into out; -1 if incompatible. */
int nn_broadcast(int ra, const int64_t *da, int rb, const int64_t *db, int *rout, int64_t *dout);
/* Strides of a tensor of shape (r, d) viewed in an output of rank ro (0 on broadcast dims). */
void nn_bcast_strides(int r, const int64_t *d, int ro, const int64_t *dout, int64_t *stride);
/* Product of dims[from..to). */
int64_t nn_prod(const int64_t *dims, int from, int to);

/* Shape and eval functions, by family. */
int nn_shape_gemm(nn_graph *g, int k, err *e);
int nn_eval_gemm(const nn_graph *g, int k, double *const *v, err *e);
int nn_eval_gemm_f32(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_matmul(nn_graph *g, int k, err *e);
int nn_eval_matmul(const nn_graph *g, int k, double *const *v, err *e);
int nn_eval_matmul_f32(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_conv(nn_graph *g, int k, err *e);
int nn_eval_conv(const nn_graph *g, int k, double *const *v, err *e);
int nn_eval_conv_f32(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_convtranspose(nn_graph *g, int k, err *e);
int nn_eval_convtranspose(const nn_graph *g, int k, double *const *v, err *e);
int nn_eval_convtranspose_f32(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_batchnorm(nn_graph *g, int k, err *e);
int nn_eval_batchnorm(const nn_graph *g, int k, double *const *v, err *e);

int nn_shape_binary(nn_graph *g, int k, err *e);
int nn_eval_binary(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_unary(nn_graph *g, int k, err *e);
int nn_eval_unary(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_clip(nn_graph *g, int k, err *e);
int nn_eval_clip(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_softmax(nn_graph *g, int k, err *e);
int nn_eval_softmax(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_cast(nn_graph *g, int k, err *e);
int nn_eval_cast(const nn_graph *g, int k, double *const *v, err *e);

int nn_shape_identity(nn_graph *g, int k, err *e);
int nn_eval_copy(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_flatten(nn_graph *g, int k, err *e);
int nn_shape_reshape(nn_graph *g, int k, err *e);
int nn_shape_squeeze(nn_graph *g, int k, err *e);
int nn_shape_unsqueeze(nn_graph *g, int k, err *e);
int nn_shape_transpose(nn_graph *g, int k, err *e);
int nn_eval_transpose(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_concat(nn_graph *g, int k, err *e);
int nn_eval_concat(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_slice(nn_graph *g, int k, err *e);
int nn_eval_slice(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_shape(nn_graph *g, int k, err *e);
int nn_eval_shape(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_gather(nn_graph *g, int k, err *e);
int nn_eval_gather(const nn_graph *g, int k, double *const *v, err *e);

int nn_shape_pool(nn_graph *g, int k, err *e);
int nn_eval_pool(const nn_graph *g, int k, double *const *v, err *e);
int nn_shape_globalavgpool(nn_graph *g, int k, err *e);
int nn_eval_globalavgpool(const nn_graph *g, int k, double *const *v, err *e);

int nn_shape_reduce(nn_graph *g, int k, err *e);
int nn_eval_reduce(const nn_graph *g, int k, double *const *v, err *e);

#endif
