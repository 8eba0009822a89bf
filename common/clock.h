/*
 * clock.h - time for the daemons. The grading engine never reads a clock.
 */
#ifndef SCORELINE_CLOCK_H
#define SCORELINE_CLOCK_H

#include <stdint.h>

/* Wall clock, unix microseconds (timestamps in events). */
uint64_t clock_wall_us(void);
/* Monotonic clock, microseconds (timeouts, durations). */
uint64_t clock_mono_us(void);
/* Monotonic clock, milliseconds. */
int64_t clock_mono_ms(void);

#endif
