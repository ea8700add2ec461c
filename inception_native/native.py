"""Every native kernel in one namespace, the twin of inception_native.reference.

A layer or a benchmark picks its backend as `native` or `reference`; the names and signatures
are the same in both.
"""
from .batchnorm import (batchnorm_backward, batchnorm_backward_darknet, batchnorm_forward,
                        batchnorm_forward_darknet)
from .blas import (add_bias, axpy_cpu, backward_bias, backward_scale_cpu, copy_cpu, fill_cpu,
                   mean_cpu, mean_delta_cpu, normalize_cpu, normalize_delta_cpu, scal_cpu,
                   scale_bias, sgd_momentum_cpu, variance_cpu, variance_delta_cpu)
from .activation import (channel_affine_forward, concat_backward, concat_forward,
                         dropout_backward, dropout_forward, relu_backward, relu_forward,
                         softmax_cross_entropy_backward, softmax_cross_entropy_forward)
from .activation import (leaky_relu_backward, leaky_relu_forward, logistic_backward,
                         logistic_forward, softmax_backward, softmax_forward)
from .conv import (col2im_cpu, col2im_ext, conv2d_backward, conv2d_forward, conv2d_forward_call,
                   conv2d_plan,
                   conv2d_workspace_size, gemm, gemm_cpu, im2col_cpu, im2col_ext,
                   linear_backward, linear_forward, nchwc_block, nchwc_pack_weights,
                   conv2d_forward_nchwc)
from .pool import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward, avg_pool2d_backward,
                   avg_pool2d_forward, avg_pool2d_forward_call, global_avg_pool_backward,
                   global_avg_pool_forward, global_avg_pool_forward_call,
                   avg_pool2d_forward_nchwc, global_avg_pool_forward_nchwc,
                   max_pool2d_backward, max_pool2d_forward, max_pool2d_forward_call,
                   max_pool2d_forward_nchwc,
                   nchw_to_nchwc, nchwc_to_nchw)
from .reference import fold_batchnorm  # parameter arithmetic, done once: NumPy is the kernel

__all__ = [
    "mean_cpu", "variance_cpu", "normalize_cpu", "axpy_cpu", "scal_cpu", "copy_cpu", "fill_cpu",
    "scale_bias", "add_bias", "backward_bias", "backward_scale_cpu", "mean_delta_cpu",
    "variance_delta_cpu", "normalize_delta_cpu", "sgd_momentum_cpu",
    "batchnorm_forward", "batchnorm_backward", "batchnorm_forward_darknet",
    "batchnorm_backward_darknet",
    "im2col_cpu", "col2im_cpu", "im2col_ext", "col2im_ext", "gemm", "gemm_cpu",
    "conv2d_plan", "conv2d_workspace_size", "conv2d_forward", "conv2d_backward", "linear_forward",
    "linear_backward", "fold_batchnorm", "nchwc_block", "nchwc_pack_weights",
    "conv2d_forward_nchwc",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward", "global_avg_pool_forward",
    "global_avg_pool_backward", "nchw_to_nchwc", "nchwc_to_nchw", "max_pool2d_forward_nchwc",
    "avg_pool2d_forward_nchwc", "global_avg_pool_forward_nchwc",
    "relu_forward", "relu_backward", "channel_affine_forward", "dropout_forward",
    "dropout_backward", "concat_forward",
    "concat_backward", "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "leaky_relu_forward", "leaky_relu_backward", "logistic_forward", "logistic_backward",
    "softmax_forward", "softmax_backward",
    "conv2d_forward_call", "max_pool2d_forward_call", "avg_pool2d_forward_call",
    "global_avg_pool_forward_call",
]
