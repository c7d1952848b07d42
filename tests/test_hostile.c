/* test_hostile.c: hostile inputs to the loaders (ONNX, JSON, VNNLIB) and to
 * finalize: huge declared dimensions, cycles, dangling names, NaN/Inf
 * weights, zero-size tensors, wrong Reshape sizes, oversized kernels,
 * mismatched Gemm shapes, deep nesting, truncated files. Each must give a
 * clear error (a negative code and a message naming the file) within bounded
 * memory, never a crash. ONNX bytes are hand-encoded with the small protobuf
 * writer below (field numbers of onnx/onnx.proto), so the tests do not depend
 * on the ONNX writer. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../models/nn.h"
#include "../specs/spec.h"

/* ---- a protobuf writer ---- */

typedef struct pbw {
    uint8_t *b;
    size_t n, cap;
} pbw;

static void put(pbw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
        cr_assert(w->b);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void varint(pbw *w, uint64_t v)
{
    uint8_t c[10];
    int n = 0;
    do {
        c[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            c[n] |= 0x80;
        n++;
    } while (v);
    put(w, c, (size_t)n);
}

static void f_varint(pbw *w, int field, uint64_t v)
{
    varint(w, (uint64_t)field << 3);
    varint(w, v);
}

static void f_bytes(pbw *w, int field, const void *p, size_t n)
{
    varint(w, (uint64_t)field << 3 | 2);
    varint(w, n);
    put(w, p, n);
}

static void f_str(pbw *w, int field, const char *s)
{
    f_bytes(w, field, s, strlen(s));
}

static void f_msg(pbw *w, int field, pbw *m)
{
    f_bytes(w, field, m->b, m->n);
    free(m->b);
    memset(m, 0, sizeof *m);
}

/* ValueInfoProto: name and a float tensor type of the given dims. */
static void value_info(pbw *g, int field, const char *name, int rank, const int64_t *dims)
{
    pbw shape = {0}, tt = {0}, type = {0}, vi = {0};
    for (int i = 0; i < rank; i++) {
        pbw dim = {0};
        f_varint(&dim, 1, (uint64_t)dims[i]);
        f_msg(&shape, 1, &dim);
    }
    f_varint(&tt, 1, 1); /* elem_type FLOAT */
    f_msg(&tt, 2, &shape);
    f_msg(&type, 1, &tt);
    f_str(&vi, 1, name);
    f_msg(&vi, 2, &type);
    f_msg(g, field, &vi);
}

/* TensorProto initializer: FLOAT with float_data, or INT64 with int64_data. */
static void initializer(pbw *g, const char *name, int rank, const int64_t *dims, int64_t n,
                        const float *fv, const int64_t *iv)
{
    pbw t = {0};
    for (int i = 0; i < rank; i++)
        f_varint(&t, 1, (uint64_t)dims[i]);
    f_varint(&t, 2, fv ? 1 : 7);
    if (fv && n)
        f_bytes(&t, 4, fv, (size_t)n * sizeof(float)); /* packed, little-endian */
    if (iv && n) {
        pbw p = {0};
        for (int64_t i = 0; i < n; i++)
            varint(&p, (uint64_t)iv[i]);
        f_msg(&t, 7, &p);
    }
    f_str(&t, 8, name);
    f_msg(g, 5, &t);
}

static void node(pbw *g, const char *op, int n_in, const char *const *in, const char *out)
{
    pbw nd = {0};
    for (int i = 0; i < n_in; i++)
        f_str(&nd, 1, in[i]);
    f_str(&nd, 2, out);
    f_str(&nd, 4, op);
    f_msg(g, 1, &nd);
}

/* ModelProto around a graph (opset 13). */
static pbw model(pbw *graph)
{
    pbw m = {0}, ops = {0};
    f_varint(&m, 1, 8);
    f_str(&ops, 1, "");
    f_varint(&ops, 2, 13);
    f_msg(&m, 8, &ops);
    f_msg(&m, 7, graph);
    return m;
}

static size_t peak_rss_mb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (size_t)u.ru_maxrss / 1024;
}

/* Load the bytes; expect failure with a message naming the file. Returns the code. */
static int onnx_fails(pbw *m, const char *what)
{
    err e = {0};
    nn_graph *g = NULL;
    int rc = nn_load_onnx_buffer("hostile.onnx", m->b, m->n, &g, &e);
    free(m->b);
    cr_expect_lt(rc, 0, "%s: loaded", what);
    if (rc == 0) {
        nn_graph_free(g);
        return 0;
    }
    cr_expect_null(g);
    cr_expect(strstr(e.msg, "hostile.onnx") != NULL, "%s: message without the file: %s", what,
              e.msg);
    cr_expect_eq(rc, e.code, "%s: returned %d, err code %d", what, rc, e.code);
    cr_expect_lt(peak_rss_mb(), 400, "%s: peak memory %zu MB", what, peak_rss_mb());
    cr_log_info("%s -> %d: %s", what, rc, e.msg);
    return rc;
}

static const int64_t d1x4[2] = {1, 4};

/* ---- ONNX ---- */

Test(hostile, onnx_huge_input_dimension)
{
    pbw g = {0};
    int64_t d[2] = {1, (int64_t)1 << 40};
    node(&g, "Relu", 1, (const char *[]){"x"}, "y");
    value_info(&g, 11, "x", 2, d);
    value_info(&g, 12, "y", 2, d);
    pbw m = model(&g);
    int rc = onnx_fails(&m, "input of 2^40 elements");
    cr_expect(rc == ERR_NOMEM || rc == ERR_SHAPE, "code %d", rc);
}

Test(hostile, onnx_dimension_product_overflows_int64)
{
    pbw g = {0};
    int64_t d[4] = {(int64_t)1 << 40, (int64_t)1 << 40, (int64_t)1 << 40, 3};
    node(&g, "Relu", 1, (const char *[]){"x"}, "y");
    value_info(&g, 11, "x", 4, d);
    value_info(&g, 12, "y", 4, d);
    pbw m = model(&g);
    onnx_fails(&m, "input dims overflowing int64");
}

Test(hostile, onnx_huge_initializer_without_data)
{
    pbw g = {0};
    int64_t wd[2] = {(int64_t)1 << 31, (int64_t)1 << 31};
    initializer(&g, "W", 2, wd, 0, NULL, NULL);
    node(&g, "MatMul", 2, (const char *[]){"x", "W"}, "y");
    value_info(&g, 11, "x", 2, d1x4);
    value_info(&g, 12, "y", 2, d1x4);
    pbw m = model(&g);
    onnx_fails(&m, "initializer of 2^62 elements without data");
}

Test(hostile, onnx_length_prefix_beyond_the_buffer)
{
    pbw m = {0};
    varint(&m, 7 << 3 | 2);
    varint(&m, (uint64_t)1 << 62); /* graph of 2^62 bytes */
    put(&m, "\x0a\x00", 2);
    onnx_fails(&m, "length prefix of 2^62");
}

Test(hostile, onnx_cyclic_graph)
{
    pbw g = {0};
    node(&g, "Relu", 1, (const char *[]){"b"}, "a");
    node(&g, "Relu", 1, (const char *[]){"a"}, "b");
    node(&g, "Add", 2, (const char *[]){"x", "b"}, "y");
    value_info(&g, 11, "x", 2, d1x4);
    value_info(&g, 12, "y", 2, d1x4);
    pbw m = model(&g);
    onnx_fails(&m, "cycle a <-> b");
}

Test(hostile, onnx_self_loop)
{
    pbw g = {0};
    node(&g, "Add", 2, (const char *[]){"x", "y"}, "y");
    value_info(&g, 11, "x", 2, d1x4);
    value_info(&g, 12, "y", 2, d1x4);
    pbw m = model(&g);
    onnx_fails(&m, "node reading its own output");
}

Test(hostile, onnx_dangling_input)
{
    pbw g = {0};
    node(&g, "Add", 2, (const char *[]){"x", "nowhere"}, "y");
    value_info(&g, 11, "x", 2, d1x4);
    value_info(&g, 12, "y", 2, d1x4);
    pbw m = model(&g);
    onnx_fails(&m, "input never produced");
}

Test(hostile, onnx_output_never_produced)
{
    pbw g = {0};
    node(&g, "Relu", 1, (const char *[]){"x"}, "h");
    value_info(&g, 11, "x", 2, d1x4);
    value_info(&g, 12, "y", 2, d1x4);
    pbw m = model(&g);
    onnx_fails(&m, "output never produced");
}

static void weights_with(float bad)
{
    pbw g = {0};
    int64_t wd[2] = {4, 2}, yd[2] = {1, 2};
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    w[5] = bad;
    initializer(&g, "W", 2, wd, 8, w, NULL);
    node(&g, "MatMul", 2, (const char *[]){"x", "W"}, "y");
    value_info(&g, 11, "x", 2, d1x4);
    value_info(&g, 12, "y", 2, yd);
    pbw m = model(&g);
    int rc = onnx_fails(&m, isnan(bad) ? "NaN weight" : "Inf weight");
    cr_expect_eq(rc, ERR_VALUE, "code %d", rc);
}

Test(hostile, onnx_nan_weight)
{
    weights_with(NAN);
}

Test(hostile, onnx_inf_weight)
{
    weights_with(-INFINITY);
}

Test(hostile, onnx_zero_size_input)
{
    pbw g = {0};
    int64_t d[2] = {1, 0};
    node(&g, "Relu", 1, (const char *[]){"x"}, "y");
    value_info(&g, 11, "x", 2, d);
    value_info(&g, 12, "y", 2, d);
    pbw m = model(&g);
    int rc = onnx_fails(&m, "input [1,0]");
    cr_expect_eq(rc, ERR_SHAPE, "code %d", rc);
}

Test(hostile, onnx_zero_size_output)
{
    pbw g = {0};
    int64_t sd = 1, st = 2, en = 2, yd[1] = {0};
    initializer(&g, "s", 1, &sd, 1, NULL, &st);
    initializer(&g, "t", 1, &sd, 1, NULL, &en);
    node(&g, "Slice", 3, (const char *[]){"x", "s", "t"}, "y");
    value_info(&g, 11, "x", 1, (int64_t[]){4});
    value_info(&g, 12, "y", 1, yd);
    pbw m = model(&g);
    int rc = onnx_fails(&m, "Slice to an empty output");
    cr_expect(rc == ERR_SHAPE, "code %d", rc);
}

Test(hostile, onnx_reshape_to_wrong_size)
{
    pbw g = {0};
    int64_t sd = 2, sv[2] = {1, 7};
    initializer(&g, "shape", 1, &sd, 2, NULL, sv);
    node(&g, "Reshape", 2, (const char *[]){"x", "shape"}, "y");
    value_info(&g, 11, "x", 2, d1x4);
    value_info(&g, 12, "y", 2, sv);
    pbw m = model(&g);
    int rc = onnx_fails(&m, "Reshape 4 -> 7");
    cr_expect_eq(rc, ERR_SHAPE, "code %d", rc);
}

Test(hostile, onnx_conv_kernel_larger_than_input)
{
    pbw g = {0};
    int64_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 1, 5, 5}, yd[4] = {1, 1, 1, 1};
    float w[25] = {0};
    initializer(&g, "W", 4, wd, 25, w, NULL);
    node(&g, "Conv", 2, (const char *[]){"x", "W"}, "y");
    value_info(&g, 11, "x", 4, xd);
    value_info(&g, 12, "y", 4, yd);
    pbw m = model(&g);
    int rc = onnx_fails(&m, "Conv 5x5 kernel on 3x3 input");
    cr_expect_eq(rc, ERR_SHAPE, "code %d", rc);
}

