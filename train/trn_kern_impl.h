/* trn_kern_impl.h: the layer kernels of the trainer, written once over a scalar
 * type REAL and compiled twice (trn_kern_f.c: float for training, trn_kern_d.c:
 * double for the gradient checks in the tests). Included only by those two.
 *
 * Layout is batch-major NCHW. Every layer has a plain pass (x -> y) and an
 * interval pass in centre/radius form (m, r): affine maps send the centre
 * through W and the radius through |W|; ReLU maps [m-r, m+r] to
 * [relu(m-r), relu(m+r)]. Backward functions overwrite the input gradients
 * (dx, dm, dr) and accumulate parameter gradients (dW, db). Functions that take
 * an image range [n0, n1) are the units the driver splits across threads. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)
/* Sums over many elements: let the compiler reassociate them into vector lanes
 * (the order is still fixed, so results stay reproducible). */
#define REDUCTION __attribute__((optimize("O3", "fast-math")))

static void FN(gemm)(int ta, int tb, int M, int N, int K, REAL alpha, const REAL *A, int lda,
                     const REAL *B, int ldb, REAL beta, REAL *C, int ldc)
{
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
         alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- convolution: y_n = W * im2col(x_n) + b ---- */

/* col[(ci*k + ky)*k + kx][oh*wo + ow] = x[ci][oh*s - p + ky][ow*s - p + kx] (0 outside). */
static void FN(im2col)(const trn_conv_shape *sh, const REAL *x, REAL *col)
{
    int k = sh->k, s = sh->stride, p = sh->pad, H = sh->h, W = sh->w, ho = sh->ho, wo = sh->wo;
    for (int ci = 0; ci < sh->cin; ci++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                REAL *row = col + ((size_t)(ci * k + ky) * k + kx) * ho * wo;
                int ow0 = 0, ow1 = wo; /* valid ow: 0 <= ow*s - p + kx < W */
                while (ow0 < wo && ow0 * s - p + kx < 0)
                    ow0++;
                while (ow1 > ow0 && (ow1 - 1) * s - p + kx >= W)
                    ow1--;
                for (int oh = 0; oh < ho; oh++) {
                    int ih = oh * s - p + ky;
                    REAL *dst = row + (size_t)oh * wo;
                    if (ih < 0 || ih >= H) {
                        for (int ow = 0; ow < wo; ow++)
                            dst[ow] = 0;
                        continue;
                    }
                    const REAL *src = x + ((size_t)ci * H + ih) * W - p + kx;
                    for (int ow = 0; ow < ow0; ow++)
                        dst[ow] = 0;
                    if (s == 1)
                        for (int ow = ow0; ow < ow1; ow++)
                            dst[ow] = src[ow];
                    else
                        for (int ow = ow0; ow < ow1; ow++)
                            dst[ow] = src[ow * s];
                    for (int ow = ow1; ow < wo; ow++)
                        dst[ow] = 0;
                }
            }
}

/* The adjoint of im2col: dx (zeroed here) += scatter of dcol. */
static void FN(col2im)(const trn_conv_shape *sh, const REAL *col, REAL *dx)
{
    int k = sh->k, s = sh->stride, p = sh->pad, H = sh->h, W = sh->w, ho = sh->ho, wo = sh->wo;
    for (size_t i = 0; i < (size_t)sh->cin * H * W; i++)
        dx[i] = 0;
    for (int ci = 0; ci < sh->cin; ci++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const REAL *row = col + ((size_t)(ci * k + ky) * k + kx) * ho * wo;
                int ow0 = 0, ow1 = wo;
                while (ow0 < wo && ow0 * s - p + kx < 0)
                    ow0++;
                while (ow1 > ow0 && (ow1 - 1) * s - p + kx >= W)
                    ow1--;
                for (int oh = 0; oh < ho; oh++) {
                    int ih = oh * s - p + ky;
                    if (ih < 0 || ih >= H)
                        continue;
                    const REAL *src = row + (size_t)oh * wo;
                    REAL *dst = dx + ((size_t)ci * H + ih) * W - p + kx;
                    if (s == 1)
                        for (int ow = ow0; ow < ow1; ow++)
                            dst[ow] += src[ow];
                    else
                        for (int ow = ow0; ow < ow1; ow++)
                            dst[ow * s] += src[ow];
                }
            }
}

/* Convolutions without im2col: a chunk of nb images is copied zero-padded into
 * planes laid end to end per channel, inpad[ci][n][Hp][Wp], and the output is
 * computed on the same extended grid, ext[co][n][Hp][Wp], where position
 * q = (n Hp + oh) Wp + ow is a real output when oh < ho and ow < wo. Then each
 * kernel tap (ky, kx) is ONE gemm over every image of the chunk:
 *   ext[co][q] += sum_ci W[co][ci][ky][kx] inpad[ci][q + ky Wp + kx],
 * the input matrix being the padded planes shifted by ky Wp + kx (row stride
 * nb Hp Wp). The extra grid positions cost (Hp Wp)/(ho wo) - 1 more flops
 * (15% at 28x28) but no im2col copies, and each gemm spans nb images.
 * Stride s > 1 is the same after splitting the padded input into s x s phases,
 * phase (a, b) holding rows a, a+s, ... and columns b, b+s, ... (planes of
 * Hq x Wq = ceil(Hp/s) x ceil(Wp/s)): tap (ky, kx) reads phase (ky%s, kx%s)
 * shifted by (ky/s) Wq + kx/s, a stride-1 access again. */
int FN(trn_conv_force) = -1; /* tests and benchmarks: 0 im2col, 1 tap gemms, -1 automatic */
static int FN(conv_direct)(const trn_conv_shape *sh)
{
    if (FN(trn_conv_force) >= 0)
        return FN(trn_conv_force);
    /* measured per 256 images: taps faster for cin 1..16 (e.g. 4->4 at 28x28: fwd 2.3 vs
     * 2.8 ms, bwd 4.4 vs 7.4 ms), im2col faster at cin 32 (14x14: 18 vs 24, 41 vs 56 ms) */
    return sh->cin < 32;
}

typedef struct {
    int s, Hq, Wq;      /* stride, phase plane */
    size_t plane, ld;   /* Hq Wq, nb Hq Wq (row stride of every gemm operand) */
    size_t span;        /* grid positions every tap can read */
} FN(conv_grid);

static FN(conv_grid) FN(conv_grid_of)(const trn_conv_shape *sh, int nb)
{
    FN(conv_grid) g;
    int Hp = sh->h + 2 * sh->pad, Wp = sh->w + 2 * sh->pad, m = (sh->k - 1) / sh->stride;
    g.s = sh->stride;
    g.Hq = (Hp + g.s - 1) / g.s;
    g.Wq = (Wp + g.s - 1) / g.s;
    g.plane = (size_t)g.Hq * g.Wq;
    g.ld = (size_t)nb * g.plane;
    g.span = g.ld - (size_t)m * g.Wq - m;
    return g;
}

/* offset of tap t's shifted input in the split buffer (phases of cin rows each) */
static size_t FN(conv_tap_off)(const trn_conv_shape *sh, const FN(conv_grid) *g, int t)
{
    int ky = t / sh->k, kx = t % sh->k, s = g->s;
    return ((size_t)(ky % s) * s + kx % s) * sh->cin * g->ld + (size_t)(ky / s) * g->Wq + kx / s;
}

REDUCTION static REAL FN(sum)(const REAL *x, size_t n)
{
    REAL s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

/* W[co][ci][t] -> wt[t][co][ci] (t = ky k + kx) */
static void FN(conv_taps)(const trn_conv_shape *sh, const REAL *W, REAL *wt)
{
    int kk = sh->k * sh->k;
    for (int co = 0; co < sh->cout; co++)
        for (int ci = 0; ci < sh->cin; ci++)
            for (int t = 0; t < kk; t++)
                wt[((size_t)t * sh->cout + co) * sh->cin + ci] = W[((size_t)co * sh->cin + ci) * kk + t];
}

/* inph[a][b][ci][n][i][j] = x[n][ci][i s + a - p][j s + b - p] (0 outside) */
static void FN(conv_split_in)(const trn_conv_shape *sh, const FN(conv_grid) *g, const REAL *x,
                              int nb, REAL *inph)
{
    int s = g->s, p = sh->pad, H = sh->h, W = sh->w, Hq = g->Hq, Wq = g->Wq;
    size_t in_sz = (size_t)sh->cin * H * W;
    for (int a = 0; a < s; a++)
        for (int b = 0; b < s; b++)
            for (int ci = 0; ci < sh->cin; ci++)
                for (int n = 0; n < nb; n++) {
                    REAL *dst = inph + (((size_t)a * s + b) * sh->cin + ci) * g->ld + n * g->plane;
                    const REAL *src = x + n * in_sz + (size_t)ci * H * W;
                    /* valid j: 0 <= j s + b - p < W */
                    int j0 = 0, j1 = Wq;
                    while (j0 < Wq && j0 * s + b - p < 0)
                        j0++;
                    while (j1 > j0 && (j1 - 1) * s + b - p >= W)
                        j1--;
                    for (int i = 0; i < Hq; i++) {
                        REAL *row = dst + (size_t)i * Wq;
                        int h = i * s + a - p;
                        if (h < 0 || h >= H || j0 >= j1) {
                            for (int j = 0; j < Wq; j++)
                                row[j] = 0;
                            continue;
                        }
                        const REAL *srow = src + (size_t)h * W + b - p;
                        for (int j = 0; j < j0; j++)
                            row[j] = 0;
                        if (s == 1)
                            for (int j = j0; j < j1; j++)
                                row[j] = srow[j];
                        else
                            for (int j = j0; j < j1; j++)
                                row[j] = srow[j * s];
                        for (int j = j1; j < Wq; j++)
                            row[j] = 0;
                    }
                }
}

/* The adjoint of conv_split_in: dx[n][ci][h][w] = dph[...] at the matching phase position. */
static void FN(conv_merge_dx)(const trn_conv_shape *sh, const FN(conv_grid) *g, const REAL *dph,
                              int nb, REAL *dx)
{
    int s = g->s, p = sh->pad, H = sh->h, W = sh->w, Wq = g->Wq;
    size_t in_sz = (size_t)sh->cin * H * W;
    for (int n = 0; n < nb; n++)
        for (int ci = 0; ci < sh->cin; ci++)
            for (int h = 0; h < H; h++) {
                int hp = h + p, a = hp % s, i = hp / s;
                REAL *dst = dx + n * in_sz + ((size_t)ci * H + h) * W;
                for (int b = 0; b < s; b++) {
                    const REAL *src = dph + (((size_t)a * s + b) * sh->cin + ci) * g->ld +
                                      n * g->plane + (size_t)i * Wq;
                    /* w with (w + p) % s == b: w = w0, w0 + s, ... */
                    int w0 = ((b - p) % s + s) % s;
                    if (s == 1)
                        for (int w = 0; w < W; w++)
                            dst[w] = src[w + p];
                    else
                        for (int w = w0; w < W; w += s)
                            dst[w] = src[(w + p) / s];
                }
            }
}

static void FN(conv_fwd_direct)(const trn_conv_shape *sh, const REAL *wt, const REAL *b,
                                const REAL *x, REAL *y, int nb, REAL *scratch)
{
    FN(conv_grid) g = FN(conv_grid_of)(sh, nb);
    int ho = sh->ho, wo = sh->wo;
    REAL *inph = scratch, *ext = scratch + (size_t)g.s * g.s * sh->cin * g.ld;
    FN(conv_split_in)(sh, &g, x, nb, inph);
    for (int t = 0; t < sh->k * sh->k; t++)
        FN(gemm)(0, 0, sh->cout, (int)g.span, sh->cin, 1, wt + (size_t)t * sh->cout * sh->cin,
                 sh->cin, inph + FN(conv_tap_off)(sh, &g, t), (int)g.ld, t ? 1 : 0, ext, (int)g.ld);
    size_t out_sz = (size_t)sh->cout * ho * wo;
    for (int n = 0; n < nb; n++)
        for (int co = 0; co < sh->cout; co++) {
            const REAL *src = ext + (size_t)co * g.ld + n * g.plane;
            REAL *dst = y + n * out_sz + (size_t)co * ho * wo;
            REAL bias = b ? b[co] : 0;
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++)
                    dst[oh * wo + ow] = src[(size_t)oh * g.Wq + ow] + bias;
        }
}

/* dwt[t] += dyext inph_t^T; dx = merge of sum_t shift_t(wt[t]^T dyext). */
static void FN(conv_bwd_direct)(const trn_conv_shape *sh, const REAL *wt, const REAL *x,
                                const REAL *dy, REAL *dwt, REAL *db, REAL *dx, int nb,
                                REAL *scratch)
{
    FN(conv_grid) g = FN(conv_grid_of)(sh, nb);
    int ho = sh->ho, wo = sh->wo, Wq = g.Wq;
    size_t split = (size_t)g.s * g.s * sh->cin * g.ld;
    REAL *inph = scratch, *dyext = inph + split, *dph = dyext + (size_t)sh->cout * g.ld;
    if (dwt)
        FN(conv_split_in)(sh, &g, x, nb, inph);
    size_t out_sz = (size_t)sh->cout * ho * wo;
    for (int co = 0; co < sh->cout; co++) {
        REAL sb = 0;
        for (int n = 0; n < nb; n++) {
            REAL *dst = dyext + (size_t)co * g.ld + n * g.plane;
            const REAL *src = dy + n * out_sz + (size_t)co * ho * wo;
            for (int oh = 0; oh < ho; oh++) {
                REAL *row = dst + (size_t)oh * Wq;
                const REAL *srow = src + (size_t)oh * wo;
                for (int ow = 0; ow < wo; ow++)
                    row[ow] = srow[ow];
                for (int ow = wo; ow < Wq; ow++)
                    row[ow] = 0;
            }
            for (size_t i = (size_t)ho * Wq; i < g.plane; i++)
                dst[i] = 0;
            if (db)
                sb += FN(sum)(src, (size_t)ho * wo);
        }
        if (db)
            db[co] += sb;
    }
    for (int t = 0; dwt && t < sh->k * sh->k; t++)
        FN(gemm)(0, 1, sh->cout, sh->cin, (int)g.span, 1, dyext, (int)g.ld,
                 inph + FN(conv_tap_off)(sh, &g, t), (int)g.ld, 1,
                 dwt + (size_t)t * sh->cout * sh->cin, sh->cin);
    if (!dx)
        return;
    for (size_t i = 0; i < split; i++)
        dph[i] = 0;
    for (int t = 0; t < sh->k * sh->k; t++)
        FN(gemm)(1, 0, sh->cin, (int)g.span, sh->cout, 1, wt + (size_t)t * sh->cout * sh->cin,
                 sh->cin, dyext, (int)g.ld, 1, dph + FN(conv_tap_off)(sh, &g, t), (int)g.ld);
    FN(conv_merge_dx)(sh, &g, dph, nb, dx);
}

/* y[n] = W x[n] + b for n in [n0, n1); b may be NULL. scratch: trn_conv_scratch(sh). */
void FN(trn_conv_fwd)(const trn_conv_shape *sh, const REAL *W, const REAL *b, const REAL *x,
                      REAL *y, int n0, int n1, REAL *scratch)
{
    int K = sh->cin * sh->k * sh->k, P = sh->ho * sh->wo;
    size_t in_sz = (size_t)sh->cin * sh->h * sh->w, out_sz = (size_t)sh->cout * P;
    if (FN(conv_direct)(sh)) {
        REAL *wt = scratch;
        FN(conv_taps)(sh, W, wt);
        for (int n = n0; n < n1; n += TRN_CONV_CHUNK) {
            int nb = n1 - n < TRN_CONV_CHUNK ? n1 - n : TRN_CONV_CHUNK;
            FN(conv_fwd_direct)(sh, wt, b, x + n * in_sz, y + n * out_sz, nb,
                                scratch + (size_t)sh->cout * K);
        }
        return;
    }
    REAL *col = scratch;
    for (int n = n0; n < n1; n++) {
        FN(im2col)(sh, x + n * in_sz, col);
        REAL *yn = y + n * out_sz;
        if (b)
            for (int co = 0; co < sh->cout; co++)
                for (int i = 0; i < P; i++)
                    yn[(size_t)co * P + i] = b[co];
        FN(gemm)(0, 0, sh->cout, P, K, 1, W, K, col, P, b ? 1 : 0, yn, P);
    }
}

/* dW += dy_n col_n^T, db += sum dy_n (db may be NULL), dx_n = col2im(W^T dy_n)
 * (dx may be NULL; dW may be NULL, and then x is not read). scratch: trn_conv_scratch(sh). */
void FN(trn_conv_bwd)(const trn_conv_shape *sh, const REAL *W, const REAL *x, const REAL *dy,
                      REAL *dW, REAL *db, REAL *dx, int n0, int n1, REAL *scratch)
{
    int K = sh->cin * sh->k * sh->k, P = sh->ho * sh->wo;
    size_t in_sz = (size_t)sh->cin * sh->h * sh->w, out_sz = (size_t)sh->cout * P;
    if (FN(conv_direct)(sh)) {
        size_t nw = (size_t)sh->cout * K;
        REAL *wt = scratch, *dwt = scratch + nw;
        FN(conv_taps)(sh, W, wt);
        for (size_t i = 0; i < nw; i++)
            dwt[i] = 0;
        for (int n = n0; n < n1; n += TRN_CONV_CHUNK) {
            int nb = n1 - n < TRN_CONV_CHUNK ? n1 - n : TRN_CONV_CHUNK;
            FN(conv_bwd_direct)(sh, wt, dW ? x + n * in_sz : NULL, dy + n * out_sz,
                                dW ? dwt : NULL, db, dx ? dx + n * in_sz : NULL, nb,
                                scratch + 2 * nw);
        }
        if (!dW)
            return;
        int kk = sh->k * sh->k;
        for (int co = 0; co < sh->cout; co++)
            for (int ci = 0; ci < sh->cin; ci++)
                for (int t = 0; t < kk; t++)
                    dW[((size_t)co * sh->cin + ci) * kk + t] += dwt[((size_t)t * sh->cout + co) * sh->cin + ci];
        return;
    }
    REAL *col = scratch;
    for (int n = n0; n < n1; n++) {
        const REAL *dyn = dy + n * out_sz;
        if (dW) {
            FN(im2col)(sh, x + n * in_sz, col);
            FN(gemm)(0, 1, sh->cout, K, P, 1, dyn, P, col, P, 1, dW, K);
        }
        if (db)
            for (int co = 0; co < sh->cout; co++)
                db[co] += FN(sum)(dyn + (size_t)co * P, (size_t)P);
        if (dx) {
            FN(gemm)(1, 0, K, P, sh->cout, 1, W, K, dyn, P, 0, col, P);
            FN(col2im)(sh, col, dx + n * in_sz);
        }
    }
}

/* ---- linear: y = x W^T + b, W is [out x in] ---- */

void FN(trn_lin_fwd)(const REAL *W, const REAL *b, const REAL *x, REAL *y, int N, int in, int out)
{
    if (b)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < out; o++)
                y[(size_t)n * out + o] = b[o];
    FN(gemm)(0, 1, N, out, in, 1, x, in, W, in, b ? 1 : 0, y, out);
}

