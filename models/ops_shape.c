/* ops_shape.c: ops that move data without arithmetic: Identity, Dropout (an
 * identity at inference), Flatten, Reshape, Squeeze, Unsqueeze (these four only
 * change the shape: evaluation is a copy), Transpose, Concat, Slice, Shape
 * (always a constant after finalize, since shapes are static) and Gather. */
#include "ops.h"

#include <string.h>

int nn_eval_copy(const nn_graph *g, int k, double *const *v, err *e)
{
    (void)e;
    const nn_node *n = &g->nodes[k];
    if (v[n->out[0]] != v[n->in[0]])
        memmove(v[n->out[0]], v[n->in[0]], (size_t)g->tensors[n->out[0]].size * sizeof(double));
    return 0;
}

/* Outputs beyond the first (Dropout's mask, BatchNorm's training statistics) must be unused:
 * finalize rejects graphs that consume them (see finalize.c). */
int nn_shape_identity(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    if (g->nodes[k].op == NN_OP_DROPOUT) {
        const nn_tensor *mode = nn_op_in(g, k, 2);
        if (mode && (!mode->data && !mode->idata))
            return nn_op_fail(g, k, e, ERR_UNSUP, "training_mode must be a constant");
        if (mode && mode->size >= 1 && ((mode->idata && mode->idata[0]) || (mode->data && mode->data[0])))
            return nn_op_fail(g, k, e, ERR_UNSUP, "training mode not supported");
    }
    return nn_op_set_out(g, k, 0, x->dtype, x->rank, x->dims, e);
}

int nn_shape_flatten(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    int64_t axis = nn_attr_int(&g->nodes[k], "axis", 1);
    if (axis < -x->rank || axis > x->rank)
        return nn_op_fail(g, k, e, ERR_SHAPE, "axis %lld out of range for rank %d",
                          (long long)axis, x->rank);
    int a = (int)(axis < 0 ? axis + x->rank : axis);
    int64_t d[2] = {nn_prod(x->dims, 0, a), nn_prod(x->dims, a, x->rank)};
    return nn_op_set_out(g, k, 0, x->dtype, 2, d, e);
}

int nn_shape_reshape(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    int64_t s[NN_MAX_RANK], d[NN_MAX_RANK];
    int n;
    if (!nn_op_in(g, k, 1)) { /* opset < 5: an attribute */
        n = nn_op_attr_ints(g, k, "shape", s, NN_MAX_RANK, e);
        if (n == -2)
            return e ? e->code : ERR_UNSUP;
        if (n < 0)
            return nn_op_fail(g, k, e, ERR_PARSE, "missing shape");
    } else {
        int rc = nn_op_const_ints(g, k, 1, s, NN_MAX_RANK, &n, e);
        if (rc)
            return rc;
    }
    int allowzero = (int)nn_attr_int(&g->nodes[k], "allowzero", 0);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        if (s[i] == 0 && !allowzero) {
            if (i >= x->rank)
                return nn_op_fail(g, k, e, ERR_SHAPE, "shape has 0 at %d beyond input rank %d",
                                  i, x->rank);
            d[i] = x->dims[i];
        } else if (s[i] == -1) {
            if (infer >= 0)
                return nn_op_fail(g, k, e, ERR_SHAPE, "shape has more than one -1");
            infer = i;
            d[i] = 1;
        } else if (s[i] < 0) {
            return nn_op_fail(g, k, e, ERR_SHAPE, "bad dimension %lld in shape", (long long)s[i]);
        } else {
            d[i] = s[i];
        }
        if (i != infer) {
            if (d[i] > 0 && known > NN_MAX_ELEMS / d[i])
                return nn_op_fail(g, k, e, ERR_NOMEM, "shape too large");
            known *= d[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || x->size % known != 0) {
            char sx[128];
            return nn_op_fail(g, k, e, ERR_SHAPE, "cannot reshape %s with a -1 dimension",
                              nn_shape_str(x, sx, sizeof sx));
        }
        d[infer] = x->size / known;
        known *= d[infer];
    }
    if (known != x->size) {
        char sx[128];
        return nn_op_fail(g, k, e, ERR_SHAPE, "cannot reshape %s (%lld elements) to %lld elements",
                          nn_shape_str(x, sx, sizeof sx), (long long)x->size, (long long)known);
    }
    return nn_op_set_out(g, k, 0, x->dtype, n, d, e);
}

