/* bound.h: sound bounds on linear functions of a network's output over an
 * input box: IBP (interval arithmetic) and CROWN (backward linear relaxation).
 * Every bound is sound in real arithmetic AND after floating-point rounding
 * (docs/soundness.md): the rounding error of each step is bounded and added
 * outward. */
#ifndef BOUND_BOUND_H
#define BOUND_BOUND_H

#include <stdint.h>

#include "../core/err.h"
#include "../models/nn.h"

typedef struct bnd_net bnd_net;

/* Lower a finalized graph into a bound network. The graph must outlive the
 * net only during this call (everything needed is copied). An op without a
 * bound rule gives ERR_UNSUP naming the node. */
int bnd_net_new(const nn_graph *g, bnd_net **out, err *e);
void bnd_net_free(bnd_net *n);
int64_t bnd_n_in(const bnd_net *n);
int64_t bnd_n_out(const bnd_net *n);

typedef enum { BND_IBP, BND_CROWN } bnd_method;

/* Sound lb/ub of the m objectives C·y (C: m x n_out row-major; NULL = identity,
 * m = n_out) over the input box [lo, hi]. lb or ub may be NULL (that side is
 * skipped). */
int bnd_compute(bnd_net *n, bnd_method method, const double *lo, const double *hi,
                const double *C, int m, double *lb, double *ub, err *e);

/* Intermediate (pre-activation) bounds under CROWN:
 *  SPARSE: auto_LiRPA's default — CROWN for the neurons IBP finds unstable,
 *          replacing their IBP bounds; IBP-stable neurons keep IBP bounds.
 *  ALL:    auto_LiRPA's sparse_intermediate_bounds=False — CROWN for every
 *          neuron, replacing IBP.
 *  BEST:   CROWN for the IBP-unstable neurons, intersected with IBP (default).
 * All are sound. Tighter intermediate bounds usually, not always, give
 * tighter final bounds (the adaptive lower slope depends on them). */
typedef enum { BND_INTERM_BEST = 0, BND_INTERM_SPARSE, BND_INTERM_ALL } bnd_interm;
void bnd_set_interm(bnd_net *n, bnd_interm mode);

/* Policy knob: a pre-activation layer gets CROWN intermediate bounds only if
 * its number of IBP-unstable neurons is at most this (default 4096); larger
 * layers keep their IBP bounds. */
void bnd_set_crown_max_rows(bnd_net *n, int64_t rows);

/* Batched bounds for chain networks (dense linear layers and ReLUs only,
 * e.g. Gemm/ReLU MLPs): forward linear relaxation for the intermediate
 * bounds, CROWN backward for the objectives (batch.c). A bnd_mlp is
 * read-only after creation: several threads may bound with it at once. */
typedef struct bnd_mlp bnd_mlp;
/* ERR_UNSUP when the net is not such a chain. */
int bnd_mlp_new(const bnd_net *n, bnd_mlp **out, err *e);
void bnd_mlp_free(bnd_mlp *m);
int64_t bnd_mlp_n_in(const bnd_mlp *m);
/* Lower bounds lb (B x k) of the k objectives C·y (C: k x n_out, shared) over
 * each of the B boxes [lo, hi] (B x n_in each); A_in (B·k x n_in, may be NULL)
 * gets the input coefficients of each CROWN lower bound's linear function.
 * alpha_iters > 0: then that many alpha-CROWN iterations on the objective
 * rows' ReLU slopes (never looser than CROWN: the best bound is kept). */
int bnd_mlp_bound(const bnd_mlp *m, int64_t B, const double *lo, const double *hi, int k,
                  const double *C, int alpha_iters, double *lb, double *A_in, err *e);
/* Plain double forward pass of B points x (B x n_in) -> y (B x n_out). */
int bnd_mlp_eval(const bnd_mlp *m, int64_t B, const double *x, double *y, err *e);

#endif
