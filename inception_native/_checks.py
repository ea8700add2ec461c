"""Argument checks shared by the native wrappers and their NumPy twins.

Every kernel validates its arguments here before any memory is touched, so a bad call raises a
TypeError or ValueError that names the argument and says what was expected, and both backends
reject exactly the same calls.
"""
import math
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def size(name, value, minimum=0):
    """A non-negative (or >= minimum) integer size, as a Python int."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def number(name, value, low=-math.inf, high=math.inf, low_open=False):
    """A finite real number in [low, high] (or (low, high] when low_open), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a finite number in {bracket}{low}, {high}], got {value}")
    return value


def float_array(name, a, dtype=None, writeable=False, like="the first array"):
    """A C-contiguous float32/float64 ndarray (of `dtype`, when given); returns its dtype."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}, expected {dtype} like {like}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if writeable and not a.flags.writeable:
        raise ValueError(f"{name} is read-only but is written to")
    return a.dtype


def arrays(*specs):
    """Check (name, array, expected element count, written) tuples; all share one float dtype.

    The expected count is an int (exact) or ("at least", n) for strided vectors.
    Returns True for float64, False for float32.
    """
    dtype, first = None, specs[0][0]
    for name, a, count, written in specs:
        dtype = float_array(name, a, dtype, written, first)
        if isinstance(count, tuple):
            if a.size < count[1]:
                raise ValueError(f"{name} has {a.size} elements, needs at least {count[1]}")
        elif a.size != count:
            raise ValueError(f"{name} has {a.size} elements, expected {count}")
    return dtype == np.float64


def tensor_sizes(**named):
    """Sizes of a (batch, channels, spatial) tensor: integers >= 1."""
    return tuple(size(name, value, 1) for name, value in named.items())


def strided(n, inc):
    """Elements a strided vector of n values at stride inc spans: (n - 1) * inc + 1."""
    return ("at least", (n - 1) * inc + 1 if n else 0)


def nchw(name, x):
    """(B, C, S) of an activation of shape (B, C, *spatial), ndim >= 2, every size >= 1."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (batch, channels, ...), got shape {x.shape}")
    if 0 in x.shape:
        raise ValueError(f"{name} must not be empty, got shape {x.shape}")
    return x.shape[0], x.shape[1], math.prod(x.shape[2:])


def same_shape(name, a, shape):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")


# ---- one check per kernel, shared by inception_native.blas / .batchnorm and .reference ----
# Each returns (is_float64, sizes...) once every argument has passed.

def mean_cpu(x, batch, filters, spatial, mean):
    b, f, s = tensor_sizes(batch=batch, filters=filters, spatial=spatial)
    return arrays(("x", x, b * f * s, False), ("mean", mean, f, True)), b, f, s


def variance_cpu(x, mean, batch, filters, spatial, variance):
    b, f, s = tensor_sizes(batch=batch, filters=filters, spatial=spatial)
    if b * s == 1:
        raise ValueError("batch*spatial must be > 1: variance_cpu divides by batch*spatial - 1")
    return arrays(("x", x, b * f * s, False), ("mean", mean, f, False),
                  ("variance", variance, f, True)), b, f, s


def normalize_cpu(x, mean, variance, batch, filters, spatial):
    b, f, s = tensor_sizes(batch=batch, filters=filters, spatial=spatial)
    return arrays(("x", x, b * f * s, True), ("mean", mean, f, False),
                  ("variance", variance, f, False)), b, f, s


def axpy_cpu(N, ALPHA, X, INCX, Y, INCY):
    n, incx, incy = size("N", N), size("INCX", INCX, 1), size("INCY", INCY, 1)
    alpha = number("ALPHA", ALPHA)
    return arrays(("X", X, strided(n, incx), False), ("Y", Y, strided(n, incy), True)), n, alpha, incx, incy


def scal_cpu(N, ALPHA, X, INCX):
    n, incx, alpha = size("N", N), size("INCX", INCX, 1), number("ALPHA", ALPHA)
    return arrays(("X", X, strided(n, incx), True)), n, alpha, incx


def copy_cpu(N, X, INCX, Y, INCY):
    n, incx, incy = size("N", N), size("INCX", INCX, 1), size("INCY", INCY, 1)
    return arrays(("X", X, strided(n, incx), False), ("Y", Y, strided(n, incy), True)), n, incx, incy


fill_cpu = scal_cpu  # same arguments: N, ALPHA, X (written), INCX


def scale_bias(output, scales, batch, n, size):
    b, c, s = tensor_sizes(batch=batch, n=n, size=size)
    return arrays(("output", output, b * c * s, True), ("scales", scales, c, False)), b, c, s


