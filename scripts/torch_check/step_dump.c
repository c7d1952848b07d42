/* step_dump.c: one training step of the trainer, written out for a side-by-side
 * check against PyTorch (scripts/torch_check/check.py). Builds the configured
 * model with its seeded initialisation, takes the first B training images in
 * file order, runs trn_pass in training mode for a few (eps, regulariser)
 * settings and writes, per setting, the loss terms, the margin lower bounds
 * and the parameter gradient.
 *
 * usage: step_dump OUTDIR [--key=value ...]   (trainer config flags)
 * writes OUTDIR/params.bin (float32), OUTDIR/x.bin (float32 B x C x H x W),
 *        OUTDIR/y.bin (int32), OUTDIR/case_K.bin (float32: margins B x 9,
 *        then gradient), OUTDIR/cases.txt (one line per case). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../train/trn.h"

static int write_f(const char *dir, const char *name, const void *p, size_t sz, size_t n)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 1;
    int ok = fwrite(p, sz, n, f) == n;
    return (fclose(f) != 0) | !ok;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: step_dump OUTDIR [--key=value ...]\n");
        return 2;
    }
    const char *dir = argv[1];
    trn_config c;
    trn_config_default(&c);
    err e = {0};
    for (int i = 2; i < argc; i++) {
        char key[256];
        const char *a = argv[i], *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) != 0 || !eq || (size_t)(eq - a - 2) >= sizeof key) {
            fprintf(stderr, "step_dump: bad flag %s\n", a);
            return 2;
        }
        memcpy(key, a + 2, (size_t)(eq - a - 2));
        key[eq - a - 2] = 0;
        if (trn_config_set(&c, key, eq + 1, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
    }
    trn_dataset d = {0};
    trn_model *m = NULL;
    if (trn_data_load(c.dataset, c.data_dir, 1, &d, &e) ||
        trn_model_build(&c, d.c, d.h, d.w, d.n_classes, &m, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    trn_rng rng;
    rng_seed(&rng, c.seed);
    trn_model_init(m, &rng, c.ibp_init);
    int B = c.batch, nc = m->n_classes;
    trn_work *w = trn_work_new(m, B, c.threads);
    int64_t *idx = malloc((size_t)B * sizeof *idx);
    float *grad = malloc((size_t)m->n_params * sizeof *grad);
    if (!w || !idx || !grad)
        return 1;
    for (int i = 0; i < B; i++)
        idx[i] = i;
    trn_data_batch(&d, idx, B, 0, 0, &rng, trn_work_input(w, 0), trn_work_labels(w));
    size_t npix = (size_t)B * d.c * d.h * d.w;
    if (write_f(dir, "params.bin", m->params, sizeof(float), (size_t)m->n_params) ||
        write_f(dir, "x.bin", trn_work_input(w, 0), sizeof(float), npix) ||
        write_f(dir, "y.bin", trn_work_labels(w), sizeof(int), (size_t)B)) {
        fprintf(stderr, "step_dump: cannot write into %s\n", dir);
        return 1;
    }
    /* natural + regulariser (epoch 1), ramp with regulariser, full eps */
    const struct { double eps, reg; int natural; } cases[] = {
        {1e-6, 0.5, 1}, {0.02, 0.4, 0}, {0.1, 0, 0}};
    char path[2048];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *txt = fopen(path, "w");
    if (!txt)
        return 1;
    float *buf = malloc(((size_t)B * (nc - 1) + (size_t)m->n_params) * sizeof *buf);
    for (int k = 0; k < 3; k++) {
        trn_pass_opts o = {.train = 1, .tol = c.tol, .box_eps = cases[k].eps,
                           .natural = cases[k].natural, .reg_weight = cases[k].reg};
        /* same batch and parameters for every case: a training-mode pass
         * normalises with batch statistics, so the running ones it updates
         * do not matter */
        trn_step_stats st;
        if (trn_pass(m, w, B, &o, grad, &st)) {
            fprintf(stderr, "step_dump: pass failed\n");
            return 1;
        }
        memcpy(buf, trn_work_margins(w), (size_t)B * (nc - 1) * sizeof *buf);
        memcpy(buf + (size_t)B * (nc - 1), grad, (size_t)m->n_params * sizeof *buf);
        char name[64];
        snprintf(name, sizeof name, "case_%d.bin", k);
        if (write_f(dir, name, buf, sizeof *buf, (size_t)B * (nc - 1) + (size_t)m->n_params))
            return 1;
        fprintf(txt, "%g %g %d %.9g %.9g %.9g %.9g %.9g %d %d\n", cases[k].eps, cases[k].reg,
                cases[k].natural, st.loss, st.ce, st.robust, st.tight, st.relu, st.clean_err,
                st.ibp_err);
    }
    fclose(txt);
    free(buf);
    free(grad);
    free(idx);
    trn_work_free(w);
    trn_model_free(m);
    trn_data_free(&d);
    return 0;
}
