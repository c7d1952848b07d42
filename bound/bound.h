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
/* Fold the fixed inputs of the box (lo == hi) into the bias of the first
 * layer (with its rounding in bias_err): afterwards n's input is the moving
 * inputs only, idx[0..n_moving) their original positions (idx holds n_in).
 * Returns 1 when folded, 0 when not applicable (n unchanged), < 0. */
int bnd_fold_fixed_inputs(bnd_net *n, const double *lo, const double *hi, int64_t *idx,
                          int64_t *n_moving, err *e);
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

/* Rounds of alpha-CROWN for smooth activations (per-row tangent points,
 * tau_opt.c) in the intermediate bounds of bnd_split_bound: each CROWN
 * row of a pre-activation layer after a smooth layer optimises its own
 * tangent points (default 0: the default lines). */
void bnd_set_tau_interm(bnd_net *n, int iters);
/* Thresholds d of the objective rows of the following bnd_split_bound
 * calls (the caller keeps them alive; NULL: none): the final pass stops
 * its tangent rounds once some row's bound exceeds its threshold. */
void bnd_set_tau_stop(bnd_net *n, const double *d);

/* A clock_now() deadline (0: none, the default): once it has passed, every
 * bound computation on n (CROWN and beta passes, one check per layer; LPs
 * through GLPK's time limit) stops and returns ERR_TIMEOUT, so --timeout
 * holds within one layer's work. No partial bound is returned. */
void bnd_set_deadline(bnd_net *n, double deadline);

/* alpha-CROWN lower bounds lb (k) of the rows of C·y over [lo, hi]: the
 * lower slopes of unstable ReLUs optimised per row for `iters` steps from
 * CROWN's; never looser than CROWN (alpha.c). */
int bnd_alpha_crown(bnd_net *n, const double *lo, const double *hi, const double *C, int k,
                    int iters, double *lb, err *e);

/* Rounding accounting (round.c, docs/soundness.md): gamma_n = n u / (1 - n u)
 * rounded up (a sum of n products is within gamma_n · sum |terms|), and an
 * error term inflated to cover its own rounding. */
double bnd_gamma(double n);
double bnd_safe(double x);

/* Batched bounds for chain networks (dense linear layers and elementwise
 * activations, e.g. Gemm/ReLU or Gemm/Sigmoid MLPs): forward linear relaxation for the intermediate
 * bounds, CROWN backward for the objectives (batch.c). A bnd_mlp is
 * read-only after creation: several threads may bound with it at once. */
typedef struct bnd_mlp bnd_mlp;
/* ERR_UNSUP when the net is not such a chain. Activation layers may be any
 * elementwise rule (ReLU, sigmoid, tanh, ...); bnd_mlp_all_relu says whether
 * they are all ReLU (needed by alpha steps and by beta_batch.c). */
int bnd_mlp_new(const bnd_net *n, bnd_mlp **out, err *e);
int bnd_mlp_all_relu(const bnd_mlp *m);
/* bnd_mlp_bound_fn for activation patterns (bab/exact_box.c): records
 * rec_in / rec_out (bnd_mlp_n_pre + bnd_mlp_n_fn doubles per box) whose
 * intervals hold some neurons at one side of 0 (a lower or upper end of 0);
 * those neurons also get refined lines in rec_out, so a pattern's
 * constraints on x can be read off as the lines of z (z <= 0) and -z. */
int bnd_mlp_bound_patterns(const bnd_mlp *m, int64_t B, const double *lo, const double *hi,
                           int k, const double *C, const double *rec_in, double *rec_out,
                           double *lb, double *A_in, err *e);
/* The neurons a box's pre-activation intervals (pre: bnd_mlp_n_pre doubles,
 * as bnd_mlp_bound_pre stores them) leave unstable: for the first max of
 * them, the position of the lower bound in pre (the upper one is width
 * further), and the neuron's index among all pre-activations (the order of
 * the line records, bnd_mlp_fn_line). Returns how many there are. */
