/* trn_run.c: a training job end to end: data, model, the epoch loop with the
 * recipe's schedules (eps ramp, regulariser window and weight, lr steps), a
 * progress line on stderr, evaluation and a CSV row per epoch, a checkpoint
 * after every epoch (resumable bit-for-bit), and the final model exported with
 * BatchNorm folded in. */
#include "trn.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int make_dirs(const char *path, err *e)
{
    char buf[1100];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return err_set(e, ERR_IO, "%s: cannot create directory", buf);
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return err_set(e, ERR_IO, "%s: cannot create directory", buf);
    return 0;
}

static void progress(int epoch, int epochs, int64_t done, int64_t total, double t0, double loss,
                     double eps, int final)
{
    double el = now_s() - t0, rate = el > 0 ? done / el : 0;
    double eta = rate > 0 ? (total - done) / rate : 0;
    int width = 24, fill = total > 0 ? (int)(width * done / total) : width;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = 0;
    fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld %6.0f img/s %s %4.0fs loss %.4f eps %.5f  ",
            epoch, epochs, bar, (long long)done, (long long)total, rate, final ? "took" : "ETA ",
            final ? el : eta, loss, eps);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

int trn_load_data(const trn_config *c, int train, trn_dataset *d, err *e)
{
    int rc = trn_data_load(c->dataset, c->data_dir, train, d, e);
    if (rc)
        return rc;
    int64_t lim = train ? c->train_limit : c->test_limit;
    if (lim > 0 && lim < d->n)
        d->n = lim;
    return 0;
}

/* One training epoch; fills the sums of its step statistics. */
typedef struct epoch_sums {
    double loss, ce, robust, tight, relu, seconds, cpu_seconds, eps_end;
    int64_t n, clean_err, ibp_err, batches;
} epoch_sums;

static int train_epoch(const trn_config *c, trn_model *m, trn_work *w, trn_state *s,
                       const trn_dataset *d, int64_t *idx, float *grad, int epoch, epoch_sums *es,
                       err *e)
{
    int B = c->batch;
    int64_t E = (d->n + B - 1) / B;
    double lr = trn_lr_at(c, epoch);
    int reg_on = c->reg && epoch <= c->sched_start + c->sched_length - 1;
    int aug = c->augment >= 0 ? c->augment : d->augment;
    memset(es, 0, sizeof *es);
    /* A fresh permutation each epoch (identity, then shuffled), so the order
     * depends only on the RNG state a checkpoint restores. */
    for (int64_t i = 0; i < d->n; i++)
        idx[i] = i;
    trn_rng_shuffle(&s->rng, idx, d->n);
    double t0 = now_s(), c0 = cpu_s(), last_print = 0;
    for (int64_t b = 0; b < E; b++) {
        int64_t step = s->step++;
        double eps = trn_eps_at(c->eps, c->sched_start, c->sched_length, E, step);
        int n = (int)(b + 1 < E ? B : d->n - b * B);
        trn_data_batch(d, idx + b * B, n, aug, c->pad, &s->rng, trn_work_input(w, 0),
                       trn_work_labels(w));
        trn_pass_opts o = {.train = 1, .tol = c->tol};
        o.natural = eps < 1e-50;
        o.box_eps = o.natural ? (reg_on ? c->min_eps_reg : 0) : eps;
        o.reg_weight = reg_on && c->eps > 0 ? c->reg_lambda * (1 - eps / c->eps) : 0;
        /* CROWN-IBP's weight falls from 1 to 0 over the ramp; pure IBP from
         * (1 - 1e-5) eps_max on, as in the original code */
        if (strcmp(c->method, "crown-ibp") == 0 && c->eps > 0 && !o.natural) {
            o.crown = (c->eps - eps) / c->eps;
            o.crown = o.crown < 1e-5 ? 0 : o.crown;
        }
        trn_step_stats st;
        int rc = trn_pass(m, w, n, &o, grad, &st);
        if (rc)
            return err_set(e, rc, "train: epoch %d batch %lld: pass failed", epoch, (long long)b);
        if (!isfinite(st.loss))
            return err_set(e, ERR_VALUE, "train: epoch %d batch %lld: loss is %g (diverged)", epoch,
                           (long long)b, st.loss);
        trn_clip_grad_norm(grad, m->n_params, c->grad_clip);
        trn_adam_step(&s->adam, m->params, grad, lr, 0.9, 0.999, 1e-8);
        es->loss += st.loss * n;
        es->ce += st.ce * n;
        es->robust += st.robust * n;
        es->tight += st.tight * n;
        es->relu += st.relu * n;
        es->clean_err += st.clean_err;
        es->ibp_err += st.ibp_err;
        es->n += n;
        es->batches++;
        es->eps_end = eps;
        double t = now_s();
        if (t - last_print > 0.5 || b + 1 == E) {
            progress(epoch, c->epochs, es->n, d->n, t0, es->loss / es->n, eps, b + 1 == E);
            last_print = t;
        }
    }
    es->seconds = now_s() - t0;
    es->cpu_seconds = cpu_s() - c0;
    return 0;
}

