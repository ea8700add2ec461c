# cython: language_level=3
"""Convolution lowering, GEMM, convolution and linear layers, native, in float32 and float64.

im2col_cpu / col2im_cpu and gemm keep Darknet's names and argument order (results in place,
return None); im2col_ext / col2im_ext are the general form (kernel, stride and padding per axis).
gemm runs the sgemm/dgemm of the BLAS SciPy ships (scipy.linalg.cython_blas), looked up when
this module is imported: SciPy is a run-time dependency only, nothing links a BLAS at build time.
gemm_cpu is Darknet's triple loop, the reference.

The layers write into the arrays passed and return the main output. The convolution lowers
several images into one GEMM on small maps, a few output rows at a time on large ones; its
workspace (conv2d_workspace_size values) is passed by the caller, who reuses it across calls,
or allocated for the call when None. It shares its blocks of images among the OpenMP threads
(set_num_threads), each with a single-threaded BLAS for the duration of the call (see
inception_native.threads); gemm and the linear layer use the BLAS's own threads.
The NumPy twins, with the same signatures, are in inception_native.reference.
"""
cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from libc.stdint cimport int64_t

import numpy as np

from .threads import single_threaded_blas
from . import _checks as check
from ._checks import conv2d_workspace_size

cnp.import_array()

cdef extern from "gemm.h" nogil:
    ctypedef void (*in_sgemm_fn)(char *, char *, int *, int *, int *, float *, float *, int *,
                                 float *, int *, float *, float *, int *)
    ctypedef void (*in_dgemm_fn)(char *, char *, int *, int *, int *, double *, double *, int *,
                                 double *, int *, double *, double *, int *)
    void in_gemm_set_blas(in_sgemm_fn sgemm, in_dgemm_fn dgemm)
    int in_gemm_has_blas()
    void in_gemm_f32(int TA, int TB, size_t M, size_t N, size_t K, float ALPHA, const float *A,
                     size_t lda, const float *B, size_t ldb, float BETA, float *C, size_t ldc)
    void in_gemm_f64(int TA, int TB, size_t M, size_t N, size_t K, double ALPHA, const double *A,
                     size_t lda, const double *B, size_t ldb, double BETA, double *C, size_t ldc)
    void in_gemm_cpu_f32(int TA, int TB, size_t M, size_t N, size_t K, float ALPHA,
                         const float *A, size_t lda, const float *B, size_t ldb, float BETA,
                         float *C, size_t ldc)
    void in_gemm_cpu_f64(int TA, int TB, size_t M, size_t N, size_t K, double ALPHA,
                         const double *A, size_t lda, const double *B, size_t ldb, double BETA,
                         double *C, size_t ldc)

cdef extern from "im2col.h" nogil:
    void in_im2col_f32(float *col, const float *im, size_t n, size_t C, size_t H, size_t W,
                       size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,
                       size_t y0, size_t y1, int parallel)
    void in_im2col_f64(double *col, const double *im, size_t n, size_t C, size_t H, size_t W,
                       size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,
                       size_t y0, size_t y1, int parallel)
    void in_col2im_f32(const float *col, float *im, size_t n, size_t C, size_t H, size_t W,
                       size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,
                       size_t y0, size_t y1, int parallel)
    void in_col2im_f64(const double *col, double *im, size_t n, size_t C, size_t H, size_t W,
                       size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw,
                       size_t y0, size_t y1, int parallel)

