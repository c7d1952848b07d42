/* train_conv.c: an ERAN-style "ConvSmall" MNIST CNN (Conv 16x4x4 stride 2,
 * Conv 32x4x4 stride 2, Flatten, 800-100-10; sigmoid, tanh, GeLU or sin after
 * every layer but the last), trained normally (eps = 0) in plain C exactly as
 * train_deep.c trains its MLPs: minibatch Adam on softmax cross-entropy,
 * Glorot-uniform initialisation, convolutions as im2col + cblas_sgemm. Inputs
 * are [1, 1, 28, 28] with pixels in [0, 1] (no normalisation). Writes the model
 * in the project's JSON format and, for the first N_SPECS correctly classified
 * test images, one L-infinity robustness spec (VNNLIB) per eps of the list,
 * and appends model,spec,timeout lines to OUTDIR/instances.csv.
 *
 * build: cc -O2 -std=c11 -D_GNU_SOURCE -I/usr/include/x86_64-linux-gnu/openblas-pthread \
 *           benchmarks/train_conv.c -o train_conv -lopenblas -lz -lm
 * usage: train_conv sigmoid|tanh|gelu|sin EPOCHS N_SPECS EPS[,EPS...] TIMEOUT OUTDIR
 *        (run from the repo root; reads ../shared/data/mnist). Deterministic
 *        for a given OpenBLAS thread count (fixed seed, fixed batch order). */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "bench_mnist.h"

#define NI 784
#define NO 10
#define BATCH 32
#define NL 4    /* conv, conv, dense, dense */
#define NCONV 2 /* the first NCONV layers are convolutions */
#define KS 4    /* kernel size */
#define ST 2    /* stride (no padding) */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double unif(void)
{
    return bm_unif(&rng);
}

static bm_act act_kind;
/* activation sizes per sample: x, conv1 (16x13x13), conv2 (32x5x5), fc1, logits */
static const int dim[NL + 1] = {NI, 16 * 13 * 13, 32 * 5 * 5, 100, NO};
/* conv layer l: CI[l] x HI[l] x HI[l] -> CO[l] x HO[l] x HO[l] */
static const int CI[NCONV] = {1, 16}, HI[NCONV] = {28, 13}, CO[NCONV] = {16, 32},
                 HO[NCONV] = {13, 5};
static size_t nw[NL], nbias[NL]; /* parameter counts */
static float *W[NL], *b[NL];     /* conv: [out][in][k][k]; dense: [out][in] (out x in) */
static float *mW[NL], *vW[NL], *mb[NL], *vb[NL], *gW[NL], *gb[NL];
static float *act[NL + 1], *dlt[NL + 1]; /* BATCH x dim[l], NCHW per sample */
static float *pre[NL + 1];               /* GeLU, sin: pre-activations, for f' */
static float *col[NCONV];                /* im2col: K x (nb * P), K = CI*KS*KS, P = HO*HO */
static float *cbuf;                      /* a conv output or its delta, CO x (nb * P) */
static float *dcol;                      /* gradient of col[1] (col[0] needs none: it is the input) */

/* Sample-major images x (nb of them, each CI x HI x HI) to the columns of
 * c (K rows, nb * P columns; sample s owns columns s*P ..): one column per
 * output position, so the convolution of all the batch is one W (CO x K) * c. */
static void im2col(int l, const float *x, float *c, int nb)
{
    int hi = HI[l], ho = HO[l], p = ho * ho, n = nb * p;
    for (int ci = 0; ci < CI[l]; ci++)
        for (int ki = 0; ki < KS; ki++)
            for (int kj = 0; kj < KS; kj++) {
                float *row = c + (size_t)((ci * KS + ki) * KS + kj) * (size_t)n;
                for (int s = 0; s < nb; s++) {
                    const float *xs = x + (size_t)s * (size_t)dim[l] + (size_t)ci * hi * hi;
                    for (int oh = 0; oh < ho; oh++)
                        for (int ow = 0; ow < ho; ow++)
                            row[s * p + oh * ho + ow] = xs[(oh * ST + ki) * hi + ow * ST + kj];
                }
            }
}

/* The adjoint of im2col: dx (zeroed here) accumulates every column entry at
 * the pixel it was copied from (windows overlap: stride 2 < kernel 4). */
static void col2im(int l, const float *c, float *dx, int nb)
{
    int hi = HI[l], ho = HO[l], p = ho * ho, n = nb * p;
    memset(dx, 0, (size_t)nb * (size_t)dim[l] * sizeof(float));
    for (int ci = 0; ci < CI[l]; ci++)
        for (int ki = 0; ki < KS; ki++)
            for (int kj = 0; kj < KS; kj++) {
                const float *row = c + (size_t)((ci * KS + ki) * KS + kj) * (size_t)n;
                for (int s = 0; s < nb; s++) {
                    float *xs = dx + (size_t)s * (size_t)dim[l] + (size_t)ci * hi * hi;
                    for (int oh = 0; oh < ho; oh++)
                        for (int ow = 0; ow < ho; ow++)
                            xs[(oh * ST + ki) * hi + ow * ST + kj] += row[s * p + oh * ho + ow];
                }
            }
}

