/* batch_internal.h: the chain-MLP form and batch workspace of batch.c,
 * shared with beta_batch.c (batched beta-CROWN over ReLU split domains). */
#ifndef NNV_BOUND_BATCH_INTERNAL_H
#define NNV_BOUND_BATCH_INTERNAL_H

#include "internal.h"

typedef struct {
    const bnd_act_rule *act;  /* an activation layer's rule (ReLU, sigmoid, ...); NULL: linear */
    double param;             /* the rule's parameter (act_param) */
    int64_t n, n_in;          /* output and input sizes */
    double *W, *Wp, *Wn, *Wabs; /* n x n_in (linear) */
    float *Wf;                /* W in single precision: steering passes only (never a bound) */
    double *bias, *bias_err;  /* n each (bias_err may be NULL) */
    double g_fwd, g_bwd;      /* gamma factors of the forward and backward sums */
} mlp_layer;

struct bnd_mlp {
    int n_layers;             /* layers after the input */
    mlp_layer *L;
    int64_t n_in, n_out, widest;
    int64_t n_pre;            /* pre-activation neurons (linear layers before a ReLU) */
    int64_t *pre_off;         /* per layer: offset of its output in a box's pre block */
    int borrowed;             /* L belongs to another bnd_mlp (bnd_mlp_prefix) */
};

typedef struct {
    const bnd_mlp *m;
    int64_t B, q;             /* boxes; q = n0 + 1 columns per box */
    double *ctr, *rad;        /* B x n0 */
    double **lo, **hi;        /* per layer output (index 0 = input), B x size */
    double **lw, **lb, **uw, **ub; /* per ReLU layer, B x size */
    double **FL, **FU;        /* per layer output: lower/upper functions, size x B·q */
    double **mL, **mU;        /* their magnitudes, B x size */
    /* backward workspace: rows up to 2·B·widest */
    double *A, *A2, *cb, *er, *lbv, *mz, *w;
    int64_t *rbox, *rneu;
    /* pre-activation intervals, B x 2·n_pre: met with (in), stored (out) */
    const double *pre_in;
    double *pre_out;
    /* linear bounds of the pre-activations, B x bnd_mlp_n_fn (see batch.c's
     * fn_exchange): met with (in), stored (out); Ain: refinement rows' input
     * coefficients */
    const double *fn_in;
    double *fn_out, *Ain;
    int64_t pre_ld, fn_ld;    /* doubles from one box's record to the next */
    int lines_at_zero;        /* also refine, and keep lines of, neurons whose
                                 interval ends at 0 (bnd_mlp_bound_patterns) */
} batch;

/* Points through a linear layer (plain floating point: for gradients, not
 * bounds): G2 (R x n) = G (R x n_in) W^T + bias. With fbuf (R·(n + n_in)
 * floats) the product is taken in single precision (about twice as fast). */
void bnd_batch_affine_rows(const mlp_layer *l, int64_t R, const double *G, double *G2,
                           float *fbuf);

/* CROWN backward pass from the output of mlp layer `top` for R rows A
 * (R x size(top)), row r belonging to box rbox[r], continuing cb and er:
 * lower bounds lbv (R), input coefficients A_in (R x n0) when not NULL.
 * alpha[i] (R x n, may be NULL): per-row lower slopes of ReLU layer i;
 * saveA[i]: the rows at ReLU layer i's output; badd[i] (R x n, may be NULL):
 * added to the rows at ReLU layer i's input (the pre-activation) — beta-CROWN's
 * Lagrange terms -beta·side. Any such addition is sound: the rounded sum
 * moves the row in the same direction as the exact one, i.e. it is the exact
 * Lagrange term of some beta' >= 0, and the error budget is taken from the
 * rows as computed.
 * fast (R·2·widest floats, or NULL): a steering pass for optimisers, not a
 * bound: the products in single precision and no error budget, so lbv is
 * only an estimate; the caller must bound its chosen parameters again with
 * fast = NULL before reporting anything. */
void bnd_batch_backward(batch *bt, int top, int64_t R, const int64_t *rbox, double *A,
                        double *A2, double *cb, double *er, double *mz, double *w,
                        double *lbv, double *A_in, double *const *alpha, double **saveA,
                        double *const *badd, float *fast);

/* Meet layer i+1's interval (linear mlp layer i) with interval arithmetic
 * on layer i's, rounded outward (M, Ew unused). */
void bnd_batch_ibp_meet(batch *bt, int i, double *M, double *Ew);

#endif
