/* ops_linear.c: the affine ops. Gemm and MatMul go through cblas_dgemm; Conv is
 * im2col + dgemm per group (1-D and 2-D inputs are 3-D with unit leading spatial
 * dims); ConvTranspose is dgemm + col2im (the adjoint of Conv's im2col);
 * BatchNormalization is its inference form y = scale (x - mean) / sqrt(var + eps) + B. */
#include "ops.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


/* C = alpha op(A) op(B) + beta C (row-major): dgemm, or with f32 the same product
 * in float32 arithmetic (sgemm on rounded copies, result kept as double). */
static int gemm(int f32, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int kk,
                double alpha, const double *a, int lda, const double *b, int ldb, double beta,
                double *c, int ldc)
{
    if (!f32) {
        cblas_dgemm(CblasRowMajor, ta, tb, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
        return 0;
    }
    size_t na = (size_t)(ta == CblasTrans ? kk : m) * (size_t)lda;
    size_t nb = (size_t)(tb == CblasTrans ? n : kk) * (size_t)ldb, nc = (size_t)m * (size_t)ldc;
    float *fa = malloc((na + nb + nc + 1) * sizeof *fa);
    if (!fa)
        return ERR_NOMEM;
    float *fb = fa + na, *fc = fb + nb;
    for (size_t i = 0; i < na; i++)
        fa[i] = (float)a[i];
    for (size_t i = 0; i < nb; i++)
        fb[i] = (float)b[i];
    for (size_t i = 0; i < nc; i++)
        fc[i] = (float)c[i];
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, kk, (float)alpha, fa, lda, fb, ldb, (float)beta, fc,
                ldc);
    for (size_t i = 0; i < nc; i++)
        c[i] = (double)fc[i];
    free(fa);
    return 0;
}

/* ---- Gemm: Y = alpha op(A) op(B) + beta C, C broadcast to [M, N] ---- */

int nn_shape_gemm(nn_graph *g, int k, err *e)
{
    const nn_node *n = &g->nodes[k];
    const nn_tensor *a = nn_op_in(g, k, 0), *b = nn_op_in(g, k, 1), *c = nn_op_in(g, k, 2);
    char s1[128], s2[128];
    if (!a || !b)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs inputs A and B");
    if (a->rank != 2 || b->rank != 2)
        return nn_op_fail(g, k, e, ERR_SHAPE, "A %s and B %s must be 2-D",
                          nn_shape_str(a, s1, sizeof s1), nn_shape_str(b, s2, sizeof s2));
    int ta = nn_attr_int(n, "transA", 0) != 0, tb = nn_attr_int(n, "transB", 0) != 0;
    int64_t m = a->dims[ta], ka = a->dims[!ta], kb = b->dims[tb], nn = b->dims[!tb];
    if (ka != kb)
        return nn_op_fail(g, k, e, ERR_SHAPE, "A %s%s and B %s%s do not multiply",
                          nn_shape_str(a, s1, sizeof s1), ta ? "^T" : "",
                          nn_shape_str(b, s2, sizeof s2), tb ? "^T" : "");
    int64_t d[2] = {m, nn};
    if (m * nn > 0 && ka > NN_MAX_WORK / (m * nn))
        return nn_op_fail(g, k, e, ERR_UNSUP, "more than %lld multiply-adds",
                          (long long)NN_MAX_WORK);
    if (c) {
        int r;
        int64_t dc[NN_MAX_RANK];
        if (c->rank > 2 || nn_broadcast(2, d, c->rank, c->dims, &r, dc) != 0 || dc[0] != m ||
            dc[1] != nn)
            return nn_op_fail(g, k, e, ERR_SHAPE, "C %s does not broadcast to [%lld,%lld]",
                              nn_shape_str(c, s1, sizeof s1), (long long)m, (long long)nn);
    }
    return nn_op_set_out(g, k, 0, NN_FLOAT, 2, d, e);
}

