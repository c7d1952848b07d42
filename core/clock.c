/* clock.c: monotonic clock. */
#include "clock.h"

#include <time.h>

double clock_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int clock_expired(double deadline)
{
    return deadline > 0 && clock_now() >= deadline;
}
