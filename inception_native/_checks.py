"""Argument checks shared by the native wrappers and their NumPy twins.

Every kernel validates its arguments here before any memory is touched, so a bad call raises a
TypeError or ValueError that names the argument and says what was expected, and both backends
reject exactly the same calls.
"""
import math
import operator

import numpy as np

from .shapes import output_hw

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


def truth(name, value):
    """A flag's truth value, as bool() gives it, but naming the argument where bool() fails (a
    NumPy array of several values has none)."""
    try:
        return bool(value)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{name} must be a bool, got {type(value).__name__}: {error}") from None


def float_array(name, a, dtype=None, writeable=False, like="the first array", contiguous=True):
    """A C-contiguous (when asked) float32/float64 ndarray (of `dtype`, when given); returns its
    dtype."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}, expected {dtype} like {like}")
    if contiguous and not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if writeable and not a.flags.writeable:
        raise ValueError(f"{name} is read-only but is written to")
    return a.dtype


def arrays(*specs):
    """Check (name, array, expected element count, written) tuples; all share one float dtype.

    The expected count is an int (exact), ("at least", n) for strided vectors, or None: any
    layout and size (checked by the caller).
    Returns True for float64, False for float32.
    """
    dtype, first = None, specs[0][0]
    for name, a, count, written in specs:
        dtype = float_array(name, a, dtype, written, first, count is not None)
        if count is None:
            continue
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


def sgd_momentum_cpu(p, grad, velocity, lr, momentum, weight_decay):
    rate, mom = number("lr", lr, 0.0), number("momentum", momentum, 0.0, 1.0)
    decay = number("weight_decay", weight_decay, 0.0)
    if not isinstance(p, np.ndarray):
        raise TypeError(f"p must be a numpy.ndarray, got {type(p).__name__}")
    f64 = arrays(("p", p, p.size, True), ("grad", grad, p.size, False),
                 ("velocity", velocity, p.size, True))
    for name, a, other, b in (("p", p, "grad", grad), ("p", p, "velocity", velocity),
                              ("grad", grad, "velocity", velocity)):
        if np.may_share_memory(a, b):
            raise ValueError(f"{name} and {other} must not overlap")
    return f64, p.size, rate, mom, decay


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


def _training_sizes(x, training, unbiased=True):
    B, C, S = nchw("x", x)
    if training and unbiased and B * S == 1:
        raise ValueError(f"x: training needs more than one value per channel, got shape {x.shape}")
    return B, C, S


def _sliceable(name, a, x, written=False):
    """The spec of a (like x) for arrays(): C-contiguous, or when x is 4-D any layout, a then
    being C-contiguous or a channel slice of a C-contiguous tensor (_image_stride checks)."""
    same_shape(name, a, x.shape)
    return ((name, a, None if x.ndim == 4 else x.size, written),)


def _image_stride(name, a, x, f64, written=False):
    """a's image stride in elements (see _sliceable)."""
    if x.ndim != 4:
        return math.prod(x.shape[1:])
    return conv_output(name, a, x.shape, np.float64 if f64 else np.float32, written)


def batchnorm_forward(x, gamma, beta, rolling_mean, rolling_variance, y, mean, invstd,
                      training, eps, momentum, unbiased):
    """... and x's and y's image strides (each C-contiguous, or for 4-D x a channel slice of a
    larger tensor)."""
    B, C, S = _training_sizes(x, training, unbiased)
    eps = number("eps", eps, 0.0, low_open=True)
    momentum = number("momentum", momentum, 0.0, 1.0)
    f64 = arrays(*_sliceable("x", x, x), ("gamma", gamma, C, False), ("beta", beta, C, False),
                 ("rolling_mean", rolling_mean, C, training),
                 ("rolling_variance", rolling_variance, C, training),
                 *_sliceable("y", y, x, True), ("mean", mean, C, True), ("invstd", invstd, C, True))
    return (f64, B, C, S, _image_stride("x", x, x, f64), _image_stride("y", y, x, f64, True),
            eps, momentum)


def channel_affine_forward(x, scale, shift, y):
    """(f64, B, C, S, x's image stride, y's): x and y alike, each C-contiguous or, for 4-D x, a
    channel slice of a larger tensor, y x itself or apart from it; scale (C,) or None, shift
    (C,)."""
    B, C, S = nchw("x", x)
    scaled = (("scale", scale, C, False),) if scale is not None else ()
    f64 = arrays(*_sliceable("x", x, x), *scaled, ("shift", shift, C, False),
                 *_sliceable("y", y, x, True))
    distinct(("x", x), ("y", y), ("scale", scale), ("shift", shift), same_ok=[("x", "y")])
    return f64, B, C, S, _image_stride("x", x, x, f64), _image_stride("y", y, x, f64, True)


def _relu_output(y_relu, x):
    """The (name, array, count, written) spec of a fused ReLU's output (like x), or none."""
    if y_relu is None:
        return ()
    same_shape("y_relu", y_relu, x.shape)
    return (("y_relu", y_relu, x.size, False),)


