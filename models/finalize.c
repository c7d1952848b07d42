/* finalize.c: turn a raw graph (as a loader built it) into the form every other
 * part relies on: ops resolved, Constant nodes turned into constant tensors,
 * one data input and one output, nodes in topological order (Kahn's algorithm,
 * linear time, with cycle, dangling-input and double-producer errors naming the
 * tensor), every shape inferred and checked against the op's rules, nodes with
 * all-constant inputs folded into constants (Shape always folds since shapes are
 * static), dead nodes dropped, float constants checked for NaN/Inf.
 * Running it again on a finalized graph changes nothing. */
#include "ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_const(const nn_tensor *t)
{
    return t->data || t->idata;
}

static void free_node(nn_node *n)
{
    free(n->op_type);
    free(n->name);
    free(n->in);
    free(n->out);
    for (int a = 0; a < n->n_attr; a++) {
        free(n->attr[a].name);
        free(n->attr[a].s);
        free(n->attr[a].ints);
        free(n->attr[a].floats);
    }
    free(n->attr);
}

/* Keep the nodes with keep[k] != 0, in order; free the others. */
static void compact_nodes(nn_graph *g, const char *keep)
{
    int m = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        if (keep[k])
            g->nodes[m++] = g->nodes[k];
        else
            free_node(&g->nodes[k]);
    }
    g->n_nodes = m;
}

/* ---- Constant nodes ---- */

static int constant_to_tensor(nn_graph *g, int k, err *e)
{
    nn_node *n = &g->nodes[k];
    if (n->n_out != 1 || n->n_attr != 1)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs one output and one value attribute");
    int t = n->out[0];
    nn_tensor *ts = &g->tensors[t];
    if (is_const(ts))
        return nn_op_fail(g, k, e, ERR_PARSE, "tensor '%s' produced twice", ts->name);
    const nn_attr *a = &n->attr[0];
    int rc;
    if (!strcmp(a->name, "value") && a->kind == NN_ATTR_TENSOR) {
        const nn_tensor *src = &g->tensors[a->tensor];
        if (!is_const(src) || src->rank < 0)
            return nn_op_fail(g, k, e, ERR_PARSE, "value is not a constant tensor");
        if (a->tensor == t)
            return 0;
        int64_t dims[NN_MAX_RANK];
        memcpy(dims, src->dims, sizeof dims);
        if ((rc = nn_tensor_set_shape(g, t, src->rank, dims, e)))
            return rc;
        src = &g->tensors[a->tensor];
        return src->data ? nn_tensor_set_float(g, t, src->data, src->size, e)
                         : nn_tensor_set_int(g, t, src->idata, src->size, e);
    }
    if (!strcmp(a->name, "value_float") && a->kind == NN_ATTR_FLOAT) {
        if ((rc = nn_tensor_set_shape(g, t, 0, NULL, e)))
            return rc;
        return nn_tensor_set_float(g, t, &a->f, 1, e);
    }
    if (!strcmp(a->name, "value_int") && a->kind == NN_ATTR_INT) {
        if ((rc = nn_tensor_set_shape(g, t, 0, NULL, e)))
            return rc;
        return nn_tensor_set_int(g, t, &a->i, 1, e);
    }
    if (!strcmp(a->name, "value_floats") && a->kind == NN_ATTR_FLOATS) {
        if ((rc = nn_tensor_set_shape(g, t, 1, &a->n, e)))
            return rc;
        return nn_tensor_set_float(g, t, a->floats, a->n, e);
    }
    if (!strcmp(a->name, "value_ints") && a->kind == NN_ATTR_INTS) {
        if ((rc = nn_tensor_set_shape(g, t, 1, &a->n, e)))
            return rc;
        return nn_tensor_set_int(g, t, a->ints, a->n, e);
    }
    return nn_op_fail(g, k, e, ERR_UNSUP, "attribute '%s' not supported", a->name);
}

