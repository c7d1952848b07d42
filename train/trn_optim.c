/* trn_optim.c: the optimiser side of the recipe: Adam (as torch.optim.Adam),
 * global gradient-norm clipping (as clip_grad_norm_), step learning-rate decay
 * (MultiStepLR) and the epsilon ramp (auto_LiRPA's SmoothedScheduler: eps = 0
 * until `init`, then alpha (step - init)^4 up to `mid`, then linear to eps_max
 * at `final`, alpha chosen so the slope is continuous at mid). */
#include "trn.h"

#include <math.h>
#include <stdlib.h>

int trn_adam_init(trn_adam *a, int64_t n, err *e)
{
    a->n = n;
    a->t = 0;
    a->m = calloc((size_t)n, sizeof(float));
    a->v = calloc((size_t)n, sizeof(float));
    if (!a->m || !a->v) {
        trn_adam_free(a);
        return err_set(e, ERR_NOMEM, "train: out of memory for the optimiser state");
    }
    return 0;
}

void trn_adam_free(trn_adam *a)
{
    free(a->m);
    free(a->v);
    a->m = a->v = NULL;
}

void trn_adam_step(trn_adam *a, float *p, const float *g, double lr, double b1, double b2,
                   double eps)
{
    a->t++;
    double bc1 = 1 - pow(b1, (double)a->t), bc2 = 1 - pow(b2, (double)a->t);
    float step = (float)(lr / bc1), sbc2 = (float)sqrt(bc2);
    float fb1 = (float)b1, fb2 = (float)b2, feps = (float)eps;
    for (int64_t k = 0; k < a->n; k++) {
        a->m[k] = fb1 * a->m[k] + (1 - fb1) * g[k];
        a->v[k] = fb2 * a->v[k] + (1 - fb2) * g[k] * g[k];
        float denom = sqrtf(a->v[k]) / sbc2 + feps;
        p[k] -= step * a->m[k] / denom;
    }
}

double trn_clip_grad_norm(float *g, int64_t n, double max_norm)
{
    double s = 0;
    for (int64_t k = 0; k < n; k++)
        s += (double)g[k] * g[k];
    double norm = sqrt(s), coef = max_norm / (norm + 1e-6);
    if (coef < 1)
        for (int64_t k = 0; k < n; k++)
            g[k] = (float)(g[k] * coef);
    return norm;
}

double trn_lr_at(const trn_config *c, int epoch)
{
    double lr = c->lr;
    for (int i = 0; i < c->n_milestones; i++)
        if (epoch > c->milestones[i])
            lr *= c->lr_decay;
    return lr;
}

double trn_eps_at(double eps_max, int start, int length, int64_t E, int64_t step)
{
    const double beta = 4.0, mid_point = 0.25;
    int64_t init = (int64_t)(start - 1) * E, final = (int64_t)(start + length - 1) * E;
    if (step <= init)
        return 0.0;
    if (final <= init)
        return eps_max;
    int64_t mid = init + (int64_t)floor((double)(final - init) * mid_point);
    if (mid <= init) /* ramp too short for the quartic part: linear */
        return eps_max * fmin(1.0, (double)(step - init) / (double)(final - init));
    double span = (double)(mid - init);
    double alpha = eps_max / ((double)(final - mid) * beta * pow(span, beta - 1) + pow(span, beta));
    if (step < mid)
        return alpha * pow((double)(step - init), beta);
    double at_mid = alpha * pow(span, beta);
    double e = at_mid + (eps_max - at_mid) * (double)(step - mid) / (double)(final - mid);
    return e < eps_max ? e : eps_max;
}
