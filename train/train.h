/* train.h: the certified trainer (IBP / CROWN-IBP training with the short-warmup
 * recipe of Shi et al. 2021). A job is described by a trn_config (JSON file or
 * --key=value flags), run by trn_run; trn_eval_file evaluates a model file. */
#ifndef TRAIN_TRAIN_H
#define TRAIN_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "../core/err.h"

#define TRN_MAX_HIDDEN 8
#define TRN_MAX_MILESTONES 8

typedef struct trn_config {
    char dataset[256];     /* fashion-mnist | mnist | cifar10 | a directory of IDX files */
    char data_dir[1024];   /* overrides the dataset's default directory */
    char model[32];        /* cnn7 | cnn_small | mlp */
    int width, linear_size;
    int hidden[TRN_MAX_HIDDEN], n_hidden; /* mlp widths */
    double eps;            /* L_inf radius in pixel units ([0,1] images) */
    int epochs, sched_start, sched_length; /* eps ramp: SmoothedScheduler start, length */
    int batch;
    double lr, lr_decay;
    int milestones[TRN_MAX_MILESTONES], n_milestones;
    double grad_clip, reg_lambda, tol, min_eps_reg;
    int reg, ibp_init;
    char method[16];       /* ibp | crown-ibp */
    uint64_t seed;
    char out[1024];
    char export_path[1024]; /* --eval of a checkpoint: also write the model here (.json/.onnx) */
    int threads;
    int64_t train_limit, test_limit; /* use only the first N images (0 = all) */
    int64_t verify_limit, crown_limit; /* test images checked through bound/ (IBP: 0 = all) */
    int pgd_steps;
    int augment;           /* -1 = dataset default */
    int pad;
    int verbose;
} trn_config;

typedef struct trn_eval_result {
    int64_t n;
    double clean_err, pgd_err, ibp_err; /* the trainer's float passes (fractions) */
    double seconds;
    /* Through the verifier's code (bound/, sound IBP and CROWN) on the exported model:
     * v_n images (CROWN on the first v_n_crown); negative errors if not run. */
    int64_t v_n, v_n_crown;
    double v_clean_err, v_ibp_err, v_crown_err, v_seconds;
} trn_eval_result;

void trn_config_default(trn_config *c);
int trn_config_load_json(trn_config *c, const char *path, err *e);
int trn_config_set(trn_config *c, const char *key, const char *value, err *e);

/* Train; resume from <out>/checkpoint.bin when resume is set. */
int trn_run(const trn_config *c, int resume, err *e);
/* Evaluate a trained model file on the config's test set at c->eps. */
int trn_eval_file(const char *model_path, const trn_config *c, trn_eval_result *r, err *e);
/* Print an evaluation: the trainer's float numbers and the verifier's. */
void trn_eval_print(FILE *f, const char *what, double eps, int pgd_steps, const trn_eval_result *r);

#endif
