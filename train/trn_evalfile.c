/* trn_evalfile.c: `train --eval MODEL`: a trainer checkpoint (.bin, with the
 * config's architecture) or an exported model file, evaluated on the config's
 * test set. A model file (Conv / Gemm / Relu / Flatten chain, optional Sub/Div
 * input normalisation) is read back into the trainer's layer list, so the same
 * float code computes clean, PGD and IBP numbers for both. */
#include "trn.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *t)
{
    size_t a = strlen(s), b = strlen(t);
    return a >= b && strcmp(s + a - b, t) == 0;
}

int trn_eval_file(const char *path, const trn_config *c, trn_eval_result *r, err *e)
{
    trn_dataset te = {0};
    trn_model *m = NULL;
    nn_graph *g = NULL;
    openblas_set_num_threads(1); /* see trn_run */
    int rc = trn_data_load(c->dataset, c->data_dir, 0, &te, e);
    if (rc)
        return rc;
    if (c->test_limit > 0 && c->test_limit < te.n)
        te.n = c->test_limit;
    if (ends_with(path, ".bin")) {
        trn_state s;
        memset(&s, 0, sizeof s);
        if ((rc = trn_model_build(c, te.c, te.h, te.w, te.n_classes, &m, e)) ||
            (rc = trn_adam_init(&s.adam, m->n_params, e)))
            goto done;
        memcpy(m->mean, te.mean, sizeof m->mean);
        memcpy(m->std, te.std, sizeof m->std);
        rc = trn_ckpt_load(path, m, &s, e);
        trn_adam_free(&s.adam);
        if (!rc && !(rc = trn_model_to_graph(m, &g, e)))
            rc = nn_graph_finalize(g, e);
    } else {
        if ((rc = nn_load(path, &g, e)))
            goto done;
        rc = trn_model_from_graph(g, &m, e);
    }
    if (rc)
        goto done;
    if (c->export_path[0]) {
        size_t n = strlen(c->export_path);
        int onnx = n >= 5 && strcmp(c->export_path + n - 5, ".onnx") == 0;
        rc = onnx ? nn_save_onnx(g, c->export_path, e) : nn_save_json(g, c->export_path, e);
        if (rc)
            goto done;
        fprintf(stderr, "train: model written to %s\n", c->export_path);
    }
    if (m->in_c != te.c || m->in_h != te.h || m->in_w != te.w) {
        rc = err_set(e, ERR_SHAPE, "%s: model input %dx%dx%d, dataset images %dx%dx%d", path,
                     m->in_c, m->in_h, m->in_w, te.c, te.h, te.w);
        goto done;
    }
    if (!(rc = trn_evaluate(m, &te, c->eps, c->pgd_steps, 0, c->batch, c->threads, r, e)))
        rc = trn_verify_into(g, &te, c, r, e);
done:
    nn_graph_free(g);
    trn_model_free(m);
    trn_data_free(&te);
    return rc;
}
