/* compare.c: the GenBaB comparison over a benchmark directory
 * (instances.csv: model,spec,timeout). Per instance: a short attack (a
 * validated counterexample makes it `sat` for every method), then each
 * method on every clause of every region with the instance's timeout:
 *   crown     CROWN bounds alone
 *   alpha     alpha-CROWN: the tangent points of the smooth neurons
 *             optimised per row, in the final pass (20 rounds;
 *             NNV_ALPHA_ITERS=n) and the intermediate bounds (3 rounds, once
 *             per region; NNV_ALPHA_INTERM=n), as GenBaB's root
 *   genbab    GenBaB: GenBaB score, lookup-table split points, top-1
 *   midpoint  the same BaB splitting smooth neurons at the midpoint
 *   width     the same BaB with the widest-interval rule
 * Prints one CSV line per instance (result and seconds per method) and a
 * summary. Built by benchmarks/run_compare.sh against build/libnnv.a.
 * NNV_THREADS=n gives the BaB methods n workers (default one), NNV_TAU_ITERS=n
 * their tangent-point rounds per domain, NNV_REFINE_FRAC=f the share of a
 * child's smooth neurons that get CROWN bounds (bab_genbab_opts.refine_frac);
 * NNV_MARGINS=1 prints every clause's root margin (max over rows of lb - d)
 * of crown / alpha to stderr. Freed blocks stay in glibc's heap, as in
 * `verify` (core/heap.h): CROWN and alpha over ten ConvSmall properties, one
 * thread, 19.6 s before, 14.7 s with it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bab/bab.h"
#include "../bound/bound.h"
#include "../core/clock.h"
#include "../core/heap.h"

#define N_METHODS 5
static const char *names[N_METHODS] = {"crown", "alpha", "genbab", "midpoint", "width"};

/* 1 when method m proves every clause of every region within the timeout. */
static int run_method(int m, const nn_graph *g, const spec_property *p, double timeout,
                      int64_t *domains)
{
    err e = {0};
    double deadline = clock_now() + timeout;
    bnd_net *n = NULL;
    if (bnd_net_new(g, &n, &e))
        return -1;
    /* alpha: intermediate rounds as GenBaB's root (NNV_ALPHA_INTERM=0: final pass only),
     * once per region: later clauses reuse the first one's intervals */
    int interm = getenv("NNV_ALPHA_INTERM") ? atoi(getenv("NNV_ALPHA_INTERM")) : 3;
    int64_t n_act = bnd_act_count(n);
    double *plo = malloc(sizeof(double) * (size_t)(2 * n_act + 1)), *phi = plo + n_act;
    int ok = 1, all = m <= 1 && getenv("NNV_MARGINS"); /* all: every clause's margin */
    bab_genbab_root *root = bab_genbab_root_new(); /* shared by a region's clauses */
    for (int r = 0; r < p->n_regions && (ok || all); r++) {
        const spec_region *reg = &p->regions[r];
        for (int k = 0; k < reg->n_clauses && (ok || all); k++) {
            const spec_clause *cl = &reg->clauses[k];
            if (clock_expired(deadline)) {
                ok = 0;
                break;
            }
            double lb[64];
            if (cl->n_rows > 64) {
                ok = 0;
                break;
            }
            if (m <= 1) {
                int iters = getenv("NNV_ALPHA_ITERS") ? atoi(getenv("NNV_ALPHA_ITERS")) : 20;
                int reuse = m == 1 && k > 0 && plo;
                bnd_set_tau_interm(n, m == 1 && !reuse ? interm : 0);
                int rc = bnd_split_bound(n, reg->lo, reg->hi, reuse ? plo : NULL, reuse ? phi : NULL,
                                         NULL, n_act, cl->C, cl->n_rows, m == 1 ? iters : 0, lb,
                                         m == 1 && !reuse ? plo : NULL, m == 1 && !reuse ? phi : NULL,
                                         NULL, NULL, NULL, &e);
                int proven = rc == 1;
                double margin = rc == 1 ? INFINITY : -INFINITY;
                for (int i = 0; rc == 0 && i < cl->n_rows; i++) {
                    proven |= lb[i] > cl->d[i];
                    margin = fmax(margin, lb[i] - cl->d[i]);
                }
                if (getenv("NNV_MARGINS"))
                    fprintf(stderr, "%s region %d clause %d margin %.6g\n", names[m], r, k, margin);
                ok &= proven;
            } else {
                bab_genbab_opts o;
                bab_genbab_opts_default(&o);
                o.deadline = deadline;
                if (getenv("NNV_THREADS")) /* workers; the default is one */
                    o.threads = atoi(getenv("NNV_THREADS"));
                if (getenv("NNV_TAU_ITERS")) /* tangent rounds per domain (default 2) */
                    o.tau_iters = atoi(getenv("NNV_TAU_ITERS"));
                if (getenv("NNV_REFINE_FRAC")) /* children's refined share (default 0.25) */
                    o.refine_frac = atof(getenv("NNV_REFINE_FRAC"));
                if (getenv("NNV_TOPK")) /* candidates re-checked by real bounds (default 1) */
                    o.topk = atoi(getenv("NNV_TOPK"));
                o.midpoint = m == 3;
                o.root = root;
                o.rule = m == 4 ? BAB_BRANCH_WIDTH : BAB_BRANCH_GENBAB;
                bab_genbab_stats st;
                ok = bab_genbab(g, reg->lo, reg->hi, cl, &o, &st, &e) == 1;
                *domains += st.domains;
            }
        }
    }
    bab_genbab_root_free(root);
    free(plo);
    bnd_net_free(n);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: compare BENCH_DIR [TIMEOUT_OVERRIDE [METHOD,...]]\n");
        return 2;
    }
    heap_keep_freed();
    char path[2048], line[2048];
    snprintf(path, sizeof path, "%s/instances.csv", argv[1]);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "compare: cannot open %s\n", path);
        return 1;
    }
    int solved[N_METHODS] = {0}, n_sat = 0, n = 0;
    double total[N_METHODS] = {0};
    int64_t doms[N_METHODS] = {0};
    printf("instance,attack");
    for (int m = 0; m < N_METHODS; m++)
        printf(",%s,%s_s", names[m], names[m]);
    printf("\n");
    while (fgets(line, sizeof line, f)) {
        char *model = strtok(line, ",\n"), *spec = strtok(NULL, ",\n"), *tmo = strtok(NULL, ",\n");
        if (!model || !spec)
            continue;
        double timeout = argc > 2 && atof(argv[2]) > 0 ? atof(argv[2]) : tmo ? atof(tmo) : 60;
        nn_graph *g = NULL;
        spec_property *p = NULL;
        err e = {0};
        snprintf(path, sizeof path, "%s/%s", argv[1], model);
        if (nn_load(path, &g, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", argv[1], spec);
        if (spec_parse_vnnlib(path, &p, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            nn_graph_free(g);
            continue;
        }
        n++;
        int sat = 0;
        double *x = malloc(sizeof(double) * (size_t)p->n_x);
        for (int r = 0; r < p->n_regions && !sat; r++) {
            bab_attack_opts ao = {.deadline = clock_now() + 5, .restarts = 3, .steps = 20,
                                  .samples = 200, .seed = 7};
            sat = bab_attack(g, p, r, &ao, x, NULL, &e) == 1;
        }
        free(x);
        printf("%s,%s", spec, sat ? "sat" : "-");
        n_sat += sat;
        for (int m = 0; m < N_METHODS; m++) {
            if (argc > 3 && !strstr(argv[3], names[m])) { /* not asked for */
                printf(",-,0");
                continue;
            }
            double t0 = clock_now();
            int ok = sat ? 0 : run_method(m, g, p, timeout, &doms[m]);
            double t = clock_now() - t0;
            solved[m] += ok == 1;
            total[m] += t;
            printf(",%s,%.2f", sat ? "sat" : ok == 1 ? "unsat" : "open", t);
        }
        printf("\n");
        fflush(stdout);
        spec_free(p);
        nn_graph_free(g);
    }
    fclose(f);
    fprintf(stderr, "summary: %d instances, %d sat by attack\n", n, n_sat);
    for (int m = 0; m < N_METHODS; m++)
        fprintf(stderr, "  %-9s unsat %2d  total %.1f s  domains %lld\n", names[m], solved[m],
                total[m], (long long)doms[m]);
    return 0;
}
