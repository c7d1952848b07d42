/* net.c: lowering a finalized nn_graph into a bound network (internal.h).
 * Nodes are visited in the graph's topological order; each computed tensor is
 * mapped to the layer producing its values. Shape-only ops (Reshape, Flatten,
 * Squeeze, Unsqueeze, Identity, Dropout) alias their input's layer since
 * flattening is row-major everywhere. Ops are registered in lower_table[]. */
#include "internal.h"

#include "../core/clock.h"

#include <stdlib.h>
#include <string.h>

static int lower_alias(bnd_lower_ctx *cx, int k, err *e);

/* Nonlinearities all go through bnd_lower_nonlin (act_nonlin.c), which picks
 * the rule (ReLU: relax.c; the others: act_nonlin.c over nonlin.h) and its
 * parameter; products of computed tensors through bnd_lower_product (MatMul /
 * Gemm of two computed tensors: affine.c hands them to product.c). Ops built
 * from these exactly: MaxPool and Clip from ReLUs (lower_max.c), Softmax from
 * Exp and Reciprocal (lower_softmax.c). */
static const struct {
    nn_op op;
    bnd_lower_fn fn;
} lower_table[] = {
    {NN_OP_GEMM, bnd_lower_gemm},          {NN_OP_MATMUL, bnd_lower_matmul},
    {NN_OP_ADD, bnd_lower_addsub},         {NN_OP_SUB, bnd_lower_addsub},
    {NN_OP_MUL, bnd_lower_product},        {NN_OP_DIV, bnd_lower_product},
    {NN_OP_NEG, bnd_lower_neg},            {NN_OP_BATCHNORM, bnd_lower_batchnorm},
    {NN_OP_CONV, bnd_lower_conv},          {NN_OP_AVGPOOL, bnd_lower_avgpool},
    {NN_OP_CONVTRANSPOSE, bnd_lower_convtranspose},
    {NN_OP_MAXPOOL, bnd_lower_maxpool},    {NN_OP_CLIP, bnd_lower_clip},
    {NN_OP_SOFTMAX, bnd_lower_softmax},
    {NN_OP_GLOBALAVGPOOL, bnd_lower_globalavgpool},
    {NN_OP_TRANSPOSE, bnd_lower_transpose}, {NN_OP_CONCAT, bnd_lower_concat},
    {NN_OP_SLICE, bnd_lower_slice},        {NN_OP_REDUCESUM, bnd_lower_reduce},
    {NN_OP_REDUCEMEAN, bnd_lower_reduce},
    {NN_OP_FLATTEN, lower_alias},          {NN_OP_RESHAPE, lower_alias},
    {NN_OP_SQUEEZE, lower_alias},          {NN_OP_UNSQUEEZE, lower_alias},
    {NN_OP_IDENTITY, lower_alias},         {NN_OP_DROPOUT, lower_alias},
    {NN_OP_RELU, bnd_lower_nonlin},        {NN_OP_SIGMOID, bnd_lower_nonlin},
    {NN_OP_TANH, bnd_lower_nonlin},        {NN_OP_EXP, bnd_lower_nonlin},
    {NN_OP_LOG, bnd_lower_nonlin},         {NN_OP_SIN, bnd_lower_nonlin},
    {NN_OP_COS, bnd_lower_nonlin},         {NN_OP_ERF, bnd_lower_nonlin},
    {NN_OP_SOFTPLUS, bnd_lower_nonlin},    {NN_OP_SQRT, bnd_lower_nonlin},
    {NN_OP_RECIPROCAL, bnd_lower_nonlin},  {NN_OP_POW, bnd_lower_nonlin},
    {NN_OP_GELU, bnd_lower_nonlin},        {NN_OP_LEAKYRELU, bnd_lower_nonlin},
    {NN_OP_ABS, bnd_lower_nonlin},
};

int bnd_lower_oom(bnd_lower_ctx *cx, err *e)
{
    return err_set(e, ERR_NOMEM, "%s: out of memory", cx->g->source);
}

int bnd_node_err(bnd_lower_ctx *cx, int k, err *e, int code, const char *what)
{
    const nn_node *nd = &cx->g->nodes[k];
    return err_set(e, code, "%s: node %d '%s' (%s): %s", cx->g->source, k, nd->name,
                   nd->op_type, what);
}

