"""GoogLeNet, BN-Inception (Inception v2) and Inception v3, as `Network`s of named stages.

`forward(x)` returns a list of logits: the main classifier's first, then (in training mode,
with auxiliary heads) each head's, in the order of the stages they hang from. `backward(dys)`
takes one dL/dlogits per output and fills the gradients; it returns dL/dx only when the first
convolution's `input_grad` is set (the models clear it: nothing needs the images' gradient,
and it saves conv1's largest col2im), else None. `summary()` lists every stage's output shape
and parameter count, computed from the shapes alone (nothing runs).
"""
import numpy as np

from . import native
from .inception import Builder, inception_a, inception_bn, inception_c, inception_e, inception_v1
from .inception import reduction_b, reduction_d
from .layers import (AdaptiveAvgPool2d, ChannelAffine, Container, Conv2d, Flatten, GlobalAvgPool,
                     Sequential, _add_into, _gradient_pool, _pooled)


class Network(Container):
    """Stages applied in order; `heads` maps a stage's name to an auxiliary classifier fed
    with that stage's output (in training mode only). input_shape is (channels, height, width)."""

    def __init__(self, stages, heads, input_shape, backend=native):
        self.stages, self.heads = list(stages), dict(heads)
        self.children = self.stages + [(f"aux_{name}", head) for name, head in self.heads.items()]
        self.input_shape, self.backend = tuple(input_shape), backend
        self._with_heads = None

    def __getitem__(self, name):
        return dict(self.stages)[name]

    def stage_shapes(self, batch=1):
        """{stage name: output shape} for an input of `batch` images of input_shape."""
        shape, shapes = (batch, *self.input_shape), {}
        for name, stage in self.stages:
            shape = shapes[name] = stage.output_shape(shape)
        return shapes

    def layers(self, batch=1):
        """(path, layer, input shape) of every layer, containers included, in forward order
        (the heads' after the stages), for an input of `batch` images of input_shape (computed
        from shapes alone)."""
        found, shapes, shape = [], {}, (batch, *self.input_shape)
        for name, stage in self.stages:
            _walk(name, stage, shape, found)
            shape = shapes[name] = stage.output_shape(shape)
        for name, head in self.heads.items():
            _walk(f"aux_{name}", head, shapes[name], found)
        return found

    def leaves(self, batch=1):
        """layers(batch) without the containers."""
        return [(path, layer, shape) for path, layer, shape in self.layers(batch)
                if not layer.children]

    def num_params(self):
        return sum(p.size for p in self.params.values())

    def summary(self):
        """A table: each stage (and head) with its output shape and parameter count."""
        shapes = self.stage_shapes()
        rows = [(name, shapes[name][1:], sum(p.size for p in stage.params.values()))
                for name, stage in self.stages]
        rows += [(f"aux_{name}", head.output_shape(shapes[name])[1:],
                  sum(p.size for p in head.params.values())) for name, head in self.heads.items()]
        lines = [f"{'stage':<20}{'output (C, H, W)':<18}{'params':>12}"]
        lines += [f"{n:<20}{'x'.join(map(str, s)):<18}{p:>12,}" for n, s, p in rows]
        lines.append(f"{'total':<38}{self.num_params():>12,}")
        return "\n".join(lines)

    def _check_images(self, x):
        if not isinstance(x, np.ndarray) or x.shape[1:] != self.input_shape:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, self.input_shape))}), "
                             f"got {getattr(x, 'shape', type(x).__name__)}")

    def forward(self, x):
        self._check_images(x)
        self._with_heads, aux = self.training and bool(self.heads), []
        for name, stage in self.stages:
            x = stage.forward(x)
            if self._with_heads and name in self.heads:
                aux.append(self.heads[name].forward(x))
        return [x] + aux

    @_pooled
    def backward(self, dys):
        """dys: dL/dlogits of each output of the last forward, in its order; returns dL/dx.
        The gradients between stages are lent by the thread's gradient pool (see layers)."""
        self._saved(self._with_heads)
        outputs = 1 + (len(self.heads) if self._with_heads else 0)
        if len(dys) != outputs:
            raise ValueError(f"dys must hold {outputs} gradients (one per output), got {len(dys)}")
        dy, head_grads, pool = dys[0], list(dys[1:]), _gradient_pool()
        for name, stage in reversed(self.stages):
            if self._with_heads and name in self.heads:  # the stage's output feeds the head too
                dhead = self.heads[name].backward(head_grads.pop())
                total = _add_into(self.backend, self._dx_array(dy.shape, dy.dtype), [dy, dhead])
                pool.give(dy, dys[0])
                pool.give(dhead)
                dy = total
            dy = pool.handed_over(stage.backward, dy, dys[0])
        return dy


