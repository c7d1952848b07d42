/* trn_config.c: a training job's settings. Defaults are the reference run
 * (Fashion-MNIST, eps 0.1, cnn_7layer_bn2 width 4 / linear 32, 6 epochs: start 2,
 * length 3, milestone 5, batch 256, Adam 5e-4, clip 10, lambda 0.5, tol 0.5).
 * A JSON object sets any field by name; every field is also a --key=value flag
 * (trn_config_set), and flags given after the config override it. */
#include "trn.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void trn_config_default(trn_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->dataset, sizeof c->dataset, "fashion-mnist");
    snprintf(c->model, sizeof c->model, "cnn7");
    c->width = 4;
    c->linear_size = 32;
    c->hidden[0] = c->hidden[1] = 256;
    c->n_hidden = 2;
    c->eps = 0.1;
    c->epochs = 6;
    c->sched_start = 2;
    c->sched_length = 3;
    c->batch = 256;
    c->lr = 5e-4;
    c->lr_decay = 0.2;
    c->milestones[0] = 5;
    c->n_milestones = 1;
    c->grad_clip = 10;
    c->reg_lambda = 0.5;
    c->tol = 0.5;
    c->min_eps_reg = 1e-6;
    c->reg = 1;
    c->ibp_init = 1;
    snprintf(c->method, sizeof c->method, "ibp");
    c->seed = 100;
    snprintf(c->out, sizeof c->out, "runs/train");
    c->threads = 2;
    c->pgd_steps = 10;
    c->augment = -1;
    c->pad = 2;
}

static int parse_int_list(const char *v, int *out, int cap, int *n, const char *key, err *e)
{
    *n = 0;
    const char *p = v;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > 1000000)
            return err_set(e, ERR_ARG, "config: %s: bad integer list '%s'", key, v);
        if (*n >= cap)
            return err_set(e, ERR_ARG, "config: %s: more than %d values", key, cap);
        out[(*n)++] = (int)x;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

static int parse_double(const char *v, double *out, const char *key, err *e)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno)
        return err_set(e, ERR_ARG, "config: %s: not a number: '%s'", key, v);
    *out = x;
    return 0;
}

static int parse_long(const char *v, long long lo, long long hi, long long *out, const char *key,
                      err *e)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi)
        return err_set(e, ERR_ARG, "config: %s: expected an integer in [%lld, %lld], got '%s'",
                       key, lo, hi, v);
    *out = x;
    return 0;
}

