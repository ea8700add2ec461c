/* range.h: the output positions whose window tap falls inside the input, shared by the lowering
 * (im2col) and pooling. */
#ifndef IN_RANGE_H
#define IN_RANGE_H

#include <stddef.h>

/* The output columns x in [*lo, *hi), hi <= ow, whose input column x*s + off lies in [0, W):
 *     x*s + off >= 0  <=>  x >= ceil(-off / s);   x*s + off < W  <=>  x < ceil((W - off) / s) */
static inline void in_valid_range(size_t *lo, size_t *hi, ptrdiff_t off, size_t s, size_t W,
                                  size_t ow)
{
    size_t a = off < 0 ? ((size_t)(-off) + s - 1) / s : 0;
    ptrdiff_t end = (ptrdiff_t)W - off;
    size_t b = end <= 0 ? 0 : ((size_t)end + s - 1) / s;
    if (b > ow) b = ow;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

#endif
