/* verify: decide a VNN-COMP property, print bounds, or evaluate a network.
 * A thin main over the library: parse arguments, call models/, specs/,
 * bound/ and bab/, print in the documented formats (README.md). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bab/bab.h"
#include "../bound/bound.h"
#include "../core/blas_tune.h"
#include "../core/heap.h"
#include "../core/clock.h"

#include <unistd.h>

/* An interrupted run (SIGINT, SIGTERM: e.g. an outer time limit) still leaves
 * an answer: the handler writes "unknown" to the result file and stdout with
 * async-signal-safe calls only, then exits. */
static const char *volatile interrupt_result_path;

static void on_interrupt(int sig)
{
    static const char answer[] = "unknown\n";
    const char *path = interrupt_result_path;
    if (path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, answer, sizeof answer - 1);
            (void)w;
            close(fd);
        }
    }
    ssize_t w = write(STDOUT_FILENO, answer, sizeof answer - 1);
    (void)w;
    _exit(128 + sig);
}

static void catch_interrupts(const char *result_path)
{
    interrupt_result_path = result_path;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static const char usage[] =
    "usage: verify MODEL SPEC [--timeout S] [--result FILE] [--seed N] [--stats] [--verbose]\n"
    "       [--threads N] [--batch B] [--split smear|width|mix] [--memory MB]\n"
    "              [--strategy auto|input|star|relu|none] [--branching fsb|babsr]\n"
    "       verify --bounds ibp|crown MODEL SPEC\n"
    "       verify --eval MODEL          (input vectors on stdin, one per line)\n"
    "       verify --check RESULT MODEL SPEC   (re-check a sat result file's counterexample)\n"
    "MODEL: .onnx or .json (optionally .gz); SPEC: .vnnlib (optionally .gz).\n"
    "Prints sat (with a counterexample), unsat, unknown or timeout; exit status 0 for any answer.\n";

static int fail(const char *msg)
{
    fprintf(stderr, "verify: %s\n", msg);
    return 1;
}

/* ---- --eval: one input vector per line in, one output vector per line out ---- */
static int run_eval(const char *model_path)
{
    err e = { 0 };
    nn_graph *g = NULL;
    if (nn_load(model_path, &g, &e))
        return fail(e.msg);
    int64_t nx = nn_input_size(g), ny = nn_output_size(g);
    double *x = malloc((size_t)nx * sizeof *x), *y = malloc((size_t)ny * sizeof *y);
    size_t cap = 0;
    char *line = NULL;
    int status = 0;
    long lineno = 0;
    if (!x || !y) {
        status = fail("out of memory");
        goto out;
    }
    while (getline(&line, &cap, stdin) >= 0) {
        lineno++;
        char *s = line, *end;
        int64_t n = 0;
        for (;;) {
            while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
                s++;
            if (!*s)
                break;
            errno = 0;
            double v = strtod(s, &end);
            if (end == s) {
                fprintf(stderr, "verify: stdin:%ld: not a number near '%.20s'\n", lineno, s);
                status = 1;
                goto out;
            }
            if (n < nx)
                x[n] = v;
            n++;
            s = end;
        }
        if (n == 0)
            continue;
        if (n != nx) {
            fprintf(stderr, "verify: stdin:%ld: %lld values, the network %s takes %lld\n", lineno,
                    (long long)n, model_path, (long long)nx);
            status = 1;
            goto out;
        }
        if (nn_eval(g, x, y, &e)) {
            status = fail(e.msg);
            goto out;
        }
        for (int64_t j = 0; j < ny; j++)
            printf(j ? " %.17g" : "%.17g", y[j]);
        printf("\n");
    }
out:
    free(line);
    free(x);
    free(y);
    nn_graph_free(g);
    return status;
}

static int load_both(const char *model_path, const char *spec_path, nn_graph **g, spec_property **p)
{
    err e = { 0 };
    if (nn_load(model_path, g, &e))
        return fail(e.msg);
    if (spec_parse_vnnlib(spec_path, p, &e)) {
        nn_graph_free(*g);
        return fail(e.msg);
    }
    if ((*p)->n_x != nn_input_size(*g) || (*p)->n_y != nn_output_size(*g)) {
        fprintf(stderr, "verify: %s declares %lld inputs and %lld outputs, but %s has %lld and %lld\n",
                spec_path, (long long)(*p)->n_x, (long long)(*p)->n_y, model_path,
                (long long)nn_input_size(*g), (long long)nn_output_size(*g));
        nn_graph_free(*g);
        spec_free(*p);
        return 1;
    }
    return 0;
}

/* ---- --bounds: JSON bounds of every output over each region's box ---- */
static int run_bounds(const char *method, const char *model_path, const char *spec_path)
{
    bnd_method m;
    if (strcmp(method, "ibp") == 0)
        m = BND_IBP;
    else if (strcmp(method, "crown") == 0)
        m = BND_CROWN;
    else
        return fail("--bounds takes ibp or crown");
    nn_graph *g;
    spec_property *p;
    if (load_both(model_path, spec_path, &g, &p))
        return 1;
    err e = { 0 };
    bnd_net *net = NULL;
    int status = 0;
    int64_t ny = p->n_y;
    double *lb = malloc((size_t)ny * sizeof *lb), *ub = malloc((size_t)ny * sizeof *ub);
    if (!lb || !ub) {
        status = fail("out of memory");
        goto out;
    }
    if (bnd_net_new(g, &net, &e)) {
        status = fail(e.msg);
        goto out;
    }
    printf("{\"boxes\":[");
    for (int r = 0; r < p->n_regions; r++) {
        if (bnd_compute(net, m, p->regions[r].lo, p->regions[r].hi, NULL, (int)ny, lb, ub, &e)) {
            printf("\n");
            status = fail(e.msg);
            goto out;
        }
        printf(r ? ",\n{\"lower\":[" : "\n{\"lower\":[");
        for (int64_t j = 0; j < ny; j++)
            printf(j ? ",%.17g" : "%.17g", lb[j]);
        printf("],\"upper\":[");
        for (int64_t j = 0; j < ny; j++)
            printf(j ? ",%.17g" : "%.17g", ub[j]);
        printf("]}");
    }
    printf("\n]}\n");
out:
    free(lb);
    free(ub);
    bnd_net_free(net);
    nn_graph_free(g);
    spec_free(p);
    return status;
}

/* ---- --check: is the counterexample in a result file real? ---- */
static int run_check(const char *result_path, const char *model_path, const char *spec_path)
{
    nn_graph *g;
    spec_property *p;
    if (load_both(model_path, spec_path, &g, &p))
        return 1;
    int status = 1;
    double *x = calloc((size_t)p->n_x, sizeof *x);
    char *seen = calloc((size_t)p->n_x, 1);
    FILE *f = fopen(result_path, "r");
    if (!x || !seen || !f) {
        fprintf(stderr, "verify: %s: %s\n", result_path, f ? "out of memory" : strerror(errno));
        goto out;
    }
    /* Scan for "X_<i> <value>" pairs; Y values are recomputed, not trusted. */
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (c != 'X')
            continue;
        long long i;
        double v;
        if (fscanf(f, "_%lld %lf", &i, &v) == 2 && i >= 0 && i < p->n_x) {
            x[i] = v;
            seen[i] = 1;
        }
    }
    for (int64_t i = 0; i < p->n_x; i++)
        if (!seen[i]) {
            fprintf(stderr, "verify: %s: no value for X_%lld\n", result_path, (long long)i);
            goto out;
        }
    err e = { 0 };
    for (int r = 0; r < p->n_regions && status; r++) {
        int rc = bab_check_counterexample(g, p, r, x, NULL, &e);
        if (rc < 0) {
            fail(e.msg);
            goto out;
        }
        if (rc == 1)
            status = 0;
    }
    printf("%s\n", status ? "invalid" : "valid");
out:
    if (f)
        fclose(f);
    free(x);
    free(seen);
    nn_graph_free(g);
    spec_free(p);
    return status;
}

