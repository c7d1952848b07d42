/* trn_data.c: datasets for training: IDX files (MNIST, Fashion-MNIST; raw or
 * .gz, both read through zlib) and the CIFAR-10 binary format, kept as bytes in
 * NCHW order; batches are assembled as floats normalised per channel, with the
 * CIFAR augmentation (horizontal flip, random crop from an edge-padded image).
 * Every header field is checked before anything is allocated from it. */
#include "trn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAX_ITEMS 10000000

static int read_all(gzFile f, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* An IDX file of unsigned bytes: rank 1 (labels) or 3 (images). */
int trn_idx_read(const char *path, int want_rank, int64_t *dims, uint8_t **out, err *e)
{
    *out = NULL;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return err_set(e, ERR_IO, "%s: cannot open", path);
    unsigned char head[4];
    int rc = 0;
    if (read_all(f, head, 4) != 0) {
        rc = err_set(e, ERR_PARSE, "%s: truncated IDX header", path);
        goto done;
    }
    if (head[0] != 0 || head[1] != 0 || head[2] != 0x08) {
        rc = err_set(e, ERR_PARSE, "%s: not an unsigned-byte IDX file (magic %02x%02x%02x%02x)",
                     path, head[0], head[1], head[2], head[3]);
        goto done;
    }
    if (head[3] != want_rank) {
        rc = err_set(e, ERR_SHAPE, "%s: IDX rank %d, expected %d", path, head[3], want_rank);
        goto done;
    }
    int64_t total = 1;
    for (int i = 0; i < want_rank; i++) {
        unsigned char b[4];
        if (read_all(f, b, 4) != 0) {
            rc = err_set(e, ERR_PARSE, "%s: truncated IDX header", path);
            goto done;
        }
        uint32_t d = be32(b);
        if (d == 0 || d > (i == 0 ? IDX_MAX_ITEMS : 4096)) {
            rc = err_set(e, ERR_SHAPE, "%s: IDX dimension %d is %u (out of range)", path, i, d);
            goto done;
        }
        dims[i] = d;
        total *= d;
        if (total > NN_MAX_ELEMS * 4) {
            rc = err_set(e, ERR_NOMEM, "%s: IDX data too large", path);
            goto done;
        }
    }
    *out = malloc((size_t)total);
    if (!*out) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory for %lld bytes", path, (long long)total);
        goto done;
    }
    if (read_all(f, *out, (size_t)total) != 0) {
        free(*out);
        *out = NULL;
        rc = err_set(e, ERR_PARSE, "%s: truncated IDX data (expected %lld bytes)", path,
                     (long long)total);
    }
done:
    gzclose(f);
    return rc;
}

void trn_data_free(trn_dataset *d)
{
    if (!d)
        return;
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

static void set_plain_stats(trn_dataset *d)
{
    for (int c = 0; c < TRN_MAX_CH; c++) {
        d->mean[c] = 0.0f;
        d->std[c] = 1.0f;
    }
}

int trn_data_load_idx(const char *images, const char *labels, trn_dataset *d, err *e)
{
    memset(d, 0, sizeof *d);
    int64_t di[3], dl[1];
    int rc = trn_idx_read(images, 3, di, &d->pixels, e);
    if (rc)
        return rc;
    rc = trn_idx_read(labels, 1, dl, &d->labels, e);
    if (rc) {
        trn_data_free(d);
        return rc;
    }
    if (dl[0] != di[0]) {
        trn_data_free(d);
        return err_set(e, ERR_SHAPE, "%s: %lld labels for %lld images in %s", labels,
                       (long long)dl[0], (long long)di[0], images);
    }
    d->n = di[0];
    d->c = 1;
    d->h = (int)di[1];
    d->w = (int)di[2];
    d->n_classes = 0;
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] + 1 > d->n_classes)
            d->n_classes = d->labels[i] + 1;
    if (d->n_classes < 2 || d->n_classes > TRN_MAX_CLASSES) {
        trn_data_free(d);
        return err_set(e, ERR_VALUE, "%s: labels span %d classes (need 2..%d)", labels,
                       d->n_classes, TRN_MAX_CLASSES);
    }
    set_plain_stats(d);
    return 0;
}

/* CIFAR-10 binary: records of 1 label byte + 3x32x32 pixel bytes (CHW).
 * Several files are concatenated (data_batch_1..5). */
