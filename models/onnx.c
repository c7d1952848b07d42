/* onnx.c: ONNX ModelProto <-> network IR.
 *
 * Decoding walks the protobuf messages with pb.c and fills a raw graph through
 * the builder API (graph.c); tensors are referred to by name, so fields may come
 * in any order and a tensor is created the first time its name is seen. The
 * message nesting is fixed (Model > Graph > Node > Attribute > Tensor; graph
 * attributes are rejected), so recursion depth is bounded by construction. The
 * place being decoded is kept as a path ("graph.node[3].attribute[1]") that
 * every error message carries. Field numbers are those of onnx/onnx.proto.
 *
 * Encoding writes the same subset back: nodes with attributes, constant
 * tensors as raw little-endian data (FLOAT when every value is exactly a
 * float32, else DOUBLE; INT64), inputs and outputs with their shapes. */
#include "onnx.h"
#include "pb.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ONNX TensorProto.DataType codes. */
enum {
    T_FLOAT = 1, T_UINT8 = 2, T_INT8 = 3, T_UINT16 = 4, T_INT16 = 5, T_INT32 = 6,
    T_INT64 = 7, T_STRING = 8, T_BOOL = 9, T_FLOAT16 = 10, T_DOUBLE = 11,
    T_UINT32 = 12, T_UINT64 = 13
};
/* AttributeProto.AttributeType codes. */
enum {
    A_FLOAT = 1, A_INT = 2, A_STRING = 3, A_TENSOR = 4, A_GRAPH = 5, A_FLOATS = 6,
    A_INTS = 7, A_STRINGS = 8, A_TENSORS = 9, A_GRAPHS = 10, A_SPARSE = 11
};

typedef struct {
    const char *source;
    const uint8_t *base; /* start of the buffer, for byte offsets */
    nn_graph *g;
    err *e;
    char path[200];
    size_t plen;
    char *scratch;      /* NUL-terminated copy of the last string field */
    size_t scap;
    int n_nodes;        /* nodes decoded so far (for attribute tensor names) */
} dec;

/* ---- context and errors ---- */

static size_t push(dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t push(dec *d, const char *fmt, ...)
{
    size_t old = d->plen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->path + old, sizeof d->path - old, fmt, ap);
    va_end(ap);
    if (n > 0)
        d->plen = old + (size_t)n < sizeof d->path ? old + (size_t)n : sizeof d->path - 1;
    return old;
}

static void pop(dec *d, size_t old)
{
    d->plen = old;
    d->path[old] = 0;
}

