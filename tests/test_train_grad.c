/* test_train_grad.c: every trainer kernel's backward (plain and interval pass)
 * against central finite differences, in double precision on random shapes;
 * and the float network pass (all layers wired together, losses, regulariser)
 * against finite differences of its own loss. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../train/trn.h"

static rng R;

static void fill(double *v, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (2 * rng_uniform(&R) - 1) * scale;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

typedef double (*objective)(void *ctx);

/* Compare analytic gradient g of f w.r.t. the n values at p with central differences. */
static void check_grad(const char *what, double *p, const double *g, size_t n, objective f,
                       void *ctx)
{
    const double h = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double o = p[i];
        p[i] = o + h;
        double a = f(ctx);
        p[i] = o - h;
        double b = f(ctx);
        p[i] = o;
        double num = (a - b) / (2 * h);
        double tol = 1e-6 * fmax(1.0, fmax(fabs(num), fabs(g[i])));
        cr_assert(fabs(num - g[i]) <= tol, "%s[%zu]: analytic %.10g, numeric %.10g", what, i, g[i],
                  num);
    }
}

/* ---- convolution ---- */
typedef struct {
    trn_conv_shape sh;
    int N;
    double *W, *b, *x, *m, *r, *Gy, *Gm, *Gr, *col, *y;
} conv_case;

static double conv_obj(void *p)
{
    conv_case *c = p;
    size_t ny = (size_t)c->N * c->sh.cout * c->sh.ho * c->sh.wo, nw = (size_t)c->sh.cout * c->sh.cin * c->sh.k * c->sh.k;
    double *aw = malloc(nw * sizeof *aw), f = 0;
    for (size_t i = 0; i < nw; i++)
        aw[i] = fabs(c->W[i]);
    trn_conv_fwd_d(&c->sh, c->W, c->b, c->x, c->y, 0, c->N, c->col);
    f += dot(c->y, c->Gy, ny);
    trn_conv_fwd_d(&c->sh, c->W, c->b, c->m, c->y, 0, c->N, c->col);
    f += dot(c->y, c->Gm, ny);
    trn_conv_fwd_d(&c->sh, aw, NULL, c->r, c->y, 0, c->N, c->col);
    f += dot(c->y, c->Gr, ny);
    free(aw);
    return f;
}

