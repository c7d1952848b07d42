/* idx_specs.c: robustness properties for test images, to check a trained
 * model with `verify` or vnncomp/run_benchmark.sh.
 *
 * usage: idx_specs IMAGES LABELS FIRST COUNT EPS MODEL TIMEOUT OUTDIR
 *   IMAGES, LABELS: IDX files (.gz or raw), e.g. the Fashion-MNIST test set
 *   in /usr/share/datasets/fashion-mnist; images FIRST .. FIRST+COUNT-1.
 * Writes OUTDIR/imgK.vnnlib for each: the L-inf ball of radius EPS around
 * the image (pixels scaled to [0, 1], the ball clipped to [0, 1]) with the
 * unsafe region "some other class scores at least the label's", and
 * OUTDIR/instances.csv lines MODEL,imgK.vnnlib,TIMEOUT for
 * vnncomp/run_benchmark.sh OUTDIR, which reads both paths relative to
 * OUTDIR (so give MODEL relative to it, e.g. a link placed there). Labels
 * must be classes 0-9.
 *
 * build: cc -O2 -std=c11 scripts/idx_specs.c -o idx_specs -lz */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

/* The whole file (gzread reads raw files as they are). */
static unsigned char *slurp(const char *path, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    for (int r; buf && (r = gzread(f, buf + n, (unsigned)(cap - n))) > 0;) {
        n += (size_t)r;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    gzclose(f);
    *len = n;
    return buf;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: idx_specs IMAGES LABELS FIRST COUNT EPS MODEL TIMEOUT OUTDIR\n");
        return 2;
    }
    size_t ni, nl;
    unsigned char *img = slurp(argv[1], &ni), *lab = slurp(argv[2], &nl);
    if (!img || !lab || ni < 16 || nl < 8 || be32(img) != 0x803 || be32(lab) != 0x801) {
        fprintf(stderr, "idx_specs: %s / %s: not IDX images / labels\n", argv[1], argv[2]);
        return 1;
    }
    long first = atol(argv[3]), count = atol(argv[4]);
    double eps = atof(argv[5]);
    uint32_t n = be32(img + 4), px = be32(img + 8) * be32(img + 12);
    if (first < 0 || count < 0 || (uint64_t)first + (uint64_t)count > n || be32(lab + 4) != n ||
        ni < 16 + (size_t)n * px || nl < 8 + (size_t)n || !(eps >= 0)) {
        fprintf(stderr, "idx_specs: bad range, eps or file size\n");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/instances.csv", argv[8]);
    FILE *csv = fopen(path, "w");
    if (!csv) {
        fprintf(stderr, "idx_specs: cannot write %s\n", path);
        return 1;
    }
    for (long k = first; k < first + count; k++) {
        snprintf(path, sizeof path, "%s/img%ld.vnnlib", argv[8], k);
        FILE *o = fopen(path, "w");
        if (!o) {
            fprintf(stderr, "idx_specs: cannot write %s\n", path);
            return 1;
        }
        const unsigned char *x = img + 16 + (size_t)k * px;
        int y = lab[8 + k];
        if (y > 9) {
            fprintf(stderr, "idx_specs: %s: label %d of image %ld is not a class 0-9\n", argv[2], y, k);
            return 1;
        }
        fprintf(o, "; test image %ld (label %d), L-inf eps %g clipped to [0, 1]\n", k, y, eps);
        for (uint32_t i = 0; i < px; i++)
            fprintf(o, "(declare-const X_%u Real)\n", i);
        for (int j = 0; j < 10; j++)
            fprintf(o, "(declare-const Y_%d Real)\n", j);
        for (uint32_t i = 0; i < px; i++) {
            double v = x[i] / 255.0, lo = v - eps, hi = v + eps;
            fprintf(o, "(assert (>= X_%u %.9f))\n(assert (<= X_%u %.9f))\n", i, lo < 0 ? 0 : lo,
                    i, hi > 1 ? 1 : hi);
        }
        fprintf(o, "(assert (or");
        for (int j = 0; j < 10; j++)
            if (j != y)
                fprintf(o, "\n  (and (>= Y_%d Y_%d))", j, y);
        fprintf(o, "))\n");
        fclose(o);
        fprintf(csv, "%s,img%ld.vnnlib,%s\n", argv[6], k, argv[7]);
    }
    fclose(csv);
    free(img), free(lab);
    return 0;
}
