/* stress_gen.c: the random network / box / spec generator of the soundness
 * stress test, and the checks run on each case (stress_gen.h).
 *
 * The generator keeps a list of live computed tensors with the shapes it
 * expects, picks an op that applies to the newest one (or to two, for
 * residual Add/Sub and Concat), and checks the expected shape against what
 * nn_graph_finalize infers. The checks need a reference for f(x) that is not
 * the code under test: nn_eval in double. A sample outside a bound is a
 * violation only if it is outside by more than nn_eval's own rounding error,
 * bounded by eval_error_bound (a max-norm walk over the graph) and estimated
 * by re-running nn_eval in the upward and downward rounding modes
 * (fesetround). The rounding level itself is checked exactly by
 * sg_check_exact (128-bit fixed point). */
#include "stress_gen.h"

#include <cblas.h>
#include <fenv.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../bab/bab.h"
#include "../bound/bound.h"

/* ---------------- random helpers ---------------- */

static int urand(rng *r, int n)
{
    return n <= 1 ? 0 : (int)(rng_next(r) % (uint64_t)n);
}

static double uni(rng *r, double a, double b)
{
    return a + (b - a) * rng_uniform(r);
}

/* ---------------- network generator ---------------- */

typedef struct val {
    int t, rank;
    int64_t d[NN_MAX_RANK];
    int64_t size;
} val;

#define MAX_LIVE 24

typedef struct gen {
    nn_graph *g;
    rng *r;
    const sg_opts *o;
    int num;
    err *e;
    int n_names;
    val live[MAX_LIVE];
    int n_live;
    char *desc;
    size_t dlen, dpos;
    int rc;
} gen;

static int64_t prod(const int64_t *d, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= d[i];
    return p;
}

static void note(gen *G, const char *s)
{
    if (!G->desc || G->dpos + 1 >= G->dlen)
        return;
    int w = snprintf(G->desc + G->dpos, G->dlen - G->dpos, "%s%s", G->dpos ? " " : "", s);
    if (w > 0)
        G->dpos += (size_t)w;
    if (G->dpos >= G->dlen)
        G->dpos = G->dlen - 1;
}

static double weight(gen *G, int64_t fan_in)
{
    rng *r = G->r;
    double s = 1.0 / sqrt((double)(fan_in > 0 ? fan_in : 1));
    switch (G->num) {
    case SG_NUM_DYADIC: return (double)(urand(r, 17) - 8) / 8.0;
    case SG_NUM_HUGE: /* near-cancelling huge weights */
        return (urand(r, 2) ? 1e8 : -1e8) * (1 + 1e-6 * rng_normal(r));
    case SG_NUM_TINY: return 1e-8 * rng_normal(r);
    case SG_NUM_MIXED: return rng_normal(r) * pow(10.0, uni(r, -8, 8));
    default: return rng_normal(r) * s * uni(r, 0.5, 2.0);
    }
}

static int fresh(gen *G, const char *pfx)
{
    char name[32];
    snprintf(name, sizeof name, "%s%d", pfx, G->n_names++);
    int t = nn_graph_tensor(G->g, name, G->e);
    if (t < 0)
        G->rc = ERR_NOMEM;
    return t;
}

/* Constant float tensor of the given shape; fan_in sets the weight scale,
 * kind 1 = positive (variances), 2 = nonzero (divisors). */
static int cfloat(gen *G, int rank, const int64_t *d, int64_t fan_in, int kind)
{
    int t = fresh(G, "c");
    if (t < 0)
        return -1;
    int64_t n = prod(d, rank);
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    if (!v) {
        G->rc = ERR_NOMEM;
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        double w = weight(G, fan_in);
        if (kind == 1)
            w = G->num == SG_NUM_DYADIC ? (double)(1 + urand(G->r, 4)) / 4 : uni(G->r, 0.1, 2.0);
        if (kind == 2) {
            if (G->num == SG_NUM_DYADIC)
                w = (urand(G->r, 2) ? 1 : -1) * (double)(1 << urand(G->r, 4)) / 4;
            else if (fabs(w) < 1e-3 || !isfinite(1 / w))
                w = w < 0 ? -0.5 : 0.5;
        }
        v[i] = w;
    }
    if (nn_tensor_set_shape(G->g, t, rank, d, G->e) || nn_tensor_set_float(G->g, t, v, n, G->e))
        G->rc = G->e->code ? G->e->code : ERR_ARG;
    free(v);
    return t;
}

/* Sometimes a constant is computed from constants (Add, Mul, Neg, Identity),
 * which finalize must fold. */
static int cfloat_folded(gen *G, int rank, const int64_t *d, int64_t fan_in, int kind)
{
    int a = cfloat(G, rank, d, fan_in, kind);
    if (a < 0 || kind != 0 || urand(G->r, 10) != 0 || G->rc)
        return a;
    int t = fresh(G, "f");
    if (t < 0)
        return -1;
    int in[2] = {a, -1}, n_in = 1;
    const char *op = "Identity";
    switch (urand(G->r, 3)) {
    case 0: op = "Neg"; break;
    case 1: {
        double half = 0.5;
        int h = fresh(G, "c");
        if (h < 0 || nn_tensor_set_shape(G->g, h, 0, NULL, G->e) ||
            nn_tensor_set_float(G->g, h, &half, 1, G->e)) {
            G->rc = G->e->code ? G->e->code : ERR_NOMEM;
            return -1;
        }
        op = "Mul", in[1] = h, n_in = 2;
        break;
    }
    default: break;
    }
    if (nn_graph_add_node(G->g, op, "", n_in, in, 1, &t, G->e) < 0) {
        G->rc = G->e->code;
        return -1;
    }
    return t;
}

static int cint(gen *G, int64_t n, const int64_t *v)
{
    int t = fresh(G, "i");
    if (t < 0)
        return -1;
    if (nn_tensor_set_shape(G->g, t, 1, &n, G->e) || nn_tensor_set_int(G->g, t, v, n, G->e))
        G->rc = G->e->code ? G->e->code : ERR_ARG;
    return t;
}

/* Append op with inputs in[] and one output of the expected shape; the new
 * value is pushed on the live list and returned (NULL on failure). */
static val *node(gen *G, const char *op, int n_in, const int *in, int rank, const int64_t *d,
                 int *kout)
{
    if (G->rc)
        return NULL;
    int t = fresh(G, "t");
    if (t < 0)
        return NULL;
    int k = nn_graph_add_node(G->g, op, "", n_in, in, 1, &t, G->e);
    if (k < 0) {
        G->rc = k;
        return NULL;
    }
    if (kout)
        *kout = k;
    note(G, op);
    if (G->n_live == MAX_LIVE) {
        memmove(G->live + 1, G->live + 2, (MAX_LIVE - 2) * sizeof(val)); /* keep the input */
        G->n_live--;
    }
    val *v = &G->live[G->n_live++];
    v->t = t;
    v->rank = rank;
    memcpy(v->d, d, (size_t)rank * sizeof(int64_t));
    v->size = prod(d, rank);
    return v;
}

static void attr_ints(gen *G, int k, const char *name, const int64_t *v, int64_t n)
{
    if (!G->rc && nn_node_attr_ints(G->g, k, name, v, n, G->e))
        G->rc = G->e->code;
}

static void attr_int(gen *G, int k, const char *name, int64_t v)
{
    if (!G->rc && nn_node_attr_int(G->g, k, name, v, G->e))
        G->rc = G->e->code;
}

static void attr_float(gen *G, int k, const char *name, double v)
{
    if (!G->rc && nn_node_attr_float(G->g, k, name, v, G->e))
        G->rc = G->e->code;
}

static val cur(gen *G)
{
    return G->live[G->n_live - 1];
}

/* ---- the ops; each returns 1 if it added something, 0 if it did not apply ---- */

static int op_flatten(gen *G, int axis)
{
    val x = cur(G);
    if (axis < 0)
        axis = urand(G->r, x.rank + 1);
    int64_t d[2] = {prod(x.d, axis), prod(x.d + axis, x.rank - axis)};
    int k;
    if (!node(G, "Flatten", 1, &x.t, 2, d, &k))
        return 0;
    attr_int(G, k, "axis", axis < x.rank && urand(G->r, 3) == 0 ? axis - x.rank : axis);
    return 1;
}

static int op_reshape(gen *G, int rank, const int64_t *want)
{
    val x = cur(G);
    int64_t d[NN_MAX_RANK], n = x.size;
    if (want) {
        memcpy(d, want, (size_t)rank * sizeof(int64_t));
    } else { /* random factorisation of n */
        rank = 1 + urand(G->r, 4);
        int64_t rest = n;
        for (int i = 0; i < rank - 1; i++) {
            int64_t f = 1;
            for (int tries = 0; tries < 4; tries++) {
                int64_t c = 1 + urand(G->r, 4);
                if (rest % c == 0) {
                    f = c;
                    break;
                }
            }
            d[i] = f;
            rest /= f;
        }
        d[rank - 1] = rest;
        for (int i = rank - 1; i > 0; i--) { /* shuffle */
            int j = urand(G->r, i + 1);
            int64_t s = d[i];
            d[i] = d[j], d[j] = s;
        }
    }
    int64_t spec[NN_MAX_RANK];
    memcpy(spec, d, sizeof spec);
    if (urand(G->r, 3) == 0)
        spec[urand(G->r, rank)] = -1;
    for (int i = 0; i < rank && i < x.rank; i++) /* 0 copies the input's dim */
        if (spec[i] == x.d[i] && urand(G->r, 3) == 0)
            spec[i] = 0;
    int in[2] = {x.t, cint(G, rank, spec)};
    return node(G, "Reshape", 2, in, rank, d, NULL) != NULL;
}