static int fold_constant_nodes(nn_graph *g, err *e)
{
    int any = 0;
    for (int k = 0; k < g->n_nodes; k++)
        any |= g->nodes[k].op == NN_OP_CONSTANT;
    if (!any)
        return 0;
    char *keep = malloc((size_t)g->n_nodes + 1);
    if (!keep)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    for (int k = 0; k < g->n_nodes; k++) {
        keep[k] = g->nodes[k].op != NN_OP_CONSTANT;
        int rc = keep[k] ? 0 : constant_to_tensor(g, k, e);
        if (rc) {
            free(keep);
            return rc;
        }
    }
    compact_nodes(g, keep);
    free(keep);
    return 0;
}

/* ---- inputs, outputs, NaN ---- */

static int check_finite(const nn_graph *g, err *e)
{
    for (int t = 0; t < g->n_tensors; t++) {
        const nn_tensor *ts = &g->tensors[t];
        if (!ts->data)
            continue;
        for (int64_t i = 0; i < ts->size; i++)
            if (!isfinite(ts->data[i]))
                return err_set(e, ERR_VALUE, "%s: initializer '%s': %s at index %lld", g->source,
                               ts->name, isnan(ts->data[i]) ? "NaN" : "Inf", (long long)i);
    }
    return 0;
}

static int find_io(nn_graph *g, err *e)
{
    g->input = -1;
    for (int i = 0; i < g->n_inputs; i++) {
        int t = g->inputs[i];
        if (is_const(&g->tensors[t]) || t == g->input)
            continue;
        if (g->input >= 0)
            return err_set(e, ERR_UNSUP, "%s: two data inputs '%s' and '%s' (one supported)",
                           g->source, g->tensors[g->input].name, g->tensors[t].name);
        g->input = t;
    }
    if (g->input < 0)
        return err_set(e, ERR_PARSE, "%s: no data input (every graph input is an initializer)",
                       g->source);
    if (g->n_outputs < 1)
        return err_set(e, ERR_PARSE, "%s: graph has no output", g->source);
    if (g->n_outputs > 1)
        return err_set(e, ERR_UNSUP, "%s: %d graph outputs (one supported)", g->source,
                       g->n_outputs);
    g->output = g->outputs[0];
    nn_tensor *x = &g->tensors[g->input];
    if (x->rank < 0)
        return err_set(e, ERR_PARSE, "%s: input '%s' has no declared shape", g->source, x->name);
    int64_t dims[NN_MAX_RANK];
    for (int d = 0; d < x->rank; d++)
        dims[d] = x->dims[d] < 0 ? 1 : x->dims[d]; /* symbolic batch: 1 */
    int rc = nn_tensor_set_shape(g, g->input, x->rank, dims, e);
    if (!rc && x->size == 0) /* nothing to verify, and eval/bound assume >= 1 */
        rc = err_set(e, ERR_SHAPE, "%s: input '%s' has no elements (a dimension is 0)",
                     g->source, x->name);
    return rc;
}

/* ---- topological order ---- */

typedef struct {
    int *use_start, *use_node; /* CSR: consumers of each tensor */
    int *indeg, *queue;
} topo_work;

static void topo_free(topo_work *w)
{
    free(w->use_start);
    free(w->use_node);
    free(w->indeg);
    free(w->queue);
}