/* Axes of Squeeze/Unsqueeze: an attribute before opset 13, an input from 13. */
static int get_axes(const nn_graph *g, int k, int64_t *axes, int *n, err *e)
{
    if (g->opset >= 13 || nn_op_in(g, k, 1))
        return nn_op_const_ints(g, k, 1, axes, NN_MAX_RANK, n, e);
    *n = nn_op_attr_ints(g, k, "axes", axes, NN_MAX_RANK, e);
    return *n == -2 ? (e ? e->code : ERR_UNSUP) : 0;
}

int nn_shape_squeeze(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    int64_t axes[NN_MAX_RANK], d[NN_MAX_RANK];
    int n, drop[NN_MAX_RANK] = {0};
    int rc = get_axes(g, k, axes, &n, e);
    if (rc)
        return rc;
    if (n < 0) {
        for (int i = 0; i < x->rank; i++)
            drop[i] = x->dims[i] == 1;
    }
    for (int i = 0; i < n; i++) {
        int a;
        if ((rc = nn_op_axis(g, k, axes[i], x->rank, &a, e)))
            return rc;
        if (x->dims[a] != 1)
            return nn_op_fail(g, k, e, ERR_SHAPE, "cannot squeeze axis %d of size %lld", a,
                              (long long)x->dims[a]);
        drop[a] = 1;
    }
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            d[r++] = x->dims[i];
    return nn_op_set_out(g, k, 0, x->dtype, r, d, e);
}

int nn_shape_unsqueeze(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    int64_t axes[NN_MAX_RANK], d[NN_MAX_RANK];
    int n, ins[NN_MAX_RANK] = {0};
    int rc = get_axes(g, k, axes, &n, e);
    if (rc)
        return rc;
    if (n < 0)
        return nn_op_fail(g, k, e, ERR_PARSE, "missing axes");
    int r = x->rank + n;
    if (r > NN_MAX_RANK)
        return nn_op_fail(g, k, e, ERR_UNSUP, "output rank %d not supported", r);
    for (int i = 0; i < n; i++) {
        int a;
        if ((rc = nn_op_axis(g, k, axes[i], r, &a, e)))
            return rc;
        if (ins[a])
            return nn_op_fail(g, k, e, ERR_SHAPE, "repeated axis %d", a);
        ins[a] = 1;
    }
    for (int i = 0, j = 0; i < r; i++)
        d[i] = ins[i] ? 1 : x->dims[j++];
    return nn_op_set_out(g, k, 0, x->dtype, r, d, e);
}

/* ---- Transpose ---- */

static int get_perm(const nn_graph *g, int k, int rank, int *perm, err *e)
{
    int64_t p[NN_MAX_RANK];
    int n = nn_op_attr_ints(g, k, "perm", p, NN_MAX_RANK, e);
    if (n == -2)
        return e ? e->code : ERR_UNSUP;
    if (n < 0) {
        for (int i = 0; i < rank; i++)
            perm[i] = rank - 1 - i;
        return 0;
    }
    if (n != rank)
        return nn_op_fail(g, k, e, ERR_SHAPE, "perm has %d entries for rank %d", n, rank);
    int seen[NN_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        if (p[i] < 0 || p[i] >= rank || seen[p[i]])
            return nn_op_fail(g, k, e, ERR_SHAPE, "perm is not a permutation");
        seen[p[i]] = 1;
        perm[i] = (int)p[i];
    }
    return 0;
}

int nn_shape_transpose(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    int perm[NN_MAX_RANK];
    int64_t d[NN_MAX_RANK];
    int rc = get_perm(g, k, x->rank, perm, e);
    if (rc)
        return rc;
    for (int i = 0; i < x->rank; i++)
        d[i] = x->dims[perm[i]];
    return nn_op_set_out(g, k, 0, x->dtype, x->rank, d, e);
}

