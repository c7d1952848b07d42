/* linop.c: the linear maps of LINEAR layers, y = J x, in three forms.
 * MATMUL: x viewed as an M x K row-major matrix, y = x·W with W (K x N)
 *   constant: forward and backward are single dgemm calls over a batch
 *   (k vectors = k·M rows), |J| uses a cached |W|.
 * CONV: convolutions, im2col + dgemm forward, dgemm + col2im backward (the
 *   transposed convolution), per vector and group.
 * CSR: any other linear op (conv, pooling, broadcasting elementwise scale,
 *   slicing, transposes, concatenation) as an explicit sparse matrix.
 * Rounding: forward sums have at most fan_in terms, backward sums at most
 * fan_out terms; callers bound them with gamma_n (round.c). */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bnd_linop *bnd_lin_matmul_new(int64_t M, int64_t K, int64_t N, const double *W)
{
    bnd_linop *L = calloc(1, sizeof *L);
    if (!L)
        return NULL;
    L->kind = BND_LIN_MATMUL;
    L->M = M, L->K = K, L->N = N;
    L->n_in = M * K, L->n_out = M * N;
    L->fan_in = K, L->fan_out = N;
    L->W = malloc((size_t)(K * N) * sizeof(double));
    L->Wabs = malloc((size_t)(K * N) * sizeof(double));
    if (!L->W || !L->Wabs) {
        bnd_lin_free(L);
        return NULL;
    }
    for (int64_t i = 0; i < K * N; i++) {
        L->W[i] = W[i];
        L->Wabs[i] = W[i] < 0 ? -W[i] : W[i];
    }
    return L;
}

bnd_linop *bnd_lin_csr_new(int64_t n_out, int64_t n_in, int64_t nnz)
{
    bnd_linop *L = calloc(1, sizeof *L);
    if (!L)
        return NULL;
    L->kind = BND_LIN_CSR;
    L->n_in = n_in, L->n_out = n_out;
    L->rowptr = calloc((size_t)n_out + 1, sizeof(int64_t));
    L->col = malloc((size_t)(nnz ? nnz : 1) * sizeof(int64_t));
    L->val = malloc((size_t)(nnz ? nnz : 1) * sizeof(double));
    if (!L->rowptr || !L->col || !L->val) {
        bnd_lin_free(L);
        return NULL;
    }
    return L;
}

bnd_linop *bnd_lin_csr_rows(int64_t n_out, int64_t n_in, int64_t per_row, const int64_t *col,
                            const double *val)
{
    int64_t nnz = 0;
    for (int64_t p = 0; p < n_out * per_row; p++)
        nnz += col[p] >= 0;
    bnd_linop *L = bnd_lin_csr_new(n_out, n_in, nnz);
    if (!L)
        return NULL;
    int64_t q = 0;
    for (int64_t o = 0; o < n_out; o++) {
        L->rowptr[o] = q;
        for (int64_t t = 0; t < per_row; t++) {
            int64_t c = col[o * per_row + t];
            if (c < 0)
                continue;
            L->col[q] = c;
            L->val[q++] = val ? val[t] : 1.0;
        }
    }
    L->rowptr[n_out] = q;
    bnd_lin_csr_finish(L);
    return L;
}

void bnd_lin_csr_finish(bnd_linop *L)
{
    int64_t *cnt = calloc((size_t)L->n_in + 1, sizeof(int64_t));
    L->fan_in = 0;
    L->fan_out = 0;
    for (int64_t o = 0; o < L->n_out; o++) {
        int64_t nr = L->rowptr[o + 1] - L->rowptr[o];
        if (nr > L->fan_in)
            L->fan_in = nr;
        if (cnt)
            for (int64_t p = L->rowptr[o]; p < L->rowptr[o + 1]; p++)
                cnt[L->col[p]]++;
    }
    if (!cnt) {
        L->fan_out = L->n_out; /* a safe over-estimate */
        return;
    }
    for (int64_t j = 0; j < L->n_in; j++)
        if (cnt[j] > L->fan_out)
            L->fan_out = cnt[j];
    free(cnt);
}

