/* train_mlp.c: the project's own nonlinear benchmark models — small MNIST
 * MLPs (784-H-H-10) with sigmoid, tanh, sin or GeLU activations, trained
 * honestly by minibatch SGD on softmax cross-entropy in plain C, written in
 * the project's JSON model format, plus L-infinity robustness specs (VNNLIB)
 * for the first test images the model classifies correctly.
 *
 * usage: train_mlp ACT HIDDEN EPOCHS EPS N_SPECS OUTDIR   (run from the repo root;
 *        reads ../shared/data/mnist). Deterministic (fixed seed). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "bench_mnist.h"

static uint64_t rng = 0x853c49e6748fea9bull;
static double unif(void)
{
    return bm_unif(&rng);
}

typedef enum { A_SIGMOID, A_TANH, A_SIN, A_GELU } act_kind;
static act_kind act;

static double f(double x)
{
    switch (act) {
    case A_SIGMOID: return 1 / (1 + exp(-x));
    case A_TANH: return tanh(x);
    case A_SIN: return sin(x);
    default: return 0.5 * x * (1 + erf(x / M_SQRT2));
    }
}

static double df(double x)
{
    switch (act) {
    case A_SIGMOID: { double s = 1 / (1 + exp(-x)); return s * (1 - s); }
    case A_TANH: { double t = tanh(x); return 1 - t * t; }
    case A_SIN: return cos(x);
    default: return 0.5 * (1 + erf(x / M_SQRT2)) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
    }
}

#define NI 784
#define NO 10
static int H;
static float *W1, *b1, *W2, *b2, *W3, *b3; /* W: in x out, row-major */

static void forward(const float *x, double *z1, double *a1, double *z2, double *a2, double *y)
{
    for (int j = 0; j < H; j++) {
        double s = b1[j];
        for (int i = 0; i < NI; i++)
            s += x[i] * W1[i * H + j];
        z1[j] = s, a1[j] = f(s);
    }
    for (int j = 0; j < H; j++) {
        double s = b2[j];
        for (int i = 0; i < H; i++)
            s += a1[i] * W2[i * H + j];
        z2[j] = s, a2[j] = f(s);
    }
    for (int j = 0; j < NO; j++) {
        double s = b3[j];
        for (int i = 0; i < H; i++)
            s += a2[i] * W3[i * NO + j];
        y[j] = s;
    }
}