static int fail(dec *d, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(dec *d, int code, const char *fmt, ...)
{
    char what[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (d->plen)
        return err_set(d->e, code, "%s: %s: %s", d->source, d->path, what);
    return err_set(d->e, code, "%s: %s", d->source, what);
}

static int pb_fail(dec *d, const pb_reader *r)
{
    return fail(d, ERR_PARSE, "%s at byte %zu", r->why ? r->why : "malformed", r->at);
}

/* A builder error reads "source: what"; insert the path after the source. */
static int rewrap(dec *d, int rc)
{
    if (!d->e)
        return rc;
    size_t n = strlen(d->source);
    const char *what = d->e->msg;
    if (strncmp(what, d->source, n) == 0 && what[n] == ':' && what[n + 1] == ' ')
        what += n + 2;
    char copy[ERR_MSG_MAX];
    snprintf(copy, sizeof copy, "%s", what);
    fail(d, rc, "%s", copy);
    return rc;
}

/* The string in a LEN field, NUL-terminated, valid until the next call. */
static const char *cstr(dec *d, const pb_field *f)
{
    if (f->len + 1 > d->scap) {
        size_t cap = f->len + 1 > 64 ? f->len + 1 : 64;
        char *s = realloc(d->scratch, cap);
        if (!s)
            return NULL;
        d->scratch = s;
        d->scap = cap;
    }
    if (f->len)
        memcpy(d->scratch, f->data, f->len);
    d->scratch[f->len] = 0;
    return d->scratch;
}

/* Names are C strings: one with a NUL byte inside would alias another name. */
static int check_name(dec *d, const pb_field *f)
{
    if (f->len && memchr(f->data, 0, f->len))
        return fail(d, ERR_PARSE, "name or op_type with a NUL byte at byte %zu",
                    (size_t)((const uint8_t *)memchr(f->data, 0, f->len) - d->base));
    return 0;
}

static char *dup_field(const pb_field *f)
{
    char *s = malloc(f->len + 1);
    if (s) {
        if (f->len)
            memcpy(s, f->data, f->len);
        s[f->len] = 0;
    }
    return s;
}

static int oom(dec *d)
{
    return fail(d, ERR_NOMEM, "out of memory");
}

static int wrong_wire(dec *d, const pb_field *f, const pb_reader *r)
{
    return fail(d, ERR_PARSE, "field %u has wire type %d at byte %zu", f->num, f->wire,
                pb_offset(r));
}

/* ---- growable arrays of values ---- */

typedef struct {
    double *v;
    int64_t n, cap;
} dvec;

typedef struct {
    int64_t *v;
    int64_t n, cap;
} ivec;

static int reserve(void **v, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    if (need > NN_MAX_ELEMS)
        return -1;
    int64_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *nv = realloc(*v, (size_t)c * elem);
    if (!nv)
        return -1;
    *v = nv;
    *cap = c;
    return 0;
}

static int dvec_reserve(dvec *a, int64_t more)
{
    return reserve((void **)&a->v, &a->cap, a->n + more, sizeof *a->v);
}

static int ivec_reserve(ivec *a, int64_t more)
{
    return reserve((void **)&a->v, &a->cap, a->n + more, sizeof *a->v);
}

static double from_f32(uint32_t bits)
{
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

static double from_f16(uint32_t h)
{
    int sign = (h >> 15) & 1, ex = (h >> 10) & 0x1f;
    double m = h & 0x3ff;
    double v = ex == 0 ? ldexp(m, -24) : ex == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, ex - 25);
    return sign ? -v : v;
}

/* Append a repeated float (fixed32), double (fixed64) or integer (varint)
 * field, packed or not. kind: 'f', 'd' or 'i'. Errors: -1 malformed, -2 size. */
static int add_values(dec *d, const pb_field *f, const pb_reader *outer, int kind, dvec *dv,
                      ivec *iv)
{
    if (f->wire == PB_LEN) {
        pb_reader r = pb_sub(outer, f);
        int64_t n = kind == 'f' ? (int64_t)(f->len / 4) : kind == 'd' ? (int64_t)(f->len / 8)
                                                                      : pb_count_varints(&r);
        if (n < 0 || (kind == 'f' && f->len % 4) || (kind == 'd' && f->len % 8))
            return fail(d, ERR_PARSE, "packed field %u of %zu bytes is malformed at byte %zu",
                        f->num, f->len, (size_t)(f->data - outer->base));
        if (kind == 'i' ? ivec_reserve(iv, n) : dvec_reserve(dv, n))
            return fail(d, ERR_NOMEM, "field %u: more than %lld values", f->num,
                        (long long)NN_MAX_ELEMS);
        for (int64_t k = 0; k < n; k++) {
            if (kind == 'f') {
                dv->v[dv->n++] = from_f32(pb_get_le32(r.p));
                r.p += 4;
            } else if (kind == 'd') {
                uint64_t u = pb_get_le64(r.p);
                memcpy(&dv->v[dv->n++], &u, 8);
                r.p += 8;
            } else {
                uint64_t u;
                if (pb_varint(&r, &u))
                    return pb_fail(d, &r);
                iv->v[iv->n++] = (int64_t)u;
            }
        }
        return 0;
    }
    int want = kind == 'f' ? PB_FIXED32 : kind == 'd' ? PB_FIXED64 : PB_VARINT;
    if (f->wire != want)
        return wrong_wire(d, f, outer);
    if (kind == 'i' ? ivec_reserve(iv, 1) : dvec_reserve(dv, 1))
        return fail(d, ERR_NOMEM, "field %u: more than %lld values", f->num,
                    (long long)NN_MAX_ELEMS);
    if (kind == 'f')
        dv->v[dv->n++] = from_f32((uint32_t)f->v);
    else if (kind == 'd')
        memcpy(&dv->v[dv->n++], &f->v, 8);
    else
        iv->v[iv->n++] = (int64_t)f->v;
    return 0;
}

/* ---- TensorProto ---- */

typedef struct {
    int rank;
    int64_t dims[NN_MAX_RANK];
    int64_t size;
    int is_int;         /* values in iv (int64) rather than dv (double) */
    dvec dv;
    ivec iv;
    pb_field name;
} tensor_val;

static void tensor_val_free(tensor_val *tv)
{
    free(tv->dv.v);
    free(tv->iv.v);
}

static const char *type_name(int64_t t)
{
    static const char *names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16",
                                  "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE",
                                  "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    return t >= 0 && t < (int64_t)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

/* Raw little-endian bytes into tv's values (one loop per type, so the hot
 * FLOAT case is a plain conversion loop). */
static void convert_raw(tensor_val *tv, int64_t type, const uint8_t *p)
{
    double *dv = tv->dv.v;
    int64_t *iv = tv->iv.v, n = tv->size;
    switch (type) {
    case T_FLOAT:
        for (int64_t k = 0; k < n; k++)
            dv[k] = from_f32(pb_get_le32(p + 4 * k));
        break;
    case T_DOUBLE:
        for (int64_t k = 0; k < n; k++) {
            uint64_t u = pb_get_le64(p + 8 * k);
            memcpy(&dv[k], &u, 8);
        }
        break;
    case T_FLOAT16:
        for (int64_t k = 0; k < n; k++)
            dv[k] = from_f16((uint32_t)p[2 * k] | (uint32_t)p[2 * k + 1] << 8);
        break;
    case T_INT64:
    case T_UINT64:
        for (int64_t k = 0; k < n; k++)
            iv[k] = (int64_t)pb_get_le64(p + 8 * k);
        break;
    case T_INT32:
        for (int64_t k = 0; k < n; k++)
            iv[k] = (int32_t)pb_get_le32(p + 4 * k);
        break;
    case T_UINT32:
        for (int64_t k = 0; k < n; k++)
            iv[k] = pb_get_le32(p + 4 * k);
        break;
    case T_INT16:
        for (int64_t k = 0; k < n; k++)
            iv[k] = (int16_t)(uint16_t)(p[2 * k] | p[2 * k + 1] << 8);
        break;
    case T_UINT16:
        for (int64_t k = 0; k < n; k++)
            iv[k] = (uint16_t)(p[2 * k] | p[2 * k + 1] << 8);
        break;
    case T_INT8:
        for (int64_t k = 0; k < n; k++)
            iv[k] = (int8_t)p[k];
        break;
    default: /* UINT8, BOOL */
        for (int64_t k = 0; k < n; k++)
            iv[k] = p[k];
        break;
    }
}

static int decode_tensor(dec *d, pb_reader r, tensor_val *tv)
{
    memset(tv, 0, sizeof *tv);
    int64_t type = 0;
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    int has_raw = 0, seen = 0; /* seen: bit per data field number */
    pb_field f;
    int rc;
    while ((rc = pb_next(&r, &f)) > 0) {
        switch (f.num) {
        case 1: { /* dims */
            ivec dims = {0};
            rc = add_values(d, &f, &r, 'i', NULL, &dims);
            if (!rc && tv->rank + dims.n > NN_MAX_RANK)
                rc = fail(d, ERR_UNSUP, "tensor rank above %d", NN_MAX_RANK);
            for (int64_t k = 0; !rc && k < dims.n; k++)
                tv->dims[tv->rank++] = dims.v[k];
            free(dims.v);
            if (rc)
                return rc;
            break;
        }
        case 2:
            if (f.wire != PB_VARINT)
                return wrong_wire(d, &f, &r);
            type = (int64_t)f.v;
            break;
        case 4: case 5: case 7: case 10: case 11:
            seen |= 1 << f.num;
            rc = add_values(d, &f, &r, f.num == 4 ? 'f' : f.num == 10 ? 'd' : 'i', &tv->dv, &tv->iv);
            if (rc)
                return rc;
            break;
        case 8:
            if (f.wire != PB_LEN)
                return wrong_wire(d, &f, &r);
            tv->name = f;
            break;
        case 9:
            if (f.wire != PB_LEN)
                return wrong_wire(d, &f, &r);
            raw = f.data;
            raw_len = f.len;
            has_raw = 1;
            break;
        case 3:
            return fail(d, ERR_UNSUP, "segmented tensors not supported");
        case 13:
            return fail(d, ERR_UNSUP, "tensor with external data not supported (store the weights in the model file)");
        case 14:
            if (f.wire == PB_VARINT && f.v == 1)
                return fail(d, ERR_UNSUP, "tensor with external data not supported (store the weights in the model file)");
            break;
        default:
            break;
        }
    }
    if (rc < 0)
        return pb_fail(d, &r);

    int width, field;
    switch (type) {
    case T_FLOAT: width = 4; field = 4; break;
    case T_DOUBLE: width = 8; field = 10; break;
    case T_FLOAT16: width = 2; field = 5; break;
    case T_INT64: width = 8; field = 7; break;
    case T_UINT64: case T_UINT32: width = type == T_UINT64 ? 8 : 4; field = 11; break;
    case T_INT32: width = 4; field = 5; break;
    case T_INT16: case T_UINT16: width = 2; field = 5; break;
    case T_INT8: case T_UINT8: case T_BOOL: width = 1; field = 5; break;
    default:
        return fail(d, ERR_UNSUP, "tensor data type %lld (%s) not supported", (long long)type,
                    type_name(type));
    }
    tv->is_int = !(type == T_FLOAT || type == T_DOUBLE || type == T_FLOAT16);
    int64_t size = 1;
    for (int i = 0; i < tv->rank; i++) {
        int64_t dm = tv->dims[i];
        if (dm < 0)
            return fail(d, ERR_PARSE, "negative tensor dimension %lld", (long long)dm);
        if (dm > NN_MAX_ELEMS || (dm > 0 && size > NN_MAX_ELEMS / dm))
            return fail(d, ERR_NOMEM, "tensor of more than %lld elements", (long long)NN_MAX_ELEMS);
        size *= dm;
    }
    tv->size = size;
    if (seen & ~(1 << field))
        return fail(d, ERR_PARSE, "%s tensor has values in the wrong field", type_name(type));
    if (has_raw) {
        if (tv->dv.n || tv->iv.n)
            return fail(d, ERR_PARSE, "tensor has both raw_data and typed data");
        if ((uint64_t)raw_len != (uint64_t)size * (uint64_t)width)
            return fail(d, ERR_SHAPE, "raw_data of %zu bytes for %lld %s values", raw_len,
                        (long long)size, type_name(type));
        if (tv->is_int ? ivec_reserve(&tv->iv, size ? size : 1) : dvec_reserve(&tv->dv, size ? size : 1))
            return oom(d);
        convert_raw(tv, type, raw);
        if (tv->is_int)
            tv->iv.n = size;
        else
            tv->dv.n = size;
    } else {
        if (type == T_FLOAT16) { /* int32_data holds the 16-bit patterns */
            if (dvec_reserve(&tv->dv, tv->iv.n))
                return oom(d);
            for (int64_t k = 0; k < tv->iv.n; k++)
                tv->dv.v[k] = from_f16((uint32_t)tv->iv.v[k] & 0xffff);
            tv->dv.n = tv->iv.n;
            tv->iv.n = 0;
        }
        int64_t n = tv->is_int ? tv->iv.n : tv->dv.n;
        if (n != size)
            return fail(d, ERR_SHAPE, "%lld values for a shape of %lld elements", (long long)n,
                        (long long)size);
    }
    if (type == T_UINT64)
        for (int64_t k = 0; k < size; k++)
            if (tv->iv.v[k] < 0)
                return fail(d, ERR_VALUE, "UINT64 value above INT64_MAX");
    return 0;
}

/* Give graph tensor t the shape and values of tv. The value array moves into
 * the graph instead of being copied by nn_tensor_set_float (large weights
 * would otherwise cost a second allocation, page faults and a copy). */
static int put_tensor(dec *d, int t, tensor_val *tv)
{
    int rc = nn_tensor_set_shape(d->g, t, tv->rank, tv->dims, d->e);
    if (rc)
        return rewrap(d, rc);
    nn_tensor *ts = &d->g->tensors[t];
    if (ts->size != tv->size)
        return fail(d, ERR_SHAPE, "tensor '%s': %lld values for shape of size %lld", ts->name,
                    (long long)tv->size, (long long)ts->size);
    if (tv->is_int ? ivec_reserve(&tv->iv, 1) : dvec_reserve(&tv->dv, 1))
        return oom(d); /* an empty tensor still gets a non-NULL array */
    free(ts->data);
    free(ts->idata);
    ts->data = NULL;
    ts->idata = NULL;
    if (tv->is_int) {
        ts->idata = tv->iv.v;
        tv->iv.v = NULL;
        ts->dtype = NN_INT64;
    } else {
        ts->data = tv->dv.v;
        tv->dv.v = NULL;
        ts->dtype = NN_FLOAT;
    }
    return 0;
}

static int decode_initializer(dec *d, pb_reader r)
{
    tensor_val tv;
    int rc = decode_tensor(d, r, &tv);
    if (!rc)
        rc = check_name(d, &tv.name);
    if (!rc) {
        const char *name = cstr(d, &tv.name);
        if (!name)
            rc = oom(d);
        else if (!*name)
            rc = fail(d, ERR_PARSE, "initializer without a name");
        else {
            int t = nn_graph_tensor(d->g, name, d->e);
            rc = t < 0 ? rewrap(d, d->e ? d->e->code : ERR_NOMEM) : put_tensor(d, t, &tv);
        }
    }
    tensor_val_free(&tv);
    return rc;
}

/* ---- AttributeProto ---- */

static int attr_tensor_name(dec *d, int k, const char *attr, char **out)
{
    const nn_node *n = &d->g->nodes[k];
    const char *base = n->n_out > 0 ? d->g->tensors[n->out[0]].name : n->name;
    size_t len = strlen(base) + strlen(attr) + 48;
    char *s = malloc(len);
    if (!s)
        return oom(d);
    if (*base)
        snprintf(s, len, "%s/%s", base, attr);
    else
        snprintf(s, len, "node%d/%s", k, attr);
    size_t stem = strlen(s);
    for (int j = 1; nn_graph_find(d->g, s) >= 0; j++)
        snprintf(s + stem, len - stem, "#%d", j);
    *out = s;
    return 0;
}

static int decode_attribute(dec *d, int k, pb_reader r)
{
    pb_field f, name = {0}, s = {0}, t = {0};
    int64_t type = 0, i = 0;
    double fv = 0;
    int has_name = 0, has_f = 0, has_i = 0, has_s = 0, has_t = 0, has_strings = 0;
    dvec floats = {0};
    ivec ints = {0};
    int rc;
    while ((rc = pb_next(&r, &f)) > 0) {
        int bad = 0, res = 0;
        switch (f.num) {
        case 1: bad = f.wire != PB_LEN; name = f; has_name = 1; break;
        case 20: bad = f.wire != PB_VARINT; type = (int64_t)f.v; break;
        case 2: bad = f.wire != PB_FIXED32; fv = from_f32((uint32_t)f.v); has_f = 1; break;
        case 3: bad = f.wire != PB_VARINT; i = (int64_t)f.v; has_i = 1; break;
        case 4: bad = f.wire != PB_LEN; s = f; has_s = 1; break;
        case 5: bad = f.wire != PB_LEN; t = f; has_t = 1; break;
        case 7: res = add_values(d, &f, &r, 'f', &floats, NULL); break;
        case 8: res = add_values(d, &f, &r, 'i', NULL, &ints); break;
        case 9: has_strings = 1; break;
        case 6: case 10: case 11: case 22: case 23:
            res = fail(d, ERR_UNSUP, "graph, tensor-list or sparse attributes not supported");
            break;
        default: break;
        }
        if (bad)
            res = wrong_wire(d, &f, &r);
        if (res) {
            rc = res;
            goto done;
        }
    }
    if (rc < 0) {
        rc = pb_fail(d, &r);
        goto done;
    }
    if (!has_name) {
        rc = fail(d, ERR_PARSE, "attribute without a name");
        goto done;
    }
    if ((rc = check_name(d, &name)) != 0)
        goto done;
    if (type == 0) /* old files omit the type: infer it from the field present */
        type = has_t ? A_TENSOR : has_s ? A_STRING : floats.n ? A_FLOATS : ints.n ? A_INTS
             : has_f ? A_FLOAT : has_i ? A_INT : has_strings ? A_STRINGS : 0;
    char *an = dup_field(&name);
    if (!an) {
        rc = oom(d);
        goto done;
    }
    switch (type) {
    case A_FLOAT: rc = nn_node_attr_float(d->g, k, an, fv, d->e); break;
    case A_INT: rc = nn_node_attr_int(d->g, k, an, i, d->e); break;
    case A_STRING: {
        const char *sv = cstr(d, &s);
        rc = sv ? nn_node_attr_string(d->g, k, an, sv, d->e) : oom(d);
        break;
    }
    case A_FLOATS: rc = nn_node_attr_floats(d->g, k, an, floats.v, floats.n, d->e); break;
    case A_INTS: rc = nn_node_attr_ints(d->g, k, an, ints.v, ints.n, d->e); break;
    case A_TENSOR: {
        if (!has_t) {
            rc = fail(d, ERR_PARSE, "TENSOR attribute without a tensor");
            break;
        }
        size_t old = push(d, ".t");
        tensor_val tv;
        char *tn = NULL;
        rc = decode_tensor(d, pb_sub(&r, &t), &tv);
        if (!rc)
            rc = attr_tensor_name(d, k, an, &tn);
        if (!rc) {
            int ti = nn_graph_tensor(d->g, tn, d->e);
            rc = ti < 0 ? rewrap(d, d->e ? d->e->code : ERR_NOMEM) : put_tensor(d, ti, &tv);
            pop(d, old);
            if (!rc)
                rc = nn_node_attr_tensor(d->g, k, an, ti, d->e);
        }
        pop(d, old);
        free(tn);
        tensor_val_free(&tv);
        break;
    }
    case A_STRINGS:
        rc = fail(d, ERR_UNSUP, "attribute '%s': STRINGS attributes not supported", an);
        break;
    default:
        rc = fail(d, ERR_UNSUP, "attribute '%s': type %lld not supported", an, (long long)type);
        break;
    }
    if (rc && d->e && strncmp(d->e->msg, d->source, strlen(d->source)) == 0 &&
        !strstr(d->e->msg, ".attribute["))
        rewrap(d, rc);
    free(an);
done:
    free(floats.v);
    free(ints.v);
    return rc;
}

/* ---- NodeProto ---- */

typedef struct {
    int *v;
    int n, cap;
} list;

static int list_push(list *l, int x)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        int *nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

static int decode_node(dec *d, pb_reader r)
{
    list in = {0}, out = {0};
    pb_field f, name = {0}, op = {0}, domain = {0};
    pb_field *attrs = NULL;
    int n_attrs = 0, has_op = 0, rc, k = d->n_nodes;
    char *op_type = NULL, *node_name = NULL;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.num == 1 || f.num == 2 || f.num == 3 || f.num == 4 || f.num == 5 || f.num == 7) {
            if (f.wire != PB_LEN) {
                rc = wrong_wire(d, &f, &r);
                goto done;
            }
            if (f.num != 5 && (rc = check_name(d, &f)) != 0)
                goto done;
        }
        if (f.num == 1 || f.num == 2) {
            list *l = f.num == 1 ? &in : &out;
            if (l->n >= 1024) {
                rc = fail(d, ERR_PARSE, "more than 1024 %s", f.num == 1 ? "inputs" : "outputs");
                goto done;
            }
            const char *s = cstr(d, &f);
            char unused[64];
            if (s && !*s && f.num == 2) { /* omitted optional output */
                snprintf(unused, sizeof unused, "node%d/unused%d", k, out.n);
                s = unused;
            }
            int t = !s ? -2 : !*s ? -1 : nn_graph_tensor(d->g, s, d->e);
            if (t == -2) {
                rc = oom(d);
                goto done;
            }
            if (t < 0 && *s) {
                rc = rewrap(d, d->e ? d->e->code : ERR_NOMEM);
                goto done;
            }
            if (list_push(l, t)) {
                rc = oom(d);
                goto done;
            }
        } else if (f.num == 3) {
            name = f;
        } else if (f.num == 4) {
            op = f;
            has_op = 1;
        } else if (f.num == 7) {
            domain = f;
        } else if (f.num == 5) {
            if (n_attrs >= 256) {
                rc = fail(d, ERR_PARSE, "more than 256 attributes");
                goto done;
            }
            pb_field *na = realloc(attrs, (size_t)(n_attrs + 1) * sizeof *na);
            if (!na) {
                rc = oom(d);
                goto done;
            }
            attrs = na;
            attrs[n_attrs++] = f;
        }
    }
    if (rc < 0) {
        rc = pb_fail(d, &r);
        goto done;
    }
    rc = 0;
    if (!has_op || op.len == 0) {
        rc = fail(d, ERR_PARSE, "node without op_type");
        goto done;
    }
    op_type = malloc(domain.len + op.len + 2);
    node_name = dup_field(&name);
    if (!op_type || !node_name) {
        rc = oom(d);
        goto done;
    }
    /* Ops of another domain keep it as a prefix, so that finalize rejects them
     * by name instead of taking them for standard ops. */
    if (domain.len && !(domain.len == 7 && memcmp(domain.data, "ai.onnx", 7) == 0)) {
        memcpy(op_type, domain.data, domain.len);
        op_type[domain.len] = '.';
        memcpy(op_type + domain.len + 1, op.data, op.len);
        op_type[domain.len + 1 + op.len] = 0;
    } else {
        memcpy(op_type, op.data, op.len);
        op_type[op.len] = 0;
    }
    k = nn_graph_add_node(d->g, op_type, node_name, in.n, in.v, out.n, out.v, d->e);
    if (k < 0) {
        rc = rewrap(d, k);
        goto done;
    }
    d->n_nodes++;
    for (int a = 0; a < n_attrs && !rc; a++) {
        size_t old = push(d, ".attribute[%d]", a);
        rc = decode_attribute(d, k, pb_sub(&r, &attrs[a]));
        pop(d, old);
    }
done:
    free(in.v);
    free(out.v);
    free(attrs);
    free(op_type);
    free(node_name);
    return rc;
}

/* ---- ValueInfoProto (graph inputs and outputs) ---- */

static int decode_shape(dec *d, pb_reader r, int *rank, int64_t *dims)
{
    pb_field f;
    int rc;
    *rank = 0;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.num != 1)
            continue;
        if (f.wire != PB_LEN)
            return wrong_wire(d, &f, &r);
        if (*rank >= NN_MAX_RANK)
            return fail(d, ERR_UNSUP, "rank above %d", NN_MAX_RANK);
        pb_reader dr = pb_sub(&r, &f);
        pb_field g;
        int64_t dim = -1; /* dim_param or nothing: symbolic */
        while ((rc = pb_next(&dr, &g)) > 0)
            if (g.num == 1 && g.wire == PB_VARINT) {
                dim = (int64_t)g.v;
                if (dim < 0)
                    return fail(d, ERR_PARSE, "negative dimension %lld", (long long)dim);
            }
        if (rc < 0)
            return pb_fail(d, &dr);
        dims[(*rank)++] = dim;
    }
    return rc < 0 ? pb_fail(d, &r) : 0;
}

