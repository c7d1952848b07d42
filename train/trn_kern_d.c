/* trn_kern_d.c: the layer kernels (trn_kern_impl.h) in double, for gradient checks. */
#include "trn.h"

#include <cblas.h>
#include <math.h>

#define REAL double
#define SFX _d
#define GEMM cblas_dgemm
#include "trn_kern_impl.h"
#include "trn_crown_impl.h"