cdef extern from "conv.h" nogil:
    void in_conv2d_forward_f32(float *y, float *work, const float *x, const float *w,
                               const float *bias, size_t B, size_t C, size_t H, size_t W,
                               size_t OC, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                               size_t pw, size_t G, size_t R, int threads)
    void in_conv2d_forward_f64(double *y, double *work, const double *x, const double *w,
                               const double *bias, size_t B, size_t C, size_t H, size_t W,
                               size_t OC, size_t kh, size_t kw, size_t sh, size_t sw, size_t ph,
                               size_t pw, size_t G, size_t R, int threads)
    void in_conv2d_backward_f32(float *dx, float *dw, float *dbias, float *work, const float *dy,
                                const float *x, const float *w, size_t B, size_t C, size_t H,
                                size_t W, size_t OC, size_t kh, size_t kw, size_t sh, size_t sw,
                                size_t ph, size_t pw, size_t G, size_t R, int threads)
    void in_conv2d_backward_f64(double *dx, double *dw, double *dbias, double *work,
                                const double *dy, const double *x, const double *w, size_t B,
                                size_t C, size_t H, size_t W, size_t OC, size_t kh, size_t kw,
                                size_t sh, size_t sw, size_t ph, size_t pw, size_t G, size_t R,
                                int threads)
    void in_linear_forward_f32(float *y, const float *x, const float *w, const float *bias,
                               size_t N, size_t Fin, size_t Fout)
    void in_linear_forward_f64(double *y, const double *x, const double *w, const double *bias,
                               size_t N, size_t Fin, size_t Fout)
    void in_linear_backward_f32(float *dx, float *dw, float *dbias, const float *dy,
                                const float *x, const float *w, size_t N, size_t Fin, size_t Fout)
    void in_linear_backward_f64(double *dx, double *dw, double *dbias, const double *dy,
                                const double *x, const double *w, size_t N, size_t Fin, size_t Fout)


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
    cdef size_t oh = (H + 2 * ph - kh) // sh + 1
    cdef void *ps = data(src)
    cdef void *pd = data(dst)
    with nogil:
        if to_col and f64: in_im2col_f64(<double *>pd, <double *>ps, 1, C, H, W, kh, kw, sh, sw, ph, pw, 0, oh, 1)
        elif to_col: in_im2col_f32(<float *>pd, <float *>ps, 1, C, H, W, kh, kw, sh, sw, ph, pw, 0, oh, 1)
        elif f64: in_col2im_f64(<double *>ps, <double *>pd, 1, C, H, W, kh, kw, sh, sw, ph, pw, 0, oh, 1)
        else: in_col2im_f32(<float *>ps, <float *>pd, 1, C, H, W, kh, kw, sh, sw, ph, pw, 0, oh, 1)


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
        if reference and f64:
            in_gemm_cpu_f64(ta, tb, m, n, k, alpha, <double *>pa, la, <double *>pb, lb, beta,
                            <double *>pc, lc)
        elif reference:
            in_gemm_cpu_f32(ta, tb, m, n, k, <float>alpha, <float *>pa, la, <float *>pb, lb,
                            <float>beta, <float *>pc, lc)
        elif f64:
            in_gemm_f64(ta, tb, m, n, k, alpha, <double *>pa, la, <double *>pb, lb, beta,
                        <double *>pc, lc)
        else:
            in_gemm_f32(ta, tb, m, n, k, <float>alpha, <float *>pa, la, <float *>pb, lb,
                        <float>beta, <float *>pc, lc)


def gemm(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc):
    """C = ALPHA * op(A) * op(B) + BETA * C, row-major, op(A) (M, K), op(B) (K, N), C (M, N) with
    row strides lda, ldb, ldc; TA/TB transpose. BETA == 0 writes C without reading it."""
    _gemm(False, TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc)


def gemm_cpu(TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc):
    """gemm by Darknet's triple loop (sums in double): the readable reference, slow."""
    _gemm(True, TA, TB, M, N, K, ALPHA, A, lda, B, ldb, BETA, C, ldc)


def _workspace(workspace, need, x):
    return np.empty(need, x.dtype) if workspace is None else workspace