static int decode_value_info(dec *d, pb_reader r, int output)
{
    pb_field f, name = {0};
    int rc, rank = -1, elem = 0, has_name = 0;
    int64_t dims[NN_MAX_RANK];
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.num == 1 && f.wire == PB_LEN) {
            name = f;
            has_name = 1;
        } else if (f.num == 2 && f.wire == PB_LEN) { /* TypeProto */
            pb_reader tr = pb_sub(&r, &f);
            pb_field tf;
            while ((rc = pb_next(&tr, &tf)) > 0) {
                if (tf.num == 4 || tf.num == 5 || tf.num == 8 || tf.num == 9)
                    return fail(d, ERR_UNSUP, "only tensor-typed inputs and outputs are supported");
                if (tf.num != 1 || tf.wire != PB_LEN)
                    continue;
                pb_reader xr = pb_sub(&tr, &tf);
                pb_field xf;
                while ((rc = pb_next(&xr, &xf)) > 0) {
                    if (xf.num == 1 && xf.wire == PB_VARINT)
                        elem = (int)(xf.v & 0xff);
                    else if (xf.num == 2 && xf.wire == PB_LEN) {
                        size_t old = push(d, ".type.shape");
                        rc = decode_shape(d, pb_sub(&xr, &xf), &rank, dims);
                        pop(d, old);
                        if (rc)
                            return rc;
                    }
                }
                if (rc < 0)
                    return pb_fail(d, &xr);
            }
            if (rc < 0)
                return pb_fail(d, &tr);
        }
    }
    if (rc < 0)
        return pb_fail(d, &r);
    if (has_name && (rc = check_name(d, &name)) != 0)
        return rc;
    const char *s = has_name ? cstr(d, &name) : NULL;
    if (has_name && !s)
        return oom(d);
    if (!s || !*s)
        return fail(d, ERR_PARSE, "%s without a name", output ? "output" : "input");
    int t = nn_graph_tensor(d->g, s, d->e);
    if (t < 0)
        return rewrap(d, d->e ? d->e->code : ERR_NOMEM);
    nn_tensor *ts = &d->g->tensors[t];
    if (!ts->data && !ts->idata) { /* an initializer keeps its own shape */
        if (rank >= 0 && (rc = nn_tensor_set_shape(d->g, t, rank, dims, d->e)))
            return rewrap(d, rc);
        if (elem == T_INT64 || elem == T_INT32)
            ts->dtype = NN_INT64;
    }
    rc = output ? nn_graph_add_output(d->g, t, d->e) : nn_graph_add_input(d->g, t, d->e);
    return rc ? rewrap(d, rc) : 0;
}

