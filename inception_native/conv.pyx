# cython: language_level=3
"""Convolution lowering, GEMM, convolution and linear layers, native, in float32 and float64.

im2col_cpu / col2im_cpu and gemm keep Darknet's names and argument order (results in place,
return None); im2col_ext / col2im_ext are the general form (kernel, stride and padding per axis).
gemm runs the sgemm/dgemm of the BLAS SciPy ships (scipy.linalg.cython_blas), looked up when
this module is imported: SciPy is a run-time dependency only, nothing links a BLAS at build time.
gemm_cpu is Darknet's triple loop, the reference.

The layers write into the arrays passed and return the main output. The convolution runs on
our kernels by default (csrc/convk.h: packed GEMM with implicit im2col, per-ISA microkernels,
bias/BatchNorm scale+shift/ReLU/accumulate fused into the store, outputs into channel slices,
no BLAS; conv_isa names the ISA path), or, with a plan of algorithm="im2col", by lowering
several images into one BLAS GEMM on small maps, a few output rows at a time on large ones,
each OpenMP thread with a single-threaded BLAS (see inception_native.threads). Its workspace
(plan.workspace values) is passed by the caller, who reuses it across calls, or allocated for
the call when None. gemm and the linear layer use the BLAS's own threads.
The NumPy twins, with the same signatures, are in inception_native.reference.
"""
cimport numpy as cnp
from in_conv cimport *
from in_convk cimport *
from in_nchwc cimport *
from in_peak cimport *
from in_im2col cimport *
from in_gemm cimport *
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from libc.stdint cimport int64_t

import numpy as np
from functools import partial

from .shapes import output_size
from .threads import blas_controllable, get_num_threads, single_threaded_blas
from . import _checks as check

cnp.import_array()





cdef inline void *data(a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef void *capsule_pointer(capsule):
    return PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule))


def _hand_over_blas():
    """Give C the addresses of SciPy's sgemm and dgemm; without SciPy, gemm_cpu serves (slow)."""
    try:
        from scipy.linalg.cython_blas import __pyx_capi__ as capi
    except ImportError:  # pragma: no cover - scipy is a declared dependency
        return "gemm_cpu (SciPy missing: no BLAS, slow)"
    in_gemm_set_blas(<in_sgemm_fn>capsule_pointer(capi["sgemm"]),
                     <in_dgemm_fn>capsule_pointer(capi["dgemm"]))
    return "scipy.linalg.cython_blas"


BLAS = _hand_over_blas()


def _lower(bint to_col, bint f64, src, dst, size_t C, size_t H, size_t W, size_t kh, size_t kw,
           size_t ph, size_t pw, size_t sh, size_t sw):
    cdef size_t oh = output_size(H, kh, sh, ph)
    cdef void *ps = data(src)
    cdef void *pd = data(dst)
    with nogil:
        if to_col: in_im2col(f64, pd, ps, 1, C, H, W, kh, kw, sh, sw, ph, pw, 0, oh, 1)
        else: in_col2im(f64, ps, pd, 1, C, H, W, kh, kw, sh, sw, ph, pw, 0, oh, 1)


def im2col_cpu(data_im, channels, height, width, ksize, stride, pad, data_col):
    """data_col[(c*ksize + i)*ksize + j, y*ow + x] = data_im[c, y*stride - pad + i, x*stride - pad + j]
    (0 in the padding): Darknet's im2col_cpu, one image (channels, height, width)."""
    f64, *sizes = check.im2col_cpu(data_im, channels, height, width, ksize, stride, pad, data_col)
    _lower(True, f64, data_im, data_col, *sizes)


def col2im_cpu(data_col, channels, height, width, ksize, stride, pad, data_im):
    """The adjoint of im2col_cpu: data_im[pixel] += every data_col entry lowered from it
    (adds into data_im, as Darknet's col2im_cpu does)."""
    f64, *sizes = check.col2im_cpu(data_col, channels, height, width, ksize, stride, pad, data_im)
    _lower(False, f64, data_col, data_im, *sizes)


def im2col_ext(data_im, channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h,
               stride_w, data_col):
    """im2col_cpu with kernel, padding and stride given per axis (1x7, 7x1, ...)."""
    f64, *sizes = check.im2col_ext(data_im, channels, height, width, kernel_h, kernel_w, pad_h,
                                   pad_w, stride_h, stride_w, data_col)
    _lower(True, f64, data_im, data_col, *sizes)


