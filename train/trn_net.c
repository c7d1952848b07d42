/* trn_net.c: one pass of the network over a batch: the plain (clean) forward,
 * the interval (IBP) forward in centre/radius form with BatchNorm using the
 * clean batch's statistics (as auto_LiRPA does in training), the losses, and
 * the backward of all three streams into the parameter gradients. Work is split
 * over images (or rows) between threads; each thread accumulates its own
 * parameter gradients, reduced in thread order so results are reproducible. */
#include "trn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trn_work.h"

float *trn_work_input(trn_work *w, int stream) { return w->act[stream][0]; }
int *trn_work_labels(trn_work *w) { return w->labels; }
const float *trn_work_logits(trn_work *w) { return w->act[0][w->L]; }
const float *trn_work_margins(trn_work *w) { return w->crown_on ? w->lbmix : w->lb; }

void trn_work_free(trn_work *w)
{
    if (!w)
        return;
    for (int s = 0; s < 3; s++)
        for (int i = 0; i <= TRN_MAX_LAYERS; i++)
            free(w->own[s][i]);
    for (int p = 0; p < 2; p++)
        for (int s = 0; s < 3; s++)
            free(w->g[p][s]);
    for (int i = 0; i < TRN_MAX_LAYERS; i++) {
        free(w->bn_mean[i]);
        free(w->bn_var[i]);
        free(w->bn_scale[i]);
        free(w->bn_shift[i]);
        free(w->bn_ascale[i]);
    }
    for (int t = 0; t < TRN_MAX_THREADS; t++) {
        free(w->col[t]);
        free(w->tgrad[t]);
        free(w->tagrad[t]);
        free(w->tsums[t]);
    }
    free(w->absw);
    free(w->labels);
    free(w->glogits);
    free(w->lb);
    free(w->glb);
    trn_crown_free(w);
    free(w);
}

trn_work *trn_work_new(const trn_model *mc, int max_b, int nth)
{
    trn_model *m = (trn_model *)mc;
    if (max_b < 1 || nth < 1)
        return NULL;
    if (nth > TRN_MAX_THREADS)
        nth = TRN_MAX_THREADS;
    trn_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->m = m;
    w->max_b = max_b;
    w->nth = nth;
    w->L = m->n_layers;
    int ok = 1, max_c = 1;
    w->max_act = trn_layer_in_size(&m->layers[0]);
    for (int i = 0; i < w->L; i++) {
        const trn_layer *l = &m->layers[i];
        int64_t os = trn_layer_out_size(l);
        if (os > w->max_act)
            w->max_act = os;
        if (l->kind == TRN_CONV) {
            trn_conv_shape sh = {l->in_c, l->in_h, l->in_w, l->out_c, l->k, l->stride, l->pad,
                                 l->out_h, l->out_w};
            int64_t c = (int64_t)trn_conv_scratch(&sh);
            if (c > w->max_col)
                w->max_col = c;
        }
        if (l->kind == TRN_BN) {
            int C = l->in_c;
            max_c = C > max_c ? C : max_c;
            w->bn_mean[i] = calloc((size_t)C, sizeof(double));
            w->bn_var[i] = calloc((size_t)C, sizeof(double));
            w->bn_scale[i] = calloc((size_t)C, sizeof(float));
            w->bn_shift[i] = calloc((size_t)C, sizeof(float));
            w->bn_ascale[i] = calloc((size_t)C, sizeof(float));
            ok &= w->bn_mean[i] && w->bn_var[i] && w->bn_scale[i] && w->bn_shift[i] &&
                  w->bn_ascale[i];
        }
    }
    for (int s = 0; s < 3; s++) {
        w->own[s][0] = malloc((size_t)max_b * trn_layer_in_size(&m->layers[0]) * sizeof(float));
        w->act[s][0] = w->own[s][0];
        ok &= w->own[s][0] != NULL;
        for (int i = 0; i < w->L; i++) {
            if (m->layers[i].kind == TRN_FLATTEN) {
                w->act[s][i + 1] = w->act[s][i];
                continue;
            }
            w->own[s][i + 1] =
                malloc((size_t)max_b * trn_layer_out_size(&m->layers[i]) * sizeof(float));
            w->act[s][i + 1] = w->own[s][i + 1];
            ok &= w->own[s][i + 1] != NULL;
        }
    }
    for (int p = 0; p < 2; p++)
        for (int s = 0; s < 3; s++) {
            w->g[p][s] = malloc((size_t)max_b * w->max_act * sizeof(float));
            ok &= w->g[p][s] != NULL;
        }
    for (int t = 0; t < nth; t++) {
        w->col[t] = malloc((size_t)(w->max_col + 1) * sizeof(float));
        w->tgrad[t] = malloc((size_t)m->n_params * sizeof(float));
        w->tagrad[t] = malloc((size_t)m->n_params * sizeof(float));
        w->tsums[t] = malloc((size_t)5 * max_c * sizeof(double));
        ok &= w->col[t] && w->tgrad[t] && w->tagrad[t] && w->tsums[t];
    }
    int nc = m->n_classes;
    w->absw = malloc((size_t)m->n_params * sizeof(float));
    w->labels = calloc((size_t)max_b, sizeof(int));
    w->glogits = malloc((size_t)max_b * nc * sizeof(float));
    w->lb = malloc((size_t)max_b * (nc - 1) * sizeof(float));
    w->glb = malloc((size_t)max_b * (nc - 1) * sizeof(float));
    ok &= w->absw && w->labels && w->glogits && w->lb && w->glb;
    if (!ok) {
        trn_work_free(w);
        return NULL;
    }
    return w;
}

