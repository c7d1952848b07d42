/* elementwise.c: Add, Sub, Mul, Div, Neg and BatchNormalization, all linear in
 * the computed operand: y_o = s_o·x[src(o)] + b_o with ONNX (numpy)
 * broadcasting, built as a one-entry-per-row CSR map. Add/Sub of two computed
 * tensors (residual connections) is a LINEAR layer with two inputs.
 * Inexact coefficients (1/c, BatchNorm's gamma/sqrt(var+eps)) carry their
 * relative rounding in coef_err, BatchNorm's folded bias an absolute bound. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

/* y = x + c (x not broadcast) whose x is a LINEAR layer's own output used
 * nowhere else: add c to that layer's bias instead of adding a layer. The
 * sum b + c is rounded once (relative error u of the stored bias: coef_err). */
static int fold_bias(bnd_lower_ctx *cx, int k, int x_t, int c_t, double sign)
{
    const nn_graph *g = cx->g;
    const nn_tensor *X = &g->tensors[x_t], *C = &g->tensors[c_t];
    const nn_tensor *Y = &g->tensors[g->nodes[k].out[0]];
    int li = cx->tmap[x_t];
    bnd_layer *L = &cx->net->layers[li];
    if (L->kind != BND_L_LINEAR || L->out_tensor != x_t || cx->tuses[x_t] != 1 ||
        X->size != Y->size || !C->data || L->size != Y->size)
        return 0;
    int fresh = L->bias == NULL;
    if (fresh && !(L->bias = calloc((size_t)Y->size, sizeof(double))))
        return 0;
    for (int64_t o = 0; o < Y->size; o++)
        L->bias[o] += sign * C->data[bnd_bcast_index(Y, C, o)];
    if (!fresh)
        L->coef_err++;
    L->out_tensor = g->nodes[k].out[0];
    cx->tmap[g->nodes[k].out[0]] = li;
    return 1;
}

/* scale/bias arrays for y = sx·x + sc·c, x (computed) and c (constant) broadcast. */
static int with_constant(bnd_lower_ctx *cx, int k, int x_t, int c_t, int mode, err *e)
{
    const nn_graph *g = cx->g;
    const nn_tensor *X = &g->tensors[x_t], *C = &g->tensors[c_t];
    const nn_tensor *Y = &g->tensors[g->nodes[k].out[0]];
    if (!C->data)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "non-float constant operand");
    int64_t n = Y->size;
    int64_t *src = malloc((size_t)n * sizeof(int64_t));
    double *scale = malloc((size_t)n * sizeof(double));
    double *bias = malloc((size_t)n * sizeof(double));
    int rc = 0, coef_err = 0;
    if (!src || !scale || !bias) {
        rc = bnd_lower_oom(cx, e);
        goto done;
    }
    for (int64_t o = 0; o < n; o++) {
        src[o] = bnd_bcast_index(Y, X, o);
        double c = C->data[bnd_bcast_index(Y, C, o)];
        scale[o] = 1.0;
        bias[o] = 0.0;
        switch (mode) {
        case 0: bias[o] = c; break;                 /* x + c */
        case 1: bias[o] = -c; break;                /* x - c */
        case 2: scale[o] = -1.0; bias[o] = c; break; /* c - x */
        case 3: scale[o] = c; break;                /* x * c */
        case 4:                                     /* x / c: 1/c rounded once */
            if (c == 0) {
                rc = bnd_node_err(cx, k, e, ERR_VALUE, "division by zero");
                goto done;
            }
            scale[o] = 1.0 / c;
            coef_err = 1;
            break;
        }
    }
    rc = bnd_add_gather_layer(cx, k, cx->tmap[x_t], n, src, scale, mode <= 2 ? bias : NULL,
                              coef_err, e);
done:
    free(src);
    free(scale);
    free(bias);
    return rc;
}

/* y = x1 ± x2, both computed (broadcasting allowed). */
static int two_computed(bnd_lower_ctx *cx, int k, int sub, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    const nn_tensor *Y = &g->tensors[nd->out[0]];
    int li = bnd_add_layer(cx->net, BND_L_LINEAR, k, Y->size, 2, e);
    if (li < 0)
        return li;
    bnd_layer *L = &cx->net->layers[li];
    for (int j = 0; j < 2; j++) {
        const nn_tensor *X = &g->tensors[nd->in[j]];
        L->in[j] = cx->tmap[nd->in[j]];
        double s = (sub && j == 1) ? -1.0 : 1.0;
        if (X->size == Y->size && s == 1.0)
            continue; /* identity */
        bnd_linop *J = bnd_lin_csr_new(Y->size, X->size, Y->size);
        if (!J)
            return bnd_lower_oom(cx, e);
        L->lin[j] = J;
        for (int64_t o = 0; o < Y->size; o++) {
            J->rowptr[o] = o;
            J->col[o] = bnd_bcast_index(Y, X, o);
            J->val[o] = s;
        }
        J->rowptr[Y->size] = Y->size;
        bnd_lin_csr_finish(J);
    }
    cx->tmap[nd->out[0]] = li;
    return 0;
}

