/* train_deep.c: an ERAN-style deep MNIST MLP (784-W-...-W-10, DEPTH hidden
 * layers of width W, sigmoid, tanh, GeLU or sin), trained normally (eps = 0) in plain C:
 * minibatch Adam on softmax cross-entropy, Glorot-uniform initialisation,
 * matrix products through cblas. Writes the model in the project's JSON
 * format and, for the first N_SPECS correctly classified test images, one
 * L-infinity robustness spec (VNNLIB) per eps of the list, and appends
 * model,spec,timeout lines to OUTDIR/instances.csv.
 *
 * usage: train_deep sigmoid|tanh|gelu|sin DEPTH WIDTH EPOCHS N_SPECS EPS[,EPS...] TIMEOUT OUTDIR
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
#define MAXL 16

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double unif(void)
{
    return bm_unif(&rng);
}

static bm_act act_kind;
static int nl;                 /* layers (DEPTH + 1) */
static int dim[MAXL + 1];      /* dim[0] = 784, ..., dim[nl] = 10 */
static float *W[MAXL], *b[MAXL];               /* W[l]: dim[l+1] x dim[l] (out x in) */
static float *mW[MAXL], *vW[MAXL], *mb[MAXL], *vb[MAXL], *gW[MAXL], *gb[MAXL];
static float *act[MAXL + 1], *dlt[MAXL + 1];   /* BATCH x dim[l] */
static float *pre[MAXL + 1];                   /* GeLU, sin: pre-activations, for f' */

/* act[0] holds the batch; fills act[1..nl] (act[nl]: logits). */
static void forward(int nb)
{
    for (int l = 0; l < nl; l++) {
        int ni = dim[l], no = dim[l + 1];
        float *y = act[l + 1];
        for (int s = 0; s < nb; s++)
            memcpy(y + (size_t)s * no, b[l], (size_t)no * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, no, ni, 1.0f, act[l], ni, W[l],
                    ni, 1.0f, y, no);
        if (l + 1 < nl) {
            if (bm_act_keeps_pre(act_kind))
                memcpy(pre[l + 1], y, (size_t)nb * (size_t)no * sizeof(float));
            for (size_t t = 0; t < (size_t)nb * (size_t)no; t++)
                y[t] = bm_act_f(act_kind, y[t]);
        }
    }
}

static int predict(const float *x)
{
    memcpy(act[0], x, NI * sizeof(float));
    forward(1);
    int k = 0;
    for (int j = 1; j < NO; j++)
        if (act[nl][j] > act[nl][k])
            k = j;
    return k;
}