/* The answer in the VNN-COMP result-file form. */
static void print_answer(FILE *f, const bab_result *res)
{
    fprintf(f, "%s\n", bab_answer_name(res->answer));
    if (res->answer != BAB_SAT)
        return;
    fprintf(f, "(");
    for (int64_t i = 0; i < res->n_x; i++)
        fprintf(f, "%s(X_%lld %.17g)\n", i ? " " : "", (long long)i, res->x[i]);
    for (int64_t j = 0; j < res->n_y; j++)
        fprintf(f, " (Y_%lld %.17g)%s\n", (long long)j, res->y[j], j + 1 == res->n_y ? ")" : "");
}

int main(int argc, char **argv)
{
    blas_tune(argv);
    heap_keep_freed(); /* 37 % more domains per second on dist_shift (core/heap.h) */
    double t0 = clock_now();
    const char *pos[2] = { NULL, NULL };
    int n_pos = 0, stats = 0;
    const char *result_path = NULL, *bounds = NULL, *eval = NULL, *check = NULL;
    bab_opts o;
    bab_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_next = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--timeout") == 0 && has_next) {
            char *end;
            o.timeout = strtod(argv[++i], &end);
            if (*end || !(o.timeout >= 0))
                return fail("--timeout takes a number of seconds");
        } else if (strcmp(a, "--seed") == 0 && has_next) {
            o.seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(a, "--result") == 0 && has_next) {
            result_path = argv[++i];
        } else if (strcmp(a, "--bounds") == 0 && has_next) {
            bounds = argv[++i];
        } else if (strcmp(a, "--eval") == 0 && has_next) {
            eval = argv[++i];
        } else if (strcmp(a, "--check") == 0 && has_next) {
            check = argv[++i];
        } else if (strcmp(a, "--stats") == 0) {
            stats = 1;
        } else if (strcmp(a, "--threads") == 0 && has_next) {
            o.threads = atoi(argv[++i]);
            if (o.threads < 1 || o.threads > BAB_MAX_THREADS)
                return fail("--threads takes 1..16");
        } else if (strcmp(a, "--batch") == 0 && has_next) {
            o.batch = atoi(argv[++i]);
            if (o.batch < 1 || o.batch > 4096)
                return fail("--batch takes 1..4096");
        } else if (strcmp(a, "--memory") == 0 && has_next) {
            char *end;
            double mb = strtod(argv[++i], &end);
            if (*end || !(mb >= 1 && mb <= 1e9))
                return fail("--memory takes a number of megabytes (1 or more)");
            o.memory = (size_t)(mb * 1048576.0);
        } else if (strcmp(a, "--split") == 0 && has_next) {
            const char *h = argv[++i];
            if (strcmp(h, "smear") == 0)
                o.split = BAB_SPLIT_SMEAR;
            else if (strcmp(h, "width") == 0)
                o.split = BAB_SPLIT_WIDTH;
            else if (strcmp(h, "mix") == 0)
                o.split = BAB_SPLIT_MIX;
            else
                return fail("--split takes smear, width or mix");
        } else if (strcmp(a, "--strategy") == 0 && has_next) {
            const char *v = argv[++i];
            if (strcmp(v, "auto") == 0)
                o.strategy = BAB_STRATEGY_AUTO;
            else if (strcmp(v, "input") == 0)
                o.strategy = BAB_STRATEGY_INPUT;
            else if (strcmp(v, "relu") == 0)
                o.strategy = BAB_STRATEGY_RELU;
            else if (strcmp(v, "none") == 0)
                o.strategy = BAB_STRATEGY_NONE;
            else if (strcmp(v, "star") == 0)
                o.strategy = BAB_STRATEGY_STAR;
            else
                return fail("--strategy takes auto, input, star, relu or none");
        } else if (strcmp(a, "--branching") == 0 && has_next) {
            const char *v = argv[++i];
            if (strcmp(v, "fsb") == 0)
                o.branching = 2;
            else if (strcmp(v, "babsr") == 0)
                o.branching = 1;
            else
                return fail("--branching takes fsb or babsr");
        } else if (strcmp(a, "--verbose") == 0) {
            o.verbose = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "verify: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        } else if (n_pos < 2) {
            pos[n_pos++] = a;
        } else {
            return fail("too many arguments (see --help)");
        }
    }
    if (eval)
        return n_pos ? fail("--eval takes only MODEL") : run_eval(eval);
    if (n_pos != 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (bounds)
        return run_bounds(bounds, pos[0], pos[1]);
    if (check)
        return run_check(check, pos[0], pos[1]);

    nn_graph *g;
    spec_property *p;
    if (load_both(pos[0], pos[1], &g, &p))
        return 1;
    catch_interrupts(result_path);
    double t_load = clock_now() - t0;
    if (o.timeout > 0) {
        o.timeout -= t_load;
        if (o.timeout <= 0)
            o.timeout = 1e-3;
    }
    err e = { 0 };
    bab_result res;
    int rc = bab_verify(g, p, &o, &res, &e);
    int status = 0;
    if (rc) {
        status = fail(e.msg);
    } else {
        /* The result file first: a reader that closes stdout early (`| head`)
         * raises SIGPIPE, which must not lose the file. */
        if (result_path) {
            FILE *f = fopen(result_path, "w");
            if (!f) {
                fprintf(stderr, "verify: %s: cannot write: %s\n", result_path, strerror(errno));
                status = 1;
            } else {
                print_answer(f, &res);
                if (fclose(f) != 0)
                    status = fail("cannot write the result file");
            }
        }
        print_answer(stdout, &res);
        if (stats)
            fprintf(stderr,
                    "{\"answer\":\"%s\",\"strategy\":\"%s\",\"load_s\":%.6f,\"attack_s\":%.6f,"
                    "\"bound_s\":%.6f,\"total_s\":%.6f,\"forward_passes\":%lld,\"bound_calls\":%lld,"
                    "\"domains\":%lld,\"attacks\":%lld,\"attack_successes\":%lld}\n",
                    bab_answer_name(res.answer), res.strategy ? res.strategy : "none", t_load,
                    res.t_attack, res.t_bound, clock_now() - t0, (long long)res.n_evals,
                    (long long)res.n_bound_calls, (long long)res.n_domains,
                    (long long)res.n_attacks, (long long)res.n_attack_hits);
    }
    bab_result_free(&res);
    nn_graph_free(g);
    spec_free(p);
    return status;
}