static int eval_gemm(const nn_graph *g, int k, double *const *v, int f32, err *e)
{
    (void)e;
    const nn_node *n = &g->nodes[k];
    const nn_tensor *a = nn_op_in(g, k, 0), *b = nn_op_in(g, k, 1), *c = nn_op_in(g, k, 2);
    int ta = nn_attr_int(n, "transA", 0) != 0, tb = nn_attr_int(n, "transB", 0) != 0;
    double alpha = nn_attr_float(n, "alpha", 1.0), beta = nn_attr_float(n, "beta", 1.0);
    int64_t m = a->dims[ta], kk = a->dims[!ta], nn = b->dims[!tb];
    double *y = v[n->out[0]];
    if (c && beta != 0) {
        const double *pc = v[n->in[2]];
        int64_t sc[2];
        int64_t od[2] = {m, nn};
        nn_bcast_strides(c->rank, c->dims, 2, od, sc);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < nn; j++)
                y[i * nn + j] = beta * pc[i * sc[0] + j * sc[1]];
    } else {
        memset(y, 0, (size_t)(m * nn) * sizeof *y);
    }
    if (m == 0 || nn == 0 || kk == 0)
        return 0;
    if (m == 1 && !ta && !f32) { /* one row: y = alpha op(B)^T a + y */
        cblas_dgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, (int)b->dims[0],
                    (int)b->dims[1], alpha, v[n->in[1]], (int)b->dims[1], v[n->in[0]], 1, 1.0, y,
                    1);
        return 0;
    }
    if (gemm(f32, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)nn,
             (int)kk, alpha, v[n->in[0]], (int)a->dims[1], v[n->in[1]], (int)b->dims[1], 1.0, y,
             (int)nn))
        return nn_op_fail(g, k, e, ERR_NOMEM, "out of memory");
    return 0;
}

/* ---- MatMul: numpy semantics (1-D operands promoted, batch dims broadcast) ---- */

typedef struct {
    int64_t m, k, n;
    int rb;                        /* batch rank of the output */
    int64_t bd[NN_MAX_RANK];       /* batch dims */
    int64_t sa[NN_MAX_RANK], sb[NN_MAX_RANK]; /* batch strides, in matrices */
} matmul_plan;

static int plan_matmul(const nn_graph *g, int k, matmul_plan *p, int64_t *od, int *orank, err *e)
{
    const nn_tensor *a = nn_op_in(g, k, 0), *b = nn_op_in(g, k, 1);
    char s1[128], s2[128];
    if (!a || !b)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs two inputs");
    if (a->rank < 1 || b->rank < 1)
        return nn_op_fail(g, k, e, ERR_SHAPE, "scalar operand");
    int64_t ad[NN_MAX_RANK + 1], bdm[NN_MAX_RANK + 1];
    int ra = a->rank, rb = b->rank;
    memcpy(ad, a->dims, sizeof a->dims);
    memcpy(bdm, b->dims, sizeof b->dims);
    if (ra == 1) {
        ad[1] = ad[0];
        ad[0] = 1;
        ra = 2;
    }
    if (rb == 1) {
        bdm[1] = 1;
        rb = 2;
    }
    p->m = ad[ra - 2];
    p->k = ad[ra - 1];
    p->n = bdm[rb - 1];
    if (bdm[rb - 2] != p->k)
        return nn_op_fail(g, k, e, ERR_SHAPE, "shapes %s and %s do not multiply",
                          nn_shape_str(a, s1, sizeof s1), nn_shape_str(b, s2, sizeof s2));
    if (nn_broadcast(ra - 2, ad, rb - 2, bdm, &p->rb, p->bd) != 0)
        return nn_op_fail(g, k, e, ERR_SHAPE, "batch dims of %s and %s do not broadcast",
                          nn_shape_str(a, s1, sizeof s1), nn_shape_str(b, s2, sizeof s2));
    nn_bcast_strides(ra - 2, ad, p->rb, p->bd, p->sa);
    nn_bcast_strides(rb - 2, bdm, p->rb, p->bd, p->sb);
    int r = 0;
    for (int i = 0; i < p->rb; i++)
        od[r++] = p->bd[i];
    if (a->rank > 1)
        od[r++] = p->m;
    if (b->rank > 1)
        od[r++] = p->n;
    if (r > NN_MAX_RANK)
        return nn_op_fail(g, k, e, ERR_UNSUP, "rank too large");
    *orank = r;
    return 0;
}

