/* test_train.c: the trainer's pieces on tiny synthetic data: IDX and CIFAR
 * readers on generated files, the IBP initialisation's statistics, the eps
 * schedule at known steps, the lr steps, checkpoint/resume equality, and the
 * exported model (BN folded) against the trainer's own eval-mode forward. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../train/trn.h"

static const char *tmpdir(void)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "/tmp/test_train_%d", (int)getpid());
    mkdir(dir, 0777);
    return dir;
}

static void be32(unsigned char *b, uint32_t v)
{
    b[0] = v >> 24, b[1] = v >> 16, b[2] = v >> 8, b[3] = v;
}

/* n images of h x w with pixel (i, k) = (i * 7 + k) % 256, labels i % nc. */
static void write_idx(const char *dir, const char *prefix, int n, int h, int w, int nc, int gz)
{
    char p[512];
    unsigned char head[16];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
    gzFile f = gzopen(p, gz ? "wb" : "wbT");
    cr_assert(f);
    head[0] = head[1] = 0, head[2] = 8, head[3] = 3;
    be32(head + 4, n), be32(head + 8, h), be32(head + 12, w);
    gzwrite(f, head, 16);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < h * w; k++) {
            unsigned char v = (unsigned char)((i * 7 + k) % 256);
            gzwrite(f, &v, 1);
        }
    gzclose(f);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gz ? ".gz" : "");
    f = gzopen(p, gz ? "wb" : "wbT");
    head[3] = 1;
    be32(head + 4, n);
    gzwrite(f, head, 8);
    for (int i = 0; i < n; i++) {
        unsigned char v = (unsigned char)(i % nc);
        gzwrite(f, &v, 1);
    }
    gzclose(f);
}

Test(train, idx_reader_reads_raw_and_gz_files)
{
    const char *dir = tmpdir();
    for (int gz = 0; gz < 2; gz++) {
        char sub[300];
        snprintf(sub, sizeof sub, "%s/idx%d", dir, gz);
        mkdir(sub, 0777);
        write_idx(sub, "train", 13, 5, 4, 3, gz);
        trn_dataset d;
        err e;
        cr_assert_eq(trn_data_load(sub, NULL, 1, &d, &e), 0, "%s", e.msg);
        cr_assert_eq(d.n, 13);
        cr_assert_eq(d.c, 1);
        cr_assert_eq(d.h, 5);
        cr_assert_eq(d.w, 4);
        cr_assert_eq(d.n_classes, 3);
        cr_assert_eq(d.pixels[6 * 20 + 11], (6 * 7 + 11) % 256);
        cr_assert_eq(d.labels[7], 1);
        float x[2 * 20];
        int y[2];
        int64_t idx[2] = {12, 3};
        trn_data_batch(&d, idx, 2, 0, 0, NULL, x, y);
        cr_assert_eq(y[0], 0);
        cr_assert_float_eq(x[5], ((12 * 7 + 5) % 256) / 255.0f, 1e-7);
        trn_data_free(&d);
    }
}

Test(train, idx_reader_rejects_bad_headers)
{
    const char *dir = tmpdir();
    char p[400];
    snprintf(p, sizeof p, "%s/bad-idx", dir);
    FILE *f = fopen(p, "wb");
    unsigned char head[16] = {0, 0, 8, 3};
    be32(head + 4, 3), be32(head + 8, 100000), be32(head + 12, 2); /* absurd dimension */
    fwrite(head, 1, 16, f);
    fclose(f);
    int64_t dims[3];
    uint8_t *out;
    err e;
    cr_assert_eq(trn_idx_read(p, 3, dims, &out, &e), ERR_SHAPE);
    f = fopen(p, "wb");
    be32(head + 8, 2);
    fwrite(head, 1, 16, f);
    fputc(1, f); /* 1 of 12 data bytes */
    fclose(f);
    cr_assert_eq(trn_idx_read(p, 3, dims, &out, &e), ERR_PARSE);
    cr_assert(strstr(e.msg, "truncated"));
    cr_assert_eq(trn_idx_read(p, 1, dims, &out, &e), ERR_SHAPE); /* rank 3, asked for 1 */
}

