/* json.c: the project's JSON model format (docs/json-format.md).
 *
 * Reading: cJSON parses the text, the tree is checked field by field (unknown or
 * duplicate fields are errors) and turned into a raw graph with the builder API,
 * which nn_graph_finalize() then makes usable. Every error names the file and a
 * JSON path ("m.json: nodes[3].attributes.kernel_shape: expected a list of
 * integers"); syntax errors name line and column.
 * Writing: a small emitter, deterministic, so JSON -> graph -> JSON is
 * byte-identical. Each double is written as the shortest of %.15g/%.16g/%.17g
 * that strtod reads back to the identical double; int64 values beyond 2^53 are
 * written as strings (JSON numbers are doubles). Attributes are typed
 * ({"int": 1} vs {"float": 1}) so nothing is lost to JSON's single number type. */
#include "nn.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Largest JSON text accepted (after gunzip): parsing costs ~80 bytes per number. */
#define JSON_MAX_BYTES ((size_t)256 << 20)
#define JSON_MAX_ATTRS 256
#define JSON_MAX_NODE_IO 1024
#define TWO_53 9007199254740992.0

/* ------------------------------------------------------------------ reading */

typedef struct {
    nn_graph *g;
    err *e;
    char where[320]; /* JSON path of the last error, for its line number */
} reader;

static int fail(reader *r, int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(reader *r, int code, const char *where, const char *fmt, ...)
{
    char what[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(r->where, sizeof r->where, "%s", where);
    return err_set(r->e, code, "%s: %s: %.200s", r->g->source, where, what);
}

/* Builder errors already name the file; add the JSON path after it. */
static int fail_builder(reader *r, int rc, const char *where)
{
    snprintf(r->where, sizeof r->where, "%s", where);
    if (!r->e)
        return rc;
    const char *src = r->g->source;
    size_t n = strlen(src);
    char rest[ERR_MSG_MAX];
    const char *m = r->e->msg;
    if (strncmp(m, src, n) == 0 && m[n] == ':' && m[n + 1] == ' ')
        m += n + 2;
    snprintf(rest, sizeof rest, "%s", m);
    return err_set(r->e, rc, "%s: %s: %.300s", src, where, rest);
}

/* Look up the fields of an object: keys[] is NULL-terminated, found[i] is the
 * member named keys[i] or NULL. Unknown and duplicate fields are errors;
 * required[] (optional, NULL-terminated) lists fields that must be present. */
static int get_fields(reader *r, const cJSON *obj, const char *where, const char *const *keys,
                      const char *const *required, const cJSON **found)
{
    if (!cJSON_IsObject(obj))
        return fail(r, ERR_PARSE, where, "expected an object");
    int nkeys = 0;
    while (keys[nkeys])
        found[nkeys++] = NULL;
    const cJSON *m;
    cJSON_ArrayForEach(m, obj) {
        int i = 0;
        while (i < nkeys && strcmp(keys[i], m->string) != 0)
            i++;
        if (i == nkeys)
            return fail(r, ERR_PARSE, where, "unknown field '%.60s'", m->string);
        if (found[i])
            return fail(r, ERR_PARSE, where, "duplicate field '%s'", keys[i]);
        found[i] = m;
    }
    for (int j = 0; required && required[j]; j++) {
        int i = 0;
        while (i < nkeys && strcmp(keys[i], required[j]) != 0)
            i++;
        if (i == nkeys || !found[i])
            return fail(r, ERR_PARSE, where, "missing field '%s'", required[j]);
    }
    return 0;
}

/* A decimal int64 string: optional '-', digits, nothing else. */
static int int_string(const char *s, int64_t *out)
{
    if (!((s[0] == '-' && s[1] >= '0' && s[1] <= '9') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return 0;
    *out = v;
    return 1;
}

/* An int64: a JSON number that is an integer with |v| <= 2^53, or a decimal string. */
static int get_int(reader *r, const cJSON *it, const char *where, int64_t *out)
{
    if (cJSON_IsNumber(it)) {
        double v = it->valuedouble;
        if (!isfinite(v) || v != floor(v))
            return fail(r, ERR_PARSE, where, "expected an integer");
        if (fabs(v) > TWO_53)
            return fail(r, ERR_PARSE, where,
                        "integer beyond 2^53 must be written as a string to be exact");
        *out = (int64_t)v;
        return 0;
    }
    if (cJSON_IsString(it)) {
        if (int_string(it->valuestring, out))
            return 0;
        return fail(r, ERR_PARSE, where, "expected an integer, got the string \"%.40s\"",
                    it->valuestring);
    }
    return fail(r, ERR_PARSE, where, "expected an integer");
}

static int get_double(reader *r, const cJSON *it, const char *where, double *out)
{
    if (!cJSON_IsNumber(it))
        return fail(r, ERR_PARSE, where, "expected a number");
    if (!isfinite(it->valuedouble))
        return fail(r, ERR_PARSE, where, "number out of range");
    *out = it->valuedouble;
    return 0;
}

static int get_string(reader *r, const cJSON *it, const char *where, int nonempty,
                      const char **out)
{
    if (!cJSON_IsString(it))
        return fail(r, ERR_PARSE, where, "expected a string");
    if (nonempty && !it->valuestring[0])
        return fail(r, ERR_PARSE, where, "empty name");
    *out = it->valuestring;
    return 0;
}

static int get_dtype(reader *r, const cJSON *it, const char *where, nn_dtype *out)
{
    const char *s = "";
    int rc = get_string(r, it, where, 0, &s);
    if (rc)
        return rc;
    if (strcmp(s, "float") == 0)
        *out = NN_FLOAT;
    else if (strcmp(s, "int64") == 0)
        *out = NN_INT64;
    else
        return fail(r, ERR_UNSUP, where, "unknown dtype \"%.40s\" (expected \"float\" or \"int64\")", s);
    return 0;
}

/* A shape: a list of at most NN_MAX_RANK dimensions, each an integer >= 0 or (if
 * symbolic is allowed) a string naming a symbolic dimension, stored as -1. The
 * product of the static dimensions is checked against NN_MAX_ELEMS. */
static int get_shape(reader *r, const cJSON *it, const char *where, int symbolic, int *rank,
                     int64_t *dims, int64_t *size)
{
    if (!cJSON_IsArray(it))
        return fail(r, ERR_PARSE, where, "expected a list of dimensions");
    int n = 0;
    int64_t prod = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, it) {
        if (n == NN_MAX_RANK)
            return fail(r, ERR_UNSUP, where, "rank above %d not supported", NN_MAX_RANK);
        char w[300];
        snprintf(w, sizeof w, "%s[%d]", where, n);
        int64_t dummy;
        if (cJSON_IsString(d) && !int_string(d->valuestring, &dummy)) {
            if (!symbolic)
                return fail(r, ERR_PARSE, w, "symbolic dimension not allowed here");
            dims[n++] = -1;
            continue;
        }
        int64_t v = 0;
        int rc = get_int(r, d, w, &v);
        if (rc)
            return rc;
        if (v < 0)
            return fail(r, ERR_PARSE, w, "negative dimension %lld", (long long)v);
        if (v > NN_MAX_ELEMS || (v > 0 && prod > NN_MAX_ELEMS / v))
            return fail(r, ERR_NOMEM, where, "more than %lld elements", (long long)NN_MAX_ELEMS);
        prod *= v;
        dims[n++] = v;
    }
    *rank = n;
    if (size)
        *size = prod;
    return 0;
}

/* Values of a list of numbers (ints if ivals, else floats); n must match. */
static int get_values(reader *r, const cJSON *it, const char *where, int64_t n, double **fvals,
                      int64_t **ivals, const char *what)
{
    if (!cJSON_IsArray(it))
        return fail(r, ERR_PARSE, where, "expected a list of %s", what);
    int64_t count = cJSON_GetArraySize(it);
    if (n >= 0 && count != n)
        return fail(r, ERR_SHAPE, where, "%lld values for a shape of %lld elements",
                    (long long)count, (long long)n);
    if (count > NN_MAX_ELEMS)
        return fail(r, ERR_NOMEM, where, "more than %lld values", (long long)NN_MAX_ELEMS);
    size_t bytes = (size_t)(count ? count : 1) * 8;
    void *buf = malloc(bytes);
    if (!buf)
        return fail(r, ERR_NOMEM, where, "out of memory");
    int64_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, it) {
        if (ivals) {
            if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
                fabs(v->valuedouble) <= TWO_53) {
                ((int64_t *)buf)[i++] = (int64_t)v->valuedouble; /* fast path */
                continue;
            }
            char w[300];
            snprintf(w, sizeof w, "%s[%lld]", where, (long long)i);
            int rc = get_int(r, v, w, &((int64_t *)buf)[i]);
            if (rc) {
                free(buf);
                return rc;
            }
        } else {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
                free(buf);
                char w[300];
                snprintf(w, sizeof w, "%s[%lld]", where, (long long)i);
                return fail(r, ERR_PARSE, w, "%s",
                            cJSON_IsNumber(v) ? "number out of range" : "expected a number");
            }
            ((double *)buf)[i] = v->valuedouble;
        }
        i++;
    }
    if (ivals)
        *ivals = buf;
    else
        *fvals = buf;
    return 0;
}