/* ---- GraphProto and ModelProto ---- */

static int decode_graph(dec *d, pb_reader r)
{
    pb_field f;
    int rc, n_node = 0, n_init = 0, n_in = 0, n_out = 0;
    while ((rc = pb_next(&r, &f)) > 0) {
        int sub = f.num == 1 || f.num == 5 || f.num == 11 || f.num == 12;
        if (sub && f.wire != PB_LEN)
            return wrong_wire(d, &f, &r);
        size_t old = d->plen;
        int res = 0;
        if ((f.num == 11 && n_in >= NN_MAX_NODES) || (f.num == 12 && n_out >= NN_MAX_NODES))
            return fail(d, ERR_NOMEM, "more than %d graph inputs or outputs", NN_MAX_NODES);
        if (f.num == 1) {
            push(d, ".node[%d]", n_node++);
            res = decode_node(d, pb_sub(&r, &f));
        } else if (f.num == 5) {
            push(d, ".initializer[%d]", n_init++);
            res = decode_initializer(d, pb_sub(&r, &f));
        } else if (f.num == 11) {
            push(d, ".input[%d]", n_in++);
            res = decode_value_info(d, pb_sub(&r, &f), 0);
        } else if (f.num == 12) {
            push(d, ".output[%d]", n_out++);
            res = decode_value_info(d, pb_sub(&r, &f), 1);
        } else if (f.num == 15) {
            res = fail(d, ERR_UNSUP, "sparse initializers not supported");
        }
        pop(d, old);
        if (res)
            return res;
    }
    return rc < 0 ? pb_fail(d, &r) : 0;
}

