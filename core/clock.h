/* clock.h: monotonic time in seconds, for deadlines and measurements. */
#ifndef CORE_CLOCK_H
#define CORE_CLOCK_H

double clock_now(void);

/* 1 when a deadline (clock_now() value; 0 = none) has passed. */
int clock_expired(double deadline);

#endif