/* A constant tensor {"name", "dtype", "shape", "data"} made into graph tensor
 * *out. dflt_name is the name to use when the object has none (attributes only). */
static int read_tensor(reader *r, const cJSON *obj, const char *where, const char *dflt_name,
                       int *out)
{
    static const char *const keys[] = {"name", "dtype", "shape", "data", NULL};
    static const char *const req_named[] = {"name", "dtype", "shape", "data", NULL};
    static const char *const req_anon[] = {"dtype", "shape", "data", NULL};
    const cJSON *f[4];
    int rc = get_fields(r, obj, where, keys, dflt_name ? req_anon : req_named, f);
    if (rc)
        return rc;
    char w[300];
    const char *name = dflt_name;
    if (f[0]) {
        snprintf(w, sizeof w, "%s.name", where);
        if ((rc = get_string(r, f[0], w, 1, &name)))
            return rc;
        if (nn_graph_find(r->g, name) >= 0)
            return fail(r, ERR_PARSE, w, "tensor name '%.80s' already used", name);
    }
    nn_dtype dt = NN_FLOAT;
    snprintf(w, sizeof w, "%s.dtype", where);
    if ((rc = get_dtype(r, f[1], w, &dt)))
        return rc;
    int rank = 0;
    int64_t dims[NN_MAX_RANK], size = 0;
    snprintf(w, sizeof w, "%s.shape", where);
    if ((rc = get_shape(r, f[2], w, 0, &rank, dims, &size)))
        return rc;
    double *fv = NULL;
    int64_t *iv = NULL;
    snprintf(w, sizeof w, "%s.data", where);
    if ((rc = get_values(r, f[3], w, size, &fv, dt == NN_INT64 ? &iv : NULL,
                         dt == NN_INT64 ? "integers" : "numbers")))
        return rc;
    int t = nn_graph_tensor(r->g, name, r->e);
    if (t < 0)
        rc = fail_builder(r, r->e ? r->e->code : ERR_NOMEM, where);
    else if ((rc = nn_tensor_set_shape(r->g, t, rank, dims, r->e)) == 0)
        rc = dt == NN_INT64 ? nn_tensor_set_int(r->g, t, iv, size, r->e)
                            : nn_tensor_set_float(r->g, t, fv, size, r->e);
    if (rc && t >= 0)
        rc = fail_builder(r, rc, where);
    free(fv);
    free(iv);
    *out = t;
    return rc;
}

