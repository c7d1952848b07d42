/* shape.c: Transpose, Slice, Concat, ReduceSum and ReduceMean: linear maps
 * that move, select or sum elements, built as explicit CSR maps from index
 * arithmetic on the (finalized, static) shapes. Exact coefficients except
 * ReduceMean's 1/count (one rounding, coef_err). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void unravel(const nn_tensor *t, int64_t o, int64_t *coord)
{
    for (int a = t->rank - 1; a >= 0; a--) {
        coord[a] = o % t->dims[a];
        o /= t->dims[a];
    }
}

static int64_t ravel(const nn_tensor *t, const int64_t *coord)
{
    int64_t o = 0;
    for (int a = 0; a < t->rank; a++)
        o = o * t->dims[a] + coord[a];
    return o;
}

static int gather(bnd_lower_ctx *cx, int k, int x_t, const int64_t *src, const double *scale,
                  const double *bias, int coef_err, err *e)
{
    int64_t n = cx->g->tensors[cx->g->nodes[k].out[0]].size;
    return bnd_add_gather_layer(cx, k, cx->tmap[x_t], n, src, scale, bias, coef_err, e);
}

int bnd_lower_transpose(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    const nn_tensor *X = &g->tensors[nd->in[0]], *Y = &g->tensors[nd->out[0]];
    const nn_attr *pa = nn_node_attr(nd, "perm");
    int64_t perm[NN_MAX_RANK];
    int seen[NN_MAX_RANK] = {0};
    if (X->rank != Y->rank || (pa && (pa->kind != NN_ATTR_INTS || pa->n != X->rank)))
        return bnd_node_err(cx, k, e, ERR_SHAPE, "perm");
    for (int a = 0; a < X->rank; a++) {
        perm[a] = pa ? pa->ints[a] : X->rank - 1 - a;
        if (perm[a] < 0 || perm[a] >= X->rank || seen[perm[a]]++ ||
            Y->dims[a] != X->dims[perm[a]])
            return bnd_node_err(cx, k, e, ERR_SHAPE, "perm");
    }
    int64_t *src = malloc((size_t)Y->size * sizeof(int64_t));
    if (!src)
        return bnd_lower_oom(cx, e);
    int64_t yc[NN_MAX_RANK], xc[NN_MAX_RANK];
    for (int64_t o = 0; o < Y->size; o++) {
        unravel(Y, o, yc);
        for (int a = 0; a < X->rank; a++)
            xc[perm[a]] = yc[a];
        src[o] = ravel(X, xc);
    }
    int rc = gather(cx, k, nd->in[0], src, NULL, NULL, 0, e);
    free(src);
    return rc;
}

/* Slice parameter j (1 starts, 2 ends, 3 axes, 4 steps) as int64 values. */
static const int64_t *slice_param(const nn_graph *g, const nn_node *nd, int j, const char *attr,
                                  int64_t *n)
{
    if (nd->n_in > j && nd->in[j] >= 0) {
        const nn_tensor *t = &g->tensors[nd->in[j]];
        *n = t->size;
        return t->idata;
    }
    const nn_attr *a = nn_node_attr(nd, attr);
    if (a && a->kind == NN_ATTR_INTS) {
        *n = a->n;
        return a->ints;
    }
    *n = 0;
    return NULL;
}