bnd_linop *bnd_lin_conv_new(const bnd_conv_geom *g, const double *W)
{
    bnd_linop *L = calloc(1, sizeof *L);
    if (!L)
        return NULL;
    int64_t cg = g->C / g->group, mg = g->M / g->group, ck = cg * g->KH * g->KW;
    L->kind = BND_LIN_CONV;
    L->cv = *g;
    L->n_in = g->C * g->H * g->W;
    L->n_out = g->M * g->OH * g->OW;
    L->fan_in = ck;
    L->fan_out = mg * g->KH * g->KW; /* every (output channel, tap) of the group, at most */
    L->W = malloc((size_t)(g->M * ck) * sizeof(double));
    L->Wabs = malloc((size_t)(g->M * ck) * sizeof(double));
    L->cols = malloc((size_t)(ck * g->OH * g->OW) * sizeof(double));
    if (!L->W || !L->Wabs || !L->cols) {
        bnd_lin_free(L);
        return NULL;
    }
    for (int64_t i = 0; i < g->M * ck; i++) {
        L->W[i] = W[i];
        L->Wabs[i] = fabs(W[i]);
    }
    return L;
}

/* floor(a / b) and ceil(a / b) for b > 0 and any sign of a */
static int64_t div_floor(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static int64_t div_ceil(int64_t a, int64_t b)
{
    return a >= 0 ? (a + b - 1) / b : -(-a / b);
}

/* The output columns [*o0, *o1) whose input column ow·sw - pw + kw·dw lies
 * inside 0..W-1: a contiguous range, so the loops below need no test per
 * element (im2col/col2im were as costly as the products they feed). */
static void valid_cols(const bnd_conv_geom *g, int64_t kw, int64_t *o0, int64_t *o1)
{
    int64_t off = kw * g->dw - g->pw; /* iw = ow·sw + off */
    int64_t lo = div_ceil(-off, g->sw), hi = div_floor(g->W - 1 - off, g->sw) + 1;
    *o0 = lo < 0 ? 0 : (lo > g->OW ? g->OW : lo);
    *o1 = hi > g->OW ? g->OW : (hi < *o0 ? *o0 : hi);
}

/* cols (ck x OH·OW) of group gi from x (C x H x W); zero outside the input. */
static void im2col(const bnd_conv_geom *g, int64_t gi, const double *x, double *cols)
{
    int64_t cg = g->C / g->group, P = g->OH * g->OW;
    for (int64_t c = 0; c < cg; c++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++) {
                double *row = cols + ((c * g->KH + kh) * g->KW + kw) * P;
                const double *xc = x + (gi * cg + c) * g->H * g->W;
                int64_t o0, o1, off = kw * g->dw - g->pw;
                valid_cols(g, kw, &o0, &o1);
                for (int64_t oh = 0; oh < g->OH; oh++) {
                    int64_t ih = oh * g->sh - g->ph + kh * g->dh;
                    double *r = row + oh * g->OW;
                    if (ih < 0 || ih >= g->H) {
                        memset(r, 0, (size_t)g->OW * sizeof(double));
                        continue;
                    }
                    int64_t base = ih * g->W + off; /* input index of ow = 0 */
                    for (int64_t ow = 0; ow < o0; ow++)
                        r[ow] = 0.0;
                    if (g->sw == 1 && o1 > o0)
                        memcpy(r + o0, xc + base + o0, (size_t)(o1 - o0) * sizeof(double));
                    else
                        for (int64_t ow = o0; ow < o1; ow++)
                            r[ow] = xc[base + ow * g->sw];
                    for (int64_t ow = o1; ow < g->OW; ow++)
                        r[ow] = 0.0;
                }
            }
}

/* x (C x H x W) += the columns of group gi scattered back (adjoint of im2col). */
static void col2im(const bnd_conv_geom *g, int64_t gi, const double *cols, double *x)
{
    int64_t cg = g->C / g->group, P = g->OH * g->OW;
    for (int64_t c = 0; c < cg; c++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++) {
                const double *row = cols + ((c * g->KH + kh) * g->KW + kw) * P;
                double *xc = x + (gi * cg + c) * g->H * g->W;
                int64_t o0, o1, off = kw * g->dw - g->pw;
                valid_cols(g, kw, &o0, &o1);
                for (int64_t oh = 0; oh < g->OH; oh++) {
                    int64_t ih = oh * g->sh - g->ph + kh * g->dh;
                    if (ih < 0 || ih >= g->H)
                        continue;
                    const double *r = row + oh * g->OW;
                    int64_t base = ih * g->W + off;
                    for (int64_t ow = o0; ow < o1; ow++)
                        xc[base + ow * g->sw] += r[ow];
                }
            }
}

static void conv_forward(const bnd_linop *L, int use_abs, int64_t k, const double *X, double *Y)
{
    const bnd_conv_geom *g = &L->cv;
    int64_t cg = g->C / g->group, mg = g->M / g->group, ck = cg * g->KH * g->KW;
    int64_t P = g->OH * g->OW;
    const double *W = use_abs ? L->Wabs : L->W;
    for (int64_t r = 0; r < k; r++)
        for (int64_t gi = 0; gi < g->group; gi++) {
            im2col(g, gi, X + r * L->n_in, L->cols);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mg, (int)P, (int)ck, 1.0,
                        W + gi * mg * ck, (int)ck, L->cols, (int)P, 0.0,
                        Y + r * L->n_out + gi * mg * P, (int)P);
        }
}

