/* test_onnx.c: the ONNX reader and writer (models/onnx.c, pb.c, load.c).
 * Reference values were read from the files with a 30-line stdlib-only Python
 * protobuf walker (struct.unpack of raw_data; no onnx package) and hard-coded. */
#include <criterion/criterion.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "../models/nn.h"
#include "../models/onnx.h"
#include "../models/pb.h"
#include "shared_data.h"

#define ACAS "../shared/benchmarks/acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx"
#define MNIST "../shared/benchmarks/mnist_fc/onnx/mnist-net_256x2.onnx"
#define COLLINS "../shared/benchmarks/collins_rul_cnn/onnx/NN_rul_small_window_20.onnx"
#define CONCAT "../shared/benchmarks/dist_shift/onnx/mnist_concat.onnx"
#define CONST_NORM "../shared/conformance/constant_normalize/model.onnx"

static uint8_t *read_all(const char *path, size_t *len)
{
    uint8_t *buf;
    err e = {0};
    int rc = nn_read_file(path, (size_t)1 << 30, &buf, len, &e);
    cr_assert_eq(rc, 0, "%s", e.msg);
    return buf;
}

static nn_graph *decode_file(const char *path)
{
    size_t len;
    uint8_t *buf = read_all(path, &len);
    nn_graph *g = NULL;
    err e = {0};
    int rc = nn_onnx_decode(path, buf, len, &g, &e);
    free(buf);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_assert_not_null(g);
    return g;
}

static const nn_tensor *tensor(const nn_graph *g, const char *name)
{
    int t = nn_graph_find(g, name);
    cr_assert_geq(t, 0, "no tensor %s", name);
    return &g->tensors[t];
}

