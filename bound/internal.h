/* internal.h: the bound network shared by the files of bound/ (private).
 *
 * A bnd_net is a list of layers in topological order; layer 0 is the input.
 * A LINEAR layer computes y = sum_j J_j x_{in[j]} + bias, each J_j a linop
 * (dense matmul or sparse CSR) exposing apply-J (forward, batched), apply-J^T
 * (backward: A (k x out) -> A·J (k x in)) and apply-|J|. An ACT layer applies
 * a nonlinearity elementwise through a rule table (interval + relaxation).
 * Structural ops (Reshape, Flatten, ...) are aliases and produce no layer.
 * Each layer keeps its current sound bounds lo/hi (the workspace reused by
 * IBP, CROWN and, later, alpha/beta-CROWN).
 *
 * Adding an op: write its lowering (bnd_lower_*) in the file of its family
 * and list it in the table in net.c; a nonlinearity also needs a
 * bnd_act_rule (relax.c). */
#ifndef BOUND_INTERNAL_H
#define BOUND_INTERNAL_H

#include "../core/fpstep.h"
#include <stdint.h>
#include <string.h>

#include "bound.h"

/* ---- linear maps ---- */
enum { BND_LIN_MATMUL = 1, BND_LIN_CSR = 2, BND_LIN_CONV = 3 };

/* CONV geometry (batch 1; 1-D as height 1). */
typedef struct bnd_conv_geom {
    int64_t C, H, W, M, OH, OW, KH, KW, sh, sw, dh, dw, ph, pw, group;
} bnd_conv_geom;

typedef struct bnd_linop {
    int kind;
    int64_t n_in, n_out;
    int64_t fan_in, fan_out;      /* max nonzeros in a row / a column of J */
    /* MATMUL: x viewed as M x K (row-major), y = x · W, W is K x N */
    int64_t M, K, N;
    double *W, *Wabs;
    /* CSR: n_out rows; row o holds y_o = sum val[p] x[col[p]] */
    int64_t *rowptr, *col;
    double *val;
    /* CONV: W, Wabs hold the kernel (M x C/group·KH·KW); forward is im2col +
     * dgemm, backward dgemm + col2im (the transposed convolution) */
    bnd_conv_geom cv;
    double *cols;          /* scratch: C/group·KH·KW x OH·OW (a bnd_net is used
                              by one thread at a time) */
} bnd_linop;

/* Largest explicit sparse map built for one op (entries): beyond it the op
 * is reported unsupported rather than allocating gigabytes. */
#define BND_MAX_NNZ ((int64_t)1 << 25)

bnd_linop *bnd_lin_matmul_new(int64_t M, int64_t K, int64_t N, const double *W);
/* Empty CSR with room for nnz entries; fill rowptr/col/val, then _finish. */
bnd_linop *bnd_lin_csr_new(int64_t n_out, int64_t n_in, int64_t nnz);
void bnd_lin_csr_finish(bnd_linop *L);
/* CSR map with per_row slots per row: slot t of row o is val[t]·x[col[o·per_row + t]]
 * (val NULL: all 1), left out where that col is < 0. Finished; NULL when out of memory. */
bnd_linop *bnd_lin_csr_rows(int64_t n_out, int64_t n_in, int64_t per_row, const int64_t *col,
                            const double *val);
bnd_linop *bnd_lin_conv_new(const bnd_conv_geom *g, const double *W);
void bnd_lin_free(bnd_linop *L);
/* Y (k x out) = X (k x in) · J^T, with |J| if use_abs. */
void bnd_lin_forward(const bnd_linop *L, int use_abs, int64_t k, const double *X, double *Y);
/* The three IBP products in one pass: yc = J c, [yr; ym] = |J| [r; m]
 * (rm holds r then m, n_in each; yrm gets yr then ym, n_out each). */
void bnd_lin_ibp(const bnd_linop *L, const double *c, const double *rm, double *yc, double *yrm);
/* B (k x in) = A (k x out) · J, or B += A·J when accumulate. */
void bnd_lin_backward(const bnd_linop *L, int64_t k, const double *A, double *B, int accumulate);

