"""Layer objects: forward, backward (returning the true gradient dL/dx), parameters and their
gradients, train/eval mode. The same layer runs on the native kernels or on their NumPy twins
(`backend=native` or `backend=reference`), so whole-network comparisons are like for like.

Layers do no arithmetic of their own beyond glue: the kernels do the work. The arrays a layer
returns are buffers it owns and reuses on the next call with the same input shape (fresh
allocations cost page faults); copy them to keep them. One exception keeps a training step's
memory down: inside a container's backward (Sequential, Concat, a Network), the layers write
their dL/dx into arrays lent by the thread's gradient pool, which take them back as soon as the
next backward has read them (see _GradientPool): a backward holds the gradients in flight, not
one per layer, and a layer's dL/dx inside a container is valid until the container's backward
returns. What the outermost container returns is its own buffer, as a layer's is. Gradients in
`grads` are overwritten by each backward, not accumulated (every parameter is used once per
forward).

Every layer: `forward(x)`, `backward(dy)`, `params` and `grads` (name -> array, the same arrays
every time: an optimiser updates them in place), `buffers` (state that is not trained, e.g.
BatchNorm's rolling statistics), `train()`/`eval()`, and `output_shape(shape)`, the output
shape for an input shape, computed without running anything.

Threads: a layer (or network) object keeps its inputs and outputs between calls, so it serves
one call at a time. A forward or backward of an object that another thread is running raises
RuntimeError (instead of returning the other call's results); separate objects, e.g. one network
per thread, run fully in parallel (the kernels release the GIL).
"""
import functools
import math
import threading
from types import MappingProxyType

import numpy as np

from . import _checks as check
from . import native
from .shapes import output_hw
from .threads import get_num_threads

FLAVOURS = ("exact", "darknet")


def _reuse(current, shape, dtype):
    """current if it has this shape and dtype, else a fresh array."""
    if current is not None and current.shape == tuple(shape) and current.dtype == dtype:
        return current
    return np.empty(shape, dtype)


def _prefixed(children, attribute):
    return {f"{name}.{key}": value for name, child in children
            for key, value in getattr(child, attribute).items()}


_running = {}  # id of each object inside a forward or backward -> the thread running it
_scratch = threading.local()  # each thread's scratch arrays (see _thread_scratch)


def _thread_scratch(key, values, dtype):
    """`values` elements of dtype from this thread's scratch array `key`, shared by every layer
    that this thread runs and that uses it within one call only (a thread runs one call at a
    time): one array, grown to the largest need and kept for the thread's life, serves a whole
    network instead of one per layer. Keys: "conv", every convolution's workspace; ("split",
    depth), the dy slices of the Concats being differentiated, one per nesting depth."""
    arrays = _scratch.__dict__.setdefault("arrays", {})
    need = values * np.dtype(dtype).itemsize
    if key not in arrays or arrays[key].nbytes < need:
        arrays[key] = np.empty(need, np.uint8)
    return arrays[key][:need].view(dtype)


