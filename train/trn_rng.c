/* trn_rng.c: what the trainer adds to core/rng.h: exactly uniform integers
 * below n and Fisher-Yates shuffles. All randomness of a run comes from one
 * generator whose four words a checkpoint stores. */
#include "trn.h"

uint64_t trn_rng_below(trn_rng *r, uint64_t n) /* uniform in [0, n), n >= 1 */
{
    uint64_t lim = -n % n; /* Lemire's rejection keeps it exactly uniform */
    for (;;) {
        uint64_t x = rng_next(r);
        __uint128_t m = (__uint128_t)x * n;
        if ((uint64_t)m >= lim)
            return (uint64_t)(m >> 64);
    }
}

void trn_rng_shuffle(trn_rng *r, int64_t *idx, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)trn_rng_below(r, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