Test(train, cifar_reader_and_augmentation)
{
    const char *dir = tmpdir();
    char p[400];
    snprintf(p, sizeof p, "%s/cifar.bin", dir);
    FILE *f = fopen(p, "wb");
    for (int i = 0; i < 3; i++) {
        fputc(i + 4, f);
        for (int k = 0; k < 3072; k++)
            fputc((k / 1024 == 1) ? 200 : (k % 32), f); /* channel 1 constant, others = column */
    }
    fclose(f);
    trn_dataset d;
    err e;
    const char *paths[1] = {p};
    cr_assert_eq(trn_data_load_cifar(paths, 1, &d, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 3);
    cr_assert_eq(d.c, 3);
    cr_assert_eq(d.labels[2], 6);
    float x[3072];
    int y;
    int64_t idx = 1;
    rng r;
    rng_seed(&r, 5);
    int shifted = 0;
    for (int t = 0; t < 20; t++) {
        trn_data_batch(&d, &idx, 1, 1, 4, &r, x, &y);
        /* channel 1 is constant 200, and so is its edge padding */
        float c1 = (200 / 255.0f - d.mean[1]) / d.std[1];
        for (int k = 1024; k < 2048; k++)
            cr_assert(fabsf(x[k] - c1) < 1e-5);
        /* channel 0 row 16: a (possibly flipped) shift of the column ramp */
        float a = x[16 * 32 + 10] * d.std[0] + d.mean[0], b = x[16 * 32 + 11] * d.std[0] + d.mean[0];
        cr_assert(fabsf(fabsf(b - a) - 1 / 255.0f) < 1e-5);
        shifted |= fabsf(a - 10 / 255.0f) > 1e-5;
    }
    cr_assert(shifted, "augmentation never moved the image");
    trn_data_free(&d);
    /* a file that is not a whole number of records */
    f = fopen(p, "ab");
    fputc(0, f);
    fclose(f);
    cr_assert_eq(trn_data_load_cifar(paths, 1, &d, &e), ERR_PARSE);
}

Test(train, ibp_init_has_the_recipe_std_except_the_last_layer)
{
    trn_config c;
    trn_config_default(&c);
    c.width = 16;
    c.linear_size = 64;
    trn_model *m;
    err e;
    cr_assert_eq(trn_model_build(&c, 1, 28, 28, 10, &m, &e), 0);
    rng r;
    rng_seed(&r, 100);
    trn_model_init(m, &r, 1);
    int last = m->n_layers - 1;
    for (int i = 0; i < m->n_layers; i++) {
        const trn_layer *l = &m->layers[i];
        if (l->kind == TRN_BN) {
            cr_assert_eq(m->params[l->w_off], 1.0f);
            cr_assert_eq(m->params[l->b_off], 0.0f);
        }
        if (l->kind != TRN_CONV && l->kind != TRN_LINEAR)
            continue;
        int64_t fan_in = l->n_w / l->n_b;
        double s = 0, s2 = 0, mx = 0;
        for (int64_t k = 0; k < l->n_w; k++) {
            double w = m->params[l->w_off + k];
            s += w, s2 += w * w, mx = fmax(mx, fabs(w));
        }
        double sd = sqrt(s2 / l->n_w - (s / l->n_w) * (s / l->n_w));
        if (i == last) { /* PyTorch default: U(+-1/sqrt(fan_in)), std = bound/sqrt(3) */
            double bound = 1 / sqrt((double)fan_in);
            cr_assert(mx <= bound);
            cr_assert(fabs(sd - bound / sqrt(3)) < 0.15 * bound / sqrt(3));
        } else {
            double want = sqrt(2 * M_PI) / fan_in;
            cr_assert_float_eq(trn_ibp_init_std(fan_in), want, 1e-15);
            cr_assert(fabs(sd - want) < 0.1 * want, "layer %d: std %g, want %g", i, sd, want);
        }
    }
    /* the reference's values for width 4: 0.weight 0.2785, 16.weight 0.0015987 */
    cr_assert_float_eq(trn_ibp_init_std(9), 0.27850, 5e-5);
    cr_assert_float_eq(trn_ibp_init_std(1568), 0.0015987, 1e-7);
    trn_model_free(m);
}

Test(train, eps_schedule_matches_the_reference_values)
{
    /* start 2, length 3, 235 batches per epoch, eps 0.1 (training.md section 5) */
    cr_assert_eq(trn_eps_at(0.1, 2, 3, 235, 0), 0.0);
    cr_assert_eq(trn_eps_at(0.1, 2, 3, 235, 235), 0.0);
    cr_assert(trn_eps_at(0.1, 2, 3, 235, 236) > 0);
    cr_assert_float_eq(trn_eps_at(0.1, 2, 3, 235, 469), 0.0178, 5e-5);
    cr_assert_float_eq(trn_eps_at(0.1, 2, 3, 235, 704), 0.0588, 5e-5);
    cr_assert_float_eq(trn_eps_at(0.1, 2, 3, 235, 939), 0.09983, 5e-6);
    cr_assert_eq(trn_eps_at(0.1, 2, 3, 235, 940), 0.1);
    cr_assert_eq(trn_eps_at(0.1, 2, 3, 235, 5000), 0.1);
    /* quartic before mid (411): eps(step) = alpha (step - 235)^4 */
    double a = trn_eps_at(0.1, 2, 3, 235, 255), b = trn_eps_at(0.1, 2, 3, 235, 275);
    cr_assert_float_eq(b / a, 16.0, 1e-9);
    /* continuous and monotone */
    for (int s = 236; s < 1000; s++)
        cr_assert(trn_eps_at(0.1, 2, 3, 235, s) >= trn_eps_at(0.1, 2, 3, 235, s - 1));
    cr_assert(fabs(trn_eps_at(0.1, 2, 3, 235, 411) - trn_eps_at(0.1, 2, 3, 235, 410)) < 1e-3);
}

Test(train, lr_steps_at_milestones)
{
    trn_config c;
    trn_config_default(&c);
    cr_assert_float_eq(trn_lr_at(&c, 5), 5e-4, 1e-12);
    cr_assert_float_eq(trn_lr_at(&c, 6), 1e-4, 1e-12);
    err e;
    cr_assert_eq(trn_config_set(&c, "milestones", "2,3", &e), 0);
    cr_assert_float_eq(trn_lr_at(&c, 4), 5e-4 * 0.04, 1e-12);
    cr_assert_neq(trn_config_set(&c, "no_such_field", "1", &e), 0);
    cr_assert_neq(trn_config_set(&c, "batch", "-3", &e), 0);
}

Test(train, clip_and_adam_follow_torch)
{
    float g[2] = {30, 40}; /* norm 50 -> scaled to 10 */
    double n = trn_clip_grad_norm(g, 2, 10);
    cr_assert_float_eq(n, 50, 1e-9);
    cr_assert_float_eq(g[0], 6, 1e-5);
    cr_assert_float_eq(g[1], 8, 1e-5);
    trn_adam a;
    err e;
    cr_assert_eq(trn_adam_init(&a, 1, &e), 0);
    float p = 1, gg = 0.5f;
    trn_adam_step(&a, &p, &gg, 0.1, 0.9, 0.999, 1e-8); /* first step moves by lr * sign */
    cr_assert_float_eq(p, 0.9f, 1e-6);
    trn_adam_free(&a);
}

/* A tiny run: IDX files of 10x10 images, a small CNN, 3 epochs. */
static void tiny_config(trn_config *c, const char *data, const char *out)
{
    trn_config_default(c);
    snprintf(c->dataset, sizeof c->dataset, "%s", data);
    snprintf(c->out, sizeof c->out, "%s", out);
    snprintf(c->model, sizeof c->model, "cnn7");
    c->width = 2;
    c->linear_size = 8;
    c->epochs = 3;
    c->sched_start = 2;
    c->sched_length = 1;
    c->batch = 16;
    c->milestones[0] = 2;
    c->pgd_steps = 2;
    c->threads = 2;
}

static void read_file(const char *p, char **buf, long *n)
{
    FILE *f = fopen(p, "rb");
    cr_assert(f, "%s", p);
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(*n + 1);
    cr_assert_eq(fread(*buf, 1, *n, f), (size_t)*n);
    fclose(f);
}

/* An uninterrupted run and a run stopped after epoch 1 and resumed end with
 * the same checkpoint and model, for both bound methods. */
static void resume_check(const char *method)
{
    const char *dir = tmpdir();
    char data[400], outa[400], outb[400], p[500];
    snprintf(data, sizeof data, "%s/tiny", dir);
    mkdir(data, 0777);
    write_idx(data, "train", 70, 10, 10, 3, 1);
    write_idx(data, "t10k", 20, 10, 10, 3, 0);
    snprintf(outa, sizeof outa, "%s/run_a_%s", dir, method);
    snprintf(outb, sizeof outb, "%s/run_b_%s", dir, method);
    trn_config c;
    err e;
    tiny_config(&c, data, outa);
    snprintf(c.method, sizeof c.method, "%s", method);
    c.sched_length = 2; /* epochs 2-3 ramp: CROWN-IBP mixes in both */
    freopen("/dev/null", "w", stderr);
    cr_assert_eq(trn_run(&c, 0, &e), 0, "%s", e.msg);
    /* run b: stop after 1 epoch, then resume to 3 */
    tiny_config(&c, data, outb);
    snprintf(c.method, sizeof c.method, "%s", method);
    c.sched_length = 2;
    c.epochs = 1;
    cr_assert_eq(trn_run(&c, 0, &e), 0, "%s", e.msg);
    c.epochs = 3;
    cr_assert_eq(trn_run(&c, 1, &e), 0, "%s", e.msg);
    char *a, *b;
    long na, nb;
    snprintf(p, sizeof p, "%s/checkpoint.bin", outa);
    read_file(p, &a, &na);
    snprintf(p, sizeof p, "%s/checkpoint.bin", outb);
    read_file(p, &b, &nb);
    cr_assert_eq(na, nb);
    cr_assert(memcmp(a, b, na) == 0, "%s: checkpoints differ after resume", method);
    free(a), free(b);
    snprintf(p, sizeof p, "%s/model.json", outa);
    read_file(p, &a, &na);
    snprintf(p, sizeof p, "%s/model.json", outb);
    read_file(p, &b, &nb);
    cr_assert(na == nb && memcmp(a, b, na) == 0, "%s: exported models differ after resume", method);
    free(a), free(b);
}

Test(train, resume_from_checkpoint_is_bit_identical)
{
    resume_check("ibp");
    resume_check("crown-ibp");
    /* and CROWN-IBP did change the training */
    char p[500], *a, *b;
    long na, nb;
    snprintf(p, sizeof p, "%s/run_a_ibp/model.json", tmpdir());
    read_file(p, &a, &na);
    snprintf(p, sizeof p, "%s/run_a_crown-ibp/model.json", tmpdir());
    read_file(p, &b, &nb);
    cr_assert(na != nb || memcmp(a, b, na) != 0, "crown-ibp trained the same model as ibp");
    free(a), free(b);
}

Test(train, exported_model_matches_the_trainer_forward)
{
    trn_config c;
    trn_config_default(&c);
    c.width = 3;
    c.linear_size = 7;
    trn_model *m;
    err e;
    cr_assert_eq(trn_model_build(&c, 1, 12, 12, 4, &m, &e), 0);
    rng r;
    rng_seed(&r, 9);
    trn_model_init(m, &r, 1);
    for (int64_t k = 0; k < m->n_params; k++) /* non-trivial BN affine parameters */
        m->params[k] += (float)(0.2 * (2 * rng_uniform(&r) - 1));
    for (int64_t k = 0; k < m->n_stats; k++)
        m->stats[k] = (float)(0.5 + rng_uniform(&r)); /* running means and variances */
    m->mean[0] = 0.25f, m->std[0] = 0.5f;             /* exported as Sub/Div */
    nn_graph *g;
    cr_assert_eq(trn_model_to_graph(m, &g, &e), 0, "%s", e.msg);
    cr_assert_eq(nn_graph_finalize(g, &e), 0, "%s", e.msg);
    /* round trip through the JSON writer and reader */
    char p[400];
    snprintf(p, sizeof p, "%s/model.json", tmpdir());
    cr_assert_eq(nn_save_json(g, p, &e), 0, "%s", e.msg);
    nn_graph *g2;
    cr_assert_eq(nn_load(p, &g2, &e), 0, "%s", e.msg);
    trn_work *w = trn_work_new(m, 5, 1);
    float *x = trn_work_input(w, 0);
    for (int i = 0; i < 5 * 144; i++)
        x[i] = (float)((rng_uniform(&r) - 0.25) / 0.5); /* normalised inputs */
    trn_pass_opts o = {.train = 0, .box_eps = 0.05, .natural = 1};
    trn_step_stats st;
    cr_assert_eq(trn_pass(m, w, 5, &o, NULL, &st), 0);
    const float *z = trn_work_logits(w);
    for (int n = 0; n < 5; n++) {
        double xin[144], y[4];
        for (int i = 0; i < 144; i++)
            xin[i] = x[n * 144 + i] * 0.5 + 0.25; /* back to pixel units */
        cr_assert_eq(nn_eval(g2, xin, y, &e), 0, "%s", e.msg);
        for (int j = 0; j < 4; j++)
            cr_assert(fabs(y[j] - z[n * 4 + j]) < 1e-4 * (1 + fabs(y[j])), "image %d logit %d: %g vs %g",
                      n, j, y[j], z[n * 4 + j]);
    }
    /* read back into the trainer's layers: the same logits */
    trn_model *m2;
    cr_assert_eq(trn_model_from_graph(g2, &m2, &e), 0, "%s", e.msg);
    trn_work *w2 = trn_work_new(m2, 5, 1);
    memcpy(trn_work_input(w2, 0), x, 5 * 144 * sizeof(float));
    cr_assert_eq(trn_pass(m2, w2, 5, &o, NULL, &st), 0);
    for (int i = 0; i < 20; i++)
        cr_assert(fabsf(trn_work_logits(w2)[i] - z[i]) < 1e-4f * (1 + fabsf(z[i])));
    trn_work_free(w2);
    trn_model_free(m2);
    trn_work_free(w);
    nn_graph_free(g);
    nn_graph_free(g2);
    trn_model_free(m);
}

Test(train, input_gradient_matches_finite_differences)
{
    const char *models[2] = {"mlp", "cnn7"};
    for (int t = 0; t < 2; t++) {
        trn_config c;
        trn_config_default(&c);
        snprintf(c.model, sizeof c.model, "%s", models[t]);
        c.width = 2, c.linear_size = 5, c.hidden[0] = 6, c.n_hidden = 1;
        trn_model *m;
        err e;
        cr_assert_eq(trn_model_build(&c, 1, 6, 6, 3, &m, &e), 0);
        rng r;
        rng_seed(&r, 4);
        trn_model_init(m, &r, 0);
        trn_work *w = trn_work_new(m, 2, 1);
        float *x = trn_work_input(w, 0), gx[72], x0[72];
        int *y = trn_work_labels(w);
        y[0] = 1, y[1] = 2;
        for (int i = 0; i < 72; i++)
            x0[i] = x[i] = (float)rng_uniform(&r);
        cr_assert_eq(trn_input_grad(m, w, 2, gx), 0);
        /* trn_input_grad's objective: the sum over the batch of the per-image CE */
        for (int i = 0; i < 72; i += 5) {
            double h = 1e-2, f[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                memcpy(x, x0, sizeof x0);
                x[i] += (float)(sgn ? -h : h);
                trn_pass_opts o = {.train = 0, .natural = 1};
                trn_step_stats st;
                cr_assert_eq(trn_pass(m, w, 2, &o, NULL, &st), 0);
                f[sgn] = st.ce * 2;
            }
            double num = (f[0] - f[1]) / (2 * h);
            cr_assert(fabs(num - gx[i]) < 0.02 * fabs(num) + 2e-3, "%s x[%d]: analytic %g numeric %g",
                      models[t], i, gx[i], num);
        }
        trn_work_free(w);
        trn_model_free(m);
    }
}

Test(train, config_reads_json_and_flags)
{
    char p[400];
    snprintf(p, sizeof p, "%s/cfg.json", tmpdir());
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"_comment\": \"x\", \"model\": \"mlp\", \"hidden\": [32, 16], \"eps\": 0.3,"
               " \"milestones\": [3, 7], \"reg\": false}");
    fclose(f);
    trn_config c;
    trn_config_default(&c);
    err e;
    cr_assert_eq(trn_config_load_json(&c, p, &e), 0, "%s", e.msg);
    cr_assert_str_eq(c.model, "mlp");
    cr_assert_eq(c.n_hidden, 2);
    cr_assert_eq(c.hidden[1], 16);
    cr_assert_float_eq(c.eps, 0.3, 1e-15);
    cr_assert_eq(c.n_milestones, 2);
    cr_assert_eq(c.milestones[1], 7);
    cr_assert_eq(c.reg, 0);
    f = fopen(p, "w");
    fprintf(f, "{\"batch\": \"many\"}");
    fclose(f);
    cr_assert_eq(trn_config_load_json(&c, p, &e), ERR_ARG);
    cr_assert(strstr(e.msg, "batch"), "%s", e.msg);
    f = fopen(p, "w");
    fprintf(f, "{\"batch\": 12");
    fclose(f);
    cr_assert_eq(trn_config_load_json(&c, p, &e), ERR_PARSE);
}