static void write_model(const char *path, const char *name, double accuracy)
{
    FILE *o = fopen(path, "w");
    if (!o) {
        fprintf(stderr, "train_deep: cannot write %s\n", path);
        exit(1);
    }
    fprintf(o, "{\n  \"format\": \"nnv-model\", \"version\": 1, \"ir_version\": 8, \"opset\": 20,\n"
               "  \"producer\": \"benchmarks/train_deep.c %s (test accuracy %.4f)\",\n"
               "  \"inputs\": [{\"name\": \"x\", \"dtype\": \"float\", \"shape\": [1, 784]}],\n"
               "  \"outputs\": [{\"name\": \"y\", \"dtype\": \"float\", \"shape\": [1, 10]}],\n"
               "  \"initializers\": [\n", name, accuracy);
    for (int l = 0; l < nl; l++) {
        /* Gemm with transB = 1: W stored out x in */
        fprintf(o, "    {\"name\": \"W%d\", \"dtype\": \"float\", \"shape\": [%d, %d], \"data\": [",
                l, dim[l + 1], dim[l]);
        for (size_t t = 0; t < (size_t)dim[l + 1] * (size_t)dim[l]; t++)
            fprintf(o, "%s%.9g", t ? ", " : "", (double)W[l][t]);
        fprintf(o, "]},\n    {\"name\": \"b%d\", \"dtype\": \"float\", \"shape\": [%d], \"data\": [",
                l, dim[l + 1]);
        for (int t = 0; t < dim[l + 1]; t++)
            fprintf(o, "%s%.9g", t ? ", " : "", (double)b[l][t]);
        fprintf(o, "]}%s\n", l + 1 < nl ? "," : "");
    }
    fprintf(o, "  ],\n  \"nodes\": [\n");
    for (int l = 0; l < nl; l++) {
        char in[16], out[16];
        snprintf(in, sizeof in, l ? "a%d" : "x", l);
        snprintf(out, sizeof out, l + 1 < nl ? "z%d" : "y", l + 1);
        fprintf(o, "    {\"op\": \"Gemm\", \"name\": \"fc%d\", \"inputs\": [\"%s\", \"W%d\", \"b%d\"], "
                   "\"outputs\": [\"%s\"], \"attributes\": {\"transB\": {\"int\": 1}}}%s\n",
                l, in, l, l, out, ",");
        if (l + 1 < nl)
            fprintf(o, "    {\"op\": \"%s\", \"name\": \"act%d\", \"inputs\": [\"z%d\"], "
                       "\"outputs\": [\"a%d\"]},\n", bm_act_op(act_kind), l + 1, l + 1, l + 1);
    }
    /* drop the trailing comma of the last node */
    fseek(o, -2, SEEK_CUR);
    fprintf(o, "\n  ]\n}\n");
    fclose(o);
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: train_deep sigmoid|tanh|gelu|sin DEPTH WIDTH EPOCHS N_SPECS EPS[,EPS...] "
                        "TIMEOUT OUTDIR\n");
        return 2;
    }
    int ak = bm_act_parse(argv[1]);
    if (ak < 0) {
        fprintf(stderr, "train_deep: unknown activation %s (sigmoid, tanh, gelu or sin)\n", argv[1]);
        return 2;
    }
    act_kind = (bm_act)ak;
    int depth = atoi(argv[2]), width = atoi(argv[3]), epochs = atoi(argv[4]);
    int nspec = atoi(argv[5]), timeout = atoi(argv[7]);
    const char *dir = argv[8];
    if (depth < 1 || depth >= MAXL || width < 1 || width > 4096 || epochs < 0 || nspec < 0) {
        fprintf(stderr, "train_deep: bad arguments\n");
        return 2;
    }
    bm_mnist d;
    if (bm_mnist_load(&d)) {
        fprintf(stderr, "train_deep: cannot read MNIST from ../shared/data/mnist\n");
        return 1;
    }
    unsigned char *img = d.img, *lab = d.lab;
    nl = depth + 1;
    dim[0] = NI, dim[nl] = NO;
    for (int l = 1; l < nl; l++)
        dim[l] = width;
    for (int l = 0; l <= nl; l++) {
        act[l] = malloc((size_t)BATCH * (size_t)dim[l] * sizeof(float));
        dlt[l] = malloc((size_t)BATCH * (size_t)dim[l] * sizeof(float));
        pre[l] = calloc((size_t)BATCH * (size_t)dim[l], sizeof(float)); /* read by bm_act_df */
        if (!act[l] || !dlt[l] || !pre[l])
            return 1;
    }
    for (int l = 0; l < nl; l++) {
        size_t n = (size_t)dim[l + 1] * (size_t)dim[l], m = (size_t)dim[l + 1];
        W[l] = malloc(n * sizeof(float)), gW[l] = malloc(n * sizeof(float));
        mW[l] = calloc(n, sizeof(float)), vW[l] = calloc(n, sizeof(float));
        b[l] = calloc(m, sizeof(float)), gb[l] = malloc(m * sizeof(float));
        mb[l] = calloc(m, sizeof(float)), vb[l] = calloc(m, sizeof(float));
        if (!W[l] || !gW[l] || !mW[l] || !vW[l] || !b[l] || !gb[l] || !mb[l] || !vb[l])
            return 1;
        /* Glorot; sigmoid's hidden layers x4 (its slope at 0 is 1/4) */
        double r = sqrt(6.0 / (dim[l] + dim[l + 1])) * (act_kind != BM_SIGMOID || l + 1 == nl ? 1 : 4);
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
                loss += bm_xent(act[nl] + s * NO, lab[8 + perm[at + s]], dlt[nl] + s * NO, BATCH);
            for (int l = nl - 1; l >= 0; l--) {
                int ni = dim[l], no = dim[l + 1];
                /* gW = dlt^T act, gb = column sums of dlt */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, no, ni, BATCH, 1.0f, dlt[l + 1],
                            no, act[l], ni, 0.0f, gW[l], ni);
                for (int j = 0; j < no; j++) {
                    float g = 0;
                    for (int s = 0; s < BATCH; s++)
                        g += dlt[l + 1][s * no + j];
                    gb[l][j] = g;
                }
                if (l > 0) { /* dlt[l] = (dlt[l+1] W) * f'(z), f' from the activation */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BATCH, ni, no, 1.0f,
                                dlt[l + 1], no, W[l], ni, 0.0f, dlt[l], ni);
                    for (size_t t = 0; t < (size_t)BATCH * (size_t)ni; t++)
                        dlt[l][t] *= bm_act_df(act_kind, pre[l][t], act[l][t]);
                }
            }
            step++;
            for (int l = 0; l < nl; l++) {
                bm_adam(W[l], gW[l], mW[l], vW[l], (size_t)dim[l + 1] * (size_t)dim[l], lr, step);
                bm_adam(b[l], gb[l], mb[l], vb[l], (size_t)dim[l + 1], lr, step);
            }
        }
        lr *= 0.5;
        fprintf(stderr, "train_deep %s %dx%d: epoch %d loss %.4f\n", argv[1], depth, width, ep,
                loss / 60000);
    }
    float x[NI];
    int correct = 0;
    for (int s = 0; s < 10000; s++) {
        bm_image(d.timg, s, x);
        correct += predict(x) == d.tlab[8 + s];
    }
    fprintf(stderr, "train_deep: test accuracy %.4f\n", correct / 10000.0);

    char path[1024], name[64];
    snprintf(name, sizeof name, "mnist_%s_%dx%d", argv[1], depth, width);
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    write_model(path, name, correct / 10000.0);
    if (bm_write_specs(dir, name, &d, nspec, argv[6], timeout, predict)) {
        fprintf(stderr, "train_deep: cannot write the specs in %s\n", dir);
        return 1;
    }
    return 0;
}
