/* ops_pool.c: AveragePool, MaxPool (1-D to 3-D, strides, pads, dilations,
 * ceil_mode, auto_pad) and GlobalAveragePool. Padding never wins a max: only
 * positions inside the input count. With ceil_mode the last window must start
 * inside the input or the left padding (the PyTorch/ONNX-runtime rule). An
 * average divides by the number of input positions in the window, or with
 * count_include_pad by the number of taps inside the padded input (with
 * dilations, the taps, not the positions the window spans). */
#include "ops.h"

#include <math.h>
#include <string.h>

typedef struct {
    int nsp;
    int64_t outer; /* N * C */
    int64_t in[3], kern[3], stride[3], dil[3], pad0[3], pad1[3], out[3];
} pool_geom;

static int pool_plan(const nn_graph *g, int k, pool_geom *p, err *e)
{
    const nn_node *n = &g->nodes[k];
    const nn_tensor *x = nn_op_in(g, k, 0);
    char s1[128];
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    int nsp = x->rank - 2;
    if (nsp < 1 || nsp > 3)
        return nn_op_fail(g, k, e, ERR_UNSUP, "input %s: only 1-D to 3-D pooling supported",
                          nn_shape_str(x, s1, sizeof s1));
    int64_t ks[3], st[3], dl[3], pd[6];
    int nk = nn_op_attr_ints(g, k, "kernel_shape", ks, 3, e);
    int ns = nn_op_attr_ints(g, k, "strides", st, 3, e);
    int nd = nn_op_attr_ints(g, k, "dilations", dl, 3, e);
    int np = nn_op_attr_ints(g, k, "pads", pd, 6, e);
    if (nk == -2 || ns == -2 || nd == -2 || np == -2)
        return e ? e->code : ERR_UNSUP;
    if (nk != nsp || (ns >= 0 && ns != nsp) || (nd >= 0 && nd != nsp) ||
        (np >= 0 && np != 2 * nsp))
        return nn_op_fail(g, k, e, ERR_SHAPE, "attribute lengths do not match %d spatial dims",
                          nsp);
    if (nn_attr_int(n, "storage_order", 0) != 0)
        return nn_op_fail(g, k, e, ERR_UNSUP, "storage_order not supported");
    const nn_attr *ap = nn_node_attr(n, "auto_pad");
    const char *auto_pad = ap && ap->kind == NN_ATTR_STRING ? ap->s : "NOTSET";
    int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
    int valid = !strcmp(auto_pad, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(auto_pad, "NOTSET") != 0)
        return nn_op_fail(g, k, e, ERR_UNSUP, "auto_pad '%s' not supported", auto_pad);
    int ceil_mode = nn_attr_int(n, "ceil_mode", 0) != 0;
    memset(p, 0, sizeof *p);
    p->nsp = nsp;
    p->outer = x->dims[0] * x->dims[1];
    int off = 3 - nsp;
    for (int i = 0; i < 3; i++)
        p->in[i] = p->kern[i] = p->stride[i] = p->dil[i] = p->out[i] = 1;
    for (int i = 0; i < nsp; i++) {
        int s = off + i;
        p->in[s] = x->dims[2 + i];
        p->kern[s] = ks[i];
        p->stride[s] = ns >= 0 ? st[i] : 1;
        p->dil[s] = nd >= 0 ? dl[i] : 1;
        p->pad0[s] = np >= 0 ? pd[i] : 0;
        p->pad1[s] = np >= 0 ? pd[nsp + i] : 0;
        if (p->kern[s] < 1 || p->stride[s] < 1 || p->dil[s] < 1 || p->pad0[s] < 0 ||
            p->pad1[s] < 0 || p->kern[s] > NN_MAX_ELEMS || p->stride[s] > NN_MAX_ELEMS ||
            p->dil[s] > NN_MAX_ELEMS || p->pad0[s] > NN_MAX_ELEMS || p->pad1[s] > NN_MAX_ELEMS)
            return nn_op_fail(g, k, e, ERR_SHAPE, "bad kernel, stride, dilation or pads");
        int64_t ext = (p->kern[s] - 1) * p->dil[s] + 1;
        if (valid) {
            p->pad0[s] = p->pad1[s] = 0;
        } else if (same_upper || same_lower) {
            nn_same_pads(p->in[s], p->stride[s], ext, same_upper, &p->pad0[s], &p->pad1[s]);
        }
        int64_t span = p->in[s] + p->pad0[s] + p->pad1[s] - ext;
        if (span < 0)
            return nn_op_fail(g, k, e, ERR_SHAPE, "kernel larger than padded input %s",
                              nn_shape_str(x, s1, sizeof s1));
        int64_t o = ceil_mode ? (span + p->stride[s] - 1) / p->stride[s] + 1
                              : span / p->stride[s] + 1;
        if (ceil_mode && (o - 1) * p->stride[s] >= p->in[s] + p->pad0[s])
            o--;
        p->out[s] = o;
    }
    return 0;
}