void FN(trn_lin_bwd)(const REAL *W, const REAL *x, const REAL *dy, REAL *dW, REAL *db, REAL *dx,
                     int N, int in, int out)
{
    if (dW)
        FN(gemm)(1, 0, out, in, N, 1, dy, out, x, in, 1, dW, in);
    if (db)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < out; o++)
                db[o] += dy[(size_t)n * out + o];
    if (dx)
        FN(gemm)(0, 0, N, in, out, 1, dy, out, W, in, 0, dx, in);
}

/* ---- batch normalisation ---- */

/* Batch mean and biased variance per channel over N*HW values (double sums). */
REDUCTION void FN(trn_bn_stats)(const REAL *x, int N, int C, int HW, double *mean, double *var)
{
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int n = 0; n < N; n++) {
            const REAL *p = x + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++)
                s += p[i];
        }
        double mu = s / ((double)N * HW), s2 = 0;
        for (int n = 0; n < N; n++) {
            const REAL *p = x + ((size_t)n * C + c) * HW;
            for (int i = 0; i < HW; i++)
                s2 += (p[i] - mu) * (p[i] - mu);
        }
        mean[c] = mu;
        var[c] = s2 / ((double)N * HW);
    }
}

/* y = x * scale[c] + shift[c] (shift may be NULL) for images [n0, n1). */
void FN(trn_bn_affine)(const REAL *x, REAL *y, int C, int HW, const REAL *scale,
                       const REAL *shift, int n0, int n1)
{
    for (int n = n0; n < n1; n++)
        for (int c = 0; c < C; c++) {
            const REAL *p = x + ((size_t)n * C + c) * HW;
            REAL *q = y + ((size_t)n * C + c) * HW;
            REAL a = scale[c], t = shift ? shift[c] : 0;
            for (int i = 0; i < HW; i++)
                q[i] = p[i] * a + t;
        }
}