static int op_gemm(gen *G)
{
    val x = cur(G);
    if (x.rank != 2) {
        if (!op_flatten(G, 1))
            return 0;
        x = cur(G);
    }
    int64_t N = 1 + urand(G->r, 8);
    if (x.d[0] == 1 && urand(G->r, 8) == 0) { /* x as a column, transA / transB forms */
        int64_t K = x.d[1], col[2] = {K, 1};
        if (!op_reshape(G, 2, col))
            return 0;
        x = cur(G);
        int k;
        if (urand(G->r, 2)) { /* transA: (K x 1)^T W -> 1 x N */
            int64_t wd[2] = {K, N}, od[2] = {1, N};
            int in[2] = {x.t, cfloat(G, 2, wd, K, 0)};
            if (!node(G, "Gemm", 2, in, 2, od, &k))
                return 0;
            attr_int(G, k, "transA", 1);
        } else { /* W (N x K) times the column -> N x 1 */
            int64_t wd[2] = {N, K}, od[2] = {N, 1};
            int in[2] = {cfloat(G, 2, wd, K, 0), x.t};
            if (!node(G, "Gemm", 2, in, 2, od, &k))
                return 0;
        }
        return 1;
    }
    if (urand(G->r, 5) == 0 && x.d[1] * 4 <= G->o->max_elems) { /* constant left: W (M x a) x */
        int64_t M = 1 + urand(G->r, 4);
        int64_t wd[2] = {M, x.d[0]}, od[2] = {M, x.d[1]};
        int in[2] = {cfloat(G, 2, wd, x.d[0], 0), x.t};
        return node(G, "Gemm", 2, in, 2, od, NULL) != NULL;
    }
    if (x.d[0] * N > G->o->max_elems)
        N = 1;
    int transB = urand(G->r, 2);
    int64_t wd[2] = {transB ? N : x.d[1], transB ? x.d[1] : N};
    int in[3] = {x.t, cfloat_folded(G, 2, wd, x.d[1], 0), -1};
    int n_in = 2;
    int bias = urand(G->r, 4);
    if (bias) {
        int64_t bd[2] = {1, N};
        if (bias == 1)
            in[2] = cfloat(G, 1, &N, 1, 0);
        else if (bias == 2)
            in[2] = cfloat(G, 2, bd, 1, 0);
        else
            bd[0] = x.d[0], in[2] = cfloat(G, 2, bd, 1, 0);
        n_in = 3;
    }
    int64_t od[2] = {x.d[0], N};
    int k;
    if (!node(G, "Gemm", n_in, in, 2, od, &k))
        return 0;
    if (transB)
        attr_int(G, k, "transB", 1);
    if (urand(G->r, 4) == 0)
        attr_float(G, k, "alpha", G->num == SG_NUM_DYADIC ? 0.5 : uni(G->r, 0.3, 2));
    if (n_in == 3 && urand(G->r, 4) == 0)
        attr_float(G, k, "beta", G->num == SG_NUM_DYADIC ? 2 : uni(G->r, 0.3, 2));
    return 1;
}

static int op_matmul(gen *G)
{
    val x = cur(G);
    if (x.rank == 2 && urand(G->r, 4) == 0) { /* constant left */
        int64_t M = 1 + urand(G->r, 4);
        if (M * x.d[1] > G->o->max_elems)
            return 0;
        int64_t wd[2] = {M, x.d[0]}, od[2] = {M, x.d[1]};
        int in[2] = {cfloat(G, 2, wd, x.d[0], 0), x.t};
        return node(G, "MatMul", 2, in, 2, od, NULL) != NULL;
    }
    int64_t K = x.d[x.rank - 1], N = 1 + urand(G->r, 6);
    int64_t od[NN_MAX_RANK];
    memcpy(od, x.d, sizeof od);
    if (x.rank >= 2 && urand(G->r, 6) == 0) { /* 1-D weight: last axis dropped */
        int in[2] = {x.t, cfloat(G, 1, &K, K, 0)};
        return node(G, "MatMul", 2, in, x.rank - 1, od, NULL) != NULL;
    }
    od[x.rank - 1] = N;
    if (prod(od, x.rank) > G->o->max_elems)
        return 0;
    int64_t wd[2] = {K, N};
    int in[2] = {x.t, cfloat_folded(G, 2, wd, K, 0)};
    return node(G, "MatMul", 2, in, x.rank, od, NULL) != NULL;
}

/* Add/Sub/Mul/Div with a broadcast constant. */
static int op_const(gen *G)
{
    val x = cur(G);
    static const char *const ops[] = {"Add", "Sub", "Mul", "Div"};
    int which = urand(G->r, 4);
    int64_t cd[NN_MAX_RANK], od[NN_MAX_RANK];
    int crank = urand(G->r, x.rank + 1), orank = x.rank;
    memcpy(od, x.d, sizeof od);
    for (int i = 0; i < crank; i++) {
        int64_t xd = x.d[x.rank - crank + i];
        cd[i] = urand(G->r, 2) ? xd : 1;
    }
    if (x.rank < 4 && urand(G->r, 8) == 0 && 2 * x.size <= G->o->max_elems) {
        /* a constant of higher rank broadcasts the output up */
        crank = x.rank + 1;
        cd[0] = 2;
        for (int i = 0; i < x.rank; i++)
            cd[i + 1] = urand(G->r, 2) ? x.d[i] : 1;
        orank = crank;
        od[0] = 2;
        memcpy(od + 1, x.d, (size_t)x.rank * sizeof(int64_t));
    }
    int c = cfloat_folded(G, crank, cd, 1, which == 3 ? 2 : 0);
    int swap = which != 3 && urand(G->r, 2);
    int in[2] = {swap ? c : x.t, swap ? x.t : c};
    return node(G, ops[which], 2, in, orank, od, NULL) != NULL;
}

static int op_unary(gen *G, const char *op)
{
    val x = cur(G);
    return node(G, op, 1, &x.t, x.rank, x.d, NULL) != NULL;
}

/* A side branch from x with the same shape. */
static int branch(gen *G)
{
    switch (urand(G->r, 3)) {
    case 0: return op_unary(G, "Relu");
    case 1: return op_unary(G, "Neg");
    default: {
        val x = cur(G);
        int c = cfloat(G, x.rank, x.d, 1, 0);
        int in[2] = {x.t, c};
        return node(G, "Mul", 2, in, x.rank, x.d, NULL) != NULL;
    }
    }
}

static int same_shape(const val *a, const val *b)
{
    return a->rank == b->rank && memcmp(a->d, b->d, (size_t)a->rank * sizeof(int64_t)) == 0;
}

/* Add/Sub of two computed tensors (residual DAG), sometimes broadcast. */
static int op_resid(gen *G)
{
    val x = cur(G), y;
    int found = -1;
    for (int i = G->n_live - 2; i >= 0; i--)
        if (same_shape(&G->live[i], &x) && urand(G->r, 2)) {
            found = i;
            break;
        }
    if (urand(G->r, 8) == 0) { /* x ± x */
        y = x;
    } else if (x.rank == 2 && x.d[0] == 1 && x.d[1] > 1 && urand(G->r, 6) == 0 &&
               x.d[1] * x.d[1] <= G->o->max_elems) {
        /* (1 x n) ± (n x 1): both operands broadcast to n x n */
        int64_t col[2] = {x.d[1], 1}, od[2] = {x.d[1], x.d[1]};
        if (!op_reshape(G, 2, col))
            return 0;
        y = cur(G);
        int swap = urand(G->r, 2);
        int in[2] = {swap ? y.t : x.t, swap ? x.t : y.t};
        return node(G, urand(G->r, 2) ? "Add" : "Sub", 2, in, 2, od, NULL) != NULL;
    } else if (found >= 0) {
        y = G->live[found];
    } else if (x.rank >= 2 && urand(G->r, 3) == 0) { /* keepdims reduce: broadcast add */
        int a = urand(G->r, x.rank);
        int64_t rd[NN_MAX_RANK];
        memcpy(rd, x.d, sizeof rd);
        rd[a] = 1;
        int64_t ax = a;
        int in2[2] = {x.t, cint(G, 1, &ax)};
        if (!node(G, "ReduceSum", 2, in2, x.rank, rd, NULL))
            return 0;
        y = cur(G);
    } else {
        if (!branch(G))
            return 0;
        if (urand(G->r, 2) && !branch(G))
            return 0;
        y = cur(G);
    }
    int swap = urand(G->r, 2);
    int in[2] = {swap ? y.t : x.t, swap ? x.t : y.t};
    return node(G, urand(G->r, 2) ? "Add" : "Sub", 2, in, x.rank, x.d, NULL) != NULL;
}

/* Bring x to rank sp+2 with batch 1 for Conv / pooling. */
static int to_spatial(gen *G, int sp)
{
    val x = cur(G);
    if (x.rank == sp + 2 && x.d[0] == 1)
        return 1;
    int64_t n = x.size, d[4] = {1, 1, 1, 1};
    int64_t c = 1;
    for (int64_t f = 1 + urand(G->r, 3); f >= 1; f--)
        if (n % f == 0) {
            c = f;
            break;
        }
    d[1] = c;
    if (sp == 1) {
        d[2] = n / c;
    } else {
        int64_t hw = n / c, h = 1;
        for (int64_t f = 2; f * f <= hw; f++)
            if (hw % f == 0 && urand(G->r, 2))
                h = f;
        d[2] = h, d[3] = hw / h;
    }
    return op_reshape(G, sp + 2, d);
}

/* Output length of a window op (ONNX / eval rules): explicit pads p0, p1
 * (overwritten for auto_pad 1 = SAME_UPPER, 2 = SAME_LOWER, 3 = VALID). */
static int64_t win_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t *p0, int64_t *p1,
                       int autopad, int ceil_mode)
{
    int64_t ext = (k - 1) * d + 1;
    if (autopad == 3) {
        *p0 = *p1 = 0;
    } else if (autopad) {
        int64_t o = (in + s - 1) / s, tot = (o - 1) * s + ext - in;
        tot = tot < 0 ? 0 : tot;
        *p0 = autopad == 1 ? tot / 2 : tot - tot / 2;
        *p1 = tot - *p0;
    }
    int64_t span = in + *p0 + *p1 - ext;
    if (span < 0)
        return 0;
    int64_t o = ceil_mode ? (span + s - 1) / s + 1 : span / s + 1;
    if (ceil_mode && (o - 1) * s >= in + *p0)
        o--;
    return o;
}

static const char *const autopad_names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};

static int op_conv(gen *G)
{
    int sp = 1 + urand(G->r, 2);
    val x0 = cur(G);
    if (x0.rank == 3 || x0.rank == 4)
        sp = x0.rank - 2;
    if (!to_spatial(G, sp))
        return 0;
    val x = cur(G);
    int64_t cin = x.d[1], grp = 1;
    for (int64_t f = cin; f >= 1; f--)
        if (cin % f == 0 && urand(G->r, 3) == 0) {
            grp = f;
            break;
        }
    int64_t cout = grp * (1 + urand(G->r, 2));
    int64_t ks[2], st[2], dl[2], pads[4], od[4] = {1, cout, 1, 1};
    int autopad = urand(G->r, 6) == 0 ? 1 + urand(G->r, 3) : 0;
    for (int i = 0; i < sp; i++) {
        int64_t in = x.d[2 + i];
        pads[i] = urand(G->r, 3) == 0 ? urand(G->r, 3) : 0;
        pads[i + sp] = urand(G->r, 3) == 0 ? urand(G->r, 3) : 0;
        dl[i] = urand(G->r, 4) == 0 ? 2 : 1;
        st[i] = 1 + urand(G->r, 2);
        int64_t avail = in + (autopad ? 0 : pads[i] + pads[i + sp]);
        int64_t kmax = (avail - 1) / dl[i] + 1;
        if (kmax < 1)
            return 0;
        ks[i] = 1 + urand(G->r, (int)(kmax < 3 ? kmax : 3));
        od[2 + i] = win_out(in, ks[i], st[i], dl[i], &pads[i], &pads[i + sp], autopad, 0);
        if (od[2 + i] < 1)
            return 0;
    }
    if (prod(od, sp + 2) > G->o->max_elems)
        return 0;
    int64_t wd[4] = {cout, cin / grp, ks[0], ks[1]};
    int64_t fan = cin / grp * ks[0] * (sp == 2 ? ks[1] : 1);
    int in[3] = {x.t, cfloat_folded(G, sp + 2, wd, fan, 0), -1};
    int n_in = 2;
    if (urand(G->r, 2)) {
        in[2] = cfloat(G, 1, &cout, 1, 0);
        n_in = 3;
    }
    int k;
    if (!node(G, "Conv", n_in, in, sp + 2, od, &k))
        return 0;
    if (urand(G->r, 2))
        attr_ints(G, k, "kernel_shape", ks, sp);
    attr_ints(G, k, "strides", st, sp);
    attr_ints(G, k, "dilations", dl, sp);
    if (autopad && !G->rc && nn_node_attr_string(G->g, k, "auto_pad", autopad_names[autopad], G->e))
        G->rc = G->e->code;
    if (!autopad)
        attr_ints(G, k, "pads", pads, 2 * sp);
    if (grp > 1)
        attr_int(G, k, "group", grp);
    return 1;
}