/* act[0] holds the batch; fills act[1..NL] (act[NL]: logits). */
static void forward(int nb)
{
    for (int l = 0; l < NL; l++) {
        int ni = dim[l], no = dim[l + 1];
        float *y = act[l + 1];
        if (l < NCONV) {
            int k = CI[l] * KS * KS, p = HO[l] * HO[l], n = nb * p;
            im2col(l, act[l], col[l], nb);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, CO[l], n, k, 1.0f, W[l], k,
                        col[l], n, 0.0f, cbuf, n);
            /* channel-major over the batch -> NCHW per sample, plus the bias */
            for (int s = 0; s < nb; s++)
                for (int o = 0; o < CO[l]; o++)
                    for (int q = 0; q < p; q++)
                        y[(size_t)s * no + (size_t)o * p + q] = cbuf[(size_t)o * n + s * p + q] + b[l][o];
        } else {
            for (int s = 0; s < nb; s++)
                memcpy(y + (size_t)s * no, b[l], (size_t)no * sizeof(float));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, no, ni, 1.0f, act[l], ni,
                        W[l], ni, 1.0f, y, no);
        }
        if (l + 1 < NL) {
            if (bm_act_keeps_pre(act_kind))
                memcpy(pre[l + 1], y, (size_t)nb * (size_t)no * sizeof(float));
            for (size_t t = 0; t < (size_t)nb * (size_t)no; t++)
                y[t] = bm_act_f(act_kind, y[t]);
        }
    }
}

/* dlt[NL] holds dLoss/dlogits; fills gW, gb and dlt[1..NL-1]. */
static void backward(int nb)
{
    for (int l = NL - 1; l >= 0; l--) {
        int ni = dim[l], no = dim[l + 1];
        if (l < NCONV) {
            int k = CI[l] * KS * KS, p = HO[l] * HO[l], n = nb * p;
            /* NCHW per sample -> channel-major over the batch, as forward's cbuf */
            for (int s = 0; s < nb; s++)
                for (int o = 0; o < CO[l]; o++)
                    for (int q = 0; q < p; q++)
                        cbuf[(size_t)o * n + s * p + q] = dlt[l + 1][(size_t)s * no + (size_t)o * p + q];
            /* gW = dz col^T, gb = row sums of dz */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, CO[l], k, n, 1.0f, cbuf, n, col[l],
                        n, 0.0f, gW[l], k);
            for (int o = 0; o < CO[l]; o++) {
                float g = 0;
                for (int t = 0; t < n; t++)
                    g += cbuf[(size_t)o * n + t];
                gb[l][o] = g;
            }
            if (l > 0) { /* dcol = W^T dz, scattered back onto the input image */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, n, CO[l], 1.0f, W[l], k,
                            cbuf, n, 0.0f, dcol, n);
                col2im(l, dcol, dlt[l], nb);
            }
        } else {
            /* gW = dlt^T act, gb = column sums of dlt */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, ni, nb, 1.0f, dlt[l + 1], no,
                        act[l], ni, 0.0f, gW[l], ni);
            for (int j = 0; j < no; j++) {
                float g = 0;
                for (int s = 0; s < nb; s++)
                    g += dlt[l + 1][s * no + j];
                gb[l][j] = g;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, ni, no, 1.0f, dlt[l + 1],
                        no, W[l], ni, 0.0f, dlt[l], ni);
        }
        if (l > 0) /* dlt[l] *= f'(z), f' from the activation */
            for (size_t t = 0; t < (size_t)nb * (size_t)ni; t++)
                dlt[l][t] *= bm_act_df(act_kind, pre[l][t], act[l][t]);
    }
}

static int predict(const float *x)
{
    memcpy(act[0], x, NI * sizeof(float));
    forward(1);
    int k = 0;
    for (int j = 1; j < NO; j++)
        if (act[NL][j] > act[NL][k])
            k = j;
    return k;
}

static void write_tensor(FILE *o, const char *name, const int *shape, int rank, const float *v,
                         size_t n, int last)
{
    fprintf(o, "    {\"name\": \"%s\", \"dtype\": \"float\", \"shape\": [", name);
    for (int i = 0; i < rank; i++)
        fprintf(o, "%s%d", i ? ", " : "", shape[i]);
    fprintf(o, "], \"data\": [");
    for (size_t t = 0; t < n; t++)
        fprintf(o, "%s%.9g", t ? ", " : "", (double)v[t]);
    fprintf(o, "]}%s\n", last ? "" : ",");
}

