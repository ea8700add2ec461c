"""Darknet's .cfg and .weights: classification networks read into a models.Graph of our
layers, and networks written back (see docs/darknet.md).

    net = load_darknet("extraction.cfg", "extraction.weights")   # a Graph (a models.Network)
    save_darknet(net, "out.cfg", "out.weights")

Sections and keys (Darknet's defaults where a key is absent; a key not listed is an error
naming its section, layer index and line, raised before any weights are read):

    [net]            width, height, channels; every other key read and ignored (training settings)
    [convolutional]  filters, size, stride, pad (padding = size // 2), padding, batch_normalize,
                     activation (linear, relu, leaky, logistic); groups and dilation only as 1
    [maxpool]        size, stride, padding (default size - 1): layers.DarknetMaxPool
    [avgpool]        global average pooling
    [route]          layers (negative: relative to the route; else absolute)
    [connected]      output, activation, batch_normalize
    [dropout]        probability
    [softmax]        groups only as 1: the output is then probabilities, as Darknet's
    [cost]           last only; its keys are read and ignored (training uses cross-entropy)

A [convolutional] or [connected] layer with batch_normalize=1 is conv (or linear) without bias,
BatchNorm(flavour="darknet") whose beta is Darknet's biases, then the activation.

.weights: three int32 (major, minor, revision), then `seen` (images trained on) as 8 bytes when
major * 10 + minor >= 2 and both are below 1000, else 4; then float32 per layer in Darknet's
order (convolutional: biases, [scales, rolling mean, rolling variance], weights; connected:
biases, weights, [the BatchNorm three]); connected weights are stored transposed when major or
minor exceeds 1000. We write version 0.2.0.
"""
import math
import os

import numpy as np

from .. import native
from ..graph import Graph
from ..layers import (BatchNorm, Concat, Conv2d, DarknetMaxPool, Dropout, Flatten, GlobalAvgPool,
                      LeakyReLU, Linear, Logistic, MaxPool2d, ReLU, Route, Sequential, Softmax,
                      Unflatten)
from ..models import Network, _first_conv

ALIASES = {"conv": "convolutional", "conn": "connected", "max": "maxpool", "avg": "avgpool",
           "soft": "softmax", "network": "net"}
ACTIVATIONS = {"linear": None, "relu": ReLU, "leaky": LeakyReLU, "logistic": Logistic}
ACTIVATION_NAMES = {ReLU: "relu", LeakyReLU: "leaky", Logistic: "logistic"}
# section -> (keys read, keys accepted only at this value, keys read and ignored)
KEYS = {
    "convolutional": ({"filters", "size", "stride", "pad", "padding", "batch_normalize",
                       "activation"}, {"groups": 1, "dilation": 1}, set()),
    "maxpool": ({"size", "stride", "padding"}, {}, set()),
    "avgpool": (set(), {}, set()),
    "route": ({"layers"}, {}, set()),
    "connected": ({"output", "activation", "batch_normalize"}, {}, set()),
    "dropout": ({"probability"}, {}, set()),
    "softmax": (set(), {"groups": 1}, set()),
    "cost": (set(), {}, {"type", "scale", "ratio", "noobject_scale", "thresh"}),
}
SHORT = {"convolutional": "conv", "maxpool": "maxpool", "avgpool": "avgpool", "route": "route",
         "connected": "connected", "dropout": "dropout", "softmax": "softmax"}
VERSION = (0, 2, 0)


class CfgError(ValueError):
    """A cfg that cannot be built, with the file, line, layer index and section named."""