static int topo_sort(nn_graph *g, int *uses, err *e)
{
    int nt = g->n_tensors, nn = g->n_nodes;
    for (int t = 0; t < nt; t++) {
        g->tensors[t].producer = -1;
        uses[t] = 0;
    }
    for (int k = 0; k < nn; k++) {
        const nn_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_out; i++) {
            nn_tensor *ts = &g->tensors[n->out[i]];
            if (ts->producer >= 0)
                return nn_op_fail(g, k, e, ERR_PARSE, "tensor '%s' also produced by node %d",
                                  ts->name, ts->producer);
            if (is_const(ts) || n->out[i] == g->input)
                return nn_op_fail(g, k, e, ERR_PARSE, "output '%s' is an initializer or the input",
                                  ts->name);
            ts->producer = k;
        }
    }
    int64_t n_edges = 0;
    for (int k = 0; k < nn; k++) {
        const nn_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_in; i++) {
            int t = n->in[i];
            if (t < 0)
                continue;
            const nn_tensor *ts = &g->tensors[t];
            if (ts->producer < 0 && !is_const(ts) && t != g->input)
                return nn_op_fail(g, k, e, ERR_PARSE,
                                  "input '%s' is never produced (not an initializer nor the input)",
                                  ts->name);
            uses[t]++;
            n_edges++;
        }
    }
    const nn_tensor *out = &g->tensors[g->output];
    if (out->producer < 0 && !is_const(out) && g->output != g->input)
        return err_set(e, ERR_PARSE, "%s: output '%s' is never produced", g->source, out->name);
    /* Already in order (as ONNX requires): keep the file's order. */
    int in_order = 1;
    for (int k = 0; k < nn && in_order; k++)
        for (int i = 0; i < g->nodes[k].n_in && in_order; i++) {
            int t = g->nodes[k].in[i];
            in_order = t < 0 || g->tensors[t].producer < k;
        }
    if (in_order)
        return 0;
    topo_work w = {0};
    w.use_start = calloc((size_t)nt + 1, sizeof(int));
    w.use_node = malloc((size_t)(n_edges ? n_edges : 1) * sizeof(int));
    w.indeg = calloc((size_t)(nn ? nn : 1), sizeof(int));
    w.queue = malloc((size_t)(nn ? nn : 1) * sizeof(int));
    if (!w.use_start || !w.use_node || !w.indeg || !w.queue) {
        topo_free(&w);
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    }
    for (int t = 0; t < nt; t++)
        w.use_start[t + 1] = w.use_start[t] + uses[t];
    int *cursor = malloc((size_t)(nt ? nt : 1) * sizeof(int));
    if (!cursor) {
        topo_free(&w);
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    }
    memcpy(cursor, w.use_start, (size_t)nt * sizeof(int));
    for (int k = 0; k < nn; k++) {
        const nn_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_in; i++) {
            int t = n->in[i];
            if (t < 0)
                continue;
            w.use_node[cursor[t]++] = k;
            if (g->tensors[t].producer >= 0)
                w.indeg[k]++;
        }
    }
    free(cursor);
    int head = 0, tail = 0;
    for (int k = 0; k < nn; k++)
        if (w.indeg[k] == 0)
            w.queue[tail++] = k;
    while (head < tail) {
        const nn_node *n = &g->nodes[w.queue[head++]];
        for (int i = 0; i < n->n_out; i++) {
            int t = n->out[i];
            for (int u = w.use_start[t]; u < w.use_start[t + 1]; u++)
                if (--w.indeg[w.use_node[u]] == 0)
                    w.queue[tail++] = w.use_node[u];
        }
    }
    if (tail < nn) {
        for (int k = 0; k < nn; k++) {
            if (w.indeg[k] == 0)
                continue;
            const nn_node *n = &g->nodes[k];
            for (int i = 0; i < n->n_in; i++) {
                int t = n->in[i];
                if (t >= 0 && g->tensors[t].producer >= 0 && w.indeg[g->tensors[t].producer] > 0) {
                    int rc = nn_op_fail(g, k, e, ERR_PARSE, "cycle through tensor '%s'",
                                        g->tensors[t].name);
                    topo_free(&w);
                    return rc;
                }
            }
        }
        topo_free(&w);
        return err_set(e, ERR_PARSE, "%s: cycle in the graph", g->source);
    }
    /* Permute the nodes into queue order. */
    nn_node *sorted = malloc((size_t)(nn ? nn : 1) * sizeof *sorted);
    if (!sorted) {
        topo_free(&w);
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    }
    for (int i = 0; i < nn; i++)
        sorted[i] = g->nodes[w.queue[i]];
    memcpy(g->nodes, sorted, (size_t)nn * sizeof *sorted);
    free(sorted);
    topo_free(&w);
    for (int k = 0; k < nn; k++)
        for (int i = 0; i < g->nodes[k].n_out; i++)
            g->tensors[g->nodes[k].out[i]].producer = k;
    return 0;
}

/* ---- shapes and folding ---- */

/* Evaluate node k, whose inputs are constants, and make its output a constant.
 * v is a zeroed table of n_tensors pointers, restored to zero on return. */
