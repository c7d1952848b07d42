/* test_soundness.c: IBP and CROWN bounds contain every sampled output.
 * Benchmark networks (ACAS Xu, MNIST FC, Collins RUL CNN) over their VNNLIB
 * boxes and random sub-boxes, and random small DAGs exercising every
 * supported op (convolutions, BatchNorm, residual adds, pooling, shape ops).
 * Samples: box corners and uniform points, evaluated with nn_eval (double;
 * a 1e-10 relative slack covers the evaluator's own rounding). Also checks
 * that CROWN is never looser than IBP by more than rounding there. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "../bound/bound.h"
#include "../models/nn.h"
#include "../specs/spec.h"
#include "shared_data.h"

static uint64_t rng_state = 88172645463325252ull;
static double unif(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1p-53;
}

typedef struct {
    long samples, outside;
    double worst;            /* largest violation found (should stay <= 0) */
    double ibp_w, crown_w;   /* summed widths */
    long crown_looser;       /* rows where CROWN is looser than IBP beyond rounding */
} tally;

/* Bounds over [lo, hi] (identity objective and, if n_out > 1, a random C)
 * must contain f(x) for ns sampled x. */
static void check_box(const nn_graph *g, bnd_net *n, const double *lo, const double *hi, int ns,
                      tally *t)
{
    int64_t nx = bnd_n_in(n), ny = bnd_n_out(n);
    double *b = malloc(sizeof(double) * (size_t)(8 * ny + 2 * nx + 8));
    double *ilb = b, *iub = b + ny, *clb = b + 2 * ny, *cub = b + 3 * ny;
    double *C = b + 4 * ny, *slb = b + 5 * ny, *sub = b + 5 * ny + 4;
    double *x = b + 8 * ny + 8, *y = malloc(sizeof(double) * (size_t)ny);
    err e = {0};
    cr_assert_eq(bnd_compute(n, BND_IBP, lo, hi, NULL, 0, ilb, iub, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, clb, cub, &e), 0, "%s", e.msg);
    for (int64_t o = 0; o < ny; o++) {
        C[o] = unif() * 2 - 1;
        t->ibp_w += iub[o] - ilb[o];
        t->crown_w += cub[o] - clb[o];
        t->crown_looser += cub[o] - clb[o] > (iub[o] - ilb[o]) * (1 + 1e-9) + 1e-12;
    }
    cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, C, 1, slb, sub, &e), 0, "%s", e.msg);
    cr_assert_eq(bnd_compute(n, BND_IBP, lo, hi, C, 1, slb + 1, sub + 1, &e), 0, "%s", e.msg);
    for (int s = 0; s < ns; s++) {
        int corner = s % 4 == 0;
        for (int64_t i = 0; i < nx; i++) {
            double r = unif();
            x[i] = corner ? (r < 0.5 ? lo[i] : hi[i]) : lo[i] + r * (hi[i] - lo[i]);
            if (x[i] > hi[i])
                x[i] = hi[i];
        }
        cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
        double cy = 0;
        for (int64_t o = 0; o < ny; o++) {
            double slack = 1e-10 * (1 + fabs(y[o]));
            double v = fmax(fmax(ilb[o] - y[o], y[o] - iub[o]), fmax(clb[o] - y[o], y[o] - cub[o]));
            if (v > slack)
                t->outside++;
            if (v > t->worst)
                t->worst = v;
            cy += C[o] * y[o];
        }
        double slack = 1e-10 * (1 + fabs(cy));
        for (int m = 0; m < 2; m++)
            if (cy < slb[m] - slack || cy > sub[m] + slack)
                t->outside++;
        t->samples++;
    }
    free(b);
    free(y);
}

/* On a point box both methods must pin f(x) down to rounding: this checks
 * that the lowering has the evaluator's semantics, op by op. */