static void write_model(const char *path, const char *name, double accuracy)
{
    FILE *o = fopen(path, "w");
    if (!o) {
        fprintf(stderr, "train_conv: cannot write %s\n", path);
        exit(1);
    }
    fprintf(o, "{\n  \"format\": \"nnv-model\", \"version\": 1, \"ir_version\": 8, \"opset\": 20,\n"
               "  \"producer\": \"benchmarks/train_conv.c %s (test accuracy %.4f)\",\n"
               "  \"inputs\": [{\"name\": \"x\", \"dtype\": \"float\", \"shape\": [1, 1, 28, 28]}],\n"
               "  \"outputs\": [{\"name\": \"y\", \"dtype\": \"float\", \"shape\": [1, 10]}],\n"
               "  \"initializers\": [\n", name, accuracy);
    for (int l = 0; l < NL; l++) {
        char wn[16], bn[16];
        snprintf(wn, sizeof wn, "W%d", l);
        snprintf(bn, sizeof bn, "b%d", l);
        if (l < NCONV) {
            int ws[4] = {CO[l], CI[l], KS, KS};
            write_tensor(o, wn, ws, 4, W[l], nw[l], 0);
        } else { /* Gemm with transB = 1: W stored out x in */
            int ws[2] = {dim[l + 1], dim[l]};
            write_tensor(o, wn, ws, 2, W[l], nw[l], 0);
        }
        int bs[1] = {(int)nbias[l]};
        write_tensor(o, bn, bs, 1, b[l], nbias[l], l + 1 == NL);
    }
    /* x -conv0-> z1 -act-> a1 -conv1-> z2 -act-> a2 -Flatten-> f2 -fc2-> z3 -act-> a3 -fc3-> y */
    fprintf(o, "  ],\n  \"nodes\": [\n");
    for (int l = 0; l < NL; l++) {
        char in[16], out[16];
        snprintf(in, sizeof in, l == 0 ? "x" : l == NCONV ? "f%d" : "a%d", l);
        snprintf(out, sizeof out, l + 1 < NL ? "z%d" : "y", l + 1);
        if (l < NCONV)
            fprintf(o, "    {\"op\": \"Conv\", \"name\": \"conv%d\", \"inputs\": [\"%s\", \"W%d\", \"b%d\"], "
                       "\"outputs\": [\"%s\"], \"attributes\": {\"kernel_shape\": {\"ints\": [%d, %d]}, "
                       "\"strides\": {\"ints\": [%d, %d]}, \"pads\": {\"ints\": [0, 0, 0, 0]}}},\n",
                    l, in, l, l, out, KS, KS, ST, ST);
        else
            fprintf(o, "    {\"op\": \"Gemm\", \"name\": \"fc%d\", \"inputs\": [\"%s\", \"W%d\", \"b%d\"], "
                       "\"outputs\": [\"%s\"], \"attributes\": {\"transB\": {\"int\": 1}}}%s\n",
                    l, in, l, l, out, l + 1 < NL ? "," : "");
        if (l + 1 < NL)
            fprintf(o, "    {\"op\": \"%s\", \"name\": \"act%d\", \"inputs\": [\"z%d\"], "
                       "\"outputs\": [\"a%d\"]},\n", bm_act_op(act_kind), l + 1, l + 1, l + 1);
        if (l + 1 == NCONV) /* NCHW -> [1, C*H*W], channel-major as the trainer's layout */
            fprintf(o, "    {\"op\": \"Flatten\", \"name\": \"flatten\", \"inputs\": [\"a%d\"], "
                       "\"outputs\": [\"f%d\"], \"attributes\": {\"axis\": {\"int\": 1}}},\n",
                    l + 1, l + 1);
    }
    fprintf(o, "  ]\n}\n");
    if (fclose(o)) {
        fprintf(stderr, "train_conv: cannot write %s\n", path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: train_conv sigmoid|tanh|gelu|sin EPOCHS N_SPECS EPS[,EPS...] "
                        "TIMEOUT OUTDIR\n");
        return 2;
    }
    int ak = bm_act_parse(argv[1]);
    if (ak < 0) {
        fprintf(stderr, "train_conv: unknown activation %s (sigmoid, tanh, gelu or sin)\n", argv[1]);
        return 2;
    }
    act_kind = (bm_act)ak;
    int epochs = atoi(argv[2]), nspec = atoi(argv[3]), timeout = atoi(argv[5]);
    const char *dir = argv[6];
    if (epochs < 0 || nspec < 0) {
        fprintf(stderr, "train_conv: bad arguments\n");
        return 2;
    }
    bm_mnist d;
    if (bm_mnist_load(&d)) {
        fprintf(stderr, "train_conv: cannot read MNIST from ../shared/data/mnist\n");
        return 1;
    }
    unsigned char *img = d.img, *lab = d.lab;
    for (int l = 0; l <= NL; l++) {
        act[l] = malloc((size_t)BATCH * (size_t)dim[l] * sizeof(float));
        dlt[l] = malloc((size_t)BATCH * (size_t)dim[l] * sizeof(float));
        pre[l] = calloc((size_t)BATCH * (size_t)dim[l], sizeof(float)); /* read by bm_act_df */
        if (!act[l] || !dlt[l] || !pre[l])
            return 1;
    }
    size_t ncbuf = 0, ndcol = 0;
    for (int l = 0; l < NCONV; l++) {
        size_t k = (size_t)CI[l] * KS * KS, n = (size_t)BATCH * (size_t)HO[l] * (size_t)HO[l];
        col[l] = malloc(k * n * sizeof(float));
        if (!col[l])
            return 1;
        if ((size_t)CO[l] * n > ncbuf)
            ncbuf = (size_t)CO[l] * n;
        if (l > 0 && k * n > ndcol)
            ndcol = k * n;
    }
    cbuf = malloc(ncbuf * sizeof(float));
    dcol = malloc(ndcol * sizeof(float));
    if (!cbuf || !dcol)
        return 1;
    for (int l = 0; l < NL; l++) {
        int conv = l < NCONV;
        /* fan-in / fan-out: a conv's weights see in_ch*k*k inputs and feed out_ch*k*k outputs */
        double fin = conv ? CI[l] * KS * KS : dim[l], fout = conv ? CO[l] * KS * KS : dim[l + 1];
        size_t n = nw[l] = conv ? (size_t)CO[l] * CI[l] * KS * KS : (size_t)dim[l + 1] * dim[l];
        size_t m = nbias[l] = conv ? (size_t)CO[l] : (size_t)dim[l + 1];
        W[l] = malloc(n * sizeof(float)), gW[l] = malloc(n * sizeof(float));
        mW[l] = calloc(n, sizeof(float)), vW[l] = calloc(n, sizeof(float));
        b[l] = calloc(m, sizeof(float)), gb[l] = malloc(m * sizeof(float));
        mb[l] = calloc(m, sizeof(float)), vb[l] = calloc(m, sizeof(float));
        if (!W[l] || !gW[l] || !mW[l] || !vW[l] || !b[l] || !gb[l] || !mb[l] || !vb[l])
            return 1;
        /* Glorot; sigmoid's hidden layers x4 (its slope at 0 is 1/4) */
        double r = sqrt(6.0 / (fin + fout)) * (act_kind != BM_SIGMOID || l + 1 == NL ? 1 : 4);
        for (size_t t = 0; t < n; t++)
            W[l][t] = (float)((2 * unif() - 1) * r);
    }
    int *perm = malloc(60000 * sizeof(int));
    if (!perm)
        return 1;
    for (int s = 0; s < 60000; s++)
        perm[s] = s;
    int step = 0;
    double lr = 1e-3;
    for (int ep = 0; ep < epochs; ep++) {
        bm_shuffle(&rng, perm, 60000);
        double loss = 0;
        for (int at = 0; at + BATCH <= 60000; at += BATCH) {
            for (int s = 0; s < BATCH; s++)
                bm_image(img, perm[at + s], act[0] + s * NI);
            forward(BATCH);
            for (int s = 0; s < BATCH; s++) /* softmax cross-entropy, mean over the batch */
                loss += bm_xent(act[NL] + s * NO, lab[8 + perm[at + s]], dlt[NL] + s * NO, BATCH);
            backward(BATCH);
            step++;
            for (int l = 0; l < NL; l++) {
                bm_adam(W[l], gW[l], mW[l], vW[l], nw[l], lr, step);
                bm_adam(b[l], gb[l], mb[l], vb[l], nbias[l], lr, step);
            }
        }
        lr *= 0.5;
        fprintf(stderr, "train_conv %s: epoch %d loss %.4f\n", argv[1], ep, loss / 60000);
    }
    float x[NI];
    int correct = 0;
    for (int s = 0; s < 10000; s++) {
        bm_image(d.timg, s, x);
        correct += predict(x) == d.tlab[8 + s];
    }
    fprintf(stderr, "train_conv: test accuracy %.4f\n", correct / 10000.0);

    char path[1024], name[64];
    snprintf(name, sizeof name, "mnist_conv_%s", argv[1]);
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    write_model(path, name, correct / 10000.0);
    if (bm_write_specs(dir, name, &d, nspec, argv[4], timeout, predict)) {
        fprintf(stderr, "train_conv: cannot write the specs in %s\n", dir);
        return 1;
    }
    return 0;
}
