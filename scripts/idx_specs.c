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
 * Built by `make all` as build/bin/idx_specs (the IDX reader is the
 * trainer's, train/trn_data.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../train/trn.h"

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: idx_specs IMAGES LABELS FIRST COUNT EPS MODEL TIMEOUT OUTDIR\n");
        return 2;
    }
    int64_t di[3], dl[1];
    uint8_t *img = NULL, *lab = NULL;
    err e = {0};
    if (trn_idx_read(argv[1], 3, di, &img, &e) || trn_idx_read(argv[2], 1, dl, &lab, &e)) {
        fprintf(stderr, "idx_specs: %s\n", e.msg);
        return 1;
    }
    long first = atol(argv[3]), count = atol(argv[4]);
    double eps = atof(argv[5]);
    int64_t n = di[0], px = di[1] * di[2];
    if (first < 0 || count < 0 || first + count > n || dl[0] != n || !(eps >= 0)) {
        fprintf(stderr, "idx_specs: images %ld-%ld, eps %s: out of range (%lld images, %lld labels)\n",
                first, first + count - 1, argv[5], (long long)n, (long long)dl[0]);
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
        const uint8_t *x = img + (size_t)k * (size_t)px;
        int y = lab[k];
        if (y > 9) {
            fprintf(stderr, "idx_specs: %s: label %d of image %ld is not a class 0-9\n", argv[2], y, k);
            return 1;
        }
        snprintf(path, sizeof path, "%s/img%ld.vnnlib", argv[8], k);
        FILE *o = fopen(path, "w");
        if (!o) {
            fprintf(stderr, "idx_specs: cannot write %s\n", path);
            return 1;
        }
        fprintf(o, "; test image %ld (label %d), L-inf eps %g clipped to [0, 1]\n", k, y, eps);
        for (int64_t i = 0; i < px; i++)
            fprintf(o, "(declare-const X_%lld Real)\n", (long long)i);
        for (int j = 0; j < 10; j++)
            fprintf(o, "(declare-const Y_%d Real)\n", j);
        for (int64_t i = 0; i < px; i++) {
            double v = x[i] / 255.0, lo = v - eps, hi = v + eps;
            fprintf(o, "(assert (>= X_%lld %.9f))\n(assert (<= X_%lld %.9f))\n", (long long)i,
                    lo < 0 ? 0 : lo, (long long)i, hi > 1 ? 1 : hi);
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
