"""Inception blocks, named after the papers' figures. Each block is a `layers.Concat` of its
branches: a forward that runs them on the same input and concatenates their outputs along the
channels, a backward that splits dL/dy by branch and sums the branches' dL/dx.

Papers: GoogLeNet, Szegedy et al. 2014, "Going deeper with convolutions" (1409.4842);
BN-Inception, Ioffe & Szegedy 2015 (1502.03167); Inception v3, Szegedy et al. 2015,
"Rethinking the Inception Architecture" (1512.00567), as released (TensorFlow's code, which
torchvision follows: the layout its weights load into).

Every convolution is a `Builder.conv` unit, a `layers.ConvUnit`: conv -> BatchNorm -> ReLU
(bn=True; the conv has no bias) or conv + bias -> ReLU (bn=False, GoogLeNet as published), the
ReLU fused into the layer before it in both directions.
"""
import numpy as np

from . import native
from .layers import (FLAVOURS, AvgPool2d, BatchNorm, Concat, Conv2d, ConvUnit, Dropout, Linear,
                     MaxPool2d, PoolProjection, ReLU, Sequential)


class Builder:
    """What the layers of one network share: BN or not (bn: False, True or a BatchNorm flavour,
    "exact" (True) or "darknet"), BN's eps and momentum (the darknet flavour has its own), dtype,
    backend, the random generator of the weights, and whether pools round up (ceil_mode,
    Caffe's GoogLeNet)."""

    def __init__(self, bn=True, eps=1e-5, dtype=np.float32, backend=native, seed=0,
                 ceil_mode=True, bn_momentum=0.01):
        if bn not in (False, True) + FLAVOURS:
            raise ValueError(f"bn must be False, True or one of {FLAVOURS}, got {bn!r}")
        self.bn = "exact" if bn is True else bn
        self.eps, self.dtype, self.backend, self.ceil_mode = eps, dtype, backend, ceil_mode
        self.bn_momentum = bn_momentum
        self.rng = np.random.default_rng(seed)

    def conv(self, cin, cout, kernel, stride=1, padding=0):
        conv = Conv2d(cin, cout, kernel, stride, padding, bias=not self.bn, dtype=self.dtype,
                      backend=self.backend, rng=self.rng)
        bn = BatchNorm(cout, self.bn, eps=self.eps, momentum=self.bn_momentum, dtype=self.dtype,
                       backend=self.backend) if self.bn else None
        return ConvUnit(conv, bn, self.relu())

    def relu(self):
        return ReLU(self.backend)

    def linear(self, cin, cout):
        return Linear(cin, cout, dtype=self.dtype, backend=self.backend, rng=self.rng)

    def dropout(self, p):
        """Dropout seeded from the builder's generator (each layer its own stream)."""
        return Dropout(p, seed=int(self.rng.integers(2**32)), backend=self.backend)

    def max_pool(self, kernel=3, stride=2, padding=0):
        return MaxPool2d(kernel, stride, padding, self.ceil_mode, self.backend)

    def avg_pool(self, kernel=3, stride=1, padding=1):
        return AvgPool2d(kernel, stride, padding, self.ceil_mode, backend=self.backend)

    def seq(self, *layers):
        return Sequential(*layers)

    def pool_proj(self, pooling, cin, cout):
        """A pooling, then a 1x1 convolution unit: a block's pool-projection branch."""
        return PoolProjection(pooling, self.conv(cin, cout, 1))

    def concat(self, *branches):
        return Concat(*branches, backend=self.backend)


# ---- GoogLeNet ------------------------------------------------------------------------------

def naive_inception(b, cin, c1, c3, c5):
    """GoogLeNet Figure 2(a), the naive module: 1x1, 3x3 and 5x5 convolutions and a 3x3 max
    pooling side by side; out: c1 + c3 + c5 + cin channels."""
    return b.concat(b.conv(cin, c1, 1), b.conv(cin, c3, 3, padding=1), b.conv(cin, c5, 5, padding=2),
                    b.max_pool(3, 1, 1))


