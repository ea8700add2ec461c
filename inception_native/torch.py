"""PyTorch drop-ins over the native kernels (only with PyTorch installed; never required).

    from inception_native.torch import BatchNorm2d, Conv2d, use_native
    model = use_native(torchvision.models.googlenet())   # every BatchNorm2d, Conv2d and
    # MaxPool2d swapped; every Sequential fuses conv + BatchNorm + ReLU where it can

`BatchNormFunction`, `Conv2dFunction` and `MaxPool2dFunction` are torch.autograd.Functions whose
forward and backward run the native kernels on the tensors' memory (CPU, float32 or float64).
`BatchNorm2d`, `Conv2d`, `MaxPool2d` and `Sequential` subclass torch.nn's, so parameters,
buffers and state dicts are unchanged; they run the same math as torch.nn's (BatchNorm: biased
variance to normalise, unbiased running variance, PyTorch's momentum), and show as
NativeBatchNorm2d, NativeConv2d, NativeMaxPool2d and NativeSequential in a model's repr.
What the kernels do not cover raises NotImplementedError when the module is built or swapped:
grouped or dilated convolution or pooling, a pooling's indices, padding modes other than zeros,
string paddings, momentum=None (cumulative averages), a BatchNorm without running statistics,
parameters that are not float32 or float64 on the CPU. An input the kernels do not take (another
dtype than the parameters', another device, a BatchNorm or pooling input that is not 4-D) goes
to torch.nn's own forward, so that it
gets PyTorch's result or PyTorch's error; an unbatched (C, H, W) convolution input runs natively
as a batch of one, as torch.nn.Conv2d takes it.
"""
import threading
import warnings

import numpy as np
import torch

from . import native
from ._checks import TAPS_MAX
from .layers import _thread_scratch
from .shapes import output_hw
from .threads import get_num_threads


def _array(t):
    """The tensor's memory as a C-contiguous NumPy array (copied only when it is not)."""
    return t.detach().contiguous().numpy()


class BatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps,
                relu=False):
        """relu: a ReLU after the BatchNorm, fused into its store (its backward's mask: y)."""
        xa = _array(x)
        channels = xa.shape[1]
        y, mean, invstd = np.empty_like(xa), np.empty(channels, xa.dtype), np.empty(channels, xa.dtype)
        native.batchnorm_forward(xa, _array(weight), _array(bias), running_mean.numpy(),
                                 running_var.numpy(), y, mean, invstd, training=training, eps=eps,
                                 momentum=momentum, relu=relu)
        ctx.training, out = training, torch.from_numpy(y)
        ctx.save_for_backward(x, weight, torch.from_numpy(mean), torch.from_numpy(invstd),
                              out if relu else None)
        return out

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, invstd, y_relu = ctx.saved_tensors
        xa, gamma = _array(x), _array(weight)
        dx, dgamma, dbeta = np.empty_like(xa), np.empty_like(gamma), np.empty_like(gamma)
        native.batchnorm_backward(_array(dy), xa, mean.numpy(), invstd.numpy(), gamma, dx,
                                  dgamma, dbeta, training=ctx.training,
                                  y_relu=None if y_relu is None else _array(y_relu))
        return (torch.from_numpy(dx), torch.from_numpy(dgamma), torch.from_numpy(dbeta),
                None, None, None, None, None, None)


class ConvPlan(threading.local):
    """A convolution's plan, kept from call to call and made again when the input's shape or
    dtype or the thread count changes; one per Python thread, so that two threads may run the
    same module. The workspace is the thread's, shared by every convolution it runs (the
    layers' `_thread_scratch`): kept, not allocated at each call (a fresh one costs its page
    faults: tens of MB for a 3x3 layer's backward at batch 16), and one for the whole model."""
    key = plan = None

    def __reduce__(self):  # a copied or pickled module starts with no plan
        return ConvPlan, ()

    def planned(self, x, weight, stride, padding):
        """{"plan": ..., "workspace": ...} for conv2d_forward/backward on x (an array)."""
        key = (x.shape, x.dtype, weight.shape, get_num_threads())
        if key != self.key:
            self.plan, self.key = native.conv2d_plan(x.shape, weight.shape, stride, padding), key
        return {"plan": self.plan, "workspace": _thread_scratch("conv", self.plan.workspace, x.dtype)}


