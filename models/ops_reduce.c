/* ops_reduce.c: ReduceSum and ReduceMean. Axes come from an attribute, or from
 * an optional input (ReduceSum from opset 13, ReduceMean from 18); no axes means
 * all axes unless noop_with_empty_axes. One pass over the input, each element
 * added to its output slot (reduced axes have output stride 0). */
#include "ops.h"

#include <string.h>

static int reduce_axes(const nn_graph *g, int k, int rank, int *red, err *e)
{
    const nn_node *n = &g->nodes[k];
    int64_t axes[NN_MAX_RANK];
    int na, rc;
    if (nn_op_in(g, k, 1)) { /* ReduceSum from opset 13, ReduceMean from 18 */
        if ((rc = nn_op_const_ints(g, k, 1, axes, NN_MAX_RANK, &na, e)))
            return rc;
    } else {
        na = nn_op_attr_ints(g, k, "axes", axes, NN_MAX_RANK, e);
        if (na == -2)
            return e ? e->code : ERR_UNSUP;
    }
    memset(red, 0, NN_MAX_RANK * sizeof *red);
    if (na <= 0) {
        int noop = nn_attr_int(n, "noop_with_empty_axes", 0) != 0;
        for (int i = 0; i < rank; i++)
            red[i] = !noop;
        return 0;
    }
    for (int i = 0; i < na; i++) {
        int a;
        if ((rc = nn_op_axis(g, k, axes[i], rank, &a, e)))
            return rc;
        red[a] = 1;
    }
    return 0;
}

int nn_shape_reduce(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    int red[NN_MAX_RANK], rc = reduce_axes(g, k, x->rank, red, e);
    if (rc)
        return rc;
    int keep = nn_attr_int(&g->nodes[k], "keepdims", 1) != 0, r = 0;
    int64_t d[NN_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        if (!red[i])
            d[r++] = x->dims[i];
        else if (keep)
            d[r++] = 1;
    return nn_op_set_out(g, k, 0, x->dtype, r, d, e);
}

int nn_eval_reduce(const nn_graph *g, int k, double *const *v, err *e)
{
    const nn_node *n = &g->nodes[k];
    const nn_tensor *x = nn_op_in(g, k, 0), *o = &g->tensors[n->out[0]];
    int red[NN_MAX_RANK], rc = reduce_axes(g, k, x->rank, red, e);
    if (rc)
        return rc;
    int r = x->rank;
    int64_t os[NN_MAX_RANK], idx[NN_MAX_RANK] = {0}, acc = 1, off = 0;
    for (int d = r - 1; d >= 0; d--) {
        os[d] = red[d] ? 0 : acc;
        acc *= red[d] ? 1 : x->dims[d];
    }
    const double *px = v[n->in[0]];
    double *py = v[n->out[0]];
    memset(py, 0, (size_t)o->size * sizeof *py);
    for (int64_t i = 0; i < x->size; i++) {
        py[off] += px[i];
        for (int d = r - 1; d >= 0; d--) {
            idx[d]++;
            off += os[d];
            if (idx[d] < x->dims[d])
                break;
            off -= os[d] * x->dims[d];
            idx[d] = 0;
        }
    }
    if (n->op == NN_OP_REDUCEMEAN && o->size > 0) {
        double cnt = (double)x->size / (double)o->size;
        for (int64_t i = 0; i < o->size; i++)
            py[i] /= cnt;
    }
    return 0;
}
