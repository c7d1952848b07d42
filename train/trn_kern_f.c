/* trn_kern_f.c: the layer kernels (trn_kern_impl.h) in float, for training. */
#include "trn.h"

#include <cblas.h>
#include <math.h>

#define REAL float
#define SFX _f
#define GEMM cblas_sgemm
#include "trn_kern_impl.h"
