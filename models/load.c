/* load.c: reading model files. nn_load picks the format by extension (.onnx or
 * .json, optionally followed by .gz); files are read through zlib, which reads
 * plain files transparently, with the decompressed size capped so that a
 * hostile archive cannot exhaust memory. */
#include "onnx.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>


#define MAX_MODEL_BYTES ((size_t)1 << 31) /* 2 GiB after decompression */

int nn_read_file(const char *path, size_t max_len, uint8_t **buf, size_t *len, err *e)
{
    *buf = NULL;
    *len = 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set(e, ERR_IO, "%s: cannot open (no such file or not readable)", path);
    if (!S_ISREG(st.st_mode))
        return err_set(e, ERR_IO, "%s: not a regular file", path);
    if ((uint64_t)st.st_size > max_len)
        return err_set(e, ERR_NOMEM, "%s: file larger than %zu bytes", path, max_len);
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return err_set(e, ERR_IO, "%s: cannot open", path);
    size_t cap = (size_t)st.st_size + 1, n = 0;
    uint8_t *b = malloc(cap);
    int rc = b ? 0 : err_set(e, ERR_NOMEM, "%s: out of memory", path);
    while (!rc) {
        if (n == cap) {
            if (cap >= max_len + 1) {
                rc = err_set(e, ERR_NOMEM, "%s: more than %zu bytes after decompression", path, max_len);
                break;
            }
            size_t nc = cap * 2 < max_len + 1 ? cap * 2 : max_len + 1;
            uint8_t *nb = realloc(b, nc);
            if (!nb) {
                rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            b = nb;
            cap = nc;
        }
        size_t want = cap - n < ((size_t)1 << 30) ? cap - n : ((size_t)1 << 30);
        int got = gzread(gz, b + n, (unsigned)want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            rc = err_set(e, ERR_IO, "%s: read error: %s", path, msg ? msg : "unknown");
        } else if (got == 0) {
            break;
        } else {
            n += (size_t)got;
        }
    }
    gzclose(gz);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = n;
    return 0;
}

int nn_load_onnx(const char *path, nn_graph **out, err *e)
{
    *out = NULL;
    uint8_t *buf;
    size_t len;
    int rc = nn_read_file(path, MAX_MODEL_BYTES, &buf, &len, e);
    if (rc)
        return rc;
    rc = nn_load_onnx_buffer(path, buf, len, out, e);
    free(buf);
    return rc;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && strncmp(s + n - m, suffix, m) == 0;
}

int nn_load(const char *path, nn_graph **out, err *e)
{
    *out = NULL;
    if (!path)
        return err_set(e, ERR_ARG, "nn_load: no path");
    size_t n = strlen(path);
    if (ends_with(path, n, ".gz"))
        n -= 3;
    if (ends_with(path, n, ".onnx"))
        return nn_load_onnx(path, out, e);
    if (ends_with(path, n, ".json")) {
        return nn_load_json(path, out, e);
    }
    return err_set(e, ERR_ARG, "%s: unknown model format (expected .onnx or .json, optionally .gz)",
                   path);
}