def _walk(path, layer, shape, found):
    """Append (path, layer, input shape) for layer and everything inside it: a Concat's
    branches all read its input, a Sequential's children each read the one before's output."""
    found.append((path, layer, shape))
    for name, child in layer.children:
        _walk(f"{path}.{name}", child, shape, found)
        if isinstance(layer, Sequential):
            shape = child.output_shape(shape)


def _classifier(b, channels, num_classes, dropout):
    """Global average pooling, dropout (when p > 0), one linear layer; and that layer."""
    fc = b.linear(channels, num_classes)
    return b.seq(GlobalAvgPool(b.backend), *([b.dropout(dropout)] if dropout else []), fc), fc


def _network(b, stages, heads, in_channels, input_size, layout=None, torchvision=()):
    """The Network, its shapes checked; its first convolution skips dL/dx (nothing needs the
    input's). layout names the parameter layout a network shares with another library's;
    torchvision: (our layer, torchvision's module name) pairs, which io.load_torchvision turns
    into Network.torchvision_names, {our path: their name}."""
    net = Network(stages, heads, (in_channels, input_size, input_size), b.backend)
    net.summary()  # raises ValueError where a stage does not fit input_size
    net.layout = layout
    paths = {id(layer): path for path, layer, _ in net.layers()}
    net.torchvision_names = {paths[id(layer)]: theirs for layer, theirs in torchvision} or None
    _first_conv(net).input_grad = False
    return net


def _first_conv(layer):
    """The first Conv2d a forward runs (depth first), or None."""
    if isinstance(layer, Conv2d):
        return layer
    return next(filter(None, (_first_conv(child) for _, child in layer.children)), None)


# torchvision's transform_input: its GoogLeNet and Inception v3 weights were trained (by Google)
# on inputs scaled to [-1, 1]; they take images normalised with ImageNet's mean and std and map
# them back, per channel: x * std / 0.5 + (mean - 0.5) / 0.5.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _transform_input(b):
    return ("transform_input", ChannelAffine([s / 0.5 for s in IMAGENET_STD],
                                             [(m - 0.5) / 0.5 for m in IMAGENET_MEAN],
                                             b.dtype, b.backend))


def _output(stages, shape):
    """The output shape of the stages built so far, for an input of `shape`."""
    for _, stage in stages:
        shape = stage.output_shape(shape)
    return shape


# ---- GoogLeNet ------------------------------------------------------------------------------

# Table 1 of "Going deeper with convolutions": #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5,
# pool proj; the input channels follow from the previous row.
GOOGLENET_TABLE = {
    "inception_3a": (64, 96, 128, 16, 32, 32), "inception_3b": (128, 128, 192, 32, 96, 64),
    "inception_4a": (192, 96, 208, 16, 48, 64), "inception_4b": (160, 112, 224, 24, 64, 64),
    "inception_4c": (128, 128, 256, 24, 64, 64), "inception_4d": (112, 144, 288, 32, 64, 64),
    "inception_4e": (256, 160, 320, 32, 128, 128), "inception_5a": (256, 160, 320, 32, 128, 128),
    "inception_5b": (384, 192, 384, 48, 128, 128),
}


def _googlenet_aux(b, shape, num_classes, layout):
    """GoogLeNet's auxiliary classifier (section 5): 5x5/3 average pooling (torchvision's
    layout: adaptive average pooling to 4x4, whatever the input size), 1x1 conv with 128 filters
    and ReLU, a 1024-unit fully connected layer with ReLU, dropout 0.7, linear."""
    pool = b.avg_pool(5, 3, 0) if layout == "paper" else AdaptiveAvgPool2d(4, b.backend)
    conv = b.conv(shape[1], 128, 1)
    features = Flatten().output_shape(conv.output_shape(pool.output_shape(shape)))[1]
    fc1, fc2 = b.linear(features, 1024), b.linear(1024, num_classes)
    head = b.seq(pool, conv, Flatten(), fc1, b.relu(), b.dropout(0.7), fc2)
    return head, {conv: "conv", fc1: "fc1", fc2: "fc2"}