static int decode_opset(dec *d, pb_reader r)
{
    pb_field f, domain = {0};
    int64_t version = 0;
    int rc;
    while ((rc = pb_next(&r, &f)) > 0) {
        if (f.num == 1 && f.wire == PB_LEN)
            domain = f;
        else if (f.num == 2 && f.wire == PB_VARINT)
            version = (int64_t)f.v;
    }
    if (rc < 0)
        return pb_fail(d, &r);
    if (domain.len == 0 || (domain.len == 7 && memcmp(domain.data, "ai.onnx", 7) == 0))
        d->g->opset = version;
    return 0;
}

static int decode_model(dec *d, pb_reader r)
{
    pb_field f;
    int rc, graphs = 0, n_opset = 0;
    while ((rc = pb_next(&r, &f)) > 0) {
        size_t old = d->plen;
        int res = 0;
        if (f.num == 1 && f.wire == PB_VARINT) {
            d->g->ir_version = (int64_t)f.v;
        } else if (f.num == 2 && f.wire == PB_LEN) {
            char *s = dup_field(&f);
            if (!s)
                return oom(d);
            free(d->g->producer_name);
            d->g->producer_name = s;
        } else if (f.num == 8 && f.wire == PB_LEN) {
            push(d, "opset_import[%d]", n_opset++);
            res = decode_opset(d, pb_sub(&r, &f));
        } else if (f.num == 7 && f.wire == PB_LEN) {
            push(d, "graph");
            res = decode_graph(d, pb_sub(&r, &f));
            graphs++;
        } else if (f.num == 1 || f.num == 2 || f.num == 7 || f.num == 8) {
            res = wrong_wire(d, &f, &r);
        }
        pop(d, old);
        if (res)
            return res;
    }
    if (rc < 0)
        return pb_fail(d, &r);
    if (!graphs)
        return fail(d, ERR_PARSE, "no graph in the model (is this an ONNX file?)");
    return 0;
}

