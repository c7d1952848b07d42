/* test_vnnlib.c: the VNNLIB parser on the benchmark files (hand-checked
 * facts), on strings for each syntax form and each error, gz vs plain, and on
 * every truncation prefix of a real file (never crash, never leak). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../specs/spec.h"
#include "shared_data.h"

#define BENCH "../shared/benchmarks"

static spec_property *parse_ok(const char *text)
{
    spec_property *p = NULL;
    err e = {0};
    int rc = spec_parse_vnnlib_string("t.vnnlib", text, &p, &e);
    cr_assert_eq(rc, 0, "unexpected error %d: %s", rc, e.msg);
    cr_assert_not_null(p);
    return p;
}

/* Parse must fail with code, and the message must contain want. */
static void parse_fails(const char *text, int code, const char *want)
{
    spec_property *p = NULL;
    err e = {0};
    int rc = spec_parse_vnnlib_string("t.vnnlib", text, &p, &e);
    cr_assert_eq(rc, code, "want code %d, got %d (%s) for: %.60s", code, rc, e.msg, text);
    cr_assert_null(p);
    cr_assert(strstr(e.msg, want), "message '%s' lacks '%s'", e.msg, want);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

#define DECL2 "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)\n"
#define BOX2 "(assert (<= X_0 1))(assert (>= X_0 -1))(assert (<= X_1 2))(assert (>= X_1 0))\n"

Test(vnnlib, every_benchmark_file_parses_with_expected_sizes)
{
    NEED_SHARED();
    static const struct { const char *dir; int64_t n_y; int64_t n_x[2]; int min_files; } sets[] = {
        {"acasxu", 5, {5, 5}, 10},
        {"mnist_fc", 10, {784, 784}, 30},
        {"collins_rul_cnn", 1, {400, 800}, 41},
        {"dist_shift", 10, {792, 792}, 72},
    };
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        char dir[256];
        snprintf(dir, sizeof dir, BENCH "/%s/vnnlib", sets[s].dir);
        DIR *dp = opendir(dir);
        cr_assert_not_null(dp, "cannot open %s", dir);
        int count = 0;
        struct dirent *de;
        while ((de = readdir(dp))) {
            size_t len = strlen(de->d_name);
            if (len < 7 || strcmp(de->d_name + len - 7, ".vnnlib"))
                continue;   /* skips e.g. prop_2.vnnlib.compiled (a pickle) */
            char path[600];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            spec_property *p = NULL;
            err e = {0};
            int rc = spec_parse_vnnlib(path, &p, &e);
            cr_assert_eq(rc, 0, "%s: %s", path, e.msg);
            cr_assert(p->n_x == sets[s].n_x[0] || p->n_x == sets[s].n_x[1], "%s: n_x %lld", path,
                      (long long)p->n_x);
            cr_assert_eq(p->n_y, sets[s].n_y, "%s", path);
            cr_assert_geq(p->n_regions, 1, "%s", path);
            for (int r = 0; r < p->n_regions; r++) {
                cr_assert_geq(p->regions[r].n_clauses, 1);
                for (int64_t i = 0; i < p->n_x; i++)
                    cr_assert(p->regions[r].lo[i] <= p->regions[r].hi[i]);
            }
            spec_free(p);
            count++;
        }
        closedir(dp);
        cr_assert_geq(count, sets[s].min_files, "%s: only %d files", dir, count);
    }
}

