/* ops_elementwise.c: elementwise ops. Binary ops (Add, Sub, Mul, Div, Pow) use
 * ONNX multidirectional (numpy) broadcasting: shapes are right-aligned and a
 * dimension of 1 stretches. Also unary activations, Clip, Softmax and Cast.
 * Float attributes hold the exact float32 value (LeakyRelu's default alpha is
 * (double)0.01f, as ONNX stores it). */
#include "ops.h"

#include <math.h>
#include <string.h>

/* ---- binary ---- */

int nn_shape_binary(nn_graph *g, int k, err *e)
{
    const nn_tensor *a = nn_op_in(g, k, 0), *b = nn_op_in(g, k, 1);
    if (!a || !b)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs two inputs");
    int r;
    int64_t d[NN_MAX_RANK];
    if (nn_broadcast(a->rank, a->dims, b->rank, b->dims, &r, d) != 0) {
        char sa[128], sb[128];
        return nn_op_fail(g, k, e, ERR_SHAPE, "shapes %s and %s do not broadcast",
                          nn_shape_str(a, sa, sizeof sa), nn_shape_str(b, sb, sizeof sb));
    }
    return nn_op_set_out(g, k, 0, a->dtype, r, d, e);
}

static double apply_binary(nn_op op, double x, double y)
{
    switch (op) {
    case NN_OP_ADD: return x + y;
    case NN_OP_SUB: return x - y;
    case NN_OP_MUL: return x * y;
    case NN_OP_DIV: return x / y;
    default: return pow(x, y);
    }
}

#define BINARY_LOOP(EXPR)                                                     \
    do {                                                                      \
        if (sa_in == 1 && sb_in == 1)                                         \
            for (int64_t i = 0; i < len; i++) {                               \
                double x = pa[i], y = pb[i];                                  \
                po[i] = (EXPR);                                               \
            }                                                                 \
        else                                                                  \
            for (int64_t i = 0; i < len; i++) {                               \
                double x = pa[i * sa_in], y = pb[i * sb_in];                  \
                po[i] = (EXPR);                                               \
            }                                                                 \
    } while (0)

int nn_eval_binary(const nn_graph *g, int k, double *const *v, err *e)
{
    (void)e;
    const nn_node *n = &g->nodes[k];
    const nn_tensor *ta = nn_op_in(g, k, 0), *tb = nn_op_in(g, k, 1);
    const nn_tensor *to = &g->tensors[n->out[0]];
    const double *a = v[n->in[0]], *b = v[n->in[1]];
    double *y = v[n->out[0]];
    int r = to->rank;
    int64_t sa[NN_MAX_RANK], sb[NN_MAX_RANK], idx[NN_MAX_RANK] = {0};
    nn_bcast_strides(ta->rank, ta->dims, r, to->dims, sa);
    nn_bcast_strides(tb->rank, tb->dims, r, to->dims, sb);
    int64_t len = r > 0 ? to->dims[r - 1] : 1;
    int64_t sa_in = r > 0 ? sa[r - 1] : 0, sb_in = r > 0 ? sb[r - 1] : 0;
    if (ta->size == to->size && tb->size == to->size) {
        len = to->size;
        sa_in = sb_in = 1;
        r = 1;
    }
    if (len == 0 || to->size == 0)
        return 0;
    int64_t rows = to->size / len, oa = 0, ob = 0;
    for (int64_t row = 0; row < rows; row++) {
        const double *pa = a + oa, *pb = b + ob;
        double *po = y + row * len;
        switch (n->op) {
        case NN_OP_ADD: BINARY_LOOP(x + y); break;
        case NN_OP_SUB: BINARY_LOOP(x - y); break;
        case NN_OP_MUL: BINARY_LOOP(x * y); break;
        case NN_OP_DIV: BINARY_LOOP(x / y); break;
        default: BINARY_LOOP(apply_binary(n->op, x, y)); break;
        }
        /* advance the outer index (all but the last axis) */
        for (int d = r - 2; d >= 0; d--) {
            idx[d]++;
            oa += sa[d];
            ob += sb[d];
            if (idx[d] < to->dims[d])
                break;
            oa -= sa[d] * to->dims[d];
            ob -= sb[d] * to->dims[d];
            idx[d] = 0;
        }
    }
    if (to->dtype == NN_INT64 && n->op == NN_OP_DIV)
        for (int64_t i = 0; i < to->size; i++)
            y[i] = trunc(y[i]);
    return 0;
}