static void write_mat(FILE *o, const char *name, int r, int c, const float *v, int last)
{
    fprintf(o, "    {\"name\": \"%s\", \"dtype\": \"float\", \"shape\": [%d%s%.0d], \"data\": [", name, r,
            c ? ", " : "", c);
    int n = c ? r * c : r;
    for (int i = 0; i < n; i++)
        fprintf(o, "%s%.9g", i ? ", " : "", (double)v[i]);
    fprintf(o, "]}%s\n", last ? "" : ",");
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: train_mlp sigmoid|tanh|sin|gelu HIDDEN EPOCHS EPS N_SPECS OUTDIR\n");
        return 2;
    }
    const char *an = argv[1];
    act = !strcmp(an, "sigmoid") ? A_SIGMOID : !strcmp(an, "tanh") ? A_TANH
        : !strcmp(an, "sin") ? A_SIN : A_GELU;
    H = atoi(argv[2]);
    int epochs = atoi(argv[3]), nspec = atoi(argv[5]);
    double eps = atof(argv[4]);
    const char *dir = argv[6];
    if (H < 1 || H > 1024 || epochs < 0 || nspec < 0) {
        fprintf(stderr, "train_mlp: bad arguments\n");
        return 2;
    }
    bm_mnist d;
    if (bm_mnist_load(&d)) {
        fprintf(stderr, "train_mlp: cannot read MNIST from ../shared/data/mnist\n");
        return 1;
    }
    unsigned char *img = d.img, *lab = d.lab, *timg = d.timg, *tlab = d.tlab;
    W1 = malloc(sizeof(float) * NI * H), b1 = calloc(H, sizeof(float));
    W2 = malloc(sizeof(float) * H * H), b2 = calloc(H, sizeof(float));
    W3 = malloc(sizeof(float) * H * NO), b3 = calloc(NO, sizeof(float));
    float *x = malloc(sizeof(float) * NI);
    double *buf = malloc(sizeof(double) * (6 * H + 4 * NO));
    double *z1 = buf, *a1 = buf + H, *z2 = buf + 2 * H, *a2 = buf + 3 * H, *d1 = buf + 4 * H,
           *d2 = buf + 5 * H, *y = buf + 6 * H, *dy = y + NO;
    for (int i = 0; i < NI * H; i++)
        W1[i] = (float)((2 * unif() - 1) * sqrt(3.0 / NI));
    for (int i = 0; i < H * H; i++)
        W2[i] = (float)((2 * unif() - 1) * sqrt(3.0 / H));
    for (int i = 0; i < H * NO; i++)
        W3[i] = (float)((2 * unif() - 1) * sqrt(3.0 / H));
    double lr = act == A_SIN ? 0.01 : 0.05; /* sin diverges at 0.05 */
    for (int ep = 0; ep < epochs; ep++) {
        double loss = 0;
        for (int it = 0; it < 60000; it++) {
            int s = (int)(unif() * 60000);
            for (int i = 0; i < NI; i++)
                x[i] = img[16 + (size_t)s * 784 + i] / 255.0f;
            int c = lab[8 + s];
            forward(x, z1, a1, z2, a2, y);
            double m = y[0], se = 0;
            for (int j = 1; j < NO; j++)
                m = fmax(m, y[j]);
            for (int j = 0; j < NO; j++)
                se += exp(y[j] - m);
            loss += log(se) + m - y[c];
            for (int j = 0; j < NO; j++)
                dy[j] = exp(y[j] - m) / se - (j == c);
            for (int i = 0; i < H; i++) {
                double g = 0;
                for (int j = 0; j < NO; j++)
                    g += dy[j] * W3[i * NO + j];
                d2[i] = g * df(z2[i]);
            }
            for (int i = 0; i < H; i++) {
                double g = 0;
                for (int j = 0; j < H; j++)
                    g += d2[j] * W2[i * H + j];
                d1[i] = g * df(z1[i]);
            }
            for (int i = 0; i < H; i++)
                for (int j = 0; j < NO; j++)
                    W3[i * NO + j] -= (float)(lr * dy[j] * a2[i]);
            for (int j = 0; j < NO; j++)
                b3[j] -= (float)(lr * dy[j]);
            for (int i = 0; i < H; i++)
                for (int j = 0; j < H; j++)
                    W2[i * H + j] -= (float)(lr * d2[j] * a1[i]);
            for (int j = 0; j < H; j++)
                b2[j] -= (float)(lr * d2[j]), b1[j] -= (float)(lr * d1[j]);
            for (int i = 0; i < NI; i++)
                if (x[i] != 0)
                    for (int j = 0; j < H; j++)
                        W1[i * H + j] -= (float)(lr * d1[j] * x[i]);
        }
        lr *= 0.6;
        fprintf(stderr, "%s %d: epoch %d loss %.4f\n", an, H, ep, loss / 60000);
    }
    int correct = 0;
    for (int s = 0; s < 10000; s++) {
        for (int i = 0; i < NI; i++)
            x[i] = timg[16 + (size_t)s * 784 + i] / 255.0f;
        forward(x, z1, a1, z2, a2, y);
        int b = 0;
        for (int j = 1; j < NO; j++)
            if (y[j] > y[b])
                b = j;
        correct += b == tlab[8 + s];
    }
    fprintf(stderr, "%s %d: test accuracy %.4f\n", an, H, correct / 10000.0);

    char path[1024], name[64];
    snprintf(name, sizeof name, "mnist_%s_%dx2", an, H);
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *o = fopen(path, "w");
    if (!o)
        return 1;
    const char *op = act == A_SIGMOID ? "Sigmoid" : act == A_TANH ? "Tanh" : act == A_SIN ? "Sin" : "Gelu";
    fprintf(o, "{\n  \"format\": \"nnv-model\", \"version\": 1, \"ir_version\": 8, \"opset\": 20,\n"
               "  \"producer\": \"benchmarks/train_mlp.c (test accuracy %.4f)\",\n"
               "  \"inputs\": [{\"name\": \"x\", \"dtype\": \"float\", \"shape\": [1, 784]}],\n"
               "  \"outputs\": [{\"name\": \"y\", \"dtype\": \"float\", \"shape\": [1, 10]}],\n"
               "  \"initializers\": [\n", correct / 10000.0);
    write_mat(o, "W1", NI, H, W1, 0), write_mat(o, "b1", H, 0, b1, 0);
    write_mat(o, "W2", H, H, W2, 0), write_mat(o, "b2", H, 0, b2, 0);
    write_mat(o, "W3", H, NO, W3, 0), write_mat(o, "b3", NO, 0, b3, 1);
    fprintf(o, "  ],\n  \"nodes\": [\n"
               "    {\"op\": \"Gemm\", \"name\": \"fc1\", \"inputs\": [\"x\", \"W1\", \"b1\"], \"outputs\": [\"z1\"]},\n"
               "    {\"op\": \"%s\", \"name\": \"act1\", \"inputs\": [\"z1\"], \"outputs\": [\"a1\"]},\n"
               "    {\"op\": \"Gemm\", \"name\": \"fc2\", \"inputs\": [\"a1\", \"W2\", \"b2\"], \"outputs\": [\"z2\"]},\n"
               "    {\"op\": \"%s\", \"name\": \"act2\", \"inputs\": [\"z2\"], \"outputs\": [\"a2\"]},\n"
               "    {\"op\": \"Gemm\", \"name\": \"fc3\", \"inputs\": [\"a2\", \"W3\", \"b3\"], \"outputs\": [\"y\"]}\n"
               "  ]\n}\n", op, op);
    fclose(o);
    /* specs: the first n_spec correctly classified test images */
    snprintf(path, sizeof path, "%s/instances.csv", dir);
    FILE *ic = fopen(path, "a");
    for (int s = 0, made = 0; s < 10000 && made < nspec && ic; s++) {
        for (int i = 0; i < NI; i++)
            x[i] = timg[16 + (size_t)s * 784 + i] / 255.0f;
        forward(x, z1, a1, z2, a2, y);
        int b = 0, c = tlab[8 + s];
        for (int j = 1; j < NO; j++)
            if (y[j] > y[b])
                b = j;
        if (b != c)
            continue;
        if (bm_write_spec(dir, name, s, c, x, eps, 60, ic))
            break;
        made++;
    }
    if (ic)
        fclose(ic);
    return 0;
}
