/* test_json.c: the JSON model format: loading hand-written models, exact and
 * byte-stable round trips, clear errors on malformed input, and (when the ONNX
 * loader is present) ONNX -> JSON -> graph conversions of the benchmarks. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../models/nn.h"

#define DATA "tests/data/json/"

static const nn_tensor *tensor(const nn_graph *g, const char *name)
{
    int t = nn_graph_find(g, name);
    cr_assert(t >= 0, "no tensor '%s'", name);
    return &g->tensors[t];
}

static const nn_node *node_named(const nn_graph *g, const char *name)
{
    for (int k = 0; k < g->n_nodes; k++)
        if (strcmp(g->nodes[k].name, name) == 0)
            return &g->nodes[k];
    cr_assert_fail("no node '%s'", name);
    return NULL;
}

/* Load text that must fail; returns the code and leaves the message in e. */
static int load_bad(const char *text, err *e)
{
    nn_graph *g = (nn_graph *)1;
    int rc = nn_load_json_string("bad.json", text, &g, e);
    cr_assert(rc < 0, "loaded: %s", text);
    cr_assert_null(g);
    cr_assert(strncmp(e->msg, "bad.json", 8) == 0, "message without the source: %s", e->msg);
    return rc;
}

#define HEAD "{\"format\": \"nnv-model\", \"version\": 1, "
#define IO "\"inputs\": [{\"name\": \"x\", \"shape\": [1, 2]}], \"outputs\": [{\"name\": \"y\"}], "

Test(json, loads_tiny_mlp_with_shapes_values_and_attributes)
{
    nn_graph *g;
    err e = {0};
    cr_assert_eq(nn_load_json(DATA "mlp.json", &g, &e), 0, "%s", e.msg);
    cr_assert(g->finalized);
    cr_assert_eq(g->ir_version, 7);
    cr_assert_eq(g->opset, 13);
    cr_assert_str_eq(g->producer_name, "hand-written");
    cr_assert_eq(g->n_inputs, 1);
    const nn_tensor *x = &g->tensors[g->input];
    cr_assert_str_eq(x->name, "x");
    cr_assert_eq(x->rank, 2);
    cr_assert_eq(x->dims[1], 2);
    cr_assert_str_eq(g->tensors[g->output].name, "y");
    const nn_tensor *w1 = tensor(g, "W1");
    cr_assert_eq(w1->rank, 2);
    cr_assert_eq(w1->dims[0], 3);
    cr_assert_eq(w1->dims[1], 2);
    const double w1v[] = {1, -1, 0.5, 2, -1, 0.25};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(w1->data[i], w1v[i]);
    cr_assert_eq(tensor(g, "b1")->data[1], 0.1);
    const nn_tensor *ends = tensor(g, "ends");
    cr_assert_eq(ends->dtype, NN_INT64);
    cr_assert_eq(ends->idata[0], INT64_MAX);
    const nn_node *fc1 = node_named(g, "fc1");
    cr_assert_eq(fc1->op, NN_OP_GEMM);
    cr_assert_eq(nn_attr_int(fc1, "transB", 0), 1);
    cr_assert_eq(nn_node_attr(fc1, "alpha")->kind, NN_ATTR_FLOAT);
    cr_assert_eq(nn_attr_float(fc1, "alpha", 0), 1.0);
    cr_assert_eq(nn_node_attr(fc1, "beta")->kind, NN_ATTR_FLOAT);
    /* The Constant's tensor (folded into "s" by a full finalize) holds [1, 1]. */
    const nn_tensor *s = tensor(g, "s");
    const nn_tensor *shift = s->data ? s : tensor(g, "s/value");
    cr_assert_not_null(shift->data);
    cr_assert_eq(shift->size, 2);
    cr_assert_eq(shift->data[0], 1.0);
    nn_graph_free(g);
}

