/* common.h: build-wide conventions for the C kernels.
 *
 * - Sizes and indices are size_t: a 64x256x368x368 activation already passes 2^31 elements.
 * - IN_HOT marks a kernel that GCC compiles several times (AVX-512, AVX2, baseline x86-64),
 *   its OpenMP regions and inlined loops included, and picks at load time, so one build is fast
 *   here and still runs on any x86-64 (function multi-versioning). Elsewhere it is empty.
 * - IN_PARALLEL_MIN is the element count below which a kernel stays on one thread: waking the
 *   OpenMP team costs a few microseconds, more than a pass over a small tensor.
 * - IN_LANES independent partial sums per reduction (see plane_template.h), added up by
 *   in_lanes_total in a fixed order.
 */
#ifndef IN_COMMON_H
#define IN_COMMON_H

#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(IN_NO_MULTIVERSION)
#define IN_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define IN_HOT
#endif

#if defined(__GNUC__)
#define IN_MAYBE_UNUSED __attribute__((unused))
#else
#define IN_MAYBE_UNUSED
#endif

#define IN_PARALLEL_MIN ((size_t)1 << 15)

#define IN_PRAGMA(x) _Pragma(#x)

#define IN_LANES 16 /* in_lanes_total adds exactly 16 */

/* acc[0] + ... + acc[15] pairwise, as two vector adds and three scalar ones, where a running sum
 * would wait on 16 dependent adds (a cost that shows on 7x7 planes). */
static inline double in_lanes_total(const double *acc)
{
    double half[8], quarter[4];
    for (int j = 0; j < 8; ++j) half[j] = acc[j] + acc[j + 8];
    for (int j = 0; j < 4; ++j) quarter[j] = half[j] + half[j + 4];
    return (quarter[0] + quarter[2]) + (quarter[1] + quarter[3]);
}

/* Channel reductions (plane_template.h, channel_sums) hand each thread a contiguous share of
 * the channels and walk it image by image in chunks of IN_CHUNK channels, so a thread reads
 * memory in long runs (chunk * H*W values) and every channel is summed over the images in the
 * same order whatever the thread count: results repeat bit for bit across runs and threads. */
#define IN_CHUNK 256

typedef enum { IN_SUM, IN_DOT, IN_SUMSQ_DEV, IN_DOT_DEV, IN_SHIFTED_SUMS, IN_DY_SUMS } in_reduction;

/* [begin, end) of n items for the calling thread of the current OpenMP team */
static inline size_t in_share_begin(size_t n)
{
#ifdef _OPENMP
    return n * (size_t)omp_get_thread_num() / (size_t)omp_get_num_threads();
#else
    (void)n;
    return 0;
#endif
}

static inline size_t in_share_end(size_t n)
{
#ifdef _OPENMP
    return n * ((size_t)omp_get_thread_num() + 1) / (size_t)omp_get_num_threads();
#else
    return n;
#endif
}

/* for (c0 ...) over this thread's channels in chunks [c0, c1) of `chunk` (<= IN_CHUNK) or
 * IN_CHUNK channels, inside a parallel region that opens only once the tensor has `work` >=
 * IN_PARALLEL_MIN elements */
#define IN_FOR_CHANNEL_CHUNKS_OF(work, C, chunk, c0, c1)                                        \
    IN_PRAGMA(omp parallel if ((work) >= IN_PARALLEL_MIN))                                      \
    for (size_t c0 = in_share_begin(C), c0##_end = in_share_end(C), c1;                         \
         c0 < c0##_end && ((c1 = c0 + (chunk) < c0##_end ? c0 + (chunk) : c0##_end), 1);       \
         c0 += (chunk))
#define IN_FOR_CHANNEL_CHUNKS(work, C, c0, c1) IN_FOR_CHANNEL_CHUNKS_OF(work, C, IN_CHUNK, c0, c1)

/* Channels a chunk takes when a pass over it reads it again: `streams` tensors of B*S values a
 * channel stay in L2 (IN_CACHED_BYTES of it) from the first read to the second; at least one
 * channel, at most IN_CHUNK. */
#define IN_CACHED_BYTES 262144
static inline size_t in_cached_channels(size_t B, size_t S, size_t streams, size_t real_size)
{
    size_t bytes = B * S * streams * real_size, fit = bytes ? IN_CACHED_BYTES / bytes : IN_CHUNK;
    return fit < 1 ? 1 : fit > IN_CHUNK ? IN_CHUNK : fit;
}

/* Windows of k values, stride s, over n values padded by p on both sides (the caller checks
 * n + 2p >= k): floor((n + 2p - k) / s) + 1, the formula of inception_native/shapes.py. */
static inline size_t in_out_size(size_t n, size_t k, size_t s, size_t p)
{
    return (n + 2 * p - k) / s + 1;
}

/* Instantiation of the *_template.h files: NAME(mean_cpu) is in_mean_cpu_f32 or in_mean_cpu_f64. */
#define IN_CAT3(a, b, c) a##b##c
#define IN_NAME3(a, b, c) IN_CAT3(a, b, c)

#endif