/* y[i] = x[off + sum_d idx_d * stride_d] over the output's index space in
 * row-major order: the gather behind Transpose and Slice. */
static void strided_gather(const double *px, double *py, const nn_tensor *o, int64_t off,
                           const int64_t *stride)
{
    int r = o->rank;
    int64_t idx[NN_MAX_RANK] = {0};
    for (int64_t i = 0; i < o->size; i++) {
        py[i] = px[off];
        for (int d = r - 1; d >= 0; d--) {
            idx[d]++;
            off += stride[d];
            if (idx[d] < o->dims[d])
                break;
            off -= stride[d] * o->dims[d];
            idx[d] = 0;
        }
    }
}

int nn_eval_transpose(const nn_graph *g, int k, double *const *v, err *e)
{
    const nn_node *n = &g->nodes[k];
    const nn_tensor *x = nn_op_in(g, k, 0), *o = &g->tensors[n->out[0]];
    int perm[NN_MAX_RANK], r = x->rank;
    int rc = get_perm(g, k, r, perm, e);
    if (rc)
        return rc;
    int64_t xs[NN_MAX_RANK], s[NN_MAX_RANK], off = 0, acc = 1;
    for (int d = r - 1; d >= 0; d--) {
        xs[d] = acc;
        acc *= x->dims[d];
    }
    for (int d = 0; d < r; d++)
        s[d] = xs[perm[d]];
    strided_gather(v[n->in[0]], v[n->out[0]], o, off, s);
    return 0;
}

/* ---- Concat ---- */

int nn_shape_concat(nn_graph *g, int k, err *e)
{
    const nn_node *n = &g->nodes[k];
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs inputs");
    const nn_attr *aa = nn_node_attr(n, "axis");
    if (!aa)
        return nn_op_fail(g, k, e, ERR_PARSE, "missing axis");
    int a, rc = nn_op_axis(g, k, aa->i, x->rank, &a, e);
    if (rc)
        return rc;
    int64_t d[NN_MAX_RANK];
    memcpy(d, x->dims, sizeof d);
    d[a] = 0;
    for (int i = 0; i < n->n_in; i++) {
        const nn_tensor *t = nn_op_in(g, k, i);
        if (!t)
            return nn_op_fail(g, k, e, ERR_PARSE, "omitted input %d", i);
        int ok = t->rank == x->rank;
        for (int j = 0; ok && j < x->rank; j++)
            ok = j == a || t->dims[j] == x->dims[j];
        if (!ok) {
            char s1[128], s2[128];
            return nn_op_fail(g, k, e, ERR_SHAPE, "shapes %s and %s differ off axis %d",
                              nn_shape_str(x, s1, sizeof s1), nn_shape_str(t, s2, sizeof s2), a);
        }
        d[a] += t->dims[a];
        if (d[a] > NN_MAX_ELEMS)
            return nn_op_fail(g, k, e, ERR_NOMEM, "output too large");
    }
    return nn_op_set_out(g, k, 0, x->dtype, x->rank, d, e);
}

int nn_eval_concat(const nn_graph *g, int k, double *const *v, err *e)
{
    (void)e;
    const nn_node *n = &g->nodes[k];
    const nn_tensor *o = &g->tensors[n->out[0]];
    int a = (int)nn_attr_int(n, "axis", 0);
    if (a < 0)
        a += o->rank;
    int64_t outer = nn_prod(o->dims, 0, a), inner = nn_prod(o->dims, a + 1, o->rank);
    int64_t orow = o->dims[a] * inner, pos = 0;
    double *py = v[n->out[0]];
    for (int i = 0; i < n->n_in; i++) {
        const nn_tensor *t = &g->tensors[n->in[i]];
        int64_t row = t->dims[a] * inner;
        const double *px = v[n->in[i]];
        for (int64_t r = 0; r < outer; r++)
            memcpy(py + r * orow + pos, px + r * row, (size_t)row * sizeof *py);
        pos += row;
    }
    return 0;
}