def _root(array):
    """The array that owns array's memory (array itself when it is not a view)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array



def _gradients(params):
    """Zeroed gradients like params, from np.zeros: memory the system hands out as pages are
    first written (by the first backward), so a network built for inference never holds them."""
    return {name: np.zeros(p.shape, p.dtype) for name, p in params.items()}


def _he_normal(rng, shape, dtype, variance):
    """Normal weights of this variance, drawn in their own dtype and scaled in place: no float64
    temporaries (twice the weights' size), which the allocator would keep as the process's."""
    w = rng.standard_normal(shape, dtype=np.dtype(dtype))
    w *= np.sqrt(variance)
    return w

class _GradientPool:
    """This thread's dL/dx arrays while a container's backward runs (`depth` > 0): take() lends
    one to the layer that writes a gradient, give() takes it back once the gradient has been
    read. Arrays are kept for the thread's life (the next step reuses them: no page faults);
    take() hands out the smallest free one that fits and, when none does, replaces the largest
    free one, so the pool holds about as many arrays as a backward has gradients in flight
    (dropping every free array on a miss instead kept less after one step but grew on the next:
    Inception v3, batch 16, 169 MB in every step against 143, 186, 186).
    A container hands a lent dy that nothing reads after the call over to the container it calls
    (handed_over): that one claims it and may write over it (BatchNorm's dL/dx in place) or give
    it back as soon as it has read it.
    A layer's activation that no one reads until its next forward (a convolution's output once
    BatchNorm's backward has read it) is borrowed: it serves as a free array until the outermost
    backward ends. The gradients of a backward then mostly live in the activations it has done
    with, as PyTorch frees its saved tensors (Inception v3, batch 16: a training step's peak
    42 MB lower)."""

    def __init__(self):
        self.free, self.lent, self.depth = {}, {}, 0  # id -> array
        self.donated = None  # the id of the lent array being handed over, or None
        self.borrowed = {}  # id -> a layer's array, free or lent until settle()

    def take(self, shape, dtype):
        need = math.prod(shape) * np.dtype(dtype).itemsize
        fits = [a for a in self.free.values() if a.nbytes >= need]
        if fits:
            array = self.free.pop(id(min(fits, key=lambda a: a.nbytes)))
        else:
            own = [a for a in self.free.values() if id(a) not in self.borrowed]
            if own:
                self.free.pop(id(max(own, key=lambda a: a.nbytes)))
            array = np.empty(need, np.uint8)
        self.lent[id(array)] = array
        return array.reshape(-1).view(np.uint8)[:need].view(dtype).reshape(shape)

    def borrow(self, array):
        """The memory of array (a layer's buffer), free for gradients until settle()."""
        root = _root(array)
        if (self.depth and root.flags.c_contiguous and id(root) not in self.borrowed
                and id(root) not in self.lent):
            self.borrowed[id(root)] = self.free[id(root)] = root

    def give(self, array, *keep):
        """array's memory back, unless it is not lent or one of the arrays in keep views it."""
        if not isinstance(array, np.ndarray):
            return
        root = _root(array)
        if all(k is None or _root(k) is not root for k in keep) and id(root) in self.lent:
            self.free[id(root)] = self.lent.pop(id(root))

    def handed_over(self, backward, dy, *keep):
        """backward(dy), dy handed over when the pool lent it and no array in keep views it: a
        container's backward claims it, else (a leaf) it comes back here once read."""
        root = _root(dy) if isinstance(dy, np.ndarray) else None
        hand = root is not None and id(root) in self.lent and all(
            k is None or _root(k) is not root for k in keep)
        self.donated = id(root) if hand else None
        dx = backward(dy)
        if hand and self.donated is not None:  # not claimed
            self.give(dy, dx)
        self.donated = None
        return dx

    def claim(self, dy):
        """True when dy was handed over to this call (it is the callee's to give back)."""
        mine = (self.donated is not None and isinstance(dy, np.ndarray)
                and self.donated == id(_root(dy)))
        self.donated = None
        return mine

    def settle(self, result, previous):
        """The end of the outermost backward: every lent array comes back but result's, which
        leaves the pool (the container keeps it until its next backward, when `previous`, what
        it kept before, comes back), and the borrowed arrays go back to their layers (a result
        in one is copied out first: its layer's next forward writes over it). Returns (the
        result, what the container keeps now)."""
        if isinstance(result, np.ndarray) and id(_root(result)) in self.borrowed:
            result = result.copy()
        kept = self.lent.pop(id(_root(result)), None) if isinstance(result, np.ndarray) else None
        self.free.update(self.lent)
        self.lent.clear()
        for key in self.borrowed:
            self.free.pop(key)
        self.borrowed.clear()
        if previous is not None:
            self.free[id(previous)] = previous
        return result, kept


def _check_not_lent(container):
    """A second backward after one forward would read activations its first lent to the
    gradients (_GradientPool.borrow): it raises, as PyTorch does, instead of returning garbage."""
    if container._lent:
        raise RuntimeError(f"{type(container).__name__}: backward called twice after one forward "
                           "(the first reused its activations for gradients): run forward again")


def _gradient_pool():
    pool = _scratch.__dict__.get("pool")
    if pool is None:
        pool = _scratch.pool = _GradientPool()
    return pool


def _pooled(backward):
    """A container's backward, run with the thread's gradient pool on (see _GradientPool)."""
    @functools.wraps(backward)
    def pooled(self, *args, **options):
        pool, dx = _gradient_pool(), None
        pool.depth += 1
        try:
            dx = backward(self, *args, **options)
        finally:
            pool.depth -= 1
            if not pool.depth:  # the outermost: it keeps what it returns
                dx, self._kept = pool.settle(dx, self._kept)
        return dx
    return pooled


def _one_call_at_a_time(method):
    """method, raising RuntimeError when its object is already inside a forward or backward in
    another thread (dict.setdefault is atomic: no lock needed). The same thread may enter again:
    a subclass's forward calling its parent's."""
    @functools.wraps(method)
    def exclusive(self, *args, **options):
        mine = [threading.get_ident()]
        holder = _running.setdefault(id(self), mine)
        if holder[0] != mine[0]:
            raise RuntimeError(f"this {type(self).__name__} is already running a forward or "
                               "backward (in another thread): a layer or network serves one "
                               "call at a time; use one object per thread")
        if holder is not mine:  # an outer call of this thread holds it and will release it
            return method(self, *args, **options)
        try:
            return method(self, *args, **options)
        finally:
            del _running[id(self)]
    return exclusive


class Layer:
    """What every layer shares: mode, backend, no parameters or buffers unless it says so;
    forward and backward one call at a time (see the module's docstring)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("forward", "backward"):
            if name in cls.__dict__:
                setattr(cls, name, _one_call_at_a_time(cls.__dict__[name]))

    backend = native
    training = True
    params = grads = buffers = MappingProxyType({})  # none, read-only
    children = ()  # (name, layer) pairs of a container
    # backward(dy, dx=array, accumulate=flag) writes (or adds) dL/dx into a given array
    takes_dx = False
    # forward(x, out=array) writes y into a given array, e.g. a channel slice of a Concat's
    # output, and backward then reads dy as a channel slice laid out alike
    gives_out = False
    # forward reads x, and backward(dy, dx=array) writes dL/dx, as channel slices of larger
    # tensors (a Concat's stacked 1x1 convolutions' output and gradient)
    slices = False

    def train(self, mode=True):
        self.training = mode
        for _, child in self.children:
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def output_shape(self, shape):
        return tuple(shape)

    def freeze(self, input_shape=None, max_batch=8, layout="nchw"):
        """Inference only, from a snapshot of the weights: see inception_native.freeze."""
        from .freeze import freeze

        return freeze(self, input_shape, max_batch, layout)

    def _dx_array(self, shape, dtype):
        """The array for dL/dx: lent by the thread's gradient pool inside a container's
        backward, else the layer's own (reused by its next backward)."""
        pool = _gradient_pool()
        if pool.depth:
            return pool.take(shape, dtype)
        self._dx = _reuse(self._dx, shape, dtype)
        return self._dx

    def _saved(self, value):
        """What the forward kept for the backward; a backward before any forward raises."""
        if value is None:
            raise RuntimeError(f"{type(self).__name__}: backward called before forward")
        return value

    def _check_input(self, x, ndim):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
        if x.ndim != ndim:
            raise ValueError(f"x must have {ndim} dimensions for {type(self).__name__}, "
                             f"got shape {x.shape}")


class Container(Layer):
    """A layer made of named children: its params, grads and buffers are theirs, prefixed.
    Its backward runs with the thread's gradient pool on (_pooled); the outermost keeps the
    memory of what it returns in _kept."""

    _kept = None

    @property
    def params(self):
        return _prefixed(self.children, "params")

    @property
    def grads(self):
        return _prefixed(self.children, "grads")

    @property
    def buffers(self):
        return _prefixed(self.children, "buffers")


class Conv2d(Layer):
    """y = conv2d(x, weight) + bias; weight (out, in, kh, kw) He-initialised from `rng`,
    bias optional (left out before a BatchNorm). kernel, stride, padding: int or (h, w).
    input_grad=False skips dL/dx (a network's first layer): backward returns None.
    forward(x, relu=True) runs a ReLU in the kernel's store, y = max(conv + bias, 0); the
    backward that follows then masks dy by y's sign as it reads it (a ReLU fused both ways)."""

    def __init__(self, in_channels, out_channels, kernel, stride=1, padding=0, bias=True,
                 dtype=np.float32, backend=native, rng=None, input_grad=True):
        kh, kw = check.pair("kernel", kernel, 1)
        self.stride, self.padding = check.pair("stride", stride, 1), check.pair("padding", padding)
        self.backend, self.input_grad = backend, input_grad
        rng = np.random.default_rng() if rng is None else rng
        fan_in = check.size("in_channels", in_channels, 1) * kh * kw
        shape = (check.size("out_channels", out_channels, 1), in_channels, kh, kw)
        self.params = {"weight": _he_normal(rng, shape, dtype, 2 / fan_in)}
        if bias:
            self.params["bias"] = np.zeros(out_channels, dtype)
        self.grads = _gradients(self.params)
        self._x = self._y = self._buffer = self._dx = self._plan = self._plan_key = None
        self._relu = False

    def output_shape(self, shape):
        B, C, H, W = shape
        weight = self.params["weight"]
        if C != weight.shape[1]:
            raise ValueError(f"x has {C} channels, the convolution expects {weight.shape[1]}")
        (kh, kw), (sh, sw), (ph, pw) = weight.shape[2:], self.stride, self.padding
        return (B, weight.shape[0], *output_hw(H, W, kh, kw, sh, sw, ph, pw))

    def _planned(self, x):
        """The plan for x, made again only when x's shape or dtype or the thread count changes,
        and the thread's shared workspace."""
        key = (x.shape, x.dtype, get_num_threads())
        if self._plan_key != key:
            self._plan = self.backend.conv2d_plan(x.shape, self.params["weight"].shape,
                                                  self.stride, self.padding)
            self._plan_key = key
        return {"plan": self._plan, "workspace": _thread_scratch("conv", self._plan.workspace, x.dtype)}

    gives_out = slices = True

    def forward(self, x, relu=False, out=None):
        """y into its own buffer, or into out (a channel slice of a larger tensor) when given;
        x may be a channel slice too."""
        self._check_input(x, 4)
        if out is None:
            out = self._buffer = _reuse(self._buffer, self.output_shape(x.shape), x.dtype)
        self.backend.conv2d_forward(x, self.params["weight"], self.params.get("bias"), out,
                                    self.stride, self.padding, relu=relu, **self._planned(x))
        self._x, self._y, self._relu = x, out, relu  # kept for the backward
        return out

    @property
    def takes_dx(self):
        return self.input_grad

    def backward(self, dy, dx=None, accumulate=False):
        """dL/dx into its own buffer, or into dx (+= when accumulate) when given (takes_dx)."""
        x = self._saved(self._x)
        if dx is None:
            dx = self._dx_array(x.shape, x.dtype) if self.input_grad else None
        return self.backend.conv2d_backward(dy, x, self.params["weight"], dx,
                                            self.grads["weight"], self.grads.get("bias"),
                                            self.stride, self.padding,
                                            y_relu=self._y if self._relu else None,
                                            accumulate=accumulate, **self._planned(x))


class Linear(Layer):
    """y = x weight^T + bias; x (batch, in_features), weight (out, in) He-initialised."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, backend=native,
                 rng=None):
        self.backend = backend
        rng = np.random.default_rng() if rng is None else rng
        shape = (check.size("out_features", out_features, 1), check.size("in_features", in_features, 1))
        self.params = {"weight": _he_normal(rng, shape, dtype, 1 / in_features)}
        if bias:
            self.params["bias"] = np.zeros(out_features, dtype)
        self.grads = _gradients(self.params)
        self._x = self._y = self._dx = None

    def output_shape(self, shape):
        if shape[1:] != (self.params["weight"].shape[1],):
            raise ValueError(f"x must have shape (batch, {self.params['weight'].shape[1]}), "
                             f"got {tuple(shape)}")
        return (shape[0], self.params["weight"].shape[0])

    def forward(self, x):
        self._check_input(x, 2)
        self._y = _reuse(self._y, self.output_shape(x.shape), x.dtype)
        self.backend.linear_forward(x, self.params["weight"], self.params.get("bias"), self._y)
        self._x = x
        return self._y

    def backward(self, dy):
        x = self._saved(self._x)
        return self.backend.linear_backward(dy, x, self.params["weight"], self._dx_array(x.shape, x.dtype),
                                            self.grads["weight"], self.grads.get("bias"))


class ReLU(Layer):
    """y = max(x, 0). Its backward reads the forward's output: so do LeakyReLU's, Logistic's
    and Softmax's, which name their kernels (and the kernels' extra arguments) here."""

    kernels, options = ("relu_forward", "relu_backward"), ()

    def __init__(self, backend=native):
        self.backend = backend
        self._y = self._dx = None

    def forward(self, x):
        self._y = _reuse(self._y, x.shape, x.dtype)
        return getattr(self.backend, self.kernels[0])(x, self._y, *self.options)

    def backward(self, dy):
        return getattr(self.backend, self.kernels[1])(dy, self._saved(self._y), self._dx_array(dy.shape, dy.dtype),
                                                      *self.options)


class MaxPool2d(Layer):
    """Max pooling; stride None is the kernel's size; ceil_mode as GoogLeNet's (Caffe's) pools.
    In training it keeps each window's first maximum as its tap in the window, a byte an output
    (kernels of up to 255 taps), for the backward; otherwise (eval, larger kernels) the backward
    finds each maximum again in the input x, which it then keeps (by reference: x must not
    change before the backward), and its own output."""

    def __init__(self, kernel, stride=None, padding=0, ceil_mode=False, backend=native):
        self.kernel, self.stride, self.padding, self.ceil_mode = kernel, stride, padding, ceil_mode
        self.backend = backend
        self._y = self._x = self._taps = self._dx = self._x_shape = None

    def output_shape(self, shape):
        B, C, H, W = shape
        kh, kw = check.pair("kernel", self.kernel, 1)
        sh, sw = (kh, kw) if self.stride is None else check.pair("stride", self.stride, 1)
        ph, pw = check.pair("padding", self.padding)
        return (B, C, *output_hw(H, W, kh, kw, sh, sw, ph, pw, self.ceil_mode, "pooling window"))

    def _window(self):
        return self.kernel, self.stride, self.padding, self.ceil_mode

    def forward(self, x):
        self._check_input(x, 4)
        shape = self.output_shape(x.shape)
        self._y = _reuse(self._y, shape, x.dtype)
        kh, kw = check.pair("kernel", self.kernel, 1)
        taps = self.training and kh * kw <= check.TAPS_MAX
        self._taps = _reuse(self._taps, shape, np.uint8) if taps else None
        self.backend.max_pool2d_forward(x, self._y, self._taps, *self._window())
        # kept for the backward once the forward has succeeded: x itself only for the search
        self._x_shape, self._x = x.shape, None if taps else x
        return self._y

    def backward(self, dy):
        shape = self._saved(self._x_shape)
        kernel, stride, padding, ceil_mode = self._window()
        window = {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
        dx = self._dx_array(shape, dy.dtype)
        if self._taps is not None:
            return self.backend.max_pool2d_backward(dy, self._taps, dx, **window)
        return self.backend.max_pool2d_backward(dy, None, dx, x=self._x, y=self._y, **window)


class AvgPool2d(MaxPool2d):
    """Average pooling; the divisor counts the padding (count_include_pad, PyTorch's default)."""

    def __init__(self, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 backend=native):
        super().__init__(kernel, stride, padding, ceil_mode, backend)
        self.count_include_pad = count_include_pad

    def _window(self):
        return super()._window() + (self.count_include_pad,)

    def forward(self, x):
        self._check_input(x, 4)
        self._x_shape = x.shape
        self._y = _reuse(self._y, self.output_shape(x.shape), x.dtype)
        return self.backend.avg_pool2d_forward(x, self._y, *self._window())

    def backward(self, dy):
        dx = self._dx_array(self._saved(self._x_shape), dy.dtype)
        return self.backend.avg_pool2d_backward(dy, dx, *self._window())


class GlobalAvgPool(Layer):
    """(batch, channels, H, W) -> (batch, channels): the mean over all positions."""

    def __init__(self, backend=native):
        self.backend = backend
        self._y = self._dx = self._x_shape = None

    def output_shape(self, shape):
        return tuple(shape[:2])

    def forward(self, x):
        self._check_input(x, 4)
        self._x_shape, self._y = x.shape, _reuse(self._y, x.shape[:2], x.dtype)
        return self.backend.global_avg_pool_forward(x, self._y)

    def backward(self, dy):
        dx = self._dx_array(self._saved(self._x_shape), dy.dtype)
        return self.backend.global_avg_pool_backward(dy, dx)


class AdaptiveAvgPool2d(Layer):
    """(batch, channels, H, W) -> (batch, channels, oh, ow), output_size = (oh, ow) or one int for
    both, smaller or larger than (H, W): output row i is the mean over input rows [floor(i H / oh),
    ceil((i + 1) H / oh)), likewise columns (PyTorch's adaptive_avg_pool2d; torchvision's
    GoogLeNet auxiliary heads pool 14x14 to 4x4 so)."""

    def __init__(self, output_size, backend=native):
        self.output_size = check.pair("output_size", output_size, 1)
        self.backend = backend
        self._y = self._dx = self._x_shape = None

    def output_shape(self, shape):
        return (*shape[:2], *self.output_size)

    def forward(self, x):
        self._check_input(x, 4)
        self._x_shape = x.shape
        self._y = _reuse(self._y, self.output_shape(x.shape), x.dtype)
        return self.backend.adaptive_avg_pool2d_forward(x, self._y)

    def backward(self, dy):
        dx = self._dx_array(self._saved(self._x_shape), dy.dtype)
        return self.backend.adaptive_avg_pool2d_backward(dy, dx)


class ChannelAffine(Layer):
    """y[:, c] = x[:, c] * scale[c] + shift[c], fixed (not trained): an input transform, e.g.
    torchvision's transform_input. backward returns dy * scale; a None dy (the next layer
    skipped its dL/dx) passes through."""

    def __init__(self, scale, shift, dtype=np.float32, backend=native):
        self.scale, self.shift = np.array(scale, dtype), np.array(shift, dtype)
        if self.scale.ndim != 1 or self.scale.shape != self.shift.shape:
            raise ValueError(f"scale and shift must be 1-D and alike, got shapes "
                             f"{self.scale.shape} and {self.shift.shape}")
        self.backend = backend
        self._y = self._dx = None

    def output_shape(self, shape):
        if shape[1] != self.scale.size:
            raise ValueError(f"x has {shape[1]} channels, the transform expects {self.scale.size}")
        return tuple(shape)

    def forward(self, x):
        self._check_input(x, 4)
        self.output_shape(x.shape)
        self._y = _reuse(self._y, x.shape, x.dtype)
        return self.backend.channel_affine_forward(x, self.scale, self.shift, self._y)

    def backward(self, dy):
        """dx = dy * scale per channel (the backend's copy and scale_bias)."""
        if dy is None:
            return None
        dx = self._dx_array(dy.shape, dy.dtype)
        self.backend.copy_cpu(dy.size, dy, 1, dx, 1)
        self.backend.scale_bias(dx, self.scale, dy.shape[0], dy.shape[1], dy[0, 0].size)
        return dx


class Flatten(Layer):
    """(batch, ...) -> (batch, features): a view, no copy."""

    _x_shape = None

    def output_shape(self, shape):
        return (shape[0], int(np.prod(shape[1:])))

    def forward(self, x):
        self._x_shape = x.shape
        return x.reshape(self.output_shape(x.shape))

    def backward(self, dy):
        return dy.reshape(self._saved(self._x_shape))


class Dropout(Layer):
    """Inverted dropout with probability p in training, the identity in eval. The mask of the
    n-th training forward is drawn from seed + n: a seeded run is reproducible, and seed and
    count are buffers, saved with a checkpoint, so that a resumed run draws the same masks."""

    def __init__(self, p=0.5, seed=0, backend=native):
        self.p = check.number("p", p, 0.0, 1.0)
        self.backend = backend
        self.buffers = {"seed": np.array(check.size("seed", seed), np.uint64),
                        "step": np.zeros((), np.uint64)}
        self._y = self._mask = self._dx = self._dropped = None

    def forward(self, x):
        self._dropped = self.training
        if not self.training:
            return x
        self._y, self._mask = _reuse(self._y, x.shape, x.dtype), _reuse(self._mask, x.shape, x.dtype)
        self.buffers["step"] += np.uint64(1)
        seed = (int(self.buffers["seed"]) + int(self.buffers["step"])) % 2**64
        return self.backend.dropout_forward(x, self._y, self._mask, self.p, seed)

    def backward(self, dy):
        if not self._saved(self._dropped):
            return dy
        return self.backend.dropout_backward(dy, self._mask, self._dx_array(dy.shape, dy.dtype))


class BatchNorm(Layer):
    """BatchNorm over the channels of (batch, channels, ...) activations.

    flavour "exact" (default): the BN paper's transform with the biased batch variance and eps
    inside the root; backward is its true gradient; rolling statistics updated with `momentum`
    (0.01: rolling = 0.99 * rolling + 0.01 * batch statistic, the variance unbiased).
    flavour "darknet": Darknet's batchnorm layer, blas routine by blas routine (its own fixed
    epsilons and 0.99/0.01 rolling update; eps and momentum do not apply).
    Parameters: gamma (Darknet's scales) and beta (biases); gradients in `grads`, overwritten by
    each backward. forward(x, relu=True) stores max(y, 0) and the backward that follows masks
    dy by y's sign (BN + ReLU fused both ways, no pass or buffer of the ReLU's own). The exact
    flavour gives_out: forward(x, out=y_block[:, c0:c1]) writes y into a channel slice, and
    the backward then reads dy as a slice laid out alike (an Inception branch ending in BN).
    """

    def __init__(self, channels, flavour="exact", eps=1e-5, momentum=0.01, dtype=np.float32,
                 backend=native):
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
        self.flavour, self.eps, self.momentum, self.backend = flavour, eps, momentum, backend
        self.params = {"gamma": np.ones(channels, dtype), "beta": np.zeros(channels, dtype)}
        self.grads = _gradients(self.params)
        self.rolling_mean = np.zeros(channels, dtype)
        self.rolling_variance = np.ones(channels, dtype)
        # the last batch's statistics, kept for the backward: its mean, and 1 / sqrt(var + eps)
        # (exact) or the unbiased variance (darknet; None in the other flavour)
        self.mean = np.zeros(channels, dtype)
        self.invstd = np.zeros(channels, dtype) if flavour == "exact" else None
        self.variance = np.zeros(channels, dtype) if flavour == "darknet" else None
        self.buffers = {"rolling_mean": self.rolling_mean, "rolling_variance": self.rolling_variance}
        self._x = self._y = self._buffer = self._x_norm = self._dx = None
        self._relu = False

    @property
    def gives_out(self):
        return self.flavour == "exact"

    slices = gives_out  # the exact flavour reads x and writes dx as channel slices too

    def forward(self, x, relu=False, out=None):
        """y for x of shape (batch, channels, ...), into its own buffer or into out (exact
        flavour); x is kept (not copied) for the backward."""
        gamma, beta = self.params["gamma"], self.params["beta"]
        if out is None:
            out = self._buffer = _reuse(self._buffer, x.shape, x.dtype)
        elif not self.gives_out:
            raise ValueError("out= needs the exact flavour (Darknet's writes y whole)")
        self._x, self._y = x, out
        self._trained, self._relu = self.training, relu
        if self.flavour == "exact":
            return self.backend.batchnorm_forward(
                x, gamma, beta, self.rolling_mean, self.rolling_variance, self._y, self.mean,
                self.invstd, training=self.training, eps=self.eps, momentum=self.momentum,
                relu=relu)
        self._x_norm = _reuse(self._x_norm, x.shape, x.dtype)
        return self.backend.batchnorm_forward_darknet(
            x, gamma, beta, self.rolling_mean, self.rolling_variance, self._y, self._x_norm,
            self.mean, self.variance, training=self.training, relu=relu)

    def backward(self, dy, dx=None):
        """dL/dx from dL/dy, into dx when given (dy itself: in place); fills grads["gamma"]
        and grads["beta"]."""
        if self._x is None:
            raise RuntimeError("backward called before forward")
        dx = self._dx_array(dy.shape, dy.dtype) if dx is None else dx
        y_relu = self._y if self._relu else None
        if self.flavour == "exact":
            return self.backend.batchnorm_backward(
                dy, self._x, self.mean, self.invstd, self.params["gamma"], dx,
                self.grads["gamma"], self.grads["beta"], training=self._trained, y_relu=y_relu)
        if not self._trained:
            raise NotImplementedError("the darknet flavour differentiates training mode only")
        self.backend.copy_cpu(dy.size, dy, 1, dx, 1)
        for g in self.grads.values():
            g.fill(0)  # Darknet's updates accumulate; a layer's grads are per backward
        return self.backend.batchnorm_backward_darknet(
            dx, self._x, self._x_norm, self.mean, self.variance, self.params["gamma"],
            self.grads["gamma"], self.grads["beta"], y_relu=y_relu)


def _add_into(backend, total, parts):
    """total = the sum of the arrays in parts, by the backend's copy and axpy."""
    backend.copy_cpu(total.size, parts[0], 1, total, 1)
    for part in parts[1:]:
        backend.axpy_cpu(total.size, 1.0, part, 1, total, 1)
    return total


def joined_shape(shapes, what):
    """The shape of arrays of `shapes` side by side along the channels (axis 1)."""
    if len({s[:1] + s[2:] for s in shapes}) != 1:
        raise ValueError(f"{what} {[tuple(s) for s in shapes]} differ beyond their channels")
    return (shapes[0][0], sum(s[1] for s in shapes), *shapes[0][2:])


class Sequential(Container):
    """Layers applied one after another; children named "0", "1", ... or by `names`."""

    def __init__(self, *layers, names=None):
        names = [str(i) for i in range(len(layers))] if names is None else list(names)
        if len(names) != len(layers):
            raise ValueError(f"{len(names)} names for {len(layers)} layers")
        self.children = list(zip(names, layers))

    def __getitem__(self, name):
        return dict(self.children)[name]

    def output_shape(self, shape):
        for _, layer in self.children:
            shape = layer.output_shape(shape)
        return shape

    @property
    def gives_out(self):
        return self.children[-1][1].gives_out

    @property
    def slices(self):
        return self.children[0][1].slices

    def forward(self, x, start=0, **out):
        """out: out= for the last layer, when it gives_out. start: the first child to run, x
        then being the output of the child before it (a Concat runs stacked first children)."""
        for _, layer in self.children[start:-1]:
            x = layer.forward(x)
        return self.children[-1][1].forward(x, **out)

    @property
    def takes_dx(self):
        return self.children[0][1].takes_dx

    @_pooled
    def backward(self, dy, stop=0, **into):
        """into: dx= and accumulate= for the first layer, when it takes_dx. Each child's dL/dx
        goes back to the gradient pool once the child before it has read it. stop: the children
        before it are not differentiated (forward's start): returns dL/d(child stop's input)."""
        pool = _gradient_pool()
        given = None if pool.claim(dy) else dy
        for _, layer in reversed(self.children[stop + 1:]):
            dy = pool.handed_over(layer.backward, dy, given)
        return pool.handed_over(functools.partial(self.children[stop][1].backward, **into), dy,
                                given)


class ConvUnit(Sequential):
    """conv -> [BatchNorm ->] ReLU as one unit, run fused: the ReLU in the store of the layer
    before it (the convolution's kernel, or BatchNorm's) and, backward, dy masked by that
    layer's output as its backward reads it. The ReLU child never runs (it holds no buffer);
    it is there for the paths (conv.weight, bn.gamma, relu) that checkpoints, torchvision
    import, Darknet export and freeze read, which are those of Sequential(conv, [bn,] relu).
    fused = False runs the composition instead, layer by layer (the same numbers: tests and
    benchmarks compare the two)."""

    fused = True

    def __init__(self, conv, bn, relu):
        if not isinstance(conv, Conv2d) or type(relu) is not ReLU:
            raise TypeError("ConvUnit takes a Conv2d, a BatchNorm or None, and a ReLU")
        if bn is not None and not isinstance(bn, BatchNorm):
            raise TypeError(f"bn must be a BatchNorm or None, got {type(bn).__name__}")
        super().__init__(*[layer for layer in (conv, bn, relu) if layer is not None],
                         names=("conv", "relu") if bn is None else ("conv", "bn", "relu"))
        self.conv, self.bn, self._ran_fused, self._head = conv, bn, None, None
        self._lent = False  # whether the backward lent the convolution's output (see below)

    @property
    def gives_out(self):
        return self.fused and (self.bn is None or self.bn.gives_out)

    def forward(self, x, **out):
        self._ran_fused, self._lent = self.fused, False
        if not self.fused:
            return super().forward(x, **out)
        if self.bn is None:
            return self.conv.forward(x, relu=True, **out)
        return self.bn.forward(self.conv.forward(x), relu=True, **out)

    @_pooled
    def backward(self, dy, **into):
        pool = _gradient_pool()
        mine = pool.claim(dy)  # then BatchNorm writes its dL/dx over dy
        _check_not_lent(self)
        if not self._saved(self._ran_fused):  # the forward ran the composition
            dx = super().backward(dy, **into)
        elif self.bn is None:
            dx = self.conv.backward(dy, **into)
        else:
            in_place = mine and self.bn.flavour == "exact" and dy.flags.c_contiguous
            dy_conv = self.bn.backward(dy, dx=dy if in_place else None)
            pool.borrow(self.conv._y)  # BN's input, read: no one reads it until the next forward
            self._lent = True
            dx = self.conv.backward(dy_conv, **into)
            pool.give(dy_conv, dx)
        if mine:
            pool.give(dy, dx)
        return dx

    @property
    def stack_key(self):
        """What units must share to run as one stacked convolution (see _StackedHeads), or None
        when this one cannot: a fused 1x1 stride-1 convolution without padding that computes
        dL/dx."""
        conv = self.conv
        if (not self.fused or not conv.input_grad or conv.params["weight"].shape[2:] != (1, 1)
                or conv.stride != (1, 1) or conv.padding != (0, 0)):
            return None
        return (self.bn and self.bn.flavour, "bias" in conv.params, conv.params["weight"].dtype)

    def from_conv(self, c, keep_slice=False, **out):
        """The unit's output from c, its convolution's output (its channels of a stacked
        convolution's, bias and ReLU applied when there is no BN): BN + ReLU of c (the exact
        flavour reads the slice itself; Darknet's a copy), or without BN c itself (keep_slice:
        what reads it takes slices) or c copied into out or into the unit's own buffer."""
        if self.bn is not None and self.bn.gives_out:
            return self.bn.forward(c, relu=True, **out)
        if self.bn is None and out:
            out["out"][...] = c
            return out["out"]
        if self.bn is None and keep_slice:
            return c
        self._head = _reuse(self._head, c.shape, c.dtype)
        self._head[...] = c
        return self._head if self.bn is None else self.bn.forward(self._head, relu=True)

    def to_conv(self, dy, into):
        """into = dL/d(the convolution's output) from dy = dL/d(the unit's output), into being
        the unit's channels of the stacked convolution's gradient: BN's backward (which applies
        the ReLU's mask) writes it there (Darknet's into an array of its own, then copied);
        without BN, dy copied (the stacked convolution masks it by its output's sign)."""
        if self.bn is None:
            into[...] = dy
        elif self.bn.gives_out:
            self.bn.backward(dy, dx=into)
        else:
            d = self.bn.backward(dy)
            into[...] = d
            _gradient_pool().give(d)


def _image_by_image(kernel, src, dst, *options):
    """kernel(src, dst, *options) on one image at a time: one image of a channel slice of a
    larger tensor is contiguous, where the whole slice is not."""
    for n in range(src.shape[0]):
        kernel(src[n:n + 1], dst[n:n + 1], *options)


class PoolProjection(Sequential):
    """An Inception block's pool-projection branch: a pooling, then a 1x1 convolution unit.
    When the pooling averages same-size windows (stride 1) and the unit has BatchNorm (so its
    convolution has no bias), the two commute: conv1x1(avgpool(x)) = avgpool(conv1x1(x)), both
    linear, the padding's zeros staying zeros. A Concat then runs the convolution among its
    stacked 1x1 heads (stack_key, from_conv, to_conv, as a ConvUnit) and pools the unit's cout
    channels instead of the block's cin: less work, and the step keeps cout pooled channels
    instead of cin (Inception v3, batch 16: about 100 MB less). Run on its own, or when the two
    do not commute, it is the Sequential (pooling, unit)."""

    def __init__(self, pooling, unit):
        if not isinstance(pooling, MaxPool2d) or not isinstance(unit, ConvUnit):
            raise TypeError("PoolProjection takes a MaxPool2d or AvgPool2d and a ConvUnit")
        super().__init__(pooling, unit)
        self.pooling, self.unit, self._pooled = pooling, unit, None

    @property
    def conv(self):
        return self.unit.conv

    @property
    def bn(self):
        return self.unit.bn

    @property
    def stack_key(self):
        pool = self.pooling
        kernel = check.pair("kernel", pool.kernel, 1)
        same_size = (pool.stride is not None and check.pair("stride", pool.stride, 1) == (1, 1)
                     and all(2 * p + 1 == k for p, k in zip(check.pair("padding", pool.padding), kernel)))
        return self.unit.stack_key if type(pool) is AvgPool2d and same_size and self.bn else None

    def from_conv(self, c, **out):
        """BN + ReLU of the average pooling of c, the unit's channels of the stacked output."""
        self._pooled = _reuse(self._pooled, c.shape, c.dtype)
        _image_by_image(self.pooling.backend.avg_pool2d_forward, c, self._pooled,
                        *self.pooling._window())
        return self.bn.forward(self._pooled, relu=True, **out)

    def to_conv(self, dy, into):
        """into = dL/d(the unit's channels of the stacked output): BN's backward (the ReLU's
        mask applied), then the pooling's; the pooled maps are not read again (borrowed)."""
        d_pooled = self.bn.backward(dy)
        pool = _gradient_pool()
        pool.borrow(self._pooled)
        _image_by_image(self.pooling.backend.avg_pool2d_backward, d_pooled, into,
                        *self.pooling._window())
        pool.give(d_pooled, dy)


class _StackedHeads:
    """The 1x1 convolutions that begin several branches of a Concat, all reading its input, run
    as one convolution of their output channels stacked (horizontal fusion, as frozen inference
    does): forward, one GEMM reads x once for all of them; backward, one GEMM sums their dL/dx
    (its K is every head's channels: dx written once) and one gives every dL/dw. The units'
    parameters and gradients become views of the stacked convolution's, made when the Concat is
    built (before an optimiser holds them): no copies, no memory of their own. Loading weights
    in place keeps them so; a unit whose parameter was replaced by another array, or that
    changed so that it cannot stack any more, turns the stacking off (intact()).
    members: (branch index, unit) pairs whose units share a stack_key."""

    def __init__(self, members, backend):
        self.members, self.key = members, members[0][1].stack_key
        self._convs = [unit.conv for _, unit in members]
        weight = self._convs[0].params["weight"]
        outs = [c.params["weight"].shape[0] for c in self._convs]
        self.ends = np.cumsum([0] + outs)
        self.relu = members[0][1].bn is None  # else BN + ReLU follow, unit by unit
        self.conv = Conv2d(weight.shape[1], self.ends[-1], 1, bias="bias" in self._convs[0].params,
                           dtype=weight.dtype, backend=backend, rng=np.random.default_rng(0))
        for conv, a, b in zip(self._convs, self.ends, self.ends[1:]):
            for kind in ("params", "grads"):
                mine, stacked = getattr(conv, kind), getattr(self.conv, kind)
                for name in mine:
                    stacked[name][a:b] = mine[name]
                    mine[name] = stacked[name][a:b]

    def intact(self):
        """Whether every unit still stacks alike and holds views of the stacked arrays."""
        return all(unit.stack_key == self.key for _, unit in self.members) and all(
            array.base is getattr(self.conv, kind)[name]
            for conv in self._convs for kind in ("params", "grads")
            for name, array in getattr(conv, kind).items())

    def parts(self, t):
        """Each unit's channels of t, a tensor laid out as the stacked output (views)."""
        return [t[:, a:b] for a, b in zip(self.ends, self.ends[1:])]

    def forward(self, x):
        """Each unit's convolution output: its channels of the stacked output, which the
        stacked convolution keeps (its ReLU's mask, or BN's input)."""
        return self.parts(self.conv.forward(x, relu=self.relu))

    def gradient_array(self):
        """An array lent by the gradient pool for dL/d(the stacked output)."""
        y = self.conv._saved(self.conv._y)
        return _gradient_pool().take(y.shape, y.dtype)

    def backward(self, d_stacked, dx, accumulate):
        """dx (+)= dL/dx from d_stacked, dL/d(the stacked output), which goes back to the
        pool; the units' grads (views) written."""
        self.conv.backward(d_stacked, dx=dx, accumulate=accumulate)
        _gradient_pool().give(d_stacked)


def _head_unit(branch):
    """The unit that begins a Concat's branch and may join its stacked 1x1 heads: the branch
    itself (a ConvUnit or a PoolProjection), or a Sequential's first ConvUnit; else None."""
    if isinstance(branch, (ConvUnit, PoolProjection)):
        return branch
    if type(branch) is Sequential and len(branch.children) > 1 and isinstance(branch.children[0][1], ConvUnit):
        return branch.children[0][1]
    return None


class Concat(Container):
    """Parallel branches on the same input, their outputs side by side along the channels
    (an Inception module). The backward splits dy by branch and sums the branches' input
    gradients into dL/dx: the branches that cannot write it first (a pooling branch: copied,
    then added), then those whose first layer takes_dx add their part into it in their own
    backward's store (no buffer of their own). A branch that gives_out (ending in a fused conv
    + ReLU unit, or a fused conv + BN + ReLU unit of the exact flavour) writes its output
    straight into its channels of the concatenation and reads its dL/dy from the same channels
    of dy: no copies either way. Branches that begin with a 1x1 convolution unit (two or more,
    alike: see ConvUnit.stack_key), an average-pool projection among them (PoolProjection),
    run those units as one convolution (_StackedHeads), unless stack_heads is False (the same
    numbers up to the order of dL/dx's sums and the projection's pooling after its
    convolution: tests and benchmarks compare the two)."""

    stack_heads = True

    def __init__(self, *branches, backend=native):
        if not branches:
            raise ValueError("Concat needs at least one branch")
        self.children = [(f"branch{i}", b) for i, b in enumerate(branches)]
        self.backend = backend
        self._y = self._shapes = self._x_shape = self._stacked = None
        self._lent = False  # whether the backward lent the stacked convolution's output
        heads = [(i, _head_unit(b)) for i, (_, b) in enumerate(self.children)]
        keys = [(i, u) for i, u in heads if u is not None and u.stack_key]
        members = [(i, u) for i, u in keys if u.stack_key == keys[0][1].stack_key]
        self._stack = _StackedHeads(members, backend) if len(members) > 1 else None

    def output_shape(self, shape):
        return joined_shape([b.output_shape(shape) for _, b in self.children], "the branches' outputs")

    def _channels(self):
        """(branch, its first channel, one past its last) in the concatenation."""
        ends = np.cumsum([0] + [s[1] for s in self._shapes])
        return [(b, int(c0), int(c1)) for (_, b), c0, c1 in zip(self.children, ends, ends[1:])]

    @property
    def stacked_heads(self):
        """The _StackedHeads the branches' first units run as, or None (stack_heads False, fewer
        than two alike, or no longer intact)."""
        return self._stack if self.stack_heads and self._stack and self._stack.intact() else None

    def forward(self, x):
        self._x_shape, self._shapes = x.shape, [b.output_shape(x.shape) for _, b in self.children]
        self._y = _reuse(self._y, joined_shape(self._shapes, "the branches' outputs"), x.dtype)
        channels, heads = self._channels(), {}
        self._stacked, self._lent = self.stacked_heads, False
        if self._stacked:  # the heads first, then the rest of each branch
            for (i, unit), part in zip(self._stacked.members, self._stacked.forward(x)):
                branch, c0, c1 = channels[i]
                if branch is unit:
                    out = {"out": self._y[:, c0:c1]} if branch.gives_out else {}
                    heads[i] = unit.from_conv(part, **out)
                else:
                    heads[i] = unit.from_conv(part, keep_slice=branch.children[1][1].slices)
        for i, (branch, c0, c1) in enumerate(channels):
            out = {"out": self._y[:, c0:c1]} if branch.gives_out else {}
            if i not in heads:
                y = branch.forward(x, **out)
            elif _head_unit(branch) is branch:
                y = heads[i]
            else:
                y = branch.forward(heads[i], start=1, **out)
            if not branch.gives_out:
                self._y[:, c0:c1] = y
        return self._y

    @_pooled
    def backward(self, dy):
        """The split of dy (the parts of the branches that do not read theirs in place) lives in
        the thread's scratch for this call only (a Concat within a branch of another uses the
        next depth's)."""
        self._saved(self._shapes)
        pool = _gradient_pool()
        mine = pool.claim(dy)
        _check_not_lent(self)
        depth = _scratch.__dict__.get("concat_depth", 0)
        _scratch.concat_depth = depth + 1
        split = sum(math.prod(shape) for (_, branch), shape in zip(self.children, self._shapes)
                    if not branch.gives_out)
        try:
            dx = self._backward(dy, _thread_scratch(("split", depth), split, dy.dtype))
        finally:
            _scratch.concat_depth = depth
        if mine:
            pool.give(dy, dx)
        return dx

    def _backward(self, dy, split):
        dys, at = [], 0
        for (branch, c0, c1), shape in zip(self._channels(), self._shapes):
            if branch.gives_out:  # a channel slice, read in place
                dys.append(dy[:, c0:c1])
            else:
                dys.append(split[at:at + math.prod(shape)].reshape(shape))
                dys[-1][...] = dy[:, c0:c1]
                at += dys[-1].size
        dx, pool = self._dx_array(self._x_shape, dy.dtype), _gradient_pool()
        # the branches that cannot write into dx first, then the stacked heads, then the rest
        stacked = dict(self._stacked.members) if self._stacked else {}
        first = [i for i, (_, b) in enumerate(self.children) if not b.takes_dx and i not in stacked]
        rest = [i for i, (_, b) in enumerate(self.children) if b.takes_dx and i not in stacked]
        for written, i in enumerate(first + ([None] if stacked else []) + rest):
            if i is None:
                self._stacked_backward(dys, dx, dy, accumulate=written > 0)
            elif self.children[i][1].takes_dx:
                self.children[i][1].backward(dys[i], dx=dx, accumulate=written > 0)
            else:
                part = self.children[i][1].backward(dys[i])
                if written:
                    self.backend.axpy_cpu(dx.size, 1.0, part, 1, dx, 1)
                else:
                    self.backend.copy_cpu(dx.size, part, 1, dx, 1)
                pool.give(part, dy)
        return dx

    def _stacked_backward(self, dys, dx, dy, accumulate):
        """The stacked heads' part: each branch's dL/d(its unit's output) (the rest of the
        branch differentiated first) taken to its channels of dL/d(the stacked output), then
        one backward of the stacked convolution."""
        stack = self._stacked
        d_stacked = stack.gradient_array()
        for (i, unit), part in zip(stack.members, stack.parts(d_stacked)):
            branch = self.children[i][1]
            if branch is unit:
                d = dys[i]
            elif unit.bn is None and branch.children[1][1].takes_dx and branch.children[1][1].slices:
                branch.backward(dys[i], stop=1, dx=part)  # straight into its channels
                continue
            else:
                d = branch.backward(dys[i], stop=1)
            unit.to_conv(d, part)
            _gradient_pool().give(d, dy)
        if not stack.relu:  # the units' BN have read their input: its output is not read again
            _gradient_pool().borrow(stack.conv._y)
            self._lent = True
        stack.backward(d_stacked, dx, accumulate)


# ---- Darknet's layers: its activations, softmax, [route] and [maxpool] ---------------------

class LeakyReLU(ReLU):
    """y = x where x > 0, else slope * x (Darknet's leaky: slope 0.1)."""

    kernels = ("leaky_relu_forward", "leaky_relu_backward")

    def __init__(self, slope=0.1, backend=native):
        super().__init__(backend)
        self.options = (check.number("slope", slope, 0.0),)


class Logistic(ReLU):
    """y = 1 / (1 + exp(-x))."""

    kernels = ("logistic_forward", "logistic_backward")


class Softmax(ReLU):
    """(batch, ...) -> (batch, n): the softmax over each item's n values, probabilities (as
    Darknet's [softmax]); backward: the true gradient through it."""

    kernels = ("softmax_forward", "softmax_backward")
    _x_shape = None
    output_shape = Flatten.output_shape

    def forward(self, x):
        self._x_shape = x.shape
        return super().forward(x.reshape(self.output_shape(x.shape)))

    def backward(self, dy):
        return super().backward(dy).reshape(self._saved(self._x_shape))


class Unflatten(Flatten):
    """(batch, features) -> (batch, features, 1, 1): a view, no copy (a vector read as a 1x1
    map, as Darknet's layers read one)."""

    def output_shape(self, shape):
        if len(shape) != 2:
            raise ValueError(f"Unflatten expects (batch, features), got {tuple(shape)}")
        return (*shape, 1, 1)


class Route(Layer):
    """Darknet's [route]: the outputs of earlier layers (its sources in a models.Graph) side by
    side along the channels; one source passes through. forward(xs) takes their list,
    backward(dy) returns one gradient per source (the split)."""

    def __init__(self, backend=native):
        self.backend = backend
        self._y = self._dxs = self._shapes = None

    def output_shape(self, shapes):
        return joined_shape(shapes, "the route's inputs")

    def forward(self, xs):
        self._shapes = [x.shape for x in xs]
        if len(xs) == 1:
            return xs[0]
        self._y = _reuse(self._y, self.output_shape(self._shapes), xs[0].dtype)
        return self.backend.concat_forward(list(xs), self._y)

    def backward(self, dy):
        shapes = self._saved(self._shapes)
        if len(shapes) == 1:
            return [dy]
        self._dxs = [_reuse(d, s, dy.dtype) for d, s in zip(self._dxs or [None] * len(shapes), shapes)]
        return self.backend.concat_backward(dy, self._dxs)


class DarknetMaxPool(Layer):
    """Darknet's [maxpool]: size x size windows every `stride` pixels, the first at
    -(padding // 2), (H + padding - size) // stride + 1 of them down (likewise across); places
    outside the image never win (Darknet reads them as -FLT_MAX). padding defaults to
    size - 1: for an even size it is asymmetric, size 2 stride 1 keeps the map's size with
    windows one past its right and bottom edges. Runs the max_pool2d kernels, with their
    symmetric padding when Darknet's windows fit in it, else on a copy of the input padded
    with -inf. A window wholly outside the image (a large padding) is refused. The backward
    reads what MaxPool2d's does: in training the windows' first maxima as taps (Darknet's
    `indexes`, a byte an output), otherwise the pooled input found again."""

    def __init__(self, size, stride=1, padding=None, backend=native):
        self.size, self.stride = check.size("size", size, 1), check.size("stride", stride, 1)
        self.padding = self.size - 1 if padding is None else check.size("padding", padding)
        self.backend = backend
        self._y = self._x = self._taps = self._padded = self._dpadded = self._dx = None
        self._x_shape = None

    def _geometry(self, H, W):
        """(oh, ow), the first window's offset and how far the last reach past the bottom and
        right edges (padding that the input needs there)."""
        k, s, first = self.size, self.stride, self.padding // 2
        out = [(n + self.padding - k) // s + 1 for n in (H, W)]
        if min(out) < 1 or first >= k or any((o - 1) * s - first >= n for o, n in zip(out, (H, W))):
            raise ValueError(f"[maxpool] size={k} stride={s} padding={self.padding} on a {H}x{W} "
                             "map has windows wholly outside it")
        return out, first, [max(0, (o - 1) * s + k - first - n) for o, n in zip(out, (H, W))]

    def output_shape(self, shape):
        return (*shape[:2], *self._geometry(*shape[2:])[0])

    def _padded_input(self, shape):
        """The padding max_pool2d applies itself (symmetric), or None when the input needs a
        -inf border of (first, bottom, first, right)."""
        _, first, (bottom, right) = self._geometry(*shape[2:])
        return first if max(bottom, right) <= first <= self.size // 2 else None

    def forward(self, x):
        self._check_input(x, 4)
        shape = self.output_shape(x.shape)
        self._y = _reuse(self._y, shape, x.dtype)
        taps = self.training and self.size * self.size <= check.TAPS_MAX
        self._taps = _reuse(self._taps, shape, np.uint8) if taps else None
        x_shape, padding = x.shape, self._padded_input(x.shape)
        if padding is None:
            _, first, (bottom, right) = self._geometry(*x.shape[2:])
            B, C, H, W = x.shape
            self._padded = _reuse(self._padded, (B, C, first + H + bottom, first + W + right), x.dtype)
            self._padded.fill(-np.inf)
            self._padded[:, :, first:first + H, first:first + W] = x
            x, padding = self._padded, 0
        self.backend.max_pool2d_forward(x, self._y, self._taps, self.size, self.stride, padding,
                                        False)
        # what the kernel pooled, kept for the backward's search only (see MaxPool2d)
        self._x_shape, self._x = x_shape, None if taps else x
        return self._y

    def backward(self, dy):
        shape = self._saved(self._x_shape)
        dx = self._dx_array(shape, dy.dtype)
        padding = self._padded_input(shape)
        window = {"kernel": self.size, "stride": self.stride,
                  "padding": 0 if padding is None else padding}
        if self._taps is None:
            window.update(x=self._saved(self._x), y=self._y)
        if padding is not None:
            return self.backend.max_pool2d_backward(dy, self._taps, dx, **window)
        self._dpadded = _reuse(self._dpadded, self._padded.shape, dy.dtype)
        self.backend.max_pool2d_backward(dy, self._taps, self._dpadded, **window)
        first = self.padding // 2
        dx[...] = self._dpadded[:, :, first:first + shape[2], first:first + shape[3]]
        return dx