void trn_eval_print(FILE *f, const char *what, double eps, int pgd_steps, const trn_eval_result *r)
{
    fprintf(f, "%s, eps %g, %lld test images:\n", what, eps, (long long)r->n);
    fprintf(f, "  trainer (float):   clean err %6.2f %%  PGD-%d err %6.2f %%  IBP-verified err %6.2f %%"
               "  (%.1f s)\n",
            100 * r->clean_err, pgd_steps, 100 * r->pgd_err, 100 * r->ibp_err, r->seconds);
    if (r->v_ibp_err >= 0) {
        fprintf(f, "  verifier (bound/): clean err %6.2f %%  IBP-verified err %6.2f %% (%lld images)",
                100 * r->v_clean_err, 100 * r->v_ibp_err, (long long)r->v_n);
        if (r->v_crown_err >= 0)
            fprintf(f, "  CROWN-verified err %6.2f %% (first %lld)", 100 * r->v_crown_err,
                    (long long)r->v_n_crown);
        fprintf(f, "  (%.1f s)\n", r->v_seconds);
    }
}

/* Export the model (BN folded), write it, and verify it through bound/. */
static int export_and_verify(const trn_model *m, const char *path, const trn_dataset *te,
                             const trn_config *c, trn_eval_result *r, err *e)
{
    nn_graph *g;
    int rc = trn_model_to_graph(m, &g, e);
    if (rc)
        return rc;
    if (!(rc = nn_graph_finalize(g, e)) && !(rc = nn_save_json(g, path, e)))
        rc = trn_verify_into(g, te, c, r, e);
    nn_graph_free(g);
    return rc;
}