Test(json, tiny_mlp_computes_the_hand_computed_output)
{
    nn_graph *g;
    err e = {0};
    cr_assert_eq(nn_load_json(DATA "mlp.json", &g, &e), 0, "%s", e.msg);
    cr_assert_eq(nn_input_size(g), 2);
    cr_assert_eq(nn_output_size(g), 2);
    /* h = W1 x + b1 = [-1, 4.6, -0.7], relu -> [0, 4.6, 0],
     * z = W2 r + b2 = [0.5, 4.1], y = z + [1, 1] = [1.5, 5.1]. */
    const double x[2] = {1, 2};
    double y[2];
    cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
    cr_assert_float_eq(y[0], 1.5, 1e-12);
    cr_assert_float_eq(y[1], 5.1, 1e-12);
    const double x2[2] = {-1, 0.5}; /* h = [-1.5, 0.6, 0.925] -> z = [2.35, 0.1] */
    cr_assert_eq(nn_eval(g, x2, y, &e), 0, "%s", e.msg);
    cr_assert_float_eq(y[0], 3.35, 1e-12);
    cr_assert_float_eq(y[1], 1.1, 1e-12);
    nn_graph_free(g);
}

Test(json, round_trip_is_byte_identical)
{
    nn_graph *g, *h;
    err e = {0};
    cr_assert_eq(nn_load_json(DATA "mlp.json", &g, &e), 0, "%s", e.msg);
    char *a = nn_json_string(g, &e);
    cr_assert_not_null(a, "%s", e.msg);
    cr_assert_eq(nn_load_json_string("a.json", a, &h, &e), 0, "%s\n%s", e.msg, a);
    char *b = nn_json_string(h, &e);
    cr_assert_not_null(b, "%s", e.msg);
    cr_assert_str_eq(a, b);
    /* The big int64 is written as a string, the small ones as numbers. */
    cr_assert_not_null(strstr(a, "[\"9223372036854775807\"]"));
    cr_assert_not_null(strstr(a, "\"data\": [0]"));
    free(a);
    free(b);
    nn_graph_free(g);
    nn_graph_free(h);
}

/* A graph x + C -> y with the given constant, built with the builder API. */
static nn_graph *add_graph(const double *c, int64_t n, const int64_t *ic, int64_t ni)
{
    err e = {0};
    nn_graph *g = nn_graph_new("built");
    cr_assert_not_null(g);
    int x = nn_graph_tensor(g, "x", &e), ct = nn_graph_tensor(g, "C", &e);
    int y = nn_graph_tensor(g, "y", &e), it = nn_graph_tensor(g, "I", &e);
    int64_t dims[1] = {n}, idims[1] = {ni};
    cr_assert_eq(nn_tensor_set_shape(g, x, 1, dims, &e), 0);
    cr_assert_eq(nn_tensor_set_shape(g, ct, 1, dims, &e), 0);
    cr_assert_eq(nn_tensor_set_float(g, ct, c, n, &e), 0, "%s", e.msg);
    cr_assert_eq(nn_tensor_set_shape(g, it, 1, idims, &e), 0);
    cr_assert_eq(nn_tensor_set_int(g, it, ic, ni, &e), 0, "%s", e.msg);
    int in[2] = {x, ct}, out[1] = {y};
    cr_assert_geq(nn_graph_add_node(g, "Add", "add", 2, in, 1, out, &e), 0);
    cr_assert_eq(nn_node_attr_ints(g, 0, "big", ic, ni, &e), 0);
    cr_assert_eq(nn_node_attr_floats(g, 0, "fl", c, n, &e), 0);
    cr_assert_eq(nn_node_attr_string(g, 0, "s", "quote \" back \\ nl \n tab \t bell \a é", &e), 0);
    cr_assert_eq(nn_node_attr_tensor(g, 0, "t", it, &e), 0);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    return g;
}