def batchnorm_backward(dy, x, mean, invstd, gamma, dx, dgamma, dbeta, y_relu=None):
    """... and x's and dy's image strides: x and dx like x, dy and y_relu (or None) like x, each
    pair C-contiguous or, for 4-D x, channel slices of larger tensors laid out alike."""
    B, C, S = nchw("x", x)
    f64 = arrays(*_sliceable("x", x, x), *_sliceable("dy", dy, x), ("mean", mean, C, False),
                 ("invstd", invstd, C, False), ("gamma", gamma, C, False),
                 *_sliceable("dx", dx, x, True), ("dgamma", dgamma, C, True),
                 ("dbeta", dbeta, C, True), *(_sliceable("y_relu", y_relu, x) if y_relu is not None else ()))
    stride = lambda name, a: _image_stride(name, a, x, f64, name == "dx")  # noqa: E731
    return f64, B, C, S, alike("x", x, "dx", dx, stride), alike("dy", dy, "y_relu", y_relu, stride)


def alike(name, a, other, b, stride):
    """a's image stride, stride(name, a), which b's (b None: a alone) must equal: a ValueError
    naming both when they differ (arrays read and written as one layout, e.g. x and dx)."""
    image = stride(name, a)
    if b is not None and stride(other, b) != image:
        raise ValueError(f"{other} and {name} must be laid out alike (the same image stride), got "
                         f"strides {b.strides} and {a.strides}")
    return image


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
                               bias_updates, y_relu=None):
    B, C, S = nchw("x", x)
    same_shape("delta", delta, x.shape)
    same_shape("x_norm", x_norm, x.shape)
    return arrays(("delta", delta, x.size, True), ("x", x, x.size, False),
                  ("x_norm", x_norm, x.size, False), ("mean", mean, C, False),
                  ("variance", variance, C, False), ("scales", scales, C, False),
                  ("scale_updates", scale_updates, C, True),
                  ("bias_updates", bias_updates, C, True), *_relu_output(y_relu, x)), B, C, S


# ---- convolution, pooling and the other layers ---------------------------------------------
# Sizes that reach the BLAS are Fortran ints.
BLAS_INT_MAX = 2**31 - 1


def pair(name, value, minimum=0, maximum=None):
    """An int or a pair of ints (height, width), each in [minimum, maximum], as a tuple of two
    ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
        names = (f"{name}[0]", f"{name}[1]")
    else:
        names, value = (name, name), (value, value)
    values = tuple(size(n, v, minimum) for n, v in zip(names, value))
    for n, v in zip(names, values):
        if maximum is not None and v > maximum:
            raise ValueError(f"{n} must be <= {maximum}, got {v}")
    return values


def blas_int(name, value):
    if value > BLAS_INT_MAX:
        raise ValueError(f"{name} = {value} does not fit the BLAS's 32-bit int")
    return value


def index_array(name, a, count, written=False, dtype=np.int64):
    """A C-contiguous ndarray of `count` elements of dtype (int64, or uint8 for taps)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if written and not a.flags.writeable:
        raise ValueError(f"{name} is read-only but is written to")
    if a.size != count:
        raise ValueError(f"{name} has {a.size} elements, expected {count}")


def distinct(*named, same_ok=()):
    """No two of the (name, array) pairs may overlap in memory, except pairs listed in same_ok
    that are the very same array (in-place use)."""
    named = [(n, a) for n, a in named if a is not None]
    for i, (n1, a1) in enumerate(named):
        for n2, a2 in named[i + 1:]:
            if a1 is a2 and ({n1, n2} in [set(p) for p in same_ok]):
                continue
            if np.may_share_memory(a1, a2):
                raise ValueError(f"{n1} and {n2} must not overlap in memory")