Test(vnnlib, acasxu_prop_1_box_and_single_row)
{
    NEED_SHARED();
    spec_property *p = NULL;
    err e = {0};
    cr_assert_eq(spec_parse_vnnlib(BENCH "/acasxu/vnnlib/prop_1.vnnlib", &p, &e), 0, "%s", e.msg);
    cr_assert_eq(p->n_x, 5);
    cr_assert_eq(p->n_y, 5);
    cr_assert_eq(p->n_regions, 1);
    const double lo[5] = {0.6, -0.5, -0.5, 0.45, -0.5}, hi[5] = {0.679857769, 0.5, 0.5, 0.5, -0.45};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(p->regions[0].lo[i], lo[i]);
        cr_assert_eq(p->regions[0].hi[i], hi[i]);
    }
    cr_assert_eq(p->regions[0].n_clauses, 1);
    const spec_clause *c = &p->regions[0].clauses[0];
    cr_assert_eq(c->n_rows, 1);
    /* Y_0 >= 3.991125645861615  ->  -Y_0 <= -3.991125645861615 */
    const double row[5] = {-1, 0, 0, 0, 0};
    for (int j = 0; j < 5; j++)
        cr_assert_eq(c->C[j], row[j]);
    cr_assert_eq(c->d[0], -3.991125645861615);
    double x[5] = {0.65, 0, 0, 0.47, -0.47}, y_bad[5] = {4, 0, 0, 0, 0}, y_ok[5] = {3.9, 9, 9, 9, 9};
    cr_assert(spec_region_violated(p, 0, x, y_bad, 0));
    cr_assert(!spec_region_violated(p, 0, x, y_ok, 1e-4));
    x[0] = 0.7;   /* outside the box */
    cr_assert(!spec_region_violated(p, 0, x, y_bad, 1e-4));
    spec_free(p);
}

Test(vnnlib, acasxu_or_gives_one_clause_per_disjunct)
{
    NEED_SHARED();
    spec_property *p = NULL;
    err e = {0};
    /* prop_2: four top-level asserts Y_i <= Y_0 -> one clause of four rows */
    cr_assert_eq(spec_parse_vnnlib(BENCH "/acasxu/vnnlib/prop_2.vnnlib", &p, &e), 0, "%s", e.msg);
    cr_assert_eq(p->n_regions, 1);
    cr_assert_eq(p->regions[0].n_clauses, 1);
    cr_assert_eq(p->regions[0].clauses[0].n_rows, 4);
    const spec_clause *c = &p->regions[0].clauses[0];
    cr_assert_eq(c->C[0 * 5 + 1], 1.0);   /* Y_1 - Y_0 <= 0 */
    cr_assert_eq(c->C[0 * 5 + 0], -1.0);
    cr_assert_eq(c->d[0], 0.0);
    spec_free(p);
    /* prop_7: X box in separate asserts, (or (and 3 rows) (and 3 rows)) */
    cr_assert_eq(spec_parse_vnnlib(BENCH "/acasxu/vnnlib/prop_7.vnnlib", &p, &e), 0, "%s", e.msg);
    cr_assert_eq(p->n_regions, 1);
    cr_assert_eq(p->regions[0].n_clauses, 2);
    cr_assert_eq(p->regions[0].clauses[0].n_rows, 3);
    cr_assert_eq(p->regions[0].clauses[1].n_rows, 3);
    spec_free(p);
    /* prop_6: an `or` of two boxes and an `or` of four rows -> 2 regions x 4 clauses */
    cr_assert_eq(spec_parse_vnnlib(BENCH "/acasxu/vnnlib/prop_6.vnnlib", &p, &e), 0, "%s", e.msg);
    cr_assert_eq(p->n_regions, 2);
    cr_assert_eq(p->regions[0].n_clauses, 4);
    cr_assert_eq(p->regions[1].n_clauses, 4);
    cr_assert_eq(p->regions[0].lo[1], 0.11140846);
    cr_assert_eq(p->regions[1].hi[1], -0.11140846);
    spec_free(p);
}

