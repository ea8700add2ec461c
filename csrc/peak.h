/* peak.h: the FMA peak of the convolution's ISA path: how many float32 flops a second the
 * cores can do on the vectors and with the accumulators the convolution's forward tile uses. */
#ifndef IN_PEAK_H
#define IN_PEAK_H

#include <stddef.h>

/* Runs `rounds` rounds of independent FMA chains on each of `threads` OpenMP threads (one in a
 * build without OpenMP), on the ISA path of the convolution kernels (in_convk_get_isa), and
 * returns the flops done (2 per lane of each FMA) over all threads; the caller times the call. */
double in_peak_fma(size_t rounds, int threads);

#endif