int nn_shape_matmul(nn_graph *g, int k, err *e)
{
    matmul_plan p;
    int64_t od[NN_MAX_RANK + 2];
    int r, rc = plan_matmul(g, k, &p, od, &r, e);
    if (rc || (rc = nn_op_set_out(g, k, 0, NN_FLOAT, r, od, e)))
        return rc;
    int64_t size = g->tensors[g->nodes[k].out[0]].size;
    if (size > 0 && p.k > NN_MAX_WORK / size)
        return nn_op_fail(g, k, e, ERR_UNSUP, "more than %lld multiply-adds",
                          (long long)NN_MAX_WORK);
    return 0;
}

static int eval_matmul(const nn_graph *g, int k, double *const *v, int f32, err *e)
{
    const nn_node *n = &g->nodes[k];
    matmul_plan p;
    int64_t od[NN_MAX_RANK + 2], idx[NN_MAX_RANK] = {0};
    int r, rc = plan_matmul(g, k, &p, od, &r, e);
    if (rc)
        return rc;
    const double *a = v[n->in[0]], *b = v[n->in[1]];
    double *y = v[n->out[0]];
    int64_t batch = nn_prod(p.bd, 0, p.rb), ma = p.m * p.k, mb = p.k * p.n, my = p.m * p.n;
    if (my == 0)
        return 0;
    if (p.k == 0) {
        memset(y, 0, (size_t)(batch * my) * sizeof *y);
        return 0;
    }
    /* B shared by the whole batch and A contiguous: one product of [batch*m, k] x [k, n]. */
    int b_shared = 1;
    for (int d = 0; d < p.rb; d++)
        b_shared &= p.sb[d] == 0;
    if (b_shared && (batch == 1 || nn_op_in(g, k, 0)->size == batch * ma)) {
        if (f32)
            rc = gemm(1, CblasNoTrans, CblasNoTrans, (int)(batch * p.m), (int)p.n, (int)p.k, 1.0,
                      a, (int)p.k, b, (int)p.n, 0.0, y, (int)p.n);
        else if (batch * p.m == 1) /* row vector times matrix: y = B^T a */
            cblas_dgemv(CblasRowMajor, CblasTrans, (int)p.k, (int)p.n, 1.0, b, (int)p.n, a, 1,
                        0.0, y, 1);
        else if (p.n == 1)
            cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)(batch * p.m), (int)p.k, 1.0, a,
                        (int)p.k, b, 1, 0.0, y, 1);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(batch * p.m), (int)p.n,
                        (int)p.k, 1.0, a, (int)p.k, b, (int)p.n, 0.0, y, (int)p.n);
        return rc ? nn_op_fail(g, k, e, ERR_NOMEM, "out of memory") : 0;
    }
    int64_t oa = 0, ob = 0;
    for (int64_t i = 0; i < batch; i++) {
        if (gemm(f32, CblasNoTrans, CblasNoTrans, (int)p.m, (int)p.n, (int)p.k, 1.0, a + oa * ma,
                 (int)p.k, b + ob * mb, (int)p.n, 0.0, y + i * my, (int)p.n))
            return nn_op_fail(g, k, e, ERR_NOMEM, "out of memory");
        for (int d = p.rb - 1; d >= 0; d--) {
            idx[d]++;
            oa += p.sa[d];
            ob += p.sb[d];
            if (idx[d] < p.bd[d])
                break;
            oa -= p.sa[d] * p.bd[d];
            ob -= p.sb[d] * p.bd[d];
            idx[d] = 0;
        }
    }
    return 0;
}

/* ---- Conv and ConvTranspose geometry ---- */

typedef struct {
    int64_t batch, c_in, c_out, group;
    int64_t in[3], kern[3], stride[3], dil[3], pad0[3], pad1[3], out[3];
    int nsp; /* spatial rank as in the file (1..3) */
} conv_geom;

/* Reads kernel/strides/dilations/pads/auto_pad; for ConvTranspose also output_padding
 * and output_shape. x: [N, C, spatial], w: Conv [M, C/g, k] or ConvTranspose [C, M/g, k]. */