def col2im_ext(data_col, channels, height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h,
               stride_w, data_im):
    """col2im_cpu with kernel, padding and stride given per axis; adds into data_im."""
    f64, *sizes = check.col2im_ext(data_col, channels, height, width, kernel_h, kernel_w, pad_h,
                                   pad_w, stride_h, stride_w, data_im)
    _lower(False, f64, data_col, data_im, *sizes)


def _gemm(bint reference, TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc):
    cdef bint f64
    cdef int ta, tb
    cdef size_t m, n, k, la, lb, lc
    cdef double alpha, beta
    f64, ta, tb, m, n, k, alpha, la, lb, beta, lc = check.gemm(TA, TB, M, N, K, ALPHA, A, lda, B,
                                                               ldb, BETA, C, ldc)
    cdef void *pa = data(A)
    cdef void *pb = data(B)
    cdef void *pc = data(C)
    with nogil:
        if reference: in_gemm_cpu(f64, ta, tb, m, n, k, alpha, pa, la, pb, lb, beta, pc, lc)
        else: in_gemm(f64, ta, tb, m, n, k, alpha, pa, la, pb, lb, beta, pc, lc)


def gemm(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc):
    """C = ALPHA * op(A) * op(B) + BETA * C, row-major, op(A) (M, K), op(B) (K, N), C (M, N) with
    row strides lda, ldb, ldc; TA/TB transpose. BETA == 0 writes C without reading it."""
    _gemm(False, TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc)


def gemm_cpu(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc):
    """gemm by Darknet's triple loop (sums in double): the readable reference, slow."""
    _gemm(True, TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc)


ALGORITHMS = ("convk", "im2col")


def conv_threads(algorithm="convk"):
    """Threads a convolution shares its work among: the OpenMP thread count; for im2col only
    when the BLAS can be made single-threaded meanwhile (see inception_native.threads), else 1.
    """
    if algorithm == "im2col" and not blas_controllable():
        return 1
    return get_num_threads()


# ---- ISA of our kernels (csrc/convk.h) ------------------------------------------------------

def conv_isa():
    """The ISA path of the default convolution kernels: 'avx512', 'avx2' or 'portable' (or the
    test path 'portable512'): the best this CPU runs unless INCEPTION_NATIVE_ISA or
    set_conv_isa chose a lower one."""
    return in_convk_isa_name().decode()


def conv_isa_levels():
    """The ISA paths this CPU runs, every one a valid set_conv_isa argument."""
    return [in_convk_level_name(l).decode() for l in range(IN_CONVK_LEVELS)
            if in_convk_isa_supported(l)]


def set_conv_isa(name):
    """Run the convolution kernels on ISA path `name` (see conv_isa_levels); plans made before
    keep the path they were made with. Returns the previous path's name."""
    previous = conv_isa()
    for level in range(IN_CONVK_LEVELS):
        if in_convk_level_name(level).decode() == name:
            if in_convk_set_isa(level) != 0:
                raise ValueError(f"this CPU cannot run the {name} path (it runs "
                                 f"{', '.join(conv_isa_levels())})")
            return previous
    raise ValueError(f"unknown ISA path {name!r}: one of "
                     f"{', '.join(in_convk_level_name(l).decode() for l in range(IN_CONVK_LEVELS))}")


WINOGRAD_MODES = ("off", "auto", "always")


def conv_winograd():
    """When our kernels run a 3x3 stride-1 forward and its dL/dx by Winograd F(2x2, 3x3): 'auto'
    (where its rule says it pays, csrc/convk.c in_convk_wino_pays), 'off' (never:
    INCEPTION_NATIVE_WINOGRAD=0 at start, or set_conv_winograd) or 'always' (every such
    convolution, for tests)."""
    return in_convk_winograd_name(in_convk_get_winograd()).decode()


def set_conv_winograd(mode):
    """Set conv_winograd's mode ('off', 'auto' or 'always'); plans made before keep the
    algorithm they were made with (and their packed weights stay valid). Returns the previous
    mode."""
    if mode not in WINOGRAD_MODES:
        raise ValueError(f"mode must be one of {WINOGRAD_MODES}, got {mode!r}")
    previous = conv_winograd()
    in_convk_set_winograd(WINOGRAD_MODES.index(mode))
    return previous


