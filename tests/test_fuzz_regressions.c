/* test_fuzz_regressions.c: every input kept in tests/data/fuzz/<target>/
 * (crashes, hangs and slow inputs found by fuzz/run.sh, plus a few hostile
 * seeds) goes through the same entry point as its libFuzzer harness
 * (fuzz/fuzz_<target>.c; bound: load, eval, IBP and CROWN). Each must load or fail with a message naming the
 * file, within a time bound, and never crash (ASan/UBSan under make sanitize). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bound/bound.h"
#include "../models/nn.h"
#include "../specs/spec.h"

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap + 1);
    cr_assert(b);
    for (size_t got; (got = fread(b + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
            cr_assert(b);
        }
    }
    fclose(f);
    b[n] = 0; /* the text harnesses see a NUL-terminated copy */
    *len = n;
    return b;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Run one input; returns 1 if it loaded, 0 if it failed cleanly. */
static int run_one(const char *target, const unsigned char *data, size_t len)
{
    err e = {0};
    int rc;
    if (strcmp(target, "onnx") == 0) {
        nn_graph *g = NULL;
        rc = nn_load_onnx_buffer("fuzz.onnx", data, len, &g, &e);
        if (rc == 0)
            nn_graph_free(g);
    } else if (strcmp(target, "bound") == 0) { /* as fuzz/fuzz_bound.c */
        nn_graph *g = NULL;
        rc = nn_load_onnx_buffer("fuzz.onnx", data, len, &g, &e);
        if (rc == 0) {
            int64_t nx = nn_input_size(g), ny = nn_output_size(g);
            if (nx > 0 && ny > 0 && nx <= 1024 && ny <= 64 && g->n_nodes <= 64) {
                double *b = calloc((size_t)(3 * nx + 3 * ny), sizeof(double));
                cr_assert(b);
                double *lo = b, *hi = lo + nx, *x = hi + nx, *y = x + nx, *lb = y + ny,
                       *ub = lb + ny;
                for (int64_t i = 0; i < nx; i++)
                    lo[i] = -1, hi[i] = 1, x[i] = 0.5;
                (void)nn_eval(g, x, y, &e);
                bnd_net *n = NULL;
                if (bnd_net_new(g, &n, &e) == 0) {
                    (void)bnd_compute(n, BND_IBP, lo, hi, NULL, 0, lb, ub, &e);
                    (void)bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, lb, ub, &e);
                    bnd_net_free(n);
                }
                free(b);
            }
            nn_graph_free(g);
        }
    } else if (strcmp(target, "json") == 0) {
        nn_graph *g = NULL;
        rc = nn_load_json_string("fuzz.json", (const char *)data, &g, &e);
        if (rc == 0)
            nn_graph_free(g);
    } else {
        spec_property *p = NULL;
        rc = spec_parse_vnnlib_string("fuzz.vnnlib", (const char *)data, &p, &e);
        if (rc == 0)
            spec_free(p);
    }
    if (rc != 0) {
        cr_expect_lt(rc, 0);
        cr_expect(strstr(e.msg, "fuzz.") != NULL, "message without the file: %s", e.msg);
    }
    return rc == 0;
}

static void run_folder(const char *target)
{
    char dir[256];
    snprintf(dir, sizeof dir, "tests/data/fuzz/%s", target);
    DIR *d = opendir(dir);
    cr_assert(d, "missing %s", dir);
    int n = 0, loaded = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "README") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len;
        unsigned char *b = slurp(path, &len);
        double t0 = now();
        loaded += run_one(target, b, len);
        double dt = now() - t0;
        cr_expect_lt(dt, 2.0, "%s took %.2f s", path, dt);
        free(b);
        n++;
    }
    closedir(d);
    cr_expect_gt(n, 0, "no inputs in %s", dir);
    cr_log_info("%s: %d inputs, %d loaded", target, n, loaded);
}

Test(fuzz_regressions, onnx_inputs_load_or_fail_cleanly)
{
    run_folder("onnx");
}

Test(fuzz_regressions, bound_inputs_evaluate_and_bound_or_fail_cleanly)
{
    run_folder("bound");
}

Test(fuzz_regressions, json_inputs_load_or_fail_cleanly)
{
    run_folder("json");
}

Test(fuzz_regressions, vnnlib_inputs_load_or_fail_cleanly)
{
    run_folder("vnnlib");
}
