"""Layer objects: forward, backward (returning the true gradient dL/dx), parameters and their
gradients, train/eval mode. The same layer runs on the native kernels or on their NumPy twins
(`backend=native` or `backend=reference`), so whole-network comparisons are like for like.

Layers do no arithmetic of their own beyond glue: the kernels do the work. The arrays a layer
returns are buffers it owns and reuses on the next call with the same input shape (fresh
allocations cost page faults); copy them to keep them.
"""
import numpy as np

from . import native

FLAVOURS = ("exact", "darknet")


class BatchNorm:
    """BatchNorm over the channels of (batch, channels, ...) activations.

    flavour "exact" (default): the BN paper's transform with the biased batch variance and eps
    inside the root; backward is its true gradient; rolling statistics updated with `momentum`
    (0.01: rolling = 0.99 * rolling + 0.01 * batch statistic, the variance unbiased).
    flavour "darknet": Darknet's batchnorm layer, blas routine by blas routine (its own fixed
    epsilons and 0.99/0.01 rolling update; eps and momentum do not apply).
    Parameters: gamma (Darknet's scales) and beta (biases); gradients in `grads`, overwritten by
    each backward.
    """

    def __init__(self, channels, flavour="exact", eps=1e-5, momentum=0.01, dtype=np.float32,
                 backend=native):
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
        self.flavour, self.eps, self.momentum, self.backend = flavour, eps, momentum, backend
        self.params = {"gamma": np.ones(channels, dtype), "beta": np.zeros(channels, dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.rolling_mean = np.zeros(channels, dtype)
        self.rolling_variance = np.ones(channels, dtype)
        self.mean, self.spread = np.zeros(channels, dtype), np.zeros(channels, dtype)
        self.training = True
        self._x = self._y = self._x_norm = self._dx = None

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def _buffer(self, current, x):
        return current if current is not None and current.shape == x.shape and current.dtype == x.dtype else np.empty_like(x)

    def forward(self, x):
        """y for x of shape (batch, channels, ...); x is kept (not copied) for the backward."""
        gamma, beta = self.params["gamma"], self.params["beta"]
        self._x, self._y = x, self._buffer(self._y, x)
        self._trained = self.training
        if self.flavour == "exact":  # self.spread holds invstd = 1 / sqrt(var + eps)
            return self.backend.batchnorm_forward(
                x, gamma, beta, self.rolling_mean, self.rolling_variance, self._y, self.mean,
                self.spread, training=self.training, eps=self.eps, momentum=self.momentum)
        self._x_norm = self._buffer(self._x_norm, x)  # self.spread holds the variance
        return self.backend.batchnorm_forward_darknet(
            x, gamma, beta, self.rolling_mean, self.rolling_variance, self._y, self._x_norm,
            self.mean, self.spread, training=self.training)

    def backward(self, dy):
        """dL/dx from dL/dy; fills grads["gamma"] and grads["beta"]."""
        if self._x is None:
            raise RuntimeError("backward called before forward")
        self._dx = self._buffer(self._dx, dy)
        if self.flavour == "exact":
            return self.backend.batchnorm_backward(
                dy, self._x, self.mean, self.spread, self.params["gamma"], self._dx,
                self.grads["gamma"], self.grads["beta"], training=self._trained)
        if not self._trained:
            raise NotImplementedError("the darknet flavour differentiates training mode only")
        self.backend.copy_cpu(dy.size, dy, 1, self._dx, 1)
        for g in self.grads.values():
            g.fill(0)  # Darknet's updates accumulate; a layer's grads are per backward
        return self.backend.batchnorm_backward_darknet(
            self._dx, self._x, self._x_norm, self.mean, self.spread, self.params["gamma"],
            self.grads["gamma"], self.grads["beta"])
