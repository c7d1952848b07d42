/* trn_crown.c: the CROWN-IBP part of a training pass (method crown-ibp). After
 * the forward pass has the IBP bounds of every ReLU input and the IBP margin
 * bounds, each thread takes its images in chunks, runs the CROWN backward walk
 * from the specification to the input (trn_crown_impl.h), mixes the margins as
 * f * CROWN-IBP + (1 - f) * IBP, takes the robust loss gradient per image, and
 * walks the chain forwards again for the CROWN share of the gradient: conv and
 * linear weights and biases go into the thread's gradient, BN scale/shift into
 * w->cgrad (the backward turns them into gamma, beta and batch-statistics
 * gradients), and the ReLU input bounds' share into w->xm / w->xr (added by the
 * backward to the interval stream). */
#include <stdlib.h>
#include <string.h>

#include "trn_work.h"

#define CROWN_CHUNK 8 /* images per walk: 8 x (classes-1) rows per gemm */

void trn_crown_free(trn_work *w)
{
    for (int i = 0; i < TRN_MAX_LAYERS; i++) {
        free(w->xm[i]);
        free(w->xr[i]);
        w->xm[i] = w->xr[i] = NULL;
    }
    for (int t = 0; t < TRN_MAX_THREADS; t++) {
        free(w->cgrad[t]);
        free(w->clam[t]);
        free(w->cscratch[t]);
        w->cgrad[t] = w->clam[t] = w->cscratch[t] = NULL;
    }
    free(w->lbmix);
    w->lbmix = NULL;
    w->crown_B = 0;
}

/* The chain for thread tid, images [n0, n0 + nimg): conv/linear/BN/ReLU layers
 * in order (Flatten left out); returns the number of layers. */
static int chain(trn_work *w, int tid, int n0, trn_crown_layer_f *L)
{
    trn_model *m = w->m;
    float *P = m->params, *G = w->tgrad[tid], *CG = w->cgrad[tid], *lam = w->clam[tid];
    int K = m->n_classes - 1, nl = 0;
    for (int i = 0; i < w->L; i++) {
        const trn_layer *l = &m->layers[i];
        if (l->kind == TRN_FLATTEN)
            continue;
        trn_crown_layer_f *c = &L[nl++];
        memset(c, 0, sizeof *c);
        c->kind = l->kind;
        c->in = (int)trn_layer_in_size(l);
        c->out = (int)trn_layer_out_size(l);
        c->lam = lam;
        lam += (size_t)CROWN_CHUNK * K * c->in;
        switch (l->kind) {
        case TRN_CONV:
            c->sh = (trn_conv_shape){l->in_c, l->in_h, l->in_w, l->out_c, l->k, l->stride, l->pad,
                                     l->out_h, l->out_w};
            /* fall through */
        case TRN_LINEAR:
            c->W = P + l->w_off;
            c->b = P + l->b_off;
            c->dW = G + l->w_off;
            c->db = G + l->b_off;
            break;
        case TRN_BN:
            c->C = l->in_c;
            c->HW = l->in_h * l->in_w;
            c->W = w->bn_scale[i];
            c->b = w->bn_shift[i];
            c->dW = CG + l->w_off;
            c->db = CG + l->b_off;
            break;
        case TRN_RELU:
            c->m = w->act[1][i] + (size_t)n0 * c->in;
            c->r = w->act[2][i] + (size_t)n0 * c->in;
            c->dm = w->xm[i] + (size_t)n0 * c->in;
            c->dr = w->xr[i] + (size_t)n0 * c->in;
            break;
        default:
            break;
        }
    }
    return nl;
}

static size_t lam_size(const trn_work *w)
{
    size_t s = 0;
    for (int i = 0; i < w->L; i++)
        if (w->m->layers[i].kind != TRN_FLATTEN)
            s += (size_t)trn_layer_in_size(&w->m->layers[i]);
    return s * CROWN_CHUNK * (w->m->n_classes - 1);
}

