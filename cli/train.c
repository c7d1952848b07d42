/* train: certified (IBP) training with the short-warmup recipe, and evaluation.
 *   train [CONFIG.json] [--key=value ...] [--resume]     train (see docs/train.md)
 *   train --eval MODEL [CONFIG.json] [--key=value ...]   clean / PGD / IBP-verified error
 * Flags after the config override it. */
#include <stdio.h>
#include <string.h>

#include "../core/blas_tune.h"
#include "../train/train.h"

static void usage(void)
{
    fprintf(stderr, "usage: train [CONFIG.json] [--key=value ...] [--resume]\n"
                    "       train --eval MODEL [CONFIG.json] [--key=value ...]\n");
}

int main(int argc, char **argv)
{
    blas_tune(argv); /* may re-exec with OPENBLAS_CORETYPE set for this CPU */
    trn_config c;
    trn_config_default(&c);
    err e = {0};
    int resume = 0;
    const char *eval_model = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        }
        if (strcmp(a, "--resume") == 0) {
            resume = 1;
        } else if (strcmp(a, "--eval") == 0) {
            if (i + 1 >= argc) {
                usage();
                return 2;
            }
            eval_model = argv[++i];
        } else if (strncmp(a, "--eval=", 7) == 0) {
            eval_model = a + 7;
        } else if (strncmp(a, "--", 2) == 0) {
            char key[64];
            const char *eq = strchr(a, '=');
            size_t n = eq ? (size_t)(eq - a - 2) : 0;
            if (!eq || n == 0 || n >= sizeof key) {
                fprintf(stderr, "train: expected --key=value, got '%s'\n", a);
                return 2;
            }
            memcpy(key, a + 2, n);
            key[n] = 0;
            for (char *p = key; *p; p++)
                if (*p == '-')
                    *p = '_';
            if (trn_config_set(&c, key, eq + 1, &e)) {
                fprintf(stderr, "train: %s\n", e.msg);
                return 2;
            }
        } else if (trn_config_load_json(&c, a, &e)) {
            fprintf(stderr, "train: %s\n", e.msg);
            return 2;
        }
    }
    if (eval_model) {
        trn_eval_result r;
        if (trn_eval_file(eval_model, &c, &r, &e)) {
            fprintf(stderr, "train: %s\n", e.msg);
            return 1;
        }
        char what[1200];
        snprintf(what, sizeof what, "model %s", eval_model);
        trn_eval_print(stdout, what, c.eps, c.pgd_steps, &r);
        return 0;
    }
    if (trn_run(&c, resume, &e)) {
        fprintf(stderr, "train: %s\n", e.msg);
        return 1;
    }
    return 0;
}