Test(hostile, onnx_gemm_mismatched_shapes)
{
    pbw g = {0};
    int64_t wd[2] = {5, 3}, yd[2] = {1, 3};
    float w[15] = {0};
    initializer(&g, "W", 2, wd, 15, w, NULL);
    node(&g, "Gemm", 2, (const char *[]){"x", "W"}, "y");
    value_info(&g, 11, "x", 2, d1x4);
    value_info(&g, 12, "y", 2, yd);
    pbw m = model(&g);
    int rc = onnx_fails(&m, "Gemm [1,4] x [5,3]");
    cr_expect_eq(rc, ERR_SHAPE, "code %d", rc);
}

Test(hostile, onnx_initializer_with_too_few_values)
{
    pbw g = {0};
    int64_t wd[2] = {4, 2}, yd[2] = {1, 2};
    float w[3] = {1, 2, 3};
    initializer(&g, "W", 2, wd, 3, w, NULL);
    node(&g, "MatMul", 2, (const char *[]){"x", "W"}, "y");
    value_info(&g, 11, "x", 2, d1x4);
    value_info(&g, 12, "y", 2, yd);
    pbw m = model(&g);
    onnx_fails(&m, "3 values for a 4x2 initializer");
}

Test(hostile, onnx_many_nodes_chain_is_linear_time)
{
    /* 20000 Relu nodes in reverse order: sorting must not be quadratic */
    pbw g = {0};
    char in[32], out[32];
    for (int i = 20000; i >= 1; i--) {
        snprintf(in, sizeof in, i == 1 ? "x" : "t%d", i - 1);
        snprintf(out, sizeof out, i == 20000 ? "y" : "t%d", i);
        node(&g, "Relu", 1, (const char *[]){in}, out);
    }
    value_info(&g, 11, "x", 2, d1x4);
    value_info(&g, 12, "y", 2, d1x4);
    pbw m = model(&g);
    err e = {0};
    nn_graph *gr = NULL;
    int rc = nn_load_onnx_buffer("hostile.onnx", m.b, m.n, &gr, &e);
    free(m.b);
    cr_assert_eq(rc, 0, "%s", e.msg);
    double x[4] = {-1, 2, -3, 4}, y[4];
    cr_expect_eq(nn_eval(gr, x, y, &e), 0);
    cr_expect(y[0] == 0 && y[1] == 2 && y[2] == 0 && y[3] == 4);
    nn_graph_free(gr);
}