def inception_v1(b, cin, c1, c3r, c3, c5r, c5, pool_proj, k5=5):
    """GoogLeNet Figure 2(b), with dimension reductions; the arguments are Table 1's columns
    (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); out: c1 + c3 + c5 + pool_proj.
    k5: the third branch's kernel (torchvision's GoogLeNet has 3, a slip its weights keep)."""
    return b.concat(b.conv(cin, c1, 1),
                    b.seq(b.conv(cin, c3r, 1), b.conv(c3r, c3, 3, padding=1)),
                    b.seq(b.conv(cin, c5r, 1), b.conv(c5r, c5, k5, padding=k5 // 2)),
                    b.pool_proj(b.max_pool(3, 1, 1), cin, pool_proj))


# ---- BN-Inception (Inception v2) ----------------------------------------------------------

def inception_bn(b, cin, c1, c3r, c3, d3r, d3, pool, pool_proj, stride=1):
    """BN-Inception's module (Ioffe & Szegedy 2015, Figure 5's columns): the 5x5 branch becomes
    two 3x3 (#double 3x3 reduce d3r, #double 3x3 d3), BN after every convolution, pooling "avg"
    or "max" then a 1x1 projection. stride 2 (3c, 4e): no 1x1 branch (c1 = 0), the last conv of
    each 3x3 branch and a 3x3 max pool take the stride, the pooled input passes through
    (pool_proj = 0); out: c1 + c3 + d3 + (pool_proj or cin)."""
    branches = [b.conv(cin, c1, 1)] if c1 else []
    branches += [b.seq(b.conv(cin, c3r, 1), b.conv(c3r, c3, 3, stride, 1)),
                 b.seq(b.conv(cin, d3r, 1), b.conv(d3r, d3, 3, padding=1), b.conv(d3, d3, 3, stride, 1))]
    pooling = b.max_pool(3, stride, 1 if stride == 1 else 0) if pool == "max" else b.avg_pool(3, stride, 1)
    branches.append(b.pool_proj(pooling, cin, pool_proj) if pool_proj else pooling)
    return b.concat(*branches)


# ---- Inception v3 ---------------------------------------------------------------------------

def inception_a(b, cin, pool_features):
    """Inception v3 Figure 5, the 35x35 module: 5x5 factorised into two 3x3 (as released, a
    1x1 -> 5x5 branch is kept beside the double 3x3); out: 64 + 64 + 96 + pool_features."""
    return b.concat(b.conv(cin, 64, 1),
                    b.seq(b.conv(cin, 48, 1), b.conv(48, 64, 5, padding=2)),
                    b.seq(b.conv(cin, 64, 1), b.conv(64, 96, 3, padding=1), b.conv(96, 96, 3, padding=1)),
                    b.pool_proj(b.avg_pool(), cin, pool_features))


def inception_c(b, cin, c7, n=7):
    """Inception v3 Figure 6, the 17x17 module: n x n factorised into 1 x n and n x 1 (n = 7);
    c7 is the width inside the factorised branches; out: 4 x 192."""
    p = n // 2
    return b.concat(b.conv(cin, 192, 1),
                    b.seq(b.conv(cin, c7, 1), b.conv(c7, c7, (1, n), padding=(0, p)),
                          b.conv(c7, 192, (n, 1), padding=(p, 0))),
                    b.seq(b.conv(cin, c7, 1), b.conv(c7, c7, (n, 1), padding=(p, 0)),
                          b.conv(c7, c7, (1, n), padding=(0, p)), b.conv(c7, c7, (n, 1), padding=(p, 0)),
                          b.conv(c7, 192, (1, n), padding=(0, p))),
                    b.pool_proj(b.avg_pool(), cin, 192))


def _split_1x3_3x1(b, cin, cout):
    """The expanded filter bank: 1x3 and 3x1 side by side on the same input (2 * cout)."""
    return b.concat(b.conv(cin, cout, (1, 3), padding=(0, 1)), b.conv(cin, cout, (3, 1), padding=(1, 0)))


def inception_e(b, cin):
    """Inception v3 Figure 7, the 8x8 module with expanded filter bank outputs: the last 3x3 of
    each branch split into parallel 1x3 and 3x1; out: 320 + 768 + 768 + 192 = 2048."""
    return b.concat(b.conv(cin, 320, 1),
                    b.seq(b.conv(cin, 384, 1), _split_1x3_3x1(b, 384, 384)),
                    b.seq(b.conv(cin, 448, 1), b.conv(448, 384, 3, padding=1), _split_1x3_3x1(b, 384, 384)),
                    b.pool_proj(b.avg_pool(), cin, 192))


def reduction_b(b, cin):
    """Inception v3 Figure 10, grid-size reduction 35x35 -> 17x17: stride-2 convolutions and a
    stride-2 max pool in parallel, concatenated; out: 384 + 96 + cin."""
    return b.concat(b.conv(cin, 384, 3, 2),
                    b.seq(b.conv(cin, 64, 1), b.conv(64, 96, 3, padding=1), b.conv(96, 96, 3, 2)),
                    b.max_pool(3, 2))


def reduction_d(b, cin):
    """Inception v3 Figure 10's reduction for 17x17 -> 8x8 (with a 1x7/7x1 branch, as
    released); out: 320 + 192 + cin."""
    return b.concat(b.seq(b.conv(cin, 192, 1), b.conv(192, 320, 3, 2)),
                    b.seq(b.conv(cin, 192, 1), b.conv(192, 192, (1, 7), padding=(0, 3)),
                          b.conv(192, 192, (7, 1), padding=(3, 0)), b.conv(192, 192, 3, 2)),
                    b.max_pool(3, 2))
