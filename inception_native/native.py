"""Every native kernel in one namespace, the twin of inception_native.reference.

A layer or a benchmark picks its backend as `native` or `reference`; the names and signatures
are the same in both.
"""
from .batchnorm import (batchnorm_backward, batchnorm_backward_darknet, batchnorm_forward,
                        batchnorm_forward_darknet)
from .blas import (add_bias, axpy_cpu, backward_bias, backward_scale_cpu, copy_cpu, fill_cpu,
                   mean_cpu, mean_delta_cpu, normalize_cpu, normalize_delta_cpu, scal_cpu,
                   scale_bias, variance_cpu, variance_delta_cpu)

__all__ = [
    "mean_cpu", "variance_cpu", "normalize_cpu", "axpy_cpu", "scal_cpu", "copy_cpu", "fill_cpu",
    "scale_bias", "add_bias", "backward_bias", "backward_scale_cpu", "mean_delta_cpu",
    "variance_delta_cpu", "normalize_delta_cpu",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_forward_darknet",
    "batchnorm_backward_darknet",
]