static int fold_node(nn_graph *g, int k, double **v, err *e)
{
    nn_node *n = &g->nodes[k];
    int rc = 0;
    for (int i = 0; i < n->n_in && !rc; i++) {
        int t = n->in[i];
        if (t < 0 || v[t])
            continue;
        const nn_tensor *ts = &g->tensors[t];
        if (!is_const(ts))
            continue; /* Shape reads only the dims */
        v[t] = malloc((size_t)(ts->size ? ts->size : 1) * sizeof(double));
        if (!v[t]) {
            rc = err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
            break;
        }
        for (int64_t j = 0; j < ts->size; j++)
            v[t][j] = ts->data ? ts->data[j] : (double)ts->idata[j];
    }
    nn_tensor *o = &g->tensors[n->out[0]];
    double *y = rc ? NULL : malloc((size_t)(o->size ? o->size : 1) * sizeof(double));
    if (!rc && !y)
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    if (!rc) {
        v[n->out[0]] = y;
        rc = nn_op_table[n->op].eval(g, k, v, e);
        v[n->out[0]] = NULL;
    }
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] >= 0) {
            free(v[n->in[i]]);
            v[n->in[i]] = NULL;
        }
    if (rc) {
        free(y);
        return rc;
    }
    if (o->dtype == NN_INT64) {
        int64_t *iy = malloc((size_t)(o->size ? o->size : 1) * sizeof *iy);
        if (!iy) {
            free(y);
            return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
        }
        for (int64_t j = 0; j < o->size; j++)
            iy[j] = y[j] >= 9.2e18 ? INT64_MAX : y[j] <= -9.2e18 ? INT64_MIN
                  : y[j] != y[j] ? 0 : (int64_t)y[j];
        free(y);
        o->idata = iy;
    } else {
        o->data = y;
    }
    return 0;
}

static int all_inputs_const(const nn_graph *g, const nn_node *n)
{
    for (int i = 0; i < n->n_in; i++)
        if (n->in[i] >= 0 && !is_const(&g->tensors[n->in[i]]))
            return 0;
    return 1;
}

static int infer_shapes(nn_graph *g, const int *uses, char *keep, err *e)
{
    double **v = calloc((size_t)(g->n_tensors ? g->n_tensors : 1), sizeof *v);
    if (!v)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    int rc = 0;
    for (int k = 0; k < g->n_nodes && !rc; k++) {
        nn_node *n = &g->nodes[k];
        keep[k] = 1;
        if (n->op == NN_OP_UNKNOWN || !nn_op_table[n->op].shape) {
            rc = nn_op_fail(g, k, e, ERR_UNSUP, "unsupported op");
            break;
        }
        if (n->n_out < 1) {
            rc = nn_op_fail(g, k, e, ERR_PARSE, "node has no output");
            break;
        }
        for (int i = 1; i < n->n_out; i++) {
            int t = n->out[i];
            int extra_ok = n->op == NN_OP_DROPOUT || n->op == NN_OP_BATCHNORM ||
                           n->op == NN_OP_MAXPOOL;
            if (uses[t] > 0 || t == g->output || !extra_ok) {
                rc = nn_op_fail(g, k, e, ERR_UNSUP, "output %d '%s' not supported", i,
                                g->tensors[t].name);
                break;
            }
        }
        for (int i = 0; i < n->n_in && !rc; i++)
            if (n->in[i] >= 0 && g->tensors[n->in[i]].rank < 0)
                rc = nn_op_fail(g, k, e, ERR_SHAPE, "input '%s' has no shape",
                                g->tensors[n->in[i]].name);
        /* Folded nodes see int64 constants as values; evaluated ones read them only
         * where the op takes integer parameters. */
        int all_const = n->op == NN_OP_SHAPE || (n->n_in > 0 && all_inputs_const(g, n));
        for (int i = 0; i < n->n_in && !rc && !all_const; i++) {
            const nn_tensor *ts = n->in[i] >= 0 ? &g->tensors[n->in[i]] : NULL;
            if (ts && ts->idata && !nn_op_int_input(n->op, i))
                rc = nn_op_fail(g, k, e, ERR_UNSUP, "int64 constant '%s' used as data",
                                ts->name);
        }
        if (rc || (rc = nn_op_table[n->op].shape(g, k, e)))
            break;
        if (all_const) {
            if ((rc = fold_node(g, k, v, e)))
                break;
            keep[k] = 0;
        }
    }
    free(v);
    return rc;
}

