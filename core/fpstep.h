/* fpstep.h: the neighbouring doubles, as nextafter(x, ±INFINITY) computes
 * them, inline. Sound rounding steps sit in the innermost loops of the bound
 * code (box cutting, concretisation); the libm call cost about 4 % of an
 * input-split run. Stepping the bit pattern is exact for every double:
 * ±0 steps to ±2^-1074, ±DBL_MAX to ±inf, -inf up to -DBL_MAX, and
 * +inf up / -inf down / NaN stay as they are (tests/test_bound.c compares
 * with nextafter on edge cases and random doubles). */
#ifndef CORE_FPSTEP_H
#define CORE_FPSTEP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The next double above x, without data-dependent branches on the sign
 * (mixed signs made the branchy version mispredict in GenBaB's enclosures):
 * x + 0.0 turns -0 into +0; then the bit pattern moves away from zero for
 * x > 0 and towards it for x < 0. NaN and +inf stay. */
static inline double fp_up(double x)
{
    if (!(x < INFINITY))
        return x;
    x += 0.0;
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    b += 1 - 2 * (b >> 63);
    memcpy(&x, &b, sizeof x);
    return x;
}

/* the next double below x */
static inline double fp_down(double x) { return -fp_up(-x); }

#endif