class Section:
    """One [section] of a cfg: its kind, key=value options, where it starts, its layer index
    (Darknet's: the [net] section is none)."""

    def __init__(self, kind, line, index, source):
        self.kind, self.line, self.index, self.source = kind, line, index, source
        self.options = {}

    def error(self, text):
        where = "[net]" if self.index is None else f"layer {self.index} [{self.kind}]"
        return CfgError(f"{self.source}:{self.line}: {where}: {text}")

    def number(self, key, default, kind=int, minimum=None):
        """options[key] as `kind` (default when absent), >= minimum."""
        text = self.options.get(key)
        if text is None:
            return default
        try:
            value = kind(text)
        except ValueError:
            raise self.error(f"{key}={text} is not {'an integer' if kind is int else 'a number'}") from None
        if minimum is not None and value < minimum:
            raise self.error(f"{key}={text} must be >= {minimum}")
        return value

    def check_keys(self):
        used, neutral, ignored = KEYS[self.kind]
        for key, text in self.options.items():
            if key in neutral and self.number(key, None) != neutral[key]:
                raise self.error(f"{key}={text} is not supported (only {key}={neutral[key]})")
            if key not in used | set(neutral) | ignored:
                raise self.error(f"unknown key {key!r}")


def parse_cfg(text, source="cfg"):
    """The sections of a cfg's text, in order; ValueError naming the line for a malformed one.
    Whitespace is dropped everywhere (as Darknet does); # and ; start comment lines."""
    sections, layers = [], 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = "".join(raw.split())
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            kind = ALIASES.get(line[1:-1].lower(), line[1:-1].lower())
            index = None if kind == "net" else layers
            layers += kind != "net"
            sections.append(Section(kind, number, index, source))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            if key in sections[-1].options:
                raise sections[-1].error(f"{key} is given twice (line {number})")
            sections[-1].options[key] = value
        else:
            raise ValueError(f"{source}:{number}: expected [section] or key=value, got {raw.strip()!r}")
    if not sections or sections[0].kind != "net":
        raise ValueError(f"{source}: a Darknet cfg starts with a [net] section")
    for section in sections[1:]:
        if section.kind == "net":
            raise section.error("a second [net] section")
        if section.kind not in KEYS:
            raise section.error(f"section [{section.kind}] is not supported (supported: "
                                f"{', '.join(sorted(KEYS))})")
        section.check_keys()
    return sections


# ---- cfg -> Graph -----------------------------------------------------------------------------

def _activation(section, backend):
    name = section.options.get("activation", "logistic")
    if name not in ACTIVATIONS:
        raise section.error(f"activation={name} is not supported (supported: {', '.join(ACTIVATIONS)})")
    kind = ACTIVATIONS[name]
    return [] if kind is None else [(name, kind(backend=backend))]


def _unit(section, layer, features, image_input, dtype, backend):
    """layer (conv or linear) -> [BatchNorm] -> [activation], as one Sequential."""
    parts = [] if section.kind == "convolutional" or not image_input else [("flatten", Flatten())]
    if section.kind == "convolutional" and not image_input:
        parts.append(("unflatten", Unflatten()))
    parts.append((SHORT[section.kind], layer))
    if section.number("batch_normalize", 0):
        parts.append(("bn", BatchNorm(features, "darknet", dtype=dtype, backend=backend)))
    parts += _activation(section, backend)
    names, layers = zip(*parts)
    return Sequential(*layers, names=names)


def _route_sources(section, shapes, names):
    text = section.options.get("layers")
    if not text:
        raise section.error("layers= is missing")
    sources = []
    for item in text.split(","):
        try:
            index = int(item)
        except ValueError:
            raise section.error(f"layers={text}: {item!r} is not an integer") from None
        absolute = section.index + index if index < 0 else index
        if not 0 <= absolute < section.index:
            raise section.error(f"layers={text}: layer {absolute} does not exist before this one")
        sources.append(absolute)
    if len({shapes[i][:1] + shapes[i][2:] for i in sources}) != 1:
        maps = ", ".join(f"layer {i} gives {'x'.join(map(str, shapes[i][1:]))}" for i in sources)
        raise section.error(f"layers={text} joins maps of different sizes: {maps}")
    return [names[i] for i in sources]