/* Per-channel sums for the BN backward over images [n0, n1), added into
 * sums[5][C]: sum gy, sum gy (x-mu), sum gm, sum gm (m-mu), sum gr r.
 * The interval arguments (m, r, gm, gr) may all be NULL. */
REDUCTION void FN(trn_bn_bwd_sums)(const REAL *x, const REAL *gy, const REAL *m, const REAL *gm,
                         const REAL *r, const REAL *gr, int C, int HW, const double *mean,
                         double *sums, int n0, int n1)
{
    for (int n = n0; n < n1; n++)
        for (int c = 0; c < C; c++) {
            size_t o = ((size_t)n * C + c) * HW;
            REAL mu = (REAL)mean[c];
            REAL s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
            for (int i = 0; i < HW; i++) {
                s0 += gy[o + i];
                s1 += gy[o + i] * (x[o + i] - mu);
            }
            if (m)
                for (int i = 0; i < HW; i++) {
                    s2 += gm[o + i];
                    s3 += gm[o + i] * (m[o + i] - mu);
                    s4 += gr[o + i] * r[o + i];
                }
            sums[c] += s0;
            sums[C + c] += s1;
            sums[2 * C + c] += s2;
            sums[3 * C + c] += s3;
            sums[4 * C + c] += s4;
        }
}