def fma_peak_flops(size_t rounds, int threads):
    """Flops done by `rounds` rounds of independent float32 FMA chains on each of `threads`
    OpenMP threads, on the conv_isa path's vectors and accumulator count (csrc/peak.h): time
    the call for the peak those kernels can reach."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    cdef double flops
    with nogil:
        flops = in_peak_fma(rounds, threads)
    return flops


# ---- plans -----------------------------------------------------------------------------------

cdef class _Plan:
    """What every plan says: the convolution it was made for, (B, C, H, W, OC, kh, kw, sh, sw,
    ph, pw), its output shape and the threads that run it; the subclass adds how."""
    cdef readonly tuple sizes, output_shape
    cdef readonly int threads

    def __repr__(self):
        return (f"{type(self).__name__}(sizes={self.sizes}, {self._how()}, "
                f"threads={self.threads}, workspace={self.workspace})")


cdef class ConvPlan(_Plan):
    """How one convolution runs by im2col + BLAS (csrc/conv.h, in_conv2d_plan): G images per
    GEMM, or R output rows of one image; the threads sharing the blocks; the workspace they
    need. Made once per layer and input shape (conv2d_plan(..., algorithm="im2col"))."""
    cdef in_conv_plan p
    algorithm = "im2col"

    @property
    def blocking(self):
        """(G, R)."""
        return self.p.G, self.p.R

    @property
    def workspace(self):
        """Values of the workspace the calls need (0: none)."""
        return self.p.work

    def _how(self):
        return f"blocking={self.blocking}"


cdef class ConvKPlan(_Plan):
    """How one convolution runs on our kernels (csrc/convk.h, in_convk_plan_init): the ISA
    path, the blocking of each pass, the threads, the workspace; one C plan per dtype (their
    blocking differs with the vector lanes), made once per layer and input shape
    (conv2d_plan)."""
    cdef in_convk_plan p32, p64
    algorithm = "convk"

    @property
    def isa(self):
        return in_convk_level_name(self.p32.isa).decode()

    @property
    def winograd(self):
        """True when the forward and dL/dx run by Winograd F(2x2, 3x3) (conv_winograd's mode
        when the plan was made); dL/dw and dL/dbias are the same either way."""
        return bool(self.p32.wino)

    @property
    def blocking(self):
        """Forward GEMM of float32: (mr, nr, kc, mc, nc)."""
        g = self.p32.fwd
        return g.mr, g.nr, g.kc, g.mc, g.nc

    def pass_images(self, dtype):
        """(forward and dL/dw, dL/dx): images a pass prepares its padded source for, in dtype;
        fewer than the batch where the whole batch's would take more than 8 MiB."""
        cdef in_convk_plan *c = &self.p64 if np.dtype(dtype) == np.float64 else &self.p32
        return c.images, c.dx_images

    @property
    def workspace(self):
        """Values (of x's dtype) of the workspace the calls need, forward and backward."""
        return max(self.p32.work, self.p64.work)

    @property
    def packed_size(self):
        """Values of the packed weights (pack): 16/9 more for a Winograd plan."""
        return in_convk_plan_packed_size(&self.p32)

    def pack(self, weight):
        """weight (OC, C, kh, kw) of this plan's sizes, packed for our kernels' forward: a new
        1-D array of packed_size values of weight's dtype, for conv2d_forward(..., packed=)
        for as long as weight keeps these values (frozen weights: packed once, not at every
        call). The layout is the same on every ISA path and thread count; a Winograd plan's
        (winograd) is its own."""
        B, C, H, W, OC, kh, kw = self.sizes[:7]
        check.same_shape("weight", weight, (OC, C, kh, kw))
        cdef bint f64 = check.arrays(("weight", weight, weight.size, False))
        packed = np.empty(self.packed_size, weight.dtype)
        cdef void *pp = data(packed)
        cdef void *pw = data(weight)
        cdef in_convk_plan *c = &self.p32
        with nogil:
            in_convk_plan_pack_weights(f64, c, pp, pw)
        return packed

    def _how(self):
        return f"isa={self.isa!r}, winograd={self.winograd}, blocking={self.blocking}"