Test(vnnlib, mnist_box_is_2eps_wide_and_nine_single_row_clauses)
{
    NEED_SHARED();
    spec_property *p = NULL;
    err e = {0};
    cr_assert_eq(spec_parse_vnnlib(BENCH "/mnist_fc/vnnlib/prop_8_0.03.vnnlib", &p, &e), 0, "%s", e.msg);
    cr_assert_eq(p->n_x, 784);
    cr_assert_eq(p->n_y, 10);
    cr_assert_eq(p->n_regions, 1);
    const spec_region *r = &p->regions[0];
    cr_assert_eq(r->lo[300], 0.7033333778381348);   /* from the file */
    cr_assert_eq(r->hi[300], 0.7633333206176758);
    cr_assert_eq(r->lo[3], 0.0);                     /* clipped at 0 */
    int unclipped = 0;
    for (int i = 0; i < 784; i++) {
        double w = r->hi[i] - r->lo[i];
        cr_assert(w <= 0.06 + 1e-6 && w > 0);
        if (r->lo[i] > 0 && r->hi[i] < 1) {
            cr_assert_float_eq(w, 0.06, 1e-6, "X_%d width %g", i, w);
            unclipped++;
        }
    }
    cr_assert_gt(unclipped, 50);
    cr_assert_eq(r->n_clauses, 9);   /* label 3: some Y_j >= Y_3, j != 3 */
    for (int c = 0; c < 9; c++) {
        int j = c < 3 ? c : c + 1;
        const spec_clause *cl = &r->clauses[c];
        cr_assert_eq(cl->n_rows, 1);
        for (int k = 0; k < 10; k++)
            cr_assert_eq(cl->C[k], k == 3 ? 1.0 : k == j ? -1.0 : 0.0);
        cr_assert_eq(cl->d[0], 0.0);
    }
    spec_free(p);
}

Test(vnnlib, gz_file_equals_plain_file)
{
    NEED_SHARED();
    const char *plain = BENCH "/mnist_fc/vnnlib/prop_8_0.03.vnnlib";
    char *text = read_text(plain);
    char gzpath[] = "/tmp/vnnlib_test_XXXXXX";
    int fd = mkstemp(gzpath);
    cr_assert_geq(fd, 0);
    gzFile gz = gzdopen(fd, "wb");
    cr_assert_not_null(gz);
    cr_assert_eq(gzwrite(gz, text, (unsigned)strlen(text)), (int)strlen(text));
    gzclose(gz);
    spec_property *a = NULL, *b = NULL;
    err e = {0};
    cr_assert_eq(spec_parse_vnnlib(plain, &a, &e), 0, "%s", e.msg);
    cr_assert_eq(spec_parse_vnnlib(gzpath, &b, &e), 0, "%s", e.msg);
    remove(gzpath);
    cr_assert_eq(a->n_x, b->n_x);
    cr_assert_eq(a->n_y, b->n_y);
    cr_assert_eq(a->n_regions, b->n_regions);
    for (int r = 0; r < a->n_regions; r++) {
        cr_assert_eq(memcmp(a->regions[r].lo, b->regions[r].lo, (size_t)a->n_x * sizeof(double)), 0);
        cr_assert_eq(memcmp(a->regions[r].hi, b->regions[r].hi, (size_t)a->n_x * sizeof(double)), 0);
        cr_assert_eq(a->regions[r].n_clauses, b->regions[r].n_clauses);
        for (int c = 0; c < a->regions[r].n_clauses; c++) {
            const spec_clause *ca = &a->regions[r].clauses[c], *cb = &b->regions[r].clauses[c];
            cr_assert_eq(ca->n_rows, cb->n_rows);
            cr_assert_eq(memcmp(ca->C, cb->C, (size_t)(ca->n_rows * a->n_y) * sizeof(double)), 0);
            cr_assert_eq(memcmp(ca->d, cb->d, (size_t)ca->n_rows * sizeof(double)), 0);
        }
    }
    /* the string parser agrees too */
    spec_property *s = parse_ok(text);
    cr_assert_eq(s->regions[0].n_clauses, 9);
    spec_free(s);
    spec_free(a);
    spec_free(b);
    free(text);
}

