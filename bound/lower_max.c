/* lower_max.c: MaxPool and Clip, built exactly from LINEAR layers and ReLU
 * ACT layers, so IBP, CROWN, alpha and ReLU branching apply unchanged.
 *
 * Key idea: max(a, b) = a + relu(b − a) and clip(x) = hi − relu(hi − (lo +
 * relu(x − lo))), identities over the reals whose coefficients are ±1 and
 * whose constants are the stored bounds themselves. The lowered network
 * therefore computes exactly the op's function; the rounding of its
 * evaluation is accounted for by IBP and CROWN like that of any LINEAR layer
 * (docs/soundness.md), and ReLU's rule is already sound.
 *
 * MaxPool: per output window, a pairwise tree over the taps inside the input
 * (padding never wins; an empty window is 0, as models/ evaluates it), of
 * depth ceil(log2(taps)); each level is a LINEAR layer of differences b − a,
 * a ReLU layer, and a LINEAR layer a + relu(b − a) (odd taps carried over).
 * Clip: the nested form above rather than lo + relu(x − lo) − relu(x − hi):
 * its IBP is exact ([lo, hi] once the inner ReLU is clamped), the flat form's
 * is not (it loses that both ReLUs see the same x). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- pairwise max trees ---- */

/* One level: pairs (a, b) = (item[2t], item[2t+1]) of each output's list
 * become a + relu(b − a), an odd last item is carried, an empty list becomes
 * one constant-0 row. *cur is replaced by the new layer, off/item by its rows
 * (each output's rows consecutive, in output order). */
static int max_level(bnd_lower_ctx *cx, int k, int *cur, int64_t n_out, int64_t *off,
                     int64_t **item, err *e)
{
    int64_t npairs = 0, nrows = 0;
    for (int64_t o = 0; o < n_out; o++) {
        int64_t c = off[o + 1] - off[o];
        npairs += c / 2;
        nrows += c == 0 ? 1 : (c + 1) / 2;
    }
    int64_t *dcol = malloc((size_t)(2 * npairs) * sizeof(int64_t));
    int64_t *mcol = malloc((size_t)(2 * nrows) * sizeof(int64_t)); /* from cur ; from relu */
    int64_t *next = malloc((size_t)nrows * sizeof(int64_t));
    int rc = dcol && mcol && next ? 0 : bnd_lower_oom(cx, e);
    int64_t p = 0, r = 0;
    for (int64_t o = 0; rc == 0 && o < n_out; o++) {
        const int64_t *it = *item + off[o];
        int64_t c = off[o + 1] - off[o];
        off[o] = r;
        for (int64_t t = 0; t + 1 < c; t += 2, p++, r++) {
            dcol[2 * p] = it[t + 1], dcol[2 * p + 1] = it[t];
            mcol[r] = it[t], mcol[nrows + r] = p;
        }
        if (c % 2 == 1 || c == 0) { /* carried, or the empty window's 0 */
            mcol[r] = c ? it[c - 1] : -1, mcol[nrows + r] = -1;
            r++;
        }
    }
    if (rc == 0) {
        off[n_out] = r;
        for (int64_t t = 0; t < nrows; t++)
            next[t] = t;
        static const double diff[2] = {1.0, -1.0};
        int64_t ncur = cx->net->layers[*cur].size;
        bnd_linop *D = bnd_lin_csr_rows(npairs, ncur, 2, dcol, diff);
        int d = D ? bnd_add_linear(cx, k, npairs, 1, cur, &D, NULL, 0, e) : bnd_lower_oom(cx, e);
        int relu = d < 0 ? d : bnd_add_act_layer(cx, k, d, &bnd_relu_rule, 0.0, e);
        rc = relu < 0 ? relu : 0;
        if (rc == 0) {
            bnd_linop *J[2] = {bnd_lin_csr_rows(nrows, ncur, 1, mcol, NULL),
                               bnd_lin_csr_rows(nrows, npairs, 1, mcol + nrows, NULL)};
            int in[2] = {*cur, relu}, m;
            if (J[0] && J[1]) {
                m = bnd_add_linear(cx, k, nrows, 2, in, J, NULL, 0, e);
            } else {
                bnd_lin_free(J[0]), bnd_lin_free(J[1]);
                m = bnd_lower_oom(cx, e);
            }
            rc = m < 0 ? m : 0;
            *cur = m;
        }
    }
    free(dcol), free(mcol);
    if (rc == 0) {
        free(*item);
        *item = next;
    } else {
        free(next);
    }
    return rc;
}