def _plan(sizes, threads, min_columns, block_values, algorithm):
    B, C, H, W, OC, kh, kw, sh, sw, ph, pw = sizes
    cdef ConvPlan plan
    cdef ConvKPlan kplan
    if algorithm == "im2col":
        plan = ConvPlan()
        plan.p = in_conv2d_plan(B, C, H, W, OC, kh, kw, sh, sw, ph, pw, threads, min_columns,
                                block_values)
        return _said(plan, sizes, plan.p.oh, plan.p.ow, plan.p.threads)
    kplan = ConvKPlan()
    in_convk_plan_init(&kplan.p32, sizeof(float), B, C, H, W, OC, kh, kw, sh, sw, ph, pw, threads)
    in_convk_plan_init(&kplan.p64, sizeof(double), B, C, H, W, OC, kh, kw, sh, sw, ph, pw, threads)
    return _said(kplan, sizes, kplan.p32.oh, kplan.p32.ow, kplan.p32.threads)


cdef _Plan _said(_Plan plan, sizes, size_t oh, size_t ow, int threads):
    """plan with what every plan says filled in from its C plan."""
    plan.sizes = tuple(int(n) for n in sizes)
    plan.output_shape = (plan.sizes[0], plan.sizes[4], oh, ow)
    plan.threads = threads
    return plan


def _algorithm(algorithm):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    return algorithm


def conv2d_plan(x_shape, weight_shape, stride=1, padding=0, threads=None,
                min_columns=IN_CONV_MIN_COLUMNS, block_values=IN_CONV_BLOCK_VALUES,
                algorithm="convk"):
    """The plan of a convolution of x (x_shape) by weight (weight_shape), for `threads` threads
    (None: conv_threads(), what a call now would use). algorithm: "convk" (our kernels, the
    default: a ConvKPlan) or "im2col" (lowering + the BLAS's GEMM: a ConvPlan, whose blocking
    targets min_columns and block_values tests vary, csrc/conv.h)."""
    algorithm = _algorithm(algorithm)
    sizes = check.conv_sizes(x_shape, weight_shape, stride, padding)
    threads = conv_threads(algorithm) if threads is None else check.size("threads", threads, 1)
    return _plan(sizes, threads, check.size("min_columns", min_columns, 1),
                 check.size("block_values", block_values, 1), algorithm)


def conv2d_workspace_size(x_shape, weight_shape, stride=1, padding=0, threads=None,
                          algorithm="convk"):
    """Elements of the workspace conv2d_forward and conv2d_backward use (0: none needed), for
    `threads` threads (None: what the next call will use)."""
    return conv2d_plan(x_shape, weight_shape, stride, padding, threads,
                       algorithm=algorithm).workspace


def checked_plan(plan, x, weight, stride, padding):
    """plan, checked against the arrays it is used for, or (None) a new default one for them."""
    sizes = check.conv_sizes(check.image("x", x), check.image("weight", weight), stride, padding)
    if plan is None:
        return _plan(sizes, conv_threads(), IN_CONV_MIN_COLUMNS, IN_CONV_BLOCK_VALUES, "convk")
    if not isinstance(plan, (ConvPlan, ConvKPlan)):
        raise TypeError(f"plan must be a ConvPlan or ConvKPlan (conv2d_plan), got "
                        f"{type(plan).__name__}")
    if plan.sizes != sizes:
        raise ValueError(f"plan was made for sizes {plan.sizes} (B, C, H, W, OC, kh, kw, sh, sw, "
                         f"ph, pw), these arrays have {sizes}")
    return plan


def checked_packed(plan, weight, packed, y, workspace):
    """packed (None, or plan.pack's array: packed_size values of weight's dtype, apart from the
    arrays a forward writes) checked against the call it is used in; its values are the
    caller's word."""
    if packed is None:
        return None
    if not isinstance(plan, ConvKPlan):
        raise TypeError(f"packed weights are for our kernels' plans (ConvKPlan), got "
                        f"{type(plan).__name__}")
    check.arrays(("weight", weight, weight.size, False),
                 ("packed", packed, plan.packed_size, False))
    check.distinct(("packed", packed), ("y", y), ("workspace", workspace))
    return packed


def _workspace(workspace, plan, x):
    return np.empty(plan.workspace, x.dtype) if workspace is None else workspace


def _im2col_epilogue(y, t, scale, shift, bias, relu, accumulate):
    """The fused epilogue of our kernels, in NumPy, for the im2col contender:
    y = act(scale * t + shift (+ y)) with t the plain convolution."""
    OC = y.shape[1]
    if scale is not None:
        t *= scale.reshape(1, OC, 1, 1)
    for add in (shift, bias):
        if add is not None:
            t += add.reshape(1, OC, 1, 1)
    if accumulate:
        t += y
    if relu:
        t[t < 0] = 0  # NaN kept, as the C kernels keep it
    y[...] = t