/* From the sums: parameter gradients (added to dgamma, dbeta) and the
 * per-channel coefficients of the input gradient, coef[4][C]:
 * dx = gy*g_s + coef0 + coef1*(x-mu), dm = gm*g_s, dr = gr*|g_s|, with g_s = gamma*s.
 * With y = gamma (x-mu) s + beta, s = (var+eps)^-1/2, m' = gamma (m-mu) s + beta,
 * r' = |gamma| s r: dmu = -gamma s (S0+S2), ds = gamma (S1+S3) + |gamma| S4,
 * dvar = -ds s^3 / 2, and dx gets dmu/M + dvar 2 (x-mu)/M (M = N*HW; the
 * mean's own effect on var vanishes since sum (x-mu) = 0). */
void FN(trn_bn_bwd_coef)(const double *sums, const REAL *gamma, const double *mean,
                         const double *var, double eps, int C, double M, REAL *dgamma,
                         REAL *dbeta, double *coef)
{
    (void)mean;
    for (int c = 0; c < C; c++) {
        double S0 = sums[c], S1 = sums[C + c], S2 = sums[2 * C + c], S3 = sums[3 * C + c],
               S4 = sums[4 * C + c];
        double s = 1.0 / sqrt(var[c] + eps), g = gamma[c], sg = g >= 0 ? 1.0 : -1.0;
        dbeta[c] += (REAL)(S0 + S2);
        dgamma[c] += (REAL)((S1 + S3) * s + sg * s * S4);
        double dmu = -g * s * (S0 + S2);
        double ds = g * (S1 + S3) + fabs(g) * S4;
        double dvar = -0.5 * ds * s * s * s;
        coef[c] = g * s;
        coef[C + c] = dmu / M;
        coef[2 * C + c] = 2.0 * dvar / M;
        coef[3 * C + c] = fabs(g) * s;
    }
}