int bnd_add_layer(bnd_net *n, bnd_layer_kind kind, int node, int64_t size, int n_in, err *e)
{
    if (size <= 0 || size > NN_MAX_ELEMS)
        return err_set(e, ERR_SHAPE, "%s: node %d: bad layer size %lld", n->source, node,
                       (long long)size);
    if (n->n_layers == n->cap_layers) {
        int cap = n->cap_layers ? 2 * n->cap_layers : 16;
        bnd_layer *l = realloc(n->layers, (size_t)cap * sizeof *l);
        if (!l)
            return err_set(e, ERR_NOMEM, "%s: out of memory", n->source);
        n->layers = l;
        n->cap_layers = cap;
    }
    bnd_layer *L = &n->layers[n->n_layers];
    memset(L, 0, sizeof *L);
    L->kind = kind;
    L->node = node;
    L->size = size;
    L->n_in = n_in;
    L->in = calloc((size_t)(n_in ? n_in : 1), sizeof(int));
    L->lin = calloc((size_t)(n_in ? n_in : 1), sizeof(bnd_linop *));
    L->lo = malloc((size_t)size * sizeof(double));
    L->hi = malloc((size_t)size * sizeof(double));
    n->n_layers++; /* counted now so bnd_net_free releases partial layers */
    if (!L->in || !L->lin || !L->lo || !L->hi)
        return err_set(e, ERR_NOMEM, "%s: out of memory", n->source);
    return n->n_layers - 1;
}

int bnd_add_linear1(bnd_lower_ctx *cx, int k, int in_layer, bnd_linop *J, double *bias,
                    int coef_err, err *e)
{
    int li = bnd_add_layer(cx->net, BND_L_LINEAR, k, J->n_out, 1, e);
    if (li < 0) {
        bnd_lin_free(J);
        free(bias);
        return li;
    }
    bnd_layer *L = &cx->net->layers[li];
    L->in[0] = in_layer;
    L->lin[0] = J;
    L->bias = bias;
    L->coef_err = coef_err;
    cx->tmap[cx->g->nodes[k].out[0]] = li;
    return 0;
}

int bnd_add_linear(bnd_lower_ctx *cx, int k, int64_t size, int n_in, const int *in,
                   bnd_linop **J, double *bias, int coef_err, err *e)
{
    int li = bnd_add_layer(cx->net, BND_L_LINEAR, k, size, n_in, e);
    if (li < 0) {
        for (int j = 0; j < n_in; j++)
            bnd_lin_free(J[j]);
        free(bias);
        return li;
    }
    bnd_layer *L = &cx->net->layers[li];
    for (int j = 0; j < n_in; j++) {
        L->in[j] = in[j];
        L->lin[j] = J[j];
    }
    L->bias = bias;
    L->coef_err = coef_err;
    return li;
}

int64_t bnd_bcast_index(const nn_tensor *out, const nn_tensor *in, int64_t o)
{
    int64_t idx = 0, stride = 1;
    for (int a = out->rank - 1, b = in->rank - 1; b >= 0; a--, b--) {
        int64_t coord = o % out->dims[a];
        o /= out->dims[a];
        if (in->dims[b] != 1)
            idx += coord * stride;
        stride *= in->dims[b];
    }
    return idx;
}

int bnd_add_gather_layer(bnd_lower_ctx *cx, int k, int in_layer, int64_t n_out,
                         const int64_t *src, const double *scale, const double *bias,
                         int coef_err, err *e)
{
    bnd_net *net = cx->net;
    int li = bnd_add_layer(net, BND_L_LINEAR, k, n_out, 1, e);
    if (li < 0)
        return li;
    bnd_layer *L = &net->layers[li];
    L->in[0] = in_layer;
    L->coef_err = coef_err;
    int64_t nnz = 0;
    for (int64_t o = 0; o < n_out; o++)
        nnz += src[o] >= 0;
    bnd_linop *J = bnd_lin_csr_new(n_out, net->layers[in_layer].size, nnz);
    if (!J)
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    L->lin[0] = J;
    int64_t p = 0;
    for (int64_t o = 0; o < n_out; o++) {
        J->rowptr[o] = p;
        if (src[o] >= 0) {
            J->col[p] = src[o];
            J->val[p] = scale ? scale[o] : 1.0;
            p++;
        }
    }
    J->rowptr[n_out] = p;
    bnd_lin_csr_finish(J);
    if (bias) {
        L->bias = malloc((size_t)n_out * sizeof(double));
        if (!L->bias)
            return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
        memcpy(L->bias, bias, (size_t)n_out * sizeof(double));
    }
    cx->tmap[cx->g->nodes[k].out[0]] = li;
    return 0;
}