/* ---- Slice: attributes before opset 10, inputs (starts, ends, axes, steps) from 10
 * (decided by the presence of inputs, so graphs without an opset work too).
 * Per axis: negative start/end count from the end; then clamp to [0, dim] for a
 * positive step, [-1, dim-1] for a negative one; length ceil((end-start)/step). ---- */

typedef struct {
    int64_t start[NN_MAX_RANK], step[NN_MAX_RANK], len[NN_MAX_RANK];
} slice_plan;

static int plan_slice(const nn_graph *g, int k, slice_plan *p, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    int r = x->rank;
    int64_t st[NN_MAX_RANK], en[NN_MAX_RANK], ax[NN_MAX_RANK], sp[NN_MAX_RANK];
    int ns, ne, na, np = -1, rc;
    if (g->nodes[k].n_in < 2) { /* opset < 10: attributes */
        ns = nn_op_attr_ints(g, k, "starts", st, NN_MAX_RANK, e);
        ne = nn_op_attr_ints(g, k, "ends", en, NN_MAX_RANK, e);
        na = nn_op_attr_ints(g, k, "axes", ax, NN_MAX_RANK, e);
        if (ns == -2 || ne == -2 || na == -2)
            return e ? e->code : ERR_UNSUP;
    } else {
        if ((rc = nn_op_const_ints(g, k, 1, st, NN_MAX_RANK, &ns, e)) ||
            (rc = nn_op_const_ints(g, k, 2, en, NN_MAX_RANK, &ne, e)) ||
            (rc = nn_op_const_ints(g, k, 3, ax, NN_MAX_RANK, &na, e)) ||
            (rc = nn_op_const_ints(g, k, 4, sp, NN_MAX_RANK, &np, e)))
            return rc;
    }
    if (ns < 0 || ne != ns || (na >= 0 && na != ns) || (np >= 0 && np != ns))
        return nn_op_fail(g, k, e, ERR_SHAPE, "starts, ends, axes, steps differ in length");
    for (int d = 0; d < r; d++) {
        p->start[d] = 0;
        p->step[d] = 1;
        p->len[d] = x->dims[d];
    }
    int seen[NN_MAX_RANK] = {0};
    for (int i = 0; i < ns; i++) {
        int a;
        if ((rc = nn_op_axis(g, k, na >= 0 ? ax[i] : i, r, &a, e)))
            return rc;
        if (seen[a])
            return nn_op_fail(g, k, e, ERR_SHAPE, "repeated axis %d", a);
        seen[a] = 1;
        int64_t dim = x->dims[a], step = np >= 0 ? sp[i] : 1, s = st[i], t = en[i];
        if (step == 0)
            return nn_op_fail(g, k, e, ERR_SHAPE, "step 0 on axis %d", a);
        if (s < 0)
            s += dim; /* no overflow: dim > 0 */
        if (t < 0)
            t += dim;
        if (step > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            t = t < 0 ? 0 : t > dim ? dim : t;
        } else {
            s = s > dim - 1 ? dim - 1 : s < 0 ? 0 : s;
            t = t < -1 ? -1 : t > dim - 1 ? dim - 1 : t;
        }
        int64_t len = 0;
        if (dim == 0)
            len = 0;
        else if (step > 0 && t > s)
            len = (t - s + step - 1) / step;
        else if (step < 0 && s > t)
            len = (s - t + (-step) - 1) / (-step);
        p->start[a] = s;
        p->step[a] = step;
        p->len[a] = len;
    }
    return 0;
}

int nn_shape_slice(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    slice_plan p;
    int rc = plan_slice(g, k, &p, e);
    return rc ? rc : nn_op_set_out(g, k, 0, x->dtype, x->rank, p.len, e);
}

