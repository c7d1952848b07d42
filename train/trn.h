/* trn.h: internals of the certified trainer shared by train/ files and the
 * tests (the public interface is train.h). */
#ifndef TRAIN_TRN_H
#define TRAIN_TRN_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/rng.h"
#include "../models/nn.h"
#include "train.h"

#define TRN_MAX_CH 4
#define TRN_MAX_CLASSES 100
#define TRN_MAX_LAYERS 64
#define TRN_MAX_THREADS 16
#define TRN_MAX_BN 4096 /* channels or features of one BatchNorm */
#define TRN_BN_EPS 1e-5
#define TRN_BN_MOMENTUM 0.1

/* ---- random numbers (core/rng.c, trn_rng.c) ---- */
typedef rng trn_rng; /* core/rng.h: xoshiro256** */
uint64_t trn_rng_below(trn_rng *r, uint64_t n);
void trn_rng_shuffle(trn_rng *r, int64_t *idx, int64_t n);

/* ---- data (trn_data.c) ---- */
typedef struct trn_dataset {
    int64_t n;
    int c, h, w, n_classes;
    uint8_t *pixels; /* n*c*h*w bytes, NCHW */
    uint8_t *labels;
    float mean[TRN_MAX_CH], std[TRN_MAX_CH]; /* normalisation of pixel/255 */
    int augment;                             /* default augmentation (CIFAR) */
} trn_dataset;
int trn_idx_read(const char *path, int want_rank, int64_t *dims, uint8_t **out, err *e);
int trn_data_load_idx(const char *images, const char *labels, trn_dataset *d, err *e);
int trn_data_load_cifar(const char *const *paths, int n_paths, trn_dataset *d, err *e);
int trn_data_load(const char *name, const char *dir, int train, trn_dataset *d, err *e);
void trn_data_free(trn_dataset *d);
void trn_data_channel_stats(const trn_dataset *d, float *mean, float *std);
void trn_data_batch(const trn_dataset *d, const int64_t *idx, int n, int aug, int pad,
                    trn_rng *rng, float *x, int *y);

/* ---- kernels (trn_kern_impl.h), float (_f) and double (_d) ---- */
typedef struct trn_conv_shape {
    int cin, h, w, cout, k, stride, pad, ho, wo;
} trn_conv_shape;
#define TRN_CONV_CHUNK 8 /* images per gemm in stride-1 convolutions */
/* Scratch elements a conv kernel call needs (per thread). */
size_t trn_conv_scratch(const trn_conv_shape *sh);
#define REAL float
#define SFX _f
#include "trn_kern_decl.h"
#include "trn_crown_decl.h"
#undef REAL
#undef SFX
#define REAL double
#define SFX _d
#include "trn_kern_decl.h"
#include "trn_crown_decl.h"
#undef REAL
#undef SFX

/* ---- model (trn_model.c) ---- */
typedef enum { TRN_CONV, TRN_LINEAR, TRN_BN, TRN_RELU, TRN_FLATTEN } trn_kind;

typedef struct trn_layer {
    trn_kind kind;
    int in_c, in_h, in_w;    /* per-image input shape (linear: in_c features, 1x1) */
    int out_c, out_h, out_w;
    int k, stride, pad;      /* conv */
    int64_t w_off, n_w;      /* conv/linear weight, BN gamma */
    int64_t b_off, n_b;      /* conv/linear bias, BN beta */
    int64_t stat_off;        /* BN: running mean at stat_off, running var after it */
} trn_layer;

typedef struct trn_model {
    int n_layers;
    trn_layer layers[TRN_MAX_LAYERS];
    int in_c, in_h, in_w, n_classes;
    int64_t n_params, n_stats;
    float *params, *stats;
    float mean[TRN_MAX_CH], std[TRN_MAX_CH];
} trn_model;

int trn_model_build(const trn_config *c, int in_c, int in_h, int in_w, int n_classes,
                    trn_model **out, err *e);
void trn_model_free(trn_model *m);
int64_t trn_layer_in_size(const trn_layer *l);
int64_t trn_layer_out_size(const trn_layer *l);
/* PyTorch default init, then (ibp_init) N(0, (sqrt(2 pi)/fan_in)^2) for every
 * weight except the last layer's (Shi et al. 2021). */