int trn_data_load_cifar(const char *const *paths, int n_paths, trn_dataset *d, err *e)
{
    enum { REC = 1 + 3 * 32 * 32 };
    memset(d, 0, sizeof *d);
    int64_t n_total = 0;
    for (int p = 0; p < n_paths; p++) {
        struct stat st;
        if (stat(paths[p], &st) != 0)
            return err_set(e, ERR_IO, "%s: cannot open", paths[p]);
        if (st.st_size <= 0 || st.st_size % REC != 0)
            return err_set(e, ERR_PARSE, "%s: size %lld is not a multiple of the %d-byte CIFAR record",
                           paths[p], (long long)st.st_size, REC);
        n_total += st.st_size / REC;
        if (n_total > IDX_MAX_ITEMS)
            return err_set(e, ERR_NOMEM, "%s: too many CIFAR records", paths[p]);
    }
    d->pixels = malloc((size_t)n_total * (REC - 1));
    d->labels = malloc((size_t)n_total);
    if (!d->pixels || !d->labels) {
        trn_data_free(d);
        return err_set(e, ERR_NOMEM, "cifar: out of memory for %lld images", (long long)n_total);
    }
    unsigned char *rec = malloc(REC);
    if (!rec) {
        trn_data_free(d);
        return err_set(e, ERR_NOMEM, "cifar: out of memory");
    }
    int64_t i = 0;
    for (int p = 0; p < n_paths; p++) {
        FILE *f = fopen(paths[p], "rb");
        if (!f) {
            free(rec);
            trn_data_free(d);
            return err_set(e, ERR_IO, "%s: cannot open", paths[p]);
        }
        while (i < n_total && fread(rec, 1, REC, f) == REC) {
            if (rec[0] > 9) {
                int bad = rec[0];
                fclose(f);
                free(rec);
                trn_data_free(d);
                return err_set(e, ERR_VALUE, "%s: record %lld: label %d out of range", paths[p],
                               (long long)i, bad);
            }
            d->labels[i] = rec[0];
            memcpy(d->pixels + (size_t)i * (REC - 1), rec + 1, REC - 1);
            i++;
        }
        fclose(f);
    }
    free(rec);
    if (i != n_total) {
        trn_data_free(d);
        return err_set(e, ERR_IO, "cifar: read %lld of %lld records", (long long)i,
                       (long long)n_total);
    }
    d->n = n_total;
    d->c = 3;
    d->h = d->w = 32;
    d->n_classes = 10;
    static const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2023f, 0.1994f, 0.2010f};
    set_plain_stats(d);
    for (int c = 0; c < 3; c++) {
        d->mean[c] = mean[c];
        d->std[c] = std[c];
    }
    d->augment = 1;
    return 0;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Find "<dir>/<stem>" raw or with .gz. */
static int find_file(const char *dir, const char *stem, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.gz", dir, stem);
    if (exists(out))
        return 0;
    snprintf(out, cap, "%s/%s", dir, stem);
    return exists(out) ? 0 : -1;
}

int trn_data_load(const char *name, const char *dir, int train, trn_dataset *d, err *e)
{
    const char *path = dir;
    if (!path || !*path) {
        if (strcmp(name, "fashion-mnist") == 0)
            path = "/usr/share/datasets/fashion-mnist";
        else if (strcmp(name, "mnist") == 0)
            path = "../shared/data/mnist";
        else if (strcmp(name, "cifar10") == 0)
            path = "../shared/data/cifar-10-batches-bin";
        else
            path = name; /* a directory given as the dataset */
    }
    char p1[4096], p2[4096];
    if (strcmp(name, "cifar10") == 0) {
        char names[6][4096];
        const char *list[6];
        int n = 0;
        if (train)
            for (int b = 1; b <= 5; b++)
                snprintf(names[n], sizeof names[n], "%s/data_batch_%d.bin", path, b), n++;
        else
            snprintf(names[n], sizeof names[n], "%s/test_batch.bin", path), n++;
        for (int k = 0; k < n; k++)
            list[k] = names[k];
        return trn_data_load_cifar(list, n, d, e);
    }
    const char *pre = train ? "train" : "t10k";
    char si[64], sl[64];
    snprintf(si, sizeof si, "%s-images-idx3-ubyte", pre);
    snprintf(sl, sizeof sl, "%s-labels-idx1-ubyte", pre);
    if (find_file(path, si, p1, sizeof p1) != 0 || find_file(path, sl, p2, sizeof p2) != 0)
        return err_set(e, ERR_IO, "%s: no %s / %s IDX files (raw or .gz) for dataset '%s'", path, si,
                       sl, name);
    return trn_data_load_idx(p1, p2, d, e);
}

/* Per-channel mean and standard deviation of the pixels in [0,1]. */
void trn_data_channel_stats(const trn_dataset *d, float *mean, float *std)
{
    int64_t hw = (int64_t)d->h * d->w;
    for (int c = 0; c < d->c; c++) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < d->n; i++) {
            const uint8_t *p = d->pixels + (i * d->c + c) * hw;
            for (int64_t k = 0; k < hw; k++) {
                double v = p[k] / 255.0;
                s += v;
                s2 += v * v;
            }
        }
        double cnt = (double)d->n * (double)hw, mu = s / cnt;
        double var = s2 / cnt - mu * mu;
        mean[c] = (float)mu;
        std[c] = (float)sqrt(var > 1e-12 ? var : 1e-12);
    }
}

/* Assemble a batch: x[i] = (pixel/255 - mean[c]) / std[c] of image idx[i]; with
 * aug, each image is flipped horizontally with probability 1/2 and shifted by a
 * random crop of a copy padded by pad pixels on each side, the padding repeating
 * the edge pixels (as the reference recipe's RandomCrop(padding_mode='edge')). */
void trn_data_batch(const trn_dataset *d, const int64_t *idx, int n, int aug, int pad,
                    trn_rng *rng, float *x, int *y)
{
    int C = d->c, H = d->h, W = d->w;
    int64_t hw = (int64_t)H * W;
    for (int i = 0; i < n; i++) {
        const uint8_t *src = d->pixels + idx[i] * C * hw;
        float *dst = x + (int64_t)i * C * hw;
        y[i] = d->labels[idx[i]];
        int dy = 0, dx = 0, flip = 0;
        if (aug) {
            dy = (int)trn_rng_below(rng, (uint64_t)(2 * pad + 1)) - pad;
            dx = (int)trn_rng_below(rng, (uint64_t)(2 * pad + 1)) - pad;
            flip = (int)trn_rng_below(rng, 2);
        }
        for (int c = 0; c < C; c++) {
            float inv = 1.0f / d->std[c];
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    int sh = h + dy, sw = (flip ? W - 1 - w : w) + dx;
                    sh = sh < 0 ? 0 : sh >= H ? H - 1 : sh;
                    sw = sw < 0 ? 0 : sw >= W ? W - 1 : sw;
                    dst[c * hw + h * W + w] = (src[c * hw + sh * W + sw] / 255.0f - d->mean[c]) * inv;
                }
        }
    }
}
