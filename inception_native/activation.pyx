# cython: language_level=3
"""ReLU, a per-channel affine map, inverted dropout, channel concatenation and softmax
cross-entropy with label smoothing, forward and backward, native, float32 and float64.

Outputs are written into the arrays passed (ReLU and dropout may run in place: pass the same
array twice); functions return the main output (the loss for the cross-entropy forward).
The NumPy twins, with the same signatures, are in inception_native.reference.
"""
cimport numpy as cnp
from in_activation cimport *
from libc.stdint cimport int64_t, uint64_t

from . import _checks as check

cnp.import_array()



cdef inline void *data(a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


def relu_forward(x, y):
    """y = max(x, 0); y may be x (in place); returns y."""
    cdef size_t n
    cdef bint f64
    f64, n = check.relu_forward(x, y)
    cdef void *py = data(y)
    cdef void *px = data(x)
    with nogil:
        in_relu_forward(f64, py, px, n)
    return y


def channel_affine_forward(x, scale, shift, y, relu=False):
    """y = x * scale + shift per channel (then max(., 0) when relu); x and y (B, C, ...) alike,
    each C-contiguous or, 4-D, a channel slice [:, c0:c1] of a C-contiguous tensor (an Inception
    branch writing its part of the concatenation); scale (C,) or None (no product), shift (C,);
    y may be x; returns y."""
    cdef size_t B, C, S, x_image, y_image
    cdef bint f64
    f64, B, C, S, x_image, y_image = check.channel_affine_forward(x, scale, shift, y)
    cdef void *py = data(y)
    cdef void *px = data(x)
    cdef void *ps = NULL if scale is None else data(scale)
    cdef void *ph = data(shift)
    cdef int fused = bool(relu)
    with nogil:
        in_channel_affine_forward(f64, py, px, ps, ph, B, C, S, x_image, y_image, fused)
    return y


def relu_backward(dy, y, dx):
    """dx = dy where the forward's output y > 0, else 0; dx may be dy; returns dx."""
    cdef size_t n
    cdef bint f64
    f64, n = check.relu_backward(dy, y, dx)
    cdef void *pdx = data(dx)
    cdef void *pdy = data(dy)
    cdef void *py = data(y)
    with nogil:
        in_relu_backward(f64, pdx, pdy, py, n)
    return dx


def dropout_forward(x, y, mask, p, seed):
    """Inverted dropout: mask = 1/(1 - p) where kept, 0 where dropped (probability p), y = x * mask;
    y may be x; returns y. The draws are a function of (seed, element index) only: the same seed
    gives the same mask on any thread count, and in the NumPy twin."""
    cdef size_t n
    cdef double p_
    cdef uint64_t s
    cdef bint f64
    f64, n, p_, s = check.dropout_forward(x, y, mask, p, seed)
    cdef void *py = data(y)
    cdef void *pm = data(mask)
    cdef void *px = data(x)
    with nogil:
        in_dropout_forward(f64, py, pm, px, n, p_, s)
    return y


def dropout_backward(dy, mask, dx):
    """dx = dy * mask; dx may be dy; returns dx."""
    cdef size_t n
    cdef bint f64
    f64, n = check.dropout_backward(dy, mask, dx)
    cdef void *pdx = data(dx)
    cdef void *pdy = data(dy)
    cdef void *pm = data(mask)
    with nogil:
        in_dropout_backward(f64, pdx, pdy, pm, n)
    return dx


def _concat(bint forward, whole, parts, bint f64, size_t B, size_t Cy, size_t S, channels):
    cdef size_t offset = 0, Cx
    cdef void *pw = data(whole)
    cdef void *pp
    for part, c in zip(parts, channels):
        Cx = c
        pp = data(part)
        with nogil:
            if forward: in_concat_forward(f64, pw, pp, B, Cx, Cy, offset, S)
            else: in_concat_backward(f64, pp, pw, B, Cx, Cy, offset, S)
        offset += Cx


def concat_forward(xs, y):
    """y = the xs side by side along channels (axis 1); xs a list of (B, Ci, ...); returns y."""
    f64, B, Cy, S, channels = check.concat_forward(xs, y)
    _concat(True, y, xs, f64, B, Cy, S, channels)
    return y


def concat_backward(dy, dxs):
    """The split: dxs[i] = dy's channels of part i; returns dxs."""
    f64, B, Cy, S, channels = check.concat_backward(dy, dxs)
    _concat(False, dy, dxs, f64, B, Cy, S, channels)
    return dxs


def softmax_cross_entropy_forward(logits, labels, probs, label_smoothing=0.0):
    """Mean over the batch of -sum_k q_k log softmax(logits)_k with q = (1 - e) onehot(label)
    + e / K (PyTorch's label_smoothing e); logits (N, K), labels int64 (N,) in [0, K), probs
    (N, K) receives the softmax for the backward. Returns the loss as a Python float."""
    cdef size_t N, K
    cdef double e, loss
    cdef bint f64
    f64, N, K, e = check.softmax_cross_entropy_forward(logits, labels, probs, label_smoothing)
    cdef void *pp = data(probs)
    cdef void *pz = data(logits)
    cdef void *pl = data(labels)
    with nogil:
        loss = in_softmax_cross_entropy_forward(f64, pp, pz, <int64_t *>pl, N, K, e)
    return loss


def softmax_cross_entropy_backward(probs, labels, dlogits, label_smoothing=0.0, dloss=1.0):
    """dlogits = dloss * (probs - q) / N, the gradient of dloss * the mean loss; dlogits may be
    probs; returns dlogits."""
    cdef size_t N, K
    cdef double e, dl
    cdef bint f64
    f64, N, K, e, dl = check.softmax_cross_entropy_backward(probs, labels, dlogits,
                                                            label_smoothing, dloss)
    cdef void *pd = data(dlogits)
    cdef void *pp = data(probs)
    cdef void *pl = data(labels)
    with nogil:
        in_softmax_cross_entropy_backward(f64, pd, pp, <int64_t *>pl, N, K, e, dl)
    return dlogits


# ---- Darknet's leaky and logistic activations, the softmax ---------------------------------

def leaky_relu_forward(x, y, slope=0.1):
    """y = x where x > 0, else slope * x (Darknet's leaky: slope 0.1), each value computed in
    double; slope >= 0; y may be x; returns y."""
    cdef size_t n
    cdef double a
    cdef bint f64
    f64, n, a = check.leaky_relu_forward(x, y, slope)
    cdef void *py = data(y)
    cdef void *px = data(x)
    with nogil:
        in_leaky_relu_forward(f64, py, px, n, a)
    return y


def leaky_relu_backward(dy, y, dx, slope=0.1):
    """dx = dy where the forward's output y > 0, else slope * dy; dx may be dy; returns dx."""
    cdef size_t n
    cdef double a
    cdef bint f64
    f64, n, a = check.leaky_relu_backward(dy, y, dx, slope)
    cdef void *pdx = data(dx)
    cdef void *pdy = data(dy)
    cdef void *py = data(y)
    with nogil:
        in_leaky_relu_backward(f64, pdx, pdy, py, n, a)
    return dx


def logistic_forward(x, y):
    """y = 1 / (1 + exp(-x)), computed in double; y may be x; returns y."""
    cdef size_t n
    cdef bint f64
    f64, n = check.logistic_forward(x, y)
    cdef void *py = data(y)
    cdef void *px = data(x)
    with nogil:
        in_logistic_forward(f64, py, px, n)
    return y


def logistic_backward(dy, y, dx):
    """dx = dy * y * (1 - y), y the forward's output; dx may be dy; returns dx."""
    cdef size_t n
    cdef bint f64
    f64, n = check.logistic_backward(dy, y, dx)
    cdef void *pdx = data(dx)
    cdef void *pdy = data(dy)
    cdef void *py = data(y)
    with nogil:
        in_logistic_backward(f64, pdx, pdy, py, n)
    return dx


def softmax_forward(x, y):
    """y = the softmax of each row of x (N, K), with sums in double; y may be x; returns y."""
    cdef size_t N, K
    cdef bint f64
    f64, N, K = check.softmax_forward(x, y)
    cdef void *py = data(y)
    cdef void *px = data(x)
    with nogil:
        in_softmax_forward(f64, py, px, N, K)
    return y


def softmax_backward(dy, y, dx):
    """dx = y * (dy - sum(dy * y)) per row, y the forward's output (N, K): the gradient through
    the softmax; dx may be dy; returns dx."""
    cdef size_t N, K
    cdef bint f64
    f64, N, K = check.softmax_backward(dy, y, dx)
    cdef void *pdx = data(dx)
    cdef void *pdy = data(dy)
    cdef void *py = data(y)
    with nogil:
        in_softmax_backward(f64, pdx, pdy, py, N, K)
    return dx
