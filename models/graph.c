/* graph.c: building a network graph (tensors, nodes, attributes).
 * Tensor names are looked up through a small open-addressing hash table so that
 * loading stays linear in the file size even for hostile inputs. */
#include "nn.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int cap;     /* power of two */
    int *slot;   /* tensor index or -1 */
} name_index;

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static char *dup_str(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int index_grow(nn_graph *g)
{
    name_index *ix = g->index;
    int cap = ix->cap ? ix->cap * 2 : 64;
    int *slot = malloc((size_t)cap * sizeof *slot);
    if (!slot)
        return -1;
    for (int i = 0; i < cap; i++)
        slot[i] = -1;
    for (int t = 0; t < g->n_tensors; t++) {
        uint64_t h = hash_name(g->tensors[t].name) & (uint64_t)(cap - 1);
        while (slot[h] >= 0)
            h = (h + 1) & (uint64_t)(cap - 1);
        slot[h] = t;
    }
    free(ix->slot);
    ix->slot = slot;
    ix->cap = cap;
    return 0;
}

nn_graph *nn_graph_new(const char *source)
{
    nn_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->index = calloc(1, sizeof(name_index));
    g->source = dup_str(source ? source : "<memory>");
    g->producer_name = dup_str("");
    if (!g->index || !g->source || !g->producer_name || index_grow(g) != 0) {
        nn_graph_free(g);
        return NULL;
    }
    g->input = g->output = -1;
    return g;
}

static void free_attr(nn_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->ints);
    free(a->floats);
}

void nn_graph_free(nn_graph *g)
{
    if (!g)
        return;
    for (int t = 0; t < g->n_tensors; t++) {
        free(g->tensors[t].name);
        free(g->tensors[t].data);
        free(g->tensors[t].idata);
    }
    for (int k = 0; k < g->n_nodes; k++) {
        nn_node *n = &g->nodes[k];
        free(n->op_type);
        free(n->name);
        free(n->in);
        free(n->out);
        for (int a = 0; a < n->n_attr; a++)
            free_attr(&n->attr[a]);
        free(n->attr);
    }
    free(g->tensors);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->source);
    free(g->producer_name);
    if (g->index)
        free(((name_index *)g->index)->slot);
    free(g->index);
    free(g);
}

int nn_graph_find(const nn_graph *g, const char *name)
{
    const name_index *ix = g->index;
    uint64_t h = hash_name(name) & (uint64_t)(ix->cap - 1);
    while (ix->slot[h] >= 0) {
        if (strcmp(g->tensors[ix->slot[h]].name, name) == 0)
            return ix->slot[h];
        h = (h + 1) & (uint64_t)(ix->cap - 1);
    }
    return -1;
}

int nn_graph_tensor(nn_graph *g, const char *name, err *e)
{
    int t = nn_graph_find(g, name);
    if (t >= 0)
        return t;
    if (g->n_tensors >= 4 * NN_MAX_NODES)
        return err_set(e, ERR_NOMEM, "%s: more than %d tensors", g->source, 4 * NN_MAX_NODES), -1;
    if (g->n_tensors == g->cap_tensors) {
        int cap = g->cap_tensors ? 2 * g->cap_tensors : 32;
        nn_tensor *nt = realloc(g->tensors, (size_t)cap * sizeof *nt);
        if (!nt)
            return err_set(e, ERR_NOMEM, "%s: out of memory", g->source), -1;
        g->tensors = nt;
        g->cap_tensors = cap;
    }
    name_index *ix = g->index;
    if (2 * (g->n_tensors + 1) > ix->cap && index_grow(g) != 0)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source), -1;
    nn_tensor *ts = &g->tensors[g->n_tensors];
    memset(ts, 0, sizeof *ts);
    ts->name = dup_str(name);
    if (!ts->name)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source), -1;
    ts->dtype = NN_FLOAT;
    ts->rank = -1;
    ts->producer = -1;
    t = g->n_tensors++;
    uint64_t h = hash_name(ts->name) & (uint64_t)(ix->cap - 1);
    while (ix->slot[h] >= 0)
        h = (h + 1) & (uint64_t)(ix->cap - 1);
    ix->slot[h] = t;
    return t;
}