static int conv_plan(const nn_graph *g, int k, int transpose, conv_geom *p, err *e)
{
    const nn_node *n = &g->nodes[k];
    const nn_tensor *x = nn_op_in(g, k, 0), *w = nn_op_in(g, k, 1), *b = nn_op_in(g, k, 2);
    char s1[128], s2[128];
    if (!x || !w)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs inputs X and W");
    int nsp = x->rank - 2;
    if (nsp < 1 || nsp > 3 || w->rank != x->rank)
        return nn_op_fail(g, k, e, ERR_UNSUP, "input %s, weight %s: only 1-D to 3-D supported",
                          nn_shape_str(x, s1, sizeof s1), nn_shape_str(w, s2, sizeof s2));
    memset(p, 0, sizeof *p);
    p->nsp = nsp;
    p->batch = x->dims[0];
    p->c_in = x->dims[1];
    p->group = nn_attr_int(n, "group", 1);
    if (p->group < 1 || p->c_in % p->group != 0)
        return nn_op_fail(g, k, e, ERR_SHAPE, "group %lld does not divide %lld channels",
                          (long long)p->group, (long long)p->c_in);
    if (!transpose) {
        p->c_out = w->dims[0];
        if (w->dims[1] * p->group != p->c_in || p->c_out % p->group != 0)
            return nn_op_fail(g, k, e, ERR_SHAPE, "weight %s does not match input %s, group %lld",
                              nn_shape_str(w, s2, sizeof s2), nn_shape_str(x, s1, sizeof s1),
                              (long long)p->group);
    } else {
        p->c_out = w->dims[1] * p->group;
        if (w->dims[0] != p->c_in)
            return nn_op_fail(g, k, e, ERR_SHAPE, "weight %s does not match input %s",
                              nn_shape_str(w, s2, sizeof s2), nn_shape_str(x, s1, sizeof s1));
    }
    if (b && (b->rank != 1 || b->dims[0] != p->c_out))
        return nn_op_fail(g, k, e, ERR_SHAPE, "bias %s for %lld output channels",
                          nn_shape_str(b, s1, sizeof s1), (long long)p->c_out);
    int64_t ks[3], st[3], dl[3], pd[6], op[3], os[3];
    int nk = nn_op_attr_ints(g, k, "kernel_shape", ks, 3, e);
    int ns = nn_op_attr_ints(g, k, "strides", st, 3, e);
    int nd = nn_op_attr_ints(g, k, "dilations", dl, 3, e);
    int np = nn_op_attr_ints(g, k, "pads", pd, 6, e);
    int no = nn_op_attr_ints(g, k, "output_padding", op, 3, e);
    int nos = nn_op_attr_ints(g, k, "output_shape", os, 3, e);
    if (nk == -2 || ns == -2 || nd == -2 || np == -2 || no == -2 || nos == -2)
        return e ? e->code : ERR_UNSUP;
    if ((nk >= 0 && nk != nsp) || (ns >= 0 && ns != nsp) || (nd >= 0 && nd != nsp) ||
        (np >= 0 && np != 2 * nsp) || (no >= 0 && no != nsp) || (nos >= 0 && nos != nsp))
        return nn_op_fail(g, k, e, ERR_SHAPE, "attribute lengths do not match %d spatial dims",
                          nsp);
    const nn_attr *ap = nn_node_attr(n, "auto_pad");
    const char *auto_pad = ap && ap->kind == NN_ATTR_STRING ? ap->s : "NOTSET";
    int same_upper = !strcmp(auto_pad, "SAME_UPPER"), same_lower = !strcmp(auto_pad, "SAME_LOWER");
    int valid = !strcmp(auto_pad, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(auto_pad, "NOTSET") != 0)
        return nn_op_fail(g, k, e, ERR_UNSUP, "auto_pad '%s' not supported", auto_pad);
    /* spatial axes are right-aligned into 3 slots */
    int off = 3 - nsp;
    for (int i = 0; i < 3; i++) {
        p->in[i] = p->kern[i] = p->stride[i] = p->dil[i] = p->out[i] = 1;
        p->pad0[i] = p->pad1[i] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        int s = off + i;
        p->in[s] = x->dims[2 + i];
        p->kern[s] = w->dims[2 + i];
        if (nk >= 0 && ks[i] != w->dims[2 + i])
            return nn_op_fail(g, k, e, ERR_SHAPE, "kernel_shape does not match weight %s",
                              nn_shape_str(w, s2, sizeof s2));
        p->stride[s] = ns >= 0 ? st[i] : 1;
        p->dil[s] = nd >= 0 ? dl[i] : 1;
        if (p->stride[s] < 1 || p->dil[s] < 1 || p->stride[s] > NN_MAX_ELEMS ||
            p->dil[s] > NN_MAX_ELEMS)
            return nn_op_fail(g, k, e, ERR_SHAPE, "bad stride or dilation");
        p->pad0[s] = np >= 0 ? pd[i] : 0;
        p->pad1[s] = np >= 0 ? pd[nsp + i] : 0;
        if (p->pad0[s] < 0 || p->pad1[s] < 0 || p->pad0[s] > NN_MAX_ELEMS ||
            p->pad1[s] > NN_MAX_ELEMS)
            return nn_op_fail(g, k, e, ERR_SHAPE, "bad pads");
        int64_t ext = (p->kern[s] - 1) * p->dil[s] + 1;
        if (!transpose) {
            if (valid) {
                p->pad0[s] = p->pad1[s] = 0;
            } else if (same_upper || same_lower) {
                nn_same_pads(p->in[s], p->stride[s], ext, same_upper, &p->pad0[s], &p->pad1[s]);
            }
            int64_t span = p->in[s] + p->pad0[s] + p->pad1[s] - ext;
            if (span < 0)
                return nn_op_fail(g, k, e, ERR_SHAPE, "kernel larger than padded input %s",
                                  nn_shape_str(x, s1, sizeof s1));
            p->out[s] = span / p->stride[s] + 1;
        } else {
            int64_t opad = no >= 0 ? op[i] : 0;
            if (opad < 0 || opad > NN_MAX_ELEMS)
                return nn_op_fail(g, k, e, ERR_SHAPE, "bad output_padding");
            int64_t full = p->stride[s] * (p->in[s] - 1) + opad + ext;
            if (nos >= 0) {
                int64_t tot = full - os[i];
                if (tot < 0)
                    return nn_op_fail(g, k, e, ERR_SHAPE, "output_shape too large");
                p->pad0[s] = same_upper ? tot / 2 : tot - tot / 2;
                p->pad1[s] = tot - p->pad0[s];
            } else if (valid) {
                p->pad0[s] = p->pad1[s] = 0;
            } else if (same_upper || same_lower) {
                int64_t tot = full - p->in[s] * p->stride[s];
                tot = tot < 0 ? 0 : tot;
                p->pad0[s] = same_upper ? tot / 2 : tot - tot / 2;
                p->pad1[s] = tot - p->pad0[s];
            }
            p->out[s] = full - p->pad0[s] - p->pad1[s];
            if (p->out[s] < 1)
                return nn_op_fail(g, k, e, ERR_SHAPE, "empty output");
        }
    }
    return 0;
}