int trn_run(const trn_config *c, int resume, err *e)
{
    trn_dataset tr = {0}, te = {0};
    trn_model *m = NULL;
    trn_work *w = NULL;
    trn_state s;
    memset(&s, 0, sizeof s);
    int64_t *idx = NULL;
    float *grad = NULL;
    FILE *csv = NULL;
    char path[1200];
    double train_wall = 0, train_cpu = 0;
    int rc;
    /* The trainer splits batches over its own threads; each calls sgemm on its
     * share, so OpenBLAS itself must stay single-threaded. */
    openblas_set_num_threads(1);
    int crown = strcmp(c->method, "crown-ibp") == 0;
    if (!crown && strcmp(c->method, "ibp") != 0)
        return err_set(e, ERR_ARG, "train: unknown method '%s' (ibp or crown-ibp)", c->method);
    if ((rc = trn_load_data(c, 1, &tr, e)) || (rc = trn_load_data(c, 0, &te, e)))
        goto done;
    if ((rc = trn_model_build(c, tr.c, tr.h, tr.w, tr.n_classes, &m, e)))
        goto done;
    memcpy(m->mean, tr.mean, sizeof m->mean);
    memcpy(m->std, tr.std, sizeof m->std);
    rng_seed(&s.rng, c->seed);
    trn_model_init(m, &s.rng, c->ibp_init);
    if ((rc = trn_adam_init(&s.adam, m->n_params, e)) || (rc = make_dirs(c->out, e)))
        goto done;
    snprintf(path, sizeof path, "%s/checkpoint.bin", c->out);
    if (resume && (rc = trn_ckpt_load(path, m, &s, e)))
        goto done;
    w = trn_work_new(m, c->batch, c->threads);
    idx = malloc((size_t)tr.n * sizeof *idx);
    grad = malloc((size_t)m->n_params * sizeof *grad);
    if (!w || !idx || !grad) {
        rc = err_set(e, ERR_NOMEM, "train: out of memory for the work buffers");
        goto done;
    }
    snprintf(path, sizeof path, "%s/log.csv", c->out);
    csv = fopen(path, resume ? "a" : "w");
    if (!csv) {
        rc = err_set(e, ERR_IO, "%s: cannot write", path);
        goto done;
    }
    if (!resume)
        fprintf(csv, "epoch,eps,lr,train_loss,train_ce,train_robust,train_clean_err,train_ibp_err,"
                     "reg_tightness,reg_relu,test_eps,test_clean_err,test_ibp_err,train_seconds,"
                     "train_cpu_seconds,test_seconds\n");
    fprintf(stderr, "train: %s, %lld train / %lld test images, model %s (%lld parameters), "
                    "openblas core %s, %d threads\n",
            c->dataset, (long long)tr.n, (long long)te.n, c->model, (long long)m->n_params,
            openblas_get_corename(), c->threads);
    for (int epoch = s.epoch + 1; epoch <= c->epochs; epoch++) {
        epoch_sums es;
        if ((rc = train_epoch(c, m, w, &s, &tr, idx, grad, epoch, &es, e)))
            goto done;
        trn_eval_result r;
        /* at eps 0 the interval pass runs at min_eps_reg, as in the reference's log */
        double test_eps = es.eps_end < 1e-50 && c->reg ? c->min_eps_reg : es.eps_end;
        if ((rc = trn_evaluate(m, &te, test_eps, 0, 0, c->batch, c->threads, &r, e)))
            goto done;
        s.epoch = epoch;
        snprintf(path, sizeof path, "%s/checkpoint.bin", c->out);
        if ((rc = trn_ckpt_save(path, m, &s, e)))
            goto done;
        double n = (double)es.n;
        fprintf(csv, "%d,%.6g,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6g,%.6f,%.6f,%.2f,%.2f,%.2f\n",
                epoch, es.eps_end, trn_lr_at(c, epoch), es.loss / n, es.ce / n, es.robust / n,
                es.clean_err / n, es.ibp_err / n, es.tight / n, es.relu / n, test_eps,
                r.clean_err, r.ibp_err, es.seconds, es.cpu_seconds, r.seconds);
        train_wall += es.seconds;
        train_cpu += es.cpu_seconds;
        fflush(csv);
        fprintf(stderr,
                "epoch %d: %.1f s (cpu %.1f), train loss %.4f clean err %.4f ibp err %.4f | test eps %.5f "
                "clean err %.4f ibp err %.4f (%.1f s)\n",
                epoch, es.seconds, es.cpu_seconds, es.loss / n, es.clean_err / n, es.ibp_err / n, test_eps,
                r.clean_err, r.ibp_err, r.seconds);
    }
    {
        trn_eval_result r;
        if ((rc = trn_evaluate(m, &te, c->eps, c->pgd_steps, 0, c->batch, c->threads, &r, e)))
            goto done;
        snprintf(path, sizeof path, "%s/model.json", c->out);
        if ((rc = export_and_verify(m, path, &te, c, &r, e)))
            goto done;
        fprintf(stderr, "train: model written to %s\n", path);
        trn_eval_print(stderr, "final model", c->eps, c->pgd_steps, &r);
        snprintf(path, sizeof path, "%s/final.txt", c->out);
        FILE *f = fopen(path, "w");
        if (f) {
            trn_eval_print(f, "final model", c->eps, c->pgd_steps, &r);
            fprintf(f, "train seconds %.1f (process cpu %.1f)\n", train_wall, train_cpu);
            fclose(f);
        }
    }
done:
    if (csv)
        fclose(csv);
    free(idx);
    free(grad);
    trn_work_free(w);
    trn_adam_free(&s.adam);
    trn_model_free(m);
    trn_data_free(&tr);
    trn_data_free(&te);
    return rc;
}