def image(name, a):
    """(B, C, H, W) of a 4-d ndarray with every size >= 1."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    return image_shape(name, a.shape)


def image_shape(name, shape):
    """shape as (B, C, H, W), every size an int >= 1."""
    shape = tuple(shape)
    if len(shape) != 4 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
        raise ValueError(f"{name} must have shape (batch, channels, height, width), all >= 1, "
                         f"got shape {shape}")
    return tuple(int(n) for n in shape)


def _lowering(names, channels, height, width, kh, kw, ph, pw, sh, sw):
    C, H, W = (size(n, v, 1) for n, v in zip(names[:3], (channels, height, width)))
    kh, kw = size(names[3], kh, 1), size(names[4], kw, 1)
    ph, pw = size(names[5], ph), size(names[6], pw)
    sh, sw = size(names[7], sh, 1), size(names[8], sw, 1)
    oh, ow = output_hw(H, W, kh, kw, sh, sw, ph, pw)
    return (C, H, W, kh, kw, ph, pw, sh, sw), C * kh * kw * oh * ow


_EXT_NAMES = ("channels", "height", "width", "kernel_h", "kernel_w", "pad_h", "pad_w", "stride_h",
              "stride_w")
_DARKNET_NAMES = ("channels", "height", "width", "ksize", "ksize", "pad", "pad", "stride", "stride")


def _lowering_arrays(names, im, col, im_written, *sizes):
    """The image (channels, height, width) and col (K, oh*ow) arrays of im2col or col2im."""
    sizes, cols = _lowering(names, *sizes)
    C, H, W = sizes[:3]
    distinct(("data_im", im), ("data_col", col))
    specs = [("data_im", im, C * H * W, im_written), ("data_col", col, cols, not im_written)]
    return (arrays(*(specs if not im_written else specs[::-1])), *sizes)


def im2col_ext(data_im, channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h,
               stride_w, data_col, _names=_EXT_NAMES):
    return _lowering_arrays(_names, data_im, data_col, False, channels, height, width, kernel_h,
                            kernel_w, pad_h, pad_w, stride_h, stride_w)


def col2im_ext(data_col, channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h,
               stride_w, data_im, _names=_EXT_NAMES):
    return _lowering_arrays(_names, data_im, data_col, True, channels, height, width, kernel_h,
                            kernel_w, pad_h, pad_w, stride_h, stride_w)


def im2col_cpu(data_im, channels, height, width, ksize, stride, pad, data_col):
    return im2col_ext(data_im, channels, height, width, ksize, ksize, pad, pad, stride, stride,
                      data_col, _names=_DARKNET_NAMES)


def col2im_cpu(data_col, channels, height, width, ksize, stride, pad, data_im):
    return col2im_ext(data_col, channels, height, width, ksize, ksize, pad, pad, stride, stride,
                      data_im, _names=_DARKNET_NAMES)


def flag(name, value):
    if isinstance(value, (bool, np.bool_)) or value in (0, 1):
        return int(bool(value))
    raise ValueError(f"{name} must be 0 or 1 (or a bool), got {value!r}")


def _matrix(name, a, rows, cols, ld_name, ld, written, dtype=None):
    ld = blas_int(ld_name, size(ld_name, ld, max(1, cols)))
    count = ("at least", (rows - 1) * ld + cols if rows and cols else 0)
    return (name, a, count, written), ld


def gemm(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc):
    ta, tb = flag("TA", TA), flag("TB", TB)
    m, n, k = (blas_int(nm, size(nm, v)) for nm, v in (("M", M), ("N", N), ("K", K)))
    alpha, beta = number("ALPHA", ALPHA), number("BETA", BETA)
    spec_a, lda = _matrix("A", A, *((k, m) if ta else (m, k)), "lda", lda, False)
    spec_b, ldb = _matrix("B", B, *((n, k) if tb else (k, n)), "ldb", ldb, False)
    spec_c, ldc = _matrix("C", C, m, n, "ldc", ldc, True)
    f64 = arrays(spec_a, spec_b, spec_c)
    distinct(("A", A), ("C", C))
    distinct(("B", B), ("C", C))
    return f64, ta, tb, m, n, k, alpha, lda, ldb, beta, ldc


def conv_sizes(x_shape, weight_shape, stride, padding):
    """(B, C, H, W, OC, kh, kw, sh, sw, ph, pw) of a convolution of x (x_shape) by weight; the
    GEMM sizes of its lowering must fit the BLAS's int."""
    B, C, H, W = image_shape("x", x_shape)
    OC, Cw, kh, kw = image_shape("weight", weight_shape)
    if Cw != C:
        raise ValueError(f"weight has {Cw} input channels (shape {tuple(weight_shape)}), x has "
                         f"{C} (shape {tuple(x_shape)})")
    (sh, sw), (ph, pw) = pair("stride", stride, 1), pair("padding", padding)
    oh, ow = output_hw(H, W, kh, kw, sh, sw, ph, pw)
    blas_int("output channels", OC)
    blas_int("C*kh*kw", C * kh * kw)
    blas_int("batch*out_h*out_w", B * oh * ow)
    return B, C, H, W, OC, kh, kw, sh, sw, ph, pw


def _workspace(workspace, need):
    return None if workspace is None else ("workspace", workspace, ("at least", need), True)


def conv_output(name, y, shape, dtype, written=True):
    """y of `shape` (B, OC, oh, ow) and `dtype` (written, or read): C-contiguous, or a channel
    slice y_big[:, c0:c0 + OC] of a C-contiguous tensor (an Inception branch writing its part of
    the concatenation, or reading its part of the gradient). Returns its image stride in
    elements."""
    same_shape(name, y, shape)
    return image_stride(name, y, dtype, written)


def image_stride(name, a, dtype, written=True):
    """The image stride in elements of a (an ndarray of `dtype`, images along its first axis):
    C-contiguous, or a slice a_big[:, c0:c1] of a C-contiguous tensor (channels of an NCHW
    tensor, or channel blocks of an NCHWc one), whose images lie one image stride apart."""
    if a.dtype != dtype:
        like = " like x" if name != "x" else ""
        raise TypeError(f"{name} has dtype {a.dtype}, expected {np.dtype(dtype)}{like}")
    if written and not a.flags.writeable:
        raise ValueError(f"{name} is read-only but is written to")
    item, image = a.itemsize, math.prod(a.shape[1:])
    if a.flags.c_contiguous:
        return image
    inner = tuple(item * math.prod(a.shape[k + 1:]) for k in range(1, a.ndim))
    if a.strides[1:] == inner and a.strides[0] % item == 0 and a.strides[0] >= image * item:
        return a.strides[0] // item
    raise ValueError(f"{name} must be C-contiguous or a channel slice [:, c0:c1] of a "
                     f"C-contiguous tensor, got strides {a.strides}")


def conv2d_forward(x, weight, bias, y, y_shape, workspace, need, scale=None, shift=None):
    """Arrays of a convolution whose sizes conv_sizes checked: x and y of y_shape each
    C-contiguous or a channel slice, bias, scale and shift (OC,) or None (not bias and shift
    both), the workspace (None or `need` values or more), one dtype. Returns (True for float64,
    x's and y's image strides in elements)."""
    same_shape("y", y, y_shape)
    OC = y_shape[1]
    specs = [("x", x, None, False), ("weight", weight, weight.size, False)]
    specs += [(n, a, OC, False) for n, a in (("bias", bias), ("scale", scale), ("shift", shift))
              if a is not None]
    specs += [s for s in (_workspace(workspace, need),) if s]
    f64 = arrays(*specs)
    x_image = image_stride("x", x, np.float64 if f64 else np.float32, written=False)
    y_image = conv_output("y", y, y_shape, np.float64 if f64 else np.float32)
    if bias is not None and shift is not None:
        raise ValueError("give bias or shift, not both (a bias is a shift without a scale)")
    distinct(("x", x), ("weight", weight), ("bias", bias), ("scale", scale), ("shift", shift),
             ("y", y), ("workspace", workspace))
    return f64, x_image, y_image