Test(hostile, onnx_every_truncation_of_a_real_model_fails_cleanly)
{
    FILE *f = fopen("examples/acasxu_1_1.onnx", "rb");
    cr_assert(f);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert_gt(n, 1000);
    int ok = 0;
    for (size_t len = 0; len < n; len += 1 + len / 64) {
        err e = {0};
        nn_graph *g = NULL;
        int rc = nn_load_onnx_buffer("cut.onnx", buf, len, &g, &e);
        if (rc == 0) {
            ok++;
            nn_graph_free(g);
        } else {
            cr_expect(strstr(e.msg, "cut.onnx") != NULL, "len %zu: %s", len, e.msg);
        }
    }
    cr_expect_eq(ok, 0, "%d truncated models loaded", ok);
}

Test(hostile, onnx_random_byte_flips_never_crash)
{
    FILE *f = fopen("examples/acasxu_1_1.onnx", "rb");
    cr_assert(f);
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    uint64_t s = 12345;
    for (int it = 0; it < 300; it++) {
        static uint8_t c[1 << 20];
        memcpy(c, buf, n);
        for (int k = 0; k < 4; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            /* flips in the first 2 KB hit structure rather than weights */
            c[(s >> 33) % (n < 2048 ? n : 2048)] ^= (uint8_t)(1u << ((s >> 20) & 7));
        }
        err e = {0};
        nn_graph *g = NULL;
        if (nn_load_onnx_buffer("flip.onnx", c, n, &g, &e) == 0)
            nn_graph_free(g);
        else
            cr_expect(e.msg[0] != 0);
    }
}

