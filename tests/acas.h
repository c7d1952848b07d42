/* acas.h: bab_verify on an ACAS Xu instance of ../shared (tests that use it
 * start with NEED_SHARED()); a sat answer's counterexample is checked again.
 * Header-only, for the input-split and star tests. */
#ifndef TESTS_ACAS_H
#define TESTS_ACAS_H

#include <criterion/criterion.h>
#include <stdio.h>

#include "../bab/bab.h"
#include "../models/nn.h"
#include "../specs/spec.h"

/* net "1_1", prop "prop_3" */
static inline bab_answer acas_verify(const char *net, const char *prop, const bab_opts *o,
                                     bab_result *res)
{
    char mp[256], sp[256];
    snprintf(mp, sizeof mp, "../shared/benchmarks/acasxu/onnx/ACASXU_run2a_%s_batch_2000.onnx", net);
    snprintf(sp, sizeof sp, "../shared/benchmarks/acasxu/vnnlib/%s.vnnlib", prop);
    nn_graph *g = NULL;
    spec_property *p = NULL;
    err e = {0};
    cr_assert_eq(nn_load(mp, &g, &e), 0, "%s", e.msg);
    cr_assert_eq(spec_parse_vnnlib(sp, &p, &e), 0, "%s", e.msg);
    cr_assert_eq(bab_verify(g, p, o, res, &e), 0, "%s", e.msg);
    bab_answer a = res->answer;
    if (a == BAB_SAT)
        cr_assert_eq(bab_check_counterexample(g, p, res->region, res->x, NULL, &e), 1);
    spec_free(p);
    nn_graph_free(g);
    return a;
}

#endif