int nn_tensor_set_shape(nn_graph *g, int t, int rank, const int64_t *dims, err *e)
{
    if (t < 0 || t >= g->n_tensors)
        return err_set(e, ERR_ARG, "%s: bad tensor index %d", g->source, t);
    nn_tensor *ts = &g->tensors[t];
    if (rank < 0 || rank > NN_MAX_RANK)
        return err_set(e, ERR_UNSUP, "%s: tensor '%s': rank %d not supported (max %d)",
                       g->source, ts->name, rank, NN_MAX_RANK);
    int64_t size = 1;
    for (int i = 0; i < rank; i++) {
        int64_t d = dims[i];
        if (d >= 0 && (d > NN_MAX_ELEMS || (d > 0 && size > NN_MAX_ELEMS / d)))
            return err_set(e, ERR_NOMEM, "%s: tensor '%s': more than %lld elements",
                           g->source, ts->name, (long long)NN_MAX_ELEMS);
        ts->dims[i] = d;
        size *= d < 0 ? 1 : d;
    }
    ts->rank = rank;
    ts->size = size;
    return 0;
}

static int check_const(nn_graph *g, int t, int64_t n, err *e)
{
    if (t < 0 || t >= g->n_tensors)
        return err_set(e, ERR_ARG, "%s: bad tensor index %d", g->source, t);
    nn_tensor *ts = &g->tensors[t];
    if (ts->rank < 0)
        return err_set(e, ERR_ARG, "%s: tensor '%s': constant without a shape", g->source, ts->name);
    if (n != ts->size)
        return err_set(e, ERR_SHAPE, "%s: tensor '%s': %lld values for shape of size %lld",
                       g->source, ts->name, (long long)n, (long long)ts->size);
    free(ts->data);
    free(ts->idata);
    ts->data = NULL;
    ts->idata = NULL;
    return 0;
}

int nn_tensor_set_float(nn_graph *g, int t, const double *v, int64_t n, err *e)
{
    int rc = check_const(g, t, n, e);
    if (rc)
        return rc;
    nn_tensor *ts = &g->tensors[t];
    ts->data = malloc((size_t)(n ? n : 1) * sizeof(double));
    if (!ts->data)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    if (n)
        memcpy(ts->data, v, (size_t)n * sizeof(double));
    ts->dtype = NN_FLOAT;
    return 0;
}

int nn_tensor_set_int(nn_graph *g, int t, const int64_t *v, int64_t n, err *e)
{
    int rc = check_const(g, t, n, e);
    if (rc)
        return rc;
    nn_tensor *ts = &g->tensors[t];
    ts->idata = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!ts->idata)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    if (n)
        memcpy(ts->idata, v, (size_t)n * sizeof(int64_t));
    ts->dtype = NN_INT64;
    return 0;
}

int nn_graph_add_node(nn_graph *g, const char *op_type, const char *name,
                      int n_in, const int *in, int n_out, const int *out, err *e)
{
    if (g->n_nodes >= NN_MAX_NODES)
        return err_set(e, ERR_NOMEM, "%s: more than %d nodes", g->source, NN_MAX_NODES);
    if (n_in < 0 || n_out < 0 || n_in > 1024 || n_out > 1024)
        return err_set(e, ERR_PARSE, "%s: node %d: bad input/output count", g->source, g->n_nodes);
    for (int i = 0; i < n_in; i++)
        if (in[i] < -1 || in[i] >= g->n_tensors)
            return err_set(e, ERR_ARG, "%s: node %d: bad input tensor", g->source, g->n_nodes);
    for (int i = 0; i < n_out; i++)
        if (out[i] < 0 || out[i] >= g->n_tensors)
            return err_set(e, ERR_ARG, "%s: node %d: bad output tensor", g->source, g->n_nodes);
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 16;
        nn_node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn)
            return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    nn_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op_type = dup_str(op_type);
    n->name = dup_str(name);
    n->in = malloc((size_t)(n_in ? n_in : 1) * sizeof(int));
    n->out = malloc((size_t)(n_out ? n_out : 1) * sizeof(int));
    if (!n->op_type || !n->name || !n->in || !n->out) {
        free(n->op_type); free(n->name); free(n->in); free(n->out);
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    }
    if (n_in)
        memcpy(n->in, in, (size_t)n_in * sizeof(int));
    if (n_out)
        memcpy(n->out, out, (size_t)n_out * sizeof(int));
    n->n_in = n_in;
    n->n_out = n_out;
    n->op = nn_op_from_name(n->op_type);
    return g->n_nodes++;
}

