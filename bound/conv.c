/* conv.c: Conv (1-D/2-D, pads, strides, dilations, groups, auto_pad),
 * ConvTranspose (an explicit CSR map, see bnd_lower_convtranspose),
 * AveragePool and GlobalAveragePool. Conv is a CONV linop (im2col + dgemm,
 * backward = transposed convolution), a dense MATMUL when the kernel covers
 * the whole input, or an explicit CSR map for one-tap kernels; pools are CSR
 * maps whose row (c, oh, ow) holds the taps inside the input. Batch size 1
 * (as after finalize); 1-D is 2-D with height 1. Pool weights 1/count are
 * rounded once (coef_err). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t C, H, W;     /* input */
    int64_t M, OH, OW;   /* output */
    int64_t KH, KW, sh, sw, dh, dw, ph, pw;
    int64_t ph_end, pw_end; /* end pads (ONNX pads may be asymmetric) */
} win2d;

static int64_t ints_at(const nn_attr *a, int i, int64_t dflt)
{
    return (a && a->kind == NN_ATTR_INTS && i < a->n) ? a->ints[i] : dflt;
}

/* Geometry from X, Y shapes, the kernel size and the node attributes. */
static int geometry(bnd_lower_ctx *cx, int k, const nn_tensor *X, const nn_tensor *Y,
                    int64_t KH, int64_t KW, win2d *w, err *e)
{
    const nn_node *nd = &cx->g->nodes[k];
    int sp = X->rank - 2;
    if ((sp != 1 && sp != 2) || Y->rank != X->rank || X->dims[0] != 1)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "only batch 1, 1-D or 2-D");
    w->C = X->dims[1];
    w->H = sp == 2 ? X->dims[2] : 1;
    w->W = X->dims[X->rank - 1];
    w->M = Y->dims[1];
    w->OH = sp == 2 ? Y->dims[2] : 1;
    w->OW = Y->dims[Y->rank - 1];
    w->KH = KH, w->KW = KW;
    const nn_attr *st = nn_node_attr(nd, "strides"), *di = nn_node_attr(nd, "dilations");
    const nn_attr *pa = nn_node_attr(nd, "pads");
    if (sp == 2) {
        w->sh = ints_at(st, 0, 1), w->sw = ints_at(st, 1, 1);
        w->dh = ints_at(di, 0, 1), w->dw = ints_at(di, 1, 1);
        w->ph = ints_at(pa, 0, 0), w->pw = ints_at(pa, 1, 0);
        w->ph_end = ints_at(pa, 2, 0), w->pw_end = ints_at(pa, 3, 0);
    } else {
        w->sh = 1, w->dh = 1, w->ph = 0, w->ph_end = 0;
        w->sw = ints_at(st, 0, 1), w->dw = ints_at(di, 0, 1), w->pw = ints_at(pa, 0, 0);
        w->pw_end = ints_at(pa, 1, 0);
    }
    const nn_attr *ap = nn_node_attr(nd, "auto_pad");
    if (ap && ap->kind == NN_ATTR_STRING && ap->s && strcmp(ap->s, "NOTSET") != 0) {
        int64_t in[2] = {w->H, w->W}, out[2] = {w->OH, w->OW}, kk[2] = {KH, KW};
        int64_t s[2] = {w->sh, w->sw}, d[2] = {w->dh, w->dw}, p[2] = {0, 0}, q[2] = {0, 0};
        for (int a = 0; a < 2; a++) {
            int64_t tot = (out[a] - 1) * s[a] + (kk[a] - 1) * d[a] + 1 - in[a];
            if (tot < 0 || strcmp(ap->s, "VALID") == 0)
                tot = 0;
            p[a] = strcmp(ap->s, "SAME_LOWER") == 0 ? tot - tot / 2 : tot / 2;
            q[a] = tot - p[a];
        }
        w->ph = p[0], w->pw = p[1], w->ph_end = q[0], w->pw_end = q[1];
    }
    if (w->sh < 1 || w->sw < 1 || w->dh < 1 || w->dw < 1 || KH < 1 || KW < 1 || w->ph < 0 ||
        w->pw < 0 || w->ph_end < 0 || w->pw_end < 0 || w->C < 1 || w->M < 1)
        return bnd_node_err(cx, k, e, ERR_VALUE, "bad window attributes");
    return 0;
}