Test(vnnlib, numbers_comments_strict_ops_and_any_declaration_order)
{
    spec_property *p = parse_ok(
        "; comment ( with parens )\n"
        "(declare-const Y_1 Real)(declare-const X_1 Real) ; trailing\n"
        "(declare-const X_0 Real)(declare-const Y_0 Real)\n"
        "(assert (< X_0 +1.5e0))(assert (> X_0 -2.5E-1))\n"
        "(assert (<= X_1 .5))(assert (>= X_1 -3.))\n"
        "(assert (<= X_1 0.25))\n"   /* tighter: wins */
        "(assert (< Y_0 Y_1))");
    cr_assert_eq(p->n_x, 2);
    cr_assert_eq(p->n_y, 2);
    cr_assert_eq(p->regions[0].lo[0], -0.25);
    cr_assert_eq(p->regions[0].hi[0], 1.5);
    cr_assert_eq(p->regions[0].lo[1], -3.0);
    cr_assert_eq(p->regions[0].hi[1], 0.25);
    const spec_clause *c = &p->regions[0].clauses[0];
    cr_assert_eq(c->n_rows, 1);
    cr_assert_eq(c->C[0], 1.0);
    cr_assert_eq(c->C[1], -1.0);
    cr_assert_eq(c->d[0], 0.0);
    spec_free(p);
}

Test(vnnlib, constant_on_the_left_and_y_constant_rows)
{
    spec_property *p = parse_ok(DECL2 "(assert (<= 0 X_0))(assert (>= 1 X_0))\n"
                                      "(assert (<= X_1 2))(assert (>= X_1 0))\n"
                                      "(assert (>= Y_1 3))(assert (<= 7 Y_0))");
    cr_assert_eq(p->regions[0].lo[0], 0.0);
    cr_assert_eq(p->regions[0].hi[0], 1.0);
    const spec_clause *c = &p->regions[0].clauses[0];
    cr_assert_eq(c->n_rows, 2);
    cr_assert_eq(c->C[0], 0.0);
    cr_assert_eq(c->C[1], -1.0);
    cr_assert_eq(c->d[0], -3.0);
    cr_assert_eq(c->C[2], -1.0);
    cr_assert_eq(c->d[1], -7.0);
    spec_free(p);
}

Test(vnnlib, scaled_input_bound_is_widened_outward)
{
    spec_property *p = parse_ok(DECL2 "(assert (<= (* 3 X_0) 1))(assert (>= (* 3 X_0) -1))\n"
                                      "(assert (<= (- X_1) 0))(assert (<= X_1 2))(assert (<= Y_0 0))");
    cr_assert_geq(p->regions[0].hi[0] * 3, 1.0);
    cr_assert_leq(p->regions[0].lo[0] * 3, -1.0);
    cr_assert_float_eq(p->regions[0].hi[0], 1.0 / 3, 1e-15);
    cr_assert_eq(p->regions[0].lo[1], 0.0);
    cr_assert(!signbit(p->regions[0].lo[1]));
    spec_free(p);
}

Test(vnnlib, linear_output_terms)
{
    spec_property *p = parse_ok(DECL2 BOX2 "(assert (<= (+ Y_0 (* 2 Y_1) 1) (- Y_1 3)))\n"
                                            "(assert (>= (* Y_0 -0.5) (- 4)))");
    const spec_clause *c = &p->regions[0].clauses[0];
    cr_assert_eq(c->n_rows, 2);
    /* y0 + 2 y1 + 1 - y1 + 3 <= 0  ->  y0 + y1 <= -4 */
    cr_assert_eq(c->C[0], 1.0);
    cr_assert_eq(c->C[1], 1.0);
    cr_assert_eq(c->d[0], -4.0);
    /* -0.5 y0 >= -4  ->  0.5 y0 <= 4 */
    cr_assert_eq(c->C[2], 0.5);
    cr_assert_eq(c->C[3], 0.0);
    cr_assert_eq(c->d[1], 4.0);
    spec_free(p);
}