static int read_initializers(reader *r, const cJSON *list)
{
    if (!list)
        return 0;
    if (!cJSON_IsArray(list))
        return fail(r, ERR_PARSE, "initializers", "expected a list");
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        char w[64];
        snprintf(w, sizeof w, "initializers[%d]", k++);
        int t, rc = read_tensor(r, it, w, NULL, &t);
        if (rc)
            return rc;
    }
    return 0;
}

/* Graph inputs or outputs: {"name", "dtype"?, "shape"?}. */
static int read_io(reader *r, const cJSON *list, const char *field, int is_input)
{
    static const char *const keys[] = {"name", "dtype", "shape", NULL};
    static const char *const req[] = {"name", NULL};
    if (!cJSON_IsArray(list))
        return fail(r, ERR_PARSE, field, "expected a list");
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        char where[64], w[300];
        snprintf(where, sizeof where, "%s[%d]", field, k++);
        const cJSON *f[3];
        const char *name = "";
        int rc = get_fields(r, it, where, keys, req, f);
        snprintf(w, sizeof w, "%s.name", where);
        if (rc || (rc = get_string(r, f[0], w, 1, &name)))
            return rc;
        const int *seen = is_input ? r->g->inputs : r->g->outputs;
        int n_seen = is_input ? r->g->n_inputs : r->g->n_outputs;
        int t = nn_graph_tensor(r->g, name, r->e);
        if (t < 0)
            return fail_builder(r, r->e ? r->e->code : ERR_NOMEM, where);
        for (int i = 0; i < n_seen; i++)
            if (seen[i] == t)
                return fail(r, ERR_PARSE, w, "'%.80s' listed twice", name);
        nn_tensor *ts = &r->g->tensors[t];
        int is_const = ts->data || ts->idata;
        if (f[1]) {
            nn_dtype dt = NN_FLOAT;
            snprintf(w, sizeof w, "%s.dtype", where);
            if ((rc = get_dtype(r, f[1], w, &dt)))
                return rc;
            if (is_const && dt != ts->dtype)
                return fail(r, ERR_PARSE, w, "differs from the initializer's dtype");
            ts->dtype = dt;
        }
        if (f[2]) {
            int rank = 0;
            int64_t dims[NN_MAX_RANK];
            snprintf(w, sizeof w, "%s.shape", where);
            if ((rc = get_shape(r, f[2], w, 1, &rank, dims, NULL)))
                return rc;
            if (is_const || ts->rank >= 0) {
                /* Already shaped (an initializer, or listed as input and output). */
                int same = rank == ts->rank;
                for (int i = 0; same && i < rank; i++)
                    same = dims[i] == ts->dims[i] || dims[i] < 0 || ts->dims[i] < 0;
                if (!same)
                    return fail(r, ERR_SHAPE, w, "differs from the shape given before");
            } else if ((rc = nn_tensor_set_shape(r->g, t, rank, dims, r->e))) {
                return fail_builder(r, rc, w);
            }
        }
        rc = is_input ? nn_graph_add_input(r->g, t, r->e) : nn_graph_add_output(r->g, t, r->e);
        if (rc)
            return fail_builder(r, rc, where);
    }
    return 0;
}

/* A list of tensor names as indices; "" is an omitted optional input (-1). */
static int read_names(reader *r, const cJSON *list, const char *where, int allow_empty,
                      int **idx, int *n)
{
    if (!cJSON_IsArray(list))
        return fail(r, ERR_PARSE, where, "expected a list of tensor names");
    int count = cJSON_GetArraySize(list);
    if (count > JSON_MAX_NODE_IO)
        return fail(r, ERR_PARSE, where, "more than %d names", JSON_MAX_NODE_IO);
    int *v = malloc((size_t)(count ? count : 1) * sizeof *v);
    if (!v)
        return fail(r, ERR_NOMEM, where, "out of memory");
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        char w[300];
        snprintf(w, sizeof w, "%s[%d]", where, i);
        const char *name = "";
        int rc = get_string(r, it, w, !allow_empty, &name);
        if (rc) {
            free(v);
            return rc;
        }
        v[i] = name[0] ? nn_graph_tensor(r->g, name, r->e) : -1;
        if (name[0] && v[i] < 0) {
            free(v);
            return fail_builder(r, r->e ? r->e->code : ERR_NOMEM, w);
        }
        i++;
    }
    *idx = v;
    *n = count;
    return 0;
}