static int lower_alias(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    int x = nd->in[0];
    if (cx->tmap[x] < 0)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "constant input not folded");
    if (cx->g->tensors[nd->out[0]].size != cx->net->layers[cx->tmap[x]].size)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "output size differs from input size");
    cx->tmap[nd->out[0]] = cx->tmap[x];
    return 0;
}

/* A copy y = x of layer x (a LINEAR layer with the identity map), used when
 * x already feeds a different nonlinearity: each pre-activation layer has
 * one rule deciding which of its neurons need CROWN bounds. */
static int identity_copy(bnd_lower_ctx *cx, int k, int x, err *e)
{
    bnd_net *net = cx->net;
    int li = bnd_add_layer(net, BND_L_LINEAR, k, net->layers[x].size, 1, e);
    if (li >= 0)
        net->layers[li].in[0] = x;
    return li;
}

int bnd_add_act_layer(bnd_lower_ctx *cx, int k, int x, const bnd_act_rule *rule, double param,
                      err *e)
{
    bnd_net *net = cx->net;
    if (!rule)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "no bound rule yet");
    /* a pre-activation is never an ACT layer itself (Sin -> Relu): CROWN
     * refines a pre-activation before that layer's own relaxation exists,
     * so an ACT there was bounded through stale lines (unsound) */
    if (net->layers[x].kind == BND_L_ACT ||
        (net->layers[x].is_preact &&
         (net->layers[x].preact_rule != rule || net->layers[x].preact_param != param))) {
        x = identity_copy(cx, k, x, e);
        if (x < 0)
            return x;
    }
    int li = bnd_add_layer(net, BND_L_ACT, k, net->layers[x].size, 1, e);
    if (li < 0)
        return li;
    bnd_layer *L = &net->layers[li];
    L->in[0] = x;
    L->act = rule;
    L->act_param = param;
    int64_t s = L->size;
    L->lw = malloc((size_t)s * sizeof(double));
    L->lb = malloc((size_t)s * sizeof(double));
    L->uw = malloc((size_t)s * sizeof(double));
    L->ub = malloc((size_t)s * sizeof(double));
    L->rl = malloc((size_t)s * sizeof(double));
    L->ru = malloc((size_t)s * sizeof(double));
    if (!L->lw || !L->lb || !L->uw || !L->ub || !L->rl || !L->ru)
        return err_set(e, ERR_NOMEM, "%s: out of memory", net->source);
    net->layers[x].is_preact = 1;
    net->layers[x].preact_rule = rule;
    net->layers[x].preact_param = param;
    return li;
}

/* A layer is ibp_exact when it is the input, or one general linear map of an
 * ibp_exact layer whose path from the input has only injective one-entry
 * rows (x -> s·x[src] + b, each source used once): those keep the box a box,
 * so IBP of the next linear map is already the exact range (CROWN's backward
 * pass to the input would give the same bound). Such layers skip CROWN. */
static int injective_gather(const bnd_linop *J)
{
    return !J || (J->kind == BND_LIN_CSR && J->fan_in <= 1 && J->fan_out <= 1);
}

static void mark_ibp_exact(bnd_net *n)
{
    /* box_kept[i]: layer i's set of values is a box (the input through injective gathers) */
    char *box_kept = calloc((size_t)n->n_layers, 1);
    if (!box_kept)
        return; /* no marking: always correct, only slower */
    box_kept[0] = 1;
    n->layers[0].ibp_exact = 1;
    for (int i = 1; i < n->n_layers; i++) {
        bnd_layer *L = &n->layers[i];
        if (L->kind != BND_L_LINEAR || L->n_in != 1 || !box_kept[L->in[0]])
            continue;
        box_kept[i] = injective_gather(L->lin[0]);
        L->ibp_exact = 1;
    }
    free(box_kept);
}

static void free_layer(bnd_layer *L)
{
    for (int j = 0; j < L->n_in; j++)
        if (L->lin)
            bnd_lin_free(L->lin[j]);
    free(L->lin);
    free(L->in);
    free(L->bias);
    free(L->bias_err);
    free(L->lo);
    free(L->hi);
    free(L->lw);
    free(L->lb);
    free(L->uw);
    free(L->ub);
    free(L->rl);
    free(L->ru);
    free(L->prep);
    free(L->pl);
    free(L->pu);
    free(L->mz);
    free(L->errw);
}