static int prepare(trn_work *w, int B)
{
    if (w->crown_B >= B)
        return 0;
    trn_crown_free(w);
    trn_model *m = w->m;
    int ok = 1, K = m->n_classes - 1;
    for (int i = 0; i < w->L; i++)
        if (m->layers[i].kind == TRN_RELU) {
            size_t n = (size_t)w->max_b * trn_layer_in_size(&m->layers[i]);
            w->xm[i] = malloc(n * sizeof(float));
            w->xr[i] = malloc(n * sizeof(float));
            ok &= w->xm[i] && w->xr[i];
        }
    trn_crown_layer_f L[TRN_MAX_LAYERS]; /* shapes only, for the scratch size */
    int nl = 0;
    for (int i = 0; i < w->L; i++)
        if (m->layers[i].kind != TRN_FLATTEN) {
            const trn_layer *l = &m->layers[i];
            trn_crown_layer_f *c = &L[nl++];
            memset(c, 0, sizeof *c);
            c->kind = l->kind;
            c->in = (int)trn_layer_in_size(l);
            c->out = (int)trn_layer_out_size(l);
            if (l->kind == TRN_CONV)
                c->sh = (trn_conv_shape){l->in_c, l->in_h, l->in_w, l->out_c, l->k, l->stride,
                                         l->pad, l->out_h, l->out_w};
        }
    size_t scr = trn_crown_scratch_f(L, nl, CROWN_CHUNK, m->n_classes);
    for (int t = 0; t < w->nth; t++) {
        w->cgrad[t] = malloc((size_t)m->n_params * sizeof(float));
        w->clam[t] = malloc(lam_size(w) * sizeof(float));
        w->cscratch[t] = malloc(scr * sizeof(float));
        ok &= w->cgrad[t] && w->clam[t] && w->cscratch[t];
    }
    w->lbmix = malloc((size_t)w->max_b * K * sizeof(float));
    ok &= w->lbmix != NULL;
    if (!ok) {
        trn_crown_free(w);
        return ERR_NOMEM;
    }
    w->crown_B = w->max_b;
    return 0;
}

typedef struct {
    trn_work *w;
    int B, want_grad;
    double f;
} crown_ctx;

static void crown_job(void *p, int tid, int64_t i0, int64_t i1)
{
    crown_ctx *x = p;
    trn_work *w = x->w;
    trn_model *m = w->m;
    int K = m->n_classes - 1, in0 = (int)trn_layer_in_size(&m->layers[0]);
    float f = (float)x->f;
    memset(w->cgrad[tid], 0, (size_t)m->n_params * sizeof(float));
    trn_crown_layer_f L[TRN_MAX_LAYERS];
    float g[CROWN_CHUNK * TRN_MAX_CLASSES];
    for (int64_t n0 = i0; n0 < i1; n0 += CROWN_CHUNK) {
        int nimg = (int)(i1 - n0 < CROWN_CHUNK ? i1 - n0 : CROWN_CHUNK);
        int nl = chain(w, tid, (int)n0, L);
        float *mix = w->lbmix + n0 * K, *ilb = w->lb + n0 * K, *glb = w->glb + n0 * K;
        const float *m0 = w->act[1][0] + n0 * in0, *r0 = w->act[2][0] + n0 * in0;
        trn_crown_bound_f(L, nl, m->n_classes, w->labels + n0, m0, r0, nimg, mix,
                          w->cscratch[tid]);
        for (int k = 0; k < nimg * K; k++)
            mix[k] = f * mix[k] + (1 - f) * ilb[k];
        if (!x->want_grad)
            continue;
        /* the robust loss is a mean over the batch of per-image terms */
        memset(g, 0, (size_t)nimg * K * sizeof(float));
        trn_robust_loss_f(mix, nimg, K, (float)nimg / (float)x->B, g, NULL);
        for (int k = 0; k < nimg * K; k++) {
            glb[k] = (1 - f) * g[k];
            g[k] *= f;
        }
        trn_crown_grad_f(L, nl, m->n_classes, w->labels + n0, m0, r0, nimg, g, w->cscratch[tid]);
    }
}

int trn_crown_pass(trn_work *w, int B, double f, int want_grad)
{
    int rc = prepare(w, B);
    if (rc)
        return rc;
    crown_ctx x = {w, B, want_grad, f};
    trn_par_for(w->nth, B, crown_job, &x);
    return 0;
}