/* One attribute value: an object with exactly one typed member. */
static int read_attr(reader *r, int k, const char *name, const cJSON *val, const char *where)
{
    static const char *const kinds[] = {"int", "float", "string", "ints", "floats", "tensor"};
    const cJSON *m = cJSON_IsObject(val) ? val->child : NULL;
    int kind = -1;
    if (m && !m->next)
        for (int i = 0; i < 6; i++)
            if (strcmp(m->string, kinds[i]) == 0)
                kind = i;
    if (kind < 0)
        return fail(r, ERR_PARSE, where,
                    "expected one typed value: {\"int\": ...}, {\"float\": ...}, {\"string\": ...}, "
                    "{\"ints\": [...]}, {\"floats\": [...]} or {\"tensor\": {...}}");
    nn_graph *g = r->g;
    int rc = 0;
    switch (kind) {
    case 0: {
        int64_t v = 0;
        if ((rc = get_int(r, m, where, &v)))
            return rc;
        rc = nn_node_attr_int(g, k, name, v, r->e);
        break;
    }
    case 1: {
        double v = 0;
        if ((rc = get_double(r, m, where, &v)))
            return rc;
        rc = nn_node_attr_float(g, k, name, v, r->e);
        break;
    }
    case 2: {
        const char *s = "";
        if ((rc = get_string(r, m, where, 0, &s)))
            return rc;
        rc = nn_node_attr_string(g, k, name, s, r->e);
        break;
    }
    case 3:
    case 4: {
        double *fv = NULL;
        int64_t *iv = NULL;
        if ((rc = get_values(r, m, where, -1, &fv, kind == 3 ? &iv : NULL,
                             kind == 3 ? "integers" : "numbers")))
            return rc;
        int64_t n = cJSON_GetArraySize(m);
        rc = kind == 3 ? nn_node_attr_ints(g, k, name, iv, n, r->e)
                       : nn_node_attr_floats(g, k, name, fv, n, r->e);
        free(fv);
        free(iv);
        break;
    }
    default: {
        /* Unnamed tensors get "<first output>/<attribute>" (as the ONNX loader
         * names them), made unique with "#2", "#3", ... */
        char dflt[200];
        const nn_node *nd = &g->nodes[k];
        const char *base = nd->n_out > 0 ? g->tensors[nd->out[0]].name : nd->name;
        if (base[0])
            snprintf(dflt, sizeof dflt, "%.120s/%.60s", base, name);
        else
            snprintf(dflt, sizeof dflt, "node%d/%.60s", k, name);
        size_t len = strlen(dflt);
        for (int i = 2; nn_graph_find(g, dflt) >= 0; i++)
            snprintf(dflt + len, sizeof dflt - len, "#%d", i);
        int t;
        if ((rc = read_tensor(r, m, where, dflt, &t)))
            return rc;
        rc = nn_node_attr_tensor(g, k, name, t, r->e);
        break;
    }
    }
    return rc ? fail_builder(r, rc, where) : 0;
}

static int read_attrs(reader *r, int k, const cJSON *obj, const char *node_where)
{
    char where[300];
    snprintf(where, sizeof where, "%s.attributes", node_where);
    if (!cJSON_IsObject(obj))
        return fail(r, ERR_PARSE, where, "expected an object");
    if (cJSON_GetArraySize(obj) > JSON_MAX_ATTRS)
        return fail(r, ERR_PARSE, where, "more than %d attributes", JSON_MAX_ATTRS);
    const cJSON *m;
    cJSON_ArrayForEach(m, obj) {
        char w[400];
        snprintf(w, sizeof w, "%s.%.80s", where, m->string);
        if (!m->string[0])
            return fail(r, ERR_PARSE, w, "empty attribute name");
        for (const cJSON *p = obj->child; p != m; p = p->next)
            if (strcmp(p->string, m->string) == 0)
                return fail(r, ERR_PARSE, w, "duplicate attribute");
        int rc = read_attr(r, k, m->string, m, w);
        if (rc)
            return rc;
    }
    return 0;
}

/* Nodes in two passes: first every node with its inputs and outputs (so all
 * tensor names exist), then attributes, whose unnamed tensors get fresh names. */
static int read_nodes(reader *r, const cJSON *list)
{
    static const char *const keys[] = {"op", "name", "inputs", "outputs", "attributes", NULL};
    static const char *const req[] = {"op", "inputs", "outputs", NULL};
    if (!cJSON_IsArray(list))
        return fail(r, ERR_PARSE, "nodes", "expected a list");
    if (cJSON_GetArraySize(list) > NN_MAX_NODES)
        return fail(r, ERR_NOMEM, "nodes", "more than %d nodes", NN_MAX_NODES);
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        char where[64], w[300];
        snprintf(where, sizeof where, "nodes[%d]", k);
        const cJSON *f[5];
        int rc = get_fields(r, it, where, keys, req, f);
        if (rc)
            return rc;
        const char *op, *name = "";
        snprintf(w, sizeof w, "%s.op", where);
        if ((rc = get_string(r, f[0], w, 1, &op)))
            return rc;
        snprintf(w, sizeof w, "%s.name", where);
        if (f[1] && (rc = get_string(r, f[1], w, 0, &name)))
            return rc;
        int *in = NULL, *out = NULL, n_in = 0, n_out = 0;
        snprintf(w, sizeof w, "%s.inputs", where);
        if ((rc = read_names(r, f[2], w, 1, &in, &n_in)))
            return rc;
        snprintf(w, sizeof w, "%s.outputs", where);
        if ((rc = read_names(r, f[3], w, 0, &out, &n_out))) {
            free(in);
            return rc;
        }
        rc = nn_graph_add_node(r->g, op, name, n_in, in, n_out, out, r->e);
        free(in);
        free(out);
        if (rc < 0)
            return fail_builder(r, rc, where);
        k++;
    }
    /* Each tensor is made by at most one node, and not by one that is constant
     * or a graph input. */
    nn_graph *g = r->g;
    int *maker = malloc((size_t)(g->n_tensors ? g->n_tensors : 1) * sizeof *maker);
    if (!maker)
        return fail(r, ERR_NOMEM, "nodes", "out of memory");
    for (int t = 0; t < g->n_tensors; t++)
        maker[t] = -1;
    for (int i = 0; i < g->n_inputs; i++)
        maker[g->inputs[i]] = -2;
    for (int j = 0; j < g->n_nodes; j++)
        for (int o = 0; o < g->nodes[j].n_out; o++) {
            int t = g->nodes[j].out[o];
            const nn_tensor *ts = &g->tensors[t];
            int m = maker[t];
            if (m != -1 || ts->data || ts->idata) {
                char w[64];
                snprintf(w, sizeof w, "nodes[%d].outputs[%d]", j, o);
                free(maker);
                return m >= 0 ? fail(r, ERR_PARSE, w, "'%.80s' is already an output of nodes[%d]",
                                     ts->name, m)
                              : fail(r, ERR_PARSE, w, "'%.80s' is a graph input or initializer",
                                     ts->name);
            }
            maker[t] = j;
        }
    free(maker);
    k = 0;
    cJSON_ArrayForEach(it, list) {
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(it, "attributes");
        char where[64];
        snprintf(where, sizeof where, "nodes[%d]", k);
        int rc = attrs ? read_attrs(r, k, attrs, where) : 0;
        if (rc)
            return rc;
        k++;
    }
    return 0;
}