static nn_attr *new_attr(nn_graph *g, int k, const char *name, nn_attr_kind kind, err *e)
{
    if (k < 0 || k >= g->n_nodes) {
        err_set(e, ERR_ARG, "%s: bad node index %d", g->source, k);
        return NULL;
    }
    nn_node *n = &g->nodes[k];
    if (n->n_attr >= 256) {
        err_set(e, ERR_PARSE, "%s: node %d: too many attributes", g->source, k);
        return NULL;
    }
    nn_attr *na = realloc(n->attr, (size_t)(n->n_attr + 1) * sizeof *na);
    if (!na) {
        err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
        return NULL;
    }
    n->attr = na;
    nn_attr *a = &na[n->n_attr];
    memset(a, 0, sizeof *a);
    a->name = dup_str(name);
    if (!a->name) {
        err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
        return NULL;
    }
    a->kind = kind;
    a->tensor = -1;
    n->n_attr++;
    return a;
}

int nn_node_attr_int(nn_graph *g, int k, const char *name, int64_t v, err *e)
{
    nn_attr *a = new_attr(g, k, name, NN_ATTR_INT, e);
    if (!a)
        return e ? e->code : ERR_NOMEM;
    a->i = v;
    return 0;
}

int nn_node_attr_float(nn_graph *g, int k, const char *name, double v, err *e)
{
    nn_attr *a = new_attr(g, k, name, NN_ATTR_FLOAT, e);
    if (!a)
        return e ? e->code : ERR_NOMEM;
    a->f = v;
    return 0;
}

int nn_node_attr_string(nn_graph *g, int k, const char *name, const char *s, err *e)
{
    nn_attr *a = new_attr(g, k, name, NN_ATTR_STRING, e);
    if (!a)
        return e ? e->code : ERR_NOMEM;
    a->s = dup_str(s);
    return a->s ? 0 : err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
}

int nn_node_attr_ints(nn_graph *g, int k, const char *name, const int64_t *v, int64_t n, err *e)
{
    nn_attr *a = new_attr(g, k, name, NN_ATTR_INTS, e);
    if (!a)
        return e ? e->code : ERR_NOMEM;
    a->ints = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!a->ints)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    if (n)
        memcpy(a->ints, v, (size_t)n * sizeof *v);
    a->n = n;
    return 0;
}

int nn_node_attr_floats(nn_graph *g, int k, const char *name, const double *v, int64_t n, err *e)
{
    nn_attr *a = new_attr(g, k, name, NN_ATTR_FLOATS, e);
    if (!a)
        return e ? e->code : ERR_NOMEM;
    a->floats = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!a->floats)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    if (n)
        memcpy(a->floats, v, (size_t)n * sizeof *v);
    a->n = n;
    return 0;
}

int nn_node_attr_tensor(nn_graph *g, int k, const char *name, int tensor, err *e)
{
    if (tensor < 0 || tensor >= g->n_tensors)
        return err_set(e, ERR_ARG, "%s: node %d: bad attribute tensor", g->source, k);
    nn_attr *a = new_attr(g, k, name, NN_ATTR_TENSOR, e);
    if (!a)
        return e ? e->code : ERR_NOMEM;
    a->tensor = tensor;
    return 0;
}

static int push_index(int **arr, int *n, int t)
{
    int *na = realloc(*arr, (size_t)(*n + 1) * sizeof *na);
    if (!na)
        return -1;
    na[(*n)++] = t;
    *arr = na;
    return 0;
}

int nn_graph_add_input(nn_graph *g, int t, err *e)
{
    if (t < 0 || t >= g->n_tensors)
        return err_set(e, ERR_ARG, "%s: bad input tensor", g->source);
    return push_index(&g->inputs, &g->n_inputs, t) ? err_set(e, ERR_NOMEM, "%s: out of memory", g->source) : 0;
}

