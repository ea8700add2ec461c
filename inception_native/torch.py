"""PyTorch drop-ins over the native kernels (only with PyTorch installed; never required).

    from inception_native.torch import BatchNorm2d, Conv2d, use_native
    model = use_native(torchvision.models.googlenet())   # every BatchNorm2d and Conv2d swapped

`BatchNormFunction` and `Conv2dFunction` are torch.autograd.Functions whose forward and backward
run the native kernels on the tensors' memory (CPU, float32 or float64). `BatchNorm2d` and
`Conv2d` subclass torch.nn's, so parameters, buffers and state dicts are unchanged; they run
the same math as torch.nn's (BatchNorm: biased variance to normalise, unbiased running
variance, PyTorch's momentum). What the kernels do not cover raises NotImplementedError when
the module is built or swapped: grouped or dilated convolution, padding modes other than zeros,
string paddings, momentum=None (cumulative averages), a BatchNorm without running statistics.
"""
import numpy as np
import torch

from . import native
from .shapes import output_hw


def _array(t):
    """The tensor's memory as a C-contiguous NumPy array (copied only when it is not)."""
    return t.detach().contiguous().numpy()


class BatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        xa = _array(x)
        channels = xa.shape[1]
        y, mean, invstd = np.empty_like(xa), np.empty(channels, xa.dtype), np.empty(channels, xa.dtype)
        native.batchnorm_forward(xa, _array(weight), _array(bias), running_mean.numpy(),
                                 running_var.numpy(), y, mean, invstd, training=training, eps=eps,
                                 momentum=momentum)
        ctx.training = training
        ctx.save_for_backward(x, weight, torch.from_numpy(mean), torch.from_numpy(invstd))
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, invstd = ctx.saved_tensors
        xa, gamma = _array(x), _array(weight)
        dx, dgamma, dbeta = np.empty_like(xa), np.empty_like(gamma), np.empty_like(gamma)
        native.batchnorm_backward(_array(dy), xa, mean.numpy(), invstd.numpy(), gamma, dx,
                                  dgamma, dbeta, training=ctx.training)
        return (torch.from_numpy(dx), torch.from_numpy(dgamma), torch.from_numpy(dbeta),
                None, None, None, None, None)


class Conv2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        xa, wa = _array(x), _array(weight)
        (b, _, h, w), (oc, _, kh, kw) = xa.shape, wa.shape
        oh, ow = output_hw(h, w, kh, kw, *stride, *padding)
        y = np.empty((b, oc, oh, ow), xa.dtype)
        native.conv2d_forward(xa, wa, None if bias is None else _array(bias), y, stride, padding)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        ctx.save_for_backward(x, weight)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        xa, wa = _array(x), _array(weight)
        dx = np.empty_like(xa) if ctx.needs_input_grad[0] else None
        dw, db = np.empty_like(wa), np.empty(wa.shape[0], wa.dtype) if ctx.has_bias else None
        native.conv2d_backward(_array(dy), xa, wa, dx, dw, db, ctx.stride, ctx.padding)
        as_tensor = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
        return as_tensor(dx), as_tensor(dw), as_tensor(db), None, None


def _check_batchnorm(module):
    if not (module.affine and module.track_running_stats) or module.momentum is None:
        raise NotImplementedError("native BatchNorm2d needs affine=True, track_running_stats=True "
                                  "and a numeric momentum")


def _check_conv(module):
    if (module.groups != 1 or tuple(module.dilation) != (1, 1) or module.padding_mode != "zeros"
            or isinstance(module.padding, str)):
        raise NotImplementedError("native Conv2d covers groups=1, dilation=1 and numeric zero "
                                  f"padding, got {module}")


class BatchNorm2d(torch.nn.BatchNorm2d):
    """torch.nn.BatchNorm2d computed by the native exact-flavour kernels."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_batchnorm(self)

    def forward(self, x):
        self._check_input_dim(x)
        if self.training:
            self.num_batches_tracked.add_(1)
        return BatchNormFunction.apply(x, self.weight, self.bias, self.running_mean,
                                       self.running_var, self.training, self.momentum, self.eps)


class Conv2d(torch.nn.Conv2d):
    """torch.nn.Conv2d computed by the native im2col + GEMM kernels."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_conv(self)

    def forward(self, x):
        return Conv2dFunction.apply(x, self.weight, self.bias, tuple(self.stride),
                                    tuple(self.padding))


def _swapped(module, native_class):
    """An instance of native_class sharing module's parameters and buffers (no copy)."""
    swapped = native_class.__new__(native_class)
    swapped.__dict__.update(module.__dict__)
    (_check_batchnorm if native_class is BatchNorm2d else _check_conv)(swapped)
    return swapped


def use_native(model):
    """Swap every torch.nn.BatchNorm2d and Conv2d in model for the native ones, in place; the
    parameters and buffers are the same tensors. Returns model."""
    for name, child in model.named_children():
        if type(child) is torch.nn.BatchNorm2d:
            setattr(model, name, _swapped(child, BatchNorm2d))
        elif type(child) is torch.nn.Conv2d:
            setattr(model, name, _swapped(child, Conv2d))
        else:
            use_native(child)
    return model
