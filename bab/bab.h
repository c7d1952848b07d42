/* bab.h: deciding a property: attacks, bounds and (later) branch and bound.
 *
 * bab_verify is the whole verification procedure behind `verify`: a quick
 * attack for counterexamples, then bounds that try to prove every unsafe
 * clause empty. Every counterexample it returns has been re-checked by a plain
 * forward pass (double and float) against the property. */
#ifndef BAB_BAB_H
#define BAB_BAB_H

#include <stdint.h>

#include "../models/nn.h"
#include "../specs/spec.h"

typedef enum { BAB_UNSAT, BAB_SAT, BAB_UNKNOWN, BAB_TIMEOUT } bab_answer;

const char *bab_answer_name(bab_answer a);

/* Input-split branching heuristics: |CROWN input coefficient| x width of
 * each dimension (smear), width relative to the root box, or the sum of
 * both, each normalised by its largest value over the dimensions (mix). */
typedef enum { BAB_SPLIT_SMEAR = 0, BAB_SPLIT_WIDTH, BAB_SPLIT_MIX } bab_split;

#define BAB_MAX_THREADS 16

typedef struct bab_opts {
    double timeout;      /* seconds; <= 0: none */
    uint64_t seed;
    int verbose;         /* progress on stderr */
    int threads;         /* worker threads for branch and bound; 0 = 2 */
    int batch;           /* boxes bounded together; 0 = default */
    bab_split split;
    int max_split_inputs; /* input split when n_x <= this; 0 = default (20), < 0 never */
    int strategy;        /* BAB_STRATEGY_*: 0 = automatic */
    int branching;       /* ReLU split: 0 = default (BaBSR), 1 = BaBSR, 2 = FSB */
    size_t memory;       /* bytes for the search's open domains / boxes and batch
                            buffers (--memory); 0 = bab_default_memory() */
} bab_opts;

/* Half of the physical memory (sysconf), or 4 GB when unknown. */
size_t bab_default_memory(void);

enum { BAB_STRATEGY_AUTO = 0, BAB_STRATEGY_INPUT, BAB_STRATEGY_RELU, BAB_STRATEGY_NONE,
       BAB_STRATEGY_STAR };

void bab_opts_default(bab_opts *o);

typedef struct bab_result {
    bab_answer answer;
    int64_t n_x, n_y;
    double *x, *y;           /* counterexample when answer == BAB_SAT */
    int region;              /* region the counterexample lies in */
    /* statistics */
    double t_load, t_attack, t_bound, t_total;
    int64_t n_evals, n_bound_calls, n_domains;
    int64_t n_attacks, n_attack_hits;  /* attack runs, and those that found the answer */
    const char *strategy;              /* "input-split" or "refute" */
} bab_result;

void bab_result_free(bab_result *r);

int bab_verify(const nn_graph *g, const spec_property *p, const bab_opts *o,
               bab_result *res, err *e);

/* ---- attacks ---- */
typedef struct bab_attack_opts {
    double deadline;     /* clock_now() value; 0 = none */
    int restarts;        /* PGD starts per region */
    int steps;           /* PGD steps per start */
    int samples;         /* random samples per region before PGD */
    int local;           /* then a local search of this many forward passes (0: none) */
    uint64_t seed;
} bab_attack_opts;

/* Search region r for a counterexample. Returns 1 and fills x (n_x values)
 * when one is found AND validated by bab_check_counterexample, 0 when none was
 * found, < 0 on error. *n_evals (if not NULL) is increased by the forward passes used. */
int bab_attack(const nn_graph *g, const spec_property *p, int r, const bab_attack_opts *o,
               double *x, int64_t *n_evals, err *e);

/* 1 if x lies in region r's box and the outputs violate one of its clauses,
 * both in double and in float evaluation (tolerance 1e-4 as in VNN-COMP, and
 * tolerance 0 in double); fills y (double outputs) if not NULL. 0 if not, < 0 on error. */
int bab_check_counterexample(const nn_graph *g, const spec_property *p, int r,
                             const double *x, double *y, err *e);

/* ---- branch and bound over general nonlinear splits (genbab.c) ---- */
typedef enum { BAB_BRANCH_GENBAB = 0, BAB_BRANCH_WIDTH } bab_branch_rule;