def conv2d_forward(x, weight, bias, y, stride=1, padding=0, workspace=None):
    """y = conv2d(x, weight) + bias; returns y.

    x (B, C, H, W), weight (OC, C, kh, kw), bias (OC,) or None, y (B, OC, oh, ow) with
    oh = (H + 2 padding - kh) // stride + 1. stride and padding: an int or (h, w).
    workspace: conv2d_workspace_size(x.shape, weight.shape, stride, padding) values of x's dtype
    or more, reused across calls; None allocates one for this call. Its size depends on the
    thread count (set_num_threads): blocks of images are shared among OpenMP threads, each with
    its share of the workspace, and the BLAS runs single-threaded for the call.
    """
    is64, s, need = check.conv2d_forward(x, weight, bias, y, stride, padding, workspace)
    cdef bint f64 = is64
    cdef size_t B = s[0], C = s[1], H = s[2], W = s[3], OC = s[4], kh = s[5], kw = s[6]
    cdef size_t sh = s[7], sw = s[8], ph = s[9], pw = s[10], G = s[11], R = s[12]
    cdef int threads = s[13]
    work = _workspace(workspace, need, x)
    cdef void *py = data(y)
    cdef void *pk = data(work)
    cdef void *px = data(x)
    cdef void *pw_ = data(weight)
    cdef void *pb = data(bias)
    with single_threaded_blas():  # its idle threads would spin against ours
        with nogil:
            if f64:
                in_conv2d_forward_f64(<double *>py, <double *>pk, <double *>px, <double *>pw_,
                                      <double *>pb, B, C, H, W, OC, kh, kw, sh, sw, ph, pw, G, R,
                                      threads)
            else:
                in_conv2d_forward_f32(<float *>py, <float *>pk, <float *>px, <float *>pw_,
                                      <float *>pb, B, C, H, W, OC, kh, kw, sh, sw, ph, pw, G, R,
                                      threads)
    return y


def conv2d_backward(dy, x, weight, dx, dweight, dbias, stride=1, padding=0, workspace=None):
    """The true gradients of conv2d_forward; returns dx.

    dy (B, OC, oh, ow) is dL/dy; dx (like x) or None (not computed: a first layer's input),
    dweight (like weight), dbias (OC,) or None are overwritten, not accumulated.
    """
    is64, s, need = check.conv2d_backward(dy, x, weight, dx, dweight, dbias, stride, padding,
                                          workspace)
    cdef bint f64 = is64
    cdef size_t B = s[0], C = s[1], H = s[2], W = s[3], OC = s[4], kh = s[5], kw = s[6]
    cdef size_t sh = s[7], sw = s[8], ph = s[9], pw = s[10], G = s[11], R = s[12]
    cdef int threads = s[13]
    work = _workspace(workspace, need, x)
    cdef void *pdx = data(dx)
    cdef void *pdw = data(dweight)
    cdef void *pdb = data(dbias)
    cdef void *pk = data(work)
    cdef void *pdy = data(dy)
    cdef void *px = data(x)
    cdef void *pw_ = data(weight)
    with single_threaded_blas():  # its idle threads would spin against ours
        with nogil:
            if f64:
                in_conv2d_backward_f64(<double *>pdx, <double *>pdw, <double *>pdb, <double *>pk,
                                       <double *>pdy, <double *>px, <double *>pw_, B, C, H, W, OC,
                                       kh, kw, sh, sw, ph, pw, G, R, threads)
            else:
                in_conv2d_backward_f32(<float *>pdx, <float *>pdw, <float *>pdb, <float *>pk,
                                       <float *>pdy, <float *>px, <float *>pw_, B, C, H, W, OC,
                                       kh, kw, sh, sw, ph, pw, G, R, threads)
    return dx


def linear_forward(x, weight, bias, y):
    """y = x weight^T + bias; x (N, I), weight (O, I) (PyTorch's layout), bias (O,) or None,
    y (N, O); returns y."""
    cdef size_t N, Fin, Fout
    cdef bint f64
    f64, N, Fin, Fout = check.linear_forward(x, weight, bias, y)
    cdef void *py = data(y)
    cdef void *px = data(x)
    cdef void *pw = data(weight)
    cdef void *pb = data(bias)
    with nogil:
        if f64: in_linear_forward_f64(<double *>py, <double *>px, <double *>pw, <double *>pb, N, Fin, Fout)
        else: in_linear_forward_f32(<float *>py, <float *>px, <float *>pw, <float *>pb, N, Fin, Fout)
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
    with nogil:
        if f64:
            in_linear_backward_f64(<double *>pdx, <double *>pdw, <double *>pdb, <double *>pdy,
                                   <double *>px, <double *>pw, N, Fin, Fout)
        else:
            in_linear_backward_f32(<float *>pdx, <float *>pdw, <float *>pdb, <float *>pdy,
                                   <float *>px, <float *>pw, N, Fin, Fout)
    return dx