static void check_point(const nn_graph *g, bnd_net *n, const double *x)
{
    int64_t ny = bnd_n_out(n);
    double *v = malloc(sizeof(double) * (size_t)(3 * ny));
    double *y = v, *lb = v + ny, *ub = v + 2 * ny;
    err e = {0};
    cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
    for (int m = 0; m < 2; m++) {
        cr_assert_eq(bnd_compute(n, m ? BND_CROWN : BND_IBP, x, x, NULL, 0, lb, ub, &e), 0);
        for (int64_t o = 0; o < ny; o++) {
            double tol = 1e-9 * (1 + fabs(y[o]));
            cr_expect(ub[o] - lb[o] <= tol && lb[o] <= y[o] + tol && y[o] <= ub[o] + tol,
                      "%s point box, method %d, output %lld: [%.17g, %.17g] vs %.17g", g->source,
                      m, (long long)o, lb[o], ub[o], y[o]);
        }
    }
    free(v);
}

/* The first instance of `onnx` in the benchmark's instances.csv: its box,
 * then `nsub` random sub-boxes of it. */
static void check_benchmark(const char *bench, const char *onnx, int nsub, int ns, tally *t)
{
    char path[2048], line[1024], vnn[1024] = "";
    snprintf(path, sizeof path, "../shared/benchmarks/%s/instances.csv", bench);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    while (fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ',');
        if (!c1)
            continue;
        *c1 = 0;
        if (strcmp(line, onnx) == 0) {
            char *c2 = strchr(c1 + 1, ',');
            if (c2)
                *c2 = 0;
            snprintf(vnn, sizeof vnn, "%s", c1 + 1);
            break;
        }
    }
    fclose(f);
    cr_assert(vnn[0], "%s not listed", onnx);
    nn_graph *g = NULL;
    spec_property *p = NULL;
    err e = {0};
    snprintf(path, sizeof path, "../shared/benchmarks/%s/%s", bench, onnx);
    cr_assert_eq(nn_load(path, &g, &e), 0, "%s", e.msg);
    snprintf(path, sizeof path, "../shared/benchmarks/%s/%s", bench, vnn);
    cr_assert_eq(spec_parse_vnnlib(path, &p, &e), 0, "%s", e.msg);
    bnd_net *n = NULL;
    cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
    int64_t nx = bnd_n_in(n);
    cr_assert_eq(p->n_x, nx);
    double *lo = malloc(sizeof(double) * (size_t)nx), *hi = malloc(sizeof(double) * (size_t)nx);
    for (int b = 0; b <= nsub; b++) {
        const spec_region *r = &p->regions[0];
        for (int64_t i = 0; i < nx; i++) {
            double a = r->lo[i], c = r->hi[i];
            if (b > 0) {
                a = r->lo[i] + unif() * (r->hi[i] - r->lo[i]);
                c = r->lo[i] + unif() * (r->hi[i] - r->lo[i]);
            }
            lo[i] = fmin(a, c);
            hi[i] = fmax(a, c);
        }
        check_box(g, n, lo, hi, ns, t);
    }
    for (int64_t i = 0; i < nx; i++)
        lo[i] = 0.5 * (p->regions[0].lo[i] + p->regions[0].hi[i]);
    check_point(g, n, lo);
    free(lo), free(hi);
    bnd_net_free(n);
    spec_free(p);
    nn_graph_free(g);
}

static void report(const char *what, const tally *t)
{
    cr_log_info("%s: %ld samples, %ld outside, worst excess %.3g; CROWN/IBP summed width %.4g "
                "(CROWN looser on %ld rows)", what, t->samples, t->outside, t->worst,
                t->crown_w / t->ibp_w, t->crown_looser);
    cr_expect_eq(t->outside, 0);
}

Test(soundness, acasxu_bounds_contain_samples)
{
    NEED_SHARED();
    const char *nets[3] = {"onnx/ACASXU_run2a_1_1_batch_2000.onnx",
                           "onnx/ACASXU_run2a_2_3_batch_2000.onnx",
                           "onnx/ACASXU_run2a_5_9_batch_2000.onnx"};
    tally t = {0};
    for (int i = 0; i < 3; i++)
        check_benchmark("acasxu", nets[i], 3, 2500, &t);
    report("acasxu", &t);
    cr_expect_eq(t.crown_looser, 0);
}