int64_t bnd_mlp_unstable(const bnd_mlp *m, const double *pre, int64_t max, int64_t *pos,
                         int64_t *width, int64_t *neuron);
/* 1 if some interval of pre (bnd_mlp_n_pre doubles) is empty (lower >
 * upper): the set the intervals describe holds no point. */
int bnd_mlp_pre_empty(const bnd_mlp *m, const double *pre);
/* A pre-activation neuron's line in a box's record of lines (fn:
 * bnd_mlp_n_fn doubles as bnd_mlp_bound_fn stores them; its first 2·n_in
 * values are the box [rlo, rhi] they refer to): side 0 for z, 1 for -z,
 * (v, a[n_in]) with s >= v + sum_t |a_t| dist_t(x) on [rlo, rhi], dist_t(x)
 * = x_t - rlo_t (a_t > 0) or rhi_t - x_t (a_t < 0); v = -inf: none. */
const double *bnd_mlp_fn_line(const bnd_mlp *m, const double *fn, int64_t neuron, int side);
void bnd_mlp_free(bnd_mlp *m);
/* Layer i of a chain MLP (0 <= i < bnd_mlp_n_layers), for the exact region
 * enumeration of bab/star.c. kind: 0 linear, 1 ReLU, 2 another activation.
 * A linear layer has W (n x n_in, row-major), bias, bias_err (may be NULL)
 * and g: its forward sum at inputs of magnitude m is within
 * g·(|W|·m + |b|) + bias_err of the exact one (coefficient roundings from
 * lowering included). pre_off: the layer's offset in a pre record
 * (bnd_mlp_bound_pre: lower bounds there, upper ones n further), -1 when
 * the layer does not feed a ReLU. */
typedef struct {
    int kind;
    int64_t n, n_in;
    const double *W, *bias, *bias_err;
    double g;
    int64_t pre_off;
} bnd_mlp_layer_info;
int bnd_mlp_n_layers(const bnd_mlp *m);
void bnd_mlp_layer(const bnd_mlp *m, int i, bnd_mlp_layer_info *info);
int64_t bnd_mlp_n_in(const bnd_mlp *m);
int64_t bnd_mlp_n_out(const bnd_mlp *m);
/* Lower bounds lb (B x k) of the k objectives C·y (C: k x n_out, shared) over
 * each of the B boxes [lo, hi] (B x n_in each); A_in (B·k x n_in, may be NULL)
 * gets the input coefficients of each CROWN lower bound's linear function.
 * alpha_iters > 0: then that many alpha-CROWN iterations on the objective
 * rows' ReLU slopes (never looser than CROWN: the best bound is kept). */
int bnd_mlp_bound(const bnd_mlp *m, int64_t B, const double *lo, const double *hi, int k,
                  const double *C, int alpha_iters, double *lb, double *A_in, err *e);
/* As bnd_mlp_bound, also exchanging the pre-activation intervals (B x
 * bnd_mlp_n_pre doubles: per box, per linear layer feeding a ReLU, its lower
 * then upper bounds): pre_in (may be NULL) are sound intervals over each box
 * (e.g. its parent box's; NaN: none), met with before the ReLUs are relaxed; pre_out
 * (may be NULL) receives the intervals used. */
int64_t bnd_mlp_n_pre(const bnd_mlp *m);
int bnd_mlp_bound_pre(const bnd_mlp *m, int64_t B, const double *lo, const double *hi, int k,
                      const double *C, int alpha_iters, const double *pre_in, double *pre_out,
                      double *lb, double *A_in, err *e);
/* As bnd_mlp_bound_pre, also exchanging linear bounds of the pre-activations
 * (B x bnd_mlp_n_fn doubles: per box, the box they refer to, then per
 * pre-activation neuron a lower line of z and one of -z in the inputs, each
 * with its bound over that box): fn_in (may be NULL; a NaN first entry:
 * none) must hold over a box containing each of the B boxes (e.g. the
 * parent's fn_out); their bounds over the smaller box are met with the
 * intervals before refinement. fn_out (may be NULL) receives each box's.
 * ld > 0: a box's intervals and lines are ld doubles after the previous
 * box's (one record per box holding both); 0: packed arrays. */