typedef struct bab_genbab_opts {
    double deadline;     /* clock_now() value; 0 = none */
    bab_branch_rule rule;
    int topk;            /* GenBaB: candidates re-checked by real bounds (1, the
                            default: none) */
    int midpoint;        /* split smooth neurons at the midpoint, not the table point */
    int no_fold;         /* keep fixed inputs in the network (see bnd_fold_fixed_inputs) */
    int tau_iters;       /* tangent-point rounds per bound (bnd_split_bound) */
    int root_alpha;      /* alpha-CROWN rounds of the root's final pass */
    int root_interm;     /* and of its intermediate bounds (the children start
                            from the root's intervals) */
    struct bab_genbab_root *root; /* optional: the root's intervals, shared by the
                            clauses of one region (bab_genbab_root_new) */
    int input_splits;    /* also branch on input intervals (at most 64 moving) */
    int64_t crown_max_rows; /* > 0: bnd_set_crown_max_rows for the domains' bounds */
    double refine_frac;  /* in (0, 1): children refine only this top fraction of a
                            wide (> 256) smooth population by CROWN; else all */
    int64_t max_domains;
    size_t mem_budget;   /* bytes of open domains; past it the clause stays open (0: none) */
    int threads;         /* workers sharing the domain stack (one bound network each) */
    int verbose;
} bab_genbab_opts;

typedef struct bab_genbab_stats {
    int64_t domains, bound_calls, max_queue;
    int64_t input_splits, kink_splits, smooth_splits; /* branchings by kind */
    double root_margin;  /* max over rows of (lower bound - threshold) at the root */
} bab_genbab_stats;

void bab_genbab_opts_default(bab_genbab_opts *o);
/* Prove that no x in [lo, hi] satisfies clause cl (all rows C y <= d) by
 * branching on the pre-activation intervals of the network's nonlinear
 * neurons (and, with input_splits, on the input intervals).
 * Returns 1 when proven, 0 when not (time or domain limit, nothing left to
 * split), < 0 on error. */
int bab_genbab(const nn_graph *g, const double *lo, const double *hi, const spec_clause *cl,
               const bab_genbab_opts *o, bab_genbab_stats *st, err *e);
/* The root intervals of one input box: filled by the first bab_genbab call
 * that has it in its opts, reused by later calls over the same box and the
 * same network (the other clauses of a region; nn_graph_fingerprint tells
 * networks apart), so the root's alpha-CROWN intermediate bounds are computed
 * once per region. Another network or box refills it. NULL on out of memory. */
typedef struct bab_genbab_root bab_genbab_root;
bab_genbab_root *bab_genbab_root_new(void);
void bab_genbab_root_free(bab_genbab_root *r);

/* ---- ReLU-split branch and bound (relu_split.c) ---- */
typedef enum { BAB_BRANCH_BABSR, BAB_BRANCH_FSB } bab_branching;

typedef struct bab_relu_opts {
    double deadline;     /* clock_now() value; 0 = none */
    int threads;         /* workers, one bnd_net each */
    bab_branching branching;
    int fsb_k;           /* FSB: candidates re-bounded per branching */
    int beta_iters;      /* beta gradient steps per domain */
    double beta_lr;
    int alpha;           /* optimise lower ReLU slopes jointly with beta */
    double alpha_lr;
    int interm;          /* recompute intermediate bounds after the new split */
    int interm_iters;    /* ... optimised this many steps (0: CROWN) */
    int root_interm_iters; /* root intermediate bounds optimised (alpha) */
    size_t mem_budget;   /* bytes of open domains: past half of it workers go
                            depth-first; past all of it the search stops (unknown) */
    int batch;           /* chain MLPs: domains split per batched pass (0: one at a time) */
    double root_lp;      /* > 0: this fraction of the time left tightens the root's
                            intermediate bounds by LP (bnd_lp_refine); 0 = off */
    double refine;       /* > 0: this fraction of the time left tightens the root's
                            intermediate bounds by branch and bound (refine.c) */
    int refine_leaves;   /* leaves per refined bound */
    int refine_layer_leaves; /* > 0: leaves shared by a layer's bounds when that gives
                            each more than refine_leaves (refine.h) */
    double refine_after; /* bab_verify: the search without refinement first, for
                            this fraction of the time */
    int f64;             /* batched bounds: every optimisation step in double (slower;
                            0: steps in single precision, the bound in double) */
    int verbose;
} bab_relu_opts;

void bab_relu_opts_default(bab_relu_opts *o);

/* Decide region r of p by ReLU-split BaB with beta-CROWN bounds. *ans gets
 * BAB_UNSAT (every clause refuted on every domain), BAB_SAT (x filled with a
 * validated counterexample), BAB_TIMEOUT or BAB_UNKNOWN. The counters (if
 * not NULL) are increased. */
int bab_relu_split(const nn_graph *g, const spec_property *p, int r, const bab_relu_opts *o,
                   bab_answer *ans, double *x, int64_t *n_domains, int64_t *n_evals, err *e);
/* 1 when bab_relu_split can refine the root's intermediate bounds on g (a
 * chain of dense layers and ReLUs with at least two ReLU layers; refine.c). */
int bab_relu_can_refine(const nn_graph *g);

#endif