Test(soundness, mnist_fc_bounds_contain_samples, .timeout = 60)
{
    NEED_SHARED();
    const char *nets[3] = {"onnx/mnist-net_256x2.onnx", "onnx/mnist-net_256x4.onnx",
                           "onnx/mnist-net_256x6.onnx"};
    tally t = {0};
    for (int i = 0; i < 3; i++)
        check_benchmark("mnist_fc", nets[i], 2, 3400, &t);
    report("mnist_fc", &t);
    cr_expect_eq(t.crown_looser, 0);
}

Test(soundness, collins_cnn_bounds_contain_samples, .timeout = 60)
{
    NEED_SHARED();
    const char *nets[3] = {"onnx/NN_rul_small_window_20.onnx", "onnx/NN_rul_full_window_20.onnx",
                           "onnx/NN_rul_full_window_40.onnx"};
    tally t = {0};
    for (int i = 0; i < 3; i++)
        check_benchmark("collins_rul_cnn", nets[i], 2, 1500, &t);
    report("collins_rul_cnn", &t);
    cr_expect_eq(t.crown_looser, 0);
}

/* ---- random DAGs over every supported op ---- */
static int T(nn_graph *g, const char *name)
{
    err e = {0};
    int t = nn_graph_tensor(g, name, &e);
    cr_assert(t >= 0, "%s", e.msg);
    return t;
}

static int K(nn_graph *g, const char *name, int rank, const int64_t *dims, double scale)
{
    err e = {0};
    int t = T(g, name);
    cr_assert_eq(nn_tensor_set_shape(g, t, rank, dims, &e), 0);
    int64_t n = g->tensors[t].size;
    double *v = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        v[i] = scale * (2 * unif() - 1);
    cr_assert_eq(nn_tensor_set_float(g, t, v, n, &e), 0, "%s", e.msg);
    free(v);
    return t;
}

static int KI(nn_graph *g, const char *name, int n, const int64_t *v)
{
    err e = {0};
    int t = T(g, name);
    int64_t d[1] = {n};
    cr_assert_eq(nn_tensor_set_shape(g, t, 1, d, &e), 0);
    cr_assert_eq(nn_tensor_set_int(g, t, v, n, &e), 0);
    return t;
}

static int N(nn_graph *g, const char *op, int n_in, const int *in, const char *out)
{
    err e = {0};
    int o = T(g, out);
    int k = nn_graph_add_node(g, op, out, n_in, in, 1, &o, &e);
    cr_assert(k >= 0, "%s", e.msg);
    return k;
}

static void ints(nn_graph *g, int k, const char *name, int n, const int64_t *v)
{
    err e = {0};
    cr_assert_eq(nn_node_attr_ints(g, k, name, v, n, &e), 0);
}

/* x[1,2,6,6] -> Conv -> BN -> Relu -> grouped dilated Conv (+ residual) ->
 * Relu -> AvgPool -> Transpose -> Slice, Concat -> GlobalAvgPool / Flatten ->
 * Gemm -> Div, Neg, Sub, Mul (broadcast) -> Relu -> Dropout -> Reshape ->
 * ReduceSum / ReduceMean; Squeeze -> MatMul; Add -> Unsqueeze -> Identity. */
