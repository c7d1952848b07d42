/* affine.c: Gemm and MatMul with one constant operand (two computed operands
 * go to product.c).
 * Computed left operand (the usual layer): x (M x K) · W (K x N) is a MATMUL
 * linop, so CROWN's backward A·J is one dgemm. Constant left operand
 * (W (M x K) · x (K x N)) becomes an explicit CSR map. alpha != 1 makes the
 * stored weights a rounded product: one relative rounding (coef_err). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>


/* beta·C broadcast to the output tensor, or NULL when there is no C. */
static int gemm_bias(bnd_lower_ctx *cx, int k, int c_t, double beta, double **out, err *e)
{
    *out = NULL;
    if (c_t < 0)
        return 0;
    const nn_graph *g = cx->g;
    const nn_tensor *C = &g->tensors[c_t], *Y = &g->tensors[g->nodes[k].out[0]];
    if (!C->data)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "computed bias");
    double *b = malloc((size_t)Y->size * sizeof(double));
    if (!b)
        return bnd_lower_oom(cx, e);
    for (int64_t o = 0; o < Y->size; o++)
        b[o] = beta * C->data[bnd_bcast_index(Y, C, o)];
    *out = b;
    return 0;
}

/* y = alpha·W x' (+ bias): W (M x K) constant, x (K x N) computed. */
static int const_left(bnd_lower_ctx *cx, int k, int xl, const double *W, int64_t M,
                      int64_t K, int64_t N, double alpha, double *bias, int coef_err, err *e)
{
    if (M < 1 || N < 1 || K < 1 || M > BND_MAX_NNZ / N || M * N > BND_MAX_NNZ / K) {
        free(bias);
        return bnd_node_err(cx, k, e, ERR_UNSUP, "explicit map too large");
    }
    bnd_linop *J = bnd_lin_csr_new(M * N, K * N, M * N * K);
    if (!J) {
        free(bias);
        return bnd_lower_oom(cx, e);
    }
    int64_t p = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < N; c++) {
            J->rowptr[m * N + c] = p;
            for (int64_t i = 0; i < K; i++) {
                J->col[p] = i * N + c;
                J->val[p++] = alpha * W[m * K + i];
            }
        }
    J->rowptr[M * N] = p;
    bnd_lin_csr_finish(J);
    return bnd_add_linear1(cx, k, xl, J, bias, coef_err, e);
}

/* y = alpha·x^T·B' (+ bias): x (K x M) computed, B' (K x N) constant (B
 * stored N x K if transB): y[m][n] = sum_i alpha·x[i][m]·B'[i][n], a CSR map. */
static int transposed_left(bnd_lower_ctx *cx, int k, int xl, const double *B, int64_t M,
                           int64_t K, int64_t N, int transB, double alpha, double *bias,
                           int coef_err, err *e)
{
    if (M > BND_MAX_NNZ / N || M * N > BND_MAX_NNZ / K) {
        free(bias);
        return bnd_node_err(cx, k, e, ERR_UNSUP, "explicit map too large");
    }
    bnd_linop *J = bnd_lin_csr_new(M * N, K * M, M * N * K);
    if (!J) {
        free(bias);
        return bnd_lower_oom(cx, e);
    }
    int64_t p = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < N; c++) {
            J->rowptr[m * N + c] = p;
            for (int64_t i = 0; i < K; i++) {
                J->col[p] = i * M + m;
                J->val[p++] = alpha * (transB ? B[c * K + i] : B[i * N + c]);
            }
        }
    J->rowptr[M * N] = p;
    bnd_lin_csr_finish(J);
    return bnd_add_linear1(cx, k, xl, J, bias, coef_err, e);
}

