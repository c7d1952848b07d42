/* attack.c: looking for counterexamples by sampling and projected gradient descent.
 *
 * The objective for a region is its smallest clause violation
 *     F(x) = min over clauses c of  max over rows i of (C_i f(x) - d_i),
 * which is <= 0 exactly when x is a counterexample. We sample the box, then
 * run signed-gradient PGD from the best samples, and optionally a local
 * random search from the best point. PGD's gradient is the active row's:
 * exact (bnd_point_grad, about two passes) on networks with many moving
 * inputs, else by forward differences (one forward pass per input; for a
 * quick attack on a 784-input CNN that was 15,700 passes, 2.5 s). Any
 * candidate with F <= 0 is re-checked by bab_check_counterexample before it
 * is reported. */
#include "bab.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../bound/bound.h"
#include "../core/clock.h"
#include "../core/rng.h"

/* Exact gradients pay once forward differences cost more passes than this. */
#define GRAD_MIN_INPUTS 32

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

typedef struct {
    const nn_graph *g;
    const spec_property *p;
    const spec_region *reg;
    int64_t n_x, n_y;
    double *y;
    int64_t *n_evals;
    err *e;
    bnd_net *net;      /* exact gradients when not NULL */
} attack_ctx;

/* The smallest violation over the region's clauses at x; *clause gets its
 * index and *row (if not NULL) the row of C where that violation is. */
static int objective_row(attack_ctx *c, const double *x, double *value, int *clause,
                         const double **row)
{
    int rc = nn_eval(c->g, x, c->y, c->e);
    if (rc)
        return rc;
    if (c->n_evals)
        (*c->n_evals)++;
    double best = INFINITY;
    int best_c = 0;
    const double *best_r = NULL;
    for (int k = 0; k < c->reg->n_clauses; k++) {
        const spec_clause *cl = &c->reg->clauses[k];
        double worst = -INFINITY;
        const double *wr = NULL;
        for (int i = 0; i < cl->n_rows; i++) {
            double s = -cl->d[i];
            for (int64_t j = 0; j < c->n_y; j++)
                s += cl->C[(int64_t)i * c->n_y + j] * c->y[j];
            if (s > worst)
                worst = s, wr = cl->C + (int64_t)i * c->n_y;
        }
        if (worst < best) {
            best = worst;
            best_c = k;
            best_r = wr;
        }
    }
    if (isnan(best))
        best = INFINITY;
    *value = best;
    if (clause)
        *clause = best_c;
    if (row)
        *row = best_r;
    return 0;
}

static int objective(attack_ctx *c, const double *x, double *value, int *clause)
{
    return objective_row(c, x, value, clause, NULL);
}

/* A bound network for exact gradients when the network has many moving
 * inputs (NULL when not worth it or not possible: the attack then uses
 * differences). At a point box IBP's outward rounding leaves every interval
 * a few ulps wide, so every nonlinearity's lines are its local
 * linearisation up to rounding: smooth ones too (on the project's sigmoid,
 * tanh, GeLU and sin nets the gradient agrees with differences to 1e-5). */
static bnd_net *grad_net(const nn_graph *g, int64_t moving)
{
    if (moving <= GRAD_MIN_INPUTS)
        return NULL;
    bnd_net *net = NULL;
    err e2 = {0};
    if (bnd_net_new(g, &net, &e2))
        return NULL;
    return net;
}

static void clip(const spec_region *reg, int64_t n, double *x)
{
    for (int64_t j = 0; j < n; j++)
        x[j] = fmin(fmax(x[j], reg->lo[j]), reg->hi[j]);
}

/* Signed-gradient descent from x; keeps the best point in best/best_val. */
static int pgd(attack_ctx *c, const bab_attack_opts *o, double *x, double *best, double *best_val,
               double *grad, double *xh)
{
    int64_t n = c->n_x;
    double f;
    const double *row;
    int rc = objective_row(c, x, &f, NULL, &row);
    if (rc)
        return rc;
    for (int step = 0; step < o->steps && f > 0; step++) {
        if (clock_expired(o->deadline))
            break;
        int exact = 0;
        if (c->net && row) { /* the active row's gradient, exactly */
            err e2 = {0};
            exact = bnd_point_grad(c->net, x, row, 1, grad, &e2) == 0;
            if (!exact) { /* no bounds here after all: differences from now on */
                bnd_net_free(c->net);
                c->net = NULL;
            } else if (c->n_evals) {
                *c->n_evals += 2;
            }
        }
        /* else forward differences; the step shrinks with the box width */
        for (int64_t j = 0; !exact && j < n; j++) {
            double w = c->reg->hi[j] - c->reg->lo[j];
            if (!(w > 0)) { /* a fixed input: no direction to move */
                grad[j] = 0;
                continue;
            }
            double h = 1e-6 * w;
            memcpy(xh, x, (size_t)n * sizeof *x);
            xh[j] = x[j] + h <= c->reg->hi[j] ? x[j] + h : x[j] - h;
            double fh;
            if ((rc = objective(c, xh, &fh, NULL)))
                return rc;
            grad[j] = (fh - f) / (xh[j] - x[j]);
        }
        /* Step size decays from a quarter of the width to a hundredth. */
        double t = (double)step / (double)(o->steps > 1 ? o->steps - 1 : 1);
        double frac = 0.25 * pow(0.04, t);
        for (int64_t j = 0; j < n; j++) {
            double w = c->reg->hi[j] - c->reg->lo[j];
            if (grad[j] > 0)
                x[j] -= frac * w;
            else if (grad[j] < 0)
                x[j] += frac * w;
        }
        clip(c->reg, n, x);
        if ((rc = objective_row(c, x, &f, NULL, &row)))
            return rc;
        if (f < *best_val) {
            *best_val = f;
            memcpy(best, x, (size_t)n * sizeof *x);
        }
    }
    if (f < *best_val) {
        *best_val = f;
        memcpy(best, x, (size_t)n * sizeof *x);
    }
    return 0;
}

