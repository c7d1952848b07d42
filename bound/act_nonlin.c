/* act_nonlin.c: the CROWN/IBP rule of every scalar nonlinearity other than
 * ReLU (Sigmoid, Tanh, Exp, Log, Sin, Cos, Erf, Softplus, Sqrt, Reciprocal,
 * Pow, Gelu in both forms, LeakyRelu, Abs), wrapping the per-neuron
 * enclosures and lines of nonlin.h, and the lowering of their ONNX nodes.
 *
 * Key idea: nonlin.h's lines are valid over the reals for the stored
 * coefficients, which is exactly the contract of bnd_act_rule.relax. Where it
 * has no finite line on a side (an infinite intercept: overflow) or no lines
 * at all (f undefined on part of [l, u]), that side becomes the constant
 * line of the neuron's interval (slope 0), itself sound; where even the
 * interval is infinite the line is infinite and CROWN's result for the
 * affected rows becomes -inf (crown.c turns NaN into -inf). */
#include "internal.h"

#include <math.h>
#include <string.h>

#include "nonlin.h"

/* Range of f over all reals, for inputs nonlin.h rejects (infinite bounds). */
static void global_range(int kind, double *lo, double *hi)
{
    *lo = -INFINITY, *hi = INFINITY;
    switch (kind) {
    case BND_NL_SIGMOID: *lo = 0, *hi = 1; break;
    case BND_NL_TANH: case BND_NL_ERF: case BND_NL_SIN: case BND_NL_COS: *lo = -1, *hi = 1; break;
    case BND_NL_EXP: case BND_NL_SOFTPLUS: case BND_NL_SQRT: case BND_NL_ABS: *lo = 0; break;
    default: break;
    }
}

static void one_interval(int kind, double param, double l, double u, double *lo, double *hi)
{
    if (bnd_nl_interval((bnd_nl_kind)kind, param, l, u, lo, hi) != 0)
        global_range(kind, lo, hi);
}

static void nl_interval(int kind, double param, int64_t n, const double *l, const double *u,
                        double *lo, double *hi)
{
    for (int64_t i = 0; i < n; i++)
        one_interval(kind, param, l[i], u[i], &lo[i], &hi[i]);
}

static void nl_relax(int kind, double param, int64_t n, const double *l, const double *u,
                     double *lw, double *lb, double *uw, double *ub)
{
    bnd_nl_relax_n((bnd_nl_kind)kind, param, n, l, u, NULL, NULL, lw, lb, uw, ub);
    for (int64_t i = 0; i < n; i++) {
        int bad_lo = !isfinite(lw[i]) || !isfinite(lb[i]);
        int bad_up = !isfinite(uw[i]) || !isfinite(ub[i]);
        if (!bad_lo && !bad_up)
            continue;
        double fl, fu;
        one_interval(kind, param, l[i], u[i], &fl, &fu);
        if (bad_lo)
            lw[i] = 0, lb[i] = fl;
        if (bad_up)
            uw[i] = 0, ub[i] = fu;
    }
}

static int smooth_unstable(double l, double u)
{
    return l < u;
}

static int kink_unstable(double l, double u)
{
    return l < 0 && u > 0;
}

#define NL_RULE(id, kind, unstable)                                                        \
    static void id##_interval(double p, int64_t n, const double *l, const double *u,      \
                              double *lo, double *hi)                                      \
    {                                                                                      \
        nl_interval(kind, p, n, l, u, lo, hi);                                             \
    }                                                                                      \
    static void id##_relax(double p, int64_t n, const double *l, const double *u,         \
                           double *lw, double *lb, double *uw, double *ub)                 \
    {                                                                                      \
        nl_relax(kind, p, n, l, u, lw, lb, uw, ub);                                        \
    }                                                                                      \
    static const bnd_act_rule id##_rule = {#id, id##_interval, id##_relax, unstable, 0, kind};

NL_RULE(Sigmoid, BND_NL_SIGMOID, smooth_unstable)
NL_RULE(Tanh, BND_NL_TANH, smooth_unstable)
NL_RULE(Exp, BND_NL_EXP, smooth_unstable)
NL_RULE(Log, BND_NL_LOG, smooth_unstable)
NL_RULE(Sin, BND_NL_SIN, smooth_unstable)
NL_RULE(Cos, BND_NL_COS, smooth_unstable)
NL_RULE(Erf, BND_NL_ERF, smooth_unstable)
NL_RULE(Softplus, BND_NL_SOFTPLUS, smooth_unstable)
NL_RULE(Sqrt, BND_NL_SQRT, smooth_unstable)
NL_RULE(Reciprocal, BND_NL_RECIPROCAL, smooth_unstable)
NL_RULE(Pow, BND_NL_POW, smooth_unstable)
NL_RULE(Gelu, BND_NL_GELU, smooth_unstable)
NL_RULE(GeluTanh, BND_NL_GELU_TANH, smooth_unstable)
NL_RULE(LeakyRelu, BND_NL_LEAKYRELU, kink_unstable)
NL_RULE(Abs, BND_NL_ABS, kink_unstable)