void FN(trn_bn_bwd_apply)(const REAL *x, const REAL *gy, const REAL *gm, const REAL *gr,
                          REAL *dx, REAL *dm, REAL *dr, int C, int HW, const double *mean,
                          const double *coef, int n0, int n1)
{
    for (int n = n0; n < n1; n++)
        for (int c = 0; c < C; c++) {
            size_t o = ((size_t)n * C + c) * HW;
            REAL a = (REAL)coef[c], b0 = (REAL)coef[C + c], b1 = (REAL)coef[2 * C + c],
                 ar = (REAL)coef[3 * C + c], mu = (REAL)mean[c];
            for (int i = 0; i < HW; i++)
                dx[o + i] = gy[o + i] * a + b0 + b1 * (x[o + i] - mu);
            if (dm)
                for (int i = 0; i < HW; i++) {
                    dm[o + i] = gm[o + i] * a;
                    dr[o + i] = gr[o + i] * ar;
                }
        }
}

/* ---- ReLU: element ranges [i0, i1) ---- */

void FN(trn_relu_fwd)(const REAL *x, REAL *y, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i++)
        y[i] = x[i] > 0 ? x[i] : 0;
}

void FN(trn_relu_bwd)(const REAL *x, const REAL *gy, REAL *gx, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i++)
    {
        REAL g = gy[i];
        gx[i] = x[i] > 0 ? g : 0;
    }
}

void FN(trn_relu_ibp_fwd)(const REAL *m, const REAL *r, REAL *mo, REAL *ro, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i++) {
        REAL l = m[i] - r[i], u = m[i] + r[i];
        l = l > 0 ? l : 0;
        u = u > 0 ? u : 0;
        mo[i] = (u + l) * (REAL)0.5;
        ro[i] = (u - l) * (REAL)0.5;
    }
}

/* m' = (relu(u)+relu(l))/2, r' = (relu(u)-relu(l))/2: gu = [u>0](gm'+gr')/2,
 * gl = [l>0](gm'-gr')/2, gm = gu + gl, gr = gu - gl. */
