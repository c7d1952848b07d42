/* refine.h: intermediate bounds tightened by branch and bound on the ReLUs
 * before them (refine.c; private to bab/). */
#ifndef BAB_REFINE_H
#define BAB_REFINE_H

#include "../bound/bound.h"

typedef struct bab_refine_opts {
    double deadline;     /* clock_now() value */
    int max_leaves;      /* leaves per bound (neuron and side) */
    int layer_leaves;    /* > 0: a layer with few unstable neurons shares this many
                            leaves among its bounds instead (up to 16x max_leaves) */
    size_t mem_budget;   /* bytes of leaves in all (0: no limit); lowers max_leaves */
    int threads;         /* the jobs shared by this many threads */
    int f64;             /* bnd_bbeta_opts.f64 */
} bab_refine_opts;

typedef struct bab_refine_stats {
    int64_t rounds, jobs, unstable_before, unstable_after;
    double width_before, width_after; /* summed over the neurons unstable before / after */
} bab_refine_stats;

/* Tighten the pre-activation bounds of activation layer `layer` (>= 1) of the
 * chain ReLU MLP m over the input box [lo, hi]: plo/phi hold every ReLU
 * neuron's bounds (bnd_mlp_relu_count, layer order), valid on the box; the
 * layer's unstable neurons get sound bounds from a branch and bound over the
 * ReLUs before them, met with theirs. Returns 0 or < 0 on error. */
int bab_refine_layer(const bnd_mlp *m, const double *lo, const double *hi, double *plo,
                     double *phi, int layer, const bab_refine_opts *o, bab_refine_stats *st,
                     err *e);

#endif