static void check_dims(const nn_tensor *t, int rank, const int64_t *dims)
{
    cr_assert_eq(t->rank, rank, "%s: rank %d", t->name, t->rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(t->dims[i], dims[i], "%s: dim %d is %lld", t->name, i, (long long)t->dims[i]);
}

static int decode_glob(const char *pattern, int roundtrip);

Test(onnx, every_benchmark_model_decodes)
{
    NEED_SHARED();
    cr_assert_eq(decode_glob("../shared/benchmarks/*/onnx/*.onnx", 0), 45 + 3 + 3 + 1);
}

Test(onnx, every_conformance_model_decodes)
{
    NEED_SHARED();
    cr_assert_eq(decode_glob("../shared/conformance/*/model.onnx", 0), 86);
}

Test(onnx, acasxu_structure_and_weights)
{
    NEED_SHARED();
    nn_graph *g = decode_file(ACAS);
    cr_assert_eq(g->n_nodes, 22);
    const char *ops[] = {"Sub", "Flatten", "MatMul", "Add", "Relu"};
    for (int k = 0; k < 5; k++)
        cr_assert_str_eq(g->nodes[k].op_type, ops[k]);
    cr_assert_str_eq(g->nodes[21].op_type, "Add");
    cr_assert_eq(g->nodes[2].op, NN_OP_MATMUL);
    const nn_tensor *w1 = tensor(g, "Operation_1_MatMul_W");
    check_dims(w1, 2, (int64_t[]){5, 50});
    cr_assert_eq(w1->data[0], 0.05400620028376579);
    cr_assert_eq(w1->data[1], -1.1237399578094482);
    check_dims(tensor(g, "Operation_3_MatMul_W"), 2, (int64_t[]){50, 50});
    const nn_tensor *w7 = tensor(g, "linear_7_MatMul_W");
    check_dims(w7, 2, (int64_t[]){50, 5});
    const nn_tensor *b7 = tensor(g, "linear_7_Add_B");
    check_dims(b7, 1, (int64_t[]){5});
    cr_assert_eq(b7->data[4], -0.014828099869191647);
    /* Every initializer is also listed as an input, before the data input. */
    cr_assert_eq(g->n_inputs, 16);
    cr_assert_str_eq(g->tensors[g->inputs[15]].name, "input");
    check_dims(&g->tensors[g->inputs[15]], 4, (int64_t[]){1, 1, 1, 5});
    cr_assert_null(g->tensors[g->inputs[15]].data);
    cr_assert_eq(g->n_outputs, 1);
    cr_assert_str_eq(g->tensors[g->outputs[0]].name, "linear_7_Add");
    cr_assert_eq(g->opset > 0, 1);
    nn_graph_free(g);
}

Test(onnx, mnist_fc_weights)
{
    NEED_SHARED();
    nn_graph *g = decode_file(MNIST);
    cr_assert_eq(g->n_nodes, 6);
    cr_assert_str_eq(g->nodes[1].op_type, "Gemm");
    const nn_tensor *w = tensor(g, "layers.0.weight");
    check_dims(w, 2, (int64_t[]){256, 784});
    cr_assert_eq(w->data[0], -0.028886422514915466);
    cr_assert_eq(w->data[256 * 784 - 1], 0.07498620450496674);
    check_dims(&g->tensors[g->inputs[0]], 3, (int64_t[]){1, 784, 1});
    nn_graph_free(g);
}

Test(onnx, collins_symbolic_batch_dimension)
{
    NEED_SHARED();
    nn_graph *g = decode_file(COLLINS);
    cr_assert_eq(g->n_nodes, 13);
    cr_assert_str_eq(g->nodes[10].op_type, "Dropout");
    const nn_tensor *in = tensor(g, "imageinput");
    check_dims(in, 4, (int64_t[]){-1, 1, 20, 20}); /* dim_param "BatchSize" */
    cr_assert_eq(g->inputs[g->n_inputs - 1], nn_graph_find(g, "imageinput"));
    const nn_tensor *w = tensor(g, "conv_1_W");
    check_dims(w, 4, (int64_t[]){5, 1, 5, 1});
    cr_assert_eq(w->data[0], 0.16291509568691254);
    check_dims(tensor(g, "fc_1_W"), 4, (int64_t[]){100, 5, 6, 20});
    nn_graph_free(g);
}

Test(onnx, dist_shift_int64_shapes)
{
    NEED_SHARED();
    nn_graph *g = decode_file(CONCAT);
    cr_assert_eq(g->n_nodes, 11);
    const nn_tensor *s = tensor(g, "onnx::Reshape_13");
    cr_assert_eq(s->dtype, NN_INT64);
    cr_assert_not_null(s->idata);
    cr_assert_null(s->data);
    int64_t want[] = {-1, 1, 28, 28};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(s->idata[i], want[i]);
    const nn_tensor *w = tensor(g, "fc.0.weight");
    check_dims(w, 2, (int64_t[]){200, 792});
    cr_assert_eq(w->data[0], -0.00571192754432559);
    nn_graph_free(g);
}

Test(onnx, constant_node_value_becomes_a_tensor_attribute)
{
    NEED_SHARED();
    nn_graph *g = decode_file(CONST_NORM);
    cr_assert_str_eq(g->nodes[0].op_type, "Constant");
    const nn_attr *a = nn_node_attr(&g->nodes[0], "value");
    cr_assert_not_null(a);
    cr_assert_eq(a->kind, NN_ATTR_TENSOR);
    const nn_tensor *v = &g->tensors[a->tensor];
    cr_assert_str_eq(v->name, "c1/value");
    cr_assert_not_null(v->data);
    cr_assert_null(tensor(g, "c1")->data); /* finalize turns the node into it */
    nn_graph_free(g);
}

/* ---- round trip ---- */

static void assert_same_tensor(const nn_tensor *a, const nn_tensor *b)
{
    cr_assert_str_eq(a->name, b->name);
    int is_const = a->data || a->idata;
    cr_assert_eq(is_const, b->data || b->idata, "%s", a->name);
    if (a->rank >= 0 || is_const) {
        check_dims(b, a->rank, a->dims);
    }
    if (a->data) {
        cr_assert_not_null(b->data, "%s", a->name);
        for (int64_t k = 0; k < a->size; k++)
            cr_assert(a->data[k] == b->data[k] || (isnan(a->data[k]) && isnan(b->data[k])),
                      "%s[%lld]", a->name, (long long)k);
    }
    if (a->idata) {
        cr_assert_not_null(b->idata, "%s", a->name);
        cr_assert_eq(memcmp(a->idata, b->idata, (size_t)a->size * 8), 0, "%s", a->name);
    }
}

static const char *tname(const nn_graph *g, int t)
{
    return t < 0 ? "" : g->tensors[t].name;
}

static void assert_same_graph(const nn_graph *a, const nn_graph *b)
{
    cr_assert_eq(a->opset, b->opset);
    cr_assert_eq(a->n_nodes, b->n_nodes);
    cr_assert_eq(a->n_inputs, b->n_inputs);
    cr_assert_eq(a->n_outputs, b->n_outputs);
    int consts_a = 0, consts_b = 0;
    for (int t = 0; t < a->n_tensors; t++) {
        int u = nn_graph_find(b, a->tensors[t].name);
        cr_assert_geq(u, 0, "%s lost", a->tensors[t].name);
        assert_same_tensor(&a->tensors[t], &b->tensors[u]);
        consts_a += a->tensors[t].data || a->tensors[t].idata;
    }
    for (int t = 0; t < b->n_tensors; t++)
        consts_b += b->tensors[t].data || b->tensors[t].idata;
    cr_assert_eq(consts_a, consts_b);
    for (int i = 0; i < a->n_inputs; i++)
        cr_assert_str_eq(tname(a, a->inputs[i]), tname(b, b->inputs[i]));
    for (int i = 0; i < a->n_outputs; i++)
        cr_assert_str_eq(tname(a, a->outputs[i]), tname(b, b->outputs[i]));
    for (int k = 0; k < a->n_nodes; k++) {
        const nn_node *x = &a->nodes[k], *y = &b->nodes[k];
        cr_assert_str_eq(x->op_type, y->op_type);
        cr_assert_str_eq(x->name, y->name);
        cr_assert_eq(x->n_in, y->n_in);
        cr_assert_eq(x->n_out, y->n_out);
        cr_assert_eq(x->n_attr, y->n_attr);
        for (int i = 0; i < x->n_in; i++)
            cr_assert_str_eq(tname(a, x->in[i]), tname(b, y->in[i]));
        for (int i = 0; i < x->n_out; i++)
            cr_assert_str_eq(tname(a, x->out[i]), tname(b, y->out[i]));
        for (int j = 0; j < x->n_attr; j++) {
            const nn_attr *p = &x->attr[j], *q = &y->attr[j];
            cr_assert_str_eq(p->name, q->name);
            cr_assert_eq(p->kind, q->kind, "node %d attr %s", k, p->name);
            cr_assert_eq(p->i, q->i);
            cr_assert_eq(p->f, q->f);
            cr_assert_eq(p->n, q->n);
            if (p->kind == NN_ATTR_STRING)
                cr_assert_str_eq(p->s, q->s);
            for (int64_t m = 0; m < p->n; m++) {
                if (p->kind == NN_ATTR_INTS)
                    cr_assert_eq(p->ints[m], q->ints[m]);
                else
                    cr_assert_eq(p->floats[m], q->floats[m]);
            }
            if (p->kind == NN_ATTR_TENSOR)
                assert_same_tensor(&a->tensors[p->tensor], &b->tensors[q->tensor]);
        }
    }
}

static void roundtrip(const nn_graph *g)
{
    uint8_t *buf;
    size_t len;
    err e = {0};
    cr_assert_eq(nn_onnx_encode(g, &buf, &len, &e), 0, "%s", e.msg);
    nn_graph *h = NULL;
    int rc = nn_onnx_decode("saved.onnx", buf, len, &h, &e);
    free(buf);
    cr_assert_eq(rc, 0, "%s: %s", g->source, e.msg);
    assert_same_graph(g, h);
    nn_graph_free(h);
}

static int decode_glob(const char *pattern, int rt)
{
    glob_t gl;
    cr_assert_eq(glob(pattern, 0, NULL, &gl), 0, "no files for %s", pattern);
    for (size_t i = 0; i < gl.gl_pathc; i++) {
        nn_graph *g = decode_file(gl.gl_pathv[i]);
        cr_assert_gt(g->n_nodes, 0, "%s", gl.gl_pathv[i]);
        cr_assert_gt(g->n_outputs, 0, "%s", gl.gl_pathv[i]);
        if (rt)
            roundtrip(g);
        nn_graph_free(g);
    }
    int n = (int)gl.gl_pathc;
    globfree(&gl);
    return n;
}

Test(onnx, save_then_decode_gives_the_same_benchmark_graphs)
{
    NEED_SHARED();
    cr_assert_eq(decode_glob("../shared/benchmarks/*/onnx/*.onnx", 1), 52);
}

Test(onnx, save_then_decode_gives_the_same_conformance_graphs)
{
    NEED_SHARED();
    cr_assert_eq(decode_glob("../shared/conformance/*/model.onnx", 1), 86);
}

Test(onnx, save_keeps_doubles_and_writes_a_file)
{
    err e = {0};
    nn_graph *g = nn_graph_new("mem");
    int x = nn_graph_tensor(g, "x", &e), w = nn_graph_tensor(g, "w", &e);
    int y = nn_graph_tensor(g, "y", &e), s = nn_graph_tensor(g, "s", &e);
    cr_assert_eq(nn_tensor_set_shape(g, x, 2, (int64_t[]){-1, 3}, &e), 0);
    cr_assert_eq(nn_tensor_set_shape(g, w, 1, (int64_t[]){3}, &e), 0);
    cr_assert_eq(nn_tensor_set_float(g, w, (double[]){0.1, 0.5, -2}, 3, &e), 0); /* 0.1 is not a float32 */
    cr_assert_eq(nn_tensor_set_shape(g, s, 0, NULL, &e), 0);
    cr_assert_eq(nn_tensor_set_int(g, s, (int64_t[]){-7}, 1, &e), 0);
    int k = nn_graph_add_node(g, "Mul", "m", 2, (int[]){x, w}, 1, (int[]){y}, &e);
    cr_assert_geq(k, 0);
    cr_assert_eq(nn_node_attr_string(g, k, "mode", "abc", &e), 0);
    cr_assert_eq(nn_node_attr_floats(g, k, "fs", (double[]){0.25, -1}, 2, &e), 0);
    cr_assert_eq(nn_node_attr_ints(g, k, "is", (int64_t[]){-1, 1LL << 40}, 2, &e), 0);
    cr_assert_eq(nn_node_attr_tensor(g, k, "t", s, &e), 0);
    cr_assert_eq(nn_graph_add_input(g, x, &e), 0);
    cr_assert_eq(nn_graph_add_output(g, y, &e), 0);
    g->opset = 13;
    /* s is referenced by an attribute only: it travels inside the attribute and
     * comes back under the name derived from the node's output. */
    uint8_t *buf;
    size_t len;
    cr_assert_eq(nn_onnx_encode(g, &buf, &len, &e), 0, "%s", e.msg);
    nn_graph *h;
    cr_assert_eq(nn_onnx_decode("m.onnx", buf, len, &h, &e), 0, "%s", e.msg);
    free(buf);
    cr_assert_eq(tensor(h, "w")->data[0], 0.1);
    check_dims(tensor(h, "x"), 2, (int64_t[]){-1, 3});
    const nn_attr *a = nn_node_attr(&h->nodes[0], "t");
    cr_assert_str_eq(h->tensors[a->tensor].name, "y/t");
    cr_assert_eq(h->tensors[a->tensor].idata[0], -7);
    cr_assert_eq(h->tensors[a->tensor].rank, 0);
    cr_assert_eq(nn_node_attr(&h->nodes[0], "is")->ints[1], 1LL << 40);
    cr_assert_str_eq(nn_node_attr(&h->nodes[0], "mode")->s, "abc");
    nn_graph_free(h);

    const char *path = "build/tests/test_onnx_save.onnx";
    cr_assert_eq(nn_save_onnx(g, path, &e), 0, "%s", e.msg);
    h = decode_file(path);
    cr_assert_eq(tensor(h, "w")->data[2], -2);
    nn_graph_free(h);
    remove(path);
    cr_assert_eq(nn_save_onnx(g, "/nonexistent-dir/x.onnx", &e), ERR_IO);
    nn_graph_free(g);
}

/* ---- files ---- */

Test(onnx, missing_file_is_an_io_error_naming_the_file)
{
    nn_graph *g = (nn_graph *)1;
    err e = {0};
    cr_assert_eq(nn_load("../shared/no_such_model.onnx", &g, &e), ERR_IO);
    cr_assert_null(g);
    cr_assert(strstr(e.msg, "../shared/no_such_model.onnx") != NULL, "%s", e.msg);
    cr_assert_eq(nn_load("model.txt", &g, &e), ERR_ARG);
}

Test(onnx, gzip_file_loads_like_the_plain_one)
{
    NEED_SHARED();
    size_t len;
    uint8_t *buf = read_all(ACAS, &len);
    const char *path = "build/tests/test_onnx_acas.onnx.gz";
    gzFile gz = gzopen(path, "wb");
    cr_assert_not_null(gz);
    cr_assert_eq(gzwrite(gz, buf, (unsigned)len), (int)len);
    gzclose(gz);
    free(buf);
    nn_graph *g = NULL;
    err e = {0};
    cr_assert_eq(nn_load(path, &g, &e), 0, "%s", e.msg);
    cr_assert(g->finalized);
    nn_graph *plain = decode_file(ACAS);
    cr_assert_eq(tensor(g, "Operation_2_MatMul_W")->data[2499],
                 tensor(plain, "Operation_2_MatMul_W")->data[2499]);
    nn_graph_free(plain);
    nn_graph_free(g);
    /* A cap below the decompressed size is an error, not a truncated model. */
    uint8_t *b2;
    size_t l2;
    cr_assert_eq(nn_read_file(path, 1000, &b2, &l2, &e), ERR_NOMEM);
    remove(path);
}

/* ---- malformed input ---- */

static int decode_bytes(const uint8_t *buf, size_t len, err *e)
{
    nn_graph *g = NULL;
    int rc = nn_onnx_decode("t.onnx", buf, len, &g, e);
    cr_assert_eq(rc == 0, g != NULL);
    nn_graph_free(g);
    return rc;
}

/* model { graph { node[0] { op_type "Relu" } node[1] { attribute[0] = attr } } } */
static int decode_with_attr(const uint8_t *attr, size_t n, err *e)
{
    pb_buf a = {0}, n0 = {0}, n1 = {0}, graph = {0}, model = {0};
    pb_put_raw(&a, attr, n);
    pb_put_string(&n0, 4, "Relu");
    pb_put_string(&n1, 4, "Relu");
    pb_put_message(&n1, 5, &a);
    pb_put_message(&graph, 1, &n0);
    pb_put_message(&graph, 1, &n1);
    pb_put_message(&model, 7, &graph);
    int rc = decode_bytes(model.data, model.len, e);
    pb_buf_free(&model);
    return rc;
}

Test(onnx, errors_name_the_place_and_the_byte)
{
    err e = {0};
    /* name "a", then field 3 (i) with a varint cut short. */
    uint8_t attr[] = {0x0a, 0x01, 'a', 0x18, 0x80};
    cr_assert_eq(decode_with_attr(attr, sizeof attr, &e), ERR_PARSE);
    /* bytes: 0-1 model.graph tag+len, 2-9 node[0], 10-11 node[1] tag+len, 12-17
     * op_type, 18-19 attribute tag+len, 20-22 name, 23 tag of i, 24 its varint */
    cr_assert_str_eq(e.msg, "t.onnx: graph.node[1].attribute[0]: truncated varint at byte 24");
    /* a group */
    uint8_t grp[] = {0x0a, 0x01, 'a', 0x1b};
    cr_assert_eq(decode_with_attr(grp, sizeof grp, &e), ERR_PARSE);
    cr_assert(strstr(e.msg, "groups") != NULL, "%s", e.msg);
    /* a sub-graph attribute */
    uint8_t sub[] = {0x0a, 0x01, 'a', 0x32, 0x00};
    cr_assert_eq(decode_with_attr(sub, sizeof sub, &e), ERR_UNSUP);
    /* a well-formed INTS attribute, unpacked */
    uint8_t ints[] = {0x0a, 0x01, 'a', 0xa0, 0x01, 7, 0x40, 3, 0x40, 0x7f};
    cr_assert_eq(decode_with_attr(ints, sizeof ints, &e), 0, "%s", e.msg);
    cr_assert_eq(decode_bytes((const uint8_t *)"", 0, &e), ERR_PARSE);
    cr_assert(strstr(e.msg, "no graph") != NULL, "%s", e.msg);
}

static int decode_with_tensor(const uint8_t *t, size_t n, err *e)
{
    pb_buf init = {0}, graph = {0}, model = {0};
    pb_put_raw(&init, t, n);
    pb_put_message(&graph, 5, &init);
    pb_put_message(&model, 7, &graph);
    int rc = decode_bytes(model.data, model.len, e);
    pb_buf_free(&model);
    return rc;
}

Test(onnx, tensor_data_must_match_dims_and_be_internal)
{
    err e = {0};
    /* dims [2], FLOAT, name "w", 2 float_data (packed) */
    uint8_t ok[] = {0x08, 2, 0x10, 1, 0x42, 1, 'w', 0x22, 8, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40};
    cr_assert_eq(decode_with_tensor(ok, sizeof ok, &e), 0, "%s", e.msg);
    uint8_t shortd[] = {0x08, 3, 0x10, 1, 0x42, 1, 'w', 0x22, 8, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40};
    cr_assert_eq(decode_with_tensor(shortd, sizeof shortd, &e), ERR_SHAPE);
    cr_assert(strstr(e.msg, "graph.initializer[0]") != NULL, "%s", e.msg);
    /* raw_data of 3 bytes for 1 INT8... fine; of 3 bytes for 1 FLOAT: wrong */
    uint8_t raw[] = {0x08, 1, 0x10, 1, 0x42, 1, 'w', 0x4a, 3, 1, 2, 3};
    cr_assert_eq(decode_with_tensor(raw, sizeof raw, &e), ERR_SHAPE);
    uint8_t i8[] = {0x08, 3, 0x10, 3, 0x42, 1, 'w', 0x4a, 3, 0xff, 2, 3};
    cr_assert_eq(decode_with_tensor(i8, sizeof i8, &e), 0, "%s", e.msg);
    /* data_location = EXTERNAL */
    uint8_t ext[] = {0x08, 1, 0x10, 1, 0x42, 1, 'w', 0x70, 1};
    cr_assert_eq(decode_with_tensor(ext, sizeof ext, &e), ERR_UNSUP);
    cr_assert(strstr(e.msg, "external data") != NULL, "%s", e.msg);
    /* a dimension of 2^40 x 2^40 */
    uint8_t big[] = {0x0a, 12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20,
                     0x10, 1, 0x42, 1, 'w'};
    cr_assert_eq(decode_with_tensor(big, sizeof big, &e), ERR_NOMEM);
    /* STRING tensors are not numbers */
    uint8_t str[] = {0x08, 1, 0x10, 8, 0x42, 1, 'w'};
    cr_assert_eq(decode_with_tensor(str, sizeof str, &e), ERR_UNSUP);
}

Test(onnx, every_truncation_of_a_small_model_fails_cleanly)
{
    NEED_SHARED();
    size_t len;
    uint8_t *buf = read_all(CONST_NORM, &len);
    cr_assert_gt(len, 300);
    int errors = 0;
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size, so ASan sees overreads */
        memcpy(copy, buf, n);
        err e = {0};
        if (decode_bytes(copy, n, &e) != 0) {
            errors++;
            cr_assert(strncmp(e.msg, "t.onnx: ", 8) == 0, "%s", e.msg);
        }
        free(copy);
    }
    /* Only prefixes ending on a field boundary after the whole graph can be
     * well-formed. */
    cr_assert_geq(errors, (int)len - 16);
    free(buf);
}