void FN(trn_relu_ibp_bwd)(const REAL *m, const REAL *r, const REAL *gmo, const REAL *gro, REAL *gm,
                          REAL *gr, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i++) {
        /* written without branches (masks as 0/1 factors) so that it vectorises */
        REAL l = m[i] - r[i], u = m[i] + r[i], a = gmo[i], b = gro[i];
        REAL su = u > 0 ? (REAL)0.5 : 0, sl = l > 0 ? (REAL)0.5 : 0;
        REAL gu = (a + b) * su, gl = (a - b) * sl;
        gm[i] = gu + gl;
        gr[i] = gu - gl;
    }
}

/* ---- the last layer with the specification folded in ----
 * For sample n with label y and each j != y (in increasing order), the margin
 * z_y - z_j is the linear function w' = W_y - W_j, b' = b_y - b_j; over the box
 * (m, r) its lower bound is lb = w'.m + b' - |w'|.r. Folding the spec matrix in
 * before taking |.| is tighter than subtracting logit bounds. */
void FN(trn_margin_fwd)(const REAL *W, const REAL *b, const REAL *m, const REAL *r, const int *y,
                        int N, int in, int ncls, REAL *lb)
{
    for (int n = 0; n < N; n++) {
        const REAL *mn = m + (size_t)n * in, *rn = r + (size_t)n * in, *wy = W + (size_t)y[n] * in;
        int k = 0;
        for (int j = 0; j < ncls; j++) {
            if (j == y[n])
                continue;
            const REAL *wj = W + (size_t)j * in;
            REAL s = b[y[n]] - b[j];
            for (int i = 0; i < in; i++) {
                REAL w = wy[i] - wj[i];
                s += w * mn[i] - (w >= 0 ? w : -w) * rn[i];
            }
            lb[(size_t)n * (ncls - 1) + k++] = s;
        }
    }
}

/* Given glb = dL/dlb: dW, db accumulate; dm, dr overwritten. */
void FN(trn_margin_bwd)(const REAL *W, const REAL *m, const REAL *r, const int *y, const REAL *glb,
                        int N, int in, int ncls, REAL *dW, REAL *db, REAL *dm, REAL *dr)
{
    for (int n = 0; n < N; n++) {
        const REAL *mn = m + (size_t)n * in, *rn = r + (size_t)n * in, *wy = W + (size_t)y[n] * in;
        REAL *dmn = dm + (size_t)n * in, *drn = dr + (size_t)n * in;
        for (int i = 0; i < in; i++)
            dmn[i] = drn[i] = 0;
        int k = 0;
        for (int j = 0; j < ncls; j++) {
            if (j == y[n])
                continue;
            REAL g = glb[(size_t)n * (ncls - 1) + k++];
            const REAL *wj = W + (size_t)j * in;
            REAL *dwy = dW + (size_t)y[n] * in, *dwj = dW + (size_t)j * in;
            db[y[n]] += g;
            db[j] -= g;
            for (int i = 0; i < in; i++) {
                REAL w = wy[i] - wj[i], sg = w >= 0 ? 1 : -1;
                dmn[i] += g * w;
                drn[i] -= g * sg * w;
                REAL dw = g * (mn[i] - sg * rn[i]);
                dwy[i] += dw;
                dwj[i] -= dw;
            }
        }
    }
}

/* ---- losses ---- */

/* Mean cross-entropy of logits z[N x ncls]; adds weight * dL/dz into gz (if not NULL).
 * Counts errors (argmax != y, ties count as errors) into *n_err. */
double FN(trn_ce_loss)(const REAL *z, const int *y, int N, int ncls, REAL weight, REAL *gz,
                       int *n_err)
{
    double total = 0;
    int errs = 0;
    for (int n = 0; n < N; n++) {
        const REAL *zn = z + (size_t)n * ncls;
        double mx = zn[0];
        for (int j = 1; j < ncls; j++)
            mx = zn[j] > mx ? zn[j] : mx;
        double se = 0;
        for (int j = 0; j < ncls; j++)
            se += exp(zn[j] - mx);
        total += log(se) + mx - zn[y[n]];
        int wrong = 0;
        for (int j = 0; j < ncls; j++)
            if (j != y[n] && zn[j] >= zn[y[n]])
                wrong = 1;
        errs += wrong;
        if (gz)
            for (int j = 0; j < ncls; j++)
                gz[(size_t)n * ncls + j] +=
                    (REAL)(weight * (exp(zn[j] - mx) / se - (j == y[n])) / N);
    }
    if (n_err)
        *n_err = errs;
    return total / N;
}

/* Robust loss: mean over n of CE([0, -lb_n], 0) = log(1 + sum_j exp(-lb_nj)).
 * Adds weight * dL/dlb into glb (if not NULL); counts samples with some lb <= 0
 * (not verified) into *n_err. */
double FN(trn_robust_loss)(const REAL *lb, int N, int k, REAL weight, REAL *glb, int *n_err)
{
    double total = 0;
    int errs = 0;
    for (int n = 0; n < N; n++) {
        const REAL *l = lb + (size_t)n * k;
        double mx = 0;
        int bad = 0;
        for (int j = 0; j < k; j++) {
            mx = -l[j] > mx ? -l[j] : mx;
            bad |= !(l[j] > 0);
        }
        errs += bad;
        double se = exp(-mx);
        for (int j = 0; j < k; j++)
            se += exp(-l[j] - mx);
        total += log(se) + mx;
        if (glb)
            for (int j = 0; j < k; j++)
                glb[(size_t)n * k + j] -= (REAL)(weight * exp(-l[j] - mx) / se / N);
    }
    if (n_err)
        *n_err = errs;
    return total / N;
}

