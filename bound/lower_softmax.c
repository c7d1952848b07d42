/* lower_softmax.c: Softmax, built exactly from LINEAR, Exp and Reciprocal
 * layers, so IBP, CROWN, tangent optimisation and branching apply unchanged.
 *
 * Key idea: softmax_i = e^{x_i} / sum_j e^{x_j} = 1 / (1 + sum_{j≠i} e^{x_j − x_i})
 * (the j = i term is exactly 1). Layers: LINEAR d_ij = x_j − x_i (j ≠ i), an
 * Exp ACT layer, LINEAR s_i = 1 + sum_j e^{d_ij}, a Reciprocal ACT layer.
 * Every coefficient and constant is ±1, so the lowered network computes
 * exactly softmax; the rounding of its evaluation is accounted for by IBP and
 * CROWN as for any LINEAR layer (docs/soundness.md). s_i >= 1 over the reals
 * keeps 1/s away from its pole; its computed bounds are at worst slightly
 * below 1 (rounding), where Reciprocal's rule is still defined. Where exp
 * overflows (differences beyond ~709) the intervals become infinite: sound,
 * and loose.
 *
 * Groups follow models/ (ops_elementwise.c): from opset 13 one axis (default
 * -1); before, the input coerced to 2-D at axis (default 1), i.e. the group
 * is every element from that axis on. */
#include "internal.h"

#include <stdlib.h>

#include "nonlin.h"

/* The input as outer x len x inner, softmax along len. */
static int softmax_layout(bnd_lower_ctx *cx, int k, int64_t *outer, int64_t *len,
                          int64_t *inner, err *e)
{
    const nn_graph *g = cx->g;
    const nn_tensor *X = &g->tensors[g->nodes[k].in[0]];
    int modern = g->opset >= 13;
    int64_t axis = nn_attr_int(&g->nodes[k], "axis", modern ? -1 : 1);
    *outer = *len = *inner = 1;
    if (X->rank == 0)
        return 0;
    if (!modern && axis == X->rank) { /* coercion allows axis == rank: rows of 1 */
        *outer = X->size;
        return 0;
    }
    if (axis < 0)
        axis += X->rank;
    if (axis < 0 || axis >= X->rank)
        return bnd_node_err(cx, k, e, ERR_VALUE, "softmax axis");
    for (int a = 0; a < X->rank; a++) {
        if (a < axis)
            *outer *= X->dims[a];
        else if (a == axis || !modern)
            *len *= X->dims[a];
        else
            *inner *= X->dims[a];
    }
    return 0;
}

int bnd_lower_softmax(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    int x = cx->tmap[nd->in[0]];
    int64_t outer, len, inner, n = g->tensors[nd->out[0]].size;
    int rc = softmax_layout(cx, k, &outer, &len, &inner, e);
    if (rc)
        return rc;
    if (outer * len * inner != n || n != cx->net->layers[x].size)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "output size differs from input size");
    int64_t m = len - 1; /* terms j != i per output */
    if (m == 0) {         /* groups of one: the constant 1 */
        double *one = malloc((size_t)n * sizeof(double));
        int64_t *col = malloc((size_t)n * sizeof(int64_t));
        bnd_linop *J = NULL;
        if (one && col) {
            for (int64_t o = 0; o < n; o++)
                one[o] = 1.0, col[o] = -1;
            J = bnd_lin_csr_rows(n, n, 1, col, NULL);
        }
        free(col);
        if (!J) {
            free(one);
            return bnd_lower_oom(cx, e);
        }
        int li = bnd_add_linear(cx, k, n, 1, &x, &J, one, 0, e);
        if (li < 0)
            return li;
        cx->tmap[nd->out[0]] = li;
        return 0;
    }
    if (m > BND_MAX_NNZ / 2 / n)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "softmax map too large");
    /* d rows (o, t): x_j − x_i for output o = element i and the t-th j != i */
    int64_t *dcol = malloc((size_t)(2 * n * m) * sizeof(int64_t));
    int64_t *scol = malloc((size_t)(n * m) * sizeof(int64_t));
    double *one = malloc((size_t)n * sizeof(double));
    if (!dcol || !scol || !one) {
        free(dcol), free(scol), free(one);
        return bnd_lower_oom(cx, e);
    }
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < len; i++)
            for (int64_t c = 0; c < inner; c++) {
                int64_t o = (a * len + i) * inner + c, t = 0;
                for (int64_t j = 0; j < len; j++) {
                    if (j == i)
                        continue;
                    dcol[2 * (o * m + t)] = (a * len + j) * inner + c;
                    dcol[2 * (o * m + t) + 1] = o;
                    t++;
                }
                one[o] = 1.0;
            }
    for (int64_t p = 0; p < n * m; p++)
        scol[p] = p;
    static const double diff[2] = {1.0, -1.0};
    bnd_linop *D = bnd_lin_csr_rows(n * m, n, 2, dcol, diff);
    bnd_linop *S = bnd_lin_csr_rows(n, n * m, m, scol, NULL);
    free(dcol), free(scol);
    if (!D || !S) {
        bnd_lin_free(D), bnd_lin_free(S), free(one);
        return bnd_lower_oom(cx, e);
    }
    int li = bnd_add_linear(cx, k, n * m, 1, &x, &D, NULL, 0, e);
    if (li >= 0)
        li = bnd_add_act_layer(cx, k, li, bnd_nl_rule(BND_NL_EXP), 0.0, e);
    if (li >= 0) {
        li = bnd_add_linear(cx, k, n, 1, &li, &S, one, 0, e);
        S = NULL, one = NULL; /* owned by the layer (or freed) */
    }
    if (li >= 0)
        li = bnd_add_act_layer(cx, k, li, bnd_nl_rule(BND_NL_RECIPROCAL), 0.0, e);
    bnd_lin_free(S), free(one);
    if (li < 0)
        return li;
    cx->tmap[nd->out[0]] = li;
    return 0;
}