Test(json, every_double_and_int64_reads_back_exactly)
{
    enum { N = 2000 };
    static double c[N];
    static int64_t ic[8] = {0, 1, -1, INT64_MAX, INT64_MIN, (int64_t)1 << 53,
                            ((int64_t)1 << 53) + 1, -((int64_t)1 << 53) - 1};
    const double special[] = {0.1, 1.0 / 3, -0.0, 5e-324, DBL_MAX, -DBL_MIN, 1e21, 1e-7,
                              (double)0.1f, 123456789.0, 0.30000000000000004};
    int ns = sizeof special / sizeof special[0];
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        if (i < ns) {
            c[i] = special[i];
            continue;
        }
        double v;
        do { /* random bit patterns, finite ones only */
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            memcpy(&v, &s, sizeof v);
        } while (!isfinite(v));
        c[i] = i % 2 ? v : (double)(float)(v * 1e-300); /* half of them float32 values */
    }
    nn_graph *g = add_graph(c, N, ic, 8), *h;
    err e = {0};
    char *a = nn_json_string(g, &e);
    cr_assert_not_null(a, "%s", e.msg);
    cr_assert_eq(nn_load_json_string("a.json", a, &h, &e), 0, "%s", e.msg);
    const nn_tensor *ch = tensor(h, "C");
    cr_assert_eq(memcmp(ch->data, c, sizeof c), 0, "float data changed");
    cr_assert_eq(memcmp(tensor(h, "I")->idata, ic, sizeof ic), 0, "int64 data changed");
    const nn_node *n = &h->nodes[0];
    const nn_attr *big = nn_node_attr(n, "big"), *fl = nn_node_attr(n, "fl");
    cr_assert_eq(memcmp(big->ints, ic, sizeof ic), 0);
    cr_assert_eq(memcmp(fl->floats, c, sizeof c), 0);
    cr_assert_str_eq(nn_node_attr(n, "s")->s, "quote \" back \\ nl \n tab \t bell \a é");
    cr_assert_str_eq(h->tensors[nn_node_attr(n, "t")->tensor].name, "I");
    /* a came from a raw graph; from the finalized one on, the text is stable. */
    char *b = nn_json_string(h, &e);
    cr_assert_not_null(b, "%s", e.msg);
    nn_graph *h2;
    cr_assert_eq(nn_load_json_string("b.json", b, &h2, &e), 0, "%s", e.msg);
    char *b2 = nn_json_string(h2, &e);
    cr_assert_str_eq(b, b2);
    free(b2);
    nn_graph_free(h2);
    /* Shortest forms: 0.1 is "0.1", not 0.10000000000000001. */
    cr_assert_not_null(strstr(a, "[0.1, 0.3333333333333333, -0, 4.94065645841247e-324, "));
    free(a);
    free(b);
    nn_graph_free(g);
    nn_graph_free(h);
}

Test(json, writer_refuses_nan_and_infinity)
{
    double c[3] = {1, NAN, 2};
    int64_t ic[1] = {0};
    nn_graph *g = add_graph(c, 3, ic, 1);
    err e = {0};
    cr_assert_null(nn_json_string(g, &e));
    cr_assert_eq(e.code, ERR_VALUE);
    cr_assert_not_null(strstr(e.msg, "tensor 'C'[1]: NaN cannot be written as JSON"), "%s", e.msg);
    cr_assert_eq(nn_save_json(g, "/nonexistent-dir/nan.json", &e), ERR_VALUE);
    g->tensors[nn_graph_find(g, "C")].data[1] = -INFINITY;
    cr_assert_null(nn_json_string(g, &e));
    cr_assert_not_null(strstr(e.msg, "infinity"), "%s", e.msg);
    nn_graph_free(g);
}