/* AveragePool, or MaxPool (is_max: no count_include_pad) */
static int op_pool(gen *G, int is_max)
{
    val x0 = cur(G);
    int sp = (x0.rank == 3 || x0.rank == 4) ? x0.rank - 2 : 1 + urand(G->r, 2);
    if (!to_spatial(G, sp))
        return 0;
    val x = cur(G);
    /* asymmetric pads with count_include_pad, and dilations, were bugs of
     * bound/conv.c found here (test_stress.c, regression_avgpool_*) */
    int incl = !is_max && urand(G->r, 2), ceil_mode = urand(G->r, 4) == 0;
    int autopad = urand(G->r, 6) == 0 ? 1 + urand(G->r, 3) : 0;
    int dil = urand(G->r, 6) == 0;
    int64_t ks[2], st[2], dl[2], pads[4], od[4] = {1, x.d[1], 1, 1};
    for (int i = 0; i < sp; i++) {
        int64_t in = x.d[2 + i];
        dl[i] = dil ? 1 + urand(G->r, 2) : 1;
        int64_t kmax = (in - 1) / dl[i] + 1;
        ks[i] = 1 + urand(G->r, (int)(kmax < 3 ? kmax : 3));
        pads[i] = urand(G->r, 3) == 0 ? urand(G->r, (int)ks[i]) : 0;
        pads[i + sp] = urand(G->r, 3) == 0 ? urand(G->r, (int)ks[i]) : 0;
        st[i] = 1 + urand(G->r, 2);
        od[2 + i] = win_out(in, ks[i], st[i], dl[i], &pads[i], &pads[i + sp], autopad, ceil_mode);
        if (od[2 + i] < 1)
            return 0;
    }
    int k;
    if (!node(G, is_max ? "MaxPool" : "AveragePool", 1, &x.t, sp + 2, od, &k))
        return 0;
    attr_ints(G, k, "kernel_shape", ks, sp);
    attr_ints(G, k, "strides", st, sp);
    if (dil)
        attr_ints(G, k, "dilations", dl, sp);
    if (autopad && !G->rc && nn_node_attr_string(G->g, k, "auto_pad", autopad_names[autopad], G->e))
        G->rc = G->e->code;
    if (!autopad)
        attr_ints(G, k, "pads", pads, 2 * sp);
    if (incl)
        attr_int(G, k, "count_include_pad", 1);
    if (ceil_mode)
        attr_int(G, k, "ceil_mode", 1);
    return 1;
}

static int op_gap(gen *G)
{
    val x = cur(G);
    if (x.rank < 3 || x.d[0] != 1) {
        if (!to_spatial(G, 1 + urand(G->r, 2)))
            return 0;
        x = cur(G);
    }
    int64_t od[NN_MAX_RANK];
    for (int i = 0; i < x.rank; i++)
        od[i] = i < 2 ? x.d[i] : 1;
    return node(G, "GlobalAveragePool", 1, &x.t, x.rank, od, NULL) != NULL;
}

static int cscalar(gen *G, double v);

/* Clip with constant scalar bounds (opset 13 inputs): both, or the lower only */
static int op_clip(gen *G)
{
    val x = cur(G);
    int dy = G->num == SG_NUM_DYADIC;
    double lo = dy ? (double)(urand(G->r, 9) - 4) / 4 : uni(G->r, -1.5, 1.0);
    int in[3] = {x.t, cscalar(G, lo), -1}, n_in = 2;
    if (urand(G->r, 3)) { /* and an upper bound above it */
        in[2] = cscalar(G, lo + (dy ? 0.5 : uni(G->r, 0.01, 2.0)));
        n_in = 3;
    }
    return node(G, "Clip", n_in, in, x.rank, x.d, NULL) != NULL;
}

static int op_batchnorm(gen *G)
{
    val x = cur(G);
    if (x.rank < 2)
        return 0;
    int64_t c = x.d[1];
    int in[5] = {x.t, cfloat(G, 1, &c, 1, 0), cfloat(G, 1, &c, 1, 0), cfloat(G, 1, &c, 1, 0),
                 cfloat(G, 1, &c, 1, 1)};
    int k;
    if (!node(G, "BatchNormalization", 5, in, x.rank, x.d, &k))
        return 0;
    /* the default (float32 1e-5f) was a bug of bound/ found here
     * (test_stress.c, regression_batchnorm_default_epsilon) */
    if (urand(G->r, 2))
        attr_float(G, k, "epsilon", G->num == SG_NUM_DYADIC ? 0.25 : (urand(G->r, 2) ? 1e-3 : 1e-5));
    return 1;
}

static int op_transpose(gen *G)
{
    val x = cur(G);
    int64_t perm[NN_MAX_RANK], od[NN_MAX_RANK];
    int dflt = urand(G->r, 4) == 0;
    for (int i = 0; i < x.rank; i++)
        perm[i] = dflt ? x.rank - 1 - i : i;
    if (!dflt)
        for (int i = x.rank - 1; i > 0; i--) {
            int j = urand(G->r, i + 1);
            int64_t s = perm[i];
            perm[i] = perm[j], perm[j] = s;
        }
    for (int i = 0; i < x.rank; i++)
        od[i] = x.d[perm[i]];
    int k;
    if (!node(G, "Transpose", 1, &x.t, x.rank, od, &k))
        return 0;
    if (!dflt)
        attr_ints(G, k, "perm", perm, x.rank);
    return 1;
}

static int op_squeeze(gen *G)
{
    val x = cur(G);
    int64_t axes[NN_MAX_RANK], od[NN_MAX_RANK];
    int na = 0, orank = 0;
    for (int i = 0; i < x.rank; i++)
        if (x.d[i] == 1 && urand(G->r, 2))
            axes[na++] = urand(G->r, 2) ? i : i - x.rank;
    if (na == 0 || na == x.rank)
        return 0;
    int all = 1; /* no axes input: every 1-dim goes */
    for (int i = 0; i < x.rank; i++)
        all &= x.d[i] != 1 || urand(G->r, 8) != 0;
    int n_one = 0;
    for (int i = 0; i < x.rank; i++)
        n_one += x.d[i] == 1;
    if (urand(G->r, 4) == 0 && n_one < x.rank) {
        for (int i = 0; i < x.rank; i++)
            if (x.d[i] != 1)
                od[orank++] = x.d[i];
        (void)all;
        return node(G, "Squeeze", 1, &x.t, orank, od, NULL) != NULL;
    }
    for (int i = 0; i < x.rank; i++) {
        int gone = 0;
        for (int j = 0; j < na; j++)
            gone |= axes[j] == i || axes[j] == i - x.rank;
        if (!gone)
            od[orank++] = x.d[i];
    }
    int in[2] = {x.t, cint(G, na, axes)};
    return node(G, "Squeeze", 2, in, orank, od, NULL) != NULL;
}

static int op_unsqueeze(gen *G)
{
    val x = cur(G);
    if (x.rank >= 5)
        return 0;
    int64_t a = urand(G->r, x.rank + 1), od[NN_MAX_RANK];
    for (int i = 0, j = 0; i <= x.rank; i++)
        od[i] = i == a ? 1 : x.d[j++];
    int in[2] = {x.t, cint(G, 1, &a)};
    return node(G, "Unsqueeze", 2, in, x.rank + 1, od, NULL) != NULL;
}

static int op_concat(gen *G)
{
    val x = cur(G);
    int a = urand(G->r, x.rank);
    int in[3], n_in = 0;
    int64_t od[NN_MAX_RANK];
    memcpy(od, x.d, sizeof od);
    in[n_in++] = x.t;
    int kind = urand(G->r, 3);
    if (kind == 0) { /* a constant piece */
        int64_t cd[NN_MAX_RANK];
        memcpy(cd, x.d, sizeof cd);
        cd[a] = 1 + urand(G->r, 2);
        in[n_in++] = cfloat(G, x.rank, cd, 1, 0);
        od[a] += cd[a];
    } else { /* a computed branch of the same shape */
        if (!branch(G))
            return 0;
        in[n_in++] = cur(G).t;
        od[a] += x.d[a];
        if (kind == 2 && prod(od, x.rank) + x.size <= G->o->max_elems) {
            in[n_in++] = x.t; /* x twice */
            od[a] += x.d[a];
        }
    }
    if (prod(od, x.rank) > G->o->max_elems)
        return 0;
    if (urand(G->r, 2)) { /* shuffle the order */
        int s = in[0];
        in[0] = in[n_in - 1], in[n_in - 1] = s;
    }
    int k;
    if (!node(G, "Concat", n_in, in, x.rank, od, &k))
        return 0;
    attr_int(G, k, "axis", urand(G->r, 2) ? a : a - x.rank);
    return 1;
}

/* ONNX Slice on one axis of length d: the output length. */
static int64_t slice_len(int64_t d, int64_t s, int64_t en, int64_t st)
{
    if (s < 0)
        s += d;
    if (en < 0)
        en += d;
    if (st > 0) {
        s = s < 0 ? 0 : (s > d ? d : s);
        en = en < 0 ? 0 : (en > d ? d : en);
        return en > s ? (en - s + st - 1) / st : 0;
    }
    s = s < 0 ? 0 : (s > d - 1 ? d - 1 : s);
    en = en < -1 ? -1 : (en > d - 1 ? d - 1 : en);
    return s > en ? (s - en + (-st) - 1) / (-st) : 0;
}