def _stage(section, shape, rng, dtype, backend):
    """Our layer for one section and the shape (batch 1) it reads."""
    image_input = len(shape) == 4
    kind, number = section.kind, section.number
    if kind in ("maxpool", "avgpool") and not image_input:
        raise section.error(f"needs an image, but the layer before gives a vector of {shape[1]}")
    if kind == "convolutional":
        filters, size = number("filters", 1, minimum=1), number("size", 1, minimum=1)
        padding = size // 2 if number("pad", 0) else number("padding", 0, minimum=0)
        conv = Conv2d(shape[1], filters, size, number("stride", 1, minimum=1), padding,
                      bias=not number("batch_normalize", 0), dtype=dtype, backend=backend, rng=rng)
        return _unit(section, conv, filters, image_input, dtype, backend)
    if kind == "connected":
        output = number("output", 1, minimum=1)
        linear = Linear(math.prod(shape[1:]), output, bias=not number("batch_normalize", 0),
                        dtype=dtype, backend=backend, rng=rng)
        return _unit(section, linear, output, image_input, dtype, backend)
    if kind == "maxpool":
        stride = number("stride", 1, minimum=1)
        size = number("size", stride, minimum=1)
        return DarknetMaxPool(size, stride, number("padding", size - 1, minimum=0), backend)
    if kind == "avgpool":
        return GlobalAvgPool(backend)
    if kind == "dropout":
        p = number("probability", 0.5, float)
        if not 0 <= p < 1:
            raise section.error(f"probability={p} must be in [0, 1)")
        return Dropout(p, seed=int(rng.integers(2**32)), backend=backend)
    return Softmax(backend)


def build(sections, dtype=np.float32, backend=native, seed=0):
    """The Graph of parsed sections (parse_cfg), weights initialised as our models' are."""
    net_section, layers = sections[0], sections[1:]
    size = [net_section.number(key, 0) for key in ("channels", "height", "width")]
    if min(size) < 1:
        raise net_section.error("channels, height and width must be given, >= 1")
    rng = np.random.default_rng(seed)
    stages, sources, shapes, names = [], {}, [], []
    shape = (1, *size)
    for section in layers:
        if section.kind == "cost":
            if section is not layers[-1]:
                raise section.error("[cost] must be the last section")
            break
        name = f"{SHORT[section.kind]}{section.index}"
        try:
            if section.kind == "route":
                sources[name] = _route_sources(section, shapes, names)
                stage = Route(backend)
                inputs = [shapes[names.index(s)] for s in sources[name]]
            else:
                stage, inputs = _stage(section, shape, rng, dtype, backend), shape
            shape = stage.output_shape(inputs)
        except CfgError:
            raise
        except ValueError as error:  # a layer's own check: the sizes do not fit
            raise section.error(str(error)) from None
        stages.append((name, stage))
        shapes.append(shape)
        names.append(name)
    if not stages:
        raise ValueError(f"{net_section.source}: the cfg has no layers")
    net = Graph(stages, sources, size, backend)
    if _first_conv(net) is not None:
        _first_conv(net).input_grad = False  # nothing needs the images' gradient
    net.seen = 0
    return net


def read(cfg, dtype=np.float32, backend=native, seed=0, text=None):
    """The Graph of a cfg file (or of `text`, named cfg in messages), no weights read."""
    if text is None:
        with open(cfg, encoding="utf-8") as f:
            text = f.read()
    return build(parse_cfg(text, os.fspath(cfg)), dtype, backend, seed)


def load_darknet(cfg, weights=None, dtype=np.float32, backend=native, seed=0):
    """A Graph (a models.Network) built from a Darknet .cfg file and, when given, its .weights;
    without weights, initialised as our models are (He-normal from seed). net.seen holds the
    weights header's image count."""
    net = read(cfg, dtype, backend, seed)
    if weights is not None:
        read_weights(net, weights)
    return net


def logits(net):
    """net without a last Softmax stage (the same layers, the same parameter names): the
    network a cross-entropy loss trains; net itself when it ends otherwise."""
    if not isinstance(net.stages[-1][1], Softmax):
        return net
    stages = net.stages[:-1]
    kept = {name for name, _ in stages}
    trimmed = Graph(stages, {k: v for k, v in net.sources.items() if k in kept}, net.input_shape,
                    net.backend)
    trimmed.seen = net.seen
    return trimmed