class Conv2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, scratch=None):
        """scratch: a ConvPlan (a fresh one when None)."""
        xa, wa = _array(x), _array(weight)
        (b, _, h, w), (oc, _, kh, kw) = xa.shape, wa.shape
        oh, ow = output_hw(h, w, kh, kw, *stride, *padding)
        y = np.empty((b, oc, oh, ow), xa.dtype)
        ctx.scratch = scratch or ConvPlan()
        native.conv2d_forward(xa, wa, None if bias is None else _array(bias), y, stride, padding,
                              **ctx.scratch.planned(xa, wa, stride, padding))
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        ctx.save_for_backward(x, weight)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        xa, wa = _array(x), _array(weight)
        dx = np.empty_like(xa) if ctx.needs_input_grad[0] else None
        dw, db = np.empty_like(wa), np.empty(wa.shape[0], wa.dtype) if ctx.has_bias else None
        native.conv2d_backward(_array(dy), xa, wa, dx, dw, db, ctx.stride, ctx.padding,
                               **ctx.scratch.planned(xa, wa, ctx.stride, ctx.padding))
        as_tensor = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
        return as_tensor(dx), as_tensor(dw), as_tensor(db), None, None, None


class MaxPool2dFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, ceil_mode):
        """With a gradient to come and up to 255 taps a window, each window's first maximum as
        its tap, a byte an output (x not saved); otherwise the backward finds it again in x."""
        xa = _array(x)
        b, c, h, w = xa.shape
        y = np.empty((b, c, *output_hw(h, w, *kernel, *stride, *padding, ceil_mode)), xa.dtype)
        keep = ctx.needs_input_grad[0] and kernel[0] * kernel[1] <= TAPS_MAX
        taps = np.empty(y.shape, np.uint8) if keep else None
        native.max_pool2d_forward(xa, y, taps, kernel, stride, padding, ceil_mode)
        ctx.window, out = (kernel, stride, padding, ceil_mode), torch.from_numpy(y)
        ctx.x_shape = xa.shape
        ctx.save_for_backward(*((torch.from_numpy(taps),) if keep else (x, out)))
        return out

    @staticmethod
    def backward(ctx, dy):
        kernel, stride, padding, ceil_mode = ctx.window
        window = {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
        dx = np.empty(ctx.x_shape, _array(dy).dtype)
        saved = [_array(t) for t in ctx.saved_tensors]
        if len(saved) == 1:  # the taps
            native.max_pool2d_backward(_array(dy), saved[0], dx, **window)
        else:
            native.max_pool2d_backward(_array(dy), None, dx, x=saved[0], y=saved[1], **window)
        return torch.from_numpy(dx), None, None, None, None


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _unsupported(module):
    """What the native kernels do not cover in a BatchNorm2d, Conv2d or MaxPool2d (words), or
    None."""
    if isinstance(module, torch.nn.MaxPool2d):
        kernel, padding = _pair(module.kernel_size), _pair(module.padding)
        if module.return_indices or _pair(module.dilation) != (1, 1) or any(
                p > k // 2 for p, k in zip(padding, kernel)):
            return (f"native MaxPool2d covers dilation=1, return_indices=False and padding up to "
                    f"half the kernel, got {module}")
        return None
    if isinstance(module, torch.nn.BatchNorm2d):
        if not (module.affine and module.track_running_stats) or module.momentum is None:
            return "native BatchNorm2d needs affine=True, track_running_stats=True and a numeric momentum"
    elif (module.groups != 1 or tuple(module.dilation) != (1, 1) or module.padding_mode != "zeros"
          or isinstance(module.padding, str)):
        return f"native Conv2d covers groups=1, dilation=1 and numeric zero padding, got {module}"
    tensors = [*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]
    if any(t.dtype not in (torch.float32, torch.float64) or t.device.type != "cpu" for t in tensors):
        kinds = sorted({f"{t.dtype} on {t.device}" for t in tensors})
        return f"native kernels need float32 or float64 tensors on the CPU, got {', '.join(kinds)}"
    return None


def _check(module):
    problem = _unsupported(module)
    if problem:
        raise NotImplementedError(problem)


def _native_takes(x, weight, ndim=4):
    """Whether the native kernels take x with this weight (else torch.nn's forward does)."""
    return (x.dim() == ndim and x.dtype == weight.dtype and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64))


class _Native:
    """A torch.nn module computed by the native kernels: checked when built (what they do not
    cover raises), shown as Native<its name> in a model's repr."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check(self)

    def _get_name(self):
        return "Native" + super()._get_name()


class BatchNorm2d(_Native, torch.nn.BatchNorm2d):
    """torch.nn.BatchNorm2d computed by the native exact-flavour kernels."""

    def forward(self, x):
        return self._forward(x, False)

    def _forward(self, x, relu):
        """The BatchNorm, then (relu) a ReLU fused into its store; x native_takes."""
        if not _native_takes(x, self.weight):
            y = super().forward(x)  # PyTorch's result, or PyTorch's error
            return torch.relu(y) if relu else y
        if self.training:
            self.num_batches_tracked.add_(1)
        return BatchNormFunction.apply(x, self.weight, self.bias, self.running_mean,
                                       self.running_var, self.training, self.momentum, self.eps,
                                       relu)


class Conv2d(_Native, torch.nn.Conv2d):
    """torch.nn.Conv2d computed by the native convolution kernels."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._scratch = ConvPlan()

    def forward(self, x):
        if _native_takes(x, self.weight, ndim=3):  # unbatched (C, H, W): a batch of one
            return self.forward(x[None])[0]
        if not _native_takes(x, self.weight):
            return super().forward(x)  # PyTorch's result, or PyTorch's error
        return Conv2dFunction.apply(x, self.weight, self.bias, tuple(self.stride),
                                    tuple(self.padding), self._scratch)


class Sequential(torch.nn.Sequential):
    """torch.nn.Sequential that fuses what the native kernels can. When no gradient is asked
    for (inference), a NativeConv2d followed by a NativeBatchNorm2d in eval mode and/or a ReLU
    runs as one native convolution:
        y = relu(scale * conv(x) + shift),  scale = gamma / sqrt(running_var + eps),
        shift = beta + (bias - running_mean) * scale
    (computed in float64 at each call from the modules' current values: no state of its own),
    instead of three passes over memory; otherwise a NativeBatchNorm2d followed by a ReLU runs
    as one BatchNorm with the ReLU in its store (and its mask in the backward). The fused
    modules' hooks are not called; anything else runs as torch.nn.Sequential runs it."""

    def _get_name(self):
        return "NativeSequential"

    def forward(self, x):
        modules, i = list(self._modules.values()), 0
        while i < len(modules):
            run, module = _fused_run(modules, i, x), modules[i]
            if run:
                x = _fused(x, *modules[i:i + run])
            elif type(module) is BatchNorm2d and _followed_by_relu(modules, i):
                x, run = module._forward(x, True), 2
            else:
                x = module(x)
            i += max(run, 1)
        return x


def _followed_by_relu(modules, i):
    return i + 1 < len(modules) and type(modules[i + 1]) is torch.nn.ReLU


def _fused_run(modules, i, x):
    """How many modules from modules[i] one fused convolution computes on x (0, 2 or 3)."""
    conv = modules[i]
    if not (type(conv) is Conv2d and _native_takes(x, conv.weight)) or (
            torch.is_grad_enabled() and (x.requires_grad or any(
                p.requires_grad for m in modules[i:i + 3] for p in m.parameters()))):
        return 0
    run = 1
    if i + 1 < len(modules) and type(modules[i + 1]) is BatchNorm2d and not modules[i + 1].training:
        run += 1
    if _followed_by_relu(modules, i + run - 1):
        run += 1
    return run if run > 1 else 0


def _fused(x, conv, *after):
    """conv, then an eval-mode BatchNorm2d and/or a ReLU, as one native convolution."""
    xa, wa = _array(x), _array(conv.weight)
    (b, _, h, w), (oc, _, kh, kw) = xa.shape, wa.shape
    stride, padding = tuple(conv.stride), tuple(conv.padding)
    y = np.empty((b, oc, *output_hw(h, w, kh, kw, *stride, *padding)), xa.dtype)
    scale, shift = None, None if conv.bias is None else _array(conv.bias)
    if type(after[0]) is BatchNorm2d:
        bn, bias = after[0], 0 if shift is None else shift.astype(np.float64)
        gamma, beta, mean, var = (_array(t).astype(np.float64) for t in
                                  (bn.weight, bn.bias, bn.running_mean, bn.running_var))
        scale = gamma / np.sqrt(var + bn.eps)
        scale, shift = scale.astype(xa.dtype), (beta + (bias - mean) * scale).astype(xa.dtype)
    native.conv2d_forward(xa, wa, None, y, stride, padding, scale=scale, shift=shift,
                          relu=type(after[-1]) is torch.nn.ReLU,
                          **conv._scratch.planned(xa, wa, stride, padding))
    return torch.from_numpy(y)


class MaxPool2d(_Native, torch.nn.MaxPool2d):
    """torch.nn.MaxPool2d computed by the native kernels (no argmax kept: the backward finds
    each window's first maximum again, as PyTorch's index does)."""

    def forward(self, x):
        if not (x.dim() == 4 and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)):
            return super().forward(x)  # PyTorch's result, or PyTorch's error
        kernel = _pair(self.kernel_size)
        stride = kernel if self.stride is None or self.stride == () else _pair(self.stride)
        return MaxPool2dFunction.apply(x, kernel, stride, _pair(self.padding), self.ceil_mode)


