/* blas_tune.c: choose OPENBLAS_CORETYPE from the CPU's features and re-exec,
 * but only when OpenBLAS's own choice is worse than what the CPU can do (the
 * re-exec costs a process start; on a correctly detected CPU it is skipped). */
#include "blas_tune.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    /* Cores whose kernels are at least as good as the wanted one. */
    static const char *const good_avx512[] = { "skylakex", "cooperlake", "sapphirerapids", NULL };
    static const char *const good_avx2[] = { "haswell", "zen", "skylakex", "cooperlake",
                                             "sapphirerapids", NULL };
    const char *const *good = strcmp(core, "SkylakeX") == 0 ? good_avx512 : good_avx2;
    const char *have = openblas_get_corename();
    for (int i = 0; have && good[i]; i++)
        if (strcasecmp(have, good[i]) == 0)
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
