/* shared_data.h: tests that read ../shared (the VNN-COMP benchmarks, the
 * conformance models and the reference bounds next to the repository) are
 * skipped, with this note, when it is not there: a clone on its own still
 * passes `make test`. CI and the development machines have it. */
#ifndef TESTS_SHARED_DATA_H
#define TESTS_SHARED_DATA_H

#include <criterion/criterion.h>
#include <unistd.h>

#define NEED_SHARED()                                                                  \
    do {                                                                               \
        if (access("../shared", R_OK) != 0)                                            \
            cr_skip_test("../shared (benchmarks, conformance models) is not next to "  \
                         "the repository");                                            \
    } while (0)

#endif