def add_bias(output, biases, batch, n, size):
    b, c, s = tensor_sizes(batch=batch, n=n, size=size)
    return arrays(("output", output, b * c * s, True), ("biases", biases, c, False)), b, c, s


def backward_bias(bias_updates, delta, batch, n, size):
    b, c, s = tensor_sizes(batch=batch, n=n, size=size)
    return arrays(("bias_updates", bias_updates, c, True), ("delta", delta, b * c * s, False)), b, c, s


def backward_scale_cpu(x_norm, delta, batch, n, size, scale_updates):
    b, c, s = tensor_sizes(batch=batch, n=n, size=size)
    return arrays(("x_norm", x_norm, b * c * s, False), ("delta", delta, b * c * s, False),
                  ("scale_updates", scale_updates, c, True)), b, c, s


def mean_delta_cpu(delta, variance, batch, filters, spatial, mean_delta):
    b, f, s = tensor_sizes(batch=batch, filters=filters, spatial=spatial)
    return arrays(("delta", delta, b * f * s, False), ("variance", variance, f, False),
                  ("mean_delta", mean_delta, f, True)), b, f, s


def variance_delta_cpu(x, delta, mean, variance, batch, filters, spatial, variance_delta):
    b, f, s = tensor_sizes(batch=batch, filters=filters, spatial=spatial)
    return arrays(("x", x, b * f * s, False), ("delta", delta, b * f * s, False),
                  ("mean", mean, f, False), ("variance", variance, f, False),
                  ("variance_delta", variance_delta, f, True)), b, f, s


def normalize_delta_cpu(x, mean, variance, mean_delta, variance_delta, batch, filters, spatial, delta):
    b, f, s = tensor_sizes(batch=batch, filters=filters, spatial=spatial)
    return arrays(("x", x, b * f * s, False), ("mean", mean, f, False),
                  ("variance", variance, f, False), ("mean_delta", mean_delta, f, False),
                  ("variance_delta", variance_delta, f, False), ("delta", delta, b * f * s, True)), b, f, s


def _training_sizes(x, training):
    B, C, S = nchw("x", x)
    if training and B * S == 1:
        raise ValueError(f"x: training needs more than one value per channel, got shape {x.shape}")
    return B, C, S


def batchnorm_forward(x, gamma, beta, rolling_mean, rolling_variance, y, mean, invstd,
                      training, eps, momentum):
    B, C, S = _training_sizes(x, training)
    eps = number("eps", eps, 0.0, low_open=True)
    momentum = number("momentum", momentum, 0.0, 1.0)
    same_shape("y", y, x.shape)
    f64 = arrays(("x", x, x.size, False), ("gamma", gamma, C, False), ("beta", beta, C, False),
                 ("rolling_mean", rolling_mean, C, training),
                 ("rolling_variance", rolling_variance, C, training),
                 ("y", y, x.size, True), ("mean", mean, C, True), ("invstd", invstd, C, True))
    return f64, B, C, S, eps, momentum


def batchnorm_backward(dy, x, mean, invstd, gamma, dx, dgamma, dbeta):
    B, C, S = nchw("x", x)
    same_shape("dy", dy, x.shape)
    same_shape("dx", dx, x.shape)
    return arrays(("dy", dy, x.size, False), ("x", x, x.size, False), ("mean", mean, C, False),
                  ("invstd", invstd, C, False), ("gamma", gamma, C, False),
                  ("dx", dx, x.size, True), ("dgamma", dgamma, C, True),
                  ("dbeta", dbeta, C, True)), B, C, S


def batchnorm_forward_darknet(x, scales, biases, rolling_mean, rolling_variance, y, x_norm, mean,
                              variance, training):
    B, C, S = _training_sizes(x, training)
    same_shape("y", y, x.shape)
    same_shape("x_norm", x_norm, x.shape)
    return arrays(("x", x, x.size, False), ("scales", scales, C, False),
                  ("biases", biases, C, False), ("rolling_mean", rolling_mean, C, training),
                  ("rolling_variance", rolling_variance, C, training), ("y", y, x.size, True),
                  ("x_norm", x_norm, x.size, training), ("mean", mean, C, training),
                  ("variance", variance, C, training)), B, C, S


def batchnorm_backward_darknet(delta, x, x_norm, mean, variance, scales, scale_updates,
                               bias_updates):
    B, C, S = nchw("x", x)
    same_shape("delta", delta, x.shape)
    same_shape("x_norm", x_norm, x.shape)
    return arrays(("delta", delta, x.size, True), ("x", x, x.size, False),
                  ("x_norm", x_norm, x.size, False), ("mean", mean, C, False),
                  ("variance", variance, C, False), ("scales", scales, C, False),
                  ("scale_updates", scale_updates, C, True),
                  ("bias_updates", bias_updates, C, True)), B, C, S