def conv2d_backward(dy, x, weight, dx, dweight, dbias, y_shape, workspace, need, y_relu=None,
                    accumulate=False):
    """As conv2d_forward, for the backward's arrays; x and dx (like x, or None), and dy and
    y_relu (like dy, or None), each C-contiguous or a channel slice, each pair with one image
    stride; accumulate (dx += dL/dx) needs a dx. Returns (True for float64, x's and dy's image
    strides in elements)."""
    if accumulate and dx is None:
        raise ValueError("accumulate=True needs dx (the array to add dL/dx into), got None")
    same_shape("dy", dy, y_shape)
    same_shape("dweight", dweight, weight.shape)
    if dx is not None:
        same_shape("dx", dx, x.shape)
    specs = [("x", x, None, False), ("weight", weight, weight.size, False),
             ("dweight", dweight, weight.size, True)]
    specs += [s for s in (("dx", dx, None, True) if dx is not None else None,
                          ("dbias", dbias, y_shape[1], True) if dbias is not None else None,
                          _workspace(workspace, need)) if s]
    f64 = arrays(*specs)
    dtype = np.float64 if f64 else np.float32
    dy_image = alike("dy", dy, "y_relu", y_relu,
                     lambda name, a: conv_output(name, a, y_shape, dtype, written=False))
    x_image = alike("x", x, "dx", dx, lambda name, a: image_stride(name, a, dtype, name == "dx"))
    distinct(("dy", dy), ("x", x), ("weight", weight), ("dx", dx), ("dweight", dweight),
             ("dbias", dbias), ("workspace", workspace), ("y_relu", y_relu))
    return f64, x_image, dy_image


# ---- the blocked layout (NCHWc): (B, C // blk, H, W, blk), channel c = block c // blk, lane
# c % blk; float32 only (frozen inference) ----

NCHWC_BLOCKS = (8, 16)


def nchwc_block_size(name, blk):
    """A block size the kernels have: 8 (AVX2, portable) or 16 (AVX-512, portable512)."""
    blk = size(name, blk, 1)
    if blk not in NCHWC_BLOCKS:
        raise ValueError(f"{name} must be one of {NCHWC_BLOCKS}, got {blk}")
    return blk