/* ---- the parallel pieces ---- */

typedef struct {
    trn_work *w;
    const trn_layer *l;
    int li, ibp, last, train, want_dx;
    trn_conv_shape sh;
    float *gin[3], *gout[3];
    const double *reg_g; /* regulariser gradient coefficients (ReLU backward) */
} layer_ctx;

static trn_conv_shape conv_shape(const trn_layer *l)
{
    return (trn_conv_shape){l->in_c, l->in_h, l->in_w, l->out_c, l->k, l->stride, l->pad,
                            l->out_h, l->out_w};
}

static void conv_fwd_job(void *p, int tid, int64_t n0, int64_t n1)
{
    layer_ctx *c = p;
    trn_work *w = c->w;
    const float *P = w->m->params;
    int i = c->li;
    trn_conv_fwd_f(&c->sh, P + c->l->w_off, P + c->l->b_off, w->act[0][i], w->act[0][i + 1],
                   (int)n0, (int)n1, w->col[tid]);
    if (c->ibp) {
        trn_conv_fwd_f(&c->sh, P + c->l->w_off, P + c->l->b_off, w->act[1][i], w->act[1][i + 1],
                       (int)n0, (int)n1, w->col[tid]);
        trn_conv_fwd_f(&c->sh, w->absw + c->l->w_off, NULL, w->act[2][i], w->act[2][i + 1],
                       (int)n0, (int)n1, w->col[tid]);
    }
}

static void conv_bwd_job(void *p, int tid, int64_t n0, int64_t n1)
{
    layer_ctx *c = p;
    trn_work *w = c->w;
    const trn_layer *l = c->l;
    const float *P = w->m->params;
    int i = c->li;
    float *dW = w->tgrad[tid] + l->w_off, *db = w->tgrad[tid] + l->b_off;
    trn_conv_bwd_f(&c->sh, P + l->w_off, w->act[0][i], c->gout[0], dW, db,
                   c->want_dx ? c->gin[0] : NULL, (int)n0, (int)n1, w->col[tid]);
    if (c->ibp) {
        trn_conv_bwd_f(&c->sh, P + l->w_off, w->act[1][i], c->gout[1], dW, db,
                       c->want_dx ? c->gin[1] : NULL, (int)n0, (int)n1, w->col[tid]);
        trn_conv_bwd_f(&c->sh, w->absw + l->w_off, w->act[2][i], c->gout[2],
                       w->tagrad[tid] + l->w_off, NULL, c->want_dx ? c->gin[2] : NULL, (int)n0,
                       (int)n1, w->col[tid]);
    }
}