int nn_shape_pool(nn_graph *g, int k, err *e)
{
    pool_geom p;
    int rc = pool_plan(g, k, &p, e);
    if (rc)
        return rc;
    const nn_tensor *x = nn_op_in(g, k, 0);
    int64_t d[5] = {x->dims[0], x->dims[1]};
    for (int i = 0; i < p.nsp; i++)
        d[2 + i] = p.out[3 - p.nsp + i];
    if ((rc = nn_op_set_out(g, k, 0, x->dtype, x->rank, d, e)))
        return rc;
    int64_t size = g->tensors[g->nodes[k].out[0]].size, window = 1;
    for (int s = 0; s < 3 && window <= NN_MAX_WORK; s++)
        window *= p.kern[s] <= NN_MAX_WORK ? p.kern[s] : NN_MAX_WORK + 1;
    if (size > 0 && window > NN_MAX_WORK / size)
        return nn_op_fail(g, k, e, ERR_UNSUP, "more than %lld window steps",
                          (long long)NN_MAX_WORK);
    return 0;
}

int nn_eval_pool(const nn_graph *g, int k, double *const *v, err *e)
{
    const nn_node *n = &g->nodes[k];
    pool_geom p;
    int rc = pool_plan(g, k, &p, e);
    if (rc)
        return rc;
    int is_max = n->op == NN_OP_MAXPOOL;
    int include_pad = nn_attr_int(n, "count_include_pad", 0) != 0;
    const double *x = v[n->in[0]];
    double *y = v[n->out[0]];
    int64_t nin = p.in[0] * p.in[1] * p.in[2];
    for (int64_t c = 0; c < p.outer; c++) {
        const double *xc = x + c * nin;
        for (int64_t od = 0; od < p.out[0]; od++)
            for (int64_t oh = 0; oh < p.out[1]; oh++)
                for (int64_t ow = 0; ow < p.out[2]; ow++) {
                    int64_t o[3] = {od, oh, ow}, lo[3];
                    double acc = is_max ? -INFINITY : 0.0;
                    int64_t count = 0, padded = 1;
                    for (int s = 0; s < 3; s++) {
                        lo[s] = o[s] * p.stride[s] - p.pad0[s];
                        /* taps (not positions: dilations skip some) inside
                         * the padded input; lo >= -pad0 always */
                        int64_t lim = p.in[s] + p.pad1[s];
                        int64_t taps = lim > lo[s] ? (lim - 1 - lo[s]) / p.dil[s] + 1 : 0;
                        padded *= taps < p.kern[s] ? taps : p.kern[s];
                    }
                    for (int64_t kd = 0; kd < p.kern[0]; kd++) {
                        int64_t id = lo[0] + kd * p.dil[0];
                        if (id < 0 || id >= p.in[0])
                            continue;
                        for (int64_t kh = 0; kh < p.kern[1]; kh++) {
                            int64_t ih = lo[1] + kh * p.dil[1];
                            if (ih < 0 || ih >= p.in[1])
                                continue;
                            for (int64_t kw = 0; kw < p.kern[2]; kw++) {
                                int64_t iw = lo[2] + kw * p.dil[2];
                                if (iw < 0 || iw >= p.in[2])
                                    continue;
                                double t = xc[(id * p.in[1] + ih) * p.in[2] + iw];
                                if (is_max)
                                    acc = t > acc ? t : acc;
                                else
                                    acc += t;
                                count++;
                            }
                        }
                    }
                    if (!is_max) {
                        int64_t div = include_pad ? padded : count;
                        acc = div > 0 ? acc / (double)div : 0.0;
                    } else if (count == 0) {
                        acc = 0.0;
                    }
                    *y++ = acc;
                }
    }
    return 0;
}

int nn_shape_globalavgpool(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    char s1[128];
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    if (x->rank < 2)
        return nn_op_fail(g, k, e, ERR_SHAPE, "input %s has no spatial axes",
                          nn_shape_str(x, s1, sizeof s1));
    int64_t d[NN_MAX_RANK];
    for (int i = 0; i < x->rank; i++)
        d[i] = i < 2 ? x->dims[i] : 1;
    return nn_op_set_out(g, k, 0, x->dtype, x->rank, d, e);
}

int nn_eval_globalavgpool(const nn_graph *g, int k, double *const *v, err *e)
{
    (void)e;
    const nn_node *n = &g->nodes[k];
    const nn_tensor *x = nn_op_in(g, k, 0);
    int64_t outer = x->dims[0] * x->dims[1], inner = nn_prod(x->dims, 2, x->rank);
    const double *px = v[n->in[0]];
    double *py = v[n->out[0]];
    for (int64_t c = 0; c < outer; c++) {
        double s = 0;
        for (int64_t i = 0; i < inner; i++)
            s += px[c * inner + i];
        py[c] = inner ? s / (double)inner : 0.0;
    }
    return 0;
}