/* Layer of y_o = max of layer src's entries item[off[o] .. off[o+1]) (0 when
 * there are none). off and *item are scratch (replaced, freed by the caller). */
static int max_tree(bnd_lower_ctx *cx, int k, int src, int64_t n_out, int64_t *off,
                    int64_t **item, err *e)
{
    int cur = src;
    for (;;) {
        int64_t widest = 0;
        for (int64_t o = 0; o < n_out; o++)
            if (off[o + 1] - off[o] > widest)
                widest = off[o + 1] - off[o];
        if (widest <= 1)
            break;
        int rc = max_level(cx, k, &cur, n_out, off, item, e);
        if (rc)
            return rc;
    }
    if (cur != src) /* each output is one row of cur, in order */
        return cur;
    /* windows of at most one tap: a gather (empty rows are 0) */
    int64_t *col = malloc((size_t)n_out * sizeof(int64_t));
    if (!col)
        return bnd_lower_oom(cx, e);
    for (int64_t o = 0; o < n_out; o++)
        col[o] = off[o + 1] > off[o] ? (*item)[off[o]] : -1;
    bnd_linop *J = bnd_lin_csr_rows(n_out, cx->net->layers[src].size, 1, col, NULL);
    free(col);
    if (!J)
        return bnd_lower_oom(cx, e);
    return bnd_add_linear(cx, k, n_out, 1, &src, &J, NULL, 0, e);
}

/* ---- MaxPool ---- */

/* Window geometry in 3 right-aligned spatial slots, as models/ops_pool.c
 * reads it; the output extents come from the (finalized) output shape, so
 * ceil_mode needs no handling here. */
typedef struct {
    int64_t outer, in[3], out[3], kern[3], stride[3], dil[3], pad0[3];
} pool_win;

static int64_t ints_at(const nn_attr *a, int64_t i, int64_t dflt)
{
    return a && a->kind == NN_ATTR_INTS && i < a->n ? a->ints[i] : dflt;
}

