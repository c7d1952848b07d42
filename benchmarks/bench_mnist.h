/* bench_mnist.h: what the benchmark generators (train_mlp.c, train_deep.c)
 * share: a seeded xorshift generator, reading MNIST's gzipped IDX files from
 * ../shared/data/mnist, and writing one L-infinity robustness spec (VNNLIB)
 * plus its instances.csv line. Header-only: each generator is one `cc`
 * command (see the benchmark READMEs). */
#ifndef NNV_BENCH_MNIST_H
#define NNV_BENCH_MNIST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

#endif