/* ---- JSON ---- */

static int json_fails(const char *text, const char *what)
{
    err e = {0};
    nn_graph *g = NULL;
    int rc = nn_load_json_string("hostile.json", text, &g, &e);
    cr_expect_lt(rc, 0, "%s: loaded", what);
    if (rc == 0) {
        nn_graph_free(g);
        return 0;
    }
    cr_expect(strstr(e.msg, "hostile.json") != NULL, "%s: %s", what, e.msg);
    cr_log_info("%s -> %d: %s", what, rc, e.msg);
    return rc;
}

Test(hostile, json_deep_nesting)
{
    size_t depth = 200000;
    char *s = malloc(2 * depth + 1);
    cr_assert(s);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = 0;
    json_fails(s, "200000 nested arrays");
    free(s);
}

Test(hostile, json_huge_dimension)
{
    json_fails("{\"format\": \"nnv-model\", \"version\": 1,"
               " \"inputs\": [{\"name\": \"x\", \"shape\": [1, 1099511627776]}],"
               " \"outputs\": [{\"name\": \"y\"}],"
               " \"nodes\": [{\"op\": \"Relu\", \"inputs\": [\"x\"], \"outputs\": [\"y\"]}]}",
               "input of 2^40 elements");
}

Test(hostile, json_cycle)
{
    json_fails("{\"format\": \"nnv-model\", \"version\": 1,"
               " \"inputs\": [{\"name\": \"x\", \"shape\": [1, 2]}],"
               " \"outputs\": [{\"name\": \"y\"}],"
               " \"nodes\": [{\"op\": \"Add\", \"inputs\": [\"x\", \"b\"], \"outputs\": [\"y\"]},"
               "   {\"op\": \"Relu\", \"inputs\": [\"y\"], \"outputs\": [\"b\"]}]}",
               "cycle through y and b");
}