Test(vnnlib, or_of_boxes_with_outputs_groups_equal_boxes)
{
    spec_property *p = parse_ok(DECL2 "(assert (or\n"
        " (and (<= X_0 1) (>= X_0 0) (<= X_1 1) (>= X_1 0) (>= Y_0 1))\n"
        " (and (<= X_0 3) (>= X_0 2) (<= X_1 1) (>= X_1 0) (>= Y_1 1))\n"
        " (and (>= X_0 0) (<= X_0 1) (<= X_1 1) (>= X_1 0) (<= Y_0 Y_1) (>= Y_0 -5))\n"
        " (and (<= X_0 3) (>= X_0 4) (<= X_1 1) (>= X_1 0) (>= Y_1 1))))");   /* empty box */
    cr_assert_eq(p->n_regions, 2);
    cr_assert_eq(p->regions[0].lo[0], 0.0);
    cr_assert_eq(p->regions[0].n_clauses, 2);
    cr_assert_eq(p->regions[0].clauses[0].n_rows, 1);
    cr_assert_eq(p->regions[0].clauses[1].n_rows, 2);
    cr_assert_eq(p->regions[1].lo[0], 2.0);
    cr_assert_eq(p->regions[1].n_clauses, 1);
    double x[2] = {0.5, 0.5}, y[2] = {2, 0};
    cr_assert(spec_region_violated(p, 0, x, y, 0));
    cr_assert(!spec_region_violated(p, 1, x, y, 0));
    spec_free(p);
}

Test(vnnlib, nested_or_and_distributes)
{
    /* (a or b) and (c or d) -> 4 clauses; constant atoms evaluated */
    spec_property *p = parse_ok(DECL2 BOX2
        "(assert (or (<= Y_0 1) (and (<= Y_0 2) (<= Y_1 2))))\n"
        "(assert (or (>= Y_1 0) (<= Y_1 -1) (<= 2 1)))\n"
        "(assert (<= 1 2))");
    cr_assert_eq(p->n_regions, 1);
    cr_assert_eq(p->regions[0].n_clauses, 4);
    cr_assert_eq(p->regions[0].clauses[0].n_rows, 2);
    cr_assert_eq(p->regions[0].clauses[2].n_rows, 3);
    spec_free(p);
    /* (and) is true, (or) is false */
    p = parse_ok(DECL2 BOX2 "(assert (and))(assert (<= 1 2))(assert (or (or) (<= Y_0 0)))");
    cr_assert_eq(p->n_regions, 1);
    cr_assert_eq(p->regions[0].n_clauses, 1);
    spec_free(p);
    p = parse_ok(DECL2 BOX2 "(assert (or))");
    cr_assert_eq(p->n_regions, 0);
    spec_free(p);
    /* an always-false conjunct: nothing is unsafe */
    p = parse_ok(DECL2 BOX2 "(assert (<= 2 1))");
    cr_assert_eq(p->n_regions, 0);
    spec_free(p);
}

Test(vnnlib, common_layout_is_linear_not_multiplied)
{
    /* 2000 inputs bounded in separate asserts, an `or` of 500 output rows */
    size_t cap = 1 << 22, n = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(s + n, cap - n, "(declare-const X_%d Real)\n", i);
    for (int j = 0; j < 2; j++)
        n += (size_t)snprintf(s + n, cap - n, "(declare-const Y_%d Real)\n", j);
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(s + n, cap - n, "(assert (<= X_%d 1))(assert (>= X_%d 0))\n", i, i);
    n += (size_t)snprintf(s + n, cap - n, "(assert (or");
    for (int k = 0; k < 500; k++)
        n += (size_t)snprintf(s + n, cap - n, " (and (>= Y_0 %d))", k);
    snprintf(s + n, cap - n, "))");
    spec_property *p = parse_ok(s);
    cr_assert_eq(p->n_regions, 1);
    cr_assert_eq(p->regions[0].n_clauses, 500);
    cr_assert_eq(p->regions[0].clauses[499].d[0], -499.0);
    spec_free(p);
    /* 20000 single-disjunct ors inside one `and`, and 20000 more as separate
     * asserts: joined once, not re-multiplied per conjunct (would be ~1e9 copies) */
    n = 0;
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(s + n, cap - n, "(declare-const X_%d Real)\n", i);
    n += (size_t)snprintf(s + n, cap - n, "(declare-const Y_0 Real)(assert (and");
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(s + n, cap - n, " (or (and (<= X_%d 1)))", i);
    n += (size_t)snprintf(s + n, cap - n, "))");
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(s + n, cap - n, "(assert (or (>= X_%d -1)))", i);
    snprintf(s + n, cap - n, "(assert (or (<= Y_0 0) (>= Y_0 1)))");
    p = parse_ok(s);
    cr_assert_eq(p->n_regions, 1);
    cr_assert_eq(p->regions[0].n_clauses, 2);
    cr_assert_eq(p->regions[0].lo[19999], -1.0);
    cr_assert_eq(p->regions[0].hi[19999], 1.0);
    spec_free(p);
    free(s);
}

