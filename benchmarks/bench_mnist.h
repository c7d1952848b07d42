/* bench_mnist.h: what the benchmark generators (train_mlp.c, train_deep.c,
 * train_conv.c) share: a seeded xorshift generator, reading MNIST's gzipped
 * IDX files from ../shared/data/mnist, the smooth activations with their
 * derivatives, the Adam step, softmax cross-entropy, and writing L-infinity
 * robustness specs (VNNLIB) with their instances.csv lines. Header-only:
 * each generator is one `cc` command (see the benchmark READMEs). */
#ifndef NNV_BENCH_MNIST_H
#define NNV_BENCH_MNIST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define BM_NI 784
#define BM_NO 10

/* uniform in [0, 1) from a xorshift64 state */
static inline double bm_unif(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) * 0x1p-53;
}

static unsigned char *bm_read_gz(const char *path, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    unsigned char *b = malloc(cap);
    int r;
    while (b && (r = gzread(f, b + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)r;
        if (n == cap) {
            unsigned char *c = realloc(b, cap *= 2);
            if (!c)
                free(b);
            b = c;
        }
    }
    gzclose(f);
    *len = n;
    return b;
}

/* MNIST's four files (raw bytes, IDX headers included); 0 on success */
typedef struct {
    unsigned char *img, *lab, *timg, *tlab;
} bm_mnist;

static int bm_mnist_load(bm_mnist *d)
{
    const char *dir = "../shared/data/mnist/";
    const char *f[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    size_t need[4] = {16 + 60000 * 784, 8 + 60000, 16 + 10000 * 784, 8 + 10000};
    unsigned char **out[4] = {&d->img, &d->lab, &d->timg, &d->tlab};
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        char path[256];
        size_t len = 0;
        snprintf(path, sizeof path, "%s%s", dir, f[i]);
        *out[i] = bm_read_gz(path, &len);
        if (!*out[i] || len < need[i])
            ok = 0;
    }
    return ok ? 0 : -1;
}

/* Writes DIR/NAME_img<s>_eps<eps>.vnnlib: the box [x-eps, x+eps] ∩ [0,1] and
 * "some other class scores at least the label" (the negated property), and
 * appends its instances.csv line to ic. 0 on success. */
static int bm_write_spec(const char *dir, const char *name, int s, int label, const float *x,
                         double eps, int timeout, FILE *ic)
{
    char vn[128], path[1024];
    snprintf(vn, sizeof vn, "%s_img%d_eps%g.vnnlib", name, s, eps);
    snprintf(path, sizeof path, "%s/%s", dir, vn);
    FILE *v = fopen(path, "w");
    if (!v)
        return -1;
    fprintf(v, "; %s, test image %d (label %d), L-inf eps %g on [0, 1]\n", name, s, label, eps);
    for (int i = 0; i < BM_NI; i++)
        fprintf(v, "(declare-const X_%d Real)\n", i);
    for (int j = 0; j < BM_NO; j++)
        fprintf(v, "(declare-const Y_%d Real)\n", j);
    for (int i = 0; i < BM_NI; i++) {
        double lo = fmax(0, x[i] - eps), hi = fmin(1, x[i] + eps);
        fprintf(v, "(assert (>= X_%d %.9g))\n(assert (<= X_%d %.9g))\n", i, lo, i, hi);
    }
    fprintf(v, "(assert (or\n");
    for (int j = 0; j < BM_NO; j++)
        if (j != label)
            fprintf(v, "  (and (>= Y_%d Y_%d))\n", j, label);
    fprintf(v, "))\n");
    fclose(v);
    fprintf(ic, "%s.json,%s,%d\n", name, vn, timeout);
    return 0;
}

/* The smooth activations of the deep generators. */
typedef enum { BM_SIGMOID, BM_TANH, BM_GELU, BM_SIN } bm_act;

/* "sigmoid", "tanh", "gelu" or "sin"; -1 for anything else */
static inline int bm_act_parse(const char *name)
{
    static const char *const names[] = {"sigmoid", "tanh", "gelu", "sin"};
    for (int k = 0; k < 4; k++)
        if (!strcmp(name, names[k]))
            return k;
    return -1;
}

static inline const char *bm_act_op(bm_act a)
{
    return a == BM_GELU ? "Gelu" : a == BM_SIN ? "Sin" : a == BM_TANH ? "Tanh" : "Sigmoid";
}

/* pre-activations must be kept for f' (GeLU and sin; sigmoid and tanh use f) */
static inline int bm_act_keeps_pre(bm_act a)
{
    return a == BM_GELU || a == BM_SIN;
}

static inline float bm_act_f(bm_act a, float z)
{
    if (a == BM_GELU) /* z * Phi(z) (the erf form ONNX's Gelu computes) */
        return 0.5f * z * erfcf(-z * (float)0.70710678118654752440);
    if (a == BM_SIN)
        return sinf(z);
    return a == BM_TANH ? tanhf(z) : 1.0f / (1.0f + expf(-z));
}

/* f'(z) from the pre-activation z and the output y = f(z) */
static inline float bm_act_df(bm_act a, float z, float y)
{
    if (a == BM_GELU) /* Phi(z) + z phi(z) */
        return 0.5f * erfcf(-z * (float)0.70710678118654752440) +
               z * expf(-0.5f * z * z) * 0.3989422804f;
    if (a == BM_SIN)
        return cosf(z);
    return a == BM_TANH ? 1 - y * y : y * (1 - y);
}

/* One Adam step (b1 0.9, b2 0.999, bias-corrected) on n parameters. */
static inline void bm_adam(float *p, const float *g, float *m, float *v, size_t n, double lr, int step)
{
    const double b1 = 0.9, b2 = 0.999;
    double c1 = 1 - pow(b1, step), c2 = 1 - pow(b2, step);
    for (size_t t = 0; t < n; t++) {
        m[t] = (float)(b1 * m[t] + (1 - b1) * g[t]);
        v[t] = (float)(b2 * v[t] + (1 - b2) * g[t] * g[t]);
        p[t] -= (float)(lr * (m[t] / c1) / (sqrt(v[t] / c2) + 1e-8));
    }
}

/* Fisher-Yates over perm[0 .. n-1] from the generator's state. */
static inline void bm_shuffle(uint64_t *rng, int *perm, int n)
{
    for (int s = n - 1; s > 0; s--) {
        int r = (int)(bm_unif(rng) * (s + 1)), t = perm[s];
        perm[s] = perm[r], perm[r] = t;
    }
}

/* Softmax cross-entropy of logits y (BM_NO) against class c: returns the
 * loss and writes its gradient, divided by the batch size, to d. */
static inline double bm_xent(const float *y, int c, float *d, int batch)
{
    double m = y[0], se = 0;
    for (int j = 1; j < BM_NO; j++)
        m = fmax(m, y[j]);
    for (int j = 0; j < BM_NO; j++)
        se += exp(y[j] - m);
    for (int j = 0; j < BM_NO; j++)
        d[j] = (float)((exp(y[j] - m) / se - (j == c)) / batch);
    return log(se) + m - y[c];
}

/* Image s of an IDX image file (header included) scaled to [0, 1]. */
static inline void bm_image(const unsigned char *idx, int s, float *x)
{
    for (int i = 0; i < BM_NI; i++)
        x[i] = idx[16 + (size_t)s * BM_NI + i] / 255.0f;
}

/* For the first nspec test images that predict() classifies correctly, one
 * spec per eps of the comma-separated list, appended to DIR/instances.csv.
 * 0 on success. */
static inline int bm_write_specs(const char *dir, const char *name, const bm_mnist *d, int nspec,
                          const char *eps_list, int timeout, int (*predict)(const float *x))
{
    char path[1024];
    snprintf(path, sizeof path, "%s/instances.csv", dir);
    FILE *ic = fopen(path, "a");
    if (!ic)
        return nspec > 0 ? -1 : 0;
    float x[BM_NI];
    int rc = 0;
    for (int s = 0, made = 0; s < 10000 && made < nspec && !rc; s++) {
        bm_image(d->timg, s, x);
        int c = d->tlab[8 + s];
        if (predict(x) != c)
            continue;
        for (const char *e = eps_list; *e && !rc;) {
            char *end;
            double eps = strtod(e, &end);
            if (end == e)
                break;
            e = *end == ',' ? end + 1 : end;
            rc = bm_write_spec(dir, name, s, c, x, eps, timeout, ic);
        }
        made++;
    }
    fclose(ic);
    return rc;
}

#endif