Test(json, gzip_files_round_trip)
{
    nn_graph *g, *h;
    err e = {0};
    char gzp[128], plain[128], cut[128];
    snprintf(gzp, sizeof gzp, "/tmp/nnv_test_json_%d.json.gz", (int)getpid());
    snprintf(plain, sizeof plain, "/tmp/nnv_test_json_%d.json", (int)getpid());
    snprintf(cut, sizeof cut, "/tmp/nnv_test_json_cut_%d.json.gz", (int)getpid());
    cr_assert_eq(nn_load_json(DATA "mlp.json", &g, &e), 0, "%s", e.msg);
    cr_assert_eq(nn_save_json(g, gzp, &e), 0, "%s", e.msg);
    FILE *f = fopen(gzp, "rb");
    cr_assert_not_null(f);
    unsigned char magic[2] = {0};
    cr_assert_eq(fread(magic, 1, 2, f), 2);
    fclose(f);
    cr_assert(magic[0] == 0x1f && magic[1] == 0x8b, "not gzip");
    cr_assert_eq(nn_load_json(gzp, &h, &e), 0, "%s", e.msg);
    char *a = nn_json_string(g, &e), *b = nn_json_string(h, &e);
    cr_assert_str_eq(a, b);
    cr_assert_eq(nn_save_json(g, plain, &e), 0, "%s", e.msg);
    nn_graph_free(h);
    cr_assert_eq(nn_load_json(plain, &h, &e), 0, "%s", e.msg);
    free(b);
    b = nn_json_string(h, &e);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    nn_graph_free(g);
    nn_graph_free(h);
    /* A truncated and a corrupted gzip file: clear errors. */
    f = fopen(gzp, "rb");
    cr_assert_not_null(f);
    static unsigned char gz[4096];
    size_t n = fread(gz, 1, sizeof gz, f);
    fclose(f);
    cr_assert_gt(n, 200);
    f = fopen(cut, "wb");
    cr_assert_eq(fwrite(gz, 1, n / 2, f), n / 2);
    fclose(f);
    nn_graph *bad = (nn_graph *)1;
    cr_assert_eq(nn_load_json(cut, &bad, &e), ERR_PARSE);
    cr_assert(strncmp(e.msg, cut, strlen(cut)) == 0, "%s", e.msg);
    cr_assert_str_eq(e.msg + strlen(cut), ": truncated gzip data");
    cr_assert_null(bad);
    for (size_t i = 20; i < 40; i++)
        gz[i] ^= 0x5a;
    f = fopen(cut, "wb");
    cr_assert_eq(fwrite(gz, 1, n, f), n);
    fclose(f);
    cr_assert_eq(nn_load_json(cut, &bad, &e), ERR_PARSE);
    cr_assert_not_null(strstr(e.msg, ": corrupt gzip data: "), "%s", e.msg);
    remove(cut);
    remove(gzp);
    remove(plain);
}

static void expect_file_error(const char *file, int code, const char *needle)
{
    nn_graph *g = (nn_graph *)1;
    err e = {0};
    int rc = nn_load_json(file, &g, &e);
    cr_assert_eq(rc, code, "%s: code %d, message: %s", file, rc, e.msg);
    cr_assert_null(g);
    cr_assert(strncmp(e.msg, file, strlen(file)) == 0, "no file name: %s", e.msg);
    cr_assert_not_null(strstr(e.msg, needle), "'%s' not in: %s", needle, e.msg);
}

Test(json, malformed_files_give_located_errors)
{
    expect_file_error(DATA "syntax_error.json", ERR_PARSE,
                      DATA "syntax_error.json:5:3: JSON syntax error near '\"outputs\"");
    expect_file_error(DATA "missing_nodes.json", ERR_PARSE, "top level: missing field 'nodes'");
    expect_file_error(DATA "bad_attribute.json", ERR_PARSE,
                      "bad_attribute.json:8:37: nodes[0].attributes.kernel_shape: "
                      "expected a list of integers");
    expect_file_error(DATA "data_length.json", ERR_SHAPE,
                      "data_length.json:6:77: initializers[0].data: 5 values for a shape of 6 elements");
    expect_file_error(DATA "unknown_op.json", ERR_UNSUP, "Frobnicate");
    expect_file_error(DATA "no_such_file.json", ERR_IO, "cannot open");
}