static void lin_fwd_job(void *p, int tid, int64_t n0, int64_t n1)
{
    (void)tid;
    layer_ctx *c = p;
    trn_work *w = c->w;
    const trn_layer *l = c->l;
    const float *P = w->m->params;
    int i = c->li, in = l->in_c, out = l->out_c, N = (int)(n1 - n0);
    trn_lin_fwd_f(P + l->w_off, P + l->b_off, w->act[0][i] + n0 * in, w->act[0][i + 1] + n0 * out,
                  N, in, out);
    if (c->ibp && !c->last) {
        trn_lin_fwd_f(P + l->w_off, P + l->b_off, w->act[1][i] + n0 * in,
                      w->act[1][i + 1] + n0 * out, N, in, out);
        trn_lin_fwd_f(w->absw + l->w_off, NULL, w->act[2][i] + n0 * in,
                      w->act[2][i + 1] + n0 * out, N, in, out);
    } else if (c->ibp) {
        trn_margin_fwd_f(P + l->w_off, P + l->b_off, w->act[1][i] + n0 * in,
                         w->act[2][i] + n0 * in, w->labels + n0, N, in, out,
                         w->lb + n0 * (out - 1));
    }
}

static void lin_bwd_job(void *p, int tid, int64_t n0, int64_t n1)
{
    layer_ctx *c = p;
    trn_work *w = c->w;
    const trn_layer *l = c->l;
    const float *P = w->m->params;
    int i = c->li, in = l->in_c, out = l->out_c, N = (int)(n1 - n0);
    float *dW = w->tgrad[tid] + l->w_off, *db = w->tgrad[tid] + l->b_off;
    trn_lin_bwd_f(P + l->w_off, w->act[0][i] + n0 * in, c->gout[0] + n0 * out, dW, db,
                  c->want_dx ? c->gin[0] + n0 * in : NULL, N, in, out);
    if (c->ibp && !c->last) {
        trn_lin_bwd_f(P + l->w_off, w->act[1][i] + n0 * in, c->gout[1] + n0 * out, dW, db,
                      c->want_dx ? c->gin[1] + n0 * in : NULL, N, in, out);
        trn_lin_bwd_f(w->absw + l->w_off, w->act[2][i] + n0 * in, c->gout[2] + n0 * out,
                      w->tagrad[tid] + l->w_off, NULL, c->want_dx ? c->gin[2] + n0 * in : NULL, N,
                      in, out);
    } else if (c->ibp) {
        /* margin_bwd needs dm/dr outputs; without want_dx use the scratch rows of gin anyway */
        trn_margin_bwd_f(P + l->w_off, w->act[1][i] + n0 * in, w->act[2][i] + n0 * in,
                         w->labels + n0, w->glb + n0 * (out - 1), N, in, out, dW, db,
                         c->gin[1] + n0 * in, c->gin[2] + n0 * in);
    }
}

static void bn_fwd_job(void *p, int tid, int64_t n0, int64_t n1)
{
    (void)tid;
    layer_ctx *c = p;
    trn_work *w = c->w;
    int i = c->li, C = c->l->in_c, HW = c->l->in_h * c->l->in_w;
    trn_bn_affine_f(w->act[0][i], w->act[0][i + 1], C, HW, w->bn_scale[i], w->bn_shift[i],
                    (int)n0, (int)n1);
    if (c->ibp) {
        trn_bn_affine_f(w->act[1][i], w->act[1][i + 1], C, HW, w->bn_scale[i], w->bn_shift[i],
                        (int)n0, (int)n1);
        trn_bn_affine_f(w->act[2][i], w->act[2][i + 1], C, HW, w->bn_ascale[i], NULL, (int)n0,
                        (int)n1);
    }
}

static void bn_sums_job(void *p, int tid, int64_t n0, int64_t n1)
{
    layer_ctx *c = p;
    trn_work *w = c->w;
    int i = c->li, C = c->l->in_c, HW = c->l->in_h * c->l->in_w;
    memset(w->tsums[tid], 0, 5 * (size_t)C * sizeof(double));
    trn_bn_bwd_sums_f(w->act[0][i], c->gout[0], c->ibp ? w->act[1][i] : NULL,
                      c->ibp ? c->gout[1] : NULL, c->ibp ? w->act[2][i] : NULL,
                      c->ibp ? c->gout[2] : NULL, C, HW, w->bn_mean[i], w->tsums[tid], (int)n0,
                      (int)n1);
}

