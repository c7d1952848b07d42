/* trn_kern_f.c: the layer kernels (trn_kern_impl.h) in float, for training. */
/* The hot loops need -O3 vectorisation (GCC -O2 vectorises only loops whose trip
 * count is a multiple of the vector width): measured 1.3x on a CNN-7 IBP step. */
#pragma GCC optimize("O3")
#include "trn.h"

#include <cblas.h>
#include <math.h>

#define REAL float
#define SFX _f
#define GEMM cblas_sgemm
#include "trn_kern_impl.h"
#include "trn_crown_impl.h"
