/* timing.h: monotonic clock. */
#ifndef FORGE_BASE_TIMING_H
#define FORGE_BASE_TIMING_H

#include <stdint.h>
#include <time.h>

static inline uint64_t time_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double time_sec(void) { return (double)time_ns() * 1e-9; }

#endif