Test(onnx, random_mutations_of_acasxu_never_crash)
{
    NEED_SHARED();
    size_t len;
    uint8_t *orig = read_all(ACAS, &len);
    uint8_t *buf = malloc(len);
    uint64_t s = 88172645463325252ull; /* xorshift64, fixed seed */
    int ok = 0;
    for (int round = 0; round < 3000; round++) {
        memcpy(buf, orig, len);
        int flips = 1 + round % 4;
        for (int j = 0; j < flips; j++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            size_t at = (size_t)(s % len);
            /* Mostly in the structure (the first 1 KB and the node area), some anywhere. */
            if (round % 2)
                at %= 2048;
            buf[at] = (uint8_t)(s >> 32);
        }
        err e = {0};
        ok += decode_bytes(buf, round % 7 ? len : len - (s >> 40) % 64, &e) == 0;
    }
    cr_assert_lt(ok, 3000); /* some mutations must have been caught */
    free(buf);
    free(orig);
}

Test(onnx, acasxu_decodes_in_well_under_a_millisecond)
{
    NEED_SHARED();
    size_t len;
    uint8_t *buf = read_all(ACAS, &len);
    struct timespec t0, t1;
    int reps = 200;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < reps; r++) {
        nn_graph *g;
        err e;
        cr_assert_eq(nn_onnx_decode("a.onnx", buf, len, &g, &e), 0);
        nn_graph_free(g);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / reps;
    cr_log_info("ACAS Xu decode: %.3f ms", ms);
    cr_assert_lt(ms, 5.0); /* ~0.1 ms optimised; generous for sanitizer builds */
    free(buf);
}