int64_t bnd_mlp_n_fn(const bnd_mlp *m);
int bnd_mlp_bound_fn(const bnd_mlp *m, int64_t B, const double *lo, const double *hi, int k,
                     const double *C, int alpha_iters, const double *pre_in, double *pre_out,
                     const double *fn_in, double *fn_out, int64_t ld, double *lb, double *A_in,
                     err *e);
/* How much a linear function's minimum over [rlo, rhi] at least rises on a
 * box [lo, hi] inside it: a lower bound of sum_t |a_t| md_t, md_t the least
 * distance over [lo, hi] from the end of [rlo, rhi] where a_t x_t is least
 * (lo_t - rlo_t if a_t > 0, rhi_t - hi_t if a_t < 0), rounded down; >= 0.
 * Used for inherited lines (batch.c) and for cutting boxes (bab/shrink.c). */
double bnd_line_rise(int64_t n, const double *a, const double *rlo, const double *rhi,
                     const double *lo, const double *hi);
/* Plain double forward pass of B points x (B x n_in) -> y (B x n_out). */
int bnd_mlp_eval(const bnd_mlp *m, int64_t B, const double *x, double *y, err *e);
/* ---- ReLU splits and beta-CROWN (beta.c) ----
 * The ReLU neurons of a net are numbered 0 .. bnd_relu_count()-1, layer by
 * layer in topological order; a split fixes the sign of one neuron's
 * pre-activation. Bounds over a domain (the input box and its splits) hold
 * for every input of the box whose exact pre-activations meet the splits. */
int64_t bnd_relu_count(const bnd_net *n);
/* Number of ReLU layers; starts (if not NULL, n+1 entries) gets the first
 * neuron of each and the total. */
int bnd_relu_layers(const bnd_net *n, int64_t *starts);
/* Pre-activation bounds of every ReLU neuron left by the last bnd_compute. */
void bnd_relu_bounds(const bnd_net *n, double *lo, double *hi);

typedef struct bnd_split {
    int64_t neuron;
    int side;            /* +1: pre-activation >= 0 (active), -1: <= 0 (inactive) */
} bnd_split;

/* ---- batched beta-CROWN over split domains of a chain MLP (beta_batch.c) ----
 * B domains of one input box [lo, hi]; R objective rows, row r of domain
 * dom[r]. Every row gets a sound lower bound lb[r] (+inf when the domain's
 * bounds are contradictory); beta/alpha are read as warm starts and written
 * back (alpha < 0: CROWN's slope; steered runs, f64 = 0, hand back the last
 * iterate's, which warm-start children better than the best one's); A_relu (R x nr) gets each row's
 * coefficients at the ReLU outputs and x_star (R x n_in) its relaxed
 * minimiser, both of the reported (sound) pass. ReLU neurons are numbered as in
 * bnd_relu_count (layer order). */
typedef struct bnd_bbeta_dom {
    double *plo, *phi;         /* nr pre-activation bounds (split sides clipped at 0);
                                  tightened in place by interval arithmetic */
    const bnd_split *splits;
    int ns;
} bnd_bbeta_dom;
typedef struct bnd_bbeta_rows {
    int64_t R;
    const int64_t *dom;        /* R */
    const double *C;           /* R x n_out */
    const double *thr;         /* R: stop early once every lb > thr (or NULL) */
    double *const *beta;       /* R pointers to ns(dom) multipliers */
    double *const *alpha;      /* R pointers to nr slopes, or NULL */
    double *lb, *A_relu, *x_star;
} bnd_bbeta_rows;
typedef struct bnd_bbeta_opts {
    int iters;
    double lr_beta, lr_alpha;
    double deadline;           /* clock_now() value: no further steps after it (0: none) */
    int f64;                   /* 1: every step a sound double pass (the best one reported);
                                  0: steps in single precision, then one sound pass at each
                                  row's best parameters */
} bnd_bbeta_opts;
int bnd_beta_batch(const bnd_mlp *m, const double *lo, const double *hi, int64_t B,
                   const bnd_bbeta_dom *doms, const bnd_bbeta_rows *rows, const bnd_bbeta_opts *o,
                   err *e);