# ---- the layers --------------------------------------------------------------------------

def conv2d_forward(x, weight, bias, y, stride=1, padding=0, workspace=None, *, plan=None,
                   scale=None, shift=None, relu=False, accumulate=False, packed=None):
    """y = conv2d(x, weight) + bias; returns y. With the fused options:
        y = act(scale * conv2d(x, weight) + shift (+ y when accumulate)),  act = ReLU if relu
    (per output channel scale and shift (OC,) or None; a bias is a shift; inference BatchNorm
    is both).
    x (B, C, H, W), weight (OC, C, kh, kw), bias (OC,) or None, y (B, OC, oh, ow) with
    oh = (H + 2 padding - kh) // stride + 1; x and y each C-contiguous or a channel slice
    t[:, c0:c1] of a C-contiguous tensor (an Inception branch writes its part of the
    concatenation, or reads its channels of stacked 1x1 convolutions' output). stride and
    padding: an int or (h, w).
    plan: conv2d_plan(x.shape, weight.shape, stride, padding), made once and reused (None: made
    for this call; algorithm="im2col" there picks lowering + BLAS, which applies the options
    above in NumPy and writes only contiguous y). workspace: plan.workspace values of x's dtype
    or more, reused across calls; None allocates one for this call. The plan depends on the
    thread count (set_num_threads) and the ISA path (conv_isa). Our kernels repack the weights
    at every call (OC*C*kh*kw values, into the workspace), unless given packed =
    plan.pack(weight), made once for as long as weight keeps its values.
    """
    _checked_forward(x, weight, bias, y, stride, padding, workspace, plan, scale, shift, relu,
                     accumulate, packed)()
    return y


def conv2d_forward_call(x, weight, bias, y, stride=1, padding=0, workspace=None, *, plan=None,
                        scale=None, shift=None, relu=False, accumulate=False, packed=None):
    """conv2d_forward(...) checked now, run later: a function of no arguments that runs that
    call without checking its arguments again (about 1 us a call instead of 30), for calls
    repeated on the same arrays (the steps of a frozen network). It keeps the arrays alive and
    reads their values at each call; workspace None: one is allocated now and kept."""
    return _checked_forward(x, weight, bias, y, stride, padding, workspace, plan, scale, shift,
                            relu, accumulate, packed)


def _checked_forward(x, weight, bias, y, stride, padding, workspace, plan, scale, shift, relu,
                     accumulate, packed):
    """conv2d_forward's arguments, checked; returns the call that runs it."""
    p = checked_plan(plan, x, weight, stride, padding)
    f64, x_image, y_image = check.conv2d_forward(x, weight, bias, y, p.output_shape, workspace,
                                                 p.workspace, scale, shift)
    packed = checked_packed(p, weight, packed, y, workspace)
    relu, accumulate = check.truth("relu", relu), check.truth("accumulate", accumulate)
    work = _workspace(workspace, p, x)
    if isinstance(p, ConvKPlan):
        return partial(_convk_forward, p, f64, y, y_image, work, x, x_image, weight, packed,
                       scale, bias if shift is None else shift, relu, accumulate)
    return partial(_im2col_forward, p, f64, y, work, x, weight, bias, scale, shift, relu,
                   accumulate)


def _convk_forward(ConvKPlan p, bint f64, y, size_t y_image, work, x, size_t x_image, weight,
                   packed, scale, shift, bint relu, bint accumulate):
    cdef const in_convk_plan *c = &p.p64 if f64 else &p.p32
    cdef void *py = data(y)
    cdef void *pk = data(work)
    cdef void *px = data(x)
    cdef void *pw = data(weight)
    cdef void *pp = data(packed)
    cdef void *ps = data(scale)
    cdef void *ph = data(shift)
    with nogil:
        in_convk_forward(f64, c, py, y_image, pk, px, x_image, pw, pp, ps, ph, relu, accumulate)


def _im2col_forward(ConvPlan p, bint f64, y, work, x, weight, bias, scale, shift, relu,
                    accumulate):
    """The im2col contender: the plain convolution in C, the fused options in NumPy (only a
    C-contiguous y is written by the kernel, from a C-contiguous x: a slice is copied)."""
    plain = scale is None and shift is None and not relu and not accumulate
    out = y if plain and y.flags.c_contiguous else np.empty(p.output_shape, x.dtype)
    _im2col_plain(p, f64, out, work, np.ascontiguousarray(x), weight, bias if plain else None)
    if out is not y:
        _im2col_epilogue(y, out, scale, shift, bias, relu, accumulate)