Test(json, malformed_text_gives_clear_errors)
{
    err e = {0};
    load_bad("", &e);
    cr_assert_not_null(strstr(e.msg, "bad.json:1:1: JSON syntax error"), "%s", e.msg);
    load_bad("{\"format\": \"nnv-model\",\n \"version\": 1,\n", &e);
    cr_assert_not_null(strstr(e.msg, "unexpected end"), "%s", e.msg);
    load_bad("[1, 2]", &e);
    cr_assert_not_null(strstr(e.msg, "top level: expected an object"), "%s", e.msg);
    load_bad("{\"format\": \"onnx\", \"version\": 1, \"inputs\": [], \"outputs\": [], \"nodes\": []}", &e);
    cr_assert_not_null(strstr(e.msg, "format: expected \"nnv-model\""), "%s", e.msg);
    cr_assert_eq(load_bad(HEAD IO "\"nodes\": [], \"version\": 2}", &e), ERR_PARSE);
    cr_assert_not_null(strstr(e.msg, "duplicate field 'version'"), "%s", e.msg);
    cr_assert_eq(load_bad("{\"format\": \"nnv-model\", \"version\": 2, " IO "\"nodes\": []}", &e),
                 ERR_UNSUP);
    load_bad(HEAD IO "\"nodes\": [], \"node\": []}", &e);
    cr_assert_not_null(strstr(e.msg, "unknown field 'node'"), "%s", e.msg);
    cr_assert_eq(load_bad(HEAD IO "\"initializers\": [{\"name\": \"W\", \"dtype\": \"double\", "
                                  "\"shape\": [1], \"data\": [1]}], \"nodes\": []}", &e), ERR_UNSUP);
    cr_assert_not_null(strstr(e.msg, "initializers[0].dtype: unknown dtype \"double\""), "%s", e.msg);
    cr_assert_eq(load_bad(HEAD IO "\"initializers\": [{\"name\": \"W\", \"dtype\": \"float\", "
                                  "\"shape\": [100000, 100000], \"data\": []}], \"nodes\": []}", &e),
                 ERR_NOMEM);
    cr_assert_eq(load_bad(HEAD IO "\"initializers\": [{\"name\": \"W\", \"dtype\": \"float\", "
                                  "\"shape\": [1,1,1,1,1,1,1,1,1], \"data\": [1]}], \"nodes\": []}", &e),
                 ERR_UNSUP);
    load_bad(HEAD IO "\"initializers\": [{\"name\": \"W\", \"dtype\": \"float\", "
                     "\"shape\": [-2], \"data\": []}], \"nodes\": []}", &e);
    cr_assert_not_null(strstr(e.msg, "initializers[0].shape[0]: negative dimension"), "%s", e.msg);
    load_bad(HEAD IO "\"initializers\": [{\"name\": \"W\", \"dtype\": \"float\", "
                     "\"shape\": [2], \"data\": [1, \"2\"]}], \"nodes\": []}", &e);
    cr_assert_not_null(strstr(e.msg, "initializers[0].data[1]: expected a number"), "%s", e.msg);
    load_bad(HEAD IO "\"initializers\": [{\"name\": \"W\", \"dtype\": \"float\", "
                     "\"shape\": [1], \"data\": [1e999]}], \"nodes\": []}", &e);
    cr_assert_not_null(strstr(e.msg, "number out of range"), "%s", e.msg);
    load_bad(HEAD IO "\"initializers\": [{\"name\": \"I\", \"dtype\": \"int64\", "
                     "\"shape\": [1], \"data\": [9223372036854775807]}], \"nodes\": []}", &e);
    cr_assert_not_null(strstr(e.msg, "initializers[0].data[0]: integer beyond 2^53"), "%s", e.msg);
    load_bad(HEAD IO "\"initializers\": [{\"name\": \"I\", \"dtype\": \"int64\", "
                     "\"shape\": [1], \"data\": [\"12x\"]}], \"nodes\": []}", &e);
    cr_assert_not_null(strstr(e.msg, "expected an integer"), "%s", e.msg);
    load_bad(HEAD IO "\"nodes\": [{\"op\": \"Relu\", \"inputs\": [\"x\"], \"outputs\": [\"y\"], "
                     "\"attributes\": {\"alpha\": 0.5}}]}", &e);
    cr_assert_not_null(strstr(e.msg, "nodes[0].attributes.alpha: expected one typed value"), "%s", e.msg);
    load_bad(HEAD IO "\"nodes\": [{\"op\": \"Relu\", \"inputs\": [\"x\"], \"outputs\": [\"y\"], "
                     "\"attributes\": {\"a.b\": {\"int\": 1}, \"axis\": {\"int\": 1.5}}}]}", &e);
    cr_assert_not_null(strstr(e.msg, "bad.json:1:213: nodes[0].attributes.axis: expected an integer"),
                       "%s", e.msg);
    load_bad(HEAD IO "\"nodes\": [{\"op\": \"Relu\", \"inputs\": [\"x\"], \"outputs\": [\"y\"], "
                     "\"attributes\": {\"a\": {\"int\": 1}, \"a\": {\"int\": 2}}}]}", &e);
    cr_assert_not_null(strstr(e.msg, "duplicate attribute"), "%s", e.msg);
    load_bad(HEAD IO "\"nodes\": [{\"op\": \"Relu\", \"inputs\": [\"x\"], \"outputs\": [\"y\"]}, "
                     "{\"op\": \"Relu\", \"inputs\": [\"x\"], \"outputs\": [\"y\"]}]}", &e);
    cr_assert_not_null(strstr(e.msg, "nodes[1].outputs[0]: 'y' is already an output of nodes[0]"),
                       "%s", e.msg);
    load_bad(HEAD IO "\"nodes\": [{\"op\": \"Relu\", \"inputs\": [\"x\"], \"outputs\": [\"\"]}]}", &e);
    cr_assert_not_null(strstr(e.msg, "nodes[0].outputs[0]: empty name"), "%s", e.msg);
    load_bad(HEAD IO "\"nodes\": [{\"op\": \"Relu\", \"inputs\": \"x\", \"outputs\": [\"y\"]}]}", &e);
    cr_assert_not_null(strstr(e.msg, "nodes[0].inputs: expected a list of tensor names"), "%s", e.msg);
    load_bad(HEAD IO "\"nodes\": [{\"inputs\": [\"x\"], \"outputs\": [\"y\"]}]}", &e);
    cr_assert_not_null(strstr(e.msg, "nodes[0]: missing field 'op'"), "%s", e.msg);
    load_bad(HEAD "\"inputs\": [{\"name\": \"x\", \"shape\": [1, 2]}, {\"name\": \"x\"}], "
                  "\"outputs\": [{\"name\": \"y\"}], \"nodes\": []}", &e);
    cr_assert_not_null(strstr(e.msg, "listed twice"), "%s", e.msg);
    load_bad(HEAD "\"inputs\": [{\"name\": \"W\", \"shape\": [3]}], \"outputs\": [{\"name\": \"y\"}], "
                  "\"initializers\": [{\"name\": \"W\", \"dtype\": \"float\", \"shape\": [2], "
                  "\"data\": [1, 2]}], \"nodes\": []}", &e);
    cr_assert_not_null(strstr(e.msg, "inputs[0].shape: differs"), "%s", e.msg);
}