int64_t bnd_mlp_relu_count(const bnd_mlp *m);
/* The chain up to the pre-activation of activation layer act_layer (0-based):
 * its output is that layer's input, its activations (and their numbering)
 * the ones before. Shares m's weights: free it before m. */
int bnd_mlp_prefix(const bnd_mlp *m, int act_layer, bnd_mlp **out, err *e);

typedef struct bnd_domain {
    const double *lo, *hi;     /* input box */
    const double *plo, *phi;   /* pre-activation bounds valid on the domain
                                  (e.g. the parent's), or NULL */
    const bnd_split *splits;
    int n_splits;
    int interm_from;           /* CROWN-recompute intermediate bounds of ReLU
                                  layers >= this one (ReLU layer index);
                                  INT_MAX: keep plo/phi (clipped by splits) */
    int interm_iters;          /* > 0: those intermediate bounds optimised
                                  (alpha, beta of earlier splits) this many
                                  steps instead of plain CROWN */
    double lp_until;           /* > 0 (root only, plo NULL): after that, the
                                  unstable neurons of ReLU layers >= 1 are
                                  tightened by the LP (bnd_lp_refine) until
                                  this clock_now() time, shared by layer */
} bnd_domain;

typedef struct bnd_beta_opts {
    int iters;           /* projected gradient steps on beta (0: one pass) */
    double lr;           /* Adam step size */
    int alpha;           /* also optimise the lower slopes of unstable ReLUs
                            (per row; start from out->alpha or CROWN's slope) */
    double alpha_lr;
    /* early stop: rows grouped into clauses (clause[q], n_clauses groups);
     * stop once every clause has a row with lb > d. NULL: never early */
    const double *d;
    const int *clause;
    int n_clauses;
} bnd_beta_opts;

typedef struct bnd_beta_out {
    double *lb;          /* k: sound lower bounds of the rows of C */
    double *beta;        /* k x n_splits, in: start (NULL = 0), out: best */
    double *alpha;       /* k x n_relu, in: start (entries outside [0,1]: CROWN's
                            slope), out: best (with opts.alpha), or NULL */
    double *plo, *phi;   /* n_relu out: the domain's pre-activation bounds, or NULL */
    double *A_relu;      /* k x n_relu out: coefficients at the ReLU outputs at
                            the best iterate (for branching), or NULL */
    double *x_star;      /* k x n_in out: minimiser of the relaxed problem, or NULL */
} bnd_beta_out;

/* Lower bounds of the k rows of C·y over the domain by beta-CROWN: split
 * neurons relaxed exactly (bounds clipped at 0), the split constraints as
 * Lagrange terms beta >= 0 optimised by projected gradient ascent (any beta
 * >= 0 is sound; the best per row is kept). Returns 0, 1 when the domain is
 * found empty (a split contradicts the bounds: lb = +inf), < 0 on error. */
int bnd_beta_bound(bnd_net *n, const bnd_domain *dom, const double *C, int k,
                   const bnd_beta_opts *o, bnd_beta_out *out, err *e);

/* Gradient (k x n_in) of the k rows of C·f at x: the backward pass over the
 * point box, whose relaxations are the local linearisations (for attacks;
 * at a kink, one of the one-sided slopes). */
int bnd_point_grad(bnd_net *n, const double *x, const double *C, int k, double *grad, err *e);

/* ---- general nonlinear splits (act_split.c, GenBaB) ----
 * The neurons of every nonlinearity (ACT layer: ReLU, Sigmoid, ..., the
 * squares of products) are numbered 0 .. bnd_act_count()-1, layer by layer.
 * kind/param (arrays of that length, either may be NULL) get each neuron's
 * bnd_nl_kind (nonlin.h) and parameter. */
