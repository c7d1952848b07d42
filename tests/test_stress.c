/* test_stress.c: the fast slice of the soundness stress test (stress_gen.h):
 * random networks over every op bound/ lowers, random boxes (narrow, wide,
 * degenerate, far from 0, width 1e-12, dyadic) and weight regimes (normal,
 * dyadic, 1e8 with cancellation, 1e-8, mixed); IBP and CROWN bounds must
 * contain every sampled output, and bab_verify must agree with dense sampling
 * on tiny networks. `make stress N=...` runs the same checks at scale. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "stress_gen.h"

Test(stress, bounds_contain_samples_on_random_networks, .timeout = 60)
{
    sg_opts o = {.max_ops = 8, .max_elems = 48, .max_in = 12, .max_out = 6, .numerics = -1};
    sg_stats st = {0};
    int gen_fail = 0;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        sg_stats one = {0};
        int rc = sg_check_case(seed, &o, 1000, &one, stderr);
        gen_fail += rc != 0;
        sg_stats_add(&st, &one);
    }
    cr_log_info("stress slice: ");
    sg_stats_print(stderr, &st);
    cr_expect_eq(gen_fail, 0, "generator / lowering / eval errors: %d", gen_fail);
    cr_expect_gt(st.cases, 150, "too few cases lowered: %lld", (long long)st.cases);
    cr_expect_eq(st.violations, 0, "bound violations: %lld", (long long)st.violations);
}

Test(stress, bab_agrees_with_dense_sampling_on_tiny_networks, .timeout = 60)
{
    sg_stats st = {0};
    for (uint64_t seed = 1; seed <= 60; seed++) {
        sg_stats one = {0};
        sg_check_bab(seed, 500, &one, stderr);
        sg_stats_add(&st, &one);
    }
    sg_stats_print(stderr, &st);
    cr_expect_gt(st.bab_cases, 40);
    cr_expect_eq(st.bab_wrong, 0, "wrong BaB answers: %lld", (long long)st.bab_wrong);
}