void bnd_net_free(bnd_net *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n_layers; i++)
        free_layer(&n->layers[i]);
    free(n->layers);
    free(n->source);
    free(n);
}

int bnd_net_new(const nn_graph *g, bnd_net **out, err *e)
{
    *out = NULL;
    if (!g || !g->finalized || g->input < 0 || g->output < 0)
        return err_set(e, ERR_ARG, "%s: graph not finalized", g ? g->source : "bound");
    bnd_net *n = calloc(1, sizeof *n);
    int *tmap = malloc((size_t)(g->n_tensors ? g->n_tensors : 1) * sizeof(int));
    size_t sl = strlen(g->source) + 1;
    if (n)
        n->source = malloc(sl);
    if (!n || !tmap || !n->source) {
        free(tmap);
        bnd_net_free(n);
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    }
    memcpy(n->source, g->source, sl);
    n->crown_max_rows = 4096;
    int *tuses = calloc((size_t)(g->n_tensors ? g->n_tensors : 1), sizeof(int));
    if (!tuses) {
        free(tmap);
        bnd_net_free(n);
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    }
    for (int t = 0; t < g->n_tensors; t++)
        tmap[t] = -1;
    for (int k = 0; k < g->n_nodes; k++)
        for (int j = 0; j < g->nodes[k].n_in; j++)
            if (g->nodes[k].in[j] >= 0)
                tuses[g->nodes[k].in[j]]++;
    tuses[g->output]++;
    bnd_lower_ctx cx = {g, n, tmap, tuses};
    int rc = bnd_add_layer(n, BND_L_INPUT, -1, g->tensors[g->input].size, 0, e);
    if (rc >= 0) {
        tmap[g->input] = 0;
        rc = 0;
    }
    for (int k = 0; rc == 0 && k < g->n_nodes; k++) {
        const nn_node *nd = &g->nodes[k];
        int computed = 0;
        for (int j = 0; j < nd->n_in; j++)
            if (nd->in[j] >= 0 && tmap[nd->in[j]] >= 0)
                computed = 1;
        if (!computed)
            continue; /* a constant subgraph (normally folded by finalize) */
        if (nd->n_out < 1)
            continue;
        bnd_lower_fn fn = NULL;
        for (size_t t = 0; t < sizeof lower_table / sizeof lower_table[0]; t++)
            if (lower_table[t].op == nd->op)
                fn = lower_table[t].fn;
        int before = n->n_layers;
        if (!fn)
            rc = bnd_node_err(&cx, k, e, ERR_UNSUP, "no bound rule yet");
        else
            rc = fn(&cx, k, e);
        for (int i = before; rc == 0 && i < n->n_layers; i++)
            n->layers[i].out_tensor = nd->out[0];
    }
    if (rc == 0)
        mark_ibp_exact(n);
    if (rc == 0 && tmap[g->output] < 0)
        rc = err_set(e, ERR_UNSUP, "%s: the output does not depend on the input", g->source);
    if (rc == 0)
        n->out = tmap[g->output];
    free(tmap);
    free(tuses);
    if (rc != 0) {
        bnd_net_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

int64_t bnd_n_in(const bnd_net *n)
{
    return n->layers[0].size;
}

int64_t bnd_n_out(const bnd_net *n)
{
    return n->layers[n->out].size;
}

void bnd_set_crown_max_rows(bnd_net *n, int64_t rows)
{
    n->crown_max_rows = rows;
}

void bnd_set_tau_interm(bnd_net *n, int iters)
{
    n->tau_interm = iters;
}

void bnd_set_tau_stop(bnd_net *n, const double *d)
{
    n->tau_stop = d;
}

void bnd_set_deadline(bnd_net *n, double deadline)
{
    n->deadline = deadline;
}

int bnd_check_deadline(const bnd_net *net, err *e)
{
    if (!clock_expired(net->deadline))
        return 0;
    return err_set(e, ERR_TIMEOUT, "%s: time limit reached during a bound computation",
                   net->source);
}

void bnd_set_interm(bnd_net *n, bnd_interm mode)
{
    n->interm = mode;
}
