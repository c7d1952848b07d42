/* blas_tune.h: make Debian's OpenBLAS use the right kernels for this CPU.
 *
 * Debian's dynamic-arch OpenBLAS misdetects some recent CPUs (e.g. AMD with
 * AVX-512) as an old core and runs 2-3x slower. OpenBLAS reads the
 * OPENBLAS_CORETYPE variable when it is loaded, before main(), so a program
 * that wants to set it must re-execute itself once. Programs call this first
 * thing in main(); it returns normally when nothing needs doing. Setting
 * OPENBLAS_CORETYPE yourself (or NNV_NO_BLAS_TUNE=1) disables it. */
#ifndef CORE_BLAS_TUNE_H
#define CORE_BLAS_TUNE_H

void blas_tune(char **argv);

/* The core name OpenBLAS chose (for --version / benchmarks). */
const char *blas_core_name(void);

#endif