static int check_output_shape(const nn_graph *g, int rank, const int64_t *dims, err *e)
{
    const nn_tensor *o = &g->tensors[g->output];
    if (rank < 0)
        return 0;
    int ok = rank == o->rank;
    for (int d = 0; ok && d < rank; d++)
        ok = dims[d] < 0 || dims[d] == o->dims[d];
    if (ok)
        return 0;
    char s1[128];
    nn_tensor decl = *o;
    decl.rank = rank;
    memcpy(decl.dims, dims, sizeof decl.dims);
    char s2[128];
    return err_set(e, ERR_SHAPE, "%s: output '%s': declared shape %s, computed %s", g->source,
                   o->name, nn_shape_str(&decl, s2, sizeof s2), nn_shape_str(o, s1, sizeof s1));
}

/* Drop folded nodes and nodes whose outputs do not reach the graph output. */
static int drop_dead(nn_graph *g, char *keep, err *e)
{
    char *live = calloc((size_t)(g->n_tensors ? g->n_tensors : 1), 1);
    if (!live)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    live[g->output] = 1;
    for (int k = g->n_nodes - 1; k >= 0; k--) {
        const nn_node *n = &g->nodes[k];
        int needed = 0;
        for (int i = 0; i < n->n_out; i++)
            needed |= live[n->out[i]];
        keep[k] = keep[k] && needed;
        if (keep[k])
            for (int i = 0; i < n->n_in; i++)
                if (n->in[i] >= 0)
                    live[n->in[i]] = 1;
    }
    free(live);
    compact_nodes(g, keep);
    for (int t = 0; t < g->n_tensors; t++)
        g->tensors[t].producer = -1;
    for (int k = 0; k < g->n_nodes; k++)
        for (int i = 0; i < g->nodes[k].n_out; i++)
            g->tensors[g->nodes[k].out[i]].producer = k;
    return 0;
}

int nn_graph_finalize(nn_graph *g, err *e)
{
    if (!g)
        return err_set(e, ERR_ARG, "finalize: no graph");
    int rc;
    for (int k = 0; k < g->n_nodes; k++) {
        nn_node *n = &g->nodes[k];
        n->op = nn_op_from_name(n->op_type);
        if (n->op == NN_OP_UNKNOWN)
            return nn_op_fail(g, k, e, ERR_UNSUP, "unsupported op");
    }
    if ((rc = fold_constant_nodes(g, e)) || (rc = check_finite(g, e)) || (rc = find_io(g, e)))
        return rc;
    nn_tensor *out = &g->tensors[g->output];
    int decl_rank = out->rank;
    int64_t decl_dims[NN_MAX_RANK];
    memcpy(decl_dims, out->dims, sizeof decl_dims);
    int *uses = malloc((size_t)(g->n_tensors ? g->n_tensors : 1) * sizeof *uses);
    char *keep = malloc((size_t)g->n_nodes + 1);
    if (!uses || !keep) {
        free(uses);
        free(keep);
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    }
    g->finalized = 0;
    if (!(rc = topo_sort(g, uses, e)) && !(rc = infer_shapes(g, uses, keep, e)) &&
        !(rc = check_output_shape(g, decl_rank, decl_dims, e)))
        rc = drop_dead(g, keep, e);
    free(uses);
    free(keep);
    if (!rc && g->tensors[g->output].rank < 0)
        rc = err_set(e, ERR_SHAPE, "%s: output '%s' has no shape", g->source,
                     g->tensors[g->output].name);
    if (!rc && g->tensors[g->output].size == 0)
        rc = err_set(e, ERR_SHAPE, "%s: output '%s' has no elements", g->source,
                     g->tensors[g->output].name);
    if (!rc)
        g->finalized = 1;
    return rc;
}