/* ---- unary ---- */

int nn_shape_unary(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    const nn_node *n = &g->nodes[k];
    if (n->op == NN_OP_GELU) {
        const nn_attr *a = nn_node_attr(n, "approximate");
        if (a && (a->kind != NN_ATTR_STRING ||
                  (strcmp(a->s, "none") != 0 && strcmp(a->s, "tanh") != 0)))
            return nn_op_fail(g, k, e, ERR_UNSUP, "unsupported approximate attribute");
    }
    return nn_op_set_out(g, k, 0, x->dtype, x->rank, x->dims, e);
}

static double softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

int nn_eval_unary(const nn_graph *g, int k, double *const *v, err *e)
{
    (void)e;
    const nn_node *n = &g->nodes[k];
    const double *x = v[n->in[0]];
    double *y = v[n->out[0]];
    int64_t size = g->tensors[n->out[0]].size;
    switch (n->op) {
    case NN_OP_NEG: for (int64_t i = 0; i < size; i++) y[i] = -x[i]; break;
    case NN_OP_ABS: for (int64_t i = 0; i < size; i++) y[i] = fabs(x[i]); break;
    case NN_OP_RELU: for (int64_t i = 0; i < size; i++) y[i] = x[i] > 0 ? x[i] : 0.0; break;
    case NN_OP_LEAKYRELU: {
        double alpha = nn_attr_float(n, "alpha", (double)0.01f);
        for (int64_t i = 0; i < size; i++)
            y[i] = x[i] >= 0 ? x[i] : alpha * x[i];
        break;
    }
    case NN_OP_SIGMOID:
        for (int64_t i = 0; i < size; i++)
            y[i] = x[i] >= 0 ? 1.0 / (1.0 + exp(-x[i])) : exp(x[i]) / (1.0 + exp(x[i]));
        break;
    case NN_OP_TANH: for (int64_t i = 0; i < size; i++) y[i] = tanh(x[i]); break;
    case NN_OP_EXP: for (int64_t i = 0; i < size; i++) y[i] = exp(x[i]); break;
    case NN_OP_LOG: for (int64_t i = 0; i < size; i++) y[i] = log(x[i]); break;
    case NN_OP_SIN: for (int64_t i = 0; i < size; i++) y[i] = sin(x[i]); break;
    case NN_OP_COS: for (int64_t i = 0; i < size; i++) y[i] = cos(x[i]); break;
    case NN_OP_ERF: for (int64_t i = 0; i < size; i++) y[i] = erf(x[i]); break;
    case NN_OP_SOFTPLUS: for (int64_t i = 0; i < size; i++) y[i] = softplus(x[i]); break;
    case NN_OP_SQRT: for (int64_t i = 0; i < size; i++) y[i] = sqrt(x[i]); break;
    case NN_OP_RECIPROCAL: for (int64_t i = 0; i < size; i++) y[i] = 1.0 / x[i]; break;
    case NN_OP_GELU: {
        const nn_attr *a = nn_node_attr(n, "approximate");
        if (a && a->kind == NN_ATTR_STRING && strcmp(a->s, "tanh") == 0) {
            const double c = sqrt(2.0 / M_PI);
            for (int64_t i = 0; i < size; i++)
                y[i] = 0.5 * x[i] * (1.0 + tanh(c * (x[i] + 0.044715 * x[i] * x[i] * x[i])));
        } else {
            for (int64_t i = 0; i < size; i++)
                y[i] = 0.5 * x[i] * (1.0 + erf(x[i] / M_SQRT2));
        }
        break;
    }
    default:
        if (x != y)
            memmove(y, x, (size_t)size * sizeof *y);
        break;
    }
    return 0;
}

/* ---- Clip: bounds as attributes before opset 11, optional scalar inputs from 11 ---- */

int nn_shape_clip(nn_graph *g, int k, err *e)
{
    for (int i = 1; i <= 2; i++) {
        const nn_tensor *t = nn_op_in(g, k, i);
        if (t && t->size != 1)
            return nn_op_fail(g, k, e, ERR_SHAPE, "bound '%s' must be a scalar", t->name);
    }
    return nn_shape_unary(g, k, e);
}