static int conv_set_out(nn_graph *g, int k, const conv_geom *p, err *e)
{
    int64_t d[5] = {p->batch, p->c_out};
    for (int i = 0; i < p->nsp; i++)
        d[2 + i] = p->out[3 - p->nsp + i];
    return nn_op_set_out(g, k, 0, NN_FLOAT, 2 + p->nsp, d, e);
}

int nn_shape_conv(nn_graph *g, int k, err *e)
{
    conv_geom p;
    int rc = conv_plan(g, k, 0, &p, e);
    if (rc)
        return rc;
    /* im2col buffer: (C/g) * kernel * output positions */
    int64_t rows = p.c_in / p.group * p.kern[0] * p.kern[1] * p.kern[2];
    int64_t cols = p.out[0] * p.out[1] * p.out[2];
    if (cols > 0 && rows > NN_MAX_ELEMS / cols)
        return nn_op_fail(g, k, e, ERR_NOMEM, "im2col buffer too large");
    if ((rc = conv_set_out(g, k, &p, e)))
        return rc;
    int64_t size = g->tensors[g->nodes[k].out[0]].size;
    if (size > 0 && rows > NN_MAX_WORK / size)
        return nn_op_fail(g, k, e, ERR_UNSUP, "more than %lld multiply-adds",
                          (long long)NN_MAX_WORK);
    return 0;
}