int bnd_lower_slice(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    const nn_tensor *X = &g->tensors[nd->in[0]], *Y = &g->tensors[nd->out[0]];
    int64_t ns, na, nst, ne;
    const int64_t *starts = slice_param(g, nd, 1, "starts", &ns);
    const int64_t *axes = slice_param(g, nd, 3, "axes", &na);
    const int64_t *steps = slice_param(g, nd, 4, "steps", &nst);
    (void)slice_param(g, nd, 2, "ends", &ne);
    if (!starts || (axes && na != ns) || (steps && nst != ns) || X->rank != Y->rank)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "slice parameters");
    int64_t start[NN_MAX_RANK], step[NN_MAX_RANK];
    for (int a = 0; a < X->rank; a++)
        start[a] = 0, step[a] = 1;
    for (int64_t j = 0; j < ns; j++) {
        int64_t a = axes ? axes[j] : j;
        if (a < 0)
            a += X->rank;
        if (a < 0 || a >= X->rank)
            return bnd_node_err(cx, k, e, ERR_VALUE, "slice axis");
        int64_t d = X->dims[a], s = starts[j], st = steps ? steps[j] : 1;
        if (st == 0)
            return bnd_node_err(cx, k, e, ERR_VALUE, "slice step 0");
        if (s < 0)
            s += d;
        if (st > 0)
            s = s < 0 ? 0 : (s > d ? d : s);
        else
            s = s < 0 ? 0 : (s > d - 1 ? d - 1 : s);
        start[a] = s, step[a] = st;
    }
    for (int a = 0; a < X->rank; a++) {
        int64_t last = start[a] + (Y->dims[a] - 1) * step[a];
        if (Y->dims[a] > 0 && (last < 0 || last >= X->dims[a]))
            return bnd_node_err(cx, k, e, ERR_SHAPE, "slice out of range");
    }
    int64_t *src = malloc((size_t)Y->size * sizeof(int64_t));
    if (!src)
        return bnd_lower_oom(cx, e);
    int64_t yc[NN_MAX_RANK];
    for (int64_t o = 0; o < Y->size; o++) {
        unravel(Y, o, yc);
        for (int a = 0; a < X->rank; a++)
            yc[a] = start[a] + yc[a] * step[a];
        src[o] = ravel(X, yc);
    }
    int rc = gather(cx, k, nd->in[0], src, NULL, NULL, 0, e);
    free(src);
    return rc;
}

int bnd_lower_concat(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    const nn_tensor *Y = &g->tensors[nd->out[0]];
    int64_t axis = nn_attr_int(nd, "axis", 0);
    if (axis < 0)
        axis += Y->rank;
    if (axis < 0 || axis >= Y->rank || nd->n_in < 1)
        return bnd_node_err(cx, k, e, ERR_VALUE, "concat axis");
    int n_comp = 0;
    for (int j = 0; j < nd->n_in; j++) {
        const nn_tensor *X = &g->tensors[nd->in[j]];
        if (X->rank != Y->rank)
            return bnd_node_err(cx, k, e, ERR_SHAPE, "input rank");
        if (cx->tmap[nd->in[j]] >= 0)
            n_comp++;
        else if (!X->data)
            return bnd_node_err(cx, k, e, ERR_UNSUP, "non-float constant input");
    }
    int li = bnd_add_layer(cx->net, BND_L_LINEAR, k, Y->size, n_comp, e);
    if (li < 0)
        return li;
    bnd_layer *L = &cx->net->layers[li];
    int64_t *which = malloc((size_t)Y->size * sizeof(int64_t));
    int64_t *srci = malloc((size_t)Y->size * sizeof(int64_t));
    L->bias = calloc((size_t)Y->size, sizeof(double));
    int rc = 0;
    if (!which || !srci || !L->bias) {
        rc = bnd_lower_oom(cx, e);
        goto done;
    }
    int64_t yc[NN_MAX_RANK];
    for (int64_t o = 0; o < Y->size; o++) {
        unravel(Y, o, yc);
        int j = 0;
        while (j < nd->n_in && yc[axis] >= g->tensors[nd->in[j]].dims[axis])
            yc[axis] -= g->tensors[nd->in[j++]].dims[axis];
        if (j == nd->n_in) {
            rc = bnd_node_err(cx, k, e, ERR_SHAPE, "output larger than inputs");
            goto done;
        }
        const nn_tensor *X = &g->tensors[nd->in[j]];
        which[o] = j;
        srci[o] = ravel(X, yc);
        if (cx->tmap[nd->in[j]] < 0)
            L->bias[o] = X->data[srci[o]];
    }
    for (int j = 0, c = 0; j < nd->n_in; j++) {
        if (cx->tmap[nd->in[j]] < 0)
            continue;
        const nn_tensor *X = &g->tensors[nd->in[j]];
        bnd_linop *J = bnd_lin_csr_new(Y->size, X->size, X->size);
        if (!J) {
            rc = bnd_lower_oom(cx, e);
            goto done;
        }
        L->in[c] = cx->tmap[nd->in[j]];
        L->lin[c++] = J;
        int64_t p = 0;
        for (int64_t o = 0; o < Y->size; o++) {
            J->rowptr[o] = p;
            if (which[o] == j && p < X->size) {
                J->col[p] = srci[o];
                J->val[p++] = 1.0;
            }
        }
        J->rowptr[Y->size] = p;
        bnd_lin_csr_finish(J);
    }
    cx->tmap[nd->out[0]] = li;
done:
    free(which);
    free(srci);
    return rc;
}