static int op_slice(gen *G)
{
    val x = cur(G);
    int64_t starts[NN_MAX_RANK], ends[NN_MAX_RANK], axes[NN_MAX_RANK], steps[NN_MAX_RANK];
    int64_t od[NN_MAX_RANK];
    memcpy(od, x.d, sizeof od);
    int na = 0;
    for (int a = 0; a < x.rank; a++) {
        if (x.d[a] < 2 || urand(G->r, 2))
            continue;
        int64_t d = x.d[a];
        for (int tries = 0; tries < 8; tries++) {
            int64_t st = urand(G->r, 4) == 0 ? -(1 + urand(G->r, 2)) : 1 + urand(G->r, 2);
            int64_t s = urand(G->r, (int)d + 2) - 1, en = urand(G->r, (int)d + 2) - 1;
            if (urand(G->r, 4) == 0)
                s -= d; /* negative form */
            if (urand(G->r, 5) == 0)
                en = st > 0 ? INT64_MAX : INT64_MIN; /* to the end */
            int64_t len = slice_len(d, s, en, st);
            if (len >= 1) {
                starts[na] = s, ends[na] = en, steps[na] = st;
                axes[na] = urand(G->r, 2) ? a : a - x.rank;
                od[a] = len;
                na++;
                break;
            }
        }
    }
    if (na == 0)
        return 0;
    int in[5] = {x.t, cint(G, na, starts), cint(G, na, ends), cint(G, na, axes), -1};
    int n_in = 4;
    int unit = 1;
    for (int i = 0; i < na; i++)
        unit &= steps[i] == 1;
    if (!unit || urand(G->r, 2))
        in[4] = cint(G, na, steps), n_in = 5;
    return node(G, "Slice", n_in, in, x.rank, od, NULL) != NULL;
}

static int op_reduce(gen *G)
{
    val x = cur(G);
    int mean = urand(G->r, 2), keep = urand(G->r, 2);
    int64_t axes[NN_MAX_RANK], od[NN_MAX_RANK];
    int na = 0, orank = 0;
    for (int a = 0; a < x.rank; a++)
        if (urand(G->r, 2))
            axes[na++] = urand(G->r, 2) ? a : a - x.rank;
    if (na == 0 || (!keep && na == x.rank))
        keep = 1;
    for (int a = 0; a < x.rank; a++) {
        int red = na == 0;
        for (int j = 0; j < na; j++)
            red |= axes[j] == a || axes[j] == a - x.rank;
        if (!red)
            od[orank++] = x.d[a];
        else if (keep)
            od[orank++] = 1;
    }
    int k;
    if (mean) { /* opset 13: axes as an attribute */
        if (!node(G, "ReduceMean", 1, &x.t, orank, od, &k))
            return 0;
        if (na)
            attr_ints(G, k, "axes", axes, na);
    } else {
        int in[2] = {x.t, na ? cint(G, na, axes) : -1};
        if (!node(G, "ReduceSum", na ? 2 : 1, in, orank, od, &k))
            return 0;
    }
    if (!keep || urand(G->r, 2))
        attr_int(G, k, "keepdims", keep);
    return 1;
}

/* ---- smooth nonlinearities and products (sg_opts.smooth) ----
 * Each op gets inputs inside its domain: Log, Sqrt, Reciprocal and negative
 * powers a strictly positive tensor (positive()), Exp a squashed one (so it
 * cannot overflow), Div a divisor of one sign. */

static int cscalar(gen *G, double v)
{
    int t = fresh(G, "c");
    if (t >= 0 && (nn_tensor_set_shape(G->g, t, 0, NULL, G->e) ||
                   nn_tensor_set_float(G->g, t, &v, 1, G->e)))
        G->rc = G->e->code ? G->e->code : ERR_ARG;
    return t;
}

/* cur op scalar (either order for Add and Mul) */
static int op_scalar(gen *G, const char *op, double v)
{
    val x = cur(G);
    int c = cscalar(G, v);
    int swap = strcmp(op, "Sub") != 0 && strcmp(op, "Div") != 0 && urand(G->r, 2);
    int in[2] = {swap ? c : x.t, swap ? x.t : c};
    return c >= 0 && node(G, op, 2, in, x.rank, x.d, NULL) != NULL;
}

static double pos_const(gen *G)
{
    return G->num == SG_NUM_DYADIC ? (double)(1 + urand(G->r, 16)) / 8 : uni(G->r, 0.01, 2.0);
}

/* x mapped into [-s, s] (s <= 6) */
static int squash(gen *G)
{
    static const char *const sq[] = {"Tanh", "Sigmoid", "Sin", "Cos", "Erf"};
    if (!op_unary(G, sq[urand(G->r, 5)]))
        return 0;
    return urand(G->r, 2) ? op_scalar(G, "Mul", G->num == SG_NUM_DYADIC ? 4.0 : uni(G->r, 0.5, 6.0)) : 1;
}

/* x mapped to a strictly positive tensor */
static int positive(gen *G)
{
    switch (urand(G->r, 5)) {
    case 0: return op_unary(G, "Sigmoid") && op_scalar(G, "Add", pos_const(G));
    case 1: return squash(G) && op_unary(G, "Exp");
    case 2: return op_unary(G, "Abs") && op_scalar(G, "Add", pos_const(G));
    case 3: return op_unary(G, "Relu") && op_scalar(G, "Add", pos_const(G));
    default: return op_unary(G, "Softplus") && op_scalar(G, "Add", pos_const(G));
    }
}

/* Mul of x by a computed tensor of the same shape (x itself, an earlier
 * one, or a nonlinearity of x), or Div by a tensor of one sign. */
static int op_product(gen *G)
{
    val x = cur(G), y = x;
    int is_div = urand(G->r, 3) == 0;
    for (int i = G->n_live - 2; i >= 0; i--)
        if (same_shape(&G->live[i], &x) && urand(G->r, 2)) {
            y = G->live[i];
            break;
        }
    if (is_div || urand(G->r, 3) == 0) {
        /* derive the other operand from y: y must be current */
        if (y.t != x.t && !node(G, "Identity", 1, &y.t, y.rank, y.d, NULL))
            return 0;
        if (is_div ? !positive(G) : !squash(G))
            return 0;
        if (is_div && urand(G->r, 3) == 0 && !op_unary(G, "Neg"))
            return 0;
        y = cur(G);
    }
    int swap = !is_div && urand(G->r, 2);
    int in[2] = {swap ? y.t : x.t, swap ? x.t : y.t};
    return node(G, is_div ? "Div" : "Mul", 2, in, x.rank, x.d, NULL) != NULL;
}

static int op_pow(gen *G)
{
    double p;
    if (urand(G->r, 3) == 0) {
        p = 2 + urand(G->r, 2); /* any sign of input */
    } else {
        static const double ps[] = {-4, -3, -2, -1, 0.5, 2, 3, 4, 5, 6};
        p = ps[urand(G->r, 10)];
        if (!positive(G))
            return 0;
    }
    val x = cur(G);
    int c = cscalar(G, p);
    int in[2] = {x.t, c};
    return c >= 0 && node(G, "Pow", 2, in, x.rank, x.d, NULL) != NULL;
}

static int op_smooth(gen *G)
{
    int k;
    switch (urand(G->r, 15)) {
    case 14: { /* Softmax along a random axis (opset 13) */
        if (!squash(G))
            return 0;
        val x = cur(G);
        if (!node(G, "Softmax", 1, &x.t, x.rank, x.d, &k))
            return 0;
        if (x.rank > 0 && urand(G->r, 2))
            attr_int(G, k, "axis", (int64_t)urand(G->r, (uint64_t)(2 * x.rank)) - x.rank);
        return 1;
    }
    case 0: return op_unary(G, "Sigmoid");
    case 1: return op_unary(G, "Tanh");
    case 2: return op_unary(G, urand(G->r, 2) ? "Sin" : "Cos");
    case 3: return op_unary(G, "Erf");
    case 4: return op_unary(G, "Softplus");
    case 5: {
        val x = cur(G);
        if (!node(G, "Gelu", 1, &x.t, x.rank, x.d, &k))
            return 0;
        if (urand(G->r, 2))
            if (!G->rc && nn_node_attr_string(G->g, k, "approximate", urand(G->r, 3) ? "tanh" : "none", G->e))
                G->rc = G->e->code;
        return 1;
    }
    case 6: {
        if (urand(G->r, 2))
            return op_unary(G, "Abs");
        val x = cur(G);
        if (!node(G, "LeakyRelu", 1, &x.t, x.rank, x.d, &k))
            return 0;
        if (urand(G->r, 2))
            attr_float(G, k, "alpha", uni(G->r, -2.0, 2.0));
        return 1;
    }
    case 7: return squash(G) && op_unary(G, "Exp");
    case 8: return positive(G) && op_unary(G, urand(G->r, 2) ? "Log" : "Sqrt");
    case 9:
        if (!positive(G) || (urand(G->r, 3) == 0 && !op_unary(G, "Neg")))
            return 0;
        return op_unary(G, "Reciprocal");
    case 10: return op_pow(G);
    default: return op_product(G);
    }
}

static int one_op(gen *G)
{
    if (G->o->smooth && urand(G->r, 3) == 0)
        return op_smooth(G);
    int pick = urand(G->r, 24);
    switch (pick) {
    case 0: case 1: case 2: return op_gemm(G);
    case 3: return op_matmul(G);
    case 4: case 5: return op_const(G);
    case 6: case 7: return op_resid(G);
    case 8: return op_unary(G, "Neg");
    case 9: case 10: case 11: return op_unary(G, "Relu");
    case 12: return op_flatten(G, -1);
    case 13: return op_reshape(G, 0, NULL);
    case 14: return op_unary(G, urand(G->r, 2) ? "Identity" : "Dropout");
    case 15: case 16: return op_conv(G);
    case 17: return op_batchnorm(G);
    case 18: return op_transpose(G);
    case 19: return urand(G->r, 2) ? op_squeeze(G) : op_unsqueeze(G);
    case 20: return op_concat(G);
    case 21: return op_slice(G);
    case 22: {
        int r = urand(G->r, 4);
        return r == 3 ? op_gap(G) : r == 2 ? op_clip(G) : op_pool(G, r);
    }
    default: return op_reduce(G);
    }
}

