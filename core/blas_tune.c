/* blas_tune.c: choose OPENBLAS_CORETYPE from the CPU's features and re-exec. */
#include "blas_tune.h"

#include <stdlib.h>
#include <unistd.h>

char *openblas_get_corename(void);

static const char *wanted_core(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2"))
        return "Haswell";
#endif
    return NULL;
}

void blas_tune(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE") || getenv("NNV_NO_BLAS_TUNE"))
        return;
    const char *core = wanted_core();
    if (!core)
        return;
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with whatever OpenBLAS picked */
}

const char *blas_core_name(void)
{
    return openblas_get_corename();
}