Test(vnnlib, dnf_blowup_is_a_clear_error)
{
    /* 25 binary ors: 2^25 terms -> capped */
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, DECL2 BOX2);
    for (int k = 0; k < 25; k++)
        n += (size_t)snprintf(s + n, cap - n, "(assert (or (<= Y_0 %d) (<= Y_1 %d)))\n", k, k);
    parse_fails(s, ERR_NOMEM, "DNF");
    free(s);
}

Test(vnnlib, errors_name_line_and_column)
{
    parse_fails(DECL2 "(assert (<= X_0 1)\n", ERR_PARSE, "t.vnnlib:3:1: unexpected end of file");
    parse_fails(DECL2 "(assert (<= X_0 1 2))", ERR_PARSE, "t.vnnlib:2:19: expected ')'");
    parse_fails(DECL2 BOX2 "(assert (<= Z_0 1))", ERR_PARSE, "t.vnnlib:3:13: unknown variable 'Z_0'");
    parse_fails(DECL2 BOX2 "(assert (<= X_5 1))", ERR_PARSE, "t.vnnlib:3:13: undeclared variable 'X_5'");
    parse_fails(DECL2 BOX2 "(assert (<= Y_0 1.2.3))", ERR_PARSE, "t.vnnlib:3:17: bad number '1.2.3'");
    parse_fails(DECL2 BOX2 "(assert (<= Y_0 1e999))", ERR_PARSE, "3:17: bad number");
    parse_fails(DECL2 BOX2 "(assert (<= Y_0 nan))", ERR_PARSE, "3:17: unknown variable");
    parse_fails(DECL2 BOX2 "(assert (<= Y_0 1)))", ERR_PARSE, "3:20: unexpected ')'");
    parse_fails("", ERR_PARSE, "empty file");
    parse_fails("  ; only a comment\n", ERR_PARSE, "empty file");
    parse_fails(DECL2, ERR_PARSE, "no assert");
    parse_fails("(declare-const foo Real)", ERR_UNSUP, "1:16: unsupported variable name");
    parse_fails("(declare-const X_0 Int)", ERR_UNSUP, "1:20: expected sort Real");
    parse_fails("(declare-const X_0 Real)(declare-const X_0 Real)", ERR_PARSE, "declared twice");
    parse_fails("(declare-const X_0 Real)(declare-const X_2 Real)(assert (<= X_0 1))", ERR_PARSE,
                "X_1 is not declared but X_2 is");
    parse_fails(DECL2 BOX2 "(assert (<= X_0 Y_0))", ERR_UNSUP, "3:10: atom mixes inputs X and outputs Y");
    parse_fails(DECL2 BOX2 "(assert (<= X_0 X_1))", ERR_UNSUP, "3:10: atom relates several inputs");
    parse_fails(DECL2 BOX2 "(assert (not (<= Y_0 1)))", ERR_UNSUP, "3:10: unsupported operator 'not'");
    parse_fails(DECL2 BOX2 "(assert (<= (* Y_0 Y_1) 1))", ERR_UNSUP, "3:14: nonlinear product");
    parse_fails(DECL2 BOX2 "(assert (<= (* 1e300 1e300 Y_0) 1))", ERR_VALUE, "3:10: coefficient is not finite");
    parse_fails(DECL2 BOX2 "(assert (<= (* 1e300 1e300) Y_0))", ERR_VALUE, "3:10: constant is not finite");
    parse_fails(DECL2 BOX2 "(assert (<= (- (* 1e300 1e300) (* 1e300 1e300)) 1))", ERR_VALUE, "constant is not finite");
    parse_fails(DECL2 BOX2 "(assert (<= Y_0))", ERR_PARSE, "3:10: comparison needs two arguments");
    parse_fails(DECL2 "(assert (<= X_0 1))(assert (>= X_0 -1))(assert (>= X_1 0))(assert (<= Y_0 1))",
                ERR_VALUE, "t.vnnlib: X_1 has no upper bound");
    parse_fails(DECL2 "(assert (<= X_0 1))(assert (<= X_1 1))(assert (>= X_1 0))(assert (<= Y_0 1))",
                ERR_VALUE, "X_0 has no lower bound");
    parse_fails(DECL2 "(bogus 1)", ERR_UNSUP, "2:2: unsupported command 'bogus'");
    parse_fails("\x01\x1b[2J\xff", ERR_PARSE, "1:1: expected '(' at top level, got '??[2J?'");
}

