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

static inline double fp_step(double x, int up)
{
    if (isnan(x) || (up ? x == INFINITY : x == -INFINITY))
        return x;
    if (x == 0)
        return up ? 0x1p-1074 : -0x1p-1074;
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    b += (x > 0) == (up != 0) ? 1 : (uint64_t)-1; /* away from or towards zero */
    memcpy(&x, &b, sizeof x);
    return x;
}

/* the next double above / below x */
static inline double fp_up(double x) { return fp_step(x, 1); }
static inline double fp_down(double x) { return fp_step(x, 0); }

#endif
