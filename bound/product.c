/* product.c: Mul of two computed tensors and Div by a computed tensor.
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
 * undefined across 0: its interval is then unbounded, which is sound). */
#include "internal.h"

#include <stdlib.h>

#include "nonlin.h"

static int oom(bnd_lower_ctx *cx, err *e)
{
    return err_set(e, ERR_NOMEM, "%s: out of memory", cx->g->source);
}

/* CSR map out[o] = val · in[idx(o)], idx the broadcast index of tensor `in`
 * into tensor `out` (or o itself when in == NULL). */
static bnd_linop *gather_map(const nn_tensor *out, const nn_tensor *in, int64_t n_in, double val)
{
    int64_t n = out->size;
    bnd_linop *J = bnd_lin_csr_new(n, n_in, n);
    if (!J)
        return NULL;
    for (int64_t o = 0; o < n; o++) {
        J->rowptr[o] = o;
        J->col[o] = in ? bnd_bcast_index(out, in, o) : o;
        J->val[o] = val;
    }
    J->rowptr[n] = n;
    bnd_lin_csr_finish(J);
    return J;
}

/* A LINEAR layer y = a·x1[idx1] + b·x2[idx2] of size Y->size. */
static int sum_layer(bnd_lower_ctx *cx, int k, const nn_tensor *Y, int l1, const nn_tensor *t1,
                     double a, int l2, const nn_tensor *t2, double b, err *e)
{
    bnd_net *net = cx->net;
    int li = bnd_add_layer(net, BND_L_LINEAR, k, Y->size, 2, e);
    if (li < 0)
        return li;
    bnd_layer *L = &net->layers[li];
    L->in[0] = l1;
    L->in[1] = l2;
    L->lin[0] = gather_map(Y, t1, net->layers[l1].size, a);
    L->lin[1] = gather_map(Y, t2, net->layers[l2].size, b);
    if (!L->lin[0] || !L->lin[1])
        return oom(cx, e);
    return li;
}

/* Layer of x·y (x in layer lx with shape tx, y likewise), shape Y. */
static int product(bnd_lower_ctx *cx, int k, const nn_tensor *Y, int lx, const nn_tensor *tx,
                   int ly, const nn_tensor *ty, err *e)
{
    const bnd_act_rule *sq = bnd_nl_rule(BND_NL_POW);
    if (lx == ly && tx->size == Y->size && ty->size == Y->size)
        return bnd_add_act_layer(cx, k, lx, sq, 2.0, e); /* x·x */
    int s = sum_layer(cx, k, Y, lx, tx, 1.0, ly, ty, 1.0, e);
    if (s < 0)
        return s;
    int d = sum_layer(cx, k, Y, lx, tx, 1.0, ly, ty, -1.0, e);
    if (d < 0)
        return d;
    int s2 = bnd_add_act_layer(cx, k, s, sq, 2.0, e);
    if (s2 < 0)
        return s2;
    int d2 = bnd_add_act_layer(cx, k, d, sq, 2.0, e);
    if (d2 < 0)
        return d2;
    return sum_layer(cx, k, Y, s2, NULL, 0.25, d2, NULL, -0.25, e);
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
        int rc = src && scale ? 0 : oom(cx, e);
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