static int matmul_like(bnd_lower_ctx *cx, int k, int a_t, int b_t, int transA, int transB,
                       double alpha, double *bias, int coef_err, err *e)
{
    const nn_graph *g = cx->g;
    const nn_tensor *A = &g->tensors[a_t], *B = &g->tensors[b_t];
    int al = cx->tmap[a_t], bl = cx->tmap[b_t];
    if (al >= 0 && bl >= 0) /* both computed: sums of products (product.c), alpha exact there */
        return bnd_lower_matmul_computed(cx, k, a_t, b_t, transA, transB, alpha, bias,
                                         coef_err - (alpha != 1.0), e);
    if (al < 0 && bl < 0) {
        free(bias);
        return bnd_node_err(cx, k, e, ERR_UNSUP, "needs a computed operand");
    }
    if (al >= 0) {
        /* x (M x K) computed, B constant (K x N, or N x K if transB) */
        if (!B->data || B->rank < 1 || B->rank > 2) {
            free(bias);
            return bnd_node_err(cx, k, e, ERR_UNSUP, "constant operand must be 1-D or 2-D");
        }
        int64_t K, N;
        if (B->rank == 1)
            K = B->dims[0], N = 1;
        else
            K = transB ? B->dims[1] : B->dims[0], N = transB ? B->dims[0] : B->dims[1];
        if (K <= 0 || A->size % K != 0) {
            free(bias);
            return bnd_node_err(cx, k, e, ERR_SHAPE, "operand shapes do not match");
        }
        int64_t M = A->size / K;
        if (transA && M > 1)
            return transposed_left(cx, k, al, B->data, M, K, N, transB, alpha, bias, coef_err, e);
        double *W = malloc((size_t)(K * N) * sizeof(double));
        if (!W) {
            free(bias);
            return bnd_lower_oom(cx, e);
        }
        for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < N; j++)
                W[i * N + j] = alpha * (transB ? B->data[j * K + i] : B->data[i * N + j]);
        bnd_linop *J = bnd_lin_matmul_new(M, K, N, W);
        free(W);
        if (!J) {
            free(bias);
            return bnd_lower_oom(cx, e);
        }
        if (bias && (int64_t)J->n_out != g->tensors[g->nodes[k].out[0]].size) {
            bnd_lin_free(J);
            free(bias);
            return bnd_node_err(cx, k, e, ERR_SHAPE, "bias shape");
        }
        return bnd_add_linear1(cx, k, al, J, bias, coef_err, e);
    }
    /* W (M x K) constant on the left, x (K x N) computed */
    if (!A->data || A->rank != 2 || transA || B->rank > 2) {
        free(bias);
        return bnd_node_err(cx, k, e, ERR_UNSUP, "constant left operand layout");
    }
    int64_t M = A->dims[0], K = A->dims[1];
    int64_t N = B->rank == 2 ? B->dims[1] : 1;
    if (B->rank == 2 && transB) {
        if (B->dims[1] != K || B->dims[0] != 1) {
            free(bias);
            return bnd_node_err(cx, k, e, ERR_UNSUP, "transposed computed operand");
        }
        N = 1;
    } else if (B->size != K * N) {
        free(bias);
        return bnd_node_err(cx, k, e, ERR_SHAPE, "operand shapes do not match");
    }
    return const_left(cx, k, bl, A->data, M, K, N, alpha, bias, coef_err, e);
}

int bnd_lower_gemm(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    if (nd->n_in < 2)
        return bnd_node_err(cx, k, e, ERR_PARSE, "needs two inputs");
    double alpha = nn_attr_float(nd, "alpha", 1.0), beta = nn_attr_float(nd, "beta", 1.0);
    int transA = (int)nn_attr_int(nd, "transA", 0), transB = (int)nn_attr_int(nd, "transB", 0);
    double *bias = NULL;
    int rc = gemm_bias(cx, k, nd->n_in > 2 ? nd->in[2] : -1, beta, &bias, e);
    if (rc)
        return rc;
    /* alpha·W and beta·C are rounded products: one relative rounding each */
    int coef_err = (alpha != 1.0) + (beta != 1.0);
    return matmul_like(cx, k, nd->in[0], nd->in[1], transA, transB, alpha, bias, coef_err, e);
}

int bnd_lower_matmul(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    if (nd->n_in != 2)
        return bnd_node_err(cx, k, e, ERR_PARSE, "needs two inputs");
    return matmul_like(cx, k, nd->in[0], nd->in[1], 0, 0, 1.0, NULL, 0, e);
}