/* A (1+1) evolution strategy from best: Gaussian steps per dimension,
 * widened on success and narrowed on failure (the one-fifth rule). Unlike
 * signed gradients it keeps improving at the kinks of F, where several rows
 * are active together; ReLU networks' counterexamples often sit in such
 * thin wedges (ACAS Xu 5_3 prop_2: a violation of 2.5e-5). */
static int local_search(attack_ctx *c, const bab_attack_opts *o, rng *rg, double *best,
                        double *best_val, double *x)
{
    int64_t n = c->n_x;
    double sigma = 0.05;
    for (int it = 0; it < o->local && *best_val > 0; it++) {
        if ((it & 63) == 0 && clock_expired(o->deadline))
            break;
        for (int64_t j = 0; j < n; j++)
            x[j] = best[j] + sigma * (c->reg->hi[j] - c->reg->lo[j]) * rng_normal(rg);
        clip(c->reg, n, x);
        double f;
        int rc = objective(c, x, &f, NULL);
        if (rc)
            return rc;
        if (f < *best_val) {
            *best_val = f;
            memcpy(best, x, (size_t)n * sizeof *x);
            sigma = fmin(sigma * 2.0, 0.25);
        } else {
            sigma *= 0.84; /* about 2^(-1/4): one success in five keeps it level */
            if (sigma < 1e-9)
                sigma = 0.05;
        }
    }
    return 0;
}

int bab_attack(const nn_graph *g, const spec_property *p, int r, const bab_attack_opts *o_in,
               double *x_out, int64_t *n_evals, err *e)
{
    if (r < 0 || r >= p->n_regions)
        return err_set(e, ERR_ARG, "attack: bad region %d", r);
    attack_ctx c = { g, p, &p->regions[r], p->n_x, p->n_y, NULL, n_evals, e, NULL };
    int64_t n = p->n_x, moving = 0;
    if (c.reg->n_clauses == 0)
        return 0;
    for (int64_t j = 0; j < n; j++)
        moving += c.reg->hi[j] > c.reg->lo[j];
    bab_attack_opts oo = *o_in, *o = &oo;
    if (moving == 0) /* a point: its centre is all there is to try */
        oo.samples = oo.restarts = oo.local = 0;
    double *buf = malloc((size_t)(6 * n + p->n_y) * sizeof(double));
    if (!buf)
        return err_set(e, ERR_NOMEM, "attack: out of memory");
    double *x = buf, *best = buf + n, *grad = buf + 2 * n, *xh = buf + 3 * n;
    double *start = buf + 4 * n, *cand = buf + 5 * n;
    c.y = buf + 6 * n;
    rng rg;
    rng_seed(&rg, o->seed ^ (uint64_t)r * 0x9e3779b97f4a7c15ull);

    int rc = 0, found = 0;
    double best_val = INFINITY;
    /* one forward pass is a chain of small products: BLAS threads only wait
     * on each other, and when the cores are busy (two verifies side by
     * side) each pass of a CNN-7 took 7 ms instead of 0.13 ms */
    int blas_threads = openblas_get_num_threads();
    if (blas_threads > 1)
        openblas_set_num_threads(1);
    /* Centre first, then samples; remember the best as the PGD start. */
    for (int64_t j = 0; j < n; j++)
        best[j] = 0.5 * (c.reg->lo[j] + c.reg->hi[j]);
    if ((rc = objective(&c, best, &best_val, NULL)))
        goto out;
    for (int s = 0; s < o->samples && best_val > 0; s++) {
        if ((s & 63) == 0 && clock_expired(o->deadline))
            break;
        /* every other sample a random corner of the box: violations often
         * sit there (monotone pieces); the others uniform */
        for (int64_t j = 0; j < n; j++) {
            double t = rng_uniform(&rg);
            if (s & 1)
                t = t < 0.5 ? 0.0 : 1.0;
            x[j] = c.reg->lo[j] + t * (c.reg->hi[j] - c.reg->lo[j]);
        }
        double f;
        if ((rc = objective(&c, x, &f, NULL)))
            goto out;
        if (f < best_val) {
            best_val = f;
            memcpy(best, x, (size_t)n * sizeof *x);
        }
    }
    memcpy(start, best, (size_t)n * sizeof *x);
    for (int k = 0; k < o->restarts && best_val > 0; k++) {
        if (clock_expired(o->deadline))
            break;
        if (k == 0) {
            memcpy(x, start, (size_t)n * sizeof *x);
        } else {
            for (int64_t j = 0; j < n; j++)
                x[j] = c.reg->lo[j] + rng_uniform(&rg) * (c.reg->hi[j] - c.reg->lo[j]);
        }
        if (!c.net && k == 0)
            c.net = grad_net(g, moving);
        if ((rc = pgd(&c, o, x, best, &best_val, grad, xh)))
            goto out;
    }
    if (best_val > 0 && o->local > 0 && !clock_expired(o->deadline))
        if ((rc = local_search(&c, o, &rg, best, &best_val, x)))
            goto out;
    if (best_val <= 0) {
        memcpy(cand, best, (size_t)n * sizeof *x);
        rc = bab_check_counterexample(g, p, r, cand, NULL, e);
        if (rc < 0)
            goto out;
        if (rc == 1) {
            memcpy(x_out, cand, (size_t)n * sizeof *x);
            found = 1;
        }
        rc = 0;
    }
out:
    if (blas_threads > 1)
        openblas_set_num_threads(blas_threads);
    bnd_net_free(c.net);
    free(buf);
    return rc < 0 ? rc : found;
}
