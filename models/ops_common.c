/* ops_common.c: helpers shared by the per-op shape and eval code: node error
 * messages, reading constant integer inputs and attributes, broadcasting. */
#include "ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int nn_op_fail(const nn_graph *g, int k, err *e, int code, const char *fmt, ...)
{
    char what[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const nn_node *n = &g->nodes[k];
    return err_set(e, code, "%s: node %d '%.80s' (%.40s): %s", g->source, k, n->name, n->op_type,
                   what);
}

int nn_op_in_id(const nn_graph *g, int k, int i)
{
    const nn_node *n = &g->nodes[k];
    return i < n->n_in ? n->in[i] : -1;
}

const nn_tensor *nn_op_in(const nn_graph *g, int k, int i)
{
    int t = nn_op_in_id(g, k, i);
    return t < 0 ? NULL : &g->tensors[t];
}

int64_t nn_prod(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    for (int d = from; d < to; d++)
        p *= dims[d];
    return p;
}

int nn_op_set_out(nn_graph *g, int k, int i, nn_dtype dtype, int rank, const int64_t *dims,
                  err *e)
{
    nn_node *n = &g->nodes[k];
    if (i >= n->n_out)
        return nn_op_fail(g, k, e, ERR_PARSE, "missing output %d", i);
    nn_tensor *t = &g->tensors[n->out[i]];
    if (rank < 0 || rank > NN_MAX_RANK)
        return nn_op_fail(g, k, e, ERR_UNSUP, "output rank %d not supported", rank);
    int64_t size = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 0)
            return nn_op_fail(g, k, e, ERR_SHAPE, "negative output dimension %lld",
                              (long long)dims[d]);
        if (dims[d] > 0 && size > NN_MAX_ELEMS / dims[d])
            return nn_op_fail(g, k, e, ERR_NOMEM, "output of more than %lld elements",
                              (long long)NN_MAX_ELEMS);
        size *= dims[d];
    }
    /* A tensor that already holds a constant must keep a consistent shape. */
    if ((t->data || t->idata) && size != t->size)
        return nn_op_fail(g, k, e, ERR_SHAPE, "output '%s' is already a constant", t->name);
    t->rank = rank;
    for (int d = 0; d < rank; d++)
        t->dims[d] = dims[d];
    t->size = size;
    t->dtype = dtype;
    return 0;
}

int nn_op_const_ints(const nn_graph *g, int k, int i, int64_t *buf, int max, int *n, err *e)
{
    const nn_tensor *t = nn_op_in(g, k, i);
    *n = -1;
    if (!t)
        return 0;
    if (!t->data && !t->idata)
        return nn_op_fail(g, k, e, ERR_UNSUP, "input %d '%s' must be a constant", i, t->name);
    if (t->rank > 1)
        return nn_op_fail(g, k, e, ERR_SHAPE, "input %d '%s' must be 1-D", i, t->name);
    if (t->size > max)
        return nn_op_fail(g, k, e, ERR_SHAPE, "input %d '%s' has %lld values (max %d)", i,
                          t->name, (long long)t->size, max);
    for (int64_t j = 0; j < t->size; j++) {
        if (t->idata) {
            buf[j] = t->idata[j];
        } else {
            double x = t->data[j];
            if (!(x > -9.2e18 && x < 9.2e18))
                return nn_op_fail(g, k, e, ERR_VALUE, "input %d '%s': value out of range", i,
                                  t->name);
            buf[j] = (int64_t)x;
        }
    }
    *n = (int)t->size;
    return 0;
}

int nn_op_attr_ints(const nn_graph *g, int k, const char *name, int64_t *buf, int max, err *e)
{
    const nn_attr *a = nn_node_attr(&g->nodes[k], name);
    if (!a)
        return -1;
    if (a->kind == NN_ATTR_INT) {
        buf[0] = a->i;
        return 1;
    }
    if (a->kind != NN_ATTR_INTS)
        return nn_op_fail(g, k, e, ERR_PARSE, "attribute '%s' must be ints", name), -2;
    if (a->n > max)
        return nn_op_fail(g, k, e, ERR_UNSUP, "attribute '%s' has %lld values (max %d)", name,
                          (long long)a->n, max), -2;
    for (int64_t j = 0; j < a->n; j++)
        buf[j] = a->ints[j];
    return (int)a->n;
}

int nn_op_axis(const nn_graph *g, int k, int64_t axis, int rank, int *out, err *e)
{
    if (axis < -rank || axis >= rank)
        return nn_op_fail(g, k, e, ERR_SHAPE, "axis %lld out of range for rank %d",
                          (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return 0;
}

const char *nn_shape_str(const nn_tensor *t, char *buf, size_t len)
{
    size_t p = 0;
    if (!t || t->rank < 0) {
        snprintf(buf, len, "?");
        return buf;
    }
    p += (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < t->rank && p < len; d++)
        p += (size_t)snprintf(buf + p, len - p, d ? ",%lld" : "%lld", (long long)t->dims[d]);
    if (p < len)
        snprintf(buf + p, len - p, "]");
    return buf;
}

int nn_broadcast(int ra, const int64_t *da, int rb, const int64_t *db, int *rout, int64_t *dout)
{
    int r = ra > rb ? ra : rb;
    for (int d = 0; d < r; d++) {
        int ia = d - (r - ra), ib = d - (r - rb);
        int64_t x = ia >= 0 ? da[ia] : 1, y = ib >= 0 ? db[ib] : 1;
        if (x != y && x != 1 && y != 1)
            return -1;
        dout[d] = x == 1 ? y : x;
    }
    *rout = r;
    return 0;
}

void nn_bcast_strides(int r, const int64_t *d, int ro, const int64_t *dout, int64_t *stride)
{
    int64_t s = 1;
    for (int j = ro - 1; j >= 0; j--) {
        int i = j - (ro - r);
        if (i < 0) {
            stride[j] = 0;
            continue;
        }
        stride[j] = (d[i] == 1 && dout[j] != 1) ? 0 : s;
        s *= d[i];
    }
}

int nn_op_int_input(nn_op op, int i)
{
    switch (op) {
    case NN_OP_RESHAPE: case NN_OP_SQUEEZE: case NN_OP_UNSQUEEZE: case NN_OP_GATHER:
    case NN_OP_REDUCESUM: case NN_OP_REDUCEMEAN:
        return i == 1;
    case NN_OP_SLICE: return i >= 1;
    case NN_OP_CLIP: case NN_OP_DROPOUT: return i >= 1;
    case NN_OP_SHAPE: return 1;
    default: return 0;
    }
}

void nn_same_pads(int64_t in, int64_t stride, int64_t ext, int upper, int64_t *pad0,
                  int64_t *pad1)
{
    int64_t o = (in + stride - 1) / stride;
    int64_t tot = (o - 1) * stride + ext - in;
    tot = tot < 0 ? 0 : tot;
    *pad0 = upper ? tot / 2 : tot - tot / 2;
    *pad1 = tot - *pad0;
}