/* ---- with finalize ---- */

static int load_glob(const char *pattern)
{
    glob_t gl;
    cr_assert_eq(glob(pattern, 0, NULL, &gl), 0, "no files for %s", pattern);
    for (size_t i = 0; i < gl.gl_pathc; i++) {
        nn_graph *g = NULL;
        err e = {0};
        cr_assert_eq(nn_load(gl.gl_pathv[i], &g, &e), 0, "%s", e.msg);
        cr_assert(g->finalized);
        nn_graph_free(g);
    }
    int n = (int)gl.gl_pathc;
    globfree(&gl);
    return n;
}

Test(onnx, every_benchmark_and_conformance_model_loads_finalized)
{
    NEED_SHARED();
    cr_assert_eq(load_glob("../shared/benchmarks/*/onnx/*.onnx"), 52);
    cr_assert_eq(load_glob("../shared/conformance/*/model.onnx"), 86);
}

Test(onnx, saved_finalized_network_computes_the_same_function)
{
    NEED_SHARED();
    const char *files[] = {ACAS, COLLINS, CONCAT, CONST_NORM};
    for (int f = 0; f < 4; f++) {
        nn_graph *g = NULL, *h = NULL;
        err e = {0};
        cr_assert_eq(nn_load(files[f], &g, &e), 0, "%s", e.msg);
        const char *path = "build/tests/test_onnx_resave.onnx";
        cr_assert_eq(nn_save_onnx(g, path, &e), 0, "%s", e.msg);
        cr_assert_eq(nn_load(path, &h, &e), 0, "%s", e.msg);
        remove(path);
        int64_t n = nn_input_size(g), m = nn_output_size(g);
        cr_assert_eq(n, nn_input_size(h));
        cr_assert_eq(m, nn_output_size(h));
        double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)m * sizeof *y);
        double *z = malloc((size_t)m * sizeof *z);
        for (int64_t i = 0; i < n; i++)
            x[i] = 0.25 * (double)((i * 7) % 5) - 0.5;
        cr_assert_eq(nn_eval(g, x, y, &e), 0, "%s", e.msg);
        cr_assert_eq(nn_eval(h, x, z, &e), 0, "%s", e.msg);
        for (int64_t i = 0; i < m; i++)
            cr_assert_eq(y[i], z[i], "%s: output %lld", files[f], (long long)i);
        free(x);
        free(y);
        free(z);
        nn_graph_free(g);
        nn_graph_free(h);
    }
}
