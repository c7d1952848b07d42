/* stress_gen.h: random networks, input boxes and specs for the soundness
 * stress test (tests/test_stress.c, scripts/stress.c).
 *
 * sg_network builds a finalized graph with the builder API of models/nn.h over
 * every op that bound/ lowers (Gemm, MatMul, Add/Sub/Mul/Div by broadcast
 * constants, residual Add/Sub, Neg, Relu, Flatten, Reshape, Identity, Dropout,
 * Conv 1-D/2-D, BatchNormalization, Transpose, Squeeze, Unsqueeze, Concat,
 * Slice, AveragePool, GlobalAveragePool, ReduceSum, ReduceMean). sg_check_case
 * compares IBP and CROWN bounds with sampled points; sg_check_bab compares
 * bab_verify with dense sampling. No main here: this file is linked into the
 * Criterion binary too. */
#ifndef TESTS_STRESS_GEN_H
#define TESTS_STRESS_GEN_H

#include <stdint.h>
#include <stdio.h>

#include "../core/rng.h"
#include "../models/nn.h"
#include "../specs/spec.h"

/* Weight regimes. */
enum { SG_NUM_NORMAL, SG_NUM_DYADIC, SG_NUM_HUGE, SG_NUM_TINY, SG_NUM_MIXED, SG_NUM_COUNT };
/* Box regimes. */
enum {
    SG_BOX_NARROW, SG_BOX_WIDE, SG_BOX_POINT, SG_BOX_SOMEPOINT, SG_BOX_FAR, SG_BOX_TINY,
    SG_BOX_DYADIC, SG_BOX_COUNT
};

typedef struct sg_opts {
    int max_ops;         /* random ops before the output head */
    int64_t max_elems;   /* largest intermediate tensor */
    int64_t max_in;      /* largest input */
    int64_t max_out;     /* largest output */
    int numerics;        /* SG_NUM_*, or -1 for random */
    int smooth;          /* 1: one op in 3 is a smooth nonlinearity (Sigmoid, Tanh,
                            Sin, Cos, Erf, Softplus, Gelu, LeakyRelu, Abs, Exp, Log,
                            Sqrt, Reciprocal, Pow) or a Mul/Div of two computed
                            tensors, each with inputs inside its domain */
} sg_opts;

/* A finalized random network; desc (if not NULL) receives the op list. */
int sg_network(rng *r, const sg_opts *o, nn_graph **out, char *desc, size_t desc_len, err *e);

/* A random box of regime kind (SG_BOX_*, -1 random) in lo/hi (n values). */
void sg_box(rng *r, int kind, int64_t n, double *lo, double *hi);

/* A random property over the box with 1-2 clauses of 1-3 rows whose
 * thresholds sit between the given output bounds (ylo/yhi may be NULL),
 * written as VNNLIB text and parsed; one time in three the box is given as an
 * `or` of its two halves (two regions). */
int sg_spec(rng *r, int64_t n_x, int64_t n_y, const double *lo, const double *hi,
            const double *ylo, const double *yhi, spec_property **out, err *e);

/* Totals of sg_check_case / sg_check_bab. */
typedef struct sg_stats {
    int64_t cases, unsupported, samples;
    int64_t violations;        /* sample outside a bound beyond eval rounding: a BUG */
    int64_t near_misses;       /* outside by less than eval rounding (not a bug) */
    int64_t nonfinite;         /* samples skipped: nn_eval overflowed (inf or NaN) */
    int64_t crown_looser;      /* CROWN looser than IBP beyond slack (reported) */
    int64_t crown_looser_tiny; /* CROWN looser than IBP within slack */
    double crown_looser_max;   /* largest relative excess (of the IBP width) */
    uint64_t crown_looser_seed; /* the case where it happened */
    int64_t exact_cases, exact_points; /* sg_check_exact (violations counted above) */
    int64_t bab_cases, bab_unsat, bab_sat, bab_unknown;
    int64_t bab_wrong;         /* unsat but sampling violates / invalid sat: a BUG */
    int64_t bab_domains;       /* domains GenBaB explored (sg_check_genbab) */
    double gap_sum;            /* sum of log10((ub - lb) / sample hull width), CROWN */
    int64_t gap_n;
} sg_stats;

void sg_stats_add(sg_stats *to, const sg_stats *from);
void sg_stats_print(FILE *f, const sg_stats *s);

/* One (network, box) case: bounds of the outputs and of random objectives by
 * IBP and CROWN versus `samples` points (uniform, corners, a greedy corner
 * descent per objective). A violation is printed to log (if not NULL) with the
 * seed, description and numbers. Returns < 0 only on an internal error. */
int sg_check_case(uint64_t seed, const sg_opts *o, int samples, sg_stats *st, FILE *log);

/* Exact-arithmetic check at the rounding level: a 2-layer ReLU network
 * (Gemm, Relu, Gemm) whose weights and inputs are 30-bit fixed-point numbers,
 * so f(x) is computed exactly in 128-bit integers while every double
 * operation of the bound code rounds. Point boxes and small boxes (corners
 * checked), with and without near-total cancellation. */
int sg_check_exact(uint64_t seed, sg_stats *st, FILE *log);

/* bab_verify on a tiny network and random spec versus dense sampling. */
int sg_check_bab(uint64_t seed, int samples, sg_stats *st, FILE *log);

/* bab_genbab on a tiny (medium: up to 10 ops, 12 inputs) network with smooth
 * ops (tests/stress_genbab.c): a clause a sampled point satisfies must stay
 * open (a proof counts in bab_wrong; staying open in bab_sat), and a clause
 * below the sampled minimum may be proven (bab_unsat, else bab_unknown).
 * budget: seconds per clause. */
int sg_check_genbab(uint64_t seed, int samples, double budget, int medium, sg_stats *st,
                    FILE *log);

#endif