static void conv_backward(const bnd_linop *L, int64_t k, const double *A, double *B)
{
    const bnd_conv_geom *g = &L->cv;
    int64_t cg = g->C / g->group, mg = g->M / g->group, ck = cg * g->KH * g->KW;
    int64_t P = g->OH * g->OW;
    for (int64_t r = 0; r < k; r++)
        for (int64_t gi = 0; gi < g->group; gi++) {
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ck, (int)P, (int)mg, 1.0,
                        L->W + gi * mg * ck, (int)ck, A + r * L->n_out + gi * mg * P, (int)P,
                        0.0, L->cols, (int)P);
            col2im(g, gi, L->cols, B + r * L->n_in);
        }
}

void bnd_lin_free(bnd_linop *L)
{
    if (!L)
        return;
    free(L->cols);
    free(L->W);
    free(L->Wabs);
    free(L->rowptr);
    free(L->col);
    free(L->val);
    free(L);
}

void bnd_lin_forward(const bnd_linop *L, int use_abs, int64_t k, const double *X, double *Y)
{
    if (L->kind == BND_LIN_CONV) {
        conv_forward(L, use_abs, k, X, Y);
        return;
    }
    if (L->kind == BND_LIN_MATMUL) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(k * L->M), (int)L->N,
                    (int)L->K, 1.0, X, (int)L->K, use_abs ? L->Wabs : L->W, (int)L->N, 0.0, Y,
                    (int)L->N);
        return;
    }
    for (int64_t r = 0; r < k; r++) {
        const double *x = X + r * L->n_in;
        double *y = Y + r * L->n_out;
        for (int64_t o = 0; o < L->n_out; o++) {
            double s = 0;
            if (use_abs)
                for (int64_t p = L->rowptr[o]; p < L->rowptr[o + 1]; p++)
                    s += fabs(L->val[p]) * x[L->col[p]];
            else
                for (int64_t p = L->rowptr[o]; p < L->rowptr[o + 1]; p++)
                    s += L->val[p] * x[L->col[p]];
            y[o] = s;
        }
    }
}

/* A·W^T restricted to the columns of A that are not all zero (neurons a ReLU
 * relaxed to 0 contribute nothing): the same sums without exact-zero terms,
 * so the rounding analysis is unchanged. Returns 0 when not worth it. */