/* Explicit sparse map or im2col/dgemm kernel. Measured on the Collins RUL
 * CNNs (bench_bounds, cpu time): the dgemm form is 2.5-3.5x faster for IBP
 * and up to 2.5x for CROWN; the sparse map is kept for one-tap kernels only. */
static int conv_explicit(const win2d *w, int64_t per)
{
    (void)w;
    return per < 2;
}

/* Conv and ConvTranspose: a computed input X, constant weights W and bias B
 * (B NULL when absent), output Y. */
static int conv_operands(bnd_lower_ctx *cx, int k, const nn_tensor **X, const nn_tensor **Wt,
                         const nn_tensor **Bt, const nn_tensor **Y, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    if (nd->n_in < 2 || cx->tmap[nd->in[0]] < 0 || cx->tmap[nd->in[1]] >= 0 ||
        (nd->n_in > 2 && nd->in[2] >= 0 && cx->tmap[nd->in[2]] >= 0))
        return bnd_node_err(cx, k, e, ERR_UNSUP, "needs computed input, constant weights");
    *X = &g->tensors[nd->in[0]];
    *Wt = &g->tensors[nd->in[1]];
    *Y = &g->tensors[nd->out[0]];
    *Bt = nd->n_in > 2 && nd->in[2] >= 0 ? &g->tensors[nd->in[2]] : NULL;
    return 0;
}

int bnd_lower_conv(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    const nn_tensor *X, *Wt, *Bt, *Y;
    int rc0 = conv_operands(cx, k, &X, &Wt, &Bt, &Y, e);
    if (rc0)
        return rc0;
    if (!Wt->data || Wt->rank != X->rank)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "weight rank");
    int64_t KH = X->rank == 4 ? Wt->dims[2] : 1, KW = Wt->dims[Wt->rank - 1];
    win2d w;
    int rc = geometry(cx, k, X, Y, KH, KW, &w, e);
    if (rc)
        return rc;
    int64_t group = nn_attr_int(nd, "group", 1);
    if (group < 1 || w.C % group || w.M % group || Wt->dims[0] != w.M ||
        Wt->dims[1] != w.C / group || (Bt && (!Bt->data || Bt->size != w.M)))
        return bnd_node_err(cx, k, e, ERR_SHAPE, "weight/bias/group shapes");
    int64_t cg = w.C / group, mg = w.M / group;
    int64_t n_out = w.M * w.OH * w.OW;
    if (n_out != Y->size || w.C * w.H * w.W != X->size)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "output shape");
    int64_t per = cg * KH * KW;
    double *bias = Bt ? malloc((size_t)n_out * sizeof(double)) : NULL;
    if (Bt && !bias)
        return bnd_lower_oom(cx, e);
    for (int64_t o = 0; bias && o < n_out; o++)
        bias[o] = Bt->data[o / (w.OH * w.OW)];
    if (group == 1 && w.OH == 1 && w.OW == 1 && KH == w.H && KW == w.W && w.ph == 0 &&
        w.pw == 0 && w.dh == 1 && w.dw == 1) {
        /* the kernel covers the whole input once: a dense layer, y = x·W^T */
        double *Wt_ = malloc((size_t)(per * w.M) * sizeof(double));
        if (!Wt_) {
            free(bias);
            return bnd_lower_oom(cx, e);
        }
        for (int64_t m = 0; m < w.M; m++)
            for (int64_t i = 0; i < per; i++)
                Wt_[i * w.M + m] = Wt->data[m * per + i];
        bnd_linop *J = bnd_lin_matmul_new(1, per, w.M, Wt_);
        free(Wt_);
        if (!J) {
            free(bias);
            return bnd_lower_oom(cx, e);
        }
        return bnd_add_linear1(cx, k, cx->tmap[nd->in[0]], J, bias, 0, e);
    }
    if (!conv_explicit(&w, per)) {
        bnd_conv_geom cg_ = {w.C, w.H, w.W, w.M, w.OH, w.OW, KH, KW,
                             w.sh, w.sw, w.dh, w.dw, w.ph, w.pw, group};
        if (per > BND_MAX_NNZ / w.OH / w.OW) {
            free(bias);
            return bnd_node_err(cx, k, e, ERR_NOMEM, "convolution columns too large");
        }
        bnd_linop *J = bnd_lin_conv_new(&cg_, Wt->data);
        if (!J) {
            free(bias);
            return bnd_lower_oom(cx, e);
        }
        return bnd_add_linear1(cx, k, cx->tmap[nd->in[0]], J, bias, 0, e);
    }
    if (per > 0 && n_out > BND_MAX_NNZ / per) {
        free(bias);
        return bnd_node_err(cx, k, e, ERR_NOMEM, "explicit convolution map too large");
    }
    bnd_linop *J = bnd_lin_csr_new(n_out, X->size, n_out * per);
    if (!J) {
        bnd_lin_free(J);
        free(bias);
        return bnd_lower_oom(cx, e);
    }
    int64_t p = 0;
    for (int64_t m = 0; m < w.M; m++) {
        int64_t c0 = (m / mg) * cg;
        for (int64_t oh = 0; oh < w.OH; oh++)
            for (int64_t ow = 0; ow < w.OW; ow++) {
                int64_t o = (m * w.OH + oh) * w.OW + ow;
                J->rowptr[o] = p;
                for (int64_t c = 0; c < cg; c++)
                    for (int64_t kh = 0; kh < KH; kh++) {
                        int64_t ih = oh * w.sh - w.ph + kh * w.dh;
                        if (ih < 0 || ih >= w.H)
                            continue;
                        for (int64_t kw = 0; kw < KW; kw++) {
                            int64_t iw = ow * w.sw - w.pw + kw * w.dw;
                            if (iw < 0 || iw >= w.W)
                                continue;
                            double v = Wt->data[((m * cg + c) * KH + kh) * KW + kw];
                            if (v == 0)
                                continue;
                            J->col[p] = ((c0 + c) * w.H + ih) * w.W + iw;
                            J->val[p++] = v;
                        }
                    }
            }
    }
    J->rowptr[n_out] = p;
    bnd_lin_csr_finish(J);
    return bnd_add_linear1(cx, k, cx->tmap[nd->in[0]], J, bias, 0, e);
}