def googlenet(num_classes=1000, bn=None, aux=True, input_size=224, in_channels=3, dropout=None,
              layout="paper", transform_input=False, dtype=np.float32, backend=native, seed=0):
    """GoogLeNet as Table 1 of the paper: the 5x5 branches, 3x3/2 max pools rounding up (Caffe's),
    two auxiliary heads after 4a and 4d (aux=True), global average pooling, dropout 0.4, one
    linear layer. input_size >= 79 with the heads, >= 47 without. bn=True (or "darknet", the
    other BatchNorm flavour) puts BatchNorm (eps 1e-3, as torchvision's) between every
    convolution and its ReLU. The paper's local response normalisation layers are left out (as
    torchvision does). Weights He-normal from `seed`.

    layout="torchvision": torchvision's GoogLeNet, the layout its weights load into
    (io.load_torchvision): BatchNorm always (bn defaults to True), 3x3 convolutions where the
    paper has 5x5 (its third branch), a 2x2/2 max pool before 5a, the heads' adaptive average
    pooling to 4x4, dropout 0.2. transform_input=True maps ImageNet-normalised images back to
    [-1, 1] first, as torchvision does with its weights."""
    if layout not in ("paper", "torchvision"):
        raise ValueError(f"layout must be 'paper' or 'torchvision', got {layout!r}")
    torchvision = layout == "torchvision"
    bn = torchvision if bn is None else bn
    if torchvision and not bn:
        raise ValueError("layout='torchvision' has BatchNorm after every convolution: bn must not be False")
    dropout = (0.2 if torchvision else 0.4) if dropout is None else dropout
    b = Builder(bn=bn, eps=1e-3, dtype=dtype, backend=backend, seed=seed, ceil_mode=True)
    conv1, conv2, conv3 = b.conv(in_channels, 64, 7, 2, 3), b.conv(64, 64, 1), b.conv(64, 192, 3, padding=1)
    stages = [_transform_input(b)] if transform_input else []
    stages += [("conv1", conv1), ("pool1", b.max_pool()), ("conv2", b.seq(conv2, conv3)),
               ("pool2", b.max_pool())]
    names = [(conv1, "conv1"), (conv2, "conv2"), (conv3, "conv3")]  # torchvision's, per layer
    heads, cin = {}, 192
    for name, (c1, c3r, c3, c5r, c5, proj) in GOOGLENET_TABLE.items():
        block = inception_v1(b, cin, c1, c3r, c3, c5r, c5, proj, 3 if torchvision else 5)
        stages.append((name, block))
        names += [(branch, f"{name.replace('_', '')}.branch{i + 1}")  # their branch1..4
                  for i, (_, branch) in enumerate(block.children)]
        cin = c1 + c3 + c5 + proj
        if aux and name in ("inception_4a", "inception_4d"):
            shape = _output(stages, (1, in_channels, input_size, input_size))
            heads[name], head_names = _googlenet_aux(b, shape, num_classes, layout)
            theirs = "aux1" if name == "inception_4a" else "aux2"
            names += [(layer, f"{theirs}.{n}") for layer, n in head_names.items()]
        if name in ("inception_3b", "inception_4e"):
            kernel = 2 if torchvision and name == "inception_4e" else 3  # torchvision's pool4: 2x2/2
            stages.append((f"pool{name[-2]}", b.max_pool(kernel)))
    classifier, fc = _classifier(b, cin, num_classes, dropout)
    stages.append(("classifier", classifier))
    exact = torchvision and b.bn == "exact"
    return _network(b, stages, heads, in_channels, input_size,
                    "torchvision googlenet" if exact else None,
                    names + [(fc, "fc")] if exact else ())


# ---- BN-Inception ---------------------------------------------------------------------------

# Figure 5 of Ioffe & Szegedy 2015: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3,
# pool, pool proj (0: pass through), stride.
INCEPTION_V2_TABLE = {
    "inception_3a": (64, 64, 64, 64, 96, "avg", 32, 1),
    "inception_3b": (64, 64, 96, 64, 96, "avg", 64, 1),
    "inception_3c": (0, 128, 160, 64, 96, "max", 0, 2),
    "inception_4a": (224, 64, 96, 96, 128, "avg", 128, 1),
    "inception_4b": (192, 96, 128, 96, 128, "avg", 128, 1),
    "inception_4c": (160, 128, 160, 128, 160, "avg", 128, 1),
    "inception_4d": (96, 128, 192, 160, 192, "avg", 128, 1),
    "inception_4e": (0, 128, 192, 192, 256, "max", 0, 2),
    "inception_5a": (352, 192, 320, 160, 224, "avg", 128, 1),
    "inception_5b": (352, 192, 320, 192, 224, "max", 128, 1),
}