static int read_model(reader *r, const cJSON *root)
{
    static const char *const keys[] = {"format", "version", "ir_version", "opset", "producer",
                                       "inputs", "outputs", "initializers", "nodes", NULL};
    static const char *const req[] = {"format", "version", "inputs", "outputs", "nodes", NULL};
    const cJSON *f[9];
    int rc = get_fields(r, root, "top level", keys, req, f);
    if (rc)
        return rc;
    if (!cJSON_IsString(f[0]) || strcmp(f[0]->valuestring, "nnv-model") != 0)
        return fail(r, ERR_PARSE, "format", "expected \"nnv-model\"");
    int64_t v = 0;
    if ((rc = get_int(r, f[1], "version", &v)))
        return rc;
    if (v != 1)
        return fail(r, ERR_UNSUP, "version", "version %lld not supported (this reader knows 1)",
                    (long long)v);
    if (f[2] && (rc = get_int(r, f[2], "ir_version", &r->g->ir_version)))
        return rc;
    if (f[3] && (rc = get_int(r, f[3], "opset", &r->g->opset)))
        return rc;
    if (f[4]) {
        const char *p = "";
        if ((rc = get_string(r, f[4], "producer", 0, &p)))
            return rc;
        char *d = strdup(p);
        if (!d)
            return fail(r, ERR_NOMEM, "producer", "out of memory");
        free(r->g->producer_name);
        r->g->producer_name = d;
    }
    /* Initializers first, so that tensor order follows the file's initializer
     * order and writing the graph back gives the same file. */
    if ((rc = read_initializers(r, f[7])) || (rc = read_io(r, f[5], "inputs", 1)) ||
        (rc = read_io(r, f[6], "outputs", 0)) || (rc = read_nodes(r, f[8])))
        return rc;
    return 0;
}

/* ---- line numbers for errors: cJSON keeps no positions, so the path of an
 * error ("nodes[3].attributes.kernel_shape") is looked up again in the text,
 * which is known to be valid JSON by then. Best effort: NULL if not found. */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *skip_string(const char *p) /* p at the opening quote */
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p ? p + 1 : p;
}

static const char *skip_value(const char *p)
{
    if (*p == '"')
        return skip_string(p);
    if (*p != '{' && *p != '[') {
        while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
               *p != '\t' && *p != '\r')
            p++;
        return p;
    }
    int depth = 0; /* brackets only nest properly in valid JSON: count both kinds */
    for (; *p; p++) {
        if (*p == '"')
            p = skip_string(p) - 1;
        else if (*p == '{' || *p == '[')
            depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0)
            return p + 1;
    }
    return p;
}

static const char *locate(const char *text, const char *where)
{
    const char *p = skip_ws(text), *w = where;
    while (*w) {
        if (*w == '[') {
            char *end;
            long idx = strtol(w + 1, &end, 10);
            if (*p != '[' || *end != ']' || idx < 0)
                return NULL;
            w = end + 1;
            p = skip_ws(p + 1);
            for (; idx > 0; idx--) {
                if (*p == ']' || !*p)
                    return NULL;
                p = skip_ws(skip_value(p));
                if (*p == ',')
                    p = skip_ws(p + 1);
            }
            if (*p == ']' || !*p)
                return NULL;
            continue;
        }
        if (*w == '.')
            w++;
        size_t klen = strcspn(w, ".[");
        if (*p != '{')
            return NULL;
        p = skip_ws(p + 1);
        for (;;) {
            if (*p != '"')
                return NULL;
            const char *key = p + 1, *after = skip_string(p);
            int match = (size_t)(after - 1 - key) == klen && strncmp(key, w, klen) == 0;
            p = skip_ws(after);
            if (*p != ':')
                return NULL;
            p = skip_ws(p + 1);
            if (match)
                break;
            p = skip_ws(skip_value(p));
            if (*p != ',')
                return NULL;
            p = skip_ws(p + 1);
        }
        w += klen;
    }
    return p;
}

static void line_col(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            ++*line;
            *col = 1;
        } else {
            ++*col;
        }
    }
}