# ---- Network -> sections (for save_darknet, and the order read_weights reads in) -----------

class NotExpressible(ValueError):
    """A layer of the network has no Darknet form."""


class Emitted:
    """One Darknet section being written: kind, options (key -> value), and its weights in
    file order, (what, array or a count of zeros) pairs; path: our layer's path."""

    def __init__(self, index, kind, options, arrays, path):
        self.index, self.kind, self.options, self.arrays, self.path = index, kind, options, arrays, path


class _Writer:
    def __init__(self):
        self.sections = []

    def add(self, kind, path, options=None, arrays=()):
        self.sections.append(Emitted(len(self.sections), kind, options or {}, list(arrays), path))
        return len(self.sections) - 1

    def read_from(self, src, path):
        """Make the next section read layer src (None: the network's input)."""
        last = len(self.sections) - 1
        if src == last or (src is None and last < 0):
            return
        if src is None:
            raise NotExpressible(f"{path} reads the network's input after other layers: Darknet's "
                                 "[route] cannot reach the input")
        self.add("route", path, {"layers": str(src - len(self.sections))})

    def route(self, sources, path):
        here = len(self.sections)
        if None in sources:
            raise NotExpressible(f"{path} reads the network's input: Darknet's [route] cannot reach it")
        return self.add("route", path, {"layers": ",".join(str(s - here) for s in sources)})


def _square(path, name, value):
    a, b = (value, value) if np.isscalar(value) else value
    if a != b:
        raise NotExpressible(f"{path}: Darknet's layers are square, {name} is {value}")
    return int(a)


def _bn_and_activation(children, i, path):
    """The BatchNorm and activation after children[i] (conv or linear) of a Sequential at path,
    and how many children the unit takes."""
    following = [(_join(path, name), child) for name, child in children[i + 1:i + 3]]
    bn = act = None
    if following and isinstance(following[0][1], BatchNorm):
        (where, bn), following = following[0], following[1:]
        if bn.flavour != "darknet":
            raise NotExpressible(f"{where}: BatchNorm flavour {bn.flavour!r}; Darknet's is the "
                                 "'darknet' flavour")
    if following and type(following[0][1]) in ACTIVATION_NAMES:
        where, act = following[0]
        if isinstance(act, LeakyReLU) and act.options != (0.1,):
            raise NotExpressible(f"{where}: Darknet's leaky slope is 0.1, not {act.options[0]}")
    return bn, act, 1 + (bn is not None) + (act is not None)


def _unit_arrays(layer, bn, count):
    """Darknet's biases and BatchNorm arrays of a conv or connected layer with bn."""
    if bn is not None and "bias" in layer.params:
        return None
    biases = bn.params["beta"] if bn is not None else layer.params.get("bias", count)
    norm = [] if bn is None else [("scales", bn.params["gamma"]), ("rolling mean", bn.rolling_mean),
                                  ("rolling variance", bn.rolling_variance)]
    return ("biases", biases), norm