Test(json, deep_nesting_and_huge_declarations_are_refused)
{
    enum { DEPTH = 200000 };
    char *deep = malloc(2 * DEPTH + 64);
    cr_assert_not_null(deep);
    int n = sprintf(deep, HEAD "\"nodes\": ");
    for (int i = 0; i < DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < DEPTH; i++)
        deep[n++] = ']';
    strcpy(deep + n, "}");
    err e = {0};
    cr_assert_eq(load_bad(deep, &e), ERR_PARSE);
    free(deep);
    /* A shape of 2^28 elements with no data: refused before any allocation. */
    load_bad(HEAD IO "\"initializers\": [{\"name\": \"W\", \"dtype\": \"float\", "
                     "\"shape\": [16384, 16384], \"data\": []}], \"nodes\": []}", &e);
    cr_assert_not_null(strstr(e.msg, "0 values for a shape of 268435456 elements"), "%s", e.msg);
    load_bad(HEAD IO "\"initializers\": [{\"name\": \"W\", \"dtype\": \"float\", "
                     "\"shape\": [\"9223372036854775807\", 2], \"data\": []}], \"nodes\": []}", &e);
    cr_assert_eq(e.code, ERR_NOMEM, "%s", e.msg);
}

/* Every prefix and many one-byte corruptions of a valid file: errors, never crashes. */
Test(json, truncated_and_corrupted_text_never_crashes)
{
    FILE *f = fopen(DATA "mlp.json", "rb");
    cr_assert_not_null(f);
    static char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    cr_assert_gt(n, 100);
    char *buf = malloc(n + 1);
    cr_assert_not_null(buf);
    int ok = 0;
    for (size_t len = 0; len < n; len += 3) {
        memcpy(buf, text, len);
        buf[len] = 0;
        nn_graph *g;
        err e;
        if (nn_load_json_string("t.json", buf, &g, &e) == 0) {
            ok++;
            nn_graph_free(g);
        }
    }
    cr_assert_eq(ok, 0, "a truncated file loaded");
    const char subst[] = "\"{}[],:0-9e.x \n";
    uint64_t s = 12345;
    for (int trial = 0; trial < 1500; trial++) {
        memcpy(buf, text, n + 1);
        for (int m = 0; m < 1 + trial % 3; m++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            buf[(s >> 8) % n] = subst[(s >> 40) % (sizeof subst - 1)];
        }
        nn_graph *g;
        err e;
        if (nn_load_json_string("t.json", buf, &g, &e) == 0)
            nn_graph_free(g);
    }
    free(buf);
}