int nn_shape_convtranspose(nn_graph *g, int k, err *e)
{
    conv_geom p;
    int rc = conv_plan(g, k, 1, &p, e);
    if (rc)
        return rc;
    int64_t rows = p.c_out / p.group * p.kern[0] * p.kern[1] * p.kern[2];
    int64_t cols = p.in[0] * p.in[1] * p.in[2];
    if (cols > 0 && rows > NN_MAX_ELEMS / cols)
        return nn_op_fail(g, k, e, ERR_NOMEM, "column buffer too large");
    int64_t xsize = nn_op_in(g, k, 0)->size;
    if (xsize > 0 && rows > NN_MAX_WORK / xsize)
        return nn_op_fail(g, k, e, ERR_UNSUP, "more than %lld multiply-adds",
                          (long long)NN_MAX_WORK);
    return conv_set_out(g, k, &p, e);
}

/* col[(c, kd, kh, kw), (od, oh, ow)] = x[c, od*s - p + kd*dil, ...] (0 in the padding). */
static void im2col(const conv_geom *p, int64_t channels, const double *x, double *col)
{
    int64_t ncols = p->out[0] * p->out[1] * p->out[2], row = 0;
    for (int64_t c = 0; c < channels; c++)
        for (int64_t kd = 0; kd < p->kern[0]; kd++)
            for (int64_t kh = 0; kh < p->kern[1]; kh++)
                for (int64_t kw = 0; kw < p->kern[2]; kw++, row++) {
                    double *dst = col + row * ncols;
                    for (int64_t od = 0; od < p->out[0]; od++) {
                        int64_t id = od * p->stride[0] - p->pad0[0] + kd * p->dil[0];
                        for (int64_t oh = 0; oh < p->out[1]; oh++) {
                            int64_t ih = oh * p->stride[1] - p->pad0[1] + kh * p->dil[1];
                            int inside = id >= 0 && id < p->in[0] && ih >= 0 && ih < p->in[1];
                            if (!inside) {
                                memset(dst, 0, (size_t)p->out[2] * sizeof *dst);
                                dst += p->out[2];
                                continue;
                            }
                            const double *src =
                                x + ((c * p->in[0] + id) * p->in[1] + ih) * p->in[2];
                            /* iw = ow * s + base is inside for ow in [lo, hi) */
                            int64_t s = p->stride[2], base = kw * p->dil[2] - p->pad0[2];
                            int64_t lo = base >= 0 ? 0 : (-base + s - 1) / s;
                            int64_t hi = p->in[2] - base <= 0 ? 0 : (p->in[2] - base + s - 1) / s;
                            hi = hi < p->out[2] ? hi : p->out[2];
                            lo = lo < hi ? lo : hi;
                            int64_t ow = 0;
                            for (; ow < lo; ow++)
                                *dst++ = 0.0;
                            if (s == 1) {
                                memcpy(dst, src + lo + base, (size_t)(hi - lo) * sizeof *dst);
                                dst += hi - lo;
                                ow = hi;
                            }
                            for (; ow < hi; ow++)
                                *dst++ = src[ow * s + base];
                            for (; ow < p->out[2]; ow++)
                                *dst++ = 0.0;
                        }
                    }
                }
}

/* The adjoint of im2col with in/out swapped: y[c, i*s - p + k*dil] += col[(c,k), i]. */
static void col2im(const conv_geom *p, int64_t channels, const double *col, double *y)
{
    int64_t ncols = p->in[0] * p->in[1] * p->in[2], row = 0;
    for (int64_t c = 0; c < channels; c++)
        for (int64_t kd = 0; kd < p->kern[0]; kd++)
            for (int64_t kh = 0; kh < p->kern[1]; kh++)
                for (int64_t kw = 0; kw < p->kern[2]; kw++, row++) {
                    const double *src = col + row * ncols;
                    for (int64_t id = 0; id < p->in[0]; id++) {
                        int64_t od = id * p->stride[0] - p->pad0[0] + kd * p->dil[0];
                        for (int64_t ih = 0; ih < p->in[1]; ih++) {
                            int64_t oh = ih * p->stride[1] - p->pad0[1] + kh * p->dil[1];
                            int inside = od >= 0 && od < p->out[0] && oh >= 0 && oh < p->out[1];
                            double *dst = y + ((c * p->out[0] + od) * p->out[1] + oh) * p->out[2];
                            for (int64_t iw = 0; iw < p->in[2]; iw++, src++) {
                                int64_t ow = iw * p->stride[2] - p->pad0[2] + kw * p->dil[2];
                                if (inside && ow >= 0 && ow < p->out[2])
                                    dst[ow] += *src;
                            }
                        }
                    }
                }
}