Test(hostile, json_nan_weights)
{
    /* JSON has no NaN literal; 1e999 overflows to Inf */
    json_fails("{\"format\": \"nnv-model\", \"version\": 1,"
               " \"inputs\": [{\"name\": \"x\", \"shape\": [1, 2]}],"
               " \"outputs\": [{\"name\": \"y\"}],"
               " \"initializers\": [{\"name\": \"W\", \"dtype\": \"float\", \"shape\": [2, 1], \"data\": [1e999, 1]}],"
               " \"nodes\": [{\"op\": \"MatMul\", \"inputs\": [\"x\", \"W\"], \"outputs\": [\"y\"]}]}",
               "Inf weight");
}

/* ---- VNNLIB ---- */

static int vnnlib_result(const char *text, const char *what, int want_fail)
{
    err e = {0};
    spec_property *p = NULL;
    int rc = spec_parse_vnnlib_string("hostile.vnnlib", text, &p, &e);
    if (want_fail)
        cr_expect_lt(rc, 0, "%s: parsed", what);
    if (rc == 0) {
        spec_free(p);
    } else {
        cr_expect(strstr(e.msg, "hostile.vnnlib") != NULL, "%s: %s", what, e.msg);
        cr_log_info("%s -> %d: %s", what, rc, e.msg);
    }
    cr_expect_lt(peak_rss_mb(), 400, "%s: peak memory %zu MB", what, peak_rss_mb());
    return rc;
}

Test(hostile, vnnlib_deep_nesting)
{
    size_t depth = 100000;
    const char *head = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert ";
    const char *mid = "(<= Y_0 1.0)";
    size_t n = strlen(head) + depth * 5 + strlen(mid) + depth + 8;
    char *s = malloc(n);
    cr_assert(s);
    char *q = s;
    q += sprintf(q, "%s", head);
    for (size_t i = 0; i < depth; i++)
        q += sprintf(q, "(and ");
    q += sprintf(q, "%s", mid);
    memset(q, ')', depth + 1);
    q[depth + 1] = 0;
    vnnlib_result(s, "100000 nested ands", 0);
    free(s);
}

Test(hostile, vnnlib_deep_or_of_ands)
{
    size_t depth = 20000;
    char *s = malloc(depth * 16 + 256);
    cr_assert(s);
    char *q = s;
    q += sprintf(q, "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert ");
    for (size_t i = 0; i < depth; i++)
        q += sprintf(q, i % 2 ? "(and " : "(or ");
    q += sprintf(q, "(<= Y_0 1.0)");
    for (size_t i = 0; i < depth; i++)
        *q++ = ')';
    sprintf(q, ")\n");
    vnnlib_result(s, "alternating or/and, depth 20000", 0);
    free(s);
}

Test(hostile, vnnlib_unbalanced_parentheses)
{
    vnnlib_result("(declare-const X_0 Real)\n(assert (<= X_0 1.0)", "missing )", 1);
    vnnlib_result("(declare-const X_0 Real))\n", "extra )", 1);
    vnnlib_result("(((((((((((", "only (", 1);
}

Test(hostile, vnnlib_huge_variable_index)
{
    vnnlib_result("(declare-const X_99999999999999 Real)\n(declare-const Y_0 Real)\n"
                  "(assert (<= X_99999999999999 1))\n(assert (>= X_99999999999999 0))\n"
                  "(assert (<= Y_0 0))\n",
                  "X_99999999999999", 1);
}

Test(hostile, vnnlib_nan_and_inf_bounds)
{
    vnnlib_result("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                  "(assert (<= X_0 nan))\n(assert (>= X_0 0))\n(assert (<= Y_0 0))\n",
                  "X_0 <= nan", 1);
    vnnlib_result("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                  "(assert (<= X_0 1e999))\n(assert (>= X_0 0))\n(assert (<= Y_0 0))\n",
                  "X_0 <= 1e999", 1);
}

Test(hostile, vnnlib_many_disjuncts_is_not_quadratic)
{
    /* an or of 50000 single-row clauses: parses in linear time */
    size_t n = 50000;
    char *s = malloc(n * 24 + 256);
    cr_assert(s);
    char *q = s;
    q += sprintf(q, "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"
                    "(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (or");
    for (size_t i = 0; i < n; i++)
        q += sprintf(q, " (and (<= Y_0 %zu))", i);
    sprintf(q, "))\n");
    err e = {0};
    spec_property *p = NULL;
    cr_expect_eq(spec_parse_vnnlib_string("hostile.vnnlib", s, &p, &e), 0, "%s", e.msg);
    if (p) {
        cr_expect_eq(p->regions[0].n_clauses, (int)n);
        spec_free(p);
    }
    free(s);
}