typedef struct {
    layer_ctx *c;
    const double *coef;
} bn_apply_ctx;

static void bn_apply_job(void *p, int tid, int64_t n0, int64_t n1)
{
    (void)tid;
    bn_apply_ctx *a = p;
    layer_ctx *c = a->c;
    trn_work *w = c->w;
    int i = c->li, C = c->l->in_c, HW = c->l->in_h * c->l->in_w;
    trn_bn_bwd_apply_f(w->act[0][i], c->gout[0], c->ibp ? c->gout[1] : NULL,
                       c->ibp ? c->gout[2] : NULL, c->gin[0], c->ibp ? c->gin[1] : NULL,
                       c->ibp ? c->gin[2] : NULL, C, HW, w->bn_mean[i], a->coef, (int)n0, (int)n1);
}

static void relu_fwd_job(void *p, int tid, int64_t i0, int64_t i1)
{
    layer_ctx *c = p;
    trn_work *w = c->w;
    int i = c->li;
    trn_relu_fwd_f(w->act[0][i], w->act[0][i + 1], (size_t)i0, (size_t)i1);
    if (c->ibp && w->reg_fwd) {
        memset(w->reg_sums[i][tid], 0, sizeof w->reg_sums[i][tid]);
        trn_relu_ibp_fwd_sums_f(w->act[1][i], w->act[2][i], w->act[1][i + 1], w->act[2][i + 1],
                                (size_t)i0, (size_t)i1, w->reg_sums[i][tid]);
    } else if (c->ibp) {
        trn_relu_ibp_fwd_f(w->act[1][i], w->act[2][i], w->act[1][i + 1], w->act[2][i + 1],
                           (size_t)i0, (size_t)i1);
    }
}

static void relu_bwd_job(void *p, int tid, int64_t i0, int64_t i1)
{
    (void)tid;
    layer_ctx *c = p;
    trn_work *w = c->w;
    int i = c->li;
    trn_relu_bwd_f(w->act[0][i], c->gout[0], c->gin[0], (size_t)i0, (size_t)i1);
    if (c->ibp && c->reg_g)
        trn_relu_ibp_bwd_reg_f(w->act[1][i], w->act[2][i], c->gout[1], c->gout[2], c->gin[1],
                               c->gin[2], c->reg_g, (size_t)i0, (size_t)i1);
    else if (c->ibp)
        trn_relu_ibp_bwd_f(w->act[1][i], w->act[2][i], c->gout[1], c->gout[2], c->gin[1],
                           c->gin[2], (size_t)i0, (size_t)i1);
    if (c->ibp && w->crown_on) /* the CROWN-IBP share of the input bounds' gradient */
        for (int64_t k = i0; k < i1; k++) {
            c->gin[1][k] += w->xm[i][k];
            c->gin[2][k] += w->xr[i][k];
        }
}

/* ---- the pass ---- */

static void make_box(trn_work *w, int B, double eps)
{
    const trn_model *m = w->m;
    int C = m->in_c;
    int64_t HW = (int64_t)m->in_h * m->in_w;
    double sum_r = 0;
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++) {
            size_t o = ((size_t)n * C + c) * HW;
            float e = (float)(eps / m->std[c]);
            float lo = (0.0f - m->mean[c]) / m->std[c], hi = (1.0f - m->mean[c]) / m->std[c];
            for (int64_t k = 0; k < HW; k++) {
                float x = w->act[0][0][o + k];
                float l = x - e, u = x + e;
                l = l < lo ? lo : l;
                u = u > hi ? hi : u;
                w->act[1][0][o + k] = (u + l) * 0.5f;
                w->act[2][0][o + k] = (u - l) * 0.5f;
                sum_r += (u - l) * 0.5f;
            }
        }
    w->tau0 = sum_r / ((double)B * C * HW);
}

typedef struct {
    trn_work *w;
    int li;
    float shift[TRN_MAX_BN];
} bn_stat_ctx;

static void bn_stat_job(void *p, int tid, int64_t n0, int64_t n1)
{
    bn_stat_ctx *c = p;
    const trn_layer *l = &c->w->m->layers[c->li];
    memset(c->w->bn_sums[tid], 0, 2 * (size_t)l->in_c * sizeof(double));
    trn_bn_stat_sums_f(c->w->act[0][c->li], l->in_c, l->in_h * l->in_w, c->shift,
                       c->w->bn_sums[tid], (int)n0, (int)n1);
}