int bnd_lower_reduce(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    const nn_tensor *X = &g->tensors[nd->in[0]], *Y = &g->tensors[nd->out[0]];
    int64_t na = 0;
    const int64_t *axes = NULL;
    if (nd->n_in > 1 && nd->in[1] >= 0) {
        axes = g->tensors[nd->in[1]].idata;
        na = g->tensors[nd->in[1]].size;
        if (!axes)
            return bnd_node_err(cx, k, e, ERR_UNSUP, "axes not constant");
    } else {
        const nn_attr *a = nn_node_attr(nd, "axes");
        if (a && a->kind == NN_ATTR_INTS)
            axes = a->ints, na = a->n;
    }
    int red[NN_MAX_RANK] = {0};
    if (na == 0 && !nn_attr_int(nd, "noop_with_empty_axes", 0))
        for (int a = 0; a < X->rank; a++)
            red[a] = 1;
    for (int64_t j = 0; j < na; j++) {
        int64_t a = axes[j] < 0 ? axes[j] + X->rank : axes[j];
        if (a < 0 || a >= X->rank)
            return bnd_node_err(cx, k, e, ERR_VALUE, "reduce axis");
        red[a] = 1;
    }
    int64_t count = 1, rdims[NN_MAX_RANK];
    for (int a = 0; a < X->rank; a++) {
        rdims[a] = red[a] ? 1 : X->dims[a];
        if (red[a])
            count *= X->dims[a];
    }
    int64_t n_out = X->size / (count ? count : 1);
    if (n_out != Y->size)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "output shape");
    bnd_linop *J = bnd_lin_csr_new(n_out, X->size, X->size);
    if (!J)
        return bnd_lower_oom(cx, e);
    /* rows are output elements: count per row, then place each input */
    int64_t xc[NN_MAX_RANK];
    int64_t *row = malloc((size_t)(X->size ? X->size : 1) * sizeof(int64_t));
    if (!row) {
        bnd_lin_free(J);
        return bnd_lower_oom(cx, e);
    }
    for (int64_t i = 0; i < X->size; i++) {
        unravel(X, i, xc);
        int64_t o = 0;
        for (int a = 0; a < X->rank; a++)
            o = o * rdims[a] + (red[a] ? 0 : xc[a]);
        row[i] = o;
        J->rowptr[o + 1]++;
    }
    for (int64_t o = 0; o < n_out; o++)
        J->rowptr[o + 1] += J->rowptr[o];
    double v = nd->op == NN_OP_REDUCEMEAN ? 1.0 / (double)count : 1.0;
    for (int64_t i = 0; i < X->size; i++) {
        int64_t p = J->rowptr[row[i]]++;
        J->col[p] = i;
        J->val[p] = v;
    }
    for (int64_t o = n_out; o > 0; o--)
        J->rowptr[o] = J->rowptr[o - 1];
    J->rowptr[0] = 0;
    free(row);
    bnd_lin_csr_finish(J);
    int li = bnd_add_layer(cx->net, BND_L_LINEAR, k, n_out, 1, e);
    if (li < 0) {
        bnd_lin_free(J);
        return li;
    }
    bnd_layer *L = &cx->net->layers[li];
    L->in[0] = cx->tmap[nd->in[0]];
    L->lin[0] = J;
    L->coef_err = nd->op == NN_OP_REDUCEMEAN;
    cx->tmap[nd->out[0]] = li;
    return 0;
}