/* ---- nonlinearities ---- */
typedef struct bnd_act_rule {
    const char *name;
    /* Sound output interval of each neuron given its input interval;
     * 'param' is the layer's act_param (LeakyRelu slope, Pow exponent). */
    void (*interval)(double param, int64_t n, const double *l, const double *u, double *lo,
                     double *hi);
    /* Lines lw·x + lb <= f(x) <= uw·x + ub on [l, u], valid in exact
     * arithmetic for the stored (rounded) coefficients; every line finite
     * unless the interval itself is infinite. */
    void (*relax)(double param, int64_t n, const double *l, const double *u, double *lw,
                  double *lb, double *uw, double *ub);
    /* 1 if neuron needs a tight input bound (e.g. an unstable ReLU). */
    int (*unstable)(double l, double u);
    /* 1 if, on unstable neurons, alpha·x is a valid lower line for every
     * alpha in [0, 1] (ReLU): alpha-CROWN may then override the slope. */
    int lower_alpha;
    int kind;              /* bnd_nl_kind (nonlin.h): tau-relaxations, branching points */
} bnd_act_rule;

extern const bnd_act_rule bnd_relu_rule;
/* act_nonlin.c: the rule of every other scalar nonlinearity, by bnd_nl_kind;
 * NULL for kinds without one. */
const bnd_act_rule *bnd_nl_rule(int kind);

/* ---- layers ---- */
typedef enum { BND_L_INPUT, BND_L_LINEAR, BND_L_ACT } bnd_layer_kind;

typedef struct bnd_layer {
    bnd_layer_kind kind;
    int node;              /* graph node, -1 for the input */
    int64_t size;
    int n_in;
    int *in;               /* layer indices */
    bnd_linop **lin;       /* LINEAR: one per input; NULL = identity */
    double *bias;          /* LINEAR: size values or NULL */
    double *bias_err;      /* absolute error bound of the stored bias, or NULL */
    int coef_err;          /* relative roundings (each <= u) in stored J and bias */
    const bnd_act_rule *act;
    double act_param;      /* ACT: the rule's parameter (LeakyRelu slope, Pow exponent) */
    int is_preact;         /* input of a nonlinearity: gets CROWN bounds */
    const bnd_act_rule *preact_rule; /* that nonlinearity's rule (its `unstable`) */
    double preact_param;   /* and its parameter */
    int ibp_exact;         /* only a box-preserving map of the input: IBP = CROWN */
    int out_tensor;        /* graph tensor this layer computes (lowering only) */
    /* workspace */
    double *lo, *hi;       /* current sound bounds of the output */
    double *lw, *lb, *uw, *ub; /* ACT: relaxation lines */
    double *rl, *ru;       /* ACT: the input intervals the lines were made for
                              (bnd_act_relax remakes only the changed neurons') */
    int relaxed;           /* ACT: rl, ru and the lines are filled */
    char *prep;            /* smooth ACT: tau_opt.c's bnd_nl_prep per neuron (lazy), */
    double *pl, *pu;       /* made for these input intervals */
    int prepped;           /* pl, pu and prep are filled */
    /* per-compute caches, valid once the layer's (input) bounds are final;
     * bnd_compute clears the flags */
    double *mz;            /* max(|lo|, |hi|) */
    double *errw;          /* backward error weights (crown.c) */
    int mz_ok, errw_ok;
} bnd_layer;

struct bnd_net {
    char *source;
    int n_layers, cap_layers;
    bnd_layer *layers;
    int out;               /* layer of the graph output */
    int64_t crown_max_rows;
    bnd_interm interm;
    int tau_interm;        /* bnd_set_tau_interm */
    const double *tau_stop; /* bnd_set_tau_stop */
    double deadline;       /* clock_now() value (0: none); see bnd_set_deadline */
};

/* ERR_TIMEOUT (with e filled) once net's deadline has passed, else 0. */
int bnd_check_deadline(const bnd_net *net, err *e);

/* net.c: append a layer (lo/hi allocated); returns its index or < 0. */
int bnd_add_layer(bnd_net *n, bnd_layer_kind kind, int node, int64_t size, int n_in, err *e);

/* Lowering context handed to the per-op files. */
typedef struct bnd_lower_ctx {
    const nn_graph *g;
    bnd_net *net;
    int *tmap;             /* tensor -> layer, -1 for constants / not yet */
    int *tuses;            /* tensor -> number of consuming node inputs (+1 if output) */
} bnd_lower_ctx;
typedef int (*bnd_lower_fn)(bnd_lower_ctx *cx, int k, err *e);