static int pool_windows(bnd_lower_ctx *cx, int k, pool_win *p, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    const nn_tensor *X = &g->tensors[nd->in[0]], *Y = &g->tensors[nd->out[0]];
    int nsp = X->rank - 2;
    const nn_attr *ks = nn_node_attr(nd, "kernel_shape");
    if (nsp < 1 || nsp > 3 || Y->rank != X->rank || Y->dims[0] != X->dims[0] ||
        Y->dims[1] != X->dims[1])
        return bnd_node_err(cx, k, e, ERR_UNSUP, "only 1-D to 3-D pooling");
    if (!ks || ks->kind != NN_ATTR_INTS || ks->n != nsp)
        return bnd_node_err(cx, k, e, ERR_PARSE, "kernel_shape");
    const nn_attr *st = nn_node_attr(nd, "strides"), *di = nn_node_attr(nd, "dilations");
    const nn_attr *pa = nn_node_attr(nd, "pads"), *ap = nn_node_attr(nd, "auto_pad");
    const char *auto_pad = ap && ap->kind == NN_ATTR_STRING && ap->s ? ap->s : "NOTSET";
    int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
    p->outer = X->dims[0] * X->dims[1];
    for (int s = 0; s < 3; s++) {
        int i = s - (3 - nsp); /* attribute index of slot s, < 0 for the unit slots */
        p->in[s] = i >= 0 ? X->dims[2 + i] : 1;
        p->out[s] = i >= 0 ? Y->dims[2 + i] : 1;
        p->kern[s] = i >= 0 ? ks->ints[i] : 1;
        p->stride[s] = i >= 0 ? ints_at(st, i, 1) : 1;
        p->dil[s] = i >= 0 ? ints_at(di, i, 1) : 1;
        p->pad0[s] = i >= 0 ? ints_at(pa, i, 0) : 0;
        if (p->kern[s] < 1 || p->stride[s] < 1 || p->dil[s] < 1 || p->pad0[s] < 0 ||
            p->kern[s] > NN_MAX_ELEMS || p->stride[s] > NN_MAX_ELEMS ||
            p->dil[s] > NN_MAX_ELEMS || p->pad0[s] > NN_MAX_ELEMS)
            return bnd_node_err(cx, k, e, ERR_VALUE, "bad kernel, stride, dilation or pads");
        if (i >= 0 && !strcmp(auto_pad, "VALID"))
            p->pad0[s] = 0;
        if (i >= 0 && (same_upper || same_lower)) { /* nn_same_pads */
            int64_t ext = (p->kern[s] - 1) * p->dil[s] + 1;
            int64_t o = (p->in[s] + p->stride[s] - 1) / p->stride[s];
            int64_t tot = (o - 1) * p->stride[s] + ext - p->in[s];
            tot = tot < 0 ? 0 : tot;
            p->pad0[s] = same_upper ? tot / 2 : tot - tot / 2;
        }
    }
    return 0;
}

int bnd_lower_maxpool(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    int x = cx->tmap[nd->in[0]];
    const nn_tensor *X = &g->tensors[nd->in[0]], *Y = &g->tensors[nd->out[0]];
    pool_win p = {0};
    int rc = pool_windows(cx, k, &p, e);
    if (rc)
        return rc;
    int64_t nin = p.in[0] * p.in[1] * p.in[2], nwin = p.out[0] * p.out[1] * p.out[2];
    int64_t taps = p.kern[0] * p.kern[1] * p.kern[2], n_out = Y->size;
    if (p.outer * nin != X->size || p.outer * nwin != n_out || X->size != cx->net->layers[x].size)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "output shape");
    if (taps > BND_MAX_NNZ / n_out)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "pooling map too large");
    int64_t *off = malloc((size_t)(n_out + 1) * sizeof(int64_t));
    int64_t *item = malloc((size_t)(n_out * taps) * sizeof(int64_t));
    if (!off || !item) {
        free(off), free(item);
        return bnd_lower_oom(cx, e);
    }
    int64_t q = 0, o = 0;
    for (int64_t c = 0; c < p.outer; c++)
        for (int64_t od = 0; od < p.out[0]; od++)
            for (int64_t oh = 0; oh < p.out[1]; oh++)
                for (int64_t ow = 0; ow < p.out[2]; ow++, o++) {
                    off[o] = q;
                    int64_t d0 = od * p.stride[0] - p.pad0[0], h0 = oh * p.stride[1] - p.pad0[1],
                            w0 = ow * p.stride[2] - p.pad0[2];
                    for (int64_t kd = 0; kd < p.kern[0]; kd++) {
                        int64_t id = d0 + kd * p.dil[0];
                        for (int64_t kh = 0; id >= 0 && id < p.in[0] && kh < p.kern[1]; kh++) {
                            int64_t ih = h0 + kh * p.dil[1];
                            for (int64_t kw = 0; ih >= 0 && ih < p.in[1] && kw < p.kern[2]; kw++) {
                                int64_t iw = w0 + kw * p.dil[2];
                                if (iw >= 0 && iw < p.in[2])
                                    item[q++] = c * nin + (id * p.in[1] + ih) * p.in[2] + iw;
                            }
                        }
                    }
                }
    off[n_out] = q;
    int li = max_tree(cx, k, x, n_out, off, &item, e);
    free(off), free(item);
    if (li < 0)
        return li;
    cx->tmap[nd->out[0]] = li;
    return 0;
}