void trn_model_init(trn_model *m, trn_rng *rng, int ibp_init);
double trn_ibp_init_std(int64_t fan_in);
/* Fold BN into the preceding conv/linear and write the IR graph. */
int trn_model_to_graph(const trn_model *m, nn_graph **out, err *e);
/* The inverse for evaluation: a Conv/Gemm/Relu/Flatten chain (no BN) as a model. */
int trn_model_from_graph(const nn_graph *g, trn_model **out, err *e);

/* ---- parallel for (trn_par.c) ---- */
typedef void (*trn_par_fn)(void *ctx, int tid, int64_t i0, int64_t i1);
void trn_par_for(int nthreads, int64_t n, trn_par_fn fn, void *ctx);

/* ---- network passes (trn_net.c) ---- */
typedef struct trn_work trn_work;
trn_work *trn_work_new(const trn_model *m, int max_batch, int nthreads);
void trn_work_free(trn_work *w);
float *trn_work_input(trn_work *w, int stream); /* 0 clean x, 1 centre, 2 radius */
int *trn_work_labels(trn_work *w);

typedef struct trn_step_stats {
    double ce, robust, tight, relu, loss;
    int n, clean_err, ibp_err;
} trn_step_stats;

/* Forward (and, if train, backward and parameter gradients into grad) on the batch
 * already in the work's input buffers. ibp_eps: 0 = no interval pass. */
typedef struct trn_pass_opts {
    int train;            /* BN batch statistics + backward */
    double box_eps;       /* eps of the interval box in pixel units, 0 = no interval pass */
    int natural;          /* loss = clean CE (else robust) */
    double reg_weight;    /* lambda (1 - eps/eps_max), 0 = no regulariser */
    double tol;
    /* CROWN-IBP (training only): the margin bounds are crown * CROWN-IBP +
     * (1 - crown) * IBP; 0 = IBP alone */
    double crown;
} trn_pass_opts;
int trn_pass(trn_model *m, trn_work *w, int B, const trn_pass_opts *o, float *grad,
             trn_step_stats *st);
/* Logits of the last forward (B x n_classes) and the margin lower bounds its loss used
 * (B x (n_classes-1); the CROWN-IBP / IBP mix when crown > 0). */
const float *trn_work_logits(trn_work *w);
const float *trn_work_margins(trn_work *w);
/* Eval-mode clean gradient of the mean CE (or of the margin loss) w.r.t. the input (for PGD). */
int trn_input_grad(trn_model *m, trn_work *w, int B, float *gx);

/* ---- optimiser and schedules (trn_optim.c) ---- */
typedef struct trn_adam {
    int64_t n, t;
    float *m, *v;
} trn_adam;
int trn_adam_init(trn_adam *a, int64_t n, err *e);
void trn_adam_free(trn_adam *a);
void trn_adam_step(trn_adam *a, float *p, const float *g, double lr, double b1, double b2,
                   double eps);
double trn_clip_grad_norm(float *g, int64_t n, double max_norm); /* returns the norm before */
double trn_lr_at(const trn_config *c, int epoch);                  /* epoch is 1-based */
/* SmoothedScheduler of auto_LiRPA: eps for a 0-based global training step. */
double trn_eps_at(double eps_max, int start, int length, int64_t batches_per_epoch, int64_t step);

/* ---- checkpoints (trn_ckpt.c) ---- */
typedef struct trn_state {
    int epoch;           /* epochs completed */
    int64_t step;        /* global batch counter */
    trn_rng rng;
    trn_adam adam;
} trn_state;
int trn_ckpt_save(const char *path, const trn_model *m, const trn_state *s, err *e);
int trn_ckpt_load(const char *path, trn_model *m, trn_state *s, err *e);

/* ---- verification through bound/ (trn_verify.c) ---- */
typedef struct trn_verify_result {
    int64_t n, n_crown;          /* images checked (CROWN: the first n_crown) */
    int64_t clean, ibp, crown;   /* errors: misclassified / not verified */
    double seconds;
} trn_verify_result;
int trn_verify_graph(const nn_graph *g, const trn_dataset *d, double eps, int64_t n, int64_t n_crown,
                     int nthreads, trn_verify_result *r, err *e);
/* The same, at c->eps on c->verify_limit / c->crown_limit images, into r's v_ fields. */
int trn_verify_into(const nn_graph *g, const trn_dataset *d, const trn_config *c,
                    trn_eval_result *r, err *e);

/* ---- evaluation (trn_eval.c) ---- */
int trn_evaluate(trn_model *m, const trn_dataset *d, double eps, int pgd_steps, int64_t limit,
                 int batch, int nthreads, trn_eval_result *r, err *e);

#endif