const bnd_act_rule *bnd_nl_rule(int kind)
{
    switch (kind) {
    case BND_NL_SIGMOID: return &Sigmoid_rule;
    case BND_NL_TANH: return &Tanh_rule;
    case BND_NL_EXP: return &Exp_rule;
    case BND_NL_LOG: return &Log_rule;
    case BND_NL_SIN: return &Sin_rule;
    case BND_NL_COS: return &Cos_rule;
    case BND_NL_ERF: return &Erf_rule;
    case BND_NL_SOFTPLUS: return &Softplus_rule;
    case BND_NL_SQRT: return &Sqrt_rule;
    case BND_NL_RECIPROCAL: return &Reciprocal_rule;
    case BND_NL_POW: return &Pow_rule;
    case BND_NL_GELU: return &Gelu_rule;
    case BND_NL_GELU_TANH: return &GeluTanh_rule;
    case BND_NL_LEAKYRELU: return &LeakyRelu_rule;
    case BND_NL_ABS: return &Abs_rule;
    case BND_NL_RELU: return &bnd_relu_rule;
    default: return NULL;
    }
}

/* The node's nonlinearity: its kind and parameter from the op, attributes and
 * (Pow) the constant exponent. */
static int node_kind(bnd_lower_ctx *cx, int k, int *kind, double *param, err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    *param = 0;
    switch (nd->op) {
    case NN_OP_RELU: *kind = BND_NL_RELU; return 0;
    case NN_OP_SIGMOID: *kind = BND_NL_SIGMOID; return 0;
    case NN_OP_TANH: *kind = BND_NL_TANH; return 0;
    case NN_OP_EXP: *kind = BND_NL_EXP; return 0;
    case NN_OP_LOG: *kind = BND_NL_LOG; return 0;
    case NN_OP_SIN: *kind = BND_NL_SIN; return 0;
    case NN_OP_COS: *kind = BND_NL_COS; return 0;
    case NN_OP_ERF: *kind = BND_NL_ERF; return 0;
    case NN_OP_SOFTPLUS: *kind = BND_NL_SOFTPLUS; return 0;
    case NN_OP_SQRT: *kind = BND_NL_SQRT; return 0;
    case NN_OP_RECIPROCAL: *kind = BND_NL_RECIPROCAL; return 0;
    case NN_OP_ABS: *kind = BND_NL_ABS; return 0;
    case NN_OP_LEAKYRELU:
        *kind = BND_NL_LEAKYRELU;
        *param = nn_attr_float(nd, "alpha", (double)0.01f); /* as models/ evaluates it */
        if (!isfinite(*param))
            return bnd_node_err(cx, k, e, ERR_VALUE, "alpha is not finite");
        return 0;
    case NN_OP_GELU: {
        const nn_attr *a = nn_node_attr(nd, "approximate");
        *kind = a && a->kind == NN_ATTR_STRING && strcmp(a->s, "tanh") == 0 ? BND_NL_GELU_TANH
                                                                              : BND_NL_GELU;
        return 0;
    }
    case NN_OP_POW: {
        if (nd->n_in != 2 || nd->in[1] < 0 || cx->tmap[nd->in[1]] >= 0)
            return bnd_node_err(cx, k, e, ERR_UNSUP, "exponent must be a constant");
        const nn_tensor *t = &cx->g->tensors[nd->in[1]];
        if (t->size != 1)
            return bnd_node_err(cx, k, e, ERR_UNSUP, "exponent must be a scalar");
        double p = t->data ? t->data[0] : t->idata ? (double)t->idata[0] : NAN;
        if (p == 0.5) {
            *kind = BND_NL_SQRT;
            return 0;
        }
        if (!(p == floor(p) && fabs(p) <= BND_NL_POW_MAX))
            return bnd_node_err(cx, k, e, ERR_UNSUP, "exponent must be an integer in [-64, 64] or 0.5");
        *kind = BND_NL_POW;
        *param = p;
        return 0;
    }
    default:
        return bnd_node_err(cx, k, e, ERR_UNSUP, "no bound rule yet");
    }
}

int bnd_lower_nonlin(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    int kind;
    double param;
    int rc = node_kind(cx, k, &kind, &param, e);
    if (rc)
        return rc;
    int x = cx->tmap[nd->in[0]];
    if (x < 0)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "constant input not folded");
    const nn_tensor *Y = &cx->g->tensors[nd->out[0]];
    if (Y->size != cx->net->layers[x].size)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "output size differs from input size");
    int li = bnd_add_act_layer(cx, k, x, bnd_nl_rule(kind), param, e);
    if (li < 0)
        return li;
    cx->tmap[nd->out[0]] = li;
    return 0;
}