int bnd_lower_avgpool(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    const nn_tensor *X = &g->tensors[nd->in[0]], *Y = &g->tensors[nd->out[0]];
    const nn_attr *ks = nn_node_attr(nd, "kernel_shape");
    if (!ks || ks->kind != NN_ATTR_INTS || ks->n != X->rank - 2)
        return bnd_node_err(cx, k, e, ERR_PARSE, "kernel_shape");
    int64_t KH = ks->n == 2 ? ks->ints[0] : 1, KW = ks->ints[ks->n - 1];
    win2d w;
    int rc = geometry(cx, k, X, Y, KH, KW, &w, e);
    if (rc)
        return rc;
    if (w.M != w.C || w.M * w.OH * w.OW != Y->size)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "output shape");
    int incl = (int)nn_attr_int(nd, "count_include_pad", 0);
    int64_t n_out = Y->size;
    if (KH > NN_MAX_ELEMS / KW || n_out > BND_MAX_NNZ / (KH * KW))
        return bnd_node_err(cx, k, e, ERR_NOMEM, "pooling map too large");
    bnd_linop *J = bnd_lin_csr_new(n_out, X->size, n_out * KH * KW);
    if (!J)
        return bnd_lower_oom(cx, e);
    int64_t p = 0;
    for (int64_t c = 0; c < w.C; c++)
        for (int64_t oh = 0; oh < w.OH; oh++)
            for (int64_t ow = 0; ow < w.OW; ow++) {
                int64_t o = (c * w.OH + oh) * w.OW + ow, p0 = p, cnt = 0;
                J->rowptr[o] = p;
                for (int64_t kh = 0; kh < KH; kh++)
                    for (int64_t kw = 0; kw < KW; kw++) {
                        int64_t ih = oh * w.sh - w.ph + kh * w.dh, iw = ow * w.sw - w.pw + kw * w.dw;
                        /* count_include_pad counts taps inside the padded input */
                        if (ih >= -w.ph && ih < w.H + w.ph_end && iw >= -w.pw && iw < w.W + w.pw_end)
                            cnt += incl;
                        if (ih < 0 || ih >= w.H || iw < 0 || iw >= w.W)
                            continue;
                        cnt += !incl;
                        J->col[p++] = (c * w.H + ih) * w.W + iw;
                    }
                for (int64_t q = p0; q < p; q++)
                    J->val[q] = 1.0 / (double)(cnt ? cnt : 1);
            }
    J->rowptr[n_out] = p;
    bnd_lin_csr_finish(J);
    return bnd_add_linear1(cx, k, cx->tmap[nd->in[0]], J, NULL, 1, e);
}

