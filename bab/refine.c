/* refine.c: tighter intermediate bounds by branch and bound on the ReLUs of
 * the layers before them (a sound counterpart of alpha-beta-CROWN's MILP
 * refinement of intermediate bounds).
 *
 * Why: on deep MLPs (mnist_fc 256x4, 256x6) the bounds alpha-CROWN gives the
 * deeper pre-activations are those of the triangle relaxation, and the
 * exact MILP over the earlier layers' ReLU phases is far tighter (layer 2
 * of 256x4 at eps 0.05: a quarter narrower, some neurons stable). A MILP
 * solver's bound is not a certificate; a branch and bound whose every leaf
 * has a sound beta-CROWN bound is: the minimum over the leaves bounds the
 * neuron over the whole region (the leaves cover it, empty ones drop out).
 *
 * One job per (unstable neuron of the layer, side): row +e_t bounds z_t from
 * below, -e_t from above, over the chain cut at that layer
 * (bnd_mlp_prefix). Each round splits every open job's worst leaf on its
 * BaBSR neuron and bounds all the children of all jobs in one
 * bnd_beta_batch call. A job ends when its bound reaches 0 (the neuron is
 * stable on that side), when its worst leaf has nothing left to split, at its
 * leaf cap, or at the deadline; its bound is met with the caller's. Jobs are
 * dealt to o->threads threads, each running its own rounds. */
#include "refine.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"
#include "branch.h"

typedef struct leaf {
    double lb;
    int ns;
    int64_t branch;      /* neuron to split next, -1: none left */
    bnd_split *splits;   /* ns */
    double *beta;        /* ns */
    double *plo, *phi, *alpha; /* npr each */
} leaf;

typedef struct job {
    int64_t t;           /* neuron of the layer */
    int side;            /* +1: lower bound of z_t, -1: upper */
    leaf **lv;
    int n, cap;
    int done;
} job;

static leaf *leaf_new(int ns, int64_t npr)
{
    size_t bytes = sizeof(leaf) + (size_t)ns * (sizeof(bnd_split) + sizeof(double)) +
                   3 * (size_t)npr * sizeof(double);
    leaf *l = calloc(1, bytes);
    if (!l)
        return NULL;
    l->ns = ns;
    l->branch = -1;
    l->beta = (double *)(l + 1);
    l->plo = l->beta + ns;
    l->phi = l->plo + npr;
    l->alpha = l->phi + npr;
    l->splits = (bnd_split *)(l->alpha + npr);
    return l;
}

/* child of p with neuron p->branch on side s (+1 active, -1 inactive) */
static leaf *leaf_child(const leaf *p, int s, int64_t npr)
{
    leaf *c = leaf_new(p->ns + 1, npr);
    if (!c)
        return NULL;
    memcpy(c->splits, p->splits, (size_t)p->ns * sizeof(bnd_split));
    memcpy(c->beta, p->beta, (size_t)p->ns * sizeof(double));
    memcpy(c->plo, p->plo, 3 * (size_t)npr * sizeof(double));
    int64_t j = p->branch;
    c->splits[p->ns] = (bnd_split){j, s};
    c->beta[p->ns] = 0;
    if (s > 0)
        c->plo[j] = fmax(c->plo[j], 0.0);
    else
        c->phi[j] = fmin(c->phi[j], 0.0);
    c->lb = p->lb;
    return c;
}

/* index of the job's lowest leaf: the one its bound is */
static int min_leaf(const job *jb)
{
    int best = 0;
    for (int q = 1; q < jb->n; q++)
        if (jb->lv[q]->lb < jb->lv[best]->lb)
            best = q;
    return best;
}

/* the job's leaf to split: its lowest; -1 when that one is already at 0 (the
 * side is stable) or has nothing left to split */
static int worst_leaf(const job *jb)
{
    int best = min_leaf(jb);
    return jb->n > 0 && jb->lv[best]->branch >= 0 && jb->lv[best]->lb < 0 ? best : -1;
}

/* Bound the leaves L[0..B) (one row each: side·e_t of its job) and choose
 * each one's next split. */