/* ---- ONNX -> JSON -> graph on every benchmark network ---- */

#include <glob.h>
#include "shared_data.h"

static void same_tensor(const nn_graph *g, int t, const nn_graph *h, const char *file)
{
    const nn_tensor *a = &g->tensors[t];
    int u = nn_graph_find(h, a->name);
    cr_assert(u >= 0, "%s: tensor '%s' lost", file, a->name);
    const nn_tensor *b = &h->tensors[u];
    cr_assert_eq(a->dtype, b->dtype, "%s: '%s' dtype", file, a->name);
    cr_assert_eq(a->rank, b->rank, "%s: '%s' rank", file, a->name);
    cr_assert_eq(memcmp(a->dims, b->dims, (size_t)a->rank * sizeof a->dims[0]), 0);
    cr_assert_eq(!a->data, !b->data, "%s: '%s' float data", file, a->name);
    cr_assert_eq(!a->idata, !b->idata, "%s: '%s' int data", file, a->name);
    if (a->data)
        cr_assert_eq(memcmp(a->data, b->data, (size_t)a->size * sizeof(double)), 0,
                     "%s: '%s' values differ", file, a->name);
    if (a->idata)
        cr_assert_eq(memcmp(a->idata, b->idata, (size_t)a->size * sizeof(int64_t)), 0,
                     "%s: '%s' values differ", file, a->name);
}

static const char *tname(const nn_graph *g, int t)
{
    return t < 0 ? "" : g->tensors[t].name;
}

static void same_graph(const nn_graph *g, const nn_graph *h, const char *file)
{
    cr_assert_str_eq(tname(g, g->input), tname(h, h->input), "%s", file);
    cr_assert_str_eq(tname(g, g->output), tname(h, h->output), "%s", file);
    same_tensor(g, g->input, h, file);
    same_tensor(g, g->output, h, file);
    cr_assert_eq(g->n_nodes, h->n_nodes, "%s: node count", file);
    for (int k = 0; k < g->n_nodes; k++) {
        const nn_node *a = &g->nodes[k], *b = &h->nodes[k];
        cr_assert_str_eq(a->op_type, b->op_type, "%s: node %d", file, k);
        cr_assert_eq(a->op, b->op);
        cr_assert_str_eq(a->name, b->name, "%s: node %d", file, k);
        cr_assert_eq(a->n_in, b->n_in, "%s: node %d", file, k);
        cr_assert_eq(a->n_out, b->n_out, "%s: node %d", file, k);
        for (int i = 0; i < a->n_in; i++) {
            cr_assert_str_eq(tname(g, a->in[i]), tname(h, b->in[i]), "%s: node %d", file, k);
            if (a->in[i] >= 0 && (g->tensors[a->in[i]].data || g->tensors[a->in[i]].idata))
                same_tensor(g, a->in[i], h, file);
        }
        for (int i = 0; i < a->n_out; i++)
            cr_assert_str_eq(tname(g, a->out[i]), tname(h, b->out[i]), "%s: node %d", file, k);
        cr_assert_eq(a->n_attr, b->n_attr, "%s: node %d", file, k);
        for (int j = 0; j < a->n_attr; j++) {
            const nn_attr *x = &a->attr[j], *y = &b->attr[j];
            cr_assert_str_eq(x->name, y->name, "%s: node %d", file, k);
            cr_assert_eq(x->kind, y->kind, "%s: node %d attribute %s", file, k, x->name);
            switch (x->kind) {
            case NN_ATTR_INT: cr_assert_eq(x->i, y->i); break;
            case NN_ATTR_FLOAT: cr_assert_eq(memcmp(&x->f, &y->f, sizeof x->f), 0); break;
            case NN_ATTR_STRING: cr_assert_str_eq(x->s, y->s); break;
            case NN_ATTR_INTS:
                cr_assert_eq(x->n, y->n);
                cr_assert_eq(memcmp(x->ints, y->ints, (size_t)x->n * sizeof *x->ints), 0);
                break;
            case NN_ATTR_FLOATS:
                cr_assert_eq(x->n, y->n);
                cr_assert_eq(memcmp(x->floats, y->floats, (size_t)x->n * sizeof *x->floats), 0);
                break;
            case NN_ATTR_TENSOR:
                same_tensor(g, x->tensor, h, file);
                break;
            }
        }
    }
}

