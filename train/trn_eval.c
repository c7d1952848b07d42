/* trn_eval.c: test-set evaluation in eval mode (BN running statistics): clean
 * error, PGD error (L_inf, sign steps of 2.5 eps / steps from the clean image,
 * an image counts as broken if any iterate is misclassified) and IBP-verified
 * error (some margin lower bound z_y - z_j <= 0, spec folded into the last
 * layer as in training). */
#include "trn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void misclassified(const float *z, const int *y, int B, int nc, uint8_t *bad)
{
    for (int n = 0; n < B; n++)
        for (int j = 0; j < nc; j++)
            if (j != y[n] && z[(size_t)n * nc + j] >= z[(size_t)n * nc + y[n]])
                bad[n] = 1;
}

static int pgd_batch(trn_model *m, trn_work *w, int B, double eps, int steps, const float *x0,
                     float *gx, uint8_t *bad)
{
    int C = m->in_c;
    int64_t HW = (int64_t)m->in_h * m->in_w, sz = C * HW;
    float *x = trn_work_input(w, 0);
    for (int it = 0; it <= steps; it++) {
        int rc = trn_input_grad(m, w, B, gx);
        if (rc)
            return rc;
        misclassified(trn_work_logits(w), trn_work_labels(w), B, m->n_classes, bad);
        if (it == steps)
            break;
        for (int n = 0; n < B; n++)
            for (int c = 0; c < C; c++) {
                float e = (float)(eps / m->std[c]), a = (float)(2.5 * eps / steps / m->std[c]);
                float lo = (0.0f - m->mean[c]) / m->std[c], hi = (1.0f - m->mean[c]) / m->std[c];
                for (int64_t k = 0; k < HW; k++) {
                    size_t o = (size_t)n * sz + c * HW + k;
                    float v = x[o] + (gx[o] > 0 ? a : (gx[o] < 0 ? -a : 0));
                    v = fminf(fmaxf(v, x0[o] - e), x0[o] + e);
                    x[o] = fminf(fmaxf(v, lo), hi);
                }
            }
    }
    return 0;
}

int trn_evaluate(trn_model *m, const trn_dataset *d, double eps, int pgd_steps, int64_t limit,
                 int batch, int nthreads, trn_eval_result *r, err *e)
{
    double t0 = now_s();
    memset(r, 0, sizeof *r);
    r->v_clean_err = r->v_ibp_err = r->v_crown_err = -1;
    int64_t n_total = limit > 0 && limit < d->n ? limit : d->n;
    trn_work *w = trn_work_new(m, batch, nthreads);
    int64_t *idx = malloc((size_t)batch * sizeof *idx);
    size_t in_sz = (size_t)batch * m->in_c * m->in_h * m->in_w;
    float *x0 = malloc(in_sz * sizeof *x0), *gx = malloc(in_sz * sizeof *gx);
    uint8_t *bad = malloc((size_t)batch);
    int rc = 0;
    if (!w || !idx || !x0 || !gx || !bad) {
        rc = err_set(e, ERR_NOMEM, "eval: out of memory");
        goto done;
    }
    int64_t clean = 0, ibp = 0, pgd = 0;
    for (int64_t s = 0; s < n_total; s += batch) {
        int B = (int)(n_total - s < batch ? n_total - s : batch);
        for (int i = 0; i < B; i++)
            idx[i] = s + i;
        trn_data_batch(d, idx, B, 0, 0, NULL, trn_work_input(w, 0), trn_work_labels(w));
        trn_pass_opts o = {.train = 0, .box_eps = eps, .natural = 1};
        trn_step_stats st;
        if ((rc = trn_pass(m, w, B, &o, NULL, &st)))
            goto done;
        clean += st.clean_err;
        ibp += eps > 0 ? st.ibp_err : st.clean_err;
        if (pgd_steps > 0 && eps > 0) {
            memcpy(x0, trn_work_input(w, 0), (size_t)B * m->in_c * m->in_h * m->in_w * sizeof *x0);
            memset(bad, 0, (size_t)B);
            if ((rc = pgd_batch(m, w, B, eps, pgd_steps, x0, gx, bad)))
                goto done;
            for (int i = 0; i < B; i++)
                pgd += bad[i];
        } else {
            pgd += st.clean_err;
        }
    }
    r->n = n_total;
    r->clean_err = (double)clean / n_total;
    r->ibp_err = (double)ibp / n_total;
    r->pgd_err = (double)pgd / n_total;
    r->seconds = now_s() - t0;
done:
    if (rc && rc != ERR_NOMEM && e && !e->msg[0])
        err_set(e, rc, "eval: pass failed");
    trn_work_free(w);
    free(idx);
    free(x0);
    free(gx);
    free(bad);
    return rc;
}