int nn_onnx_decode(const char *source, const uint8_t *buf, size_t len, nn_graph **out, err *e)
{
    *out = NULL;
    if (!source)
        source = "<memory>";
    if (!buf && len)
        return err_set(e, ERR_ARG, "%s: no buffer", source);
    dec d = {0};
    d.source = source;
    d.base = buf;
    d.e = e;
    d.g = nn_graph_new(source);
    if (!d.g)
        return err_set(e, ERR_NOMEM, "%s: out of memory", source);
    int rc = decode_model(&d, pb_reader_init(buf ? buf : (const uint8_t *)"", len));
    free(d.scratch);
    if (rc) {
        nn_graph_free(d.g);
        return rc;
    }
    *out = d.g;
    return 0;
}

int nn_load_onnx_buffer(const char *source, const uint8_t *buf, size_t len, nn_graph **out,
                        err *e)
{
    nn_graph *g;
    int rc = nn_onnx_decode(source, buf, len, &g, e);
    if (rc)
        return rc;
    rc = nn_graph_finalize(g, e);
    if (rc) {
        nn_graph_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* ---- encoding ---- */

static int all_float32(const double *v, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        if (!isnan(v[k]) && (double)(float)v[k] != v[k])
            return 0;
    return 1;
}

static void put_tensor_proto(pb_buf *b, uint32_t num, const nn_tensor *t)
{
    pb_buf m = {0};
    for (int i = 0; i < t->rank; i++)
        pb_put_uint(&m, 1, (uint64_t)t->dims[i]);
    int is_int = t->idata != NULL;
    int f32 = !is_int && all_float32(t->data, t->size);
    pb_put_uint(&m, 2, is_int ? T_INT64 : f32 ? T_FLOAT : T_DOUBLE);
    pb_put_string(&m, 8, t->name);
    size_t width = f32 ? 4 : 8;
    uint8_t *raw = malloc(t->size ? (size_t)t->size * width : 1);
    if (!raw) {
        m.failed = 1;
    } else {
        for (int64_t k = 0; k < t->size; k++) {
            if (is_int) {
                pb_le64(raw + 8 * k, (uint64_t)t->idata[k]);
            } else if (f32) {
                float x = (float)t->data[k];
                uint32_t u;
                memcpy(&u, &x, 4);
                pb_le32(raw + 4 * k, u);
            } else {
                uint64_t u;
                memcpy(&u, &t->data[k], 8);
                pb_le64(raw + 8 * k, u);
            }
        }
        pb_put_bytes(&m, 9, raw, (size_t)t->size * width);
        free(raw);
    }
    pb_put_message(b, num, &m);
}

static void put_value_info(pb_buf *b, uint32_t num, const nn_tensor *t)
{
    pb_buf vi = {0}, type = {0}, tensor = {0}, shape = {0};
    pb_put_string(&vi, 1, t->name);
    pb_put_uint(&tensor, 1, t->dtype == NN_INT64 ? T_INT64 : T_FLOAT);
    if (t->rank >= 0) {
        for (int i = 0; i < t->rank; i++) {
            pb_buf dim = {0};
            if (t->dims[i] >= 0)
                pb_put_uint(&dim, 1, (uint64_t)t->dims[i]);
            else
                pb_put_string(&dim, 2, "N");
            pb_put_message(&shape, 1, &dim);
        }
        pb_put_message(&tensor, 2, &shape);
    }
    pb_put_message(&type, 1, &tensor);
    pb_put_message(&vi, 2, &type);
    pb_put_message(b, num, &vi);
}

static void put_attr(pb_buf *b, const nn_graph *g, const nn_attr *a)
{
    pb_buf m = {0};
    pb_put_string(&m, 1, a->name);
    switch (a->kind) {
    case NN_ATTR_INT:
        pb_put_uint(&m, 20, A_INT);
        pb_put_uint(&m, 3, (uint64_t)a->i);
        break;
    case NN_ATTR_FLOAT:
        pb_put_uint(&m, 20, A_FLOAT);
        pb_put_float(&m, 2, (float)a->f);
        break;
    case NN_ATTR_STRING:
        pb_put_uint(&m, 20, A_STRING);
        pb_put_string(&m, 4, a->s ? a->s : "");
        break;
    case NN_ATTR_INTS: {
        pb_buf p = {0};
        for (int64_t k = 0; k < a->n; k++)
            pb_put_varint(&p, (uint64_t)a->ints[k]);
        pb_put_uint(&m, 20, A_INTS);
        pb_put_message(&m, 8, &p);
        break;
    }
    case NN_ATTR_FLOATS: {
        pb_buf p = {0};
        for (int64_t k = 0; k < a->n; k++) {
            float x = (float)a->floats[k];
            uint32_t u;
            uint8_t le[4];
            memcpy(&u, &x, 4);
            pb_le32(le, u);
            pb_put_raw(&p, le, 4);
        }
        pb_put_uint(&m, 20, A_FLOATS);
        pb_put_message(&m, 7, &p);
        break;
    }
    case NN_ATTR_TENSOR:
        pb_put_uint(&m, 20, A_TENSOR);
        if (a->tensor >= 0 && a->tensor < g->n_tensors)
            put_tensor_proto(&m, 5, &g->tensors[a->tensor]);
        break;
    }
    pb_put_message(b, 5, &m);
}

static void put_node(pb_buf *b, const nn_graph *g, const nn_node *n)
{
    pb_buf m = {0};
    for (int i = 0; i < n->n_in; i++)
        pb_put_string(&m, 1, n->in[i] >= 0 ? g->tensors[n->in[i]].name : "");
    for (int i = 0; i < n->n_out; i++)
        pb_put_string(&m, 2, g->tensors[n->out[i]].name);
    if (n->name && *n->name)
        pb_put_string(&m, 3, n->name);
    pb_put_string(&m, 4, n->op_type ? n->op_type : nn_op_name(n->op));
    for (int a = 0; a < n->n_attr; a++)
        put_attr(&m, g, &n->attr[a]);
    pb_put_message(b, 1, &m);
}

int nn_onnx_encode(const nn_graph *g, uint8_t **buf, size_t *len, err *e)
{
    *buf = NULL;
    *len = 0;
    /* A constant referenced only by an attribute (a Constant node's value)
     * is written inside the attribute, not as an initializer. */
    char *use = calloc((size_t)(g->n_tensors ? g->n_tensors : 1), 1); /* 1 data use, 2 attribute */
    if (!use)
        return err_set(e, ERR_NOMEM, "%s: out of memory", g->source);
    for (int k = 0; k < g->n_nodes; k++) {
        const nn_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] >= 0)
                use[n->in[i]] |= 1;
        for (int a = 0; a < n->n_attr; a++)
            if (n->attr[a].kind == NN_ATTR_TENSOR && n->attr[a].tensor >= 0)
                use[n->attr[a].tensor] |= 2;
    }
    for (int i = 0; i < g->n_inputs; i++)
        use[g->inputs[i]] |= 1;
    for (int i = 0; i < g->n_outputs; i++)
        use[g->outputs[i]] |= 1;

    pb_buf graph = {0}, model = {0}, opset = {0};
    for (int k = 0; k < g->n_nodes; k++)
        put_node(&graph, g, &g->nodes[k]);
    pb_put_string(&graph, 2, "nnv");
    for (int t = 0; t < g->n_tensors; t++) {
        const nn_tensor *ts = &g->tensors[t];
        if ((ts->data || ts->idata) && ts->rank >= 0 && use[t] != 2)
            put_tensor_proto(&graph, 5, ts);
    }
    for (int i = 0; i < g->n_inputs; i++)
        put_value_info(&graph, 11, &g->tensors[g->inputs[i]]);
    for (int i = 0; i < g->n_outputs; i++)
        put_value_info(&graph, 12, &g->tensors[g->outputs[i]]);
    free(use);

    pb_put_uint(&model, 1, (uint64_t)(g->ir_version > 0 ? g->ir_version : 8));
    pb_put_string(&model, 2, "nnv");
    pb_put_message(&model, 7, &graph);
    pb_put_uint(&opset, 2, (uint64_t)(g->opset > 0 ? g->opset : 13));
    pb_put_message(&model, 8, &opset);
    if (model.failed) {
        pb_buf_free(&model);
        return err_set(e, ERR_NOMEM, "%s: out of memory while encoding ONNX", g->source);
    }
    *buf = model.data;
    *len = model.len;
    return 0;
}

int nn_save_onnx(const nn_graph *g, const char *path, err *e)
{
    uint8_t *buf;
    size_t len;
    int rc = nn_onnx_encode(g, &buf, &len, e);
    if (rc)
        return rc;
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(buf);
        return err_set(e, ERR_IO, "%s: cannot open for writing", path);
    }
    size_t w = fwrite(buf, 1, len, fp);
    int bad = w != len;
    if (fclose(fp) != 0)
        bad = 1;
    free(buf);
    return bad ? err_set(e, ERR_IO, "%s: write failed", path) : 0;
}