def _emit_unit(w, layer, bn, act, src, shape, path):
    """[convolutional] or [connected]: the layer with its BatchNorm and activation."""
    w.read_from(src, path)
    options = {"batch_normalize": 1} if bn is not None else {}
    weight = layer.params["weight"]
    arrays = _unit_arrays(layer, bn, weight.shape[0])
    if arrays is None:
        raise NotExpressible(f"{path}: a bias before BatchNorm has no Darknet form")
    biases, norm = arrays
    if isinstance(layer, Conv2d):
        kernel = _square(path, "the kernel", tuple(weight.shape[2:]))
        padding = _square(path, "the padding", layer.padding)
        options.update(filters=weight.shape[0], size=kernel, stride=_square(path, "the stride", layer.stride))
        options.update({"pad": 1} if padding == kernel // 2 else {"padding": padding} if padding else {})
        kind, arrays = "convolutional", [biases, *norm, ("weights", weight)]
    else:
        options["output"] = weight.shape[0]
        kind, arrays = "connected", [biases, ("weights", weight), *norm]
    options["activation"] = "linear" if act is None else ACTIVATION_NAMES[type(act)]
    out = layer.output_shape(shape)
    return w.add(kind, path, options, arrays), out


def _maxpool_padding(layer, shape, path):
    """Darknet's padding giving MaxPool2d's windows on this input, or NotExpressible."""
    kernel, padding = _square(path, "the kernel", layer.kernel), _square(path, "the padding", layer.padding)
    stride = kernel if layer.stride is None else _square(path, "the stride", layer.stride)
    out = layer.output_shape(shape)[2:]
    for darknet in (2 * padding, 2 * padding + 1):
        if all((n + darknet - kernel) // stride + 1 == o for n, o in zip(shape[2:], out)):
            return {"size": kernel, "stride": stride, "padding": darknet}
    raise NotExpressible(f"{path}: no Darknet padding gives this max pooling's windows on a "
                         f"{shape[2]}x{shape[3]} input")


def _emit_leaf(w, layer, src, shape, path):
    out = layer.output_shape(shape)
    if isinstance(layer, (Flatten, Unflatten)):
        return src, out
    w.read_from(src, path)
    if isinstance(layer, DarknetMaxPool):
        options = {"size": layer.size, "stride": layer.stride, "padding": layer.padding}
        return w.add("maxpool", path, options), out
    if type(layer) is MaxPool2d:
        return w.add("maxpool", path, _maxpool_padding(layer, shape, path)), out
    if type(layer) is GlobalAvgPool:
        return w.add("avgpool", path), out
    if isinstance(layer, Dropout):
        return w.add("dropout", path, {"probability": layer.p}), out
    if isinstance(layer, Softmax):
        return w.add("softmax", path, {"groups": 1}), out
    raise NotExpressible(f"{path} ({type(layer).__name__}) has no Darknet form")


def _emit(w, layer, src, shape, path):
    """Sections for layer reading Darknet layer src (None: the input) of shape; returns the
    index of the section giving its output and that output's shape."""
    if isinstance(layer, Graph):
        return _emit_graph(w, layer, src, shape, path)
    if isinstance(layer, Network):
        for name, stage in layer.stages:
            src, shape = _emit(w, stage, src, shape, _join(path, name))
        return src, shape
    if isinstance(layer, Sequential):
        children, i = layer.children, 0
        while i < len(children):
            name, child = children[i]
            if isinstance(child, (Conv2d, Linear)):
                bn, act, taken = _bn_and_activation(children, i, path)
                src, shape = _emit_unit(w, child, bn, act, src, shape, _join(path, name))
                i += taken
            else:
                src, shape = _emit(w, child, src, shape, _join(path, name))
                i += 1
        return src, shape
    if isinstance(layer, Concat):
        ends = [_emit(w, branch, src, shape, _join(path, name)) for name, branch in layer.children]
        return w.route([end for end, _ in ends], path), layer.output_shape(shape)
    if isinstance(layer, (Conv2d, Linear)):
        return _emit_unit(w, layer, None, None, src, shape, path)
    return _emit_leaf(w, layer, src, shape, path)


def _emit_graph(w, graph, src, shape, path):
    ends, shapes = [], []  # per stage: its output's Darknet index and shape
    for i, (name, stage) in enumerate(graph.stages):
        reads, as_list = graph._reads[i]
        index = [src if j < 0 else ends[j] for j in reads]
        inputs = [shape if j < 0 else shapes[j] for j in reads]
        if as_list:
            if not isinstance(stage, Route):
                raise NotExpressible(f"{_join(path, name)}: only a Route reads several layers")
            end, out = w.route(index, _join(path, name)), stage.output_shape(inputs)
        else:
            end, out = _emit(w, stage, index[0], inputs[0], _join(path, name))
        ends.append(end)
        shapes.append(out)
    return ends[-1], shapes[-1]


def _join(path, name):
    return f"{path}.{name}" if path else name


def darknet_sections(net):
    """The Darknet sections of a Network, in file order (Emitted objects). A loaded Graph gives
    one per stage; heads (auxiliary classifiers, training only) are left out. NotExpressible
    (a ValueError) names the first layer that Darknet cannot express."""
    w = _Writer()
    _emit(w, net, None, (1, *net.input_shape), "")
    return w.sections


# ---- .weights ---------------------------------------------------------------------------------

def _counts(section):
    return [(what, a if isinstance(a, int) else a.size) for what, a in section.arrays]


def _describe(section):
    counts = _counts(section)
    parts = ", ".join(f"{what} {n}" for what, n in counts)
    return f"layer {section.index} [{section.kind}]", sum(n for _, n in counts), parts


def read_weights(net, path):
    """Read a .weights file into net (built from its cfg). Every count is checked before any
    array is written: a file too short or too long raises ValueError naming the layer (index
    and type) and the floats expected and found. Returns net."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 16:
        raise ValueError(f"{path}: {len(data)} bytes, shorter than a Darknet weights header")
    major, minor, revision = (int(v) for v in np.frombuffer(data[:12], "<i4"))
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    start = 20 if wide else 16
    if len(data) < start:
        raise ValueError(f"{path}: {len(data)} bytes, shorter than a version {major}.{minor} header")
    seen = int(np.frombuffer(data[12:start], "<u8" if wide else "<i4")[0])
    transpose = major > 1000 or minor > 1000
    floats, stray = divmod(len(data) - start, 4)
    values = np.frombuffer(data, "<f4", floats, start)
    sections = [s for s in darknet_sections(net) if s.arrays]
    plan, offset = [], 0
    for section in sections:
        layer, need, parts = _describe(section)
        if offset + need > floats:
            raise ValueError(f"{path} ends in {layer}: it needs {need} floats ({parts}), "
                             f"{floats - offset} remain (header {major}.{minor}.{revision}, "
                             f"{floats} floats after it)")
        for what, target in section.arrays:
            n = target if isinstance(target, int) else target.size
            chunk = values[offset:offset + n]
            if isinstance(target, int) and chunk.any():
                raise ValueError(f"{path}: {layer} has nonzero {what}, but {section.path} has none")
            plan.append((section.kind, what, target, chunk))
            offset += n
    if offset != floats or stray:
        last = _describe(sections[-1])[0] if sections else "no layer"
        raise ValueError(f"{path} is too long: the cfg's layers need {offset} floats (the last, "
                         f"{last}), the file holds {floats}" + (f" and {stray} bytes" if stray else "")
                         + f" after its header {major}.{minor}.{revision}")
    for kind, what, target, chunk in plan:
        if isinstance(target, int):
            continue
        if transpose and kind == "connected" and what == "weights":
            chunk = chunk.reshape(target.shape[::-1]).T
        target[...] = chunk.reshape(target.shape)
    net.seen = seen
    return net


def save_darknet(net, cfg_path, weights_path):
    """Write net as a Darknet .cfg and .weights (version 0.2.0, float32). Any network of
    Darknet's layers: a loaded Graph, or a Network of Sequential/Concat of convolutions (with
    BatchNorm flavour "darknet" or none), max pools, global average pooling, dropout, linear
    and softmax layers; Concat becomes [route] layers. Auxiliary heads (training only) are left
    out. A layer Darknet cannot express raises ValueError naming it, before any file is
    written."""
    sections = darknet_sections(net)
    channels, height, width = net.input_shape
    lines = ["[net]", f"width={width}", f"height={height}", f"channels={channels}", ""]
    for s in sections:
        lines += [f"[{s.kind}]", *(f"{k}={v}" for k, v in s.options.items()), ""]
    header = np.array(VERSION, "<i4").tobytes() + np.array(getattr(net, "seen", 0), "<u8").tobytes()
    body = [np.zeros(a, "<f4") if isinstance(a, int) else np.asarray(a, "<f4").reshape(-1)
            for s in sections for _, a in s.arrays]
    with open(cfg_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    with open(weights_path, "wb") as f:
        f.write(header)
        for array in body:
            f.write(array.tobytes())