static int matmul_backward_sparse(const bnd_linop *L, int64_t rows, const double *A, double *B,
                                  int accumulate)
{
    int64_t N = L->N, K = L->K;
    if (rows < 8 || N < 16)
        return 0;
    unsigned char *nz = calloc((size_t)N, 1);
    if (!nz)
        return 0;
    for (int64_t r = 0; r < rows; r++) {
        const double *a = A + r * N;
        for (int64_t j = 0; j < N; j++)
            nz[j] |= a[j] != 0;
    }
    int64_t cnt = 0;
    for (int64_t j = 0; j < N; j++)
        cnt += nz[j];
    if (cnt * 4 > N * 3) {
        free(nz);
        return 0;
    }
    int64_t *idx = malloc((size_t)(cnt ? cnt : 1) * sizeof(int64_t));
    double *As = malloc((size_t)(rows * cnt + 1) * sizeof(double));
    double *Ws = malloc((size_t)(K * cnt + 1) * sizeof(double));
    if (!idx || !As || !Ws) {
        free(nz), free(idx), free(As), free(Ws);
        return 0;
    }
    for (int64_t j = 0, c = 0; j < N; j++)
        if (nz[j])
            idx[c++] = j;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cnt; c++)
            As[r * cnt + c] = A[r * N + idx[c]];
    for (int64_t i = 0; i < K; i++)
        for (int64_t c = 0; c < cnt; c++)
            Ws[i * cnt + c] = L->W[i * N + idx[c]];
    if (cnt == 0) {
        if (!accumulate)
            memset(B, 0, (size_t)(rows * K) * sizeof(double));
    } else {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)K, (int)cnt, 1.0,
                    As, (int)cnt, Ws, (int)cnt, accumulate ? 1.0 : 0.0, B, (int)K);
    }
    free(nz), free(idx), free(As), free(Ws);
    return 1;
}

void bnd_lin_ibp(const bnd_linop *L, const double *c, const double *rm, double *yc, double *yrm)
{
    if (L->kind != BND_LIN_CSR) {
        bnd_lin_forward(L, 0, 1, c, yc);
        bnd_lin_forward(L, 1, 2, rm, yrm);
        return;
    }
    const double *r = rm, *m = rm + L->n_in;
    double *yr = yrm, *ym = yrm + L->n_out;
    for (int64_t o = 0; o < L->n_out; o++) {
        double sc = 0, sr = 0, sm = 0;
        for (int64_t p = L->rowptr[o]; p < L->rowptr[o + 1]; p++) {
            int64_t j = L->col[p];
            double v = L->val[p], a = v < 0 ? -v : v;
            sc += v * c[j];
            sr += a * r[j];
            sm += a * m[j];
        }
        yc[o] = sc, yr[o] = sr, ym[o] = sm;
    }
}

void bnd_lin_backward(const bnd_linop *L, int64_t k, const double *A, double *B, int accumulate)
{
    if (L->kind == BND_LIN_MATMUL) {
        if (matmul_backward_sparse(L, k * L->M, A, B, accumulate))
            return;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(k * L->M), (int)L->K,
                    (int)L->N, 1.0, A, (int)L->N, L->W, (int)L->N, accumulate ? 1.0 : 0.0, B,
                    (int)L->K);
        return;
    }
    if (!accumulate)
        memset(B, 0, (size_t)(k * L->n_in) * sizeof(double));
    if (L->kind == BND_LIN_CONV) {
        conv_backward(L, k, A, B);
        return;
    }
    for (int64_t r = 0; r < k; r++) {
        const double *a = A + r * L->n_out;
        double *b = B + r * L->n_in;
        for (int64_t o = 0; o < L->n_out; o++) {
            double ao = a[o];
            if (ao == 0)
                continue;
            for (int64_t p = L->rowptr[o]; p < L->rowptr[o + 1]; p++)
                b[L->col[p]] += ao * L->val[p];
        }
    }
}