Test(vnnlib, deep_nesting_fails_fast)
{
    size_t n = 100000;
    char *s = malloc(n + 512);
    strcpy(s, DECL2 "(assert ");
    size_t k = strlen(s);
    memset(s + k, '(', n);
    s[k + n] = 0;
    parse_fails(s, ERR_PARSE, "expected an operator");
    /* or-nesting: (or (or (or ... */
    size_t m = strlen(DECL2 "(assert ");
    for (size_t i = 0; i + 4 < n; i += 4)
        memcpy(s + m + i, "(or ", 4);
    s[m + n - n % 4] = 0;
    parse_fails(s, ERR_PARSE, "nesting deeper than 64");
    /* term nesting: (<= (+ (+ (+ ... */
    strcpy(s, DECL2 BOX2 "(assert (<= ");
    m = strlen(s);
    for (size_t i = 0; i + 3 < n; i += 3)
        memcpy(s + m + i, "(+ ", 3);
    s[m + n - n % 3] = 0;
    parse_fails(s, ERR_PARSE, "nesting deeper than 64");
    memset(s, '(', n);
    s[n] = 0;
    parse_fails(s, ERR_PARSE, "1:2: expected a command");
    free(s);
}

Test(vnnlib, missing_file_is_io_error)
{
    spec_property *p = NULL;
    err e = {0};
    cr_assert_eq(spec_parse_vnnlib("no/such/file.vnnlib", &p, &e), ERR_IO);
    cr_assert(strstr(e.msg, "no/such/file.vnnlib"));
    cr_assert_null(p);
}

Test(vnnlib, clause_holds_uses_tolerance)
{
    double C[4] = {1, 0, 0, 1}, d[2] = {1, 2};
    spec_clause c = {2, C, d};
    double y[2] = {1.00005, 2};
    cr_assert(!spec_clause_holds(&c, 2, y, 0));
    cr_assert(spec_clause_holds(&c, 2, y, 1e-4));
    y[1] = NAN;
    cr_assert(!spec_clause_holds(&c, 2, y, 1e-4));
}

Test(vnnlib, every_truncation_prefix_fails_cleanly_or_parses)
{
    NEED_SHARED();
    char *text = read_text(BENCH "/acasxu/vnnlib/prop_7.vnnlib");
    size_t n = strlen(text);
    int ok = 0;
    for (size_t len = 0; len <= n; len++) {
        char saved = text[len];
        text[len] = 0;
        spec_property *p = NULL;
        err e = {0};
        int rc = spec_parse_vnnlib_string("prop_7.vnnlib", text, &p, &e);
        if (rc == 0) {
            cr_assert_not_null(p);
            ok++;
            spec_free(p);
        } else {
            cr_assert_null(p);
            cr_assert(rc == ERR_PARSE || rc == ERR_VALUE || rc == ERR_UNSUP, "len %zu: code %d %s", len, rc, e.msg);
            cr_assert(strstr(e.msg, "prop_7.vnnlib"), "%s", e.msg);
        }
        text[len] = saved;
    }
    cr_assert_geq(ok, 1);   /* at least the whole file */
    free(text);
}