def _im2col_plain(ConvPlan p, bint f64, y, work, x, weight, bias):
    cdef void *py = data(y)
    cdef void *pk = data(work)
    cdef void *px = data(x)
    cdef void *pw = data(weight)
    cdef void *pb = data(bias)
    with single_threaded_blas():  # its idle threads would spin against ours
        with nogil:
            in_conv2d_forward(f64, &p.p, py, pk, px, pw, pb)


def conv2d_backward(dy, x, weight, dx, dweight, dbias, stride=1, padding=0, workspace=None, *,
                    plan=None, y_relu=None, accumulate=False):
    """The true gradients of conv2d_forward; returns dx.
    dy (B, OC, oh, ow) is dL/dy; dx (like x) or None (not computed: a first layer's input),
    dweight (like weight), dbias (OC,) or None are overwritten, not accumulated. y_relu: the
    forward's output when it ended in a ReLU (relu=True), or None: dy counts as 0 where
    y_relu <= 0. dy and y_relu may be channel slices dy_big[:, c0:c0 + OC] of C-contiguous
    tensors laid out alike (an Inception branch reading its part of the block's gradient), and
    x and dx likewise (a branch writing its channels of stacked 1x1 convolutions' gradient).
    accumulate: dx += dL/dx instead (branches reading one input sum their gradients into it;
    dweight and dbias are still overwritten). plan and workspace: as conv2d_forward's.
    """
    p = checked_plan(plan, x, weight, stride, padding)
    cdef bint add = check.truth("accumulate", accumulate)
    f64, x_image, dy_image = check.conv2d_backward(dy, x, weight, dx, dweight, dbias,
                                                   p.output_shape, workspace, p.workspace,
                                                   y_relu, add)
    work = _workspace(workspace, p, x)
    if isinstance(p, ConvKPlan):
        _convk_backward(p, f64, dx, dweight, dbias, work, dy, y_relu, dy_image, x, x_image,
                        weight, add)
        return dx
    if y_relu is not None:
        dy = np.where(y_relu > 0, dy, 0).astype(dy.dtype)
    dy, x = np.ascontiguousarray(dy), np.ascontiguousarray(x)
    direct = dx is None or (dx.flags.c_contiguous and not add)
    part = dx if direct else np.empty(x.shape, x.dtype)
    _im2col_backward(p, f64, part, dweight, dbias, work, dy, x, weight)
    if not direct:
        dx[...] = dx + part if add else part
    return dx


def _convk_backward(ConvKPlan p, bint f64, dx, dweight, dbias, work, dy, y_relu,
                    size_t dy_image, x, size_t x_image, weight, bint accumulate):
    cdef const in_convk_plan *c = &p.p64 if f64 else &p.p32
    cdef void *pdx = data(dx)
    cdef void *pdw = data(dweight)
    cdef void *pdb = data(dbias)
    cdef void *pk = data(work)
    cdef void *pdy = data(dy)
    cdef void *pm = data(y_relu)
    cdef void *px = data(x)
    cdef void *pw = data(weight)
    with nogil:
        in_convk_backward(f64, c, pdx, pdw, pdb, pk, pdy, pm, dy_image, px, x_image, pw,
                          accumulate)


def _im2col_backward(ConvPlan p, bint f64, dx, dweight, dbias, work, dy, x, weight):
    cdef void *pdx = data(dx)
    cdef void *pdw = data(dweight)
    cdef void *pdb = data(dbias)
    cdef void *pk = data(work)
    cdef void *pdy = data(dy)
    cdef void *px = data(x)
    cdef void *pw = data(weight)
    with single_threaded_blas():
        with nogil:
            in_conv2d_backward(f64, &p.p, pdx, pdw, pdb, pk, pdy, px, pw)



# ---- the blocked layout (NCHWc), float32 frozen inference (csrc/nchwc.h) ------------------

def nchwc_block():
    """The block of the blocked layout (B, C // blk, H, W, blk) on the conv ISA path in use
    (conv_isa): 16 on avx512 and portable512, 8 on avx2 and portable. Read it when a plan is
    made: set_conv_isa can change it."""
    return in_nchwc_block(in_convk_get_isa())