static int set_str(char *dst, size_t cap, const char *v, const char *key, err *e)
{
    if (strlen(v) >= cap)
        return err_set(e, ERR_ARG, "config: %s: value too long", key);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

int trn_config_set(trn_config *c, const char *key, const char *v, err *e)
{
    long long x;
    int rc;
#define INT_FIELD(name, field, lo, hi)                                                         \
    if (strcmp(key, name) == 0) {                                                              \
        if ((rc = parse_long(v, lo, hi, &x, key, e)))                                          \
            return rc;                                                                         \
        c->field = (int)x;                                                                     \
        return 0;                                                                              \
    }
#define DBL_FIELD(name, field)                                                                 \
    if (strcmp(key, name) == 0)                                                                \
        return parse_double(v, &c->field, key, e);
#define STR_FIELD(name, field)                                                                 \
    if (strcmp(key, name) == 0)                                                                \
        return set_str(c->field, sizeof c->field, v, key, e);
    STR_FIELD("dataset", dataset)
    STR_FIELD("data_dir", data_dir)
    STR_FIELD("model", model)
    STR_FIELD("out", out)
    STR_FIELD("export", export_path)
    INT_FIELD("width", width, 1, 4096)
    INT_FIELD("linear_size", linear_size, 1, 65536)
    INT_FIELD("epochs", epochs, 0, 100000)
    INT_FIELD("sched_start", sched_start, 1, 100000)
    INT_FIELD("sched_length", sched_length, 0, 100000)
    INT_FIELD("batch", batch, 1, 65536)
    INT_FIELD("reg", reg, 0, 1)
    INT_FIELD("ibp_init", ibp_init, 0, 1)
    INT_FIELD("threads", threads, 1, TRN_MAX_THREADS)
    INT_FIELD("pgd_steps", pgd_steps, 0, 100000)
    INT_FIELD("augment", augment, -1, 1)
    INT_FIELD("pad", pad, 0, 64)
    INT_FIELD("verbose", verbose, 0, 9)
    DBL_FIELD("eps", eps)
    DBL_FIELD("lr", lr)
    DBL_FIELD("lr_decay", lr_decay)
    DBL_FIELD("grad_clip", grad_clip)
    DBL_FIELD("reg_lambda", reg_lambda)
    DBL_FIELD("tol", tol)
    DBL_FIELD("min_eps_reg", min_eps_reg)
    if (strcmp(key, "method") == 0) {
        if (strcmp(v, "ibp") != 0 && strcmp(v, "crown-ibp") != 0)
            return err_set(e, ERR_ARG, "config: method: '%s' (ibp or crown-ibp)", v);
        return set_str(c->method, sizeof c->method, v, key, e);
    }
    if (strcmp(key, "seed") == 0) {
        if ((rc = parse_long(v, 0, (long long)1 << 62, &x, key, e)))
            return rc;
        c->seed = (uint64_t)x;
        return 0;
    }
    int64_t *lim = strcmp(key, "train_limit") == 0    ? &c->train_limit
                   : strcmp(key, "test_limit") == 0   ? &c->test_limit
                   : strcmp(key, "verify_limit") == 0 ? &c->verify_limit
                   : strcmp(key, "crown_limit") == 0  ? &c->crown_limit
                                                      : NULL;
    if (lim) {
        if ((rc = parse_long(v, 0, (long long)1 << 40, &x, key, e)))
            return rc;
        *lim = x;
        return 0;
    }
    if (strcmp(key, "milestones") == 0)
        return parse_int_list(v, c->milestones, TRN_MAX_MILESTONES, &c->n_milestones, key, e);
    if (strcmp(key, "hidden") == 0)
        return parse_int_list(v, c->hidden, TRN_MAX_HIDDEN, &c->n_hidden, key, e);
#undef INT_FIELD
#undef DBL_FIELD
#undef STR_FIELD
    return err_set(e, ERR_ARG, "config: unknown field '%s'", key);
}

/* JSON values become the same strings a flag would give. Arrays are joined with ','. */
static int set_json(trn_config *c, const cJSON *it, const char *path, err *e)
{
    char buf[1100];
    if (cJSON_IsString(it)) {
        snprintf(buf, sizeof buf, "%s", it->valuestring);
    } else if (cJSON_IsBool(it)) {
        snprintf(buf, sizeof buf, "%d", cJSON_IsTrue(it) ? 1 : 0);
    } else if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;
        if (d == (double)(long long)d && d > -1e15 && d < 1e15)
            snprintf(buf, sizeof buf, "%lld", (long long)d);
        else
            snprintf(buf, sizeof buf, "%.17g", d);
    } else if (cJSON_IsArray(it)) {
        size_t len = 0;
        buf[0] = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, it)
        {
            if (!cJSON_IsNumber(v) || len > sizeof buf - 32)
                return err_set(e, ERR_PARSE, "%s: %s: expected a short list of integers", path,
                               it->string);
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d", len ? "," : "",
                                    (int)v->valuedouble);
        }
    } else {
        return err_set(e, ERR_PARSE, "%s: %s: unsupported value type", path, it->string);
    }
    int rc = trn_config_set(c, it->string, buf, e);
    if (rc)
        err_prefix(e, "%s: ", path);
    return rc;
}

int trn_config_load_json(trn_config *c, const char *path, err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, ERR_IO, "%s: cannot open", path);
    char *text = malloc(1 << 20);
    if (!text) {
        fclose(f);
        return err_set(e, ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    int big = !feof(f);
    fclose(f);
    text[n] = 0;
    if (big) {
        free(text);
        return err_set(e, ERR_PARSE, "%s: config larger than 1 MB", path);
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(e, ERR_PARSE, "%s: not a JSON object", path);
    }
    int rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        if (it->string && it->string[0] == '_')
            continue; /* comments */
        if ((rc = set_json(c, it, path, e)))
            break;
    }
    cJSON_Delete(root);
    return rc;
}