static nn_graph *random_dag(int variant)
{
    nn_graph *g = nn_graph_new("dag.onnx");
    g->opset = 13;
    err e = {0};
    int64_t dx[4] = {1, 2, 6, 6}, dw[4] = {4, 2, 3, 3}, d4[1] = {4}, d8[1] = {8};
    int64_t dg[2] = {8, 54}, dm[2] = {6, 2}, d1[1] = {1};
    int x = T(g, "x");
    cr_assert_eq(nn_tensor_set_shape(g, x, 4, dx, &e), 0);
    int64_t p1[4] = {1, 1, 1, 1}, p2[4] = {2, 2, 2, 2}, dil[2] = {2, 2}, k2[2] = {2, 2};
    int k = N(g, "Conv", 3, (int[]){x, K(g, "w1", 4, dw, 0.5), K(g, "b1", 1, d4, 0.3)}, "a");
    ints(g, k, "pads", 4, p1);
    int var = K(g, "var", 1, d4, 0.4);
    for (int i = 0; i < 4; i++)
        g->tensors[var].data[i] = fabs(g->tensors[var].data[i]) + 0.1;
    k = N(g, "BatchNormalization", 5,
          (int[]){T(g, "a"), K(g, "bs", 1, d4, 1.0), K(g, "bb", 1, d4, 0.2),
                  K(g, "bm", 1, d4, 0.2), var},
          "a2");
    N(g, "Relu", 1, (int[]){T(g, "a2")}, "r1");
    k = N(g, "Conv", 2, (int[]){T(g, "r1"), K(g, "w2", 4, dw, 0.5)}, "c");
    ints(g, k, "pads", 4, p2);
    ints(g, k, "dilations", 2, dil);
    nn_node_attr_int(g, k, "group", 2, &e);
    N(g, "Add", 2, (int[]){T(g, "c"), T(g, "a")}, "s");
    N(g, "Relu", 1, (int[]){T(g, "s")}, "r2");
    k = N(g, "AveragePool", 1, (int[]){T(g, "r2")}, "p");
    ints(g, k, "kernel_shape", 2, k2);
    ints(g, k, "strides", 2, k2);
    int64_t perm[4] = {0, 1, 3, 2}, st[1] = {1}, en[1] = {3}, ax[1] = {1};
    k = N(g, "Transpose", 1, (int[]){T(g, "p")}, "t");
    ints(g, k, "perm", 4, perm);
    N(g, "Slice", 4, (int[]){T(g, "t"), KI(g, "st", 1, st), KI(g, "en", 1, en), KI(g, "ax", 1, ax)},
      "sl");
    k = N(g, "Concat", 2, (int[]){T(g, "sl"), T(g, "t")}, "cc");
    nn_node_attr_int(g, k, "axis", 1, &e);
    N(g, "GlobalAveragePool", 1, (int[]){T(g, "cc")}, "gp");
    N(g, "Flatten", 1, (int[]){T(g, "cc")}, "f");
    k = N(g, "Gemm", 3, (int[]){T(g, "f"), K(g, "wg", 2, dg, 0.3), K(g, "bg", 1, d8, 0.3)}, "m");
    nn_node_attr_int(g, k, "transB", 1, &e);
    nn_node_attr_float(g, k, "alpha", 0.7, &e);
    N(g, "Div", 2, (int[]){T(g, "m"), K(g, "dv", 1, d1, 0.0)}, "d");
    g->tensors[T(g, "dv")].data[0] = 3.0;
    N(g, "Neg", 1, (int[]){T(g, "d")}, "ng");
    N(g, "Sub", 2, (int[]){K(g, "sc", 1, d8, 0.5), T(g, "ng")}, "sb");
    N(g, "Mul", 2, (int[]){T(g, "sb"), K(g, "mc", 1, d8, 2.0)}, "mu");
    N(g, "Relu", 1, (int[]){T(g, "mu")}, "r3");
    N(g, "Dropout", 1, (int[]){T(g, "r3")}, "dr");
    int64_t shp[3] = {1, 2, 4}, ax2[1] = {2}, ax23[2] = {2, 3}, ax0[1] = {0};
    N(g, "Reshape", 2, (int[]){T(g, "dr"), KI(g, "shp", 3, shp)}, "rs");
    if (variant % 2) {
        k = N(g, "ReduceMean", 1, (int[]){T(g, "rs")}, "rm");
        ints(g, k, "axes", 1, ax2);
    } else {
        k = N(g, "ReduceSum", 2, (int[]){T(g, "rs"), KI(g, "rax", 1, ax2)}, "rm");
    }
    nn_node_attr_int(g, k, "keepdims", 0, &e);
    N(g, "Squeeze", 2, (int[]){T(g, "gp"), KI(g, "sqa", 2, ax23)}, "sq");
    N(g, "MatMul", 2, (int[]){T(g, "sq"), K(g, "wm", 2, dm, 0.5)}, "mm");
    N(g, "Add", 2, (int[]){T(g, "rm"), T(g, "mm")}, "yy");
    N(g, "Unsqueeze", 2, (int[]){T(g, "yy"), KI(g, "una", 1, ax0)}, "u");
    N(g, "Identity", 1, (int[]){T(g, "u")}, "y");
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, T(g, "y"), &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    return g;
}