static void bn_prepare(trn_work *w, int i, int B, int train)
{
    trn_model *m = w->m;
    const trn_layer *l = &m->layers[i];
    int C = l->in_c, HW = l->in_h * l->in_w;
    const float *gamma = m->params + l->w_off, *beta = m->params + l->b_off;
    float *rm = m->stats + l->stat_off, *rv = rm + C;
    if (train) {
        bn_stat_ctx sc = {.w = w, .li = i};
        for (int c = 0; c < C; c++)
            sc.shift[c] = w->act[0][i][(size_t)c * HW]; /* image 0's first value */
        trn_par_for(w->nth, B, bn_stat_job, &sc);
        double M = (double)B * HW;
        int used = w->nth < B ? w->nth : B;
        for (int c = 0; c < C; c++) {
            double s1 = 0, s2 = 0;
            for (int t = 0; t < used; t++) {
                s1 += w->bn_sums[t][c];
                s2 += w->bn_sums[t][C + c];
            }
            double d = s1 / M, var = s2 / M - d * d;
            w->bn_mean[i][c] = sc.shift[c] + d;
            w->bn_var[i][c] = var > 0 ? var : 0;
        }
        for (int c = 0; c < C; c++) {
            rm[c] = (float)((1 - TRN_BN_MOMENTUM) * rm[c] + TRN_BN_MOMENTUM * w->bn_mean[i][c]);
            double unbiased = M > 1 ? w->bn_var[i][c] * M / (M - 1) : w->bn_var[i][c];
            rv[c] = (float)((1 - TRN_BN_MOMENTUM) * rv[c] + TRN_BN_MOMENTUM * unbiased);
        }
    } else {
        for (int c = 0; c < C; c++) {
            w->bn_mean[i][c] = rm[c];
            w->bn_var[i][c] = rv[c];
        }
    }
    for (int c = 0; c < C; c++) {
        double a = gamma[c] / sqrt(w->bn_var[i][c] + TRN_BN_EPS);
        w->bn_scale[i][c] = (float)a;
        w->bn_shift[i][c] = (float)(beta[c] - w->bn_mean[i][c] * a);
        w->bn_ascale[i][c] = (float)fabs(a);
    }
}

static void forward(trn_work *w, int B, int ibp, int train)
{
    trn_model *m = w->m;
    for (int i = 0; i < w->L; i++) {
        const trn_layer *l = &m->layers[i];
        layer_ctx c = {.w = w, .l = l, .li = i, .ibp = ibp, .last = i == w->L - 1, .train = train};
        switch (l->kind) {
        case TRN_CONV:
            c.sh = conv_shape(l);
            trn_par_for(w->nth, B, conv_fwd_job, &c);
            break;
        case TRN_LINEAR:
            trn_par_for(w->nth, B, lin_fwd_job, &c);
            break;
        case TRN_BN:
            bn_prepare(w, i, B, train);
            trn_par_for(w->nth, B, bn_fwd_job, &c);
            break;
        case TRN_RELU:
            trn_par_for(w->nth, (int64_t)B * trn_layer_in_size(l), relu_fwd_job, &c);
            break;
        case TRN_FLATTEN:
            break;
        }
    }
}

/* The regulariser on a ReLU input (layer i), from the sums the forward pass
 * accumulated per thread (reduced in thread order): its two terms, and the
 * coefficients g of its gradient, which the ReLU backward adds in. */
static void regularise(trn_work *w, int B, int i, double weight, double tol, int n_relu,
                       double *g, trn_step_stats *st)
{
    double tight, relu, s[8] = {0};
    int ok;
    size_t n = (size_t)B * trn_layer_in_size(&w->m->layers[i]);
    int used = (int64_t)w->nth < (int64_t)n ? w->nth : (int)n;
    for (int t = 0; t < used; t++)
        for (int k = 0; k < 8; k++)
            s[k] += w->reg_sums[i][t][k];
    trn_reg_terms_f(s, n, tol, w->tau0, weight / n_relu, weight / n_relu, &tight, &relu, &ok, g);
    st->tight += tight / n_relu;
    st->relu += relu / n_relu;
}