/* ---- the warmup regularisers of Shi et al. 2021 on one ReLU layer ----
 * Input bounds of the ReLU in centre/radius form (c = m, r), n elements (the whole
 * batch tensor), tau0 = mean input radius, tol = tau.
 *   tightness = relu(tol - tau0 / max(mean r, 1e-12)) / tol
 *   relu      = [relu(tol - fold(rho_m)) + relu(tol - fold(rho_v))] / tol, where
 *   rho_m = sum(c [l>0]) / -sum(c [u<0]), rho_v = sum(d [l>0]) / sum(d [u<0]),
 *   d = (c - mean c)^2, fold(p) = min(p, 1/max(p, 1e-12)).
 * The relu term is dropped (returned as 0, *relu_ok = 0) when it is not finite.
 * The masks [l>0], [u<0] are constants for the gradient, as in autograd.
 * Split for threads: trn_reg_sums over element ranges (added into s[8]),
 * trn_reg_terms once, trn_reg_grad over element ranges. Sums of squares use
 * sum (c - mc)^2 = sum c^2 - 2 mc sum c + k mc^2, in double. */
REDUCTION void FN(trn_reg_sums)(const REAL *c, const REAL *r, size_t i0, size_t i1, double *s)
{
    /* s: sum r, sum c, A = sum c[l>0], B = sum c[u<0], sum c^2[l>0], sum c^2[u<0], #[l>0], #[u<0] */
    const size_t chunk = 1024;
    for (size_t j0 = i0; j0 < i1; j0 += chunk) {
        size_t j1 = j0 + chunk < i1 ? j0 + chunk : i1;
        REAL sr = 0, sc = 0, A = 0, B = 0, A2 = 0, B2 = 0, nA = 0, nB = 0;
        for (size_t i = j0; i < j1; i++) {
            REAL ci = c[i], ri = r[i];
            REAL act = ci - ri > 0 ? 1 : 0, ina = ci + ri < 0 ? 1 : 0;
            sr += ri;
            sc += ci;
            A += act * ci;
            B += ina * ci;
            A2 += act * ci * ci;
            B2 += ina * ci * ci;
            nA += act;
            nB += ina;
        }
        s[0] += sr, s[1] += sc, s[2] += A, s[3] += B, s[4] += A2, s[5] += B2, s[6] += nA, s[7] += nB;
    }
}

/* From the sums: the terms and the gradient coefficients g[5]: per element,
 * dr += g0; dc += g1 + [l>0] (g2 + g4 c) + [u<0] (g3 + g5 c) (g has 6 entries). */
void FN(trn_reg_terms)(const double *s, size_t n, double tol, double tau0, double w_tight,
                       double w_relu, double *tight, double *relu, int *relu_ok, double *g)
{
    double mr = s[0] / n, mc = s[1] / n, A = s[2], B = s[3];
    double Va = s[4] - 2 * mc * s[2] + mc * mc * s[6], Vi = s[5] - 2 * mc * s[3] + mc * mc * s[7];
    double Da = s[2] - mc * s[6], Di = s[3] - mc * s[7]; /* sum (c - mc) over the masks */
    for (int k = 0; k < 6; k++)
        g[k] = 0;
    double den = mr > 1e-12 ? mr : 1e-12;
    double t = tol - tau0 / den;
    *tight = t > 0 ? t / tol : 0;
    if (t > 0 && mr > 1e-12)
        g[0] = w_tight * tau0 / (mr * mr) / tol / n; /* d tight / d r_i */
    double rho_m = A / -B, rho_v = Va / Vi;
    double f_m = fmin(rho_m, 1.0 / fmax(rho_m, 1e-12)), f_v = fmin(rho_v, 1.0 / fmax(rho_v, 1e-12));
    double tm = tol - f_m, tv = tol - f_v;
    double val = ((tm > 0 ? tm : 0) + (tv > 0 ? tv : 0)) / tol;
    int ok = isfinite(val) && B != 0 && Vi != 0;
    *relu = ok ? val : 0;
    *relu_ok = ok;
    if (!ok)
        return;
    double d_rm = 0, d_rv = 0; /* d val / d rho */
    if (tm > 0)
        d_rm = -(rho_m <= 1.0 / fmax(rho_m, 1e-12) ? 1.0 : -1.0 / (rho_m * rho_m)) / tol;
    if (tv > 0)
        d_rv = -(rho_v <= 1.0 / fmax(rho_v, 1e-12) ? 1.0 : -1.0 / (rho_v * rho_v)) / tol;
    /* rho_m = -A/B: dA = -1/B, dB = A/B^2. rho_v = Va/Vi: dVa = 1/Vi, dVi = -Va/Vi^2.
     * dVa/dc_i = 2 (c_i - mc) [l_i>0] - 2 Da / n (through mean c), same for Vi. */
    double gA = d_rm * (-1.0 / B), gB = d_rm * (A / (B * B));
    double gVa = d_rv / Vi, gVi = d_rv * (-Va / (Vi * Vi));
    g[1] = w_relu * (-2.0 * (gVa * Da + gVi * Di) / n);
    g[2] = w_relu * (gA - 2 * gVa * mc);
    g[3] = w_relu * (gB - 2 * gVi * mc);
    g[4] = w_relu * 2 * gVa;
    g[5] = w_relu * 2 * gVi;
}