def nchwc_tensor(name, a, blk, written=False):
    """A blocked float32 tensor (B, Cb, H, W, blk), every size >= 1: C-contiguous, or a
    channel-block slice t[:, b0:b1] of a C-contiguous blocked tensor. Returns ((B, Cb, H, W),
    its image stride in elements)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.ndim != 5 or a.shape[4] != blk or 0 in a.shape:
        raise ValueError(f"{name} must have shape (batch, channels // {blk}, height, width, {blk}),"
                         f" all >= 1, got shape {a.shape}")
    if a.dtype != np.float32:
        raise TypeError(f"{name} must have dtype float32, got {a.dtype}")
    if written and not a.flags.writeable:
        raise ValueError(f"{name} is read-only but is written to")
    B, Cb, H, W, _ = a.shape
    plane, item = H * W * blk, a.itemsize
    if a.flags.c_contiguous:
        return (B, Cb, H, W), Cb * plane
    if (a.strides[1:] == (plane * item, W * blk * item, blk * item, item)
            and a.strides[0] % item == 0 and a.strides[0] >= Cb * plane * item):
        return (B, Cb, H, W), a.strides[0] // item
    raise ValueError(f"{name} must be C-contiguous or a channel-block slice [:, b0:b1] of a "
                     f"C-contiguous blocked tensor, got strides {a.strides}")


def nchwc_pack_weights(w, blk, plain_input):
    """w (OC, C, kh, kw) float32, C-contiguous; blk a block size; C a multiple of blk unless
    plain_input. Returns (OC, C, kh, kw, blk, plain_input)."""
    blk, plain = nchwc_block_size("blk", blk), truth("plain_input", plain_input)
    if not isinstance(w, np.ndarray):
        raise TypeError(f"w must be a numpy.ndarray, got {type(w).__name__}")
    if w.ndim != 4 or 0 in w.shape:
        raise ValueError(f"w must have shape (out_channels, in_channels, kh, kw), all >= 1, got "
                         f"shape {w.shape}")
    float_array("w", w, np.float32)
    OC, C, kh, kw = w.shape
    if not plain and C % blk:
        raise ValueError(f"w has {C} input channels, not a multiple of the block {blk}: a blocked "
                         f"input needs that (plain_input=True packs for a plain NCHW input)")
    return OC, C, kh, kw, blk, plain


def conv2d_forward_nchwc(x, wp, bias, y, stride, padding, relu, block):
    """The arguments of a blocked convolution: wp packed (nchwc_pack_weights) for block `block`
    (the conv ISA path's, nchwc_block()): (OCb, Cb, kh, kw, blk, blk) for a blocked x
    (B, Cb, H, W, blk), or (OCb, C, kh, kw, blk) for a plain x (B, C, H, W) (C-contiguous or a
    channel slice); y (B, OCb, oh, ow, blk), C-contiguous or a channel-block slice; bias
    (OCb*blk,) float32 or None. Returns (sizes (B, C, H, W, OC, kh, kw, sh, sw, ph, pw, oh, ow),
    plain, x's and y's image strides, relu); C and OC count channels."""
    if not isinstance(wp, np.ndarray):
        raise TypeError(f"wp must be a numpy.ndarray, got {type(wp).__name__}")
    if wp.ndim not in (5, 6) or 0 in wp.shape or wp.shape[-1] != block or (
            wp.ndim == 6 and wp.shape[4] != block):
        raise ValueError(f"wp must be nchwc_pack_weights's array for the block {block} of the "
                         f"conv ISA path: (OC // {block}, C // {block}, kh, kw, {block}, {block}) "
                         f"or, plain_input, (OC // {block}, C, kh, kw, {block}); got shape "
                         f"{wp.shape}")
    float_array("wp", wp, np.float32)
    plain = wp.ndim == 5
    OCb, Cw, kh, kw = wp.shape[:4]
    if plain:
        B, C, H, W = image("x", x)
        if x.dtype != np.float32:
            raise TypeError(f"x must have dtype float32, got {x.dtype}")
        x_image = conv_output("x", x, x.shape, np.float32, written=False)
        if C != Cw:
            raise ValueError(f"x has {C} channels, wp was packed for {Cw} (shape {wp.shape})")
    else:
        (B, Cb, H, W), x_image = nchwc_tensor("x", x, block)
        C = Cb * block
        if Cb != Cw:
            raise ValueError(f"x has {Cb} channel blocks, wp was packed for {Cw} (shape "
                             f"{wp.shape})")
    (sh, sw), (ph, pw) = pair("stride", stride, 1), pair("padding", padding)
    oh, ow = output_hw(H, W, kh, kw, sh, sw, ph, pw)
    (By, OCy, ohy, owy), y_image = nchwc_tensor("y", y, block, written=True)
    if (By, OCy, ohy, owy) != (B, OCb, oh, ow):
        raise ValueError(f"y must have shape {(B, OCb, oh, ow, block)}, got {y.shape}")
    OC = OCb * block
    if bias is not None:
        float_array("bias", bias, np.float32)
        if bias.shape != (OC,):
            raise ValueError(f"bias must have shape ({OC},), got {bias.shape}")
    distinct(("x", x), ("wp", wp), ("bias", bias), ("y", y))
    return ((B, C, H, W, OC, kh, kw, sh, sw, ph, pw, oh, ow), plain, x_image, y_image,
            truth("relu", relu))


def _linear_sizes(x, weight):
    if not isinstance(x, np.ndarray) or not isinstance(weight, np.ndarray):
        raise TypeError("x and weight must be numpy.ndarray")
    if x.ndim != 2 or weight.ndim != 2 or 0 in x.shape or 0 in weight.shape:
        raise ValueError(f"x must be (batch, in_features) and weight (out_features, "
                         f"in_features), got shapes {x.shape} and {weight.shape}")
    (N, I), (O, Iw) = x.shape, weight.shape
    if Iw != I:
        raise ValueError(f"weight has {Iw} input features (shape {weight.shape}), x has {I}")
    for nm, v in (("batch", N), ("in_features", I), ("out_features", O)):
        blas_int(nm, v)
    return N, I, O


def linear_forward(x, weight, bias, y):
    N, I, O = _linear_sizes(x, weight)
    same_shape("y", y, (N, O))
    specs = [("x", x, x.size, False), ("weight", weight, weight.size, False), ("y", y, y.size, True)]
    if bias is not None:
        specs.append(("bias", bias, O, False))
    f64 = arrays(*specs)
    distinct(("x", x), ("weight", weight), ("bias", bias), ("y", y))
    return f64, N, I, O


def linear_backward(dy, x, weight, dx, dweight, dbias):
    N, I, O = _linear_sizes(x, weight)
    same_shape("dy", dy, (N, O))
    same_shape("dweight", dweight, weight.shape)
    if dx is not None:
        same_shape("dx", dx, x.shape)
    specs = [("dy", dy, dy.size, False), ("x", x, x.size, False),
             ("weight", weight, weight.size, False), ("dweight", dweight, weight.size, True)]
    specs += [s for s in (("dx", dx, x.size, True) if dx is not None else None,
                          ("dbias", dbias, O, True) if dbias is not None else None) if s]
    f64 = arrays(*specs)
    distinct(("dy", dy), ("x", x), ("weight", weight), ("dx", dx), ("dweight", dweight),
             ("dbias", dbias))
    return f64, N, I, O


def pool_sizes(x, kernel, stride, padding, ceil_mode, name="x", shape=None):
    """(B, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow) of the image `x` (argument `name`), or of
    an image of `shape` (B, C, H, W); stride None means the kernel's size."""
    B, C, H, W = image(name, x) if shape is None else shape
    # windows, strides and padding past 2^31 mean nothing here and overflow NumPy's strides
    kh, kw = pair("kernel", kernel, 1, BLAS_INT_MAX)
    sh, sw = (kh, kw) if stride is None else pair("stride", stride, 1, BLAS_INT_MAX)
    ph, pw = pair("padding", padding, 0, BLAS_INT_MAX)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"padding ({ph}, {pw}) must be at most half the kernel ({kh}, {kw})")
    oh, ow = output_hw(H, W, kh, kw, sh, sw, ph, pw, ceil_mode)
    return B, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow


def _searchable(sizes):
    """The search for each window's first maximum numbers its taps (window row << bits of the
    kernel's width) | column in 31 bits."""
    kh, kw = sizes[4], sizes[5]
    if kh << (kw - 1).bit_length() > BLAS_INT_MAX:
        raise ValueError(f"kernel ({kh}, {kw}) is too large for max pooling's argmax: kernel "
                         f"height x (kernel width rounded up to a power of 2) must be < 2^31")


TAPS_MAX = 255  # max pooling's taps i*kw + j in a byte (csrc/pool.h's IN_POOL_TAPS_MAX)


def taps(argmax):
    """Whether max pooling's argmax holds window taps (uint8) rather than plane indices."""
    return isinstance(argmax, np.ndarray) and argmax.dtype == np.uint8


def _argmax_dtype(argmax):
    if isinstance(argmax, np.ndarray) and argmax.dtype not in (np.int64, np.uint8):
        raise TypeError(f"argmax must have dtype int64 (plane indices) or uint8 (window taps), "
                        f"got {argmax.dtype}")


def _tappable(sizes):
    kh, kw = sizes[4], sizes[5]
    if kh * kw > TAPS_MAX:
        raise ValueError(f"kernel ({kh}, {kw}) has {kh * kw} taps, more than a uint8 argmax "
                         f"holds ({TAPS_MAX}): use an int64 argmax")


def max_pool2d_forward(x, y, argmax, kernel, stride, padding, ceil_mode):
    sizes = pool_sizes(x, kernel, stride, padding, ceil_mode)
    B, C, oh, ow = sizes[0], sizes[1], sizes[10], sizes[11]
    same_shape("y", y, (B, C, oh, ow))
    _argmax_dtype(argmax)
    if taps(argmax):
        _tappable(sizes)
        index_array("argmax", argmax, y.size, True, np.uint8)
        same_shape("argmax", argmax, y.shape)
    elif argmax is not None:  # None: inference, no argmax written
        _searchable(sizes)
        index_array("argmax", argmax, y.size, True)
        same_shape("argmax", argmax, y.shape)
    f64 = arrays(("x", x, x.size, False), ("y", y, y.size, True))
    distinct(("x", x), ("y", y), ("argmax", argmax))
    return f64, sizes


def max_pool2d_backward(dy, argmax, dx):
    image("dx", dx)
    image("dy", dy)
    if dy.shape[:2] != dx.shape[:2]:
        raise ValueError(f"dy {dy.shape} and dx {dx.shape} must agree in batch and channels")
    _argmax_dtype(argmax)
    index_array("argmax", argmax, dy.size)
    same_shape("argmax", argmax, dy.shape)
    f64 = arrays(("dy", dy, dy.size, False), ("dx", dx, dx.size, True))
    distinct(("dy", dy), ("dx", dx))
    return f64, dx.shape[0] * dx.shape[1], dx.shape[2] * dx.shape[3], dy.shape[2] * dy.shape[3]


def max_pool2d_backward_taps(dy, argmax, dx, kernel, stride, padding, ceil_mode):
    """max_pool2d_backward from a uint8 argmax of window taps: the window given, dx the pooled
    image, dy and argmax its pooling's shape."""
    if kernel is None:
        raise TypeError("max_pool2d_backward from a uint8 argmax (window taps) needs the kernel "
                        "(and the stride, padding and ceil_mode of the forward)")
    sizes = pool_sizes(dx, kernel, stride, padding, ceil_mode, "dx")
    _tappable(sizes)
    pooled = (sizes[0], sizes[1], sizes[10], sizes[11])
    same_shape("dy", dy, pooled)
    index_array("argmax", argmax, dy.size, False, np.uint8)
    same_shape("argmax", argmax, pooled)
    f64 = arrays(("dy", dy, dy.size, False), ("dx", dx, dx.size, True))
    distinct(("dy", dy), ("dx", dx), ("argmax", argmax))
    return f64, sizes


def max_pool2d_backward_search(dy, dx, x, y, kernel, stride, padding, ceil_mode):
    """max_pool2d_backward without argmax: x, y and kernel given, x and dx alike, y and dy
    alike and the pooling of x's shape."""
    for name, value in (("x", x), ("y", y), ("kernel", kernel)):
        if value is None:
            raise TypeError(f"max_pool2d_backward without argmax needs {name} (x and y of the "
                            "forward, and its kernel)")
    sizes = pool_sizes(x, kernel, stride, padding, ceil_mode)
    _searchable(sizes)
    pooled = (sizes[0], sizes[1], sizes[10], sizes[11])
    same_shape("y", y, pooled)
    same_shape("dy", dy, pooled)
    same_shape("dx", dx, x.shape)
    f64 = arrays(("x", x, x.size, False), ("y", y, y.size, False), ("dy", dy, dy.size, False),
                 ("dx", dx, dx.size, True))
    for name, a in (("x", x), ("y", y), ("dy", dy)):  # read only: they may overlap each other
        distinct(("dx", dx), (name, a))
    return f64, sizes


