/* trn_model.c: the trainer's networks as a list of layers over one flat
 * parameter vector (so the optimiser, clipping and checkpoints see one array):
 * CNN-7+BN (cnn_7layer_bn2 of Shi et al., with width and linear size), a small
 * CNN (DM-small shape) and MLPs, each hidden layer followed by BatchNorm and
 * ReLU. Initialisation is PyTorch's default followed by the IBP init. */
#include "trn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t trn_layer_in_size(const trn_layer *l) { return (int64_t)l->in_c * l->in_h * l->in_w; }
int64_t trn_layer_out_size(const trn_layer *l) { return (int64_t)l->out_c * l->out_h * l->out_w; }

typedef struct builder {
    trn_model *m;
    int c, h, w;
    err *e;
    int rc;
} builder;

static trn_layer *push(builder *b, trn_kind kind)
{
    if (b->rc)
        return NULL;
    if (b->m->n_layers >= TRN_MAX_LAYERS) {
        b->rc = err_set(b->e, ERR_ARG, "train: model has more than %d layers", TRN_MAX_LAYERS);
        return NULL;
    }
    trn_layer *l = &b->m->layers[b->m->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->in_c = b->c;
    l->in_h = b->h;
    l->in_w = b->w;
    l->w_off = l->b_off = l->stat_off = -1;
    return l;
}

static void finish(builder *b, trn_layer *l)
{
    b->c = l->out_c;
    b->h = l->out_h;
    b->w = l->out_w;
    if ((int64_t)b->c * b->h * b->w > (1 << 24) || b->m->n_params > ((int64_t)1 << 28))
        b->rc = err_set(b->e, ERR_ARG, "train: layer %d too large", b->m->n_layers - 1);
}

static void add_conv(builder *b, int cout, int k, int stride, int pad)
{
    trn_layer *l = push(b, TRN_CONV);
    if (!l)
        return;
    if (cout < 1 || k < 1 || stride < 1 || pad < 0 || b->h + 2 * pad < k || b->w + 2 * pad < k) {
        b->rc = err_set(b->e, ERR_ARG, "train: conv %dx%d stride %d pad %d does not fit %dx%dx%d",
                        k, k, stride, pad, b->c, b->h, b->w);
        return;
    }
    l->k = k;
    l->stride = stride;
    l->pad = pad;
    l->out_c = cout;
    l->out_h = (b->h + 2 * pad - k) / stride + 1;
    l->out_w = (b->w + 2 * pad - k) / stride + 1;
    l->w_off = b->m->n_params;
    l->n_w = (int64_t)cout * b->c * k * k;
    l->b_off = l->w_off + l->n_w;
    l->n_b = cout;
    b->m->n_params += l->n_w + l->n_b;
    finish(b, l);
}

static void add_linear(builder *b, int out)
{
    trn_layer *l = push(b, TRN_LINEAR);
    if (!l)
        return;
    if (out < 1) {
        b->rc = err_set(b->e, ERR_ARG, "train: linear layer of width %d", out);
        return;
    }
    l->in_c = b->c * b->h * b->w;
    l->in_h = l->in_w = 1;
    l->out_c = out;
    l->out_h = l->out_w = 1;
    l->w_off = b->m->n_params;
    l->n_w = (int64_t)out * l->in_c;
    l->b_off = l->w_off + l->n_w;
    l->n_b = out;
    b->m->n_params += l->n_w + l->n_b;
    finish(b, l);
}

static void add_simple(builder *b, trn_kind kind)
{
    trn_layer *l = push(b, kind);
    if (!l)
        return;
    l->out_c = b->c;
    l->out_h = b->h;
    l->out_w = b->w;
    if (kind == TRN_FLATTEN) {
        l->out_c = b->c * b->h * b->w;
        l->out_h = l->out_w = 1;
    }
    if (kind == TRN_BN) {
        if (b->c > TRN_MAX_BN) {
            b->rc = err_set(b->e, ERR_ARG, "train: BatchNorm over %d channels (at most %d)", b->c,
                            TRN_MAX_BN);
            return;
        }
        l->w_off = b->m->n_params;
        l->n_w = b->c;
        l->b_off = l->w_off + b->c;
        l->n_b = b->c;
        b->m->n_params += 2 * b->c;
        l->stat_off = b->m->n_stats;
        b->m->n_stats += 2 * b->c;
    }
    finish(b, l);
}

static void conv_bn_relu(builder *b, int cout, int k, int stride, int pad)
{
    add_conv(b, cout, k, stride, pad);
    add_simple(b, TRN_BN);
    add_simple(b, TRN_RELU);
}

static void linear_bn_relu(builder *b, int out)
{
    add_linear(b, out);
    add_simple(b, TRN_BN);
    add_simple(b, TRN_RELU);
}

int trn_model_build(const trn_config *c, int in_c, int in_h, int in_w, int n_classes,
                    trn_model **out, err *e)
{
    *out = NULL;
    if (in_c < 1 || in_c > TRN_MAX_CH || in_h < 1 || in_w < 1 || n_classes < 2)
        return err_set(e, ERR_ARG, "train: input %dx%dx%d with %d classes not supported", in_c,
                       in_h, in_w, n_classes);
    trn_model *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(e, ERR_NOMEM, "train: out of memory");
    m->in_c = in_c;
    m->in_h = in_h;
    m->in_w = in_w;
    m->n_classes = n_classes;
    for (int ch = 0; ch < TRN_MAX_CH; ch++) {
        m->mean[ch] = 0;
        m->std[ch] = 1;
    }
    builder b = {m, in_c, in_h, in_w, e, 0};
    int w = c->width;
    if (strcmp(c->model, "cnn7") == 0 || strcmp(c->model, "cnn_7layer_bn2") == 0) {
        conv_bn_relu(&b, w, 3, 1, 1);
        conv_bn_relu(&b, w, 3, 1, 1);
        conv_bn_relu(&b, 2 * w, 3, 2, 1);
        conv_bn_relu(&b, 2 * w, 3, 1, 1);
        conv_bn_relu(&b, 2 * w, 3, 1, 1);
        add_simple(&b, TRN_FLATTEN);
        linear_bn_relu(&b, c->linear_size);
    } else if (strcmp(c->model, "cnn_small") == 0) {
        conv_bn_relu(&b, w, 4, 2, 0);
        conv_bn_relu(&b, 2 * w, 4, 1, 0);
        add_simple(&b, TRN_FLATTEN);
        linear_bn_relu(&b, c->linear_size);
    } else if (strcmp(c->model, "mlp") == 0) {
        add_simple(&b, TRN_FLATTEN);
        for (int i = 0; i < c->n_hidden; i++)
            linear_bn_relu(&b, c->hidden[i]);
    } else {
        free(m);
        return err_set(e, ERR_ARG, "train: unknown model '%s' (cnn7, cnn_small, mlp)", c->model);
    }
    add_linear(&b, n_classes);
    if (b.rc) {
        free(m);
        return b.rc;
    }
    m->params = calloc((size_t)m->n_params, sizeof *m->params);
    m->stats = calloc((size_t)m->n_stats + 1, sizeof *m->stats);
    if (!m->params || !m->stats) {
        long long np = (long long)m->n_params;
        trn_model_free(m);
        return err_set(e, ERR_NOMEM, "train: out of memory for %lld parameters", np);
    }
    *out = m;
    return 0;
}

void trn_model_free(trn_model *m)
{
    if (!m)
        return;
    free(m->params);
    free(m->stats);
    free(m);
}

size_t trn_conv_scratch(const trn_conv_shape *sh)
{
    size_t K = (size_t)sh->cin * sh->k * sh->k, col = K * sh->ho * sh->wo;
    size_t s = (size_t)sh->stride, Hq = (sh->h + 2 * sh->pad + s - 1) / s,
           Wq = (sh->w + 2 * sh->pad + s - 1) / s, plane = Hq * Wq;
    size_t direct = 2 * K * sh->cout + (2 * s * s * sh->cin + sh->cout) * TRN_CONV_CHUNK * plane;
    return col > direct ? col : direct;
}

double trn_ibp_init_std(int64_t fan_in) { return sqrt(2.0 * M_PI) / (double)fan_in; }

void trn_model_init(trn_model *m, trn_rng *rng, int ibp_init)
{
    int last = -1;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].kind == TRN_CONV || m->layers[i].kind == TRN_LINEAR)
            last = i;
    for (int i = 0; i < m->n_layers; i++) {
        trn_layer *l = &m->layers[i];
        float *W = m->params + l->w_off, *b = m->params + l->b_off;
        if (l->kind == TRN_BN) {
            for (int c = 0; c < l->in_c; c++) {
                W[c] = 1;
                b[c] = 0;
                m->stats[l->stat_off + c] = 0;
                m->stats[l->stat_off + l->in_c + c] = 1;
            }
            continue;
        }
        if (l->kind != TRN_CONV && l->kind != TRN_LINEAR)
            continue;
        int64_t fan_in = l->n_w / l->n_b;
        /* kaiming_uniform(a=sqrt 5): U(+-1/sqrt(fan_in)); bias U(+-1/sqrt(fan_in)). */
        double bound = 1.0 / sqrt((double)fan_in);
        for (int64_t k = 0; k < l->n_w; k++)
            W[k] = (float)((2 * rng_uniform(rng) - 1) * bound);
        for (int64_t k = 0; k < l->n_b; k++)
            b[k] = (float)((2 * rng_uniform(rng) - 1) * bound);
        if (ibp_init && i != last) {
            double sd = trn_ibp_init_std(fan_in);
            for (int64_t k = 0; k < l->n_w; k++)
                W[k] = (float)(rng_normal(rng) * sd);
        }
    }
}
