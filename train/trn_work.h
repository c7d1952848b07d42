/* trn_work.h: the work buffers of a network pass (private to trn_net.c and
 * trn_crown.c; others see trn_work as an opaque type). */
#ifndef TRAIN_TRN_WORK_H
#define TRAIN_TRN_WORK_H

#include "trn.h"

struct trn_work {
    trn_model *m;
    int max_b, nth, L;
    int64_t max_act, max_col;
    float *act[3][TRN_MAX_LAYERS + 1]; /* clean x, centre m, radius r at each layer input */
    float *own[3][TRN_MAX_LAYERS + 1]; /* owned buffers (NULL where aliased) */
    float *g[2][3];                    /* ping-pong gradient buffers */
    double *bn_mean[TRN_MAX_LAYERS], *bn_var[TRN_MAX_LAYERS];
    float *bn_scale[TRN_MAX_LAYERS], *bn_shift[TRN_MAX_LAYERS], *bn_ascale[TRN_MAX_LAYERS];
    float *col[TRN_MAX_THREADS];
    float *tgrad[TRN_MAX_THREADS], *tagrad[TRN_MAX_THREADS];
    double *tsums[TRN_MAX_THREADS];
    float *absw;
    int *labels;
    float *glogits, *lb, *glb;
    double tau0;
    int reg_fwd;                                  /* accumulate regulariser sums in forward */
    double reg_sums[TRN_MAX_LAYERS][TRN_MAX_THREADS][8];
    double bn_sums[TRN_MAX_THREADS][2 * TRN_MAX_BN];    /* BN statistics per thread */
    /* CROWN-IBP (trn_crown.c), allocated on first use */
    int crown_on;                      /* this pass mixes in CROWN-IBP bounds */
    int crown_B;                       /* batch size the buffers below hold */
    float *xm[TRN_MAX_LAYERS], *xr[TRN_MAX_LAYERS]; /* ReLU layers: extra input-interval grads */
    float *cgrad[TRN_MAX_THREADS];     /* per thread, at BN gamma/beta offsets: grads of a, c */
    float *clam[TRN_MAX_THREADS], *cscratch[TRN_MAX_THREADS];
    float *lbmix;                      /* the mixed margin bounds (B x (classes-1)) */
};

/* trn_crown.c: CROWN-IBP margins mixed into w->lb's IBP ones (weight f), the
 * robust-loss gradient of the mix into w->glb (IBP share) and, with want_grad,
 * the CROWN share into the thread gradients, w->cgrad and w->xm / w->xr. */
int trn_crown_pass(trn_work *w, int B, double f, int want_grad);
void trn_crown_free(trn_work *w);

#endif