def _avg_pool(image, pooled, backward, kernel, stride, padding, ceil_mode, count_include_pad):
    """x and y (forward) or dx and dy (backward: the image is written)."""
    (image_name, x), (pooled_name, y) = image, pooled
    sizes = pool_sizes(x, kernel, stride, padding, ceil_mode, image_name)
    same_shape(pooled_name, y, (sizes[0], sizes[1], sizes[10], sizes[11]))
    specs = [(pooled_name, y, y.size, not backward), (image_name, x, x.size, backward)]
    f64 = arrays(*(specs if backward else specs[::-1]))
    distinct(image, pooled)
    return f64, sizes, int(truth("count_include_pad", count_include_pad))


def avg_pool2d_forward(x, y, kernel, stride, padding, ceil_mode, count_include_pad):
    return _avg_pool(("x", x), ("y", y), False, kernel, stride, padding, ceil_mode,
                     count_include_pad)


def avg_pool2d_backward(dy, dx, kernel, stride, padding, ceil_mode, count_include_pad):
    return _avg_pool(("dx", dx), ("dy", dy), True, kernel, stride, padding, ceil_mode,
                     count_include_pad)


def _adaptive_avg_pool(named_image, named_pooled, backward):
    """x and y (forward) or dx and dy (backward: the image is written); the output size is the
    pooled array's (height, width), smaller or larger than the image's."""
    (image_name, x), (pooled_name, y) = named_image, named_pooled
    B, C, H, W = image(image_name, x)
    _, _, oh, ow = image(pooled_name, y)
    if y.shape[:2] != (B, C):
        raise ValueError(f"{pooled_name} {y.shape} and {image_name} {x.shape} must agree in batch "
                         f"and channels")
    for axis, n, m in (("height", H, oh), ("width", W, ow)):
        for name, size in ((image_name, n), (pooled_name, m)):
            if size > BLAS_INT_MAX:  # the kernel's window bounds (i+1)*n then fit in 64 bits
                raise ValueError(f"{name}'s {axis} must be <= {BLAS_INT_MAX}, got {size}")
    specs = [(pooled_name, y, y.size, not backward), (image_name, x, x.size, backward)]
    f64 = arrays(*(specs if backward else specs[::-1]))
    distinct(named_image, named_pooled)
    return f64, (B * C, H, W, oh, ow)


def adaptive_avg_pool2d_forward(x, y):
    return _adaptive_avg_pool(("x", x), ("y", y), False)


def adaptive_avg_pool2d_backward(dy, dx):
    return _adaptive_avg_pool(("dx", dx), ("dy", dy), True)


def global_avg_pool_forward(x, y):
    B, C, S = nchw("x", x)
    f64 = arrays(("x", x, x.size, False), ("y", y, B * C, True))
    distinct(("x", x), ("y", y))
    return f64, B * C, S


def global_avg_pool_backward(dy, dx):
    B, C, S = nchw("dx", dx)
    f64 = arrays(("dy", dy, B * C, False), ("dx", dx, dx.size, True))
    distinct(("dy", dy), ("dx", dx))
    return f64, B * C, S


# ---- the blocked layout's reorders and pooling (float32, as the convolution) ----------------