static int eval_conv(const nn_graph *g, int k, double *const *v, int f32, err *e)
{
    const nn_node *n = &g->nodes[k];
    conv_geom p;
    int rc = conv_plan(g, k, 0, &p, e);
    if (rc)
        return rc;
    int64_t cg = p.c_in / p.group, mg = p.c_out / p.group;
    int64_t rows = cg * p.kern[0] * p.kern[1] * p.kern[2];
    int64_t nin = p.in[0] * p.in[1] * p.in[2], nout = p.out[0] * p.out[1] * p.out[2];
    const double *x = v[n->in[0]], *w = v[n->in[1]];
    const double *b = nn_op_in_id(g, k, 2) >= 0 ? v[n->in[2]] : NULL;
    double *y = v[n->out[0]];
    /* A 1x1 kernel with unit strides and no padding needs no im2col: col is x. */
    int pointwise = rows == cg && nin == nout;
    for (int s = 0; s < 3; s++)
        pointwise &= p.stride[s] == 1 && p.pad0[s] == 0;
    double *col = pointwise ? NULL : malloc((size_t)(rows * nout > 0 ? rows * nout : 1) * sizeof *col);
    if (!pointwise && !col)
        return nn_op_fail(g, k, e, ERR_NOMEM, "out of memory");
    for (int64_t bi = 0; bi < p.batch; bi++)
        for (int64_t gi = 0; gi < p.group; gi++) {
            const double *xg = x + (bi * p.c_in + gi * cg) * nin;
            if (!pointwise)
                im2col(&p, cg, xg, col);
            double *yg = y + (bi * p.c_out + gi * mg) * nout;
            if (b)
                for (int64_t m = 0; m < mg; m++)
                    for (int64_t j = 0; j < nout; j++)
                        yg[m * nout + j] = b[gi * mg + m];
            else
                memset(yg, 0, (size_t)(mg * nout) * sizeof *yg);
            if (rows > 0 && nout > 0 && mg > 0 &&
                gemm(f32, CblasNoTrans, CblasNoTrans, (int)mg, (int)nout, (int)rows, 1.0,
                     w + gi * mg * rows, (int)rows, pointwise ? xg : col, (int)nout, 1.0, yg,
                     (int)nout)) {
                free(col);
                return nn_op_fail(g, k, e, ERR_NOMEM, "out of memory");
            }
        }
    free(col);
    return 0;
}

static int eval_convtranspose(const nn_graph *g, int k, double *const *v, int f32, err *e)
{
    const nn_node *n = &g->nodes[k];
    conv_geom p;
    int rc = conv_plan(g, k, 1, &p, e);
    if (rc)
        return rc;
    int64_t cg = p.c_in / p.group, mg = p.c_out / p.group;
    int64_t rows = mg * p.kern[0] * p.kern[1] * p.kern[2];
    int64_t nin = p.in[0] * p.in[1] * p.in[2], nout = p.out[0] * p.out[1] * p.out[2];
    const double *x = v[n->in[0]], *w = v[n->in[1]];
    const double *b = nn_op_in_id(g, k, 2) >= 0 ? v[n->in[2]] : NULL;
    double *y = v[n->out[0]];
    double *col = malloc((size_t)(rows * nin > 0 ? rows * nin : 1) * sizeof *col);
    if (!col)
        return nn_op_fail(g, k, e, ERR_NOMEM, "out of memory");
    for (int64_t bi = 0; bi < p.batch; bi++)
        for (int64_t gi = 0; gi < p.group; gi++) {
            double *yg = y + (bi * p.c_out + gi * mg) * nout;
            for (int64_t m = 0; m < mg; m++)
                for (int64_t j = 0; j < nout; j++)
                    yg[m * nout + j] = b ? b[gi * mg + m] : 0.0;
            if (rows == 0 || nin == 0 || cg == 0)
                continue;
            /* col [rows, nin] = W_g^T [rows, cg] * X_g [cg, nin]; W_g is [cg, rows] */
            if (gemm(f32, CblasTrans, CblasNoTrans, (int)rows, (int)nin, (int)cg, 1.0,
                     w + gi * cg * rows, (int)rows, x + (bi * p.c_in + gi * cg) * nin, (int)nin,
                     0.0, col, (int)nin)) {
                free(col);
                return nn_op_fail(g, k, e, ERR_NOMEM, "out of memory");
            }
            col2im(&p, mg, col, yg);
        }
    free(col);
    return 0;
}