static int bound_leaves(const bnd_mlp *pm, const double *lo, const double *hi, leaf **L,
                        const job **owner, int64_t B, int64_t npr, double deadline, int f64,
                        err *e)
{
    int64_t no = bnd_mlp_n_out(pm);
    bnd_bbeta_dom *doms = calloc((size_t)B, sizeof *doms);
    int64_t *dom = malloc((size_t)B * sizeof(int64_t));
    double *C = calloc((size_t)(B * no), sizeof(double));
    double *thr = malloc((size_t)B * sizeof(double));
    double **beta = malloc((size_t)B * sizeof(double *)), **alpha = malloc((size_t)B * sizeof(double *));
    double *lb = malloc((size_t)B * sizeof(double));
    double *A = malloc((size_t)(B * npr) * sizeof(double));
    int8_t *zero = calloc((size_t)npr, 1);
    int rc = 0;
    if (!doms || !dom || !C || !thr || !beta || !alpha || !lb || !A || !zero) {
        rc = err_set(e, ERR_NOMEM, "refine: out of memory (%lld leaves)", (long long)B);
        goto out;
    }
    for (int64_t b = 0; b < B; b++) {
        doms[b] = (bnd_bbeta_dom){L[b]->plo, L[b]->phi, L[b]->splits, L[b]->ns};
        dom[b] = b;
        C[b * no + owner[b]->t] = owner[b]->side;
        thr[b] = 0;
        beta[b] = L[b]->beta, alpha[b] = L[b]->alpha;
    }
    bnd_bbeta_rows rows = {B, dom, C, thr, beta, alpha, lb, A, NULL}; /* no minimisers */
    bnd_bbeta_opts bo = {20, 0.05, 0.1, deadline, f64};
    rc = bnd_beta_batch(pm, lo, hi, B, doms, &rows, &bo, e);
    for (int64_t b = 0; rc == 0 && b < B; b++) {
        /* a child is never looser than its parent */
        L[b]->lb = fmax(L[b]->lb, lb[b]);
        double sc;
        int64_t top;
        L[b]->branch = bab_branch_top(npr, L[b]->plo, L[b]->phi, zero, A + b * npr, 1, &top, &sc)
                           ? top : -1;
    }
out:
    free(doms), free(dom), free(C), free(thr), free(beta), free(alpha), free(lb), free(A);
    free(zero);
    return rc;
}

#define REFINE_MAX_THREADS 64

/* the jobs q = first, first + stride, ... of one thread */
typedef struct group {
    const bnd_mlp *pm;
    const double *lo, *hi;
    int64_t npr;
    double deadline;
    int f64;
    job *jobs;
    int64_t nj;
    int first, stride;
    int rounds, rc;
    err e;
} group;

static void *group_run(void *arg)
{
    group *G = arg;
    int64_t mine = (G->nj - G->first + G->stride - 1) / G->stride, npr = G->npr;
    leaf **L = malloc((size_t)(2 * mine + 1) * sizeof(leaf *));
    const job **owner = malloc((size_t)(2 * mine + 1) * sizeof(job *));
    if (!L || !owner) {
        G->rc = err_set(&G->e, ERR_NOMEM, "refine: out of memory");
        goto out;
    }
    /* the roots */
    int64_t B = 0;
    for (int64_t q = G->first; q < G->nj; q += G->stride)
        L[B] = G->jobs[q].lv[0], owner[B++] = &G->jobs[q];
    if (B)
        G->rc = bound_leaves(G->pm, G->lo, G->hi, L, owner, B, npr, G->deadline, G->f64, &G->e);
    while (G->rc == 0 && !clock_expired(G->deadline)) {
        B = 0;
        for (int64_t q = G->first; q < G->nj; q += G->stride) {
            job *jb = &G->jobs[q];
            int w = jb->done ? -1 : worst_leaf(jb);
            if (w < 0 || jb->n + 1 > jb->cap) {
                jb->done = 1;
                continue;
            }
            leaf *p = jb->lv[w];
            leaf *a = leaf_child(p, 1, npr), *b = leaf_child(p, -1, npr);
            if (!a || !b) {
                free(a), free(b);
                G->rc = err_set(&G->e, ERR_NOMEM, "refine: out of memory");
                break;
            }
            jb->lv[w] = a;
            jb->lv[jb->n++] = b;
            free(p);
            L[B] = a, owner[B++] = jb;
            L[B] = b, owner[B++] = jb;
        }
        if (G->rc || B == 0)
            break;
        G->rc = bound_leaves(G->pm, G->lo, G->hi, L, owner, B, npr, G->deadline, G->f64, &G->e);
        G->rounds++;
        /* empty leaves (+inf) cover no point: drop them */
        for (int64_t q = G->first; q < G->nj; q += G->stride) {
            job *jb = &G->jobs[q];
            for (int i = 0; i < jb->n;)
                if (jb->lv[i]->lb == INFINITY && jb->n > 1) {
                    free(jb->lv[i]);
                    jb->lv[i] = jb->lv[--jb->n];
                } else {
                    i++;
                }
        }
    }
out:
    free(L), free(owner);
    return NULL;
}

