/* product.c: Mul of two computed tensors, Div by a computed tensor, and
 * MatMul / Gemm of two computed tensors.
 *
 * Key idea: a product is a difference of squares,
 *     x·y = ((x + y)² − (x − y)²) / 4,
 * so it lowers to existing layers: a LINEAR layer s = x + y, one d = x − y
 * (both with numpy broadcasting), a Pow-2 ACT layer on each, and a LINEAR
 * layer (s² − d²)/4. Every coefficient (±1, ±1/4) is exact, and IBP, CROWN,
 * the rounding accounting, alpha and branching then apply unchanged. The
 * pre-activations s and d get their own CROWN bounds, which see the
 * correlation of x and y (x·x is exact: d = 0), where McCormick's planes
 * over the box of (x, y) cannot; McCormick is tighter near the corners of an
 * uncorrelated box. x / y is x · (1/y) with a Reciprocal ACT layer (f
 * undefined across 0: its interval is then unbounded, which is sound).
 * A matrix product sums such products: y_mn = sum_t (s_mnt² − d_mnt²)/4 with
 * s = a_mt + b_tn, d = a_mt − b_tn, the sum folded into the last LINEAR layer
 * (coefficients ±alpha/4, exact: a power-of-two scaling). */
#include "internal.h"

#include <stdlib.h>

#include "nonlin.h"

/* Layer of out[o] = q·sum_{t < group} x[ix[o·group + t]]·y[iy[o·group + t]]
 * (x in layer lx, y in layer ly; n_out·group products): s = x + y and
 * d = x − y gathered, squared by Pow-2 ACT layers, and the LINEAR layer
 * q/4·(sum s² − sum d²). x·x (lx == ly, ix == iy, one product per output)
 * is the Pow-2 layer alone. Returns the last layer or < 0. */
static int product_sum(bnd_lower_ctx *cx, int k, int64_t n_out, int64_t group, int lx,
                       const int64_t *ix, int ly, const int64_t *iy, double q, double *bias,
                       int coef_err, err *e)
{
    bnd_net *net = cx->net;
    const bnd_act_rule *sq = bnd_nl_rule(BND_NL_POW);
    int64_t n = n_out * group, nx = net->layers[lx].size, ny = net->layers[ly].size;
    int same = lx == ly && group == 1 && q == 1.0 && !bias && n == nx;
    for (int64_t p = 0; same && p < n; p++)
        same = ix[p] == p && iy[p] == p;
    if (same)
        return bnd_add_act_layer(cx, k, lx, sq, 2.0, e);
    int in[2] = {lx, ly}, half[2];
    for (int m = 0; m < 2; m++) { /* s = x + y, d = x - y */
        double pm = m ? -1.0 : 1.0;
        bnd_linop *J[2] = {bnd_lin_csr_rows(n, nx, 1, ix, NULL),
                           bnd_lin_csr_rows(n, ny, 1, iy, &pm)};
        if (!J[0] || !J[1]) {
            bnd_lin_free(J[0]), bnd_lin_free(J[1]);
            free(bias);
            return bnd_lower_oom(cx, e);
        }
        int li = bnd_add_linear(cx, k, n, 2, in, J, NULL, 0, e);
        if (li >= 0)
            li = bnd_add_act_layer(cx, k, li, sq, 2.0, e);
        if (li < 0) {
            free(bias);
            return li;
        }
        half[m] = li;
    }
    int64_t *idx = malloc((size_t)n * sizeof(int64_t));
    double *w = malloc((size_t)(2 * group) * sizeof(double));
    bnd_linop *J[2] = {NULL, NULL};
    if (idx && w) {
        for (int64_t p = 0; p < n; p++)
            idx[p] = p;
        for (int64_t t = 0; t < group; t++)
            w[t] = 0.25 * q, w[group + t] = -0.25 * q;
        J[0] = bnd_lin_csr_rows(n_out, n, group, idx, w);
        J[1] = bnd_lin_csr_rows(n_out, n, group, idx, w + group);
    }
    free(idx), free(w);
    if (!J[0] || !J[1]) {
        bnd_lin_free(J[0]), bnd_lin_free(J[1]);
        free(bias);
        return bnd_lower_oom(cx, e);
    }
    return bnd_add_linear(cx, k, n_out, 2, half, J, bias, coef_err, e);
}

/* Layer of x·y (x in layer lx with shape tx, y likewise), broadcast to Y. */
static int product(bnd_lower_ctx *cx, int k, const nn_tensor *Y, int lx, const nn_tensor *tx,
                   int ly, const nn_tensor *ty, err *e)
{
    int64_t n = Y->size;
    int64_t *ix = malloc((size_t)(2 * n) * sizeof(int64_t));
    if (!ix)
        return bnd_lower_oom(cx, e);
    int64_t *iy = ix + n;
    for (int64_t o = 0; o < n; o++) {
        ix[o] = bnd_bcast_index(Y, tx, o);
        iy[o] = bnd_bcast_index(Y, ty, o);
    }
    int li = product_sum(cx, k, n, 1, lx, ix, ly, iy, 1.0, NULL, 0, e);
    free(ix);
    return li;
}