void FN(trn_reg_grad)(const REAL *c, const REAL *r, const double *g, REAL *gm, REAL *gr,
                      size_t i0, size_t i1)
{
    REAL g0 = (REAL)g[0], g1 = (REAL)g[1], g2 = (REAL)g[2], g3 = (REAL)g[3], g4 = (REAL)g[4],
         g5 = (REAL)g[5];
    for (size_t i = i0; i < i1; i++) {
        REAL ci = c[i], ri = r[i];
        REAL act = ci - ri > 0 ? 1 : 0, ina = ci + ri < 0 ? 1 : 0;
        gr[i] += g0;
        gm[i] += g1 + act * (g2 + g4 * ci) + ina * (g3 + g5 * ci);
    }
}

/* Fused passes (the small networks are memory-bound): the interval ReLU
 * forward that also accumulates the regulariser's sums of its input, and the
 * interval ReLU backward that also adds the regulariser's gradient (g from
 * trn_reg_terms; g = NULL for none). Same results as the separate kernels. */
REDUCTION void FN(trn_relu_ibp_fwd_sums)(const REAL *m, const REAL *r, REAL *mo, REAL *ro,
                                         size_t i0, size_t i1, double *s)
{
    const size_t chunk = 1024;
    for (size_t j0 = i0; j0 < i1; j0 += chunk) {
        size_t j1 = j0 + chunk < i1 ? j0 + chunk : i1;
        REAL sr = 0, sc = 0, A = 0, B = 0, A2 = 0, B2 = 0, nA = 0, nB = 0;
        for (size_t i = j0; i < j1; i++) {
            REAL ci = m[i], ri = r[i], l = ci - ri, u = ci + ri;
            REAL act = l > 0 ? 1 : 0, ina = u < 0 ? 1 : 0;
            sr += ri;
            sc += ci;
            A += act * ci;
            B += ina * ci;
            A2 += act * ci * ci;
            B2 += ina * ci * ci;
            nA += act;
            nB += ina;
            l = l > 0 ? l : 0;
            u = u > 0 ? u : 0;
            mo[i] = (u + l) * (REAL)0.5;
            ro[i] = (u - l) * (REAL)0.5;
        }
        s[0] += sr, s[1] += sc, s[2] += A, s[3] += B, s[4] += A2, s[5] += B2, s[6] += nA, s[7] += nB;
    }
}

void FN(trn_relu_ibp_bwd_reg)(const REAL *m, const REAL *r, const REAL *gmo, const REAL *gro,
                              REAL *gm, REAL *gr, const double *g, size_t i0, size_t i1)
{
    REAL g0 = (REAL)g[0], g1 = (REAL)g[1], g2 = (REAL)g[2], g3 = (REAL)g[3], g4 = (REAL)g[4],
         g5 = (REAL)g[5];
    for (size_t i = i0; i < i1; i++) {
        REAL ci = m[i], ri = r[i], l = ci - ri, u = ci + ri, a = gmo[i], b = gro[i];
        REAL act = l > 0 ? 1 : 0, ina = u < 0 ? 1 : 0;
        REAL su = u > 0 ? (REAL)0.5 : 0, sl = l > 0 ? (REAL)0.5 : 0;
        REAL gu = (a + b) * su, gl = (a - b) * sl;
        gm[i] = gu + gl + g1 + act * (g2 + g4 * ci) + ina * (g3 + g5 * ci);
        gr[i] = gu - gl + g0;
    }
}

/* Batch-norm statistics over images [n0, n1), added into s[2][C] as sums of
 * (x - shift[c]) and its square (the shift, e.g. one sample of the channel,
 * keeps the variance E[(x-K)^2] - E[x-K]^2 free of cancellation). */
REDUCTION void FN(trn_bn_stat_sums)(const REAL *x, int C, int HW, const REAL *shift, double *s,
                                    int n0, int n1)
{
    for (int n = n0; n < n1; n++)
        for (int c = 0; c < C; c++) {
            const REAL *p = x + ((size_t)n * C + c) * HW;
            REAL k = shift[c], a = 0, b = 0;
            for (int i = 0; i < HW; i++) {
                REAL d = p[i] - k;
                a += d;
                b += d * d;
            }
            s[c] += a;
            s[C + c] += b;
        }
}

/* The whole layer in one call (tests and small tensors). */
void FN(trn_reg_layer)(const REAL *c, const REAL *r, size_t n, double tol, double tau0,
                       double *tight, double *relu, int *relu_ok, double w_tight, double w_relu,
                       REAL *gm, REAL *gr)
{
    double s[8] = {0}, g[6];
    FN(trn_reg_sums)(c, r, 0, n, s);
    FN(trn_reg_terms)(s, n, tol, tau0, w_tight, w_relu, tight, relu, relu_ok, g);
    if (gm)
        FN(trn_reg_grad)(c, r, g, gm, gr, 0, n);
}

#undef REDUCTION
#undef FN
#undef CAT
#undef CAT_