int bnd_lower_globalavgpool(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    const nn_tensor *X = &g->tensors[nd->in[0]];
    if (X->rank < 3 || X->dims[0] != 1)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "only batch 1, rank >= 3");
    int64_t C = X->dims[1], inner = X->size / C;
    bnd_linop *J = bnd_lin_csr_new(C, X->size, X->size);
    if (!J)
        return bnd_lower_oom(cx, e);
    for (int64_t c = 0; c < C; c++) {
        J->rowptr[c] = c * inner;
        for (int64_t i = 0; i < inner; i++) {
            J->col[c * inner + i] = c * inner + i;
            J->val[c * inner + i] = 1.0 / (double)inner;
        }
    }
    J->rowptr[C] = X->size;
    bnd_lin_csr_finish(J);
    return bnd_add_linear1(cx, k, cx->tmap[nd->in[0]], J, NULL, 1, e);
}

/* ConvTranspose (1-D to 3-D, strides, dilations, pads, output_padding,
 * output_shape, auto_pad, groups; batch 1), the adjoint of a convolution:
 * y[m, o] = b_m + sum_{c in m's group} sum_t W[c, m mod M/g, t]·x[c, i] over
 * the taps t and inputs i with o = i·stride − pad0 + t·dil (per spatial axis;
 * at most one tap per (o, i) pair). An explicit CSR map whose coefficients
 * are the stored weights, as for Conv: exact, no coef_err. The begin pads
 * follow models/ops_linear.c (conv_plan); the extents come from the shapes. */