int64_t bnd_act_count(const bnd_net *n);
void bnd_act_kinds(const bnd_net *n, int *kind, double *param);
/* CROWN lower bounds lb (k) of the rows of C·y over the domain: inputs in
 * [lo, hi] whose pre-activations lie in [plo, phi] (one interval per ACT
 * neuron; NULL = no constraint). `changed`: the first neuron whose interval
 * differs from the intervals the domain came from (layers before it keep
 * plo/phi without CROWN refinement); ignored when plo is NULL. Out (each may
 * be NULL): the domain's tightened intervals, and the k x count coefficients
 * at the ACT outputs of the final backward pass (for branching scores).
 * refine (count flags, or NULL = all): which neurons' pre-activations get
 * CROWN intermediate bounds (the others keep IBP, clipped by the domain).
 * z_out (count values, or NULL): the pre-activations of the linearised
 * network at the minimiser of the relaxed problem for the best row.
 * gain_in (n_in values, or NULL): per input, |a|·width/4 for the best row's
 * final coefficient a of that input (what halving its interval would gain
 * with the relaxation fixed); 0 for fixed inputs or beyond 64 moving ones.
 * changed < 0: every layer gets CROWN intermediate bounds (an input split).
 * tau_iters: rounds of optimising the smooth neurons' tangent points per
 * row in the final pass (alpha-CROWN for smooth activations, tau_opt.c: the
 * first round moves them to the relaxed minimiser, later ones are gradient
 * steps; 0: the default lines); each row keeps its best bound.
 * Returns 0, 1 when the domain is empty (lb = +inf), < 0 on error. */
int bnd_split_bound(bnd_net *n, const double *lo, const double *hi, const double *plo,
                    const double *phi, const unsigned char *refine, int64_t changed,
                    const double *C, int k, int tau_iters, double *lb, double *plo_out, double *phi_out, double *A_out, double *z_out,
                    double *gain_in, err *e);
/* ---- LP / MILP with GLPK (lp.c) ----
 * min c·y (c: n_out) over the input box and the net's CURRENT bounds (left
 * by the last bnd_compute / bnd_beta_bound over the same region and splits),
 * with the given splits: exact = 1 solves the MILP (ReLU indicators binary),
 * 0 the LP (triangle relaxation). *value is GLPK's floating-point optimum
 * (not rigorous); for the LP, *safe (if not NULL) gets a rigorous lower bound
 * of the LP's optimum — hence of c·y on the domain — derived from GLPK's
 * duals with outward error terms. x (if not NULL) gets the optimal input.
 * Returns 0, 1 if GLPK finds the problem infeasible (value = +inf, safe =
 * -inf: no certificate), < 0 on error (ERR_UNSUP: too large / not ReLU). */
int bnd_lp_min(bnd_net *n, const bnd_split *splits, int ns, const double *c, int exact,
               double *value, double *safe, double *x, err *e);

/* Tighten the bounds of the input (pre-activation) of ReLU layer relu_layer
 * (0-based, bnd_relu_layers order) by the triangle LP over the layers before
 * it, built on the net's current bounds (those of the last bound computation;
 * read them with bnd_relu_bounds): for the unstable
 * neurons idx[0..n) in that order, min and max of z_t with GLPK (the basis
 * of one solve starts the next), each met with the current bound through the
 * safe dual bound only (never GLPK's optimum). side: per ReLU neuron, +1/-1
 * for splits, or NULL. Stops quietly at deadline (clock_now(); 0: none) or
 * the net's; *n_done gets the neurons finished. Returns 0 or < 0 on error. */
int bnd_lp_refine(bnd_net *n, const int8_t *side, int relu_layer, const int64_t *idx, int64_t n_idx,
                  double deadline, int64_t *n_done, err *e);

#endif