/* ---- BatchNormalization (inference) ---- */

int nn_shape_batchnorm(nn_graph *g, int k, err *e)
{
    const nn_tensor *x = nn_op_in(g, k, 0);
    char s1[128], s2[128];
    if (!x || g->nodes[k].n_in < 5)
        return nn_op_fail(g, k, e, ERR_PARSE, "needs inputs X, scale, B, mean, var");
    if (nn_attr_int(&g->nodes[k], "training_mode", 0))
        return nn_op_fail(g, k, e, ERR_UNSUP, "training mode not supported");
    if (x->rank < 2)
        return nn_op_fail(g, k, e, ERR_SHAPE, "input %s has no channel axis",
                          nn_shape_str(x, s1, sizeof s1));
    for (int i = 1; i < 5; i++) {
        const nn_tensor *t = nn_op_in(g, k, i);
        if (!t || t->rank != 1 || t->dims[0] != x->dims[1])
            return nn_op_fail(g, k, e, ERR_SHAPE, "parameter %d %s does not match input %s", i,
                              nn_shape_str(t, s2, sizeof s2), nn_shape_str(x, s1, sizeof s1));
    }
    return nn_op_set_out(g, k, 0, NN_FLOAT, x->rank, x->dims, e);
}

int nn_eval_batchnorm(const nn_graph *g, int k, double *const *v, err *e)
{
    (void)e;
    const nn_node *n = &g->nodes[k];
    const nn_tensor *x = nn_op_in(g, k, 0);
    double eps = nn_attr_float(n, "epsilon", (double)1e-5f);
    const double *px = v[n->in[0]], *sc = v[n->in[1]], *bi = v[n->in[2]], *mu = v[n->in[3]],
                 *var = v[n->in[4]];
    double *py = v[n->out[0]];
    int64_t c_n = x->dims[1], inner = nn_prod(x->dims, 2, x->rank), outer = x->dims[0];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < c_n; c++) {
            double sd = sqrt(var[c] + eps);
            const double *src = px + (o * c_n + c) * inner;
            double *dst = py + (o * c_n + c) * inner;
            for (int64_t i = 0; i < inner; i++)
                dst[i] = sc[c] * (src[i] - mu[c]) / sd + bi[c];
        }
    return 0;
}

int nn_eval_gemm(const nn_graph *g, int k, double *const *v, err *e)
{
    return eval_gemm(g, k, v, 0, e);
}

int nn_eval_gemm_f32(const nn_graph *g, int k, double *const *v, err *e)
{
    return eval_gemm(g, k, v, 1, e);
}

int nn_eval_matmul(const nn_graph *g, int k, double *const *v, err *e)
{
    return eval_matmul(g, k, v, 0, e);
}

int nn_eval_matmul_f32(const nn_graph *g, int k, double *const *v, err *e)
{
    return eval_matmul(g, k, v, 1, e);
}

int nn_eval_conv(const nn_graph *g, int k, double *const *v, err *e)
{
    return eval_conv(g, k, v, 0, e);
}

int nn_eval_conv_f32(const nn_graph *g, int k, double *const *v, err *e)
{
    return eval_conv(g, k, v, 1, e);
}

int nn_eval_convtranspose(const nn_graph *g, int k, double *const *v, err *e)
{
    return eval_convtranspose(g, k, v, 0, e);
}

int nn_eval_convtranspose_f32(const nn_graph *g, int k, double *const *v, err *e)
{
    return eval_convtranspose(g, k, v, 1, e);
}
