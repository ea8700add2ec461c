/* peak.c: the FMA loop of peak.h, compiled per ISA level as convk.c is (convk_isa.h: vector
 * size and target attribute): MR x NV chains acc = acc * a + b, as many vectors as the level's
 * forward tile has accumulators, so the loop runs on the registers the convolution runs on. */
#include "peak.h"

#include "common.h"
#include "convk.h"
#include "convk_isa.h"

static volatile float sink; /* keeps the chains' results alive */

#define IN_PEAK_LEVEL(level)                                                                     \
    IN_CONVK_ISA##level##_TARGET IN_CONVK_CONTRACT static double peak_isa##level(size_t rounds)  \
    {                                                                                            \
        enum { VBYTES = IN_CONVK_FIELD(VBYTES, IN_CONVK_ISA##level##_DESC),                      \
               CHAINS = IN_CONVK_FIELD(MR, IN_CONVK_ISA##level##_DESC)                           \
                        * IN_CONVK_FIELD(NV, IN_CONVK_ISA##level##_DESC) };                      \
        typedef float vec __attribute__((vector_size(VBYTES)));                                  \
        vec acc[CHAINS], a = (vec){0} + 0.999999f, b = (vec){0} + 1e-6f;                         \
        for (int c = 0; c < CHAINS; ++c) acc[c] = (vec){0} + (2.0f + c); /* 1: a fixed point */  \
        for (size_t r = 0; r < rounds; ++r) {                                                    \
            _Pragma("GCC unroll 32") for (int c = 0; c < CHAINS; ++c) acc[c] = acc[c] * a + b;   \
        }                                                                                        \
        float total = 0;                                                                         \
        for (int c = 0; c < CHAINS; ++c) total += acc[c][0];                                     \
        sink = total;                                                                            \
        return 2.0 * (double)rounds * CHAINS * (VBYTES / sizeof(float));                         \
    }

IN_PEAK_LEVEL(0)
#if IN_CONVK_X86
IN_PEAK_LEVEL(1)
IN_PEAK_LEVEL(2)
#endif
IN_PEAK_LEVEL(3)

double in_peak_fma(size_t rounds, int threads)
{
    double (*peak[IN_CONVK_LEVELS])(size_t) = {peak_isa0, 0, 0, peak_isa3};
#if IN_CONVK_X86
    peak[IN_CONVK_AVX2] = peak_isa1, peak[IN_CONVK_AVX512] = peak_isa2;
#endif
    double (*run)(size_t) = peak[in_convk_get_isa()], flops = 0;
    (void)threads; /* a build without OpenMP runs one */
    IN_PRAGMA(omp parallel num_threads(threads) reduction(+ : flops))
    flops += run(rounds);
    return flops;
}