int bab_refine_layer(const bnd_mlp *m, const double *lo, const double *hi, double *plo,
                     double *phi, int layer, const bab_refine_opts *o, bab_refine_stats *st,
                     err *e)
{
    bnd_mlp *pm = NULL;
    int rc = bnd_mlp_prefix(m, layer, &pm, e);
    if (rc)
        return rc;
    int64_t npr = bnd_mlp_relu_count(pm), no = bnd_mlp_n_out(pm);
    double *lw = plo + npr, *up = phi + npr; /* the layer's bounds */
    int64_t nu = 0;
    for (int64_t t = 0; t < no; t++)
        nu += lw[t] < 0 && up[t] > 0;
    job *jobs = calloc((size_t)(2 * nu + 1), sizeof *jobs);
    group *grp = NULL;
    int64_t nj = 0;
    if (!jobs) {
        rc = err_set(e, ERR_NOMEM, "refine: out of memory");
        goto out;
    }
    /* leaves per job: the cap, and all jobs' leaves within the memory budget */
    int cap = o->max_leaves > 1 ? o->max_leaves : 2;
    if (o->layer_leaves > 0 && nu > 0) { /* few bounds: more leaves each, cheaply */
        double share = (double)o->layer_leaves / (2.0 * (double)nu);
        if (share > 16.0 * cap)
            share = 16.0 * cap;
        if (share > cap)
            cap = (int)share;
    }
    double leaf_bytes = sizeof(leaf) + 3.0 * (double)npr * sizeof(double) + 64.0 * 16; /* ~64 splits */
    if (o->mem_budget > 0 && nu > 0) {
        double fit = (double)o->mem_budget / (leaf_bytes * 2.0 * (double)nu);
        if (fit < cap)
            cap = fit > 2 ? (int)fit : 2;
    }
    for (int64_t t = 0; t < no; t++) {
        if (!(lw[t] < 0 && up[t] > 0))
            continue;
        for (int s = 1; s >= -1; s -= 2) {
            job *jb = &jobs[nj++];
            jb->t = t, jb->side = s, jb->cap = cap;
            jb->lv = malloc((size_t)cap * sizeof(leaf *));
            leaf *r = leaf_new(0, npr);
            if (!jb->lv || !r) {
                free(r);
                rc = err_set(e, ERR_NOMEM, "refine: out of memory");
                goto out;
            }
            memcpy(r->plo, plo, (size_t)npr * sizeof(double));
            memcpy(r->phi, phi, (size_t)npr * sizeof(double));
            for (int64_t j = 0; j < npr; j++)
                r->alpha[j] = -1; /* CROWN's slope */
            r->lb = s > 0 ? lw[t] : -up[t];
            jb->lv[jb->n++] = r;
        }
    }
    /* jobs dealt round-robin to the threads; OpenBLAS single-threaded then */
    int nt = o->threads > 1 ? (o->threads < REFINE_MAX_THREADS ? o->threads : REFINE_MAX_THREADS) : 1;
    if (nt > nj)
        nt = nj > 0 ? (int)nj : 1;
    grp = calloc((size_t)nt, sizeof *grp);
    if (!grp) {
        rc = err_set(e, ERR_NOMEM, "refine: out of memory");
        goto out;
    }
    for (int g = 0; g < nt; g++) {
        grp[g] = (group){pm, lo, hi, npr, o->deadline, o->f64, jobs, nj, g, nt, 0, 0, {0}};
    }
    if (nt == 1) {
        group_run(&grp[0]);
    } else {
        pthread_t tid[REFINE_MAX_THREADS];
        int started = 0, bt = openblas_get_num_threads();
        openblas_set_num_threads(1);
        for (int g = 1; g < nt; g++)
            if (pthread_create(&tid[g], NULL, group_run, &grp[g]) == 0)
                started = g;
            else
                break;
        for (int g = started + 1; g < nt; g++) /* threads that did not start: here */
            group_run(&grp[g]);
        group_run(&grp[0]);
        for (int g = 1; g <= started; g++)
            pthread_join(tid[g], NULL);
        openblas_set_num_threads(bt);
    }
    int rounds = 0;
    for (int g = 0; g < nt; g++) {
        if (grp[g].rc && !rc) {
            rc = grp[g].rc;
            *e = grp[g].e;
        }
        rounds = grp[g].rounds > rounds ? grp[g].rounds : rounds;
    }
    if (rc == 0) {
        double w0 = 0, w1 = 0;
        for (int64_t t = 0; t < no; t++)
            if (lw[t] < 0 && up[t] > 0)
                w0 += up[t] - lw[t];
        for (int64_t q = 0; q < nj; q++) {
            double v = jobs[q].n ? jobs[q].lv[min_leaf(&jobs[q])]->lb : INFINITY;
            int64_t t = jobs[q].t;
            if (jobs[q].side > 0)
                lw[t] = fmax(lw[t], v);
            else
                up[t] = fmin(up[t], -v);
        }
        for (int64_t t = 0; t < no; t++)
            if (lw[t] < 0 && up[t] > 0)
                w1 += up[t] - lw[t];
        if (st) {
            st->rounds += rounds;
            st->jobs += nj;
            st->unstable_before += nu;
            for (int64_t t = 0; t < no; t++)
                st->unstable_after += lw[t] < 0 && up[t] > 0;
            st->width_before += w0, st->width_after += w1;
        }
    }
out:
    for (int64_t q = 0; jobs && q < nj; q++) {
        for (int i = 0; i < jobs[q].n; i++)
            free(jobs[q].lv[i]);
        free(jobs[q].lv);
    }
    free(jobs), free(grp);
    bnd_mlp_free(pm);
    return rc;
}