static void conv_check(int cin, int h, int w, int cout, int k, int s, int p, int N)
{
    conv_case c = {.sh = {cin, h, w, cout, k, s, p, (h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1},
                   .N = N};
    size_t nx = (size_t)N * cin * h * w, nw = (size_t)cout * cin * k * k,
           ny = (size_t)N * cout * c.sh.ho * c.sh.wo;
    c.W = malloc(nw * 8), c.b = malloc(cout * 8), c.x = malloc(nx * 8), c.m = malloc(nx * 8),
    c.r = malloc(nx * 8), c.Gy = malloc(ny * 8), c.Gm = malloc(ny * 8), c.Gr = malloc(ny * 8);
    c.col = malloc(trn_conv_scratch(&c.sh) * 8);
    c.y = malloc(ny * 8);
    fill(c.W, nw, 1), fill(c.b, cout, 1), fill(c.x, nx, 1), fill(c.m, nx, 1), fill(c.r, nx, 0.5);
    for (size_t i = 0; i < nx; i++)
        c.r[i] = fabs(c.r[i]);
    fill(c.Gy, ny, 1), fill(c.Gm, ny, 1), fill(c.Gr, ny, 1);
    double *dW = calloc(nw, 8), *dA = calloc(nw, 8), *db = calloc(cout, 8), *dx = malloc(nx * 8),
           *dm = malloc(nx * 8), *dr = malloc(nx * 8);
    trn_conv_bwd_d(&c.sh, c.W, c.x, c.Gy, dW, db, dx, 0, N, c.col);
    trn_conv_bwd_d(&c.sh, c.W, c.m, c.Gm, dW, db, dm, 0, N, c.col);
    double *aw = malloc(nw * 8);
    for (size_t i = 0; i < nw; i++)
        aw[i] = fabs(c.W[i]);
    trn_conv_bwd_d(&c.sh, aw, c.r, c.Gr, dA, NULL, dr, 0, N, c.col);
    for (size_t i = 0; i < nw; i++)
        dW[i] += c.W[i] >= 0 ? dA[i] : -dA[i];
    check_grad("conv dx", c.x, dx, nx, conv_obj, &c);
    check_grad("conv dm", c.m, dm, nx, conv_obj, &c);
    check_grad("conv dr", c.r, dr, nx, conv_obj, &c);
    check_grad("conv dW", c.W, dW, nw, conv_obj, &c);
    check_grad("conv db", c.b, db, cout, conv_obj, &c);
    free(aw), free(dW), free(dA), free(db), free(dx), free(dm), free(dr);
    free(c.W), free(c.b), free(c.x), free(c.m), free(c.r), free(c.Gy), free(c.Gm), free(c.Gr),
        free(c.col), free(c.y);
}

Test(train_grad, conv_plain_and_interval_match_finite_differences)
{
    for (int path = 0; path < 2; path++) { /* im2col, then tap gemms (any stride) */
    trn_conv_force_d = path;
    rng_seed(&R, 1);
    conv_check(2, 5, 6, 3, 3, 1, 1, 2);
    conv_check(3, 7, 5, 2, 3, 2, 1, 2);
    conv_check(1, 6, 6, 2, 4, 2, 0, 3);
    conv_check(2, 5, 4, 3, 3, 1, 1, 11); /* more images than one chunk */
    conv_check(2, 6, 5, 2, 4, 1, 2, 3);
    for (int t = 0; t < 3; t++) {
        int k = 1 + (int)(rng_uniform(&R) * 3), s = 1 + (int)(rng_uniform(&R) * 2),
            p = (int)(rng_uniform(&R) * 2);
        conv_check(1 + (int)(rng_uniform(&R) * 3), k + 2 + (int)(rng_uniform(&R) * 4),
                   k + 2 + (int)(rng_uniform(&R) * 4), 1 + (int)(rng_uniform(&R) * 3), k, s, p, 2);
    }
    conv_check(2, 7, 8, 2, 3, 3, 1, 9); /* stride 3, uneven phases, more than a chunk */
    conv_check(2, 9, 6, 3, 2, 2, 0, 2);
    }
    trn_conv_force_d = -1;
}

/* The float kernels take the same paths; they agree with the double ones. */
Test(train_grad, conv_float_paths_agree)
{
    trn_conv_shape shapes[3] = {{3, 9, 9, 4, 3, 1, 1, 9, 9}, {4, 12, 10, 5, 3, 2, 1, 6, 5},
                                {2, 11, 11, 3, 4, 3, 2, 4, 4}};
    for (int k = 0; k < 3; k++) {
        trn_conv_shape *sh = &shapes[k];
        int N = 10;
        size_t nx = (size_t)N * sh->cin * sh->h * sh->w, ny = (size_t)N * sh->cout * sh->ho * sh->wo,
               nw = (size_t)sh->cout * sh->cin * sh->k * sh->k;
        float *x = malloc(nx * 4), *W = malloc(nw * 4), *b = malloc(sh->cout * 4), *y[2], *dx[2],
              *dW[2], *db[2], *sc = malloc(trn_conv_scratch(sh) * 4);
        for (size_t i = 0; i < nx; i++)
            x[i] = (float)(2 * rng_uniform(&R) - 1);
        for (size_t i = 0; i < nw; i++)
            W[i] = (float)(2 * rng_uniform(&R) - 1);
        for (int i = 0; i < sh->cout; i++)
            b[i] = (float)rng_uniform(&R);
        for (int path = 0; path < 2; path++) {
            trn_conv_force_f = path;
            y[path] = malloc(ny * 4), dx[path] = malloc(nx * 4), dW[path] = calloc(nw, 4),
            db[path] = calloc(sh->cout, 4);
            trn_conv_fwd_f(sh, W, b, x, y[path], 0, N, sc);
            trn_conv_bwd_f(sh, W, x, y[path], dW[path], db[path], dx[path], 0, N, sc);
        }
        trn_conv_force_f = -1;
        for (size_t i = 0; i < ny; i++)
            cr_assert(fabsf(y[0][i] - y[1][i]) < 1e-4f * (1 + fabsf(y[0][i])));
        for (size_t i = 0; i < nx; i++)
            cr_assert(fabsf(dx[0][i] - dx[1][i]) < 1e-3f * (1 + fabsf(dx[0][i])));
        for (size_t i = 0; i < nw; i++)
            cr_assert(fabsf(dW[0][i] - dW[1][i]) < 1e-3f * (1 + fabsf(dW[0][i])));
        for (int path = 0; path < 2; path++)
            free(y[path]), free(dx[path]), free(dW[path]), free(db[path]);
        free(x), free(W), free(b), free(sc);
    }
}

/* ---- linear ---- */
typedef struct {
    int N, in, out;
    double *W, *b, *x, *m, *r, *Gy, *Gm, *Gr, *y;
} lin_case;

static double lin_obj(void *p)
{
    lin_case *c = p;
    size_t ny = (size_t)c->N * c->out, nw = (size_t)c->in * c->out;
    double *aw = malloc(nw * 8), f = 0;
    for (size_t i = 0; i < nw; i++)
        aw[i] = fabs(c->W[i]);
    trn_lin_fwd_d(c->W, c->b, c->x, c->y, c->N, c->in, c->out);
    f += dot(c->y, c->Gy, ny);
    trn_lin_fwd_d(c->W, c->b, c->m, c->y, c->N, c->in, c->out);
    f += dot(c->y, c->Gm, ny);
    trn_lin_fwd_d(aw, NULL, c->r, c->y, c->N, c->in, c->out);
    f += dot(c->y, c->Gr, ny);
    free(aw);
    return f;
}

Test(train_grad, linear_plain_and_interval_match_finite_differences)
{
    rng_seed(&R, 2);
    for (int t = 0; t < 3; t++) {
        lin_case c = {.N = 1 + t * 2, .in = 3 + t * 4, .out = 2 + t * 3};
        size_t nx = (size_t)c.N * c.in, nw = (size_t)c.in * c.out, ny = (size_t)c.N * c.out;
        c.W = malloc(nw * 8), c.b = malloc(c.out * 8), c.x = malloc(nx * 8), c.m = malloc(nx * 8),
        c.r = malloc(nx * 8), c.Gy = malloc(ny * 8), c.Gm = malloc(ny * 8), c.Gr = malloc(ny * 8),
        c.y = malloc(ny * 8);
        fill(c.W, nw, 1), fill(c.b, c.out, 1), fill(c.x, nx, 1), fill(c.m, nx, 1),
            fill(c.r, nx, 1), fill(c.Gy, ny, 1), fill(c.Gm, ny, 1), fill(c.Gr, ny, 1);
        for (size_t i = 0; i < nx; i++)
            c.r[i] = fabs(c.r[i]);
        double *dW = calloc(nw, 8), *dA = calloc(nw, 8), *db = calloc(c.out, 8),
               *dx = malloc(nx * 8), *dm = malloc(nx * 8), *dr = malloc(nx * 8), *aw = malloc(nw * 8);
        for (size_t i = 0; i < nw; i++)
            aw[i] = fabs(c.W[i]);
        trn_lin_bwd_d(c.W, c.x, c.Gy, dW, db, dx, c.N, c.in, c.out);
        trn_lin_bwd_d(c.W, c.m, c.Gm, dW, db, dm, c.N, c.in, c.out);
        trn_lin_bwd_d(aw, c.r, c.Gr, dA, NULL, dr, c.N, c.in, c.out);
        for (size_t i = 0; i < nw; i++)
            dW[i] += c.W[i] >= 0 ? dA[i] : -dA[i];
        check_grad("linear dx", c.x, dx, nx, lin_obj, &c);
        check_grad("linear dm", c.m, dm, nx, lin_obj, &c);
        check_grad("linear dr", c.r, dr, nx, lin_obj, &c);
        check_grad("linear dW", c.W, dW, nw, lin_obj, &c);
        check_grad("linear db", c.b, db, c.out, lin_obj, &c);
        free(aw), free(dW), free(dA), free(db), free(dx), free(dm), free(dr);
        free(c.W), free(c.b), free(c.x), free(c.m), free(c.r), free(c.Gy), free(c.Gm), free(c.Gr),
            free(c.y);
    }
}

/* ---- batch norm (training mode: the clean batch's statistics for all streams) ---- */
typedef struct {
    int N, C, HW;
    double *g, *be, *x, *m, *r, *Gy, *Gm, *Gr, *y;
} bn_case;

static double bn_obj(void *p)
{
    bn_case *c = p;
    double mean[8], var[8], sc[8], sh[8], asc[8];
    size_t n = (size_t)c->N * c->C * c->HW;
    trn_bn_stats_d(c->x, c->N, c->C, c->HW, mean, var);
    for (int k = 0; k < c->C; k++) {
        sc[k] = c->g[k] / sqrt(var[k] + TRN_BN_EPS);
        sh[k] = c->be[k] - mean[k] * sc[k];
        asc[k] = fabs(sc[k]);
    }
    double f = 0;
    trn_bn_affine_d(c->x, c->y, c->C, c->HW, sc, sh, 0, c->N);
    f += dot(c->y, c->Gy, n);
    trn_bn_affine_d(c->m, c->y, c->C, c->HW, sc, sh, 0, c->N);
    f += dot(c->y, c->Gm, n);
    trn_bn_affine_d(c->r, c->y, c->C, c->HW, asc, NULL, 0, c->N);
    f += dot(c->y, c->Gr, n);
    return f;
}

Test(train_grad, batchnorm_train_mode_matches_finite_differences)
{
    rng_seed(&R, 3);
    int shapes[3][3] = {{3, 2, 4}, {5, 3, 1}, {2, 4, 6}};
    for (int t = 0; t < 3; t++) {
        bn_case c = {.N = shapes[t][0], .C = shapes[t][1], .HW = shapes[t][2]};
        size_t n = (size_t)c.N * c.C * c.HW;
        c.g = malloc(c.C * 8), c.be = malloc(c.C * 8), c.x = malloc(n * 8), c.m = malloc(n * 8),
        c.r = malloc(n * 8), c.Gy = malloc(n * 8), c.Gm = malloc(n * 8), c.Gr = malloc(n * 8),
        c.y = malloc(n * 8);
        fill(c.g, c.C, 2), fill(c.be, c.C, 1), fill(c.x, n, 2), fill(c.m, n, 2), fill(c.r, n, 1),
            fill(c.Gy, n, 1), fill(c.Gm, n, 1), fill(c.Gr, n, 1);
        for (size_t i = 0; i < n; i++)
            c.r[i] = fabs(c.r[i]);
        double mean[8], var[8], sums[40] = {0}, coef[32];
        double *dg = calloc(c.C, 8), *db = calloc(c.C, 8), *dx = malloc(n * 8),
               *dm = malloc(n * 8), *dr = malloc(n * 8);
        trn_bn_stats_d(c.x, c.N, c.C, c.HW, mean, var);
        trn_bn_bwd_sums_d(c.x, c.Gy, c.m, c.Gm, c.r, c.Gr, c.C, c.HW, mean, sums, 0, c.N);
        trn_bn_bwd_coef_d(sums, c.g, mean, var, TRN_BN_EPS, c.C, (double)c.N * c.HW, dg, db, coef);
        trn_bn_bwd_apply_d(c.x, c.Gy, c.Gm, c.Gr, dx, dm, dr, c.C, c.HW, mean, coef, 0, c.N);
        check_grad("bn dx", c.x, dx, n, bn_obj, &c);
        check_grad("bn dm", c.m, dm, n, bn_obj, &c);
        check_grad("bn dr", c.r, dr, n, bn_obj, &c);
        check_grad("bn dgamma", c.g, dg, c.C, bn_obj, &c);
        check_grad("bn dbeta", c.be, db, c.C, bn_obj, &c);
        free(dg), free(db), free(dx), free(dm), free(dr);
        free(c.g), free(c.be), free(c.x), free(c.m), free(c.r), free(c.Gy), free(c.Gm), free(c.Gr),
            free(c.y);
    }
}

/* ---- ReLU ---- */
typedef struct {
    size_t n;
    double *x, *m, *r, *Gy, *Gm, *Gr, *y, *y2;
} relu_case;

static double relu_obj(void *p)
{
    relu_case *c = p;
    trn_relu_fwd_d(c->x, c->y, 0, c->n);
    double f = dot(c->y, c->Gy, c->n);
    trn_relu_ibp_fwd_d(c->m, c->r, c->y, c->y2, 0, c->n);
    return f + dot(c->y, c->Gm, c->n) + dot(c->y2, c->Gr, c->n);
}

Test(train_grad, relu_plain_and_interval_match_finite_differences)
{
    rng_seed(&R, 4);
    relu_case c = {.n = 40};
    double *b[8];
    for (int i = 0; i < 8; i++)
        b[i] = malloc(c.n * 8);
    c.x = b[0], c.m = b[1], c.r = b[2], c.Gy = b[3], c.Gm = b[4], c.Gr = b[5], c.y = b[6], c.y2 = b[7];
    fill(c.x, c.n, 1), fill(c.m, c.n, 1), fill(c.r, c.n, 1), fill(c.Gy, c.n, 1), fill(c.Gm, c.n, 1),
        fill(c.Gr, c.n, 1);
    for (size_t i = 0; i < c.n; i++) { /* keep away from the kinks */
        c.r[i] = 0.05 + fabs(c.r[i]);
        if (fabs(c.x[i]) < 0.01)
            c.x[i] = 0.5;
        if (fabs(c.m[i] - c.r[i]) < 0.01 || fabs(c.m[i] + c.r[i]) < 0.01)
            c.m[i] += 0.1;
    }
    double *dx = malloc(c.n * 8), *dm = malloc(c.n * 8), *dr = malloc(c.n * 8);
    trn_relu_bwd_d(c.x, c.Gy, dx, 0, c.n);
    trn_relu_ibp_bwd_d(c.m, c.r, c.Gm, c.Gr, dm, dr, 0, c.n);
    check_grad("relu dx", c.x, dx, c.n, relu_obj, &c);
    check_grad("relu dm", c.m, dm, c.n, relu_obj, &c);
    check_grad("relu dr", c.r, dr, c.n, relu_obj, &c);
    /* hand case: [m-r, m+r] = [-1, 3] -> [0, 3]: centre 1.5, radius 1.5 */
    double m1 = 1, r1 = 2, mo, ro;
    trn_relu_ibp_fwd_d(&m1, &r1, &mo, &ro, 0, 1);
    cr_assert_float_eq(mo, 1.5, 1e-15);
    cr_assert_float_eq(ro, 1.5, 1e-15);
    free(dx), free(dm), free(dr);
    for (int i = 0; i < 8; i++)
        free(b[i]);
}

/* ---- last layer with the spec folded in, and the losses ---- */
typedef struct {
    int N, in, nc;
    int y[4];
    double *W, *b, *m, *r, *lb, *z, *G;
    int which; /* 0: <G, lb>, 1: robust loss, 2: CE */
} margin_case;

static double margin_obj(void *p)
{
    margin_case *c = p;
    if (c->which == 2) {
        trn_lin_fwd_d(c->W, c->b, c->m, c->z, c->N, c->in, c->nc);
        return trn_ce_loss_d(c->z, c->y, c->N, c->nc, 0, NULL, NULL);
    }
    trn_margin_fwd_d(c->W, c->b, c->m, c->r, c->y, c->N, c->in, c->nc, c->lb);
    if (c->which == 1)
        return trn_robust_loss_d(c->lb, c->N, c->nc - 1, 0, NULL, NULL);
    return dot(c->lb, c->G, (size_t)c->N * (c->nc - 1));
}

Test(train_grad, spec_margin_and_losses_match_finite_differences)
{
    rng_seed(&R, 5);
    margin_case c = {.N = 4, .in = 5, .nc = 4, .y = {0, 3, 1, 3}};
    size_t nw = (size_t)c.in * c.nc, nx = (size_t)c.N * c.in, nl = (size_t)c.N * (c.nc - 1);
    c.W = malloc(nw * 8), c.b = malloc(c.nc * 8), c.m = malloc(nx * 8), c.r = malloc(nx * 8),
    c.lb = malloc(nl * 8), c.z = malloc((size_t)c.N * c.nc * 8), c.G = malloc(nl * 8);
    fill(c.W, nw, 1), fill(c.b, c.nc, 1), fill(c.m, nx, 1), fill(c.r, nx, 0.3), fill(c.G, nl, 1);
    for (size_t i = 0; i < nx; i++)
        c.r[i] = fabs(c.r[i]);
    for (c.which = 0; c.which < 3; c.which++) {
        double *dW = calloc(nw, 8), *db = calloc(c.nc, 8), *dm = calloc(nx, 8), *dr = calloc(nx, 8),
               *glb = calloc(nl, 8), *gz = calloc((size_t)c.N * c.nc, 8);
        if (c.which == 2) {
            trn_lin_fwd_d(c.W, c.b, c.m, c.z, c.N, c.in, c.nc);
            trn_ce_loss_d(c.z, c.y, c.N, c.nc, 1, gz, NULL);
            trn_lin_bwd_d(c.W, c.m, gz, dW, db, dm, c.N, c.in, c.nc);
        } else {
            trn_margin_fwd_d(c.W, c.b, c.m, c.r, c.y, c.N, c.in, c.nc, c.lb);
            if (c.which == 1)
                trn_robust_loss_d(c.lb, c.N, c.nc - 1, 1, glb, NULL);
            else
                memcpy(glb, c.G, nl * 8);
            trn_margin_bwd_d(c.W, c.m, c.r, c.y, glb, c.N, c.in, c.nc, dW, db, dm, dr);
            check_grad("margin dr", c.r, dr, nx, margin_obj, &c);
        }
        check_grad("margin dW", c.W, dW, nw, margin_obj, &c);
        check_grad("margin db", c.b, db, c.nc, margin_obj, &c);
        check_grad("margin dm", c.m, dm, nx, margin_obj, &c);
        free(dW), free(db), free(dm), free(dr), free(glb), free(gz);
    }
    /* the margin lower bound is exact at r = 0 and below every sampled margin */
    trn_margin_fwd_d(c.W, c.b, c.m, c.r, c.y, c.N, c.in, c.nc, c.lb);
    for (int s = 0; s < 200; s++) {
        double x[5], z[4];
        int n = s % c.N;
        for (int i = 0; i < c.in; i++)
            x[i] = c.m[n * c.in + i] + (2 * rng_uniform(&R) - 1) * c.r[n * c.in + i];
        trn_lin_fwd_d(c.W, c.b, x, z, 1, c.in, c.nc);
        for (int j = 0, k = 0; j < c.nc; j++)
            if (j != c.y[n])
                cr_assert(z[c.y[n]] - z[j] >= c.lb[n * (c.nc - 1) + k++] - 1e-12);
    }
    free(c.W), free(c.b), free(c.m), free(c.r), free(c.lb), free(c.z), free(c.G);
}

/* ---- regulariser ---- */
typedef struct {
    size_t n;
    double *c, *r, tau0;
} reg_case;

static double reg_obj(void *p)
{
    reg_case *c = p;
    double t, u;
    int ok;
    trn_reg_layer_d(c->c, c->r, c->n, 0.5, c->tau0, &t, &u, &ok, 0, 0, NULL, NULL);
    return 0.7 * t + 1.3 * u;
}

Test(train_grad, regularisers_match_finite_differences)
{
    rng_seed(&R, 6);
    reg_case c = {.n = 30, .tau0 = 0.05};
    c.c = malloc(c.n * 8), c.r = malloc(c.n * 8);
    fill(c.c, c.n, 1), fill(c.r, c.n, 0.4);
    for (size_t i = 0; i < c.n; i++)
        c.r[i] = fabs(c.r[i]) + 0.01;
    /* push most intervals away from 0 so some are active and some inactive; keep masks stable */
    for (size_t i = 0; i < c.n; i++) {
        if (fabs(c.c[i] - c.r[i]) < 0.02 || fabs(c.c[i] + c.r[i]) < 0.02)
            c.c[i] += 0.05;
        if (i % 3 == 0)
            c.c[i] = c.r[i] + 0.2 + 0.5 * rng_uniform(&R);
        if (i % 3 == 1)
            c.c[i] = -c.r[i] - 0.5 - 4 * rng_uniform(&R);
    }
    double t, u, *gm = calloc(c.n, 8), *gr = calloc(c.n, 8);
    int ok;
    trn_reg_layer_d(c.c, c.r, c.n, 0.5, c.tau0, &t, &u, &ok, 0.7, 1.3, gm, gr);
    cr_assert(ok);
    cr_assert(t > 0 && u > 0, "both terms active in this case (t %g, u %g)", t, u);
    check_grad("reg dc", c.c, gm, c.n, reg_obj, &c);
    check_grad("reg dr", c.r, gr, c.n, reg_obj, &c);
    free(gm), free(gr), free(c.c), free(c.r);
}

Test(train_grad, regulariser_hand_computed_case)
{
    /* four neurons: [l,u] = [1,3], [-4,-2], [-1,1], [2,2]; c = 2,-3,0,2; r = 1,1,1,0.
     * tightness: mean r = 0.75, tau0 = 0.25: relu(0.5 - 0.25/0.75)/0.5 = 1/3.
     * rho_m = (2+2)/3 = 4/3 -> fold 3/4 -> relu(0.5-0.75) = 0.
     * mean c = 0.25; d = 3.0625, 10.5625, 0.0625, 3.0625; rho_v = 6.125/10.5625 = 0.5799 -> 0.
     * so the relu term is 0. */
    double c[4] = {2, -3, 0, 2}, r[4] = {1, 1, 1, 0}, t, u;
    int ok;
    trn_reg_layer_d(c, r, 4, 0.5, 0.25, &t, &u, &ok, 0, 0, NULL, NULL);
    cr_assert_float_eq(t, 1.0 / 3.0, 1e-12);
    cr_assert(ok);
    cr_assert_float_eq(u, 0.0, 1e-12);
    /* unbalanced: active centres 1 and 1 (sum 2), inactive -10 (sum -10): rho_m = 0.2 ->
     * relu(0.5-0.2)/0.5 = 0.6; mean c = (1+1-10+0)/4 = -2; d = 9, 9, 64, 4:
     * rho_v = 18/64 = 0.28125 -> relu(0.5-0.28125)/0.5 = 0.4375. Total 1.0375. */
    double c2[4] = {1, 1, -10, 0}, r2[4] = {0.5, 0.5, 0.5, 0.5};
    trn_reg_layer_d(c2, r2, 4, 0.5, 0.25, &t, &u, &ok, 0, 0, NULL, NULL);
    cr_assert(ok);
    cr_assert_float_eq(t, 0.0, 1e-12); /* 0.5 - 0.25/0.5 = 0 */
    cr_assert_float_eq(u, 1.0375, 1e-12);
    /* no inactive neuron: the term is not finite and is dropped */
    double c3[2] = {1, 2}, r3[2] = {0.1, 0.1};
    trn_reg_layer_d(c3, r3, 2, 0.5, 0.25, &t, &u, &ok, 0, 0, NULL, NULL);
    cr_assert(!ok);
    cr_assert_float_eq(u, 0.0, 0);
}

/* ---- the float network pass, all pieces wired together ---- */
typedef struct {
    trn_model *m;
    trn_work *w;
    float *x0;
    int *y, B;
    trn_pass_opts o;
    float *grad;
} net_case;

static double net_loss(net_case *c)
{
    memcpy(trn_work_input(c->w, 0), c->x0,
           (size_t)c->B * c->m->in_c * c->m->in_h * c->m->in_w * sizeof(float));
    memcpy(trn_work_labels(c->w), c->y, (size_t)c->B * sizeof(int));
    trn_step_stats st;
    cr_assert_eq(trn_pass(c->m, c->w, c->B, &c->o, c->grad, &st), 0);
    return st.loss;
}

static void net_check(const char *model, int natural, double reg, double crown)
{
    trn_config cfg;
    trn_config_default(&cfg);
    snprintf(cfg.model, sizeof cfg.model, "%s", model);
    cfg.width = 2;
    cfg.linear_size = 6;
    cfg.hidden[0] = 7;
    cfg.hidden[1] = 5;
    err e;
    net_case c = {.B = 6};
    cr_assert_eq(trn_model_build(&cfg, 1, 10, 10, 3, &c.m, &e), 0, "%s", e.msg);
    rng r;
    rng_seed(&r, 11);
    trn_model_init(c.m, &r, 1);
    /* spread the weights so every layer matters at float precision */
    for (int64_t k = 0; k < c.m->n_params; k++)
        c.m->params[k] += (float)(0.3 * (2 * rng_uniform(&r) - 1));
    c.w = trn_work_new(c.m, c.B, 2);
    cr_assert(c.w);
    size_t nx = (size_t)c.B * 100;
    c.x0 = malloc(nx * sizeof(float));
    c.y = malloc(c.B * sizeof(int));
    for (size_t i = 0; i < nx; i++)
        c.x0[i] = (float)rng_uniform(&r);
    for (int i = 0; i < c.B; i++)
        c.y[i] = i % 3;
    c.o = (trn_pass_opts){.train = 1, .box_eps = 0.05, .natural = natural, .reg_weight = reg,
                          .tol = 0.5, .crown = crown};
    float *g = malloc(c.m->n_params * sizeof(float));
    c.grad = malloc(c.m->n_params * sizeof(float));
    double L0 = net_loss(&c);
    memcpy(g, c.grad, c.m->n_params * sizeof(float));
    if (crown > 0) { /* the bounds the loss used hold at the clean points (same BN statistics) */
        const float *z = trn_work_logits(c.w), *lb = trn_work_margins(c.w);
        for (int n = 0; n < c.B; n++)
            for (int j = 0, k = 0; j < 3; j++)
                if (j != c.y[n])
                    cr_assert(z[n * 3 + c.y[n]] - z[n * 3 + j] >= lb[n * 2 + k++] - 1e-4);
    }
    int checked = 0, bad = 0;
    for (int64_t k = 0; k < c.m->n_params; k += 1 + c.m->n_params / 60) {
        float o = c.m->params[k];
        double h = 2e-3 * fmax(0.1, fabs(o));
        c.m->params[k] = (float)(o + h);
        double a = net_loss(&c);
        c.m->params[k] = (float)(o - h);
        double b = net_loss(&c);
        c.m->params[k] = o;
        double num = (a - b) / (2 * h);
        /* float rounding of the loss, amplified by 1/h */
        double tol = 0.05 * fmax(fabs(num), fabs(g[k])) + 2e-3 + 3e-6 * fabs(L0) / h;
        checked++;
        if (fabs(num - g[k]) > tol) {
            bad++;
            cr_log_info("%s param %lld: analytic %g numeric %g", model, (long long)k, g[k], num);
        }
    }
    /* a kink (a ReLU or mask flipping inside +-h) can spoil a rare coordinate */
    cr_assert(bad <= checked / 20, "%s: %d of %d parameter gradients disagree", model, bad, checked);
    free(g), free(c.grad), free(c.x0), free(c.y);
    trn_work_free(c.w);
    trn_model_free(c.m);
}

Test(train_grad, network_pass_matches_finite_differences)
{
    net_check("cnn7", 0, 0, 0);
    net_check("cnn7", 0, 0.5, 0);
    net_check("cnn7", 1, 0.5, 0);
    net_check("mlp", 0, 0.3, 0);
    net_check("cnn_small", 1, 0, 0);
    /* CROWN-IBP mixed in (ignored in natural batches) */
    net_check("cnn7", 0, 0, 1);
    net_check("cnn7", 0, 0.5, 0.4);
    net_check("mlp", 0, 0.3, 0.7);
    net_check("cnn_small", 0, 0, 0.5);
}

/* ---- CROWN-IBP: the backward walk and its gradient (double) ----
 * Chain: conv(1->2, 3x3 s1) BN ReLU conv(2->3, 3x3 s2) BN ReLU linear(27->5) BN ReLU
 * linear(5->4) with the spec; ReLU bounds from a real IBP pass over the input box. */
#define CR_NL 10
typedef struct {
    trn_crown_layer_d L[CR_NL];
    double *W[CR_NL], *b[CR_NL], *m[CR_NL], *r[CR_NL]; /* writable views of L's inputs */
    int nimg, ncls;
    int y[3];
    double *m0, *r0, *lb, *G, *scratch;
} crown_case;

static double crown_obj(void *p)
{
    crown_case *c = p;
    trn_crown_bound_d(c->L, CR_NL, c->ncls, c->y, c->m0, c->r0, c->nimg, c->lb, c->scratch);
    return dot(c->lb, c->G, (size_t)c->nimg * (c->ncls - 1));
}

/* value (m) or interval (m, r; r may be NULL) through layer i of the chain, per image */
static void crown_layer_fwd(crown_case *c, int i, const double *m, const double *r, double *mo,
                            double *ro, int N)
{
    trn_crown_layer_d *l = &c->L[i];
    double *aw = malloc((size_t)l->in * l->out * 8 + 8), col[4096];
    switch (l->kind) {
    case TRN_CONV:
    case TRN_LINEAR: {
        size_t nw = l->kind == TRN_CONV ? (size_t)l->sh.cout * l->sh.cin * l->sh.k * l->sh.k
                                        : (size_t)l->in * l->out;
        for (size_t k = 0; k < nw; k++)
            aw[k] = fabs(l->W[k]);
        if (l->kind == TRN_CONV) {
            trn_conv_fwd_d(&l->sh, l->W, l->b, m, mo, 0, N, col);
            if (r)
                trn_conv_fwd_d(&l->sh, aw, NULL, r, ro, 0, N, col);
        } else {
            trn_lin_fwd_d(l->W, l->b, m, mo, N, l->in, l->out);
            if (r)
                trn_lin_fwd_d(aw, NULL, r, ro, N, l->in, l->out);
        }
        break;
    }
    case TRN_BN:
        for (int n = 0; n < N; n++)
            for (int ch = 0; ch < l->C; ch++)
                for (int k = 0; k < l->HW; k++) {
                    size_t o = ((size_t)n * l->C + ch) * l->HW + k;
                    mo[o] = l->W[ch] * m[o] + l->b[ch];
                    if (r)
                        ro[o] = fabs(l->W[ch]) * r[o];
                }
        break;
    case TRN_RELU:
        if (r)
            trn_relu_ibp_fwd_d(m, r, mo, ro, 0, (size_t)N * l->in);
        else
            trn_relu_fwd_d(m, mo, 0, (size_t)N * l->in);
        break;
    }
    free(aw);
}

static void crown_setup(crown_case *c)
{
    static const int kinds[CR_NL] = {TRN_CONV, TRN_BN, TRN_RELU, TRN_CONV, TRN_BN,
                                     TRN_RELU, TRN_LINEAR, TRN_BN, TRN_RELU, TRN_LINEAR};
    memset(c, 0, sizeof *c);
    c->nimg = 3, c->ncls = 4;
    c->y[0] = 2, c->y[1] = 0, c->y[2] = 3;
    trn_conv_shape s0 = {1, 6, 6, 2, 3, 1, 1, 6, 6}, s1 = {2, 6, 6, 3, 3, 2, 1, 3, 3};
    int sizes[CR_NL + 1] = {36, 72, 72, 72, 27, 27, 27, 5, 5, 5, 4};
    int K = c->ncls - 1;
    for (int i = 0; i < CR_NL; i++) {
        trn_crown_layer_d *l = &c->L[i];
        memset(l, 0, sizeof *l);
        l->kind = kinds[i], l->in = sizes[i], l->out = sizes[i + 1];
        size_t nw = 0, nb = 0;
        if (i == 0 || i == 3) {
            l->sh = i == 0 ? s0 : s1;
            nw = (size_t)l->sh.cout * l->sh.cin * 9, nb = l->sh.cout;
        } else if (l->kind == TRN_LINEAR) {
            nw = (size_t)l->in * l->out, nb = l->out;
        } else if (l->kind == TRN_BN) {
            l->C = i == 1 ? 2 : i == 4 ? 3 : 5;
            l->HW = l->in / l->C;
            nw = nb = l->C;
        }
        if (nw) {
            c->W[i] = malloc(nw * 8), c->b[i] = malloc(nb * 8);
            fill(c->W[i], nw, l->kind == TRN_BN ? 1.5 : 0.8), fill(c->b[i], nb, 0.5);
            l->W = c->W[i], l->b = c->b[i];
            l->dW = calloc(nw, 8), l->db = calloc(nb, 8);
        }
        if (l->kind == TRN_RELU) {
            c->m[i] = malloc((size_t)c->nimg * l->in * 8), c->r[i] = malloc((size_t)c->nimg * l->in * 8);
            l->m = c->m[i], l->r = c->r[i];
            l->dm = malloc((size_t)c->nimg * l->in * 8), l->dr = malloc((size_t)c->nimg * l->in * 8);
        }
        l->lam = malloc((size_t)c->nimg * K * l->in * 8);
    }
    size_t n0 = (size_t)c->nimg * 36;
    c->m0 = malloc(n0 * 8), c->r0 = malloc(n0 * 8);
    for (size_t k = 0; k < n0; k++)
        c->m0[k] = rng_uniform(&R), c->r0[k] = 0.05 + 0.2 * rng_uniform(&R);
    /* the IBP pass gives the ReLU bounds */
    double *m = malloc(c->nimg * 72 * 8), *r = malloc(c->nimg * 72 * 8),
           *mo = malloc(c->nimg * 72 * 8), *ro = malloc(c->nimg * 72 * 8);
    memcpy(m, c->m0, n0 * 8), memcpy(r, c->r0, n0 * 8);
    for (int i = 0; i < CR_NL - 1; i++) {
        if (c->L[i].kind == TRN_RELU)
            memcpy(c->m[i], m, (size_t)c->nimg * c->L[i].in * 8),
                memcpy(c->r[i], r, (size_t)c->nimg * c->L[i].in * 8);
        crown_layer_fwd(c, i, m, r, mo, ro, c->nimg);
        double *t = m;
        m = mo, mo = t, t = r, r = ro, ro = t;
    }
    free(m), free(r), free(mo), free(ro);
    c->lb = malloc((size_t)c->nimg * K * 8), c->G = malloc((size_t)c->nimg * K * 8);
    fill(c->G, (size_t)c->nimg * K, 1);
    c->scratch = malloc(trn_crown_scratch_d(c->L, CR_NL, c->nimg, c->ncls) * 8);
}

static void crown_free(crown_case *c)
{
    for (int i = 0; i < CR_NL; i++) {
        trn_crown_layer_d *l = &c->L[i];
        free(c->W[i]), free(c->b[i]), free(c->m[i]), free(c->r[i]);
        free(l->dW), free(l->db), free(l->dm), free(l->dr), free(l->lam);
    }
    free(c->m0), free(c->r0), free(c->lb), free(c->G), free(c->scratch);
}

Test(train_grad, crown_ibp_bound_is_sound_and_its_gradient_matches_finite_differences)
{
    for (int force = 0; force < 2; force++) { /* both convolution paths */
        trn_conv_force_d = force;
        rng_seed(&R, 17 + force);
        crown_case c;
        crown_setup(&c);
        int K = c.ncls - 1, unstable = 0;
        trn_crown_bound_d(c.L, CR_NL, c.ncls, c.y, c.m0, c.r0, c.nimg, c.lb, c.scratch);
        /* sound: below the margins of points sampled in the box */
        double *x = malloc(c.nimg * 72 * 8), *xo = malloc(c.nimg * 72 * 8);
        for (int s = 0; s < 300; s++) {
            for (int k = 0; k < c.nimg * 36; k++)
                x[k] = c.m0[k] + (2 * rng_uniform(&R) - 1) * c.r0[k];
            for (int i = 0; i < CR_NL; i++) {
                crown_layer_fwd(&c, i, x, NULL, xo, NULL, c.nimg);
                double *t = x;
                x = xo, xo = t;
            }
            for (int n = 0; n < c.nimg; n++)
                for (int j = 0, k = 0; j < c.ncls; j++)
                    if (j != c.y[n])
                        cr_assert(x[n * c.ncls + c.y[n]] - x[n * c.ncls + j] >=
                                  c.lb[n * K + k++] - 1e-9);
        }
        free(x), free(xo);
        for (int i = 0; i < CR_NL; i++)
            if (c.L[i].kind == TRN_RELU)
                for (int k = 0; k < c.nimg * c.L[i].in; k++)
                    unstable += c.m[i][k] - c.r[i][k] < 0 && c.m[i][k] + c.r[i][k] > 0;
        cr_assert(unstable >= 20, "only %d unstable ReLUs: the test would not test much", unstable);
        trn_crown_grad_d(c.L, CR_NL, c.ncls, c.y, c.m0, c.r0, c.nimg, c.G, c.scratch);
        for (int i = 0; i < CR_NL; i++) {
            trn_crown_layer_d *l = &c.L[i];
            char what[64];
            if (c.W[i]) {
                size_t nw = l->kind == TRN_CONV ? (size_t)l->sh.cout * l->sh.cin * 9
                            : l->kind == TRN_LINEAR ? (size_t)l->in * l->out : (size_t)l->C;
                size_t nb = l->kind == TRN_CONV ? (size_t)l->sh.cout
                            : l->kind == TRN_LINEAR ? (size_t)l->out : (size_t)l->C;
                snprintf(what, sizeof what, "crown layer %d W", i);
                check_grad(what, c.W[i], l->dW, nw, crown_obj, &c);
                snprintf(what, sizeof what, "crown layer %d b", i);
                check_grad(what, c.b[i], l->db, nb, crown_obj, &c);
            }
            if (l->kind == TRN_RELU) {
                size_t n = (size_t)c.nimg * l->in;
                snprintf(what, sizeof what, "crown relu %d m", i);
                check_grad(what, c.m[i], l->dm, n, crown_obj, &c);
                snprintf(what, sizeof what, "crown relu %d r", i);
                check_grad(what, c.r[i], l->dr, n, crown_obj, &c);
            }
        }
        crown_free(&c);
    }
    trn_conv_force_d = -1;
}