int nn_eval_slice(const nn_graph *g, int k, double *const *v, err *e)
{
    const nn_node *n = &g->nodes[k];
    const nn_tensor *x = nn_op_in(g, k, 0), *o = &g->tensors[n->out[0]];
    slice_plan p;
    int rc = plan_slice(g, k, &p, e);
    if (rc)
        return rc;
    int r = x->rank;
    int64_t xs[NN_MAX_RANK], s[NN_MAX_RANK], off = 0, acc = 1;
    for (int d = r - 1; d >= 0; d--) {
        xs[d] = acc;
        acc *= x->dims[d];
    }
    for (int d = 0; d < r; d++) {
        s[d] = xs[d] * p.step[d];
        off += p.start[d] * xs[d];
    }
    strided_gather(v[n->in[0]], v[n->out[0]], o, off, s);
    return 0;
}

/* ---- Shape (with opset-15 start/end) ---- */

static void shape_range(const nn_graph *g, int k, int rank, int *from, int *to)
{
    int64_t s = nn_attr_int(&g->nodes[k], "start", 0), t = nn_attr_int(&g->nodes[k], "end", rank);
    if (s < 0)
        s += rank;
    if (t < 0)
        t += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    t = t < 0 ? 0 : t > rank ? rank : t;
    *from = (int)s;
    *to = (int)(t < s ? s : t);
}

int nn_shape_shape(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    int from, to;
    shape_range(g, k, x->rank, &from, &to);
    int64_t d = to - from;
    return nn_op_set_out(g, k, 0, NN_INT64, 1, &d, e);
}

int nn_eval_shape(const nn_graph *g, int k, double *const *v, err *e)
{
    (void)e;
    const nn_tensor *x = nn_op_in(g, k, 0);
    int from, to;
    shape_range(g, k, x->rank, &from, &to);
    for (int d = from; d < to; d++)
        v[g->nodes[k].out[0]][d - from] = (double)x->dims[d];
    return 0;
}

/* ---- Gather: indices must be constant ---- */

int nn_shape_gather(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0), *ix = nn_op_in(g, k, 1);
    if (!x || !ix)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs data and indices");
    if (!ix->idata && !ix->data)
        return nn_op_fail(g, k, e, ERR_UNSUP, "indices '%s' must be a constant", ix->name);
    int a, rc = nn_op_axis(g, k, nn_attr_int(&g->nodes[k], "axis", 0), x->rank, &a, e);
    if (rc)
        return rc;
    int r = x->rank - 1 + ix->rank;
    if (r > NN_MAX_RANK)
        return nn_op_fail(g, k, e, ERR_UNSUP, "output rank %d not supported", r);
    int64_t d[NN_MAX_RANK];
    for (int64_t i = 0; i < ix->size; i++) {
        int64_t j = ix->idata ? ix->idata[i] : (int64_t)ix->data[i];
        if (j < -x->dims[a] || j >= x->dims[a])
            return nn_op_fail(g, k, e, ERR_VALUE, "index %lld out of range for axis of size %lld",
                              (long long)j, (long long)x->dims[a]);
    }
    int p = 0;
    for (int i = 0; i < a; i++)
        d[p++] = x->dims[i];
    for (int i = 0; i < ix->rank; i++)
        d[p++] = ix->dims[i];
    for (int i = a + 1; i < x->rank; i++)
        d[p++] = x->dims[i];
    return nn_op_set_out(g, k, 0, x->dtype, r, d, e);
}

int nn_eval_gather(const nn_graph *g, int k, double *const *v, err *e)
{
    (void)e;
    const nn_node *n = &g->nodes[k];
    const nn_tensor *x = nn_op_in(g, k, 0), *ix = nn_op_in(g, k, 1);
    int64_t axis = nn_attr_int(n, "axis", 0);
    int a = (int)(axis < 0 ? axis + x->rank : axis);
    int64_t outer = nn_prod(x->dims, 0, a), inner = nn_prod(x->dims, a + 1, x->rank);
    int64_t dim = x->dims[a];
    const double *px = v[n->in[0]];
    double *py = v[n->out[0]];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < ix->size; i++) {
            int64_t j = ix->idata ? ix->idata[i] : (int64_t)ix->data[i];
            if (j < 0)
                j += dim;
            memcpy(py + (o * ix->size + i) * inner, px + (o * dim + j) * inner,
                   (size_t)inner * sizeof *py);
        }
    return 0;
}