def inception_v2(num_classes=1000, input_size=224, in_channels=3, bn="exact", dtype=np.float32,
                 backend=native, seed=0):
    """BN-Inception (Ioffe & Szegedy 2015, Figure 5): BN after every convolution, 5x5 replaced
    by two 3x3, stride-2 modules 3c and 4e in place of max pools between the stages, global
    average pooling and one linear layer (no dropout, no auxiliary heads: the paper removes
    dropout and keeps no aux heads in its table). The first convolution is a plain 7x7/2 (the
    paper's is depthwise separable). bn: the BatchNorm flavour. input_size >= 63."""
    b = Builder(bn=bn, eps=1e-5, dtype=dtype, backend=backend, seed=seed, ceil_mode=True)
    stages = [("conv1", b.conv(in_channels, 64, 7, 2, 3)), ("pool1", b.max_pool()),
              ("conv2", b.seq(b.conv(64, 64, 1), b.conv(64, 192, 3, padding=1))),
              ("pool2", b.max_pool())]
    cin = 192
    for name, (c1, c3r, c3, d3r, d3, pool, proj, stride) in INCEPTION_V2_TABLE.items():
        stages.append((name, inception_bn(b, cin, c1, c3r, c3, d3r, d3, pool, proj, stride)))
        cin = c1 + c3 + d3 + (proj or cin)
    stages.append(("classifier", _classifier(b, cin, num_classes, 0)[0]))
    return _network(b, stages, {}, in_channels, input_size)


# ---- Inception v3 ---------------------------------------------------------------------------

def _numbered(ours, theirs, count):
    """{ours.i: theirs_(i+1)} for i < count: a branch's convolutions, torchvision's names."""
    return {f"{ours}.{i}": f"{theirs}_{i + 1}" for i in range(count)}


# Inception v3 as released, after the stem: stage -> module kind and its arguments after the
# input channels. A: Figure 5 (pool projection width), B: the 35 -> 17 grid reduction,
# C: Figure 6 (the 7x7 branches' width), D: the 17 -> 8 grid reduction, E: Figure 7.
INCEPTION_V3_TABLE = {
    "mixed_5b": ("A", 32), "mixed_5c": ("A", 64), "mixed_5d": ("A", 64), "mixed_6a": ("B",),
    "mixed_6b": ("C", 128), "mixed_6c": ("C", 160), "mixed_6d": ("C", 160), "mixed_6e": ("C", 192),
    "mixed_7a": ("D",), "mixed_7b": ("E",), "mixed_7c": ("E",),
}
V3_MODULES = {"A": inception_a, "B": reduction_b, "C": inception_c, "D": reduction_d, "E": inception_e}
# torchvision's names of each kind's layers, by their path inside our module (inception.py)
V3_TORCHVISION = {
    "A": {"branch0": "branch1x1", **_numbered("branch1", "branch5x5", 2),
          **_numbered("branch2", "branch3x3dbl", 3), "branch3.1": "branch_pool"},
    "B": {"branch0": "branch3x3", **_numbered("branch1", "branch3x3dbl", 3)},
    "C": {"branch0": "branch1x1", **_numbered("branch1", "branch7x7", 3),
          **_numbered("branch2", "branch7x7dbl", 5), "branch3.1": "branch_pool"},
    "D": {**_numbered("branch0", "branch3x3", 2), **_numbered("branch1", "branch7x7x3", 4)},
    "E": {"branch0": "branch1x1", "branch1.0": "branch3x3_1", "branch1.1.branch0": "branch3x3_2a",
          "branch1.1.branch1": "branch3x3_2b", **_numbered("branch2", "branch3x3dbl", 2),
          "branch2.2.branch0": "branch3x3dbl_3a", "branch2.2.branch1": "branch3x3dbl_3b",
          "branch3.1": "branch_pool"},
}


def _inside(layer, path):
    """The layer at `path` (child names joined by dots) inside layer."""
    for name in path.split("."):
        layer = dict(layer.children)[name]
    return layer


