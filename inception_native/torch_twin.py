"""The same network in PyTorch: any inception_native layer tree (a whole GoogLeNet, BN-Inception
or Inception v3 Network) written out as torch.nn modules with the same structure, the same
weights and the same names (BatchNorm's gamma/beta become weight/bias), for benchmarks.

    twin = torch_twin.build(models.googlenet(num_classes=10, input_size=96))
    outputs = twin(torch.from_numpy(x))       # a list: main logits, then the auxiliary heads'
"""
from collections import OrderedDict

import torch
from torch import nn

from inception_native import layers, models


class Concat(nn.Module):
    """Parallel branches on one input, concatenated along the channels."""

    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleDict(branches)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches.values()], 1)


class Network(nn.Module):
    """Stages in order; auxiliary heads on named stages' outputs, in training mode only."""

    def __init__(self, stages, heads):
        super().__init__()
        self.stages, self.heads = nn.ModuleDict(stages), nn.ModuleDict(heads)

    def forward(self, x):
        outputs = []
        for name, stage in self.stages.items():
            x = stage(x)
            if self.training and name in self.heads:
                outputs.append(self.heads[name](x))
        return [x] + outputs


def _parameter(array):
    return nn.Parameter(torch.from_numpy(array.copy()))


def _weighted(module, layer):
    """module with layer's weight and (when it has one) bias."""
    module.weight = _parameter(layer.params["weight"])
    if "bias" in layer.params:
        module.bias = _parameter(layer.params["bias"])
    return module


def build(layer):
    """The torch.nn twin of one of our layers (recursively)."""
    if isinstance(layer, models.Network):
        return Network([(n, build(s)) for n, s in layer.stages], [(n, build(h)) for n, h in layer.heads.items()])
    if isinstance(layer, layers.Sequential):
        return nn.Sequential(OrderedDict((n, build(c)) for n, c in layer.children))
    if isinstance(layer, layers.Concat):
        return Concat([(n, build(c)) for n, c in layer.children])
    if isinstance(layer, layers.Conv2d):
        w = layer.params["weight"]
        return _weighted(nn.Conv2d(w.shape[1], w.shape[0], w.shape[2:], layer.stride, layer.padding,
                                   bias="bias" in layer.params), layer)
    if isinstance(layer, layers.BatchNorm):
        bn = nn.BatchNorm2d(len(layer.params["gamma"]), eps=layer.eps, momentum=layer.momentum)
        bn.weight, bn.bias = _parameter(layer.params["gamma"]), _parameter(layer.params["beta"])
        return bn
    if isinstance(layer, layers.AvgPool2d):
        return nn.AvgPool2d(layer.kernel, layer.stride, layer.padding, layer.ceil_mode, layer.count_include_pad)
    if isinstance(layer, layers.MaxPool2d):
        return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
    if isinstance(layer, layers.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool2d(layer.output_size)
    if isinstance(layer, layers.GlobalAvgPool):
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if isinstance(layer, layers.Linear):
        w = layer.params["weight"]
        return _weighted(nn.Linear(w.shape[1], w.shape[0], bias="bias" in layer.params), layer)
    simple = {layers.ReLU: lambda: nn.ReLU(inplace=True), layers.Flatten: nn.Flatten,
              layers.Dropout: lambda: nn.Dropout(layer.p)}
    return simple[type(layer)]()