/* ---- Clip ---- */

/* LINEAR layer y_o = s·x_o + b over the n entries of layer x (s = 0: the
 * constant b, still a layer reading x so that the shapes stay as they are). */
static int scaled(bnd_lower_ctx *cx, int k, int x, double s, double b, err *e)
{
    int64_t n = cx->net->layers[x].size;
    int64_t *col = malloc((size_t)n * sizeof(int64_t));
    double *bias = b != 0 ? malloc((size_t)n * sizeof(double)) : NULL;
    if (!col || (b != 0 && !bias)) {
        free(col), free(bias);
        return bnd_lower_oom(cx, e);
    }
    for (int64_t o = 0; o < n; o++) {
        col[o] = s != 0 ? o : -1;
        if (bias)
            bias[o] = b;
    }
    bnd_linop *J = bnd_lin_csr_rows(n, n, 1, col, &s);
    free(col);
    if (!J) {
        free(bias);
        return bnd_lower_oom(cx, e);
    }
    return bnd_add_linear(cx, k, n, 1, &x, &J, bias, 0, e);
}

/* s·relu(s·x − s·c) + c: lo + relu(x − lo) (s = 1) or hi − relu(hi − x) (s = −1). */
static int one_side(bnd_lower_ctx *cx, int k, int x, double s, double c, err *e)
{
    int d = scaled(cx, k, x, s, -s * c, e);
    int r = d < 0 ? d : bnd_add_act_layer(cx, k, d, &bnd_relu_rule, 0.0, e);
    return r < 0 ? r : scaled(cx, k, r, s, c, e);
}

/* Bound j (1 min, 2 max) from the constant input, else the attribute. */
static int clip_bound(bnd_lower_ctx *cx, int k, int j, const char *attr, double dflt, double *v,
                      err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    *v = nn_attr_float(nd, attr, dflt);
    if (nd->n_in <= j || nd->in[j] < 0)
        return 0;
    if (cx->tmap[nd->in[j]] >= 0)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "computed clip bound");
    const nn_tensor *t = &cx->g->tensors[nd->in[j]];
    if (t->size != 1 || (!t->data && !t->idata))
        return bnd_node_err(cx, k, e, ERR_UNSUP, "clip bound must be a constant scalar");
    *v = t->data ? t->data[0] : (double)t->idata[0];
    return 0;
}

int bnd_lower_clip(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    int x = cx->tmap[nd->in[0]];
    if (x < 0)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "constant input with computed bounds");
    if (cx->g->tensors[nd->out[0]].size != cx->net->layers[x].size)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "output size differs from input size");
    double lo, hi;
    int rc = clip_bound(cx, k, 1, "min", -INFINITY, &lo, e);
    if (rc == 0)
        rc = clip_bound(cx, k, 2, "max", INFINITY, &hi, e);
    if (rc)
        return rc;
    /* as models/ evaluates it, y = min(max(x, lo), hi): a NaN bound is no
     * bound, lo >= hi gives the constant hi */
    int has_lo = lo > -INFINITY, has_hi = hi < INFINITY;
    int li;
    if ((has_hi && hi == -INFINITY) || (has_lo && lo == INFINITY && !has_hi))
        return bnd_node_err(cx, k, e, ERR_UNSUP, "infinite constant output");
    if (has_lo && has_hi && lo >= hi)
        li = scaled(cx, k, x, 0.0, hi, e);
    else if (has_lo && has_hi) {
        li = one_side(cx, k, x, 1.0, lo, e);
        li = li < 0 ? li : one_side(cx, k, li, -1.0, hi, e);
    } else if (has_lo || has_hi)
        li = one_side(cx, k, x, has_lo ? 1.0 : -1.0, has_lo ? lo : hi, e);
    else
        li = x; /* no bound: the identity */
    if (li < 0)
        return li;
    cx->tmap[nd->out[0]] = li;
    return 0;
}