int sg_network(rng *r, const sg_opts *o, nn_graph **out, char *desc, size_t desc_len, err *e)
{
    *out = NULL;
    gen G = {0};
    G.r = r;
    G.o = o;
    G.e = e;
    G.num = o->numerics >= 0 ? o->numerics : urand(r, SG_NUM_COUNT);
    G.desc = desc;
    G.dlen = desc_len;
    if (desc && desc_len)
        desc[0] = 0;
    G.g = nn_graph_new("stress.onnx");
    if (!G.g)
        return err_set(e, ERR_NOMEM, "stress: out of memory");
    G.g->opset = 13;
    static const char *const numn[] = {"normal", "dyadic", "huge", "tiny", "mixed"};
    note(&G, numn[G.num]);
    /* the input */
    int64_t n = 1 + urand(r, (int)o->max_in), d[4] = {1, n, 1, 1};
    int rank = 2;
    switch (urand(r, 5)) {
    case 0: rank = 1, d[0] = n; break;
    case 1: if (n % 2 == 0) rank = 3, d[1] = 2, d[2] = n / 2; break;
    case 2: if (n % 4 == 0) rank = 4, d[1] = 1, d[2] = 2, d[3] = n / 2; break;
    default: break;
    }
    int x = fresh(&G, "x");
    if (x < 0 || nn_tensor_set_shape(G.g, x, rank, d, e) || nn_graph_add_input(G.g, x, e)) {
        nn_graph_free(G.g);
        return e->code ? e->code : ERR_NOMEM;
    }
    G.live[0] = (val){.t = x, .rank = rank, .size = n};
    memcpy(G.live[0].d, d, sizeof d);
    G.n_live = 1;
    int ops = 1 + urand(r, o->max_ops);
    for (int tries = 0; ops > 0 && tries < 8 * o->max_ops && !G.rc; tries++)
        ops -= one_op(&G);
    /* head: a small output */
    if (!G.rc && (cur(&G).size > o->max_out || urand(r, 3) == 0)) {
        if (cur(&G).rank != 2 || cur(&G).d[0] != 1)
            op_flatten(&G, cur(&G).rank == 0 ? 0 : 0);
        if (!G.rc) {
            val v = cur(&G);
            int64_t N = 1 + urand(r, (int)o->max_out);
            int64_t wd[2] = {N, v.d[1]}, od[2] = {v.d[0], N};
            int in[3] = {v.t, cfloat(&G, 2, wd, v.d[1], 0), cfloat(&G, 1, &N, 1, 0)};
            int k;
            if (node(&G, "Gemm", 3, in, 2, od, &k))
                attr_int(&G, k, "transB", 1);
        }
    }
    int rc = G.rc;
    if (!rc)
        rc = nn_graph_add_output(G.g, cur(&G).t, e);
    if (!rc && getenv("SG_DUMP"))
        for (int k = 0; k < G.g->n_nodes; k++) {
            const nn_node *nd = &G.g->nodes[k];
            fprintf(stderr, "node %d %s:", k, nd->op_type);
            for (int j = 0; j < nd->n_in; j++) {
                const nn_tensor *t = nd->in[j] >= 0 ? &G.g->tensors[nd->in[j]] : NULL;
                fprintf(stderr, " %s", t ? t->name : "-");
                if (t && t->rank >= 0) {
                    fprintf(stderr, "[");
                    for (int a = 0; a < t->rank; a++)
                        fprintf(stderr, "%lld,", (long long)t->dims[a]);
                    fprintf(stderr, "]");
                }
            }
            fprintf(stderr, " -> %s\n", G.g->tensors[nd->out[0]].name);
        }
    if (!rc)
        rc = nn_graph_finalize(G.g, e);
    if (!rc) {
        val v = cur(&G);
        const nn_tensor *y = &G.g->tensors[G.g->output];
        if (y->size != v.size || y->rank != v.rank)
            rc = err_set(e, ERR_SHAPE, "stress: generator expected %d-D size %lld, finalize gave %d-D size %lld",
                         v.rank, (long long)v.size, y->rank, (long long)y->size);
    }
    if (rc) {
        nn_graph_free(G.g);
        return rc;
    }
    *out = G.g;
    return 0;
}

/* ---------------- boxes and specs ---------------- */

void sg_box(rng *r, int kind, int64_t n, double *lo, double *hi)
{
    if (kind < 0)
        kind = urand(r, SG_BOX_COUNT);
    for (int64_t i = 0; i < n; i++) {
        double c = rng_normal(r), w;
        switch (kind) {
        case SG_BOX_WIDE: w = pow(10.0, uni(r, 0, 3)); break;
        case SG_BOX_POINT: w = 0; break;
        case SG_BOX_SOMEPOINT: w = urand(r, 2) ? 0 : uni(r, 0, 1); break;
        case SG_BOX_FAR:
            c = (urand(r, 2) ? 1 : -1) * pow(10.0, uni(r, 3, 8));
            w = fabs(c) * pow(10.0, uni(r, -12, -1));
            break;
        case SG_BOX_TINY: w = 1e-12 * (1 + fabs(c)); break;
        case SG_BOX_DYADIC:
            c = (double)(urand(r, 33) - 16) / 8;
            w = (double)(1 << urand(r, 4)) / 8;
            break;
        default: w = uni(r, 0, 1) * pow(10.0, uni(r, -3, 0)); break;
        }
        lo[i] = c - w / 2;
        hi[i] = c + w / 2;
        if (kind == SG_BOX_DYADIC)
            lo[i] = c, hi[i] = c + w;
        if (!(lo[i] <= hi[i]))
            hi[i] = lo[i];
    }
}

/* Growable text buffer for the VNNLIB source. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    int bad;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->bad)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->bad = 1;
            return;
        }
        if (b->s && b->n + (size_t)w < b->cap) {
            b->n += (size_t)w;
            return;
        }
        size_t cap = (b->cap + (size_t)w + 64) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->bad = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

int sg_spec(rng *r, int64_t n_x, int64_t n_y, const double *lo, const double *hi,
            const double *ylo, const double *yhi, spec_property **out, err *e)
{
    sbuf b = {0};
    for (int64_t i = 0; i < n_x; i++)
        sb_printf(&b, "(declare-const X_%lld Real)\n", (long long)i);
    for (int64_t j = 0; j < n_y; j++)
        sb_printf(&b, "(declare-const Y_%lld Real)\n", (long long)j);
    if (urand(r, 3) == 0 && n_x > 0) {
        /* an `or` of two boxes splitting the box in half along one input:
         * two regions sharing the output condition */
        int64_t s = urand(r, (int)n_x);
        double mid = lo[s] + (hi[s] - lo[s]) / 2;
        sb_printf(&b, "(assert (or");
        for (int half = 0; half < 2; half++) {
            sb_printf(&b, " (and");
            for (int64_t i = 0; i < n_x; i++) {
                double l = lo[i], h = hi[i];
                if (i == s)
                    half ? (l = mid) : (h = mid);
                sb_printf(&b, " (>= X_%lld %.17g) (<= X_%lld %.17g)", (long long)i, l,
                          (long long)i, h);
            }
            sb_printf(&b, ")");
        }
        sb_printf(&b, "))\n");
    } else {
        for (int64_t i = 0; i < n_x; i++)
            sb_printf(&b, "(assert (>= X_%lld %.17g))\n(assert (<= X_%lld %.17g))\n",
                      (long long)i, lo[i], (long long)i, hi[i]);
    }
    int nc = 1 + urand(r, 2);
    sb_printf(&b, "(assert (or");
    for (int c = 0; c < nc; c++) {
        int nr = 1 + urand(r, 3);
        sb_printf(&b, " (and");
        for (int q = 0; q < nr; q++) {
            int64_t j = urand(r, (int)n_y), k = urand(r, (int)n_y);
            double l = ylo ? ylo[j] : -1, h = yhi ? yhi[j] : 1;
            /* thresholds near the bound's edge make both answers common */
            double u3 = rng_uniform(r);
            u3 = u3 * u3 * u3;
            int le = urand(r, 2);
            double t = le ? l + (h - l) * u3 : h - (h - l) * u3;
            if (urand(r, 3) == 0) /* just outside the bound: provably unreachable */
                t = le ? l - (h - l) * 1e-3 * u3 : h + (h - l) * 1e-3 * u3;
            if (!isfinite(t))
                t = 0;
            if (n_y > 1 && j != k && urand(r, 2)) /* Y_j <= Y_k, as in classification specs */
                sb_printf(&b, " (<= Y_%lld Y_%lld)", (long long)j, (long long)k);
            else
                sb_printf(&b, " (%s Y_%lld %.17g)", le ? "<=" : ">=", (long long)j, t);
        }
        sb_printf(&b, ")");
    }
    sb_printf(&b, "))\n");
    if (b.bad) {
        free(b.s);
        return err_set(e, ERR_NOMEM, "stress: out of memory");
    }
    int rc = spec_parse_vnnlib_string("stress.vnnlib", b.s, out, e);
    free(b.s);
    return rc;
}

/* ---------------- checks ---------------- */

void sg_stats_add(sg_stats *to, const sg_stats *f)
{
    to->cases += f->cases;
    to->unsupported += f->unsupported;
    to->samples += f->samples;
    to->violations += f->violations;
    to->near_misses += f->near_misses;
    to->bab_domains += f->bab_domains;
    to->nonfinite += f->nonfinite;
    to->crown_looser += f->crown_looser;
    to->crown_looser_tiny += f->crown_looser_tiny;
    if (f->crown_looser_max > to->crown_looser_max) {
        to->crown_looser_max = f->crown_looser_max;
        to->crown_looser_seed = f->crown_looser_seed;
    }
    to->exact_cases += f->exact_cases;
    to->exact_points += f->exact_points;
    to->bab_cases += f->bab_cases;
    to->bab_unsat += f->bab_unsat;
    to->bab_sat += f->bab_sat;
    to->bab_unknown += f->bab_unknown;
    to->bab_wrong += f->bab_wrong;
    to->gap_sum += f->gap_sum;
    to->gap_n += f->gap_n;
}

void sg_stats_print(FILE *f, const sg_stats *s)
{
    fprintf(f,
            "cases %lld (unsupported %lld), samples %lld, VIOLATIONS %lld (near misses within "
            "eval rounding %lld; %lld overflowed samples skipped), CROWN looser than IBP %lld (+%lld within slack, max rel %.3g at "
            "seed %llu), "
            "CROWN width / sample hull (geometric mean) %.3g; exact-arithmetic cases %lld (%lld points); bab %lld: unsat %lld sat %lld unknown %lld, "
            "WRONG %lld; genbab domains %lld\n",
            (long long)s->cases, (long long)s->unsupported, (long long)s->samples,
            (long long)s->violations, (long long)s->near_misses, (long long)s->nonfinite,
            (long long)s->crown_looser,
            (long long)s->crown_looser_tiny, s->crown_looser_max,
            (unsigned long long)s->crown_looser_seed,
            s->gap_n ? pow(10.0, s->gap_sum / (double)s->gap_n) : 0.0, (long long)s->exact_cases,
            (long long)s->exact_points, (long long)s->bab_cases,
            (long long)s->bab_unsat, (long long)s->bab_sat, (long long)s->bab_unknown,
            (long long)s->bab_wrong, (long long)s->bab_domains);
}

/* nn_eval in rounding mode mode; 0 or < 0. */
static int eval_mode(const nn_graph *g, int mode, const double *x, double *y, err *e)
{
    fesetround(mode);
    int rc = nn_eval(g, x, y, e);
    fesetround(FE_TONEAREST);
    return rc;
}

static int op_is_smooth(nn_op op)
{
    switch (op) {
    case NN_OP_SIGMOID: case NN_OP_TANH: case NN_OP_EXP: case NN_OP_LOG: case NN_OP_SIN:
    case NN_OP_COS: case NN_OP_ERF: case NN_OP_SOFTPLUS: case NN_OP_SQRT:
    case NN_OP_RECIPROCAL: case NN_OP_POW: case NN_OP_GELU: case NN_OP_LEAKYRELU:
        return 1;
    default:
        return 0;
    }
}

/* |f'(v)| of a smooth unary op (Pow: its constant exponent). */
static double smooth_deriv(const nn_node *nd, const nn_graph *g, double v)
{
    switch (nd->op) {
    case NN_OP_SIGMOID: return 0.25;
    case NN_OP_TANH: case NN_OP_SIN: case NN_OP_COS: case NN_OP_SOFTPLUS: return 1;
    case NN_OP_ERF: case NN_OP_GELU: return 1.2;
    case NN_OP_EXP: return exp(v);
    case NN_OP_LOG: return 1 / fabs(v);
    case NN_OP_SQRT: return 0.5 / sqrt(fabs(v));
    case NN_OP_RECIPROCAL: return 1 / (v * v);
    case NN_OP_LEAKYRELU: return fmax(1, fabs(nn_attr_float(nd, "alpha", (double)0.01f)));
    case NN_OP_POW: {
        const nn_tensor *t = &g->tensors[nd->in[1]];
        double p = t->data ? t->data[0] : t->idata ? (double)t->idata[0] : NAN;
        return fabs(p) * pow(fabs(v), p - 1);
    }
    default: return 1;
    }
}