Test(soundness, random_dags_with_every_op_contain_samples)
{
    tally t = {0};
    for (int v = 0; v < 6; v++) {
        nn_graph *g = random_dag(v);
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_n_in(n), 72);
        cr_assert_eq(bnd_n_out(n), 2);
        double lo[72], hi[72];
        for (int b = 0; b < 3; b++) {
            double rad = 0.01 + 0.2 * unif();
            for (int i = 0; i < 72; i++) {
                double c = 2 * unif() - 1;
                lo[i] = c - rad * unif();
                hi[i] = c + rad * unif();
            }
            check_box(g, n, lo, hi, 400, &t);
        }
        check_point(g, n, lo);
        bnd_net_free(n);
        nn_graph_free(g);
    }
    report("random DAGs", &t);
}

/* x[1,3,8] -> 1-D Conv (stride 2, SAME_UPPER) -> Relu -> AveragePool (pads,
 * count_include_pad) -> Slice (negative step) -> Concat with a constant ->
 * Reshape -> MatMul with a constant LEFT operand -> Sub of a computed,
 * broadcast row (ReduceMean keepdims) -> Relu -> Add(r, r) -> Reshape ->
 * Gemm with transA. */
static nn_graph *random_dag2(void)
{
    nn_graph *g = nn_graph_new("dag2.onnx");
    g->opset = 13;
    err e = {0};
    int64_t dx[3] = {1, 3, 8}, dw[3] = {4, 3, 3}, dc[3] = {1, 2, 4}, dl[2] = {5, 6};
    int64_t dg[2] = {20, 3};
    int x = T(g, "x");
    cr_assert_eq(nn_tensor_set_shape(g, x, 3, dx, &e), 0);
    int k = N(g, "Conv", 2, (int[]){x, K(g, "w", 3, dw, 0.6)}, "c1");
    int64_t s2[1] = {2}, k3[1] = {3}, p11[2] = {1, 1};
    ints(g, k, "strides", 1, s2);
    nn_node_attr_string(g, k, "auto_pad", "SAME_UPPER", &e);
    N(g, "Relu", 1, (int[]){T(g, "c1")}, "r");
    k = N(g, "AveragePool", 1, (int[]){T(g, "r")}, "p");
    ints(g, k, "kernel_shape", 1, k3);
    ints(g, k, "pads", 2, p11);
    nn_node_attr_int(g, k, "count_include_pad", 1, &e);
    int64_t st[1] = {-1}, en[1] = {-100}, ax[1] = {2}, sp[1] = {-1};
    N(g, "Slice", 5,
      (int[]){T(g, "p"), KI(g, "st", 1, st), KI(g, "en", 1, en), KI(g, "ax", 1, ax),
              KI(g, "sp", 1, sp)},
      "sl");
    k = N(g, "Concat", 2, (int[]){T(g, "sl"), K(g, "cst", 3, dc, 1.0)}, "cc");
    nn_node_attr_int(g, k, "axis", 1, &e);
    int64_t shp[2] = {6, 4}, col[2] = {20, 1}, ax0[1] = {0};
    N(g, "Reshape", 2, (int[]){T(g, "cc"), KI(g, "shp", 2, shp)}, "f");
    N(g, "MatMul", 2, (int[]){K(g, "wl", 2, dl, 0.5), T(g, "f")}, "mm");
    k = N(g, "ReduceMean", 1, (int[]){T(g, "mm")}, "mean");
    ints(g, k, "axes", 1, ax0);
    N(g, "Sub", 2, (int[]){T(g, "mm"), T(g, "mean")}, "s2");
    N(g, "Relu", 1, (int[]){T(g, "s2")}, "rr");
    N(g, "Add", 2, (int[]){T(g, "rr"), T(g, "rr")}, "a2");
    N(g, "Reshape", 2, (int[]){T(g, "a2"), KI(g, "col", 2, col)}, "cv");
    k = N(g, "Gemm", 2, (int[]){T(g, "cv"), K(g, "wg", 2, dg, 0.5)}, "y");
    nn_node_attr_int(g, k, "transA", 1, &e);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, T(g, "y"), &e), 0);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    return g;
}