int bnd_lower_addsub(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    if (nd->n_in != 2)
        return bnd_node_err(cx, k, e, ERR_PARSE, "needs two inputs");
    int sub = nd->op == NN_OP_SUB;
    int c0 = cx->tmap[nd->in[0]] >= 0, c1 = cx->tmap[nd->in[1]] >= 0;
    if (c0 && c1)
        return two_computed(cx, k, sub, e);
    if (c0 && fold_bias(cx, k, nd->in[0], nd->in[1], sub ? -1.0 : 1.0))
        return 0;
    if (c1 && !sub && fold_bias(cx, k, nd->in[1], nd->in[0], 1.0))
        return 0;
    if (c0)
        return with_constant(cx, k, nd->in[0], nd->in[1], sub ? 1 : 0, e);
    return with_constant(cx, k, nd->in[1], nd->in[0], sub ? 2 : 0, e);
}

int bnd_lower_muldiv(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    if (nd->n_in != 2)
        return bnd_node_err(cx, k, e, ERR_PARSE, "needs two inputs");
    int c0 = cx->tmap[nd->in[0]] >= 0, c1 = cx->tmap[nd->in[1]] >= 0;
    if (c0 && c1)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "product of two computed tensors");
    if (nd->op == NN_OP_DIV) {
        if (!c0)
            return bnd_node_err(cx, k, e, ERR_UNSUP, "division by a computed tensor");
        return with_constant(cx, k, nd->in[0], nd->in[1], 4, e);
    }
    return c0 ? with_constant(cx, k, nd->in[0], nd->in[1], 3, e)
              : with_constant(cx, k, nd->in[1], nd->in[0], 3, e);
}

int bnd_lower_neg(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    int64_t n = cx->g->tensors[nd->out[0]].size;
    int64_t *src = malloc((size_t)n * sizeof(int64_t));
    double *scale = malloc((size_t)n * sizeof(double));
    int rc;
    if (!src || !scale) {
        rc = bnd_lower_oom(cx, e);
    } else {
        for (int64_t o = 0; o < n; o++)
            src[o] = o, scale[o] = -1.0;
        rc = bnd_add_gather_layer(cx, k, cx->tmap[nd->in[0]], n, src, scale, NULL, 0, e);
    }
    free(src);
    free(scale);
    return rc;
}

/* y = s_c·x + b_c per channel c (axis 1), s = gamma/sqrt(var+eps),
 * b = beta - mean·s. s carries 3 roundings (add, sqrt, divide): relative
 * error <= gamma_3, counted as coef_err 4. The stored b differs from the exact
 * beta - mean·s_exact by at most gamma_6·(|beta| + |mean·s|): bias_err. */
int bnd_lower_batchnorm(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    if (nd->n_in < 5)
        return bnd_node_err(cx, k, e, ERR_PARSE, "needs 5 inputs");
    const nn_tensor *X = &g->tensors[nd->in[0]];
    const nn_tensor *P[4];
    for (int j = 0; j < 4; j++) {
        P[j] = &g->tensors[nd->in[1 + j]];
        if (!P[j]->data || cx->tmap[nd->in[1 + j]] >= 0)
            return bnd_node_err(cx, k, e, ERR_UNSUP, "computed parameters");
    }
    if (X->rank < 2)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "input rank < 2");
    int64_t C = X->dims[1], inner = 1;
    for (int a = 2; a < X->rank; a++)
        inner *= X->dims[a];
    for (int j = 0; j < 4; j++)
        if (P[j]->size != C)
            return bnd_node_err(cx, k, e, ERR_SHAPE, "parameter size != channels");
    double eps = nn_attr_float(nd, "epsilon", (double)1e-5f); /* ONNX default, a float32 */
    int64_t n = X->size;
    int64_t *src = malloc((size_t)n * sizeof(int64_t));
    double *scale = malloc((size_t)n * sizeof(double));
    double *bias = malloc((size_t)n * sizeof(double));
    double *berr = malloc((size_t)n * sizeof(double));
    int rc = 0;
    if (!src || !scale || !bias || !berr) {
        rc = bnd_lower_oom(cx, e);
        goto done;
    }
    double g6 = bnd_gamma(6);
    for (int64_t o = 0; o < n; o++) {
        int64_t c = (o / inner) % C;
        double v = P[3]->data[c] + eps;
        if (!(v > 0)) {
            rc = bnd_node_err(cx, k, e, ERR_VALUE, "variance + epsilon <= 0");
            goto done;
        }
        double s = P[0]->data[c] / sqrt(v);
        src[o] = o;
        scale[o] = s;
        bias[o] = P[1]->data[c] - P[2]->data[c] * s;
        berr[o] = bnd_safe(g6 * (fabs(P[1]->data[c]) + fabs(P[2]->data[c] * s)));
    }
    rc = bnd_add_gather_layer(cx, k, cx->tmap[nd->in[0]], n, src, scale, bias, 4, e);
    if (rc == 0) {
        cx->net->layers[cx->tmap[nd->out[0]]].bias_err = berr;
        berr = NULL;
    }
done:
    free(src);
    free(scale);
    free(bias);
    free(berr);
    return rc;
}
