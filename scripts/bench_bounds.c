/* bench_bounds.c: median time of IBP and CROWN bound computations on the
 * first box of a VNNLIB property.
 *   make build/libnnv.a && cc -O2 -std=c11 -D_GNU_SOURCE \
 *     -I/usr/include/x86_64-linux-gnu/openblas-pthread scripts/bench_bounds.c \
 *     build/libnnv.a -o build/bench_bounds -lopenblas -lcjson -lz -lpthread -lm
 *   build/bench_bounds model.onnx spec.vnnlib [repeats]
 * Prints one line per method: output bounds (identity objective, both sides)
 * and spec rows (all rows of the first region, lower side only, which is what
 * a verifier asks for). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../bound/bound.h"
#include "../models/nn.h"
#include "../specs/spec.h"

static double now_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now(void)
{
    return now_clock(CLOCK_MONOTONIC);
}

static double cpu(void)
{
    return now_clock(CLOCK_PROCESS_CPUTIME_ID);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s model.onnx spec.vnnlib [repeats]\n", argv[0]);
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 50;
    if (reps < 1)
        reps = 1;
    nn_graph *g = NULL;
    spec_property *p = NULL;
    bnd_net *n = NULL;
    err e = {0};
    if (nn_load(argv[1], &g, &e) || spec_parse_vnnlib(argv[2], &p, &e) ||
        bnd_net_new(g, &n, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    const spec_region *r = &p->regions[0];
    int64_t ny = bnd_n_out(n);
    int rows = 0;
    for (int c = 0; c < r->n_clauses; c++)
        rows += r->clauses[c].n_rows;
    double *C = malloc(sizeof(double) * (size_t)((rows ? rows : 1) * ny));
    double *lb = malloc(sizeof(double) * (size_t)(ny + rows + 1));
    double *ub = malloc(sizeof(double) * (size_t)(ny + rows + 1));
    double *t = malloc(sizeof(double) * (size_t)reps);
    double *tc = malloc(sizeof(double) * (size_t)reps);
    int q = 0;
    for (int c = 0; c < r->n_clauses; c++) {
        memcpy(C + (int64_t)q * ny, r->clauses[c].C,
               sizeof(double) * (size_t)(r->clauses[c].n_rows * ny));
        q += r->clauses[c].n_rows;
    }
    const char *names[2] = {"IBP", "CROWN"};
    for (int m = 0; m < 2; m++)
        for (int spec = 0; spec < 2; spec++) {
            if (spec && rows == 0)
                continue;
            for (int i = 0; i < reps; i++) {
                double t0 = now(), c0 = cpu();
                int rc = spec ? bnd_compute(n, m, r->lo, r->hi, C, rows, lb, NULL, &e)
                              : bnd_compute(n, m, r->lo, r->hi, NULL, 0, lb, ub, &e);
                t[i] = now() - t0;
                tc[i] = cpu() - c0;
                if (rc) {
                    fprintf(stderr, "%s\n", e.msg);
                    return 1;
                }
            }
            qsort(t, (size_t)reps, sizeof(double), cmp);
            qsort(tc, (size_t)reps, sizeof(double), cmp);
            printf("%-5s %-7s median %9.3f ms  (min %.3f ms, cpu median %.3f ms, %d runs)  "
                   "first bound %.6g\n",
                   names[m], spec ? "spec-lb" : "outputs", 1e3 * t[reps / 2], 1e3 * t[0],
                   1e3 * tc[reps / 2], reps, lb[0]);
        }
    free(C), free(lb), free(ub), free(t), free(tc);
    bnd_net_free(n);
    spec_free(p);
    nn_graph_free(g);
    return 0;
}