NATIVE = {torch.nn.BatchNorm2d: BatchNorm2d, torch.nn.Conv2d: Conv2d,
          torch.nn.MaxPool2d: MaxPool2d}


def _swapped(module):
    """The native twin of module, sharing its parameters and buffers (no copy)."""
    native_class = NATIVE[type(module)]
    swapped = native_class.__new__(native_class)
    swapped.__dict__.update(module.__dict__)
    if native_class is Conv2d:
        swapped._scratch = ConvPlan()
    return swapped


def use_native(model, strict=True):
    """Swap every torch.nn.BatchNorm2d, Conv2d and Sequential in model for the native ones, in
    place, sharing their parameters and buffers (a Sequential changes class, the others are new
    objects); returns model, or the native module when model is a bare BatchNorm2d or Conv2d.
    Every module is checked first: when one is not
    covered (see the module's docstring), NotImplementedError names each such module by its path
    in the model (e.g. features.3) and what is not covered, and nothing is swapped;
    strict=False swaps the others and warns once, listing those left. Swapped modules show as
    NativeBatchNorm2d / NativeConv2d / NativeSequential in the model's repr."""
    found = [(path, module) for path, module in model.named_modules() if type(module) in NATIVE]
    problems = {path: _unsupported(module) for path, module in found}
    left = [f"{path or type(model).__name__}: {problem}" for path, problem in problems.items() if problem]
    if left and strict:
        raise NotImplementedError("use_native swapped nothing; not covered: " + "; ".join(left)
                                  + " (strict=False swaps the rest)")
    if left:
        warnings.warn("use_native left these modules to torch.nn: " + "; ".join(left), stacklevel=2)
    swapped = {id(module): _swapped(module) for path, module in found if not problems[path]}
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):  # every reference (named_children skips repeats)
            if id(child) in swapped:
                setattr(parent, name, swapped[id(child)])
    for module in model.modules():
        if type(module) is torch.nn.Sequential:  # no state of its own: its class changes in place
            module.__class__ = Sequential
    return swapped.get(id(model), model)