def _block_of(name, a):
    """The block of the blocked tensor a: its last axis's size (nchwc_tensor checks the rest)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.ndim != 5:
        raise ValueError(f"{name} must have shape (batch, channels // blk, height, width, blk), "
                         f"got shape {a.shape}")
    return nchwc_block_size(f"{name}'s last axis (the block)", a.shape[4])


def nchwc_reorder(x, y, to_plain):
    """x (B, C, H, W) plain and y blocked (to_plain False), or x blocked and y plain, each
    C-contiguous or a channel (block) slice, holding the same tensor. Returns (B, C // blk,
    H*W, blk, x's image stride, y's)."""
    if to_plain:
        blk = _block_of("x", x)
        (B, Cb, H, W), x_image = nchwc_tensor("x", x, blk)
        plain, y_image = image("y", y), image_stride("y", y, np.float32)
    else:
        blk = _block_of("y", y)
        plain, x_image = image("x", x), image_stride("x", x, np.float32, False)
        (B, Cb, H, W), y_image = nchwc_tensor("y", y, blk, True)
    if plain != (B, Cb * blk, H, W):
        raise ValueError(f"x {x.shape} and y {y.shape} must hold the same tensor (batch, channels, "
                         f"height, width): {plain} and {(B, Cb * blk, H, W)} (channels = blocks x "
                         "blk) differ")
    distinct(("x", x), ("y", y))
    return B, Cb, H * W, blk, x_image, y_image


def pool2d_forward_nchwc(x, y, kernel, stride, padding, ceil_mode):
    """Blocked x and y, y the pooling's (B, C // blk, oh, ow, blk). Returns (pool_sizes, blk,
    x's image stride, y's)."""
    blk = _block_of("x", x)
    (B, Cb, H, W), x_image = nchwc_tensor("x", x, blk)
    sizes = pool_sizes(x, kernel, stride, padding, ceil_mode, shape=(B, Cb * blk, H, W))
    same_shape("y", y, (B, Cb, sizes[10], sizes[11], blk))
    y_image = nchwc_tensor("y", y, blk, True)[1]
    distinct(("x", x), ("y", y))
    return sizes, blk, x_image, y_image


def global_avg_pool_forward_nchwc(x, y):
    """Blocked x, y a C-contiguous (B, C). Returns (B, C // blk, blk, x's image stride, H*W)."""
    blk = _block_of("x", x)
    (B, Cb, H, W), x_image = nchwc_tensor("x", x, blk)
    same_shape("y", y, (B, Cb * blk))
    float_array("y", y, np.float32, True, "x")
    distinct(("x", x), ("y", y))
    return B, Cb, blk, x_image, H * W


def _elementwise(first, *others, same_ok=()):
    """Arrays of one shape and dtype; (name, array, written) tuples, the first one setting the shape."""
    name, a, _ = first
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    for n, b, _ in others:
        same_shape(n, b, a.shape)
    f64 = arrays(*[(n, b, a.size, w) for n, b, w in (first,) + others])
    distinct(*[(n, b) for n, b, _ in (first,) + others], same_ok=same_ok)
    return f64, a.size


def relu_forward(x, y):
    return _elementwise(("x", x, False), ("y", y, True), same_ok=[("x", "y")])


def relu_backward(dy, y, dx):
    return _elementwise(("dy", dy, False), ("y", y, False), ("dx", dx, True),
                        same_ok=[("dy", "dx")])


def dropout_forward(x, y, mask, p, seed):
    p = number("p", p, 0.0, 1.0)
    if p >= 1:
        raise ValueError(f"p must be < 1 (the kept values are scaled by 1/(1 - p)), got {p}")
    seed = size("seed", seed)
    if seed >= 2**64:
        raise ValueError(f"seed must be < 2**64, got {seed}")
    f64, n = _elementwise(("x", x, False), ("y", y, True), ("mask", mask, True),
                          same_ok=[("x", "y")])
    return f64, n, p, seed


def dropout_backward(dy, mask, dx):
    return _elementwise(("dy", dy, False), ("mask", mask, False), ("dx", dx, True),
                        same_ok=[("dy", "dx")])


def _concat_parts(name, parts, whole_name, whole):
    B, Cy, S = nchw(whole_name, whole)
    if not isinstance(parts, (list, tuple)) or not parts:
        raise TypeError(f"{name} must be a non-empty list of numpy.ndarray")
    total, channels = 0, []
    for i, a in enumerate(parts):
        Bi, Ci, _ = nchw(f"{name}[{i}]", a)
        if a.shape[0] != B or a.shape[2:] != whole.shape[2:]:
            raise ValueError(f"{name}[{i}] has shape {a.shape}; every part must match "
                             f"{whole_name} {whole.shape} except in channels")
        channels.append(Ci)
        total += Ci
    if total != Cy:
        raise ValueError(f"the parts of {name} have {total} channels in all, {whole_name} has {Cy}")
    return B, Cy, S, channels


def concat_forward(xs, y):
    B, Cy, S, channels = _concat_parts("xs", xs, "y", y)
    f64 = arrays(("y", y, y.size, True), *[(f"xs[{i}]", a, a.size, False) for i, a in enumerate(xs)])
    distinct(("y", y), *[(f"xs[{i}]", a) for i, a in enumerate(xs)])
    return f64, B, Cy, S, channels


def concat_backward(dy, dxs):
    B, Cy, S, channels = _concat_parts("dxs", dxs, "dy", dy)
    f64 = arrays(("dy", dy, dy.size, False), *[(f"dxs[{i}]", a, a.size, True) for i, a in enumerate(dxs)])
    distinct(("dy", dy), *[(f"dxs[{i}]", a) for i, a in enumerate(dxs)])
    return f64, B, Cy, S, channels


def _labels(labels, N, K):
    index_array("labels", labels, N)
    if N and (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"labels must lie in [0, {K}), got values in "
                         f"[{labels.min()}, {labels.max()}]")


def _logit_sizes(name, a):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"{name} must have shape (batch, classes), both >= 1, got {a.shape}")
    return a.shape


def softmax_cross_entropy_forward(logits, labels, probs, label_smoothing):
    N, K = _logit_sizes("logits", logits)
    e = number("label_smoothing", label_smoothing, 0.0, 1.0)
    same_shape("probs", probs, logits.shape)
    f64 = arrays(("logits", logits, logits.size, False), ("probs", probs, probs.size, True))
    _labels(labels, N, K)
    distinct(("logits", logits), ("probs", probs))
    return f64, N, K, e


def softmax_cross_entropy_backward(probs, labels, dlogits, label_smoothing, dloss):
    N, K = _logit_sizes("probs", probs)
    e = number("label_smoothing", label_smoothing, 0.0, 1.0)
    dloss = number("dloss", dloss)
    same_shape("dlogits", dlogits, probs.shape)
    f64 = arrays(("probs", probs, probs.size, False), ("dlogits", dlogits, dlogits.size, True))
    _labels(labels, N, K)
    distinct(("probs", probs), ("dlogits", dlogits), same_ok=[("probs", "dlogits")])
    return f64, N, K, e, dloss


# ---- Darknet's activations and the softmax ----------------------------------------------------

def _slope(slope):
    return number("slope", slope, 0.0)


def leaky_relu_forward(x, y, slope):
    slope = _slope(slope)
    return (*relu_forward(x, y), slope)


def leaky_relu_backward(dy, y, dx, slope):
    slope = _slope(slope)
    return (*relu_backward(dy, y, dx), slope)


logistic_forward, logistic_backward = relu_forward, relu_backward


def softmax_forward(x, y):
    N, K = _logit_sizes("x", x)
    f64, _ = _elementwise(("x", x, False), ("y", y, True), same_ok=[("x", "y")])
    return f64, N, K


def softmax_backward(dy, y, dx):
    N, K = _logit_sizes("y", y)
    f64, _ = _elementwise(("dy", dy, False), ("y", y, False), ("dx", dx, True),
                          same_ok=[("dy", "dx")])
    return f64, N, K
