/* trn_export.c: the trained network as the project's IR (models/nn.h), with
 * each BatchNorm (eval mode: running statistics) folded into the Conv or Gemm
 * before it: W' = a W, b' = a (b - mean) + beta, a = gamma / sqrt(var + eps)
 * per output channel, rounded to float32. Input normalisation other than mean 0 / std 1 becomes
 * Sub and Div nodes in front (exact, unlike folding it into a padded conv). */
#include "trn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int const_tensor(nn_graph *g, const char *name, int rank, const int64_t *dims,
                        const double *v, int64_t n, err *e)
{
    int t = nn_graph_tensor(g, name, e);
    if (t < 0)
        return -1;
    if (nn_tensor_set_shape(g, t, rank, dims, e) || nn_tensor_set_float(g, t, v, n, e))
        return -1;
    return t;
}

int trn_model_to_graph(const trn_model *m, nn_graph **out, err *e)
{
    *out = NULL;
    nn_graph *g = nn_graph_new("trained-model");
    if (!g)
        return err_set(e, ERR_NOMEM, "export: out of memory");
    int rc = 0;
    double *wbuf = NULL, *bbuf = NULL;
    char name[64], prev[64] = "input";
    int64_t in_dims[4] = {1, m->in_c, m->in_h, m->in_w};
    int t_in = nn_graph_tensor(g, "input", e);
    if (t_in < 0 || nn_tensor_set_shape(g, t_in, 4, in_dims, e) || nn_graph_add_input(g, t_in, e))
        goto fail;
    int norm = 0;
    for (int c = 0; c < m->in_c; c++)
        norm |= m->mean[c] != 0.0f || m->std[c] != 1.0f;
    if (norm) {
        double mv[TRN_MAX_CH], sv[TRN_MAX_CH];
        int64_t cd[4] = {1, m->in_c, 1, 1};
        for (int c = 0; c < m->in_c; c++) {
            mv[c] = m->mean[c];
            sv[c] = m->std[c];
        }
        int tm = const_tensor(g, "norm_mean", 4, cd, mv, m->in_c, e);
        int ts = const_tensor(g, "norm_std", 4, cd, sv, m->in_c, e);
        int t1 = nn_graph_tensor(g, "centred", e), t2 = nn_graph_tensor(g, "normalised", e);
        if (tm < 0 || ts < 0 || t1 < 0 || t2 < 0)
            goto fail;
        int in1[2] = {t_in, tm}, in2[2] = {t1, ts};
        if (nn_graph_add_node(g, "Sub", "normalise_sub", 2, in1, 1, &t1, e) < 0 ||
            nn_graph_add_node(g, "Div", "normalise_div", 2, in2, 1, &t2, e) < 0)
            goto fail;
        snprintf(prev, sizeof prev, "normalised");
    }
    int64_t max_w = 1;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].n_w > max_w)
            max_w = m->layers[i].n_w;
    wbuf = malloc((size_t)max_w * sizeof *wbuf);
    bbuf = malloc((size_t)max_w * sizeof *bbuf);
    if (!wbuf || !bbuf) {
        rc = err_set(e, ERR_NOMEM, "export: out of memory");
        goto fail_rc;
    }
    for (int i = 0; i < m->n_layers; i++) {
        const trn_layer *l = &m->layers[i];
        if (l->kind == TRN_BN)
            continue; /* folded into the layer before */
        int t_prev = nn_graph_find(g, prev);
        snprintf(name, sizeof name, "%s%d", i == m->n_layers - 1 ? "output" : "t", i);
        if (i == m->n_layers - 1)
            snprintf(name, sizeof name, "output");
        int t_out = nn_graph_tensor(g, name, e);
        if (t_out < 0)
            goto fail;
        if (l->kind == TRN_RELU || l->kind == TRN_FLATTEN) {
            char nn_name[64];
            snprintf(nn_name, sizeof nn_name, "layer%d", i);
            int k = nn_graph_add_node(g, l->kind == TRN_RELU ? "Relu" : "Flatten", nn_name, 1,
                                      &t_prev, 1, &t_out, e);
            if (k < 0 || (l->kind == TRN_FLATTEN && nn_node_attr_int(g, k, "axis", 1, e)))
                goto fail;
            snprintf(prev, sizeof prev, "%s", name);
            continue;
        }
        /* conv or linear, with the following BN folded in */
        int64_t n_out = l->n_b, per = l->n_w / l->n_b;
        const float *W = m->params + l->w_off, *b = m->params + l->b_off;
        const trn_layer *bn = i + 1 < m->n_layers && m->layers[i + 1].kind == TRN_BN
                                  ? &m->layers[i + 1] : NULL;
        for (int64_t o = 0; o < n_out; o++) {
            double a = 1, shift = b[o];
            if (bn) {
                const float *gam = m->params + bn->w_off, *bet = m->params + bn->b_off;
                const float *rm = m->stats + bn->stat_off, *rv = rm + bn->in_c;
                a = gam[o] / sqrt((double)rv[o] + TRN_BN_EPS);
                shift = a * (b[o] - rm[o]) + bet[o];
            }
            /* rounded to float32, so the JSON and ONNX forms of the model are the same
             * network (ONNX stores float32) */
            for (int64_t k = 0; k < per; k++)
                wbuf[o * per + k] = (float)(a * W[o * per + k]);
            bbuf[o] = (float)shift;
        }
        char wn[64], bname[64], nn_name[64];
        snprintf(wn, sizeof wn, "layer%d.weight", i);
        snprintf(bname, sizeof bname, "layer%d.bias", i);
        snprintf(nn_name, sizeof nn_name, "layer%d", i);
        int64_t wd[4] = {n_out, l->in_c, l->k, l->k}, ld[2] = {n_out, per}, bd[1] = {n_out};
        int tw = l->kind == TRN_CONV ? const_tensor(g, wn, 4, wd, wbuf, l->n_w, e)
                                     : const_tensor(g, wn, 2, ld, wbuf, l->n_w, e);
        int tb = const_tensor(g, bname, 1, bd, bbuf, n_out, e);
        if (tw < 0 || tb < 0)
            goto fail;
        int ins[3] = {t_prev, tw, tb};
        int k = nn_graph_add_node(g, l->kind == TRN_CONV ? "Conv" : "Gemm", nn_name, 3, ins, 1,
                                  &t_out, e);
        if (k < 0)
            goto fail;
        if (l->kind == TRN_CONV) {
            int64_t ks[2] = {l->k, l->k}, st[2] = {l->stride, l->stride},
                    pd[4] = {l->pad, l->pad, l->pad, l->pad}, dl[2] = {1, 1};
            if (nn_node_attr_ints(g, k, "kernel_shape", ks, 2, e) ||
                nn_node_attr_ints(g, k, "strides", st, 2, e) ||
                nn_node_attr_ints(g, k, "pads", pd, 4, e) ||
                nn_node_attr_ints(g, k, "dilations", dl, 2, e) ||
                nn_node_attr_int(g, k, "group", 1, e))
                goto fail;
        } else if (nn_node_attr_int(g, k, "transB", 1, e)) {
            goto fail;
        }
        snprintf(prev, sizeof prev, "%s", name);
    }
    {
        int t_out = nn_graph_find(g, "output");
        int64_t od[2] = {1, m->n_classes};
        if (t_out < 0 || nn_tensor_set_shape(g, t_out, 2, od, e) || nn_graph_add_output(g, t_out, e))
            goto fail;
    }
    free(wbuf);
    free(bbuf);
    *out = g;
    return 0;
fail:
    rc = e && e->code ? e->code : ERR_NOMEM;
fail_rc:
    free(wbuf);
    free(bbuf);
    nn_graph_free(g);
    return rc;
}