int bnd_lower_product(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    if (nd->n_in != 2 || nd->in[0] < 0 || nd->in[1] < 0)
        return bnd_node_err(cx, k, e, ERR_PARSE, "needs two inputs");
    int l0 = cx->tmap[nd->in[0]], l1 = cx->tmap[nd->in[1]];
    int div = nd->op == NN_OP_DIV;
    if (l1 < 0 || (!div && l0 < 0))
        return bnd_lower_muldiv(cx, k, e); /* linear in the computed operand */
    const nn_tensor *Y = &g->tensors[nd->out[0]];
    const nn_tensor *T0 = &g->tensors[nd->in[0]], *T1 = &g->tensors[nd->in[1]];
    int ly = l1;
    if (div) {
        ly = bnd_add_act_layer(cx, k, l1, bnd_nl_rule(BND_NL_RECIPROCAL), 0.0, e);
        if (ly < 0)
            return ly;
    }
    int li;
    if (l0 >= 0) {
        li = product(cx, k, Y, l0, T0, ly, T1, e);
    } else { /* constant / y: a scaled gather of 1/y */
        if (!T0->data)
            return bnd_node_err(cx, k, e, ERR_UNSUP, "non-float constant operand");
        int64_t n = Y->size;
        int64_t *src = malloc((size_t)n * sizeof(int64_t));
        double *scale = malloc((size_t)n * sizeof(double));
        int rc = src && scale ? 0 : bnd_lower_oom(cx, e);
        for (int64_t o = 0; rc == 0 && o < n; o++) {
            src[o] = bnd_bcast_index(Y, T1, o);
            scale[o] = T0->data[bnd_bcast_index(Y, T0, o)];
        }
        if (rc == 0)
            rc = bnd_add_gather_layer(cx, k, ly, n, src, scale, NULL, 0, e);
        free(src);
        free(scale);
        return rc;
    }
    if (li < 0)
        return li;
    cx->tmap[nd->out[0]] = li;
    return 0;
}

/* MatMul (numpy: 1-D operands promoted, batch dims broadcast) or Gemm
 * (2-D, transA/transB) of two computed tensors: output (b, m, n) is
 * alpha·sum_t A[b, m, t]·B[b, t, n], a product_sum over groups of K. */
int bnd_lower_matmul_computed(bnd_lower_ctx *cx, int k, int a_t, int b_t, int transA, int transB,
                              double alpha, double *bias, int coef_err, err *e)
{
    const nn_graph *g = cx->g;
    const nn_tensor *A = &g->tensors[a_t], *B = &g->tensors[b_t];
    const nn_tensor *Y = &g->tensors[g->nodes[k].out[0]];
    int ra = A->rank, rb = B->rank;
    if (ra < 1 || rb < 1 || ((transA || transB) && (ra != 2 || rb != 2))) {
        free(bias);
        return bnd_node_err(cx, k, e, ERR_SHAPE, "operand ranks");
    }
    /* A as (batch, M, K) with element strides sAm, sAk; B as (batch, K, N) */
    int64_t M, K, KB, N;
    if (ra == 1)
        M = 1, K = A->dims[0];
    else if (transA)
        K = A->dims[0], M = A->dims[1];
    else
        M = A->dims[ra - 2], K = A->dims[ra - 1];
    if (rb == 1)
        KB = B->dims[0], N = 1;
    else if (transB)
        N = B->dims[0], KB = B->dims[1];
    else
        KB = B->dims[rb - 2], N = B->dims[rb - 1];
    int64_t sAm = transA ? 1 : K, sAk = transA ? M : 1;
    int64_t sBk = transB ? 1 : N, sBn = transB ? K : 1;
    int na = ra > 2 ? ra - 2 : 0, nb = rb > 2 ? rb - 2 : 0, nbt = na > nb ? na : nb;
    /* batch dims of the output and each operand's element stride along them */
    int64_t bd[NN_MAX_RANK], stA[NN_MAX_RANK], stB[NN_MAX_RANK], batch = 1;
    int64_t accA = M * K, accB = K * N;
    for (int i = nbt - 1; i >= 0; i--) {
        int ia = i - (nbt - na), ib = i - (nbt - nb);
        int64_t da = ia >= 0 ? A->dims[ia] : 1, db = ib >= 0 ? B->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            free(bias);
            return bnd_node_err(cx, k, e, ERR_SHAPE, "batch dims do not broadcast");
        }
        bd[i] = da == 1 ? db : da;
        stA[i] = da == 1 ? 0 : accA;
        stB[i] = db == 1 ? 0 : accB;
        accA *= da, accB *= db;
        batch *= bd[i];
    }
    if (K != KB || K < 1 || batch * M * N != Y->size) {
        free(bias);
        return bnd_node_err(cx, k, e, ERR_SHAPE, "operand shapes do not match the output");
    }
    if (Y->size > BND_MAX_NNZ / K) {
        free(bias);
        return bnd_node_err(cx, k, e, ERR_UNSUP, "product map too large");
    }
    int64_t n = Y->size * K;
    int64_t *ix = malloc((size_t)(2 * n) * sizeof(int64_t));
    if (!ix) {
        free(bias);
        return bnd_lower_oom(cx, e);
    }
    int64_t *iy = ix + n;
    for (int64_t b = 0; b < batch; b++) {
        int64_t oa = 0, ob = 0, rest = b;
        for (int i = nbt - 1; i >= 0; i--) {
            int64_t c = rest % bd[i];
            rest /= bd[i];
            oa += c * stA[i], ob += c * stB[i];
        }
        for (int64_t m = 0; m < M; m++)
            for (int64_t c = 0; c < N; c++)
                for (int64_t t = 0; t < K; t++) {
                    int64_t p = ((b * M + m) * N + c) * K + t;
                    ix[p] = oa + m * sAm + t * sAk;
                    iy[p] = ob + t * sBk + c * sBn;
                }
    }
    /* alpha/4 is exact unless it underflows: then one more relative rounding */
    double q = alpha;
    coef_err += 0.25 * q * 4.0 != q;
    int li = product_sum(cx, k, Y->size, K, cx->tmap[a_t], ix, cx->tmap[b_t], iy, q, bias,
                         coef_err, e);
    free(ix);
    if (li < 0)
        return li;
    cx->tmap[g->nodes[k].out[0]] = li;
    return 0;
}
