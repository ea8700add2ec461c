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
from libc.stdint cimport int64_t

from . import _checks as check

cnp.import_array()



cdef inline void *data(a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def max_pool2d_forward(x, y, argmax, kernel, stride=None, padding=0, ceil_mode=False):
    """y = the maximum of each window, argmax (int64, like y) = its index iy*W + ix in the plane
    (the first maximum; a NaN wins); returns y."""
    ceil_mode = check.truth("ceil_mode", ceil_mode)
    is64, s = check.max_pool2d_forward(x, y, argmax, kernel, stride, padding, ceil_mode)
    cdef bint f64 = is64
    cdef size_t P = s[0] * s[1], H = s[2], W = s[3], kh = s[4], kw = s[5], sh = s[6], sw = s[7]
    cdef size_t ph = s[8], pw = s[9], oh = s[10], ow = s[11]
    cdef void *py = data(y)
    cdef void *pi = data(argmax)
    cdef void *px = data(x)
    with nogil:
                    in_max_pool2d_forward(f64, py, <int64_t *>pi, px, P, H, W, oh, ow, kh, kw, sh, sw, ph, pw)
    return y


def max_pool2d_backward(dy, argmax, dx):
    """dx = 0, then dx[argmax] += dy, plane by plane; returns dx. An argmax entry outside the
    plane raises ValueError (after the call; nothing is written out of bounds)."""
    cdef size_t P, HW, ohw, bad
    cdef bint f64
    f64, P, HW, ohw = check.max_pool2d_backward(dy, argmax, dx)
    cdef void *pdx = data(dx)
    cdef void *pdy = data(dy)
    cdef void *pi = data(argmax)
    with nogil:
        bad = in_max_pool2d_backward(f64, pdx, pdy, <int64_t *>pi, P, HW, ohw)
    if bad:
        raise ValueError(f"argmax has {bad} entries outside [0, {HW}): not max_pool2d_forward's")
    return dx


def _avg_pool(bint forward, src, dst, s, int count_include_pad, bint f64):
    """y = avg_pool(x) (forward: src x, dst y) or dx = its adjoint applied to dy (src dy, dst dx)."""
    cdef size_t P = s[0] * s[1], H = s[2], W = s[3], kh = s[4], kw = s[5], sh = s[6], sw = s[7]
    cdef size_t ph = s[8], pw = s[9], oh = s[10], ow = s[11]
    cdef void *pd = data(dst)
    cdef void *ps = data(src)
    with nogil:
        if forward:
            in_avg_pool2d_forward(f64, pd, ps, P, H, W, oh, ow, kh, kw, sh, sw, ph, pw,
                                  count_include_pad)
        else:
            in_avg_pool2d_backward(f64, pd, ps, P, H, W, oh, ow, kh, kw, sh, sw, ph, pw,
                                   count_include_pad)


def avg_pool2d_forward(x, y, kernel, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True):
    """y = the mean of each window (see the module's note on the divisor); returns y."""
    ceil_mode = check.truth("ceil_mode", ceil_mode)
    f64, s, cip = check.avg_pool2d_forward(x, y, kernel, stride, padding, ceil_mode,
                                           count_include_pad)
    _avg_pool(True, x, y, s, cip, f64)
    return y


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
    cdef size_t P, S
    cdef bint f64
    f64, P, S = check.global_avg_pool_forward(x, y)
    cdef void *py = data(y)
    cdef void *px = data(x)
    with nogil:
        in_global_avg_pool_forward(f64, py, px, P, S)
    return y


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