def nchwc_pack_weights(w, blk, plain_input=False):
    """w (OC, C, kh, kw) float32 packed for conv2d_forward_nchwc with block blk: a new array
    (ceil(OC/blk), C//blk, kh, kw, blk_in, blk_out) for a blocked input, or (plain_input: a
    plain NCHW input, e.g. a first layer of 3 channels) (ceil(OC/blk), C, kh, kw, blk_out);
    output channels past OC are 0."""
    OC, C, kh, kw, b, plain = check.nchwc_pack_weights(w, blk, plain_input)
    shape = (-(-OC // b), C, kh, kw, b) if plain else (-(-OC // b), C // b, kh, kw, b, b)
    wp = np.empty(shape, np.float32)
    _nchwc_pack(wp, w, OC, C, kh, kw, b, plain)
    return wp


def _nchwc_pack(wp, w, size_t OC, size_t C, size_t kh, size_t kw, size_t blk, bint plain):
    cdef float *pp = <float *>data(wp)
    cdef const float *pw = <const float *>data(w)
    with nogil:
        in_nchwc_pack_weights_f32(pp, pw, OC, C, kh, kw, blk, plain)


def conv2d_forward_nchwc(x, wp, bias, y, stride, padding, relu=False):
    """y = relu?(conv2d(x, w) + bias) in the blocked layout, by direct convolution; returns y.
    x blocked (B, C//blk, H, W, blk), or plain (B, C, H, W) when wp was packed with
    plain_input; wp = nchwc_pack_weights(w, nchwc_block()); bias (OC,) float32 or None;
    y (B, OC//blk, oh, ow, blk), oh and ow as conv2d_forward's; x and y each C-contiguous or a
    channel-block slice t[:, b0:b1] of a C-contiguous blocked tensor (a plain x: a channel
    slice). stride and padding: an int or (h, w). Threads: get_num_threads()."""
    cdef int isa = in_convk_get_isa()
    sizes, plain, x_image, y_image, on = check.conv2d_forward_nchwc(
        x, wp, bias, y, stride, padding, relu, in_nchwc_block(isa))
    cdef in_nchwc_conv c
    c.B, c.C, c.H, c.W, c.OC, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.oh, c.ow = sizes
    c.x_image, c.y_image, c.plain, c.isa, c.threads = x_image, y_image, plain, isa, get_num_threads()
    cdef float *py = <float *>data(y)
    cdef const float *px = <const float *>data(x)
    cdef const float *pw = <const float *>data(wp)
    cdef const float *pb = <const float *>data(bias)
    cdef int r = on
    with nogil:
        in_nchwc_forward_f32(&c, py, px, pw, pb, r)
    return y

def linear_forward(x, weight, bias, y):
    """y = x weight^T + bias; x (N, I), weight (O, I) (PyTorch's layout), bias (O,) or None,
    y (N, O); returns y. The BLAS runs on one thread: after a call OpenBLAS's idle workers
    spin, and on the cores our OpenMP threads share they slowed a whole 2-thread GoogLeNet
    forward that followed (batch 1: 123 ms instead of 52)."""
    cdef size_t N, Fin, Fout
    cdef bint f64
    f64, N, Fin, Fout = check.linear_forward(x, weight, bias, y)
    cdef void *py = data(y)
    cdef void *px = data(x)
    cdef void *pw = data(weight)
    cdef void *pb = data(bias)
    with single_threaded_blas():  # its idle workers would spin against our next kernels
        with nogil:
            in_linear_forward(f64, py, px, pw, pb, N, Fin, Fout)
    return y


def linear_backward(dy, x, weight, dx, dweight, dbias):
    """dx = dy weight (dx may be None), dweight = dy^T x, dbias = sum_n dy (None: skipped),
    all overwritten; returns dx."""
    cdef size_t N, Fin, Fout
    cdef bint f64
    f64, N, Fin, Fout = check.linear_backward(dy, x, weight, dx, dweight, dbias)
    cdef void *pdx = data(dx)
    cdef void *pdw = data(dweight)
    cdef void *pdb = data(dbias)
    cdef void *pdy = data(dy)
    cdef void *px = data(x)
    cdef void *pw = data(weight)
    with single_threaded_blas():
        with nogil:
            in_linear_backward(f64, pdx, pdw, pdb, pdy, px, pw, N, Fin, Fout)
    return dx