/* Parse text[0..len) (text[len] must be 0) from source into a finalized graph. */
static int load_text(const char *source, const char *text, size_t len, nn_graph **out, err *e)
{
    *out = NULL;
    nn_graph *g = nn_graph_new(source);
    if (!g)
        return err_set(e, ERR_NOMEM, "%s: out of memory", source);
    const char *start = text;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte order mark */
        start += 3;
    const char *nul = memchr(text, 0, len);
    const char *end = NULL;
    cJSON *root = NULL;
    if (!nul)
        root = cJSON_ParseWithLengthOpts(start, len - (size_t)(start - text) + 1, &end, 1);
    if (!root) {
        const char *at = nul ? nul : end && end >= start && end <= text + len ? end : text + len;
        int line, col;
        line_col(text, at, &line, &col);
        char near[24];
        size_t n = 0;
        for (const char *p = at; p < text + len && n < 16 && *p != '\n'; p++)
            near[n++] = (*p >= 32 && *p < 127) ? *p : '?';
        near[n] = 0;
        nn_graph_free(g);
        if (nul)
            return err_set(e, ERR_PARSE, "%s:%d:%d: NUL byte in JSON text", source, line, col);
        if (at == text + len)
            return err_set(e, ERR_PARSE, "%s:%d:%d: JSON syntax error: unexpected end of text",
                           source, line, col);
        return err_set(e, ERR_PARSE, "%s:%d:%d: JSON syntax error near '%s'", source, line, col,
                       near);
    }
    reader r = {g, e, ""};
    int rc = read_model(&r, root);
    cJSON_Delete(root);
    const char *at = rc && e && r.where[0] && strcmp(r.where, "top level") != 0
                         ? locate(start, r.where) : NULL;
    size_t n = strlen(source);
    if (at && strncmp(e->msg, source, n) == 0 && e->msg[n] == ':' && e->msg[n + 1] == ' ') {
        int line, col;
        line_col(text, at, &line, &col);
        char rest[ERR_MSG_MAX];
        snprintf(rest, sizeof rest, "%s", e->msg + n + 2);
        err_set(e, rc, "%s:%d:%d: %s", source, line, col, rest);
    }
    if (!rc)
        rc = nn_graph_finalize(g, e);
    if (rc) {
        nn_graph_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

int nn_load_json_string(const char *source, const char *text, nn_graph **out, err *e)
{
    if (!out)
        return err_set(e, ERR_ARG, "nn_load_json_string: NULL output");
    *out = NULL;
    if (!text)
        return err_set(e, ERR_ARG, "%s: NULL text", source ? source : "<memory>");
    return load_text(source ? source : "<memory>", text, strlen(text), out, e);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The whole file, gunzipped if it is gzip (gzread passes plain files through),
 * NUL-terminated, at most JSON_MAX_BYTES. */
static int read_file(const char *path, char **text, size_t *len, err *e)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return err_set(e, ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "gzopen failed");
    gzbuffer(f, 1 << 17);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    int rc = buf ? 0 : err_set(e, ERR_NOMEM, "%s: out of memory", path);
    while (!rc) {
        if (n == cap) {
            if (cap > JSON_MAX_BYTES) {
                rc = err_set(e, ERR_NOMEM, "%s: larger than %zu MiB", path, JSON_MAX_BYTES >> 20);
                break;
            }
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t want = cap - n > (1u << 30) ? (1u << 30) : cap - n;
        int got = gzread(f, buf + n, (unsigned)want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            size_t plen = strlen(path);
            if (strncmp(msg, path, plen) == 0 && msg[plen] == ':' && msg[plen + 1] == ' ')
                msg += plen + 2; /* zlib puts the path in front */
            rc = zerr == Z_ERRNO ? err_set(e, ERR_IO, "%s: read error: %s", path, strerror(errno))
                                 : err_set(e, ERR_PARSE, "%s: corrupt gzip data: %s", path, msg);
            break;
        }
        if (got == 0) {
            int zerr;
            gzerror(f, &zerr);
            if (zerr == Z_BUF_ERROR)
                rc = err_set(e, ERR_PARSE, "%s: truncated gzip data", path);
            break;
        }
        n += (size_t)got;
    }
    gzclose(f);
    if (!rc && n > JSON_MAX_BYTES)
        rc = err_set(e, ERR_NOMEM, "%s: larger than %zu MiB", path, JSON_MAX_BYTES >> 20);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *text = buf;
    *len = n;
    return 0;
}

int nn_load_json(const char *path, nn_graph **out, err *e)
{
    if (!out || !path)
        return err_set(e, ERR_ARG, "nn_load_json: NULL argument");
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, e);
    if (rc)
        return rc;
    rc = load_text(path, text, len, out, e);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ writing */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (b->n + n + 1 > cap)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_str(sbuf *b, const char *s)
{
    put(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(b, run, (size_t)(s - run));
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n')
            snprintf(esc, sizeof esc, "\\n");
        else if (c == '\t')
            snprintf(esc, sizeof esc, "\\t");
        else
            snprintf(esc, sizeof esc, "\\u%04x", c);
        puts_(b, esc);
        run = s + 1;
    }
    put(b, run, (size_t)(s - run));
    put(b, "\"", 1);
}

static void put_int(sbuf *b, int64_t v)
{
    char s[32];
    int n = (v > (int64_t)TWO_53 || v < -(int64_t)TWO_53)
                ? snprintf(s, sizeof s, "\"%lld\"", (long long)v)
                : snprintf(s, sizeof s, "%lld", (long long)v);
    put(b, s, (size_t)n);
}

/* Shortest "%.{15,16,17}g" form that reads back to exactly v (v finite). %.17g
 * always does; trying 16 digits first saves a step for most float32 weights. */
static void put_double(sbuf *b, double v)
{
    char s[40], t[40];
    int n;
    if (fabs(v) < 1e9 && v == (double)(int32_t)v && (v != 0 || !signbit(v))) {
        n = snprintf(s, sizeof s, "%d", (int)v); /* small integers, common in attributes */
    } else if (n = snprintf(s, sizeof s, "%.16g", v), strtod(s, NULL) == v) {
        int m = snprintf(t, sizeof t, "%.15g", v);
        if (strtod(t, NULL) == v) {
            memcpy(s, t, (size_t)m + 1);
            n = m;
        }
    } else {
        n = snprintf(s, sizeof s, "%.17g", v);
    }
    put(b, s, (size_t)n);
}

typedef struct {
    const nn_graph *g;
    err *e;
    sbuf b;
} writer;

static int wfail(writer *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int wfail(writer *w, int code, const char *fmt, ...)
{
    char what[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return err_set(w->e, code, "%s: %.400s", w->g->source, what);
}

/* Writes v[0..n) as a list; fails (naming `what`) on NaN or infinity. */
static int put_doubles(writer *w, const double *v, int64_t n, const char *what)
{
    put(&w->b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            return wfail(w, ERR_VALUE, "%s[%lld]: %s cannot be written as JSON", what,
                         (long long)i, isnan(v[i]) ? "NaN" : "infinity");
        if (i)
            put(&w->b, ", ", 2);
        put_double(&w->b, v[i]);
    }
    put(&w->b, "]", 1);
    return 0;
}

static void put_ints(sbuf *b, const int64_t *v, int64_t n)
{
    put(b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i)
            put(b, ", ", 2);
        put_int(b, v[i]);
    }
    put(b, "]", 1);
}

static void put_shape(sbuf *b, const nn_tensor *t)
{
    put(b, "[", 1);
    for (int i = 0; i < t->rank; i++) {
        if (i)
            put(b, ", ", 2);
        if (t->dims[i] < 0)
            put(b, "\"?\"", 3);
        else
            put_int(b, t->dims[i]);
    }
    put(b, "]", 1);
}

static const char *dtype_name(nn_dtype dt)
{
    return dt == NN_INT64 ? "int64" : "float";
}

/* {"name"?, "dtype", "shape", "data"} of a constant tensor. */
static int put_tensor(writer *w, int t, const char *sep)
{
    const nn_tensor *ts = &w->g->tensors[t];
    sbuf *b = &w->b;
    const void *vals = ts->dtype == NN_INT64 ? (const void *)ts->idata : (const void *)ts->data;
    if (ts->rank < 0 || !vals)
        return wfail(w, ERR_ARG, "tensor '%.80s': not a constant with a shape", ts->name);
    puts_(b, "{\"name\": ");
    put_str(b, ts->name);
    puts_(b, ", \"dtype\": ");
    put_str(b, dtype_name(ts->dtype));
    puts_(b, ", \"shape\": ");
    put_shape(b, ts);
    puts_(b, sep);
    puts_(b, "\"data\": ");
    if (ts->dtype == NN_INT64)
        put_ints(b, ts->idata, ts->size);
    else {
        char what[160];
        snprintf(what, sizeof what, "tensor '%.80s'", ts->name);
        int rc = put_doubles(w, ts->data, ts->size, what);
        if (rc)
            return rc;
    }
    put(b, "}", 1);
    return 0;
}

static int put_io(writer *w, const char *field, const int *list, int n)
{
    sbuf *b = &w->b;
    puts_(b, "  \"");
    puts_(b, field);
    puts_(b, n ? "\": [\n" : "\": [");
    for (int i = 0; i < n; i++) {
        const nn_tensor *ts = &w->g->tensors[list[i]];
        puts_(b, "    {\"name\": ");
        put_str(b, ts->name);
        puts_(b, ", \"dtype\": ");
        put_str(b, dtype_name(ts->dtype));
        if (ts->rank >= 0) {
            puts_(b, ", \"shape\": ");
            put_shape(b, ts);
        }
        puts_(b, i + 1 < n ? "},\n" : "}\n  ");
    }
    puts_(b, "],\n");
    return 0;
}

static int put_attr(writer *w, int k, const nn_attr *a)
{
    sbuf *b = &w->b;
    put_str(b, a->name);
    puts_(b, ": {");
    char what[200];
    snprintf(what, sizeof what, "node %d (%.40s): attribute '%.60s'", k, w->g->nodes[k].op_type,
             a->name);
    switch (a->kind) {
    case NN_ATTR_INT:
        puts_(b, "\"int\": ");
        put_int(b, a->i);
        break;
    case NN_ATTR_FLOAT:
        if (!isfinite(a->f))
            return wfail(w, ERR_VALUE, "%s: %s cannot be written as JSON", what,
                         isnan(a->f) ? "NaN" : "infinity");
        puts_(b, "\"float\": ");
        put_double(b, a->f);
        break;
    case NN_ATTR_STRING:
        puts_(b, "\"string\": ");
        put_str(b, a->s ? a->s : "");
        break;
    case NN_ATTR_INTS:
        puts_(b, "\"ints\": ");
        put_ints(b, a->ints, a->n);
        break;
    case NN_ATTR_FLOATS: {
        puts_(b, "\"floats\": ");
        int rc = put_doubles(w, a->floats, a->n, what);
        if (rc)
            return rc;
        break;
    }
    case NN_ATTR_TENSOR: {
        if (a->tensor < 0 || a->tensor >= w->g->n_tensors)
            return wfail(w, ERR_ARG, "%s: bad tensor index", what);
        puts_(b, "\"tensor\": ");
        int rc = put_tensor(w, a->tensor, ", ");
        if (rc)
            return rc;
        break;
    }
    default:
        return wfail(w, ERR_ARG, "%s: unknown attribute kind %d", what, (int)a->kind);
    }
    put(b, "}", 1);
    return 0;
}

static int put_node(writer *w, int k)
{
    const nn_node *n = &w->g->nodes[k];
    sbuf *b = &w->b;
    puts_(b, "    {\"op\": ");
    put_str(b, n->op_type);
    if (n->name && n->name[0]) {
        puts_(b, ", \"name\": ");
        put_str(b, n->name);
    }
    puts_(b, ", \"inputs\": [");
    for (int i = 0; i < n->n_in; i++) {
        if (i)
            put(b, ", ", 2);
        put_str(b, n->in[i] < 0 ? "" : w->g->tensors[n->in[i]].name);
    }
    puts_(b, "], \"outputs\": [");
    for (int i = 0; i < n->n_out; i++) {
        if (i)
            put(b, ", ", 2);
        put_str(b, w->g->tensors[n->out[i]].name);
    }
    put(b, "]", 1);
    if (n->n_attr) {
        puts_(b, ",\n     \"attributes\": {");
        for (int a = 0; a < n->n_attr; a++) {
            if (a)
                put(b, ", ", 2);
            int rc = put_attr(w, k, &n->attr[a]);
            if (rc)
                return rc;
        }
        put(b, "}", 1);
    }
    put(b, "}", 1);
    return 0;
}

/* Initializers: constant tensors that some node reads or that are graph
 * inputs/outputs, and that no node makes; tensors held by attributes are
 * written inside their attribute. */
static int put_initializers(writer *w)
{
    const nn_graph *g = w->g;
    sbuf *b = &w->b;
    char *role = calloc((size_t)(g->n_tensors ? g->n_tensors : 1), 1);
    if (!role)
        return wfail(w, ERR_NOMEM, "out of memory");
    enum { USED = 1, MADE = 2, ATTR = 4 };
    for (int k = 0; k < g->n_nodes; k++) {
        const nn_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_in; i++)
            if (n->in[i] >= 0)
                role[n->in[i]] |= USED;
        for (int i = 0; i < n->n_out; i++)
            role[n->out[i]] |= MADE;
        for (int a = 0; a < n->n_attr; a++)
            if (n->attr[a].kind == NN_ATTR_TENSOR && n->attr[a].tensor >= 0 &&
                n->attr[a].tensor < g->n_tensors)
                role[n->attr[a].tensor] |= ATTR;
    }
    for (int i = 0; i < g->n_inputs; i++)
        role[g->inputs[i]] |= USED;
    for (int i = 0; i < g->n_outputs; i++)
        role[g->outputs[i]] |= USED;
    puts_(b, "  \"initializers\": [");
    int count = 0, rc = 0;
    for (int t = 0; t < g->n_tensors && !rc; t++) {
        const nn_tensor *ts = &g->tensors[t];
        if (!(ts->data || ts->idata) || role[t] != USED)
            continue;
        puts_(b, count++ ? ",\n    " : "\n    ");
        rc = put_tensor(w, t, ",\n     ");
    }
    free(role);
    puts_(b, count ? "\n  ],\n" : "],\n");
    return rc;
}

char *nn_json_string(const nn_graph *g, err *e)
{
    if (!g) {
        err_set(e, ERR_ARG, "nn_json_string: NULL graph");
        return NULL;
    }
    writer w = {g, e, {0}};
    sbuf *b = &w.b;
    puts_(b, "{\n  \"format\": \"nnv-model\",\n  \"version\": 1,\n  \"ir_version\": ");
    put_int(b, g->ir_version);
    puts_(b, ",\n  \"opset\": ");
    put_int(b, g->opset);
    puts_(b, ",\n  \"producer\": ");
    put_str(b, g->producer_name ? g->producer_name : "");
    puts_(b, ",\n");
    int rc = put_io(&w, "inputs", g->inputs, g->n_inputs);
    if (!rc)
        rc = put_io(&w, "outputs", g->outputs, g->n_outputs);
    if (!rc)
        rc = put_initializers(&w);
    if (!rc) {
        puts_(b, g->n_nodes ? "  \"nodes\": [\n" : "  \"nodes\": [");
        for (int k = 0; k < g->n_nodes && !rc; k++) {
            rc = put_node(&w, k);
            puts_(b, k + 1 < g->n_nodes ? ",\n" : "\n  ");
        }
        puts_(b, "]\n}\n");
    }
    if (!rc && b->oom)
        rc = wfail(&w, ERR_NOMEM, "out of memory while writing JSON");
    if (rc) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

int nn_save_json(const nn_graph *g, const char *path, err *e)
{
    if (!g || !path)
        return err_set(e, ERR_ARG, "nn_save_json: NULL argument");
    char *text = nn_json_string(g, e);
    if (!text)
        return e ? e->code : ERR_NOMEM;
    size_t len = strlen(text);
    int rc = 0;
    errno = 0;
    if (has_suffix(path, ".gz")) {
        gzFile f = gzopen(path, "wb");
        if (!f) {
            rc = err_set(e, ERR_IO, "%s: cannot create: %s", path, errno ? strerror(errno) : "gzopen failed");
        } else {
            for (size_t off = 0; off < len && !rc;) {
                unsigned chunk = len - off > (1u << 30) ? (1u << 30) : (unsigned)(len - off);
                int put_n = gzwrite(f, text + off, chunk);
                if (put_n <= 0)
                    rc = err_set(e, ERR_IO, "%s: write error", path);
                off += chunk;
            }
            if (gzclose(f) != Z_OK && !rc)
                rc = err_set(e, ERR_IO, "%s: write error on close", path);
        }
    } else {
        FILE *f = fopen(path, "wb");
        if (!f) {
            rc = err_set(e, ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        } else {
            if (fwrite(text, 1, len, f) != len)
                rc = err_set(e, ERR_IO, "%s: write error: %s", path, strerror(errno));
            if (fclose(f) != 0 && !rc)
                rc = err_set(e, ERR_IO, "%s: write error on close: %s", path, strerror(errno));
        }
    }
    free(text);
    return rc;
}
