# cython: language_level=3
"""Max, average, adaptive average and global average pooling, forward and backward, native,
float32 and float64.

x (B, C, H, W), y (B, C, oh, ow). kernel, stride, padding: an int or (h, w); stride None is the
kernel's size. Output size as PyTorch's: oh = floor((H + 2 padding - kh) / stride) + 1, or ceil
in ceil_mode, where a last window that would start past the input and its left padding is
dropped. padding > kernel // 2 is rejected (PyTorch's rule: every window then holds a pixel).
Average pooling divides by the window's size within the padded input when count_include_pad
(PyTorch's default, and ours), within the input otherwise; a window sticking out past the
padding in ceil mode is never counted beyond it.
Adaptive average pooling takes the output size from y (1 <= oh <= H, 1 <= ow <= W), as PyTorch's
adaptive_avg_pool2d: output row i averages input rows [floor(i H / oh), ceil((i + 1) H / oh)),
likewise columns; neighbouring windows may share a row or column.
Outputs are written into the arrays passed; functions return the main output.
The NumPy twins, with the same signatures, are in inception_native.reference.
"""
cimport numpy as cnp
from in_pool cimport *
from libc.stdint cimport int64_t, uint8_t

from functools import partial

from . import _checks as check

cnp.import_array()



cdef inline void *data(a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def max_pool2d_forward(x, y, argmax, kernel, stride=None, padding=0, ceil_mode=False):
    """y = the maximum of each window (a NaN wins), returned. argmax None: y alone, what
    inference needs (max_pool2d_backward can find the maxima again in x); argmax an int64 array
    like y: also each maximum's index iy*W + ix in its plane (the first maximum); a uint8 array
    like y: that maximum's tap i*kw + j in its window (kernels of up to 255 taps), a byte an
    output found by the same passes as y, what training keeps."""
    max_pool2d_forward_call(x, y, argmax, kernel, stride, padding, ceil_mode)()
    return y


def max_pool2d_forward_call(x, y, argmax, kernel, stride=None, padding=0, ceil_mode=False):
    """max_pool2d_forward(...) checked now, run later: a function of no arguments that runs that
    call without checking again, for calls repeated on the same arrays (conv2d_forward_call's
    counterpart)."""
    ceil_mode = check.truth("ceil_mode", ceil_mode)
    f64, s = check.max_pool2d_forward(x, y, argmax, kernel, stride, padding, ceil_mode)
    return partial(_max_pool, f64, y, argmax, x, s)


def _max_pool(bint f64, y, argmax, x, s):
    cdef size_t P = s[0] * s[1], H = s[2], W = s[3], kh = s[4], kw = s[5], sh = s[6], sw = s[7]
    cdef size_t ph = s[8], pw = s[9], oh = s[10], ow = s[11]
    cdef void *py = data(y)
    cdef void *pi = NULL if argmax is None or check.taps(argmax) else data(argmax)
    cdef void *pt = data(argmax) if check.taps(argmax) else NULL
    cdef void *px = data(x)
    cdef int failed
    with nogil:
        failed = in_max_pool2d_forward(f64, py, <int64_t *>pi, <uint8_t *>pt, px, P, H, W, oh,
                                       ow, kh, kw, sh, sw, ph, pw)
    if failed:
        raise MemoryError("max_pool2d_forward: no memory for its row buffers")


def max_pool2d_backward(dy, argmax, dx, *, x=None, y=None, kernel=None, stride=None, padding=0,
                        ceil_mode=False):
    """dx = 0, then each window's maximum gets its dy, plane by plane; returns dx. From
    max_pool2d_forward's int64 argmax (dx[argmax] += dy); from its uint8 argmax (taps) and the
    window (kernel, stride, padding, ceil_mode); or, argmax None, from the forward's x and y and
    the window: each window's first pixel equal to its y (a NaN to a NaN) gets dy. All three give
    the same dx. An argmax entry outside the plane (or a tap outside it), or a window holding no
    pixel equal to its y, raises ValueError (after the call; nothing is written out of
    bounds)."""
    cdef size_t P, HW, ohw, H, W, kh, kw, sh, sw, ph, pw, oh, ow, bad
    cdef bint f64
    cdef void *pdx
    cdef void *pdy
    cdef void *pi
    cdef void *px
    cdef void *py
    if check.taps(argmax):
        if x is not None or y is not None:
            raise TypeError("max_pool2d_backward takes a uint8 argmax and the window, not x and y")
        ceil_mode = check.truth("ceil_mode", ceil_mode)
        f64, s = check.max_pool2d_backward_taps(dy, argmax, dx, kernel, stride, padding, ceil_mode)
        P, H, W, kh, kw, sh, sw = s[0] * s[1], s[2], s[3], s[4], s[5], s[6], s[7]
        ph, pw, oh, ow = s[8], s[9], s[10], s[11]
        pdx, pdy, pi = data(dx), data(dy), data(argmax)
        with nogil:
            bad = in_max_pool2d_backward_taps(f64, pdx, pdy, <const uint8_t *>pi, P, H, W, oh,
                                              ow, kh, kw, sh, sw, ph, pw)
        if bad == <size_t>-1:
            raise MemoryError("max_pool2d_backward: no memory for its plane buffers")
        if bad:
            raise ValueError(f"argmax has {bad} taps outside the map: not max_pool2d_forward's")
        return dx
    if argmax is not None:
        if any(v is not None for v in (x, y, kernel)):
            raise TypeError("max_pool2d_backward takes argmax, or x, y and kernel, not both")
        f64, P, HW, ohw = check.max_pool2d_backward(dy, argmax, dx)
        pdx, pdy, pi = data(dx), data(dy), data(argmax)
        with nogil:
            bad = in_max_pool2d_backward(f64, pdx, pdy, <int64_t *>pi, P, HW, ohw)
        if bad:
            raise ValueError(f"argmax has {bad} entries outside [0, {HW}): not "
                             "max_pool2d_forward's")
        return dx
    ceil_mode = check.truth("ceil_mode", ceil_mode)
    f64, s = check.max_pool2d_backward_search(dy, dx, x, y, kernel, stride, padding, ceil_mode)
    P, H, W, kh, kw, sh, sw = s[0] * s[1], s[2], s[3], s[4], s[5], s[6], s[7]
    ph, pw, oh, ow = s[8], s[9], s[10], s[11]
    pdx, pdy, px, py = data(dx), data(dy), data(x), data(y)
    with nogil:
        bad = in_max_pool2d_backward_search(f64, pdx, pdy, px, py, P, H, W, oh, ow, kh, kw, sh,
                                            sw, ph, pw)
    if bad == <size_t>-1:
        raise MemoryError("max_pool2d_backward: no memory for its plane buffers")
    if bad:
        raise ValueError(f"y has {bad} entries that no pixel of their window in x equals: not "
                         "max_pool2d_forward's output for this x and window")
    return dx


def _avg_pool(bint forward, src, dst, s, int count_include_pad, bint f64):
    """y = avg_pool(x) (forward: src x, dst y) or dx = its adjoint applied to dy (src dy, dst dx)."""
    cdef size_t P = s[0] * s[1], H = s[2], W = s[3], kh = s[4], kw = s[5], sh = s[6], sw = s[7]
    cdef size_t ph = s[8], pw = s[9], oh = s[10], ow = s[11]
    cdef void *pd = data(dst)
    cdef void *ps = data(src)
    cdef int failed = 0
    with nogil:
        if forward:
            failed = in_avg_pool2d_forward(f64, pd, ps, P, H, W, oh, ow, kh, kw, sh, sw, ph, pw,
                                           count_include_pad)
        else:
            in_avg_pool2d_backward(f64, pd, ps, P, H, W, oh, ow, kh, kw, sh, sw, ph, pw,
                                   count_include_pad)
    if failed:
        raise MemoryError("avg_pool2d_forward: no memory for its row buffers")


def avg_pool2d_forward(x, y, kernel, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True):
    """y = the mean of each window (see the module's note on the divisor); returns y."""
    avg_pool2d_forward_call(x, y, kernel, stride, padding, ceil_mode, count_include_pad)()
    return y


def avg_pool2d_forward_call(x, y, kernel, stride=None, padding=0, ceil_mode=False,
                            count_include_pad=True):
    """avg_pool2d_forward(...) checked now, run later (see max_pool2d_forward_call)."""
    ceil_mode = check.truth("ceil_mode", ceil_mode)
    f64, s, cip = check.avg_pool2d_forward(x, y, kernel, stride, padding, ceil_mode,
                                           count_include_pad)
    return partial(_avg_pool, True, x, y, s, cip, f64)


def avg_pool2d_backward(dy, dx, kernel, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True):
    """dx = 0, then each window adds dy / divisor to its pixels; returns dx."""
    ceil_mode = check.truth("ceil_mode", ceil_mode)
    f64, s, cip = check.avg_pool2d_backward(dy, dx, kernel, stride, padding, ceil_mode,
                                            count_include_pad)
    _avg_pool(False, dy, dx, s, cip, f64)
    return dx


def _adaptive_avg_pool(bint forward, src, dst, s, bint f64):
    """y = adaptive_avg_pool(x) (forward: src x, dst y) or dx = its adjoint applied to dy (src dy,
    dst dx)."""
    cdef size_t P = s[0], H = s[1], W = s[2], oh = s[3], ow = s[4]
    cdef void *pd = data(dst)
    cdef void *ps = data(src)
    with nogil:
        if forward: in_adaptive_avg_pool2d_forward(f64, pd, ps, P, H, W, oh, ow)
        else: in_adaptive_avg_pool2d_backward(f64, pd, ps, P, H, W, oh, ow)


def adaptive_avg_pool2d_forward(x, y):
    """y = the mean of each window, the output size y's (see the module's note); returns y."""
    f64, s = check.adaptive_avg_pool2d_forward(x, y)
    _adaptive_avg_pool(True, x, y, s, f64)
    return y


def adaptive_avg_pool2d_backward(dy, dx):
    """dx = 0, then each window adds dy / its size to its pixels; returns dx."""
    f64, s = check.adaptive_avg_pool2d_backward(dy, dx)
    _adaptive_avg_pool(False, dy, dx, s, f64)
    return dx


def global_avg_pool_forward(x, y):
    """y[b, c] = mean of x[b, c] over all positions; x (B, C, ...), y B*C values; returns y."""
    global_avg_pool_forward_call(x, y)()
    return y


def global_avg_pool_forward_call(x, y):
    """global_avg_pool_forward(...) checked now, run later (see max_pool2d_forward_call)."""
    f64, P, S = check.global_avg_pool_forward(x, y)
    return partial(_global_avg_pool, f64, y, x, P, S)


def _global_avg_pool(bint f64, y, x, size_t P, size_t S):
    cdef void *py = data(y)
    cdef void *px = data(x)
    with nogil:
        in_global_avg_pool_forward(f64, py, px, P, S)


def global_avg_pool_backward(dy, dx):
    """dx[b, c, :] = dy[b, c] / positions; returns dx."""
    cdef size_t P, S
    cdef bint f64
    f64, P, S = check.global_avg_pool_backward(dy, dx)
    cdef void *pdx = data(dx)
    cdef void *pdy = data(dy)
    with nogil:
        in_global_avg_pool_backward(f64, pdx, pdy, P, S)
    return dx


# ---- the blocked layout NCHWc (frozen inference, float32) ------------------------------------
# A blocked tensor of C channels is (B, C // blk, H, W, blk), blk 8 or 16: channel c is lane
# c % blk of block c // blk. Every array may also be a channel (block) slice t[:, c0:c1] of a
# larger C-contiguous tensor (a concatenation's part).

def _reorder(x, y, bint to_plain):
    cdef size_t B, CB, S, blk, xi, yi
    B, CB, S, blk, xi, yi = check.nchwc_reorder(x, y, to_plain)
    cdef float *py = <float *>data(y)
    cdef const float *px = <const float *>data(x)
    with nogil:
        in_nchwc_reorder_f32(py, px, B, CB, S, blk, xi, yi, to_plain)
    return y


def nchw_to_nchwc(x, y):
    """y (B, C // blk, H, W, blk) = x (B, C, H, W) in the blocked layout; returns y."""
    return _reorder(x, y, False)


def nchwc_to_nchw(x, y):
    """y (B, C, H, W) = the blocked x (B, C // blk, H, W, blk) in the plain layout; returns y."""
    return _reorder(x, y, True)


def _pool_nchwc(x, y, kernel, stride, padding, ceil_mode, int average_include_pad):
    """max pooling (average_include_pad < 0) or average pooling of a blocked x into y"""
    s, blk_, xi_, yi_ = check.pool2d_forward_nchwc(x, y, kernel, stride, padding,
                                                   check.truth("ceil_mode", ceil_mode))
    cdef size_t B = s[0], blk = blk_, CB = s[1] // blk_, H = s[2], W = s[3], kh = s[4], kw = s[5]
    cdef size_t sh = s[6], sw = s[7], ph = s[8], pw = s[9], oh = s[10], ow = s[11]
    cdef size_t xi = xi_, yi = yi_
    cdef float *py = <float *>data(y)
    cdef const float *px = <const float *>data(x)
    with nogil:
        if average_include_pad < 0:
            in_max_pool2d_forward_nchwc_f32(py, px, B, CB, blk, xi, yi, H, W, oh, ow, kh, kw, sh,
                                            sw, ph, pw)
        else:
            in_avg_pool2d_forward_nchwc_f32(py, px, B, CB, blk, xi, yi, H, W, oh, ow, kh, kw, sh,
                                            sw, ph, pw, average_include_pad)
    return y


def max_pool2d_forward_nchwc(x, y, kernel, stride=None, padding=0, ceil_mode=False):
    """max_pool2d_forward (no argmax) of a blocked x into a blocked y; returns y."""
    return _pool_nchwc(x, y, kernel, stride, padding, ceil_mode, -1)


def avg_pool2d_forward_nchwc(x, y, kernel, stride=None, padding=0, ceil_mode=False,
                             count_include_pad=True):
    """avg_pool2d_forward of a blocked x into a blocked y (sums in double); returns y."""
    cip = int(check.truth("count_include_pad", count_include_pad))
    return _pool_nchwc(x, y, kernel, stride, padding, ceil_mode, cip)


def global_avg_pool_forward_nchwc(x, y):
    """y (B, C), plain = the mean of each channel of the blocked x over its H*W pixels (in
    double); returns y."""
    cdef size_t B, CB, blk, xi, S
    B, CB, blk, xi, S = check.global_avg_pool_forward_nchwc(x, y)
    cdef float *py = <float *>data(y)
    cdef const float *px = <const float *>data(x)
    with nogil:
        in_global_avg_pool_forward_nchwc_f32(py, px, B, CB, blk, xi, S)
    return y