def _v3_aux(b, channels, num_classes):
    """Inception v3's auxiliary classifier on the 17x17 grid: 5x5/3 average pooling, 1x1 conv
    128, 5x5 conv 768 (BN and ReLU after each), global average pooling, linear."""
    conv0, conv1, fc = b.conv(channels, 128, 1), b.conv(128, 768, 5), b.linear(768, num_classes)
    head = b.seq(b.avg_pool(5, 3, 0), conv0, conv1, GlobalAvgPool(b.backend), fc)
    return head, {conv0: "AuxLogits.conv0", conv1: "AuxLogits.conv1", fc: "AuxLogits.fc"}


def inception_v3(num_classes=1000, aux=True, input_size=299, in_channels=3, dropout=0.5,
                 bn="exact", transform_input=False, dtype=np.float32, backend=native, seed=0):
    """Inception v3 as released (torchvision's layout): the stem to 35x35x192, three Figure 5
    modules (35x35x288), a grid reduction to 17x17x768, four Figure 6 modules (n = 7), the
    auxiliary head after the last of them, a reduction to 8x8x1280, two Figure 7 modules
    (8x8x2048), global average pooling, dropout, linear. BN (eps 1e-3) after every convolution;
    pools round down; bn: the BatchNorm flavour. input_size >= 299 with the auxiliary head (its
    5x5 conv needs the 17x17 grid), >= 75 without. transform_input: as googlenet's; with the
    exact flavour, torchvision's Inception v3 weights load into it (io.load_torchvision)."""
    b = Builder(bn=bn, eps=1e-3, dtype=dtype, backend=backend, seed=seed, ceil_mode=False)
    stem = [b.conv(in_channels, 32, 3, 2), b.conv(32, 32, 3), b.conv(32, 64, 3, padding=1),
            b.conv(64, 80, 1), b.conv(80, 192, 3)]
    names = list(zip(stem, ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1",
                            "Conv2d_4a_3x3")))
    stages = [_transform_input(b)] if transform_input else []
    stages += [("conv1", b.seq(*stem[:3])), ("pool1", b.max_pool()), ("conv2", b.seq(*stem[3:])),
               ("pool2", b.max_pool())]
    heads, cin = {}, 192
    for name, (kind, *args) in INCEPTION_V3_TABLE.items():
        block = V3_MODULES[kind](b, cin, *args)
        stages.append((name, block))
        theirs = "Mixed_" + name[len("mixed_"):]
        names += [(_inside(block, ours), f"{theirs}.{n}") for ours, n in V3_TORCHVISION[kind].items()]
        cin = _output([(name, block)], (1, cin, 35, 35))[1]  # 35x35: any grid the block fits
        if aux and name == "mixed_6e":
            heads[name], head_names = _v3_aux(b, cin, num_classes)
            names += list(head_names.items())
    classifier, fc = _classifier(b, cin, num_classes, dropout)
    stages.append(("classifier", classifier))
    exact = b.bn == "exact"
    return _network(b, stages, heads, in_channels, input_size,
                    "torchvision inception_v3" if exact else None, names + [(fc, "fc")] if exact else ())


# ---- a small GoogLeNet for small images -----------------------------------------------------

TINY_TABLE = {"inception_3a": (16, 16, 24, 4, 8, 8), "inception_3b": (24, 24, 32, 8, 12, 12),
              "inception_4a": (32, 32, 48, 8, 16, 16)}


def tiny_inception(num_classes=10, in_channels=1, input_size=32, bn=True, dropout=0.2,
                   dtype=np.float32, backend=native, seed=0):
    """GoogLeNet in miniature for small images (32x32 digits): a 3x3 stem with 32 filters,
    3x3/2 max pool, two Figure 2(b) modules, 3x3/2 max pool, one more module, global average
    pooling, dropout, linear; BN after every convolution by default, its rolling statistics
    updated with momentum 0.1 (a short training run: 0.01 would lag behind the weights)."""
    b = Builder(bn=bn, eps=1e-5, dtype=dtype, backend=backend, seed=seed, ceil_mode=True,
                bn_momentum=0.1)
    stages, cin = [("conv1", b.conv(in_channels, 32, 3, padding=1)), ("pool1", b.max_pool())], 32
    for name, row in TINY_TABLE.items():
        if name == "inception_4a":
            stages.append(("pool3", b.max_pool()))
        stages.append((name, inception_v1(b, cin, *row)))
        cin = row[0] + row[2] + row[4] + row[5]
    stages.append(("classifier", _classifier(b, cin, num_classes, dropout)[0]))
    return _network(b, stages, {}, in_channels, input_size)