int nn_eval_clip(const nn_graph *g, int k, double *const *v, err *e)
{
    (void)e;
    const nn_node *n = &g->nodes[k];
    /* attributes before opset 11, optional inputs from 11 */
    double lo = nn_attr_float(n, "min", -INFINITY), hi = nn_attr_float(n, "max", INFINITY);
    int tl = nn_op_in_id(g, k, 1), th = nn_op_in_id(g, k, 2);
    if (tl >= 0)
        lo = v[tl] ? v[tl][0] : (double)g->tensors[tl].idata[0];
    if (th >= 0)
        hi = v[th] ? v[th][0] : (double)g->tensors[th].idata[0];
    const double *x = v[n->in[0]];
    double *y = v[n->out[0]];
    int64_t size = g->tensors[n->out[0]].size;
    for (int64_t i = 0; i < size; i++) {
        double t = x[i] < lo ? lo : x[i];
        y[i] = t > hi ? hi : t;
    }
    return 0;
}

/* ---- Softmax: before opset 13 the input is coerced to 2-D at axis (default 1);
 * from 13 it runs along one axis (default -1). Max-subtracted for stability. ---- */

static int softmax_layout(const nn_graph *g, int k, int64_t *outer, int64_t *len, int64_t *inner,
                          err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    int modern = g->opset >= 13;
    int64_t axis = nn_attr_int(&g->nodes[k], "axis", modern ? -1 : 1);
    int a;
    if (x->rank == 0) {
        *outer = *len = *inner = 1;
        return 0;
    }
    if (!modern && axis == x->rank) { /* coercion allows axis == rank: rows of 1 */
        *outer = x->size;
        *len = *inner = 1;
        return 0;
    }
    int rc = nn_op_axis(g, k, axis, x->rank, &a, e);
    if (rc)
        return rc;
    *outer = nn_prod(x->dims, 0, a);
    *len = modern ? x->dims[a] : nn_prod(x->dims, a, x->rank);
    *inner = modern ? nn_prod(x->dims, a + 1, x->rank) : 1;
    return 0;
}

int nn_shape_softmax(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    int64_t o, l, i;
    int rc = softmax_layout(g, k, &o, &l, &i, e);
    return rc ? rc : nn_op_set_out(g, k, 0, x->dtype, x->rank, x->dims, e);
}

int nn_eval_softmax(const nn_graph *g, int k, double *const *v, err *e)
{
    int64_t outer, len, inner;
    int rc = softmax_layout(g, k, &outer, &len, &inner, e);
    if (rc)
        return rc;
    const nn_node *n = &g->nodes[k];
    const double *x = v[n->in[0]];
    double *y = v[n->out[0]];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const double *px = x + o * len * inner + i;
            double *py = y + o * len * inner + i;
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < len; j++)
                m = px[j * inner] > m ? px[j * inner] : m;
            for (int64_t j = 0; j < len; j++) {
                py[j * inner] = exp(px[j * inner] - m);
                s += py[j * inner];
            }
            for (int64_t j = 0; j < len; j++)
                py[j * inner] /= s;
        }
    return 0;
}

/* ---- Cast: to float (1) or int64 (7); float to int truncates toward zero ---- */

int nn_shape_cast(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    if (!x)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs an input");
    int64_t to = nn_attr_int(&g->nodes[k], "to", 0);
    if (to != NN_FLOAT && to != NN_INT64 && to != 11 /* double: kept as float */)
        return nn_op_fail(g, k, e, ERR_UNSUP, "cast to type %lld not supported", (long long)to);
    return nn_op_set_out(g, k, 0, to == NN_INT64 ? NN_INT64 : NN_FLOAT, x->rank, x->dims, e);
}

int nn_eval_cast(const nn_graph *g, int k, double *const *v, err *e)
{
    (void)e;
    const nn_node *n = &g->nodes[k];
    const double *x = v[n->in[0]];
    double *y = v[n->out[0]];
    const nn_tensor *to = &g->tensors[n->out[0]];
    const nn_tensor *ti = nn_op_in(g, k, 0);
    for (int64_t i = 0; i < to->size; i++) {
        if (to->dtype == NN_INT64)
            y[i] = trunc(x[i]);
        else if (ti->dtype == NN_INT64)
            y[i] = (double)(float)x[i];
        else
            y[i] = x[i];
    }
    return 0;
}