int nn_graph_add_output(nn_graph *g, int t, err *e)
{
    if (t < 0 || t >= g->n_tensors)
        return err_set(e, ERR_ARG, "%s: bad output tensor", g->source);
    return push_index(&g->outputs, &g->n_outputs, t) ? err_set(e, ERR_NOMEM, "%s: out of memory", g->source) : 0;
}

const nn_attr *nn_node_attr(const nn_node *n, const char *name)
{
    for (int a = 0; a < n->n_attr; a++)
        if (strcmp(n->attr[a].name, name) == 0)
            return &n->attr[a];
    return NULL;
}

int64_t nn_attr_int(const nn_node *n, const char *name, int64_t dflt)
{
    const nn_attr *a = nn_node_attr(n, name);
    return a && a->kind == NN_ATTR_INT ? a->i : dflt;
}

double nn_attr_float(const nn_node *n, const char *name, double dflt)
{
    const nn_attr *a = nn_node_attr(n, name);
    return a && a->kind == NN_ATTR_FLOAT ? a->f : dflt;
}

static const char *const op_names[NN_OP_COUNT] = {
    [NN_OP_UNKNOWN] = "?",
    [NN_OP_GEMM] = "Gemm", [NN_OP_MATMUL] = "MatMul", [NN_OP_ADD] = "Add",
    [NN_OP_SUB] = "Sub", [NN_OP_MUL] = "Mul", [NN_OP_DIV] = "Div", [NN_OP_NEG] = "Neg",
    [NN_OP_CONV] = "Conv", [NN_OP_CONVTRANSPOSE] = "ConvTranspose",
    [NN_OP_BATCHNORM] = "BatchNormalization", [NN_OP_FLATTEN] = "Flatten",
    [NN_OP_RESHAPE] = "Reshape", [NN_OP_IDENTITY] = "Identity", [NN_OP_DROPOUT] = "Dropout",
    [NN_OP_CONSTANT] = "Constant", [NN_OP_TRANSPOSE] = "Transpose",
    [NN_OP_SQUEEZE] = "Squeeze", [NN_OP_UNSQUEEZE] = "Unsqueeze", [NN_OP_CONCAT] = "Concat",
    [NN_OP_SLICE] = "Slice", [NN_OP_AVGPOOL] = "AveragePool",
    [NN_OP_GLOBALAVGPOOL] = "GlobalAveragePool", [NN_OP_REDUCESUM] = "ReduceSum",
    [NN_OP_REDUCEMEAN] = "ReduceMean", [NN_OP_SHAPE] = "Shape", [NN_OP_GATHER] = "Gather",
    [NN_OP_CAST] = "Cast", [NN_OP_RELU] = "Relu", [NN_OP_LEAKYRELU] = "LeakyRelu",
    [NN_OP_ABS] = "Abs", [NN_OP_CLIP] = "Clip", [NN_OP_MAXPOOL] = "MaxPool",
    [NN_OP_SIGMOID] = "Sigmoid", [NN_OP_TANH] = "Tanh", [NN_OP_EXP] = "Exp",
    [NN_OP_LOG] = "Log", [NN_OP_SIN] = "Sin", [NN_OP_COS] = "Cos", [NN_OP_ERF] = "Erf",
    [NN_OP_SOFTPLUS] = "Softplus", [NN_OP_SQRT] = "Sqrt", [NN_OP_RECIPROCAL] = "Reciprocal",
    [NN_OP_POW] = "Pow", [NN_OP_SOFTMAX] = "Softmax", [NN_OP_GELU] = "Gelu",
};

nn_op nn_op_from_name(const char *op_type)
{
    for (int op = 1; op < NN_OP_COUNT; op++)
        if (op_names[op] && strcmp(op_names[op], op_type) == 0)
            return (nn_op)op;
    return NN_OP_UNKNOWN;
}

const char *nn_op_name(nn_op op)
{
    return op >= 0 && op < NN_OP_COUNT && op_names[op] ? op_names[op] : "?";
}