int bnd_lower_gemm(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_matmul(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_addsub(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_muldiv(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_neg(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_batchnorm(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_conv(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_avgpool(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_globalavgpool(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_transpose(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_concat(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_slice(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_reduce(bnd_lower_ctx *cx, int k, err *e);

/* act_nonlin.c: every elementwise nonlinearity (ReLU included) */
int bnd_lower_nonlin(bnd_lower_ctx *cx, int k, err *e);
/* product.c: Mul / Div with two computed operands (or a computed divisor) */
int bnd_lower_product(bnd_lower_ctx *cx, int k, err *e);
/* product.c: alpha·op(A)·op(B) (+ bias, broadcast to the output; owned, freed
 * on failure) for MatMul / Gemm whose operands A (tensor a_t) and B (b_t) are
 * both computed; transA/transB only for Gemm (2-D operands). */
int bnd_lower_matmul_computed(bnd_lower_ctx *cx, int k, int a_t, int b_t, int transA, int transB,
                              double alpha, double *bias, int coef_err, err *e);
/* lower_max.c: MaxPool (pairwise max trees of ReLUs) and Clip (ReLUs) */
int bnd_lower_maxpool(bnd_lower_ctx *cx, int k, err *e);
int bnd_lower_clip(bnd_lower_ctx *cx, int k, err *e);
/* lower_softmax.c: Softmax as 1 / sum_j exp(x_j - x_i) */
int bnd_lower_softmax(bnd_lower_ctx *cx, int k, err *e);
/* conv.c: ConvTranspose as an explicit sparse map */
int bnd_lower_convtranspose(bnd_lower_ctx *cx, int k, err *e);

/* helpers for lowerings (net.c) */
/* A LINEAR layer y = J x + bias reading layer in_layer, as the output of node
 * k; takes ownership of J and bias (freed on failure). coef_err: the
 * coefficients carry their own rounding (see docs/soundness.md). */
int bnd_add_linear1(bnd_lower_ctx *cx, int k, int in_layer, bnd_linop *J, double *bias,
                    int coef_err, err *e);
/* A LINEAR layer of `size` outputs, y = sum_j J[j] x_{in[j]} + bias (J[j] NULL:
 * identity), created for node k; takes ownership of J[0..n_in) and bias (freed
 * on failure). Maps no tensor. Returns the layer index or < 0. */
int bnd_add_linear(bnd_lower_ctx *cx, int k, int64_t size, int n_in, const int *in,
                   bnd_linop **J, double *bias, int coef_err, err *e);
/* An ACT layer applying `rule` (with act_param) to layer in_layer; marks the
 * input as its pre-activation. Returns the layer index or < 0. Does not map
 * any tensor. */
int bnd_add_act_layer(bnd_lower_ctx *cx, int k, int in_layer, const bnd_act_rule *rule,
                      double param, err *e);
int bnd_node_err(bnd_lower_ctx *cx, int k, err *e, int code, const char *what);
int bnd_lower_oom(bnd_lower_ctx *cx, err *e); /* ERR_NOMEM naming the model */
/* Flat index into tensor `in` (broadcast right-aligned to `out`) of output element o. */
int64_t bnd_bcast_index(const nn_tensor *out, const nn_tensor *in, int64_t o);
/* y = s_o·x[src_o] + b_o for each output o (src_o = -1: constant b_o); one
 * computed input. Builds a LINEAR layer; maps the node's output. */
int bnd_add_gather_layer(bnd_lower_ctx *cx, int k, int in_layer, int64_t n_out,
                         const int64_t *src, const double *scale, const double *bias,
                         int coef_err, err *e);

/* ---- rounding (round.c) ---- */
#define BND_U 0x1p-53
/* bnd_gamma, bnd_safe: bound.h */
static inline double bnd_down(double x) { return fp_down(x); } /* next double below */
static inline double bnd_up(double x) { return fp_up(x); }
/* Same bits: the key of the per-neuron caches keyed by an interval (0.0 and
 * -0.0, or two NaN payloads, are not taken for each other). */
static inline int bnd_same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }
/* Centre and radius with [c - r, c + r] ⊇ [l, u]. */
void bnd_center_radius(int64_t n, const double *l, const double *u, double *c, double *r);

/* ---- passes ---- */
int bnd_ibp_layer(bnd_net *n, int i, err *e);
int bnd_act_relax(bnd_net *n, int i, err *e);
/* Lower bounds lbv (k) of the rows of A0 (k x size(start)) applied to layer
 * `start`, over the current bounds of every layer (input box = layer 0's),
 * by CROWN through the relaxations of the ACT layers, or (stop_at_act) by
 * concretising at the ACT layers' intervals (IBP with merged objective). */
/* alpha (may be NULL): per layer, NULL or a k x size matrix of lower slopes
 * in [0, 1] overriding the relaxation's lower line of that ACT layer's
 * unstable neurons row by row (for alpha-CROWN; valid for ReLU-like rules
 * whose lower line through the origin may take any such slope). */
int bnd_backward(bnd_net *n, int start, int64_t k, const double *A0, int stop_at_act,
                 const double *const *alpha, double *lbv, err *e);
/* Optional extensions of a backward pass (beta.c), each entry NULL when unused:
 *  beta_add: per ACT layer, k x size values added to the coefficient of the
 *            ACT's input after the relaxation (beta-CROWN's Lagrange terms
 *            -beta·s of split neurons; valid for the points meeting the
 *            splits, rounding accounted like the relaxation's);
 *  sel:      per ACT layer, k x size out: 1 where the lower line was used;
 *  A_act:    per ACT layer, k x size out: the coefficients at the ACT output;
 *  x_star:   k x n_in out: per row, the input-box corner minimising the last
 *            linear function (with sel, the minimiser of the relaxed problem). */
/* Per-row relaxation lines of one ACT layer (k x size each), replacing the
 * layer's own lines row by row; lw NULL: the layer's lines for every row. */
typedef struct bnd_row_lines {
    double *lw, *lb, *uw, *ub;
} bnd_row_lines;
typedef struct bnd_bwd_ext {
    const double *const *beta_add;
    uint8_t **sel;
    double **A_act;
    double *x_star;
    double *A_in;     /* k x n_in out: the coefficients reaching the input */
    const bnd_row_lines *rows; /* per layer (n_layers), or NULL: each row's own lines */
} bnd_bwd_ext;
int bnd_backward_ext(bnd_net *n, int start, int64_t k, const double *A0, int stop_at_act,
                     const double *const *alpha, const bnd_bwd_ext *ext, double *lbv, err *e);
/* The same without alpha, in row blocks bounding memory (BND_MAX_A_ENTRIES). */
#define BND_MAX_A_ENTRIES ((int64_t)1 << 24)
int bnd_backward_rows(bnd_net *n, int start, int64_t k, const double *A0, int stop_at_act,
                      double *lbv, err *e);
int bnd_crown_refine(bnd_net *n, int i, err *e);

/* ---- alpha-CROWN for smooth activations (tau_opt.c) ----
 * Lower bounds lb (k) of the rows of C (k x size(start)) on layer `start`,
 * like bnd_backward, with the tangent points of every smooth ACT neuron
 * before `start` chosen per row: `iters` rounds of projected Adam ascent on
 * the bound (the first from the tangent at the relaxed minimiser), each
 * iterate sound, each row keeping its best; stop (k thresholds, or NULL):
 * no more rounds once some row's bound exceeds its threshold (a refuted
 * clause). Outputs (each may be NULL):
 * A_act (per layer, k x size for ACT layers): the best iterate's
 * coefficients at the ACT outputs; A_in (k x n_in): its input coefficients;
 * z (per ACT layer, size values): the pre-activations of the linearised
 * network at the minimiser of the row with the best bound, last round. */
int bnd_tau_backward(bnd_net *n, int start, int64_t k, const double *C, int iters, double *lb,
                     const double *stop, double **A_act, double *A_in, double *const *z, err *e);
/* bnd_crown_refine's bounds for the listed neurons idx[0..m) of
 * pre-activation layer i through bnd_tau_backward (rows +e_t, -e_t), met
 * with the current ones. */
int bnd_tau_refine(bnd_net *n, int i, const int64_t *idx, int64_t m, int iters, err *e);
/* 1 if some ACT layer before `start` has a smooth (tangent-point) rule. */
int bnd_has_smooth_before(const bnd_net *n, int start);

#endif