Test(vnnlib, corrupt_or_truncated_gz_is_an_error_not_a_crash)
{
    NEED_SHARED();
    char *text = read_text(BENCH "/mnist_fc/vnnlib/prop_8_0.03.vnnlib");
    uLongf cap = compressBound((uLong)strlen(text)) + 64;
    char path[] = "/tmp/vnnlib_gz_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    gzFile gz = gzdopen(fd, "wb");
    gzwrite(gz, text, (unsigned)strlen(text));
    gzclose(gz);
    char *bytes = malloc(cap);
    FILE *f = fopen(path, "rb");
    size_t n = fread(bytes, 1, cap, f);
    fclose(f);
    /* truncated to half, and with a flipped byte in the middle */
    for (int variant = 0; variant < 2; variant++) {
        f = fopen(path, "wb");
        if (variant == 1)
            bytes[n / 2] ^= 0x5a;
        fwrite(bytes, 1, variant == 0 ? n / 2 : n, f);
        fclose(f);
        spec_property *p = NULL;
        err e = {0};
        int rc = spec_parse_vnnlib(path, &p, &e);
        cr_assert_neq(rc, 0, "variant %d parsed", variant);
        cr_assert_null(p);
        cr_assert(strstr(e.msg, path), "%s", e.msg);
    }
    remove(path);
    free(bytes);
    free(text);
}

Test(vnnlib, random_byte_mutations_never_crash)
{
    NEED_SHARED();
    char *text = read_text(BENCH "/acasxu/vnnlib/prop_6.vnnlib");
    size_t n = strlen(text);
    static const char alphabet[] = "()();; \n X_Y_0159.e-+<=>andor";
    unsigned seed = 12345;
    int parsed = 0;
    for (int trial = 0; trial < 3000; trial++) {
        char *m = strdup(text);
        for (int k = 0; k < 1 + trial % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            m[at] = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
        }
        spec_property *p = NULL;
        err e = {0};
        int rc = spec_parse_vnnlib_string("m.vnnlib", m, &p, &e);
        if (rc == 0) {
            parsed++;
            cr_assert_not_null(p);
            spec_free(p);
        } else {
            cr_assert_null(p);
            cr_assert(strstr(e.msg, "m.vnnlib"), "%s", e.msg);
        }
        free(m);
    }
    cr_assert_gt(parsed, 0);
    free(text);
}

Test(vnnlib, committed_gz_file_parses_like_the_plain_one)
{
    NEED_SHARED();
    spec_property *a = NULL, *b = NULL;
    err e = {0};
    cr_assert_eq(spec_parse_vnnlib("tests/data/vnnlib/prop_6.vnnlib.gz", &a, &e), 0, "%s", e.msg);
    cr_assert_eq(spec_parse_vnnlib(BENCH "/acasxu/vnnlib/prop_6.vnnlib", &b, &e), 0, "%s", e.msg);
    cr_assert_eq(a->n_regions, 2);
    cr_assert_eq(b->n_regions, 2);
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(memcmp(a->regions[r].lo, b->regions[r].lo, 5 * sizeof(double)), 0);
        cr_assert_eq(memcmp(a->regions[r].hi, b->regions[r].hi, 5 * sizeof(double)), 0);
        cr_assert_eq(a->regions[r].n_clauses, 4);
        for (int c = 0; c < 4; c++) {
            cr_assert_eq(a->regions[r].clauses[c].n_rows, 1);
            cr_assert_eq(memcmp(a->regions[r].clauses[c].C, b->regions[r].clauses[c].C, 5 * sizeof(double)), 0);
            cr_assert_eq(a->regions[r].clauses[c].d[0], b->regions[r].clauses[c].d[0]);
        }
    }
    spec_free(a);
    spec_free(b);
}