int bnd_lower_convtranspose(bnd_lower_ctx *cx, int k, err *e)
{
    const nn_graph *g = cx->g;
    const nn_node *nd = &g->nodes[k];
    const nn_tensor *X, *Wt, *Bt, *Y;
    int rc0 = conv_operands(cx, k, &X, &Wt, &Bt, &Y, e);
    if (rc0)
        return rc0;
    int nsp = X->rank - 2;
    if (nsp < 1 || nsp > 3 || X->dims[0] != 1 || Y->rank != X->rank || Wt->rank != X->rank)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "only batch 1, 1-D to 3-D");
    int64_t C = X->dims[1], group = nn_attr_int(nd, "group", 1);
    if (!Wt->data || group < 1 || C % group || Wt->dims[0] != C)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "weight/group shapes");
    int64_t cg = C / group, mg = Wt->dims[1], M = mg * group;
    if (Y->dims[1] != M || (Bt && (!Bt->data || Bt->size != M)))
        return bnd_node_err(cx, k, e, ERR_SHAPE, "output channels/bias");
    const nn_attr *st = nn_node_attr(nd, "strides"), *di = nn_node_attr(nd, "dilations");
    const nn_attr *pa = nn_node_attr(nd, "pads"), *op = nn_node_attr(nd, "output_padding");
    const nn_attr *os = nn_node_attr(nd, "output_shape"), *ap = nn_node_attr(nd, "auto_pad");
    const char *auto_pad = ap && ap->kind == NN_ATTR_STRING && ap->s ? ap->s : "NOTSET";
    int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
    /* 3 right-aligned spatial slots */
    int64_t in[3], out[3], kern[3], s[3], d[3], p0[3];
    for (int a = 0; a < 3; a++) {
        int i = a - (3 - nsp);
        in[a] = i >= 0 ? X->dims[2 + i] : 1;
        out[a] = i >= 0 ? Y->dims[2 + i] : 1;
        kern[a] = i >= 0 ? Wt->dims[2 + i] : 1;
        s[a] = i >= 0 ? ints_at(st, i, 1) : 1;
        d[a] = i >= 0 ? ints_at(di, i, 1) : 1;
        p0[a] = i >= 0 ? ints_at(pa, i, 0) : 0;
        if (s[a] < 1 || d[a] < 1 || p0[a] < 0 || kern[a] < 1 || s[a] > NN_MAX_ELEMS ||
            d[a] > NN_MAX_ELEMS || p0[a] > NN_MAX_ELEMS)
            return bnd_node_err(cx, k, e, ERR_VALUE, "bad window attributes");
        if (i < 0)
            continue;
        int64_t full = s[a] * (in[a] - 1) + ints_at(op, i, 0) + (kern[a] - 1) * d[a] + 1;
        if (os && os->kind == NN_ATTR_INTS) {
            int64_t tot = full - ints_at(os, i, 0);
            p0[a] = same_upper ? tot / 2 : tot - tot / 2;
        } else if (!strcmp(auto_pad, "VALID")) {
            p0[a] = 0;
        } else if (same_upper || same_lower) {
            int64_t tot = full - in[a] * s[a];
            tot = tot < 0 ? 0 : tot;
            p0[a] = same_upper ? tot / 2 : tot - tot / 2;
        }
    }
    int64_t taps = kern[0] * kern[1] * kern[2], nin = in[0] * in[1] * in[2];
    int64_t nout = out[0] * out[1] * out[2], n_out = M * nout;
    if (n_out != Y->size || C * nin != X->size || Wt->size != C * mg * taps)
        return bnd_node_err(cx, k, e, ERR_SHAPE, "output shape");
    if (cg * taps > BND_MAX_NNZ / n_out)
        return bnd_node_err(cx, k, e, ERR_UNSUP, "explicit map too large");
    bnd_linop *J = bnd_lin_csr_new(n_out, X->size, n_out * cg * taps);
    double *bias = Bt ? malloc((size_t)n_out * sizeof(double)) : NULL;
    if (!J || (Bt && !bias)) {
        bnd_lin_free(J);
        free(bias);
        return bnd_lower_oom(cx, e);
    }
    int64_t q = 0;
    for (int64_t m = 0; m < M; m++) {
        int64_t c0 = (m / mg) * cg, ml = m % mg;
        for (int64_t o = 0; o < nout; o++) {
            int64_t r = m * nout + o, oc[3] = {o / (out[1] * out[2]), o / out[2] % out[1],
                                                o % out[2]};
            J->rowptr[r] = q;
            if (bias)
                bias[r] = Bt->data[m];
            for (int64_t c = c0; c < c0 + cg; c++)
                for (int64_t t = 0; t < taps; t++) {
                    int64_t tc[3] = {t / (kern[1] * kern[2]), t / kern[2] % kern[1],
                                     t % kern[2]};
                    int64_t idx = 0, inside = 1;
                    for (int a = 0; a < 3 && inside; a++) { /* o = i·s − p0 + t·d */
                        int64_t num = oc[a] + p0[a] - tc[a] * d[a];
                        inside = num >= 0 && num % s[a] == 0 && num / s[a] < in[a];
                        idx = idx * in[a] + (inside ? num / s[a] : 0);
                    }
                    double v = Wt->data[(c * mg + ml) * taps + t];
                    if (!inside || v == 0)
                        continue;
                    J->col[q] = c * nin + idx;
                    J->val[q++] = v;
                }
        }
    }
    J->rowptr[n_out] = q;
    bnd_lin_csr_finish(J);
    return bnd_add_linear1(cx, k, cx->tmap[nd->in[0]], J, bias, 0, e);
}