/* nn_eval of both graphs on a few pseudo-random inputs in [-1, 1]: identical bits. */
static void same_outputs(const nn_graph *g, const nn_graph *h, const char *file)
{
    int64_t n = nn_input_size(g), m = nn_output_size(g);
    cr_assert_eq(n, nn_input_size(h), "%s", file);
    cr_assert_eq(m, nn_output_size(h), "%s", file);
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)m * sizeof *y);
    double *z = malloc((size_t)m * sizeof *z);
    cr_assert(x && y && z);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int trial = 0; trial < 3; trial++) {
        for (int64_t i = 0; i < n; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            x[i] = (double)(s >> 11) / 9007199254740992.0 * 2 - 1;
        }
        err e = {0};
        cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s: %s", file, e.msg);
        cr_assert_eq(nn_eval(h, x, z, &e), 0, "%s: %s", file, e.msg);
        for (int64_t j = 0; j < m; j++)
            cr_assert_eq(memcmp(&y[j], &z[j], sizeof y[j]), 0, "%s: output %lld: %.17g vs %.17g",
                         file, (long long)j, y[j], z[j]);
    }
    free(x);
    free(y);
    free(z);
}

/* Every benchmark network and every conformance model: the graph read back
 * from the JSON has the same nodes, attributes and constants, bit for bit, and
 * writing it again gives the same bytes. */
Test(json, onnx_models_convert_exactly, .timeout = 60)
{
    NEED_SHARED();
    glob_t gl;
    cr_assert_eq(glob("../shared/benchmarks/*/onnx/*.onnx", 0, NULL, &gl), 0, "no benchmarks");
    cr_assert_gt(gl.gl_pathc, 3);
    cr_assert_eq(glob("../shared/conformance/*/model.onnx", GLOB_APPEND, NULL, &gl), 0);
    cr_assert_gt(gl.gl_pathc, 50);
    for (size_t i = 0; i < gl.gl_pathc; i++) {
        const char *file = gl.gl_pathv[i];
        /* Many ACAS Xu networks share one architecture: take a few. */
        if (strstr(file, "ACASXU") && !strstr(file, "_1_1_") && !strstr(file, "_5_9_"))
            continue;
        nn_graph *g, *h;
        err e = {0};
        cr_assert_eq(nn_load(file, &g, &e), 0, "%s", e.msg);
        char *a = nn_json_string(g, &e);
        cr_assert_not_null(a, "%s", e.msg);
        cr_assert_eq(nn_load_json_string(file, a, &h, &e), 0, "%s", e.msg);
        same_graph(g, h, file);
        same_outputs(g, h, file);
        char *b = nn_json_string(h, &e);
        cr_assert_not_null(b, "%s", e.msg);
        cr_assert_str_eq(a, b, "%s: JSON not byte-stable", file);
        free(a);
        free(b);
        nn_graph_free(g);
        nn_graph_free(h);
    }
    globfree(&gl);
}
