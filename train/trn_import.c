/* trn_import.c: a model file back into the trainer's layer list, for
 * `train --eval`: a chain of Conv (square kernel, equal strides and pads, no
 * groups or dilation), Gemm (y = x W^T + b, or transB = 0), Relu and Flatten,
 * optionally preceded by Sub/Div with per-channel constants (the input
 * normalisation). Anything else is rejected with the node named. */
#include "trn.h"

#include <stdlib.h>
#include <string.h>

static const double *const_of(const nn_graph *g, int t, int64_t n)
{
    if (t < 0 || t >= g->n_tensors || !g->tensors[t].data || g->tensors[t].size != n)
        return NULL;
    return g->tensors[t].data;
}

int trn_model_from_graph(const nn_graph *g, trn_model **out, err *e)
{
    *out = NULL;
    if (g->input < 0 || g->input >= g->n_tensors)
        return err_set(e, ERR_ARG, "%s: graph has no input", g->source);
    const nn_tensor *ti = &g->tensors[g->input];
    if (ti->rank != 4 || ti->dims[1] < 1 || ti->dims[1] > TRN_MAX_CH ||
        ti->dims[2] < 1 || ti->dims[3] < 1 || ti->dims[2] > 4096 || ti->dims[3] > 4096)
        return err_set(e, ERR_UNSUP, "%s: input must be [1,C,H,W] with C <= %d", g->source,
                       TRN_MAX_CH);
    trn_model *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    m->in_c = (int)ti->dims[1];
    m->in_h = (int)ti->dims[2];
    m->in_w = (int)ti->dims[3];
    for (int c = 0; c < TRN_MAX_CH; c++) {
        m->mean[c] = 0;
        m->std[c] = 1;
    }
    int C = m->in_c, H = m->in_h, W = m->in_w, rc = 0, seen_layer = 0;
    /* first pass: shapes and offsets */
    for (int k = 0; k < g->n_nodes && !rc; k++) {
        const nn_node *nd = &g->nodes[k];
        if (m->n_layers >= TRN_MAX_LAYERS) {
            rc = err_set(e, ERR_UNSUP, "%s: more than %d layers", g->source, TRN_MAX_LAYERS);
            break;
        }
        trn_layer *l = &m->layers[m->n_layers];
        memset(l, 0, sizeof *l);
        l->in_c = C;
        l->in_h = H;
        l->in_w = W;
        l->w_off = l->b_off = l->stat_off = -1;
        if ((nd->op == NN_OP_SUB || nd->op == NN_OP_DIV) && !seen_layer && nd->n_in == 2) {
            const double *v = const_of(g, nd->in[1], C);
            if (!v) {
                rc = err_set(e, ERR_UNSUP, "%s: node %d (%s): expected a per-channel constant",
                             g->source, k, nd->op_type);
                break;
            }
            for (int c = 0; c < C; c++) {
                if (nd->op == NN_OP_SUB)
                    m->mean[c] = (float)v[c];
                else
                    m->std[c] = (float)v[c];
            }
            continue;
        }
        seen_layer = 1;
        if (nd->op == NN_OP_RELU || nd->op == NN_OP_FLATTEN) {
            l->kind = nd->op == NN_OP_RELU ? TRN_RELU : TRN_FLATTEN;
            l->out_c = nd->op == NN_OP_RELU ? C : C * H * W;
            l->out_h = nd->op == NN_OP_RELU ? H : 1;
            l->out_w = nd->op == NN_OP_RELU ? W : 1;
        } else if ((nd->op == NN_OP_CONV || nd->op == NN_OP_GEMM) &&
                   (nd->n_in < 2 || nd->in[1] < 0 || nd->in[1] >= g->n_tensors)) {
            rc = err_set(e, ERR_UNSUP, "%s: node %d (%s): no weight input", g->source, k,
                         nd->op_type);
            break;
        } else if (nd->op == NN_OP_CONV) {
            const nn_tensor *tw = &g->tensors[nd->in[1]];
            if (tw->rank != 4 || tw->dims[1] != C || tw->dims[2] != tw->dims[3] || !tw->data) {
                rc = err_set(e, ERR_UNSUP, "%s: node %d (Conv): weight shape not supported",
                             g->source, k);
                break;
            }
            const nn_attr *st = nn_node_attr(nd, "strides"), *pd = nn_node_attr(nd, "pads");
            int s = st && st->n >= 1 ? (int)st->ints[0] : 1, p = pd && pd->n >= 1 ? (int)pd->ints[0] : 0;
            const nn_attr *dl = nn_node_attr(nd, "dilations");
            int dil = 1;
            for (int64_t q = 0; dl && q < dl->n; q++)
                dil &= dl->ints[q] == 1;
            if (!dil || nn_attr_int(nd, "group", 1) != 1 || (st && st->n == 2 && st->ints[1] != s) ||
                (pd && pd->n == 4 && (pd->ints[1] != p || pd->ints[2] != p || pd->ints[3] != p)) ||
                s < 1 || p < 0 || s > 64 || p > 64) {
                rc = err_set(e, ERR_UNSUP, "%s: node %d (Conv): attributes not supported",
                             g->source, k);
                break;
            }
            l->kind = TRN_CONV;
            l->k = (int)tw->dims[2];
            l->stride = s;
            l->pad = p;
            l->out_c = (int)tw->dims[0];
            if (H + 2 * p < l->k || W + 2 * p < l->k) {
                rc = err_set(e, ERR_SHAPE, "%s: node %d (Conv): kernel larger than input",
                             g->source, k);
                break;
            }
            l->out_h = (H + 2 * p - l->k) / s + 1;
            l->out_w = (W + 2 * p - l->k) / s + 1;
            l->n_w = tw->size;
            l->n_b = l->out_c;
        } else if (nd->op == NN_OP_GEMM) {
            const nn_tensor *tw = &g->tensors[nd->in[1]];
            int tb = (int)nn_attr_int(nd, "transB", 0);
            int64_t in = C * H * W;
            if (tw->rank != 2 || !tw->data || nn_attr_int(nd, "transA", 0) != 0 ||
                tw->dims[tb ? 1 : 0] != in) {
                rc = err_set(e, ERR_UNSUP, "%s: node %d (Gemm): weight shape not supported",
                             g->source, k);
                break;
            }
            l->kind = TRN_LINEAR;
            l->in_c = (int)in;
            l->in_h = l->in_w = 1;
            l->out_c = (int)tw->dims[tb ? 0 : 1];
            l->out_h = l->out_w = 1;
            l->n_w = tw->size;
            l->n_b = l->out_c;
        } else {
            rc = err_set(e, ERR_UNSUP, "%s: node %d (%s): not supported by the trainer's evaluator",
                         g->source, k, nd->op_type);
            break;
        }
        if (l->kind == TRN_CONV || l->kind == TRN_LINEAR) {
            l->w_off = m->n_params;
            l->b_off = l->w_off + l->n_w;
            m->n_params += l->n_w + l->n_b;
        }
        C = l->out_c;
        H = l->out_h;
        W = l->out_w;
        m->n_layers++;
    }
    if (!rc && (m->n_layers == 0 || m->layers[m->n_layers - 1].kind != TRN_LINEAR || H != 1 ||
                W != 1 || C < 2 || C > TRN_MAX_CLASSES))
        rc = err_set(e, ERR_UNSUP, "%s: the network must end in a Gemm with 2..%d outputs",
                     g->source, TRN_MAX_CLASSES);
    if (!rc) {
        m->n_classes = C;
        m->params = calloc((size_t)m->n_params + 1, sizeof(float));
        m->stats = calloc(1, sizeof(float));
        if (!m->params || !m->stats)
            rc = err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    }
    /* second pass: copy weights (Gemm with transB = 0 is transposed to [out x in]) */
    for (int k = 0, li = 0; !rc && k < g->n_nodes; k++) {
        const nn_node *nd = &g->nodes[k];
        if (nd->op != NN_OP_CONV && nd->op != NN_OP_GEMM && nd->op != NN_OP_RELU &&
            nd->op != NN_OP_FLATTEN)
            continue;
        trn_layer *l = &m->layers[li++];
        if (l->kind != TRN_CONV && l->kind != TRN_LINEAR)
            continue;
        const double *w = g->tensors[nd->in[1]].data;
        int tb = l->kind == TRN_CONV || nn_attr_int(nd, "transB", 0);
        for (int64_t o = 0; o < l->n_b; o++)
            for (int64_t i = 0, per = l->n_w / l->n_b; i < per; i++)
                m->params[l->w_off + o * per + i] =
                    (float)(tb ? w[o * per + i] : w[i * l->n_b + o]);
        const double *b = nd->n_in >= 3 ? const_of(g, nd->in[2], l->n_b) : NULL;
        for (int64_t o = 0; o < l->n_b; o++)
            m->params[l->b_off + o] = b ? (float)b[o] : 0.0f;
    }
    if (rc) {
        trn_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