/* Largest |f'| over the evaluated inputs, each moved by its error e. */
static double smooth_gain(const nn_node *nd, const nn_graph *g, const double *v, int64_t n,
                          double e)
{
    double L = 0;
    for (int64_t i = 0; i < n; i++)
        for (int s = -1; s <= 1; s++) {
            double d = smooth_deriv(nd, g, v[i] + s * e);
            L = isnan(d) ? INFINITY : fmax(L, d);
        }
    return L;
}

/* A conservative bound on nn_eval's own rounding error at x (the same for
 * every output), from a walk over the finalized graph: each node maps an
 * input error e to L·e (L: a bound on the node's max-norm gain, from its
 * constants) and adds its own rounding, gamma(terms)·(L·|input| + |bias|),
 * with the actual magnitudes of this evaluation (nn_eval_all). Crude
 * (max-norms, every weight counted as a term) but it covers cancellation,
 * where the directed-rounding spread can miss the error entirely. */
static double eval_error_bound(const nn_graph *g, const double *x)
{
    double **vals = NULL;
    err e = {0};
    if (nn_eval_all(g, x, &vals, &e) != 0)
        return INFINITY;
    double *terr = calloc((size_t)g->n_tensors, sizeof(double));
    if (!terr) {
        nn_values_free(g, vals);
        return INFINITY;
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const nn_node *nd = &g->nodes[k];
        double cmax = 0, cmin = INFINITY, csz = 0, e_in = 0, m_in = 0;
        double m_first = 0, min_last = INFINITY; /* computed operands: |first| max, |last| min */
        int64_t in_size = 1, n_comp = 0;
        for (int j = 0; j < nd->n_in; j++) {
            if (nd->in[j] < 0)
                continue;
            const nn_tensor *t = &g->tensors[nd->in[j]];
            if (t->data && t->producer < 0 && nd->in[j] != g->input) {
                for (int64_t i = 0; i < t->size; i++) {
                    cmax = fmax(cmax, fabs(t->data[i]));
                    cmin = fmin(cmin, fabs(t->data[i]));
                }
                csz += (double)t->size;
            } else if (t->dtype == NN_FLOAT && vals[nd->in[j]]) {
                double m = 0, mn = INFINITY;
                for (int64_t i = 0; i < t->size; i++) {
                    m = fmax(m, fabs(vals[nd->in[j]][i]));
                    mn = fmin(mn, fabs(vals[nd->in[j]][i]));
                }
                if (n_comp++ == 0)
                    m_first = m;
                min_last = mn;
                m_in += m;
                e_in += terr[nd->in[j]];
                in_size = t->size;
            }
        }
        double L = 1, B = 0;
        switch (nd->op) {
        case NN_OP_GEMM:
        case NN_OP_MATMUL:
        case NN_OP_CONV:
            L = cmax * csz * fmax(1.0, fabs(nn_attr_float(nd, "alpha", 1.0)));
            B = cmax * fmax(1.0, fabs(nn_attr_float(nd, "beta", 1.0)));
            break;
        case NN_OP_ADD:
        case NN_OP_SUB: B = cmax; break;
        case NN_OP_MUL: L = csz > 0 ? cmax : 1; break;
        case NN_OP_DIV: L = cmin > 0 ? 1 / cmin : INFINITY; break;
        case NN_OP_BATCHNORM: {
            const nn_tensor *sc = &g->tensors[nd->in[1]], *b = &g->tensors[nd->in[2]];
            const nn_tensor *mu = &g->tensors[nd->in[3]], *var = &g->tensors[nd->in[4]];
            double eps = nn_attr_float(nd, "epsilon", (double)1e-5f), smax = 0, bmax = 0, mmax = 0;
            for (int64_t i = 0; i < sc->size; i++) {
                smax = fmax(smax, fabs(sc->data[i]) / sqrt(var->data[i] + eps));
                bmax = fmax(bmax, fabs(b->data[i]));
                mmax = fmax(mmax, fabs(mu->data[i]));
            }
            L = smax, B = bmax + smax * mmax;
            break;
        }
        case NN_OP_REDUCESUM: {
            int64_t out = g->tensors[nd->out[0]].size;
            L = out > 0 ? (double)in_size / (double)out : 1;
            break;
        }
        default: break; /* Relu, Neg, pools, means, shape ops: gain 1 */
        }
        double m_out = 0;
        if (nd->n_out > 0 && nd->out[0] >= 0 && vals[nd->out[0]])
            for (int64_t i = 0; i < g->tensors[nd->out[0]].size; i++)
                m_out = fmax(m_out, fabs(vals[nd->out[0]][i]));
        if (n_comp == 2 && nd->op == NN_OP_MUL) /* a·b: |a| e_b + |b| e_a */
            L = m_in;
        else if (n_comp == 2 && nd->op == NN_OP_DIV) /* a/b: e_a/|b| + |a| e_b/b² */
            L = min_last > 0 ? (1 + m_first / min_last) / min_last : INFINITY;
        else if (n_comp == 1 && nd->n_in >= 1 && op_is_smooth(nd->op))
            L = smooth_gain(nd, g, vals[nd->in[0]], g->tensors[nd->in[0]].size, e_in);
        double terms = csz + (double)in_size + 8;
        /* m_out: libm's own error (a few ulps of the result) */
        double local = 2 * terms * 0x1p-53 * (L * m_in + B + m_out);
        for (int j = 0; j < nd->n_out; j++)
            if (nd->out[j] >= 0)
                terr[nd->out[j]] = L * e_in + local;
    }
    double r = terr[g->output];
    free(terr);
    nn_values_free(g, vals);
    return isnan(r) ? INFINITY : r;
}

#define MAXOBJ 8

typedef struct ctx {
    const nn_graph *g;
    int64_t nx, ny;
    int m;                  /* objectives: ny identity rows then random rows */
    double *C;              /* m x ny */
    double lb[2][MAXOBJ + 64], ub[2][MAXOBJ + 64]; /* [IBP, CROWN] */
    double smin[MAXOBJ + 64], smax[MAXOBJ + 64];
    double *y, *yu, *yd;
    sg_stats *st;
    FILE *log;
    uint64_t seed;
    const char *desc;
    const double *lo, *hi;
    int logged;
} ctx;

static double objective(const ctx *c, int q, const double *y)
{
    double v = 0;
    for (int64_t j = 0; j < c->ny; j++)
        v += c->C[q * c->ny + j] * y[j];
    return v;
}

/* Check one sample x (y = f(x) already in c->y); returns < 0 on error. */
static int check_sample(ctx *c, const double *x, err *e)
{
    for (int64_t j = 0; j < c->ny; j++)
        if (!isfinite(c->y[j])) { /* evaluation overflowed: nothing to compare */
            c->st->nonfinite++;
            return 0;
        }
    c->st->samples++;
    int suspect = 0;
    for (int q = 0; q < c->m; q++) {
        double v = objective(c, q, c->y);
        if (v < c->smin[q])
            c->smin[q] = v;
        if (v > c->smax[q])
            c->smax[q] = v;
        for (int b = 0; b < 2; b++)
            if (!(v >= c->lb[b][q] && v <= c->ub[b][q]))
                suspect = 1;
    }
    if (!suspect)
        return 0;
    /* estimate the evaluation's rounding from the directed modes */
    int rc = eval_mode(c->g, FE_UPWARD, x, c->yu, e);
    if (rc == 0)
        rc = eval_mode(c->g, FE_DOWNWARD, x, c->yd, e);
    if (rc)
        return rc;
    double ebound = eval_error_bound(c->g, x);
    for (int q = 0; q < c->m; q++) {
        double v = objective(c, q, c->y), tol = 0, mag = 0;
        for (int64_t j = 0; j < c->ny; j++) {
            double a = fabs(c->C[q * c->ny + j]);
            double sp = 2 * fabs(c->yu[j] - c->yd[j]) + fabs(c->yu[j] - c->y[j]) +
                        fabs(c->yd[j] - c->y[j]);
            tol += a * fmax(sp, ebound);
            mag += a * fabs(c->y[j]);
        }
        if (q >= c->ny) /* the dot product with C rounds too */
            tol += 2.0 * (double)(c->ny + 2) * 0x1p-53 * mag;
        for (int b = 0; b < 2; b++) {
            double l = c->lb[b][q], u = c->ub[b][q];
            int nan = isnan(v) || isnan(l) || isnan(u);
            double out = nan ? INFINITY : (v < l ? l - v : (v > u ? v - u : 0));
            if (out <= 0)
                continue;
            if (out <= tol) {
                c->st->near_misses++;
                continue;
            }
            c->st->violations++;
            if (c->log && c->logged++ < 3) {
                fprintf(c->log,
                        "VIOLATION seed %llu [%s] %s objective %d: value %.17g outside [%.17g, "
                        "%.17g] by %.3g (eval spread tol %.3g)\n  net: %s\n  x:",
                        (unsigned long long)c->seed, b ? "CROWN" : "IBP",
                        q < c->ny ? "output" : "row", q, v, l, u, out, tol, c->desc);
                for (int64_t i = 0; i < c->nx && i < 16; i++)
                    fprintf(c->log, " %.17g", x[i]);
                fprintf(c->log, "\n  box:");
                for (int64_t i = 0; i < c->nx && i < 16; i++)
                    fprintf(c->log, " [%.17g, %.17g]", c->lo[i], c->hi[i]);
                fprintf(c->log, "\n");
            }
        }
    }
    return 0;
}

static int eval_check(ctx *c, const double *x, err *e)
{
    int rc = nn_eval(c->g, x, c->y, e);
    return rc ? rc : check_sample(c, x, e);
}
/* Lower bounds of the rows of C and -C by bnd_split_bound with optimised
 * tangent points (final pass, and intermediate bounds when interm > 0),
 * met into the CROWN bounds c->lb[1] / c->ub[1] that the samples check. */
static int meet_tau_bounds(bnd_net *net, ctx *c, int interm, err *e)
{
    int m = c->m;
    double *C2 = malloc(sizeof(double) * (size_t)(2 * m * c->ny + 2 * m));
    if (!C2)
        return ERR_NOMEM;
    double *lb = C2 + 2 * m * c->ny;
    for (int64_t t = 0; t < m * c->ny; t++)
        C2[t] = c->C[t], C2[m * c->ny + t] = -c->C[t];
    bnd_set_tau_interm(net, interm);
    int rc = bnd_split_bound(net, c->lo, c->hi, NULL, NULL, NULL, 0, C2, 2 * m, 5, lb, NULL, NULL,
                             NULL, NULL, NULL, e);
    bnd_set_tau_interm(net, 0);
    for (int q = 0; rc == 0 && q < m; q++) {
        c->lb[1][q] = fmax(c->lb[1][q], lb[q]);
        c->ub[1][q] = fmin(c->ub[1][q], -lb[m + q]);
    }
    free(C2);
    return rc < 0 ? rc : 0;
}