static void zero_grads(trn_work *w, int ibp)
{
    for (int t = 0; t < w->nth; t++) {
        memset(w->tgrad[t], 0, (size_t)w->m->n_params * sizeof(float));
        if (ibp)
            memset(w->tagrad[t], 0, (size_t)w->m->n_params * sizeof(float));
    }
}

/* CROWN-IBP's gradients of a BN layer's scale a and shift c (summed over the
 * threads) as extra sums for trn_bn_bwd_coef: with c = beta - mu a, dc adds
 * to sum gm (beta, mu) and da - mu dc to sum gm (m - mu) (gamma, var). */
static void crown_bn_sums(trn_work *w, int i, int B, double *sums)
{
    const trn_layer *l = &w->m->layers[i];
    int C = l->in_c, used = w->nth < B ? w->nth : B;
    for (int c = 0; c < C; c++) {
        double da = 0, dc = 0;
        for (int t = 0; t < used; t++) {
            da += w->cgrad[t][l->w_off + c];
            dc += w->cgrad[t][l->b_off + c];
        }
        sums[2 * C + c] += dc;
        sums[3 * C + c] += da - w->bn_mean[i][c] * dc;
    }
}

static void backward(trn_work *w, int B, int ibp, int train, double reg_weight, double tol,
                     float *input_grad, trn_step_stats *st)
{
    trn_model *m = w->m;
    int nc = m->n_classes, n_relu = 0;
    for (int i = 0; i < w->L; i++)
        n_relu += m->layers[i].kind == TRN_RELU;
    int first = 0; /* the first layer that computes anything (Flatten is a view) */
    while (first < w->L - 1 && m->layers[first].kind == TRN_FLATTEN)
        first++;
    int cur = 0; /* g[cur] holds the gradient w.r.t. the current layer's output */
    memcpy(w->g[cur][0], w->glogits, (size_t)B * nc * sizeof(float));
    for (int i = w->L - 1; i >= 0; i--) {
        const trn_layer *l = &m->layers[i];
        if (l->kind == TRN_FLATTEN)
            continue;
        layer_ctx c = {.w = w, .l = l, .li = i, .ibp = ibp, .last = i == w->L - 1,
                       .train = train, .want_dx = i > first || input_grad != NULL};
        for (int s = 0; s < 3; s++) {
            c.gout[s] = w->g[cur][s];
            c.gin[s] = w->g[1 - cur][s];
        }
        if (i == first && input_grad)
            c.gin[0] = input_grad;
        int64_t in_sz = trn_layer_in_size(l);
        switch (l->kind) {
        case TRN_CONV:
            c.sh = conv_shape(l);
            trn_par_for(w->nth, B, conv_bwd_job, &c);
            break;
        case TRN_LINEAR:
            trn_par_for(w->nth, B, lin_bwd_job, &c);
            break;
        case TRN_BN: {
            int C = l->in_c, HW = l->in_h * l->in_w;
            double coef[4 * TRN_MAX_BN]; /* C <= TRN_MAX_BN is checked at model build */
            if (train) {
                trn_par_for(w->nth, B, bn_sums_job, &c);
                int used = w->nth < B ? w->nth : B;
                for (int t = 1; t < used; t++)
                    for (int k = 0; k < 5 * C; k++)
                        w->tsums[0][k] += w->tsums[t][k];
                if (ibp && w->crown_on)
                    crown_bn_sums(w, i, B, w->tsums[0]);
                float *G = w->tgrad[0];
                trn_bn_bwd_coef_f(w->tsums[0], m->params + l->w_off, w->bn_mean[i], w->bn_var[i],
                                  TRN_BN_EPS, C, (double)B * HW, G + l->w_off, G + l->b_off, coef);
            } else {
                for (int k = 0; k < C; k++) {
                    coef[k] = w->bn_scale[i][k];
                    coef[C + k] = coef[2 * C + k] = 0;
                    coef[3 * C + k] = w->bn_ascale[i][k];
                }
            }
            bn_apply_ctx a = {&c, coef};
            trn_par_for(w->nth, B, bn_apply_job, &a);
            break;
        }
        case TRN_RELU: {
            double g[6];
            if (ibp && reg_weight > 0) {
                regularise(w, B, i, reg_weight, tol, n_relu, g, st);
                c.reg_g = g;
            }
            trn_par_for(w->nth, (int64_t)B * in_sz, relu_bwd_job, &c);
            break;
        }
        case TRN_FLATTEN:
            break;
        }
        cur = 1 - cur;
    }
}

