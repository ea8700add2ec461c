/* timing.h: the wall clock and the comparison that sorts times, for the C benchmarks */
#ifndef IN_TESTS_TIMING_H
#define IN_TESTS_TIMING_H

#include <time.h>

/* seconds of the monotonic clock */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* qsort's comparison of doubles, ascending */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