int sg_check_case(uint64_t seed, const sg_opts *o, int samples, sg_stats *st, FILE *log)
{
    rng r;
    rng_seed(&r, seed);
    err e = {0};
    char desc[512];
    nn_graph *g = NULL;
    int rc = sg_network(&r, o, &g, desc, sizeof desc, &e);
    if (rc) {
        if (log)
            fprintf(log, "GENERATOR seed %llu: %s\n", (unsigned long long)seed, e.msg);
        return rc;
    }
    bnd_net *net = NULL;
    rc = bnd_net_new(g, &net, &e);
    if (rc == ERR_UNSUP || rc == ERR_NOMEM) {
        st->unsupported++;
        if (log && rc == ERR_UNSUP)
            fprintf(log, "unsupported seed %llu: %s [%s]\n", (unsigned long long)seed, e.msg, desc);
        nn_graph_free(g);
        return 0;
    }
    if (rc) {
        if (log)
            fprintf(log, "LOWERING seed %llu: %s [%s]\n", (unsigned long long)seed, e.msg, desc);
        nn_graph_free(g);
        return rc;
    }
    ctx c = {0};
    c.g = g;
    c.nx = nn_input_size(g);
    c.ny = nn_output_size(g);
    c.st = st;
    c.log = log;
    c.seed = seed;
    c.desc = desc;
    int extra = c.ny > 1 ? 1 + urand(&r, 3) : 0;
    if (c.ny > 64)
        c.ny = 64; /* cannot happen with max_out <= 64 */
    c.m = (int)c.ny + extra;
    double *buf = calloc((size_t)(c.m * c.ny + 3 * c.ny + 4 * c.nx + 8), sizeof(double));
    if (!buf) {
        bnd_net_free(net);
        nn_graph_free(g);
        return ERR_NOMEM;
    }
    c.C = buf;
    c.y = c.C + c.m * c.ny;
    c.yu = c.y + c.ny;
    c.yd = c.yu + c.ny;
    double *lo = c.yd + c.ny, *hi = lo + c.nx, *x = hi + c.nx, *x2 = x + c.nx;
    c.lo = lo, c.hi = hi;
    for (int64_t j = 0; j < c.ny; j++)
        c.C[j * c.ny + j] = 1;
    for (int q = (int)c.ny; q < c.m; q++)
        for (int64_t j = 0; j < c.ny; j++)
            c.C[q * c.ny + j] = urand(&r, 2) ? rng_normal(&r) : 0;
    if (urand(&r, 4) == 0) /* exercise the IBP fallback for wide layers */
        bnd_set_crown_max_rows(net, urand(&r, 4));
    int box = urand(&r, SG_BOX_COUNT);
    sg_box(&r, box, c.nx, lo, hi);
    for (int b = 0; b < 2 && !rc; b++)
        rc = bnd_compute(net, b ? BND_CROWN : BND_IBP, lo, hi, c.C, c.m, c.lb[b], c.ub[b], &e);
    if (!rc && urand(&r, 2)) /* alpha-CROWN of smooth nets: met into CROWN's, then sampled */
        rc = meet_tau_bounds(net, &c, urand(&r, 2) ? 5 : 0, &e);
    if (rc) {
        if (log)
            fprintf(log, "BOUND ERROR seed %llu: %s [%s]\n", (unsigned long long)seed, e.msg, desc);
        goto done;
    }
    st->cases++;
    for (int q = 0; q < c.m; q++) {
        c.smin[q] = INFINITY, c.smax[q] = -INFINITY;
        /* CROWN vs IBP */
        double w = c.ub[0][q] - c.lb[0][q];
        double slack = 1e-9 * (fabs(c.lb[0][q]) + fabs(c.ub[0][q])) + 1e-300;
        double ex = fmax(c.lb[0][q] - c.lb[1][q], c.ub[1][q] - c.ub[0][q]);
        if (ex > 0) {
            if (ex > slack && ex > 1e-9 * w) {
                st->crown_looser++;
                double rel = w > 0 ? ex / w : INFINITY;
                if (rel > st->crown_looser_max) {
                    st->crown_looser_max = rel;
                    st->crown_looser_seed = seed;
                }
            } else {
                st->crown_looser_tiny++;
            }
        }
    }
    /* corners */
    int corner_all = c.nx <= 10;
    int64_t n_corner = corner_all ? ((int64_t)1 << c.nx) : 64;
    if (n_corner > samples / 4 + 2)
        n_corner = samples / 4 + 2;
    int used = 0;
    for (int64_t k = 0; k < n_corner && !rc; k++, used++) {
        for (int64_t i = 0; i < c.nx; i++) {
            int bit = corner_all ? (int)((k >> i) & 1) : urand(&r, 2);
            x[i] = bit ? hi[i] : lo[i];
        }
        rc = eval_check(&c, x, &e);
    }
    /* greedy corner descent for a few objectives, both directions */
    int budget = samples / 4;
    for (int q = 0; q < c.m && budget > c.nx && !rc; q++) {
        for (int dir = -1; dir <= 1 && budget > c.nx && !rc; dir += 2) {
            for (int64_t i = 0; i < c.nx; i++)
                x[i] = urand(&r, 2) ? hi[i] : lo[i];
            rc = eval_check(&c, x, &e);
            double best = dir * objective(&c, q, c.y);
            budget--, used++;
            for (int sweep = 0; sweep < 2 && !rc; sweep++)
                for (int64_t i = 0; i < c.nx && budget > 0 && !rc; i++) {
                    memcpy(x2, x, (size_t)c.nx * sizeof(double));
                    x2[i] = x[i] == lo[i] ? hi[i] : lo[i];
                    rc = eval_check(&c, x2, &e);
                    budget--, used++;
                    double v = dir * objective(&c, q, c.y);
                    if (v > best) {
                        best = v;
                        memcpy(x, x2, (size_t)c.nx * sizeof(double));
                    }
                }
        }
    }
    /* uniform (dyadic boxes: points on a 1/64 grid, so every value is exact) */
    for (; used < samples && !rc; used++) {
        for (int64_t i = 0; i < c.nx; i++) {
            double t = box == SG_BOX_DYADIC ? (double)urand(&r, 65) / 64 : rng_uniform(&r);
            x[i] = lo[i] + t * (hi[i] - lo[i]);
            if (x[i] > hi[i])
                x[i] = hi[i];
        }
        rc = eval_check(&c, x, &e);
    }
    if (rc && log)
        fprintf(log, "EVAL ERROR seed %llu: %s [%s]\n", (unsigned long long)seed, e.msg, desc);
    for (int64_t q = 0; q < c.ny && !rc; q++) {
        double hull = c.smax[q] - c.smin[q], w = c.ub[1][q] - c.lb[1][q];
        if (hull > 0 && w > 0 && isfinite(w)) {
            st->gap_sum += log10(w / hull);
            st->gap_n++;
        }
    }
done:
    free(buf);
    bnd_net_free(net);
    nn_graph_free(g);
    return rc;
}

int sg_check_bab(uint64_t seed, int samples, sg_stats *st, FILE *log)
{
    rng r;
    rng_seed(&r, seed);
    err e = {0};
    char desc[512];
    sg_opts o = {.max_ops = 4, .max_elems = 12, .max_in = 3, .max_out = 3, .numerics = -1};
    if (urand(&r, 2))
        o.numerics = urand(&r, 2) ? SG_NUM_NORMAL : SG_NUM_DYADIC;
    nn_graph *g = NULL;
    int rc = sg_network(&r, &o, &g, desc, sizeof desc, &e);
    if (rc)
        return rc;
    int64_t nx = nn_input_size(g), ny = nn_output_size(g);
    double lo[8], hi[8], ylo[8], yhi[8], x[8], y[8], yu[8], yd[8];
    sg_box(&r, urand(&r, 2) ? SG_BOX_NARROW : SG_BOX_WIDE, nx, lo, hi);
    bnd_net *net = NULL;
    rc = bnd_net_new(g, &net, &e);
    if (rc == 0)
        rc = bnd_compute(net, BND_CROWN, lo, hi, NULL, 0, ylo, yhi, &e);
    bnd_net_free(net);
    if (rc) {
        st->unsupported++;
        nn_graph_free(g);
        return 0;
    }
    spec_property *p = NULL;
    rc = sg_spec(&r, nx, ny, lo, hi, ylo, yhi, &p, &e);
    if (rc) {
        if (log)
            fprintf(log, "SPEC seed %llu: %s\n", (unsigned long long)seed, e.msg);
        nn_graph_free(g);
        return rc;
    }
    bab_opts bo;
    bab_opts_default(&bo);
    bo.timeout = 2;
    bo.seed = seed;
    /* every strategy: automatic (input splits, or star.c on ReLU chains),
     * input splits, ReLU splits (BaBSR or FSB), bounds only, and star.c
     * (which refuses the graphs that are not ReLU chains) */
    static const int strategies[] = {BAB_STRATEGY_AUTO, BAB_STRATEGY_INPUT, BAB_STRATEGY_RELU,
                                     BAB_STRATEGY_RELU, BAB_STRATEGY_NONE, BAB_STRATEGY_STAR};
    int si = urand(&r, 6);
    bo.strategy = strategies[si];
    bo.branching = si == 3 ? 2 : 0;
    bab_result res = {0};
    rc = bab_verify(g, p, &bo, &res, &e);
    if (rc == ERR_UNSUP && bo.strategy == BAB_STRATEGY_STAR) {
        st->unsupported++;
        rc = 0;
        goto done;
    }
    if (rc) {
        if (log)
            fprintf(log, "BAB ERROR seed %llu: %s [%s]\n", (unsigned long long)seed, e.msg, desc);
        goto done;
    }
    st->bab_cases++;
    if (res.answer == BAB_SAT) {
        st->bab_sat++;
        int ok = res.x && res.region >= 0 && res.region < p->n_regions;
        for (int64_t i = 0; ok && i < nx; i++)
            ok = res.x[i] >= lo[i] && res.x[i] <= hi[i];
        if (ok)
            ok = nn_eval(g, res.x, y, &e) == 0 && spec_region_violated(p, res.region, res.x, y, 0);
        if (!ok) {
            st->bab_wrong++;
            if (log)
                fprintf(log, "BAB WRONG seed %llu: sat with an invalid counterexample [%s]\n",
                        (unsigned long long)seed, desc);
        }
    } else if (res.answer == BAB_UNSAT) {
        st->bab_unsat++;
        /* dense sampling: a grid (corners included) then uniform points */
        int per = nx == 1 ? 2001 : (nx == 2 ? 45 : 13);
        int64_t grid = 1;
        for (int64_t i = 0; i < nx; i++)
            grid *= per;
        for (int64_t s = 0; s < grid + samples; s++) {
            int64_t k = s;
            for (int64_t i = 0; i < nx; i++) {
                double t = s < grid ? (double)(k % per) / (per - 1) : rng_uniform(&r);
                k /= per;
                x[i] = lo[i] + t * (hi[i] - lo[i]);
                if (x[i] > hi[i])
                    x[i] = hi[i];
            }
            if (nn_eval(g, x, y, &e))
                break;
            st->samples++;
            int reg = -1;
            for (int q = 0; q < p->n_regions && reg < 0; q++)
                if (spec_region_violated(p, q, x, y, 0))
                    reg = q;
            if (reg < 0)
                continue;
            /* violated in round-to-nearest: also in both directed modes? */
            if (eval_mode(g, FE_UPWARD, x, yu, &e) || eval_mode(g, FE_DOWNWARD, x, yd, &e))
                break;
            if (!spec_region_violated(p, reg, x, yu, 0) || !spec_region_violated(p, reg, x, yd, 0)) {
                st->near_misses++;
                if (log && getenv("STRESS_LOG_NEAR")) /* which cases, when there are many */
                    fprintf(log, "BAB NEAR seed %llu (strategy %d): unsat, f(x) on the threshold within rounding [%s]\n",
                            (unsigned long long)seed, bo.strategy, desc);
                continue;
            }
            st->bab_wrong++;
            if (log) {
                fprintf(log, "BAB WRONG seed %llu: unsat but f(x) violates the property [%s]\n  x:",
                        (unsigned long long)seed, desc);
                for (int64_t i = 0; i < nx; i++)
                    fprintf(log, " %.17g", x[i]);
                fprintf(log, "\n");
            }
            break;
        }
    } else {
        st->bab_unknown++;
    }
done:
    bab_result_free(&res);
    spec_free(p);
    nn_graph_free(g);
    return rc;
}