int trn_pass(trn_model *m, trn_work *w, int B, const trn_pass_opts *o, float *grad,
             trn_step_stats *st)
{
    if (B < 1 || B > w->max_b || m != w->m)
        return ERR_ARG;
    memset(st, 0, sizeof *st);
    st->n = B;
    int ibp = o->box_eps > 0, nc = m->n_classes;
    if (ibp) {
        make_box(w, B, o->box_eps);
        for (int i = 0; i < m->n_layers; i++) {
            const trn_layer *l = &m->layers[i];
            if (l->kind == TRN_CONV || l->kind == TRN_LINEAR)
                for (int64_t k = 0; k < l->n_w; k++)
                    w->absw[l->w_off + k] = fabsf(m->params[l->w_off + k]);
        }
    }
    w->reg_fwd = ibp && o->reg_weight > 0 && grad != NULL;
    forward(w, B, ibp, o->train);
    memset(w->glogits, 0, (size_t)B * nc * sizeof(float));
    memset(w->glb, 0, (size_t)B * (nc - 1) * sizeof(float));
    st->ce = trn_ce_loss_f(w->act[0][w->L], w->labels, B, nc, o->natural ? 1.0f : 0.0f,
                           w->glogits, &st->clean_err);
    /* CROWN-IBP mixes into the robust margins (training, robust batches only) */
    w->crown_on = ibp && o->train && !o->natural && o->crown > 0;
    if (grad)
        zero_grads(w, ibp);
    if (w->crown_on) {
        int rc = trn_crown_pass(w, B, o->crown, grad != NULL);
        if (rc)
            return rc;
        /* w->glb already holds the IBP share of the gradient */
        st->robust = trn_robust_loss_f(w->lbmix, B, nc - 1, 0.0f, NULL, &st->ibp_err);
    } else if (ibp) {
        st->robust = trn_robust_loss_f(w->lb, B, nc - 1, o->natural ? 0.0f : 1.0f, w->glb,
                                       &st->ibp_err);
    }
    st->loss = o->natural ? st->ce : st->robust;
    if (!grad)
        return 0;
    backward(w, B, ibp, o->train, o->reg_weight, o->tol, NULL, st);
    st->loss += o->reg_weight * (st->tight + st->relu);
    /* Reduce the threads' gradients; radius-stream gradients of |W| map back by sign(W). */
    int used = w->nth < B ? w->nth : B;
    memcpy(grad, w->tgrad[0], (size_t)m->n_params * sizeof(float));
    for (int t = 1; t < used; t++)
        for (int64_t k = 0; k < m->n_params; k++)
            grad[k] += w->tgrad[t][k];
    if (ibp)
        for (int i = 0; i < m->n_layers; i++) {
            const trn_layer *l = &m->layers[i];
            if (l->kind != TRN_CONV && l->kind != TRN_LINEAR)
                continue;
            for (int64_t k = l->w_off; k < l->w_off + l->n_w; k++) {
                float ga = 0;
                for (int t = 0; t < used; t++)
                    ga += w->tagrad[t][k];
                grad[k] += m->params[k] >= 0 ? ga : -ga;
            }
        }
    return 0;
}

int trn_input_grad(trn_model *m, trn_work *w, int B, float *gx)
{
    if (B < 1 || B > w->max_b || m != w->m)
        return ERR_ARG;
    int nc = m->n_classes, err_count;
    trn_step_stats st;
    memset(&st, 0, sizeof st);
    w->reg_fwd = 0;
    w->crown_on = 0;
    forward(w, B, 0, 0);
    zero_grads(w, 0);
    memset(w->glogits, 0, (size_t)B * nc * sizeof(float));
    trn_ce_loss_f(w->act[0][w->L], w->labels, B, nc, (float)B, w->glogits, &err_count);
    backward(w, B, 0, 0, 0, 0, gx, &st);
    return 0;
}
