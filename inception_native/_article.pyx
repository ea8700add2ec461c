# cython: language_level=3
"""The article's Darknet BatchNorm layer compiled as it stands (csrc/darknet_article.c), float32
only, for `bench` to measure the ported kernels against. Not part of the API."""
cimport numpy as cnp

cnp.import_array()

cdef extern from "darknet_article.h":
    void article_forward_batchnorm(float *input, float *output, float *x, float *x_norm,
                                   float *mean, float *variance, float *rolling_mean,
                                   float *rolling_variance, float *scales, float *biases,
                                   int batch, int out_c, int spatial) nogil
    void article_backward_batchnorm(float *delta, float *net_delta, float *x, float *x_norm,
                                    float *mean, float *variance, float *mean_delta,
                                    float *variance_delta, float *scales, float *scale_updates,
                                    float *bias_updates, int batch, int out_c, int spatial) nogil


cdef float *f32(cnp.ndarray a, Py_ssize_t size) except NULL:
    """The data of a C-contiguous float32 array of `size` elements (the loops index blindly)."""
    if a.dtype != "float32" or not a.flags.c_contiguous:
        raise TypeError("the article's kernels take C-contiguous float32 arrays")
    if a.size != size:
        raise ValueError(f"expected {size} elements, got {a.size}")
    return <float *>cnp.PyArray_DATA(a)


class ArticleBatchNorm:
    """Buffers of one Darknet BATCHNORM layer of shape (batch, channels, spatial)."""

    def __init__(self, batch, channels, spatial):
        if batch * channels * spatial >= 2**31:
            raise ValueError("the article's kernels index with int: fewer than 2**31 elements")
        import numpy as np
        n, c = batch * channels * spatial, channels
        self.shape = (batch, channels, spatial)
        self.output, self.x, self.x_norm, self.net_delta = (np.zeros(n, np.float32) for _ in range(4))
        (self.mean, self.variance, self.rolling_mean, self.rolling_variance, self.mean_delta,
         self.variance_delta, self.scale_updates, self.bias_updates) = (np.zeros(c, np.float32) for _ in range(8))
        self.scales, self.biases = np.ones(c, np.float32), np.zeros(c, np.float32)

    def forward(self, x):
        b, c, s = self.shape
        n = b * c * s
        article_forward_batchnorm(f32(x, n), f32(self.output, n), f32(self.x, n),
                                  f32(self.x_norm, n), f32(self.mean, c), f32(self.variance, c),
                                  f32(self.rolling_mean, c), f32(self.rolling_variance, c),
                                  f32(self.scales, c), f32(self.biases, c), b, c, s)
        return self.output

    def backward(self, delta):
        """In place on delta; the result is also copied to net_delta, as Darknet does."""
        b, c, s = self.shape
        n = b * c * s
        article_backward_batchnorm(f32(delta, n), f32(self.net_delta, n), f32(self.x, n),
                                   f32(self.x_norm, n), f32(self.mean, c), f32(self.variance, c),
                                   f32(self.mean_delta, c), f32(self.variance_delta, c),
                                   f32(self.scales, c), f32(self.scale_updates, c),
                                   f32(self.bias_updates, c), b, c, s)
        return self.net_delta