/* ---------------- exact fixed-point check ---------------- */

typedef __int128 i128;

/* 1 if the double v <= the rational y / 2^scale (y exact), comparing exactly:
 * ldexp is exact here (no overflow, and an integral or small value). */
static int dbl_le_fixed(double v, i128 y, int scale)
{
    if (isnan(v))
        return 0;
    if (v == -INFINITY)
        return 1;
    if (v == INFINITY)
        return 0;
    double L = ceil(ldexp(v, scale)); /* v <= y/2^s  <=>  ceil(v 2^s) <= y */
    if (fabs(L) >= 0x1p120)
        return L < 0;
    return (i128)L <= y;
}

static int dbl_ge_fixed(double v, i128 y, int scale)
{
    return dbl_le_fixed(-v, -y, scale);
}

static int64_t rand_bits(rng *r, int bits)
{
    int64_t m = (int64_t)(rng_next(r) >> (64 - bits));
    return urand(r, 2) ? m : -m;
}

#define EX_K 4
#define EX_H 6
#define EX_O 3

int sg_check_exact(uint64_t seed, sg_stats *st, FILE *log)
{
    rng r;
    rng_seed(&r, seed);
    err e = {0};
    int K = 1 + urand(&r, EX_K), H = 1 + urand(&r, EX_H), O = 1 + urand(&r, EX_O);
    int cancel = urand(&r, 2);
    /* fixed point: x = n 2^-30, W1 = m 2^-30, b1 = c 2^-40 (scale of h: 2^60),
     * W2 = m 2^-30, b2 = c 2^-60 (scale of y: 2^90) */
    int64_t m1[EX_H][EX_K], c1[EX_H], m2[EX_O][EX_H], c2[EX_O];
    for (int i = 0; i < H; i++) {
        for (int j = 0; j < K; j++)
            m1[i][j] = rand_bits(&r, 30);
        c1[i] = rand_bits(&r, urand(&r, 2) ? 50 : 20);
        if (cancel && i % 2 == 1) { /* row i = -(row i-1) + a few units */
            for (int j = 0; j < K; j++)
                m1[i][j] = -m1[i - 1][j] + (urand(&r, 3) - 1);
            c1[i] = -c1[i - 1] + (urand(&r, 3) - 1);
        }
    }
    for (int o = 0; o < O; o++) {
        for (int i = 0; i < H; i++)
            m2[o][i] = rand_bits(&r, 30);
        if (cancel)
            for (int i = 1; i < H; i += 2)
                m2[o][i] = m2[o][i - 1];
        c2[o] = rand_bits(&r, urand(&r, 2) ? 50 : 20);
    }
    double W1[EX_H * EX_K], B1[EX_H], W2[EX_O * EX_H], B2[EX_O];
    for (int i = 0; i < H; i++) {
        for (int j = 0; j < K; j++)
            W1[i * K + j] = ldexp((double)m1[i][j], -30);
        B1[i] = ldexp((double)c1[i], -40);
    }
    for (int o = 0; o < O; o++) {
        for (int i = 0; i < H; i++)
            W2[o * H + i] = ldexp((double)m2[o][i], -30);
        B2[o] = ldexp((double)c2[o], -60);
    }
    nn_graph *g = nn_graph_new("exact.onnx");
    if (!g)
        return ERR_NOMEM;
    g->opset = 13;
    int64_t xd[2] = {1, K}, w1d[2] = {H, K}, w2d[2] = {O, H}, hd = H, od = O;
    int x = nn_graph_tensor(g, "x", &e), w1 = nn_graph_tensor(g, "W1", &e);
    int b1 = nn_graph_tensor(g, "b1", &e), h = nn_graph_tensor(g, "h", &e);
    int hr = nn_graph_tensor(g, "hr", &e), w2 = nn_graph_tensor(g, "W2", &e);
    int b2 = nn_graph_tensor(g, "b2", &e), y = nn_graph_tensor(g, "y", &e);
    int rc = (x < 0 || w1 < 0 || b1 < 0 || h < 0 || hr < 0 || w2 < 0 || b2 < 0 || y < 0);
    rc = rc || nn_tensor_set_shape(g, x, 2, xd, &e) || nn_graph_add_input(g, x, &e);
    rc = rc || nn_tensor_set_shape(g, w1, 2, w1d, &e) ||
         nn_tensor_set_float(g, w1, W1, (int64_t)H * K, &e);
    rc = rc || nn_tensor_set_shape(g, b1, 1, &hd, &e) || nn_tensor_set_float(g, b1, B1, H, &e);
    rc = rc || nn_tensor_set_shape(g, w2, 2, w2d, &e) ||
         nn_tensor_set_float(g, w2, W2, (int64_t)O * H, &e);
    rc = rc || nn_tensor_set_shape(g, b2, 1, &od, &e) || nn_tensor_set_float(g, b2, B2, O, &e);
    int k1 = rc ? -1 : nn_graph_add_node(g, "Gemm", "l1", 3, (int[]){x, w1, b1}, 1, &h, &e);
    rc = rc || k1 < 0 || nn_node_attr_int(g, k1, "transB", 1, &e);
    rc = rc || nn_graph_add_node(g, "Relu", "r", 1, &h, 1, &hr, &e) < 0;
    int k2 = rc ? -1 : nn_graph_add_node(g, "Gemm", "l2", 3, (int[]){hr, w2, b2}, 1, &y, &e);
    rc = rc || k2 < 0 || nn_node_attr_int(g, k2, "transB", 1, &e);
    rc = rc || nn_graph_add_output(g, y, &e) || nn_graph_finalize(g, &e);
    bnd_net *net = NULL;
    rc = rc || bnd_net_new(g, &net, &e);
    if (rc) {
        if (log)
            fprintf(log, "EXACT SETUP seed %llu: %s\n", (unsigned long long)seed, e.msg);
        bnd_net_free(net);
        nn_graph_free(g);
        return rc ? ERR_ARG : 0;
    }
    /* box: a point, or n..n+d (30-bit fixed point) per input */
    int64_t n_lo[EX_K], n_hi[EX_K];
    int point = urand(&r, 3) != 0;
    double lo[EX_K], hi[EX_K];
    for (int j = 0; j < K; j++) {
        n_lo[j] = rand_bits(&r, 30);
        n_hi[j] = n_lo[j] + (point ? 0 : (int64_t)urand(&r, 1 << urand(&r, 20)));
        lo[j] = ldexp((double)n_lo[j], -30);
        hi[j] = ldexp((double)n_hi[j], -30);
    }
    double lb[2][EX_O], ub[2][EX_O];
    for (int b = 0; b < 2 && !rc; b++)
        rc = bnd_compute(net, b ? BND_CROWN : BND_IBP, lo, hi, NULL, 0, lb[b], ub[b], &e);
    if (rc) {
        if (log)
            fprintf(log, "EXACT BOUND seed %llu: %s\n", (unsigned long long)seed, e.msg);
        bnd_net_free(net);
        nn_graph_free(g);
        return rc;
    }
    st->exact_cases++;
    if (point && getenv("SG_EXACT_SELFTEST")) { /* bounds = nn_eval: must be caught */
        double yv[EX_O];
        if (nn_eval(g, lo, yv, &e) == 0)
            for (int o = 0; o < O; o++)
                lb[0][o] = ub[0][o] = lb[1][o] = ub[1][o] = yv[o];
    }
    int n_pts = point ? 1 : (1 << K) + 32, logged = 0;
    for (int s = 0; s < n_pts; s++) {
        int64_t n[EX_K];
        for (int j = 0; j < K; j++) {
            if (s < (1 << K))
                n[j] = (s >> j) & 1 ? n_hi[j] : n_lo[j];
            else
                n[j] = n_lo[j] + (int64_t)(rng_next(&r) % (uint64_t)(n_hi[j] - n_lo[j] + 1));
        }
        i128 hv[EX_H];
        for (int i = 0; i < H; i++) {
            i128 a = (i128)c1[i] * ((i128)1 << 20); /* c 2^-40 = (c 2^20) 2^-60 */
            for (int j = 0; j < K; j++)
                a += (i128)m1[i][j] * n[j];
            hv[i] = a > 0 ? a : 0;
        }
        st->exact_points++;
        for (int o = 0; o < O; o++) {
            i128 a = (i128)c2[o] * ((i128)1 << 30); /* c 2^-60 = (c 2^30) 2^-90 */
            for (int i = 0; i < H; i++)
                a += (i128)m2[o][i] * hv[i];
            for (int b = 0; b < 2; b++) {
                if (dbl_le_fixed(lb[b][o], a, 90) && dbl_ge_fixed(ub[b][o], a, 90))
                    continue;
                st->violations++;
                if (log && logged++ < 3)
                    fprintf(log,
                            "VIOLATION (exact) seed %llu [%s] output %d: exact f(x) ~ %.17g "
                            "outside [%.17g, %.17g] (K %d H %d O %d, %s box, cancel %d)\n",
                            (unsigned long long)seed, b ? "CROWN" : "IBP", o,
                            ldexp((double)a, -90), lb[b][o], ub[b][o], K, H, O,
                            point ? "point" : "small", cancel);
            }
        }
    }
    bnd_net_free(net);
    nn_graph_free(g);
    return 0;
}