Test(soundness, random_dags_with_1d_conv_and_broadcasts_contain_samples)
{
    tally t = {0};
    for (int v = 0; v < 6; v++) {
        nn_graph *g = random_dag2();
        bnd_net *n = NULL;
        err e = {0};
        cr_assert_eq(bnd_net_new(g, &n, &e), 0, "%s", e.msg);
        cr_assert_eq(bnd_n_in(n), 24);
        cr_assert_eq(bnd_n_out(n), 3);
        double lo[24], hi[24];
        for (int b = 0; b < 3; b++) {
            double rad = 0.01 + 0.3 * unif();
            for (int i = 0; i < 24; i++) {
                double c = 2 * unif() - 1;
                lo[i] = c - rad * unif();
                hi[i] = c + rad * unif();
            }
            check_box(g, n, lo, hi, 400, &t);
        }
        /* a point box: bounds must pin the value down to rounding */
        for (int i = 0; i < 24; i++)
            lo[i] = hi[i] = 2 * unif() - 1;
        double y[3], lb[3], ub[3];
        cr_assert_eq(nn_eval(g, lo, y, &e), 0);
        cr_assert_eq(bnd_compute(n, BND_CROWN, lo, hi, NULL, 0, lb, ub, &e), 0);
        for (int o = 0; o < 3; o++)
            cr_expect(ub[o] - lb[o] < 1e-12 * (1 + fabs(y[o])) && lb[o] <= y[o] + 1e-13 &&
                          y[o] <= ub[o] + 1e-13,
                      "point box: [%.17g, %.17g] vs %.17g", lb[o], ub[o], y[o]);
        bnd_net_free(n);
        nn_graph_free(g);
    }
    report("random DAGs (1-D conv, broadcasts)", &t);
}

/* Every conformance model (one op or attribute variant each): either lowered,
 * then a point box pins nn_eval's value and a small box around the first
 * input vector contains sampled outputs — or rejected as ERR_UNSUP with a
 * message naming the node. All 86 lower now (MaxPool, Clip, Softmax and
 * ConvTranspose included: bound/lower_max.c, lower_softmax.c, conv.c). */
Test(soundness, conformance_models_lower_exactly_or_are_rejected_by_name, .timeout = 60)
{
    NEED_SHARED();
    DIR *d = opendir("../shared/conformance");
    cr_assert_not_null(d);
    struct dirent *de;
    int lowered = 0, rejected = 0;
    tally t = {0};
    char unsup[4096] = "";
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "../shared/conformance/%s/model.onnx", de->d_name);
        nn_graph *g = NULL;
        err e = {0};
        if (nn_load(path, &g, &e) != 0)
            continue; /* README.md, manifest.json */
        bnd_net *n = NULL;
        int rc = bnd_net_new(g, &n, &e);
        if (rc != 0) {
            cr_expect_eq(rc, ERR_UNSUP, "%s: %s", de->d_name, e.msg);
            cr_expect(strstr(e.msg, "node ") != NULL, "%s", e.msg);
            if (strlen(unsup) + strlen(de->d_name) + 2 < sizeof unsup)
                strcat(strcat(unsup, " "), de->d_name);
            rejected++;
            nn_graph_free(g);
            continue;
        }
        int64_t nx = bnd_n_in(n);
        double *x = malloc(sizeof(double) * (size_t)(3 * nx));
        double *lo = x + nx, *hi = x + 2 * nx;
        snprintf(path, sizeof path, "../shared/conformance/%s/inputs.txt", de->d_name);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f);
        for (int64_t i = 0; i < nx; i++)
            cr_assert_eq(fscanf(f, "%lf", &x[i]), 1, "%s", path);
        fclose(f);
        check_point(g, n, x);
        for (int64_t i = 0; i < nx; i++) {
            lo[i] = x[i] - 0.1 * unif();
            hi[i] = x[i] + 0.1 * unif();
        }
        check_box(g, n, lo, hi, 200, &t);
        free(x);
        bnd_net_free(n);
        nn_graph_free(g);
        lowered++;
    }
    closedir(d);
    cr_log_info("conformance: %d lowered, %d rejected as unsupported:%s", lowered, rejected, unsup);
    report("conformance boxes", &t);
    cr_expect(lowered == 86 && rejected == 0, "%d models lowered, %d rejected", lowered,
              rejected);
}
