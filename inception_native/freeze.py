"""Frozen inference: `net.freeze()` turns a network (or any layer, given its input shape) into
an inference-only `Frozen` object whose forward(x) returns what `net.eval().forward(x)` returns,
computed from a snapshot of the weights taken at freeze time (freeze again after changing them).

Freezing lowers the layer tree to a graph of steps (`Graph`, which io.onnx exports too) and
simplifies it:
- every BatchNorm that follows a convolution is folded into it, each flavour with its own
  arithmetic (exact: gamma / sqrt(var + eps); darknet: gamma / (sqrt(var) + 1e-6)), in float64;
  a BatchNorm elsewhere becomes a per-channel affine step;
- a ReLU after a convolution runs in the convolution kernel's store; after a linear or affine
  step, in place at the end of that step;
- dropout disappears (the identity in inference), flatten is a view, max pooling keeps no argmax
  (Darknet's [maxpool] too, wherever max_pool2d's windows can be its windows);
- Darknet's leaky ReLU, logistic and softmax are steps of their own;
- a layer type the freezer does not know runs through its own forward (a snapshot copy of it).
io.onnx exports that graph; the frozen network then stacks the 1x1 convolutions that read the
same value (an Inception block's 1x1 branch and reductions) into one convolution whose output
channels the branches read as slices (horizontal fusion).

`Frozen.forward` runs a `Plan` made on the first call for each (batch size, thread count): every
intermediate array and convolution workspace is a view into one arena, their offsets assigned by
liveness (two arrays share bytes when no step needs both), and the branches of a Concat write
straight into their slice of its output (a convolution at any batch, the kernel storing into a
channel slice; any step at batch 1, where the slice is contiguous; at batch 1 the 1x1 branch
too, the stacked 1x1 output lying just below the concat in one array), so the concat copies
only the other branches (the 1x1 branch and a pooling branch at batch > 1), and a step with
nothing to do is not run. A slice of the stacked 1x1 output that a convolution reads is
copied out at batch > 1 (a convolution reads contiguous inputs only).
A batch larger than max_batch (8 by default) runs in chunks of max_batch images, so that memory
stays bounded whatever the batch: the arena holds the maps of max_batch images.

layout="nchwc" runs a float32 plan in the blocked layout NCHWc (B, C // blk, H, W, blk), blk
the convolution ISA's block (backend.nchwc_block(), read when a plan is made), wherever it can
(nchwc_layout): the blocked convolutions (direct, on weights packed once), pooling and reorders
read and write block slices at any batch, so every concat part whose step can writes in place and
every slice of a stacked output is a view. It holds less memory, but its direct convolutions are
slower than our packed GEMM on most of GoogLeNet's layers, so the default stays "nchw" (and
float64 always does): see benchmarks/README.md.
"""
import copy
import sys
import time

import numpy as np

from . import _checks as check
from . import layers as L
from . import native
from .shapes import output_hw
from .threads import get_num_threads

ALIGN = 64  # bytes: every arena array starts on a cache line
MAX_BATCH = 8  # images a plan runs at once: a larger batch runs in chunks of this many
LAYOUTS = ("nchw", "nchwc")


class Node:
    """One step: op, input value ids, output value id and the op's attributes."""

    def __init__(self, op, inputs, output, attrs):
        self.op, self.inputs, self.output, self.attrs = op, list(inputs), output, attrs

    def __repr__(self):
        return f"Node({self.op}, {self.inputs} -> {self.output})"


class Graph:
    """Values (id -> per-image shape; value 0 is the input) and the nodes that compute them, in
    an order that runs (every input computed before it is read); `output` is the result's id."""

    def __init__(self, input_shape, dtype):
        self.shapes, self.nodes, self.dtype, self.output = [tuple(input_shape)], [], dtype, 0
        self.block, self.blocked = None, frozenset()  # set by nchwc_layout

    def add(self, op, inputs, shape, **attrs):
        self.shapes.append(tuple(shape))
        self.nodes.append(Node(op, inputs, len(self.shapes) - 1, attrs))
        return len(self.shapes) - 1

    def consumers(self, value):
        return [n for n in self.nodes if value in n.inputs] + ([None] if value == self.output else [])

    def producer(self, value):
        return next((n for n in self.nodes if n.output == value), None)


# ---- lowering: layer tree -> graph ----------------------------------------------------------

def _window(layer):
    kh, kw = check.pair("kernel", layer.kernel, 1)
    stride = (kh, kw) if layer.stride is None else check.pair("stride", layer.stride, 1)
    return {"kernel": (kh, kw), "stride": stride, "padding": check.pair("padding", layer.padding),
            "ceil_mode": bool(layer.ceil_mode)}


def _darknet_windows(pool, shape):
    """Darknet's [maxpool] windows as max_pool2d's (a symmetric padding, floor or ceil mode),
    or None. Both sweep windows from -(padding // 2) every stride pixels and ignore what lies
    outside the image: the same windows when they make as many."""
    k, s, first = pool.size, pool.stride, pool.padding // 2
    for ceil_mode in (False, True):
        if first <= k // 2 and shape[2] + 2 * first >= k and shape[3] + 2 * first >= k and (
                output_hw(*shape[2:], k, k, s, s, first, first, ceil_mode) == pool.output_shape(shape)[2:]):
            return {"kernel": (k, k), "stride": (s, s), "padding": (first, first), "ceil_mode": ceil_mode}
    return None


def _bn_affine(bn):
    """(scale, shift) of an inference BatchNorm, y = scale * x + shift per channel, in float64."""
    var = bn.rolling_variance.astype(np.float64)
    root = np.sqrt(var + bn.eps) if bn.flavour == "exact" else np.sqrt(var) + 1e-6
    scale = bn.params["gamma"].astype(np.float64) / root
    return scale, bn.params["beta"] - bn.rolling_mean.astype(np.float64) * scale


def _lower(layer, src, graph):
    """Add layer's steps reading value src; returns the value holding its output."""
    shape = (1, *graph.shapes[src])
    out = layer.output_shape(shape)[1:]
    kind = type(layer)
    if isinstance(layer, L.Sequential):
        for _, child in layer.children:
            src = _lower(child, src, graph)
        return src
    if isinstance(layer, L.Concat):
        parts = [_lower(branch, src, graph) for _, branch in layer.children]
        return graph.add("concat", parts, out)
    if kind is L.Dropout:
        return src
    if kind in (L.Conv2d, L.Linear):
        weight = layer.params["weight"].astype(graph.dtype)  # a copy: the snapshot
        bias = layer.params.get("bias", np.zeros(weight.shape[0])).astype(graph.dtype)
        window = {"stride": layer.stride, "padding": layer.padding} if kind is L.Conv2d else {}
        return graph.add("conv" if window else "linear", [src], out, weight=weight, bias=bias,
                         relu=False, **window)
    if kind is L.BatchNorm and len(shape) == 4:
        scale, shift = _bn_affine(layer)
        return graph.add("affine", [src], out, scale=scale, shift=shift, relu=False)
    if kind is L.ChannelAffine:
        return graph.add("affine", [src], out, scale=layer.scale.astype(np.float64),
                         shift=layer.shift.astype(np.float64), relu=False)
    if kind is L.ReLU:
        return graph.add("relu", [src], out)
    if kind is L.LeakyReLU:
        return graph.add("leaky_relu", [src], out, slope=layer.options[0])
    if kind is L.Logistic:
        return graph.add("logistic", [src], out)
    if kind is L.Softmax:
        return graph.add("softmax", [src], out)
    if kind is L.DarknetMaxPool and _darknet_windows(layer, shape):
        return graph.add("maxpool", [src], out, **_darknet_windows(layer, shape))
    if kind is L.MaxPool2d:
        return graph.add("maxpool", [src], out, **_window(layer))
    if kind is L.AvgPool2d:
        return graph.add("avgpool", [src], out, count_include_pad=bool(layer.count_include_pad),
                         **_window(layer))
    if kind is L.GlobalAvgPool:
        return graph.add("global_avgpool", [src], out)
    if kind is L.AdaptiveAvgPool2d:
        return graph.add("adaptive_avgpool", [src], out)
    if kind is L.Flatten:
        return graph.add("flatten", [src], out)
    return graph.add("layer", [src], out, layer=_snapshot(layer))


def _snapshot(layer):
    """A deep copy of layer, in eval mode; modules it refers to (its backend) are shared."""
    return copy.deepcopy(layer, {id(m): m for m in list(sys.modules.values())}).eval()


def _lower_route(layer, inputs, graph):
    """A stage that reads a list of earlier outputs: Darknet's route (their concatenation, or
    the one passed through), or a layer the freezer does not know."""
    shape = layer.output_shape([(1, *graph.shapes[v]) for v in inputs])[1:]
    if type(layer) is L.Route:
        return inputs[0] if len(inputs) == 1 else graph.add("concat", inputs, shape)
    return graph.add("layer", inputs, shape, layer=_snapshot(layer), as_list=True)


def _only_consumer(graph, value, node):
    return graph.consumers(value) == [node]


def _fuse(graph):
    """Fold each affine step into the convolution before it, and each ReLU into the
    convolution, linear or affine step before it, where that step's output feeds nothing else."""
    for node in list(graph.nodes):
        before = graph.producer(node.inputs[0]) if node.inputs else None
        if before is None or not _only_consumer(graph, node.inputs[0], node):
            continue
        fold_affine = node.op == "affine" and before.op == "conv"
        fuse_relu = node.op == "relu" and before.op in ("conv", "linear", "affine")
        if not (fold_affine or fuse_relu) or before.attrs.get("relu"):
            continue
        if fold_affine:  # in float64, one convolution at a time
            scale, a = node.attrs["scale"], before.attrs
            a["weight"] = (a["weight"] * scale[:, None, None, None]).astype(graph.dtype)
            a["bias"] = (a["bias"] * scale + node.attrs["shift"]).astype(graph.dtype)
            a["relu"] = node.attrs["relu"]
        else:
            before.attrs["relu"] = True
        _bypass(graph, node, before)


def _bypass(graph, node, before):
    """Drop node; before now computes node's output."""
    graph.nodes.remove(node)
    for other in graph.nodes:
        other.inputs = [before.output if v == node.output else v for v in other.inputs]
    if graph.output == node.output:
        graph.output = before.output


def lower(layer, input_shape, dtype):
    """The fused graph of layer (a Network: its stages, inference only) for inputs of
    input_shape (C, H, W); weights and statistics copied in dtype (folding computes in float64)."""
    graph = Graph(input_shape, np.dtype(dtype))
    stages = layer.stages if hasattr(layer, "stages") else [("", layer)]
    # a models.Graph's stages may read any earlier stages' outputs (-1: the input)
    reads = getattr(layer, "_reads", None) or [([i - 1], False) for i in range(len(stages))]
    values = []
    for (_, stage), (sources, as_list) in zip(stages, reads):
        inputs = [0 if j == -1 else values[j] for j in sources]
        values.append(_lower_route(stage, inputs, graph) if as_list else _lower(stage, inputs[0], graph))
    graph.output = values[-1] if values else 0
    _fuse(graph)
    for node in graph.nodes:
        for name in ("weight", "bias", "scale", "shift"):
            if name in node.attrs:  # scale and shift of unfolded affine steps are float64 still
                node.attrs[name] = np.ascontiguousarray(node.attrs[name], graph.dtype)
    return graph


def _pointwise(node):
    a = node.attrs
    return (node.op == "conv" and a["weight"].shape[2:] == (1, 1) and a["stride"] == (1, 1)
            and a["padding"] == (0, 0))


def stack_pointwise(graph, concat_branch_last=False):
    """Horizontal fusion: the 1x1 convolutions that read the same value (an Inception block's
    first convolutions) become one convolution with their output channels stacked, followed by
    a "slice" step per original output (a view where the plan can make one). concat_branch_last:
    a convolution whose output is only a concat's first part (an Inception block's 1x1 branch)
    stacks last, so that an NCHW plan at batch 1 can write it in place (_stack_below_concats);
    else they stack in order, which keeps the slices on block boundaries for the blocked layout
    (GoogLeNet 4b's 160 + 112 + 24: 24 last)."""
    groups = {}
    for node in graph.nodes:
        if _pointwise(node):
            groups.setdefault((node.inputs[0], node.attrs["relu"]), []).append(node)
    for (src, relu), group in groups.items():
        if len(group) < 2:
            continue
        if concat_branch_last:
            group.sort(key=lambda n: [c.op == "concat" and c.inputs[0] == n.output
                                      for c in graph.consumers(n.output)] == [True])
        weight = np.concatenate([n.attrs["weight"] for n in group])
        bias = np.concatenate([n.attrs["bias"] for n in group])
        stacked = Node("conv", [src], len(graph.shapes), dict(
            weight=weight, bias=bias, stride=(1, 1), padding=(0, 0), relu=relu))
        graph.shapes.append((len(weight), *graph.shapes[group[0].output][1:]))
        graph.nodes.insert(graph.nodes.index(group[0]), stacked)
        start = 0
        for node in group:
            stop = start + node.attrs["weight"].shape[0]
            node.op, node.inputs, node.attrs = "slice", [stacked.output], {"channels": slice(start, stop)}
            start = stop
    return graph


# ---- the blocked layout: which values run NCHWc ---------------------------------------------

POOLS = ("maxpool", "avgpool", "global_avgpool")
BLOCKED_OPS = ("conv", "maxpool", "avgpool", "concat", "slice")  # blocked in, blocked out
BLOCKED_READERS = BLOCKED_OPS + ("global_avgpool",)  # which gives a plain (B, C)


def _blocked_values(graph, blk):
    """The values that run blocked: every value of C % blk == 0 channels that a BLOCKED_OPS step
    computes from inputs that allow it and that some step reads blocked. A convolution reads
    either layout; a pooling step and a slice follow their input's; a concatenation is blocked
    when one of its parts is and all have whole blocks (the others reordered into their place).
    A stacked convolution whose slices do not fall on block boundaries stays NCHW."""
    unaligned = {n.inputs[0] for n in graph.nodes if n.op == "slice" and (
        n.attrs["channels"].start % blk or n.attrs["channels"].stop % blk)}
    blocked = set()
    for node in graph.nodes:
        v, shape = node.output, graph.shapes[node.output]
        if (node.op not in BLOCKED_OPS or len(shape) != 3 or shape[0] % blk or v in unaligned
                or not any(c is not None and c.op in BLOCKED_READERS for c in graph.consumers(v))):
            continue
        if node.op == "conv" or node.inputs[0] in blocked and node.op != "concat" or (
                node.op == "concat" and any(u in blocked for u in node.inputs)
                and all(graph.shapes[u][0] % blk == 0 for u in node.inputs)):
            blocked.add(v)
    return blocked


def _reads_blocked(node, graph, blocked, blk):
    """Whether node reads its inputs in the blocked layout: a blocked convolution does unless
    its input's channels are not a multiple of blk (then it reads the plain input, its weights
    packed for that), the other blocked steps do when their output is blocked, a global average
    pool when its input is."""
    if node.op == "conv" and node.output in blocked:
        return graph.shapes[node.inputs[0]][0] % blk == 0
    if node.op == "global_avgpool":
        return node.inputs[0] in blocked
    return node.op in BLOCKED_OPS and node.output in blocked


def nchwc_layout(graph, blk, backend):
    """A copy of graph (its weights shared) for float32 inference in the blocked layout NCHWc
    (B, C // blk, H, W, blk) of block blk: the values _blocked_values picks are blocked, the
    others NCHW; a step reading a value in the other layout reads a reordered copy ("to_nchwc"
    or "to_nchw" steps, one per value, where a blocked region starts and ends); the blocked
    convolutions' weights packed once (backend.nchwc_pack_weights)."""
    out = Graph(graph.shapes[0], graph.dtype)
    out.shapes, out.block = list(graph.shapes), blk
    blocked = _blocked_values(graph, blk)
    copies = {}  # (value, to blocked?) -> its reordered copy

    def read(v, as_blocked):
        if (v in blocked) == as_blocked:
            return v
        if (v, as_blocked) not in copies:
            copies[v, as_blocked] = len(out.shapes)
            out.shapes.append(graph.shapes[v])
            out.nodes.append(Node("to_nchwc" if as_blocked else "to_nchw", [v], len(out.shapes) - 1, {}))
            if as_blocked:
                blocked.add(len(out.shapes) - 1)
        return copies[v, as_blocked]

    for node in graph.nodes:
        as_blocked = _reads_blocked(node, graph, blocked, blk)
        copy = Node(node.op, [read(v, as_blocked) for v in node.inputs], node.output, dict(node.attrs))
        if node.op == "conv" and node.output in blocked:
            copy.attrs["packed"] = backend.nchwc_pack_weights(node.attrs["weight"], blk,
                                                              plain_input=not as_blocked)
        out.nodes.append(copy)
    out.output = read(graph.output, False)
    out.blocked = frozenset(blocked)
    return out


# ---- profiles: steps grouped by kind ---------------------------------------------------------

# The kind of a step in a profile, where it is not a convolution's: the names onnxruntime's
# operators map to as well (bench.model), so that the two profiles line up row by row
STEP_KINDS = {"maxpool": "max pool", "avgpool": "average pool", "global_avgpool": "global average pool",
              "adaptive_avgpool": "average pool", "affine": "batchnorm", "to_nchwc": "reorder",
              "to_nchw": "reorder", "layer": "unplanned layer"}


def conv_kind(kh, kw, sh, sw):
    """A convolution's kind in a profile: its kernel and, when not 1, its stride ("conv 7x7/2")."""
    stride = "" if (sh, sw) == (1, 1) else f"/{sh}" if sh == sw else f"/{sh}x{sw}"
    return f"conv {kh}x{kw}{stride}"


def step_kind(node):
    """The kind Plan.run's profile counts node's time under."""
    if node.op == "conv":
        return conv_kind(*node.attrs["weight"].shape[2:], *node.attrs["stride"])
    return STEP_KINDS.get(node.op, node.op)


# ---- planning: buffers and steps for one batch size -----------------------------------------

def _aligned(n_bytes):
    return -(-n_bytes // ALIGN) * ALIGN


def _place(intervals):
    """Offsets (bytes) for (first step, last step, bytes) intervals: the largest first, each at
    the lowest offset clear of every placed interval whose steps overlap it; and the total."""
    placed, offsets = [], {}
    for key in sorted(intervals, key=lambda k: -intervals[k][2]):
        first, last, size = intervals[key]
        taken = sorted((o, o + s) for (f, l, s), o in placed if f <= last and first <= l)
        offset = 0
        for start, end in taken:
            if offset + size <= start:
                break
            offset = max(offset, end)
        offsets[key] = offset
        placed.append(((first, last, size), offset))
    return offsets, max((o + s for (_, _, s), o in placed), default=0)


def _stack_below_concats(graph, views, shapes):
    """At batch 1, where a concat's first part is the last channels of a stacked 1x1 output S
    (stack_pointwise puts such a branch last), S and the concat become views of one array of
    their own, S just below the concat, so that the branch lands in place: views and shapes
    gain that array. Only there: S's other channels (the reductions that the other branches
    read) then lie outside the concat, which those branches write."""
    for node in graph.nodes:
        part = node.inputs[0] if node.op == "concat" else None
        stacked, channels = views.get(part, (None, None))
        if (channels is None or node.output in views or stacked in views
                or getattr(graph.producer(stacked), "op", None) != "conv"
                or len(shapes[stacked]) != 4 or len(shapes[node.output]) != 4
                or channels.stop != shapes[stacked][1]
                or not _only_consumer(graph, part, node)):
            continue
        below = channels.start
        shapes.append((1, below + shapes[node.output][1], *shapes[node.output][2:]))
        views[stacked] = (len(shapes) - 1, slice(0, shapes[stacked][1]))
        views[node.output] = (len(shapes) - 1, slice(below, shapes[-1][1]))


def _copied_parts(node, arrays, shapes):
    """(part index, its channel (block) slice of the output) of each part of concat node whose
    array is not that slice of its output already (those its step copies)."""
    y, start, copied = arrays.get(node.output), 0, []
    for i, v in enumerate(node.inputs):
        part, channels = arrays.get(v), slice(start, start + shapes[v][1])
        if part is None or y is None or not _same_array(part, y[:, channels]):
            copied.append((i, channels))
        start = channels.stop
    return copied


def _same_array(a, b):
    """Whether a and b are the same elements of memory in the same order."""
    return (a.shape == b.shape and a.ctypes.data == b.ctypes.data
            and all(sa == sb for d, sa, sb in zip(a.shape, a.strides, b.strides) if d > 1))


class Plan:
    """The steps of a graph for `batch` images, with every array a view into one arena."""

    def __init__(self, graph, batch, backend=native):
        self.graph, self.batch, self.backend = graph, batch, backend
        nodes, itemsize, blocked, blk = graph.nodes, graph.dtype.itemsize, graph.blocked, graph.block
        shapes = [(batch, s[0] // blk, *s[1:], blk) if v in blocked else (batch, *s)
                  for v, s in enumerate(graph.shapes)]
        # views: value -> (parent value, channel (block) slice or None for a reshape); every
        # blocked kernel reads and writes block slices at any batch
        views = {}
        for node in nodes:
            if node.op == "flatten" and node.inputs[0] != 0:
                views[node.output] = (node.inputs[0], None)
            if node.op == "slice" and (node.output in blocked or batch == 1 or all(
                    c is not None and c.op in ("concat", "conv") for c in graph.consumers(node.output))):
                channels = node.attrs["channels"]  # contiguous, or read by steps that take slices
                unit = blk if node.output in blocked else 1
                views[node.output] = (node.inputs[0], slice(channels.start // unit, channels.stop // unit))
            if node.op == "concat":  # its parts written in place where their step can
                start = 0
                writers = (BLOCKED_OPS[:-1] + ("to_nchwc",) if node.output in blocked
                           else ("conv", "concat", "to_nchw"))
                for part in node.inputs:
                    producer = graph.producer(part)
                    if (producer is not None and part not in views
                            and (producer.op in writers or batch == 1 and producer.op != "flatten")
                            and _only_consumer(graph, part, node) and node.inputs.count(part) == 1):
                        views[part] = (node.output, slice(start, start + shapes[part][1]))
                    start += shapes[part][1]
        if batch == 1:
            _stack_below_concats(graph, views, shapes)
        self.views = views
        root = lambda v: root(views[v][0]) if v in views else v  # noqa: E731
        # liveness of each root array: from the first write of any view to the last read
        intervals = {}

        def use(value, step):
            r = root(value)
            if r == 0:
                return
            first, last, size = intervals.get(r, (step, step, _aligned(np.prod(shapes[r]) * itemsize)))
            intervals[r] = (min(first, step), max(last, step), size)

        self.conv_plans, self.packed = {}, {}  # packed: our kernels' weights, packed once
        for step, node in enumerate(nodes):
            use(node.output, step)
            for v in node.inputs:
                use(v, step)
            if node.op == "conv" and node.output not in blocked:
                plan = backend.conv2d_plan(shapes[node.inputs[0]], node.attrs["weight"].shape,
                                           node.attrs["stride"], node.attrs["padding"])
                self.conv_plans[step] = plan
                if plan.algorithm == "convk":  # frozen weights: packed here, not at every run
                    self.packed[step] = plan.pack(node.attrs["weight"])
                if plan.workspace:
                    intervals[("work", step)] = (step, step, _aligned(plan.workspace * itemsize))
        use(graph.output, len(nodes))
        offsets, total = _place(intervals)
        self.arena = np.empty(total // itemsize, graph.dtype)
        self.bytes = total

        def array(key, shape):
            start = offsets[key] // itemsize
            return self.arena[start:start + int(np.prod(shape))].reshape(shape)

        self.arrays = {}

        def view(v):
            if v not in self.arrays:
                if v in views:
                    parent, channels = views[v]
                    base = view(parent)
                    self.arrays[v] = (base.reshape(shapes[v]) if channels is None
                                      else base[:, channels])
                elif v != 0:
                    self.arrays[v] = array(v, shapes[v])
            return self.arrays.get(v)

        for v in range(1, len(shapes)):
            if root(v) in offsets:
                view(v)
        self.workspaces = {step: array(("work", step), (self.conv_plans[step].workspace,))
                           for step in self.conv_plans if ("work", step) in offsets}
        # the parts each concat copies (the others were written in place, their arrays its
        # slices), and the steps with work to do: not a view (a slice, a flatten) nor a concat
        # with nothing to copy (GoogLeNet at batch 1: 36 of 90 steps, 0.2 ms of 16)
        self.copied = {step: _copied_parts(node, self.arrays, shapes)
                       for step, node in enumerate(nodes) if node.op == "concat"}
        self.steps = [(step, node) for step, node in enumerate(nodes)
                      if not self._is_view(step, node)]
        # the steps that read or write blocked arrays (the reorders included)
        self.blocked_steps = {step for step, node in enumerate(nodes)
                              if {node.output, *node.inputs} & blocked}
        # convolutions and poolings on arena arrays (not on the input): checked once, here
        self.calls = {step: self._call(step, node, self.arrays[node.inputs[0]])
                      for step, node in enumerate(nodes)
                      if node.op in ("conv",) + POOLS and step not in self.blocked_steps
                      and all(v in self.arrays for v in (*node.inputs, node.output))}

    def run(self, x, spent=None):
        """The output array (a view into the arena) for x of (batch, *input_shape). spent: a
        dict that gains each step's seconds under its step_kind (a profile), or None. (The
        kernels that call the BLAS, the linear layers and the im2col convolution, keep it on one
        thread themselves: see threads.py.)"""
        arrays = dict(self.arrays)
        arrays[0] = x
        for step, node in self.steps:
            if spent is None:
                self._step(step, node, arrays)
                continue
            start = time.perf_counter()
            self._step(step, node, arrays)
            kind = step_kind(node)
            spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - start
        return arrays[self.graph.output]

    def _is_view(self, step, node):
        """Whether node's output is all in place: a view of its input, or a concat of parts
        that were written into it."""
        if node.attrs.get("relu"):
            return False
        if node.op in ("slice", "flatten"):
            return node.output in self.views
        return node.op == "concat" and not self.copied[step]

    def _step(self, step, node, arrays):
        """Runs one step of the graph on arrays (value -> array)."""
        call, backend = self.calls.get(step), self.backend
        if call is not None:  # a convolution or pooling (never followed by a ReLU pass)
            call()
            return
        a, y = node.attrs, arrays[node.output]
        xs = [arrays[v] for v in node.inputs]
        if step in self.blocked_steps:
            self._run_blocked(step, node, xs, y)
        elif node.op in ("conv",) + POOLS:  # on the input: checked at each run
            self._call(step, node, xs[0])()
        elif node.op == "linear":
            backend.linear_forward(xs[0], a["weight"], a["bias"], y)
        elif node.op == "affine":  # x * scale + shift per channel, its ReLU too
            backend.channel_affine_forward(xs[0], a["scale"], a["shift"], y, relu=a["relu"])
        elif node.op == "relu":
            backend.relu_forward(xs[0], y)
        elif node.op == "leaky_relu":
            backend.leaky_relu_forward(xs[0], y, a["slope"])
        elif node.op == "logistic":
            backend.logistic_forward(xs[0], y)
        elif node.op == "softmax":  # over each image's values
            backend.softmax_forward(xs[0].reshape(y.shape), y)
        elif node.op == "adaptive_avgpool":
            backend.adaptive_avg_pool2d_forward(xs[0], y)
        elif node.op == "concat" and len(self.copied[step]) == len(xs) and all(
                v.flags.c_contiguous for v in xs + [y]):
            backend.concat_forward(xs, y)
        elif node.op == "concat":
            self._copy_parts(step, xs, y)
        elif node.op == "flatten" and node.output not in self.views:
            np.copyto(y, xs[0].reshape(y.shape))
        elif node.op == "slice" and node.output not in self.views:
            np.copyto(y, xs[0][:, a["channels"]])
        elif node.op == "layer":
            np.copyto(y, a["layer"].forward(xs if a.get("as_list") else xs[0]))
        if a.get("relu") and node.op not in ("conv", "affine"):
            backend.relu_forward(y, y)

    def _copy_parts(self, step, xs, y):
        """The parts of concatenation `step` not written in place, copied into their channel
        (block) slice of y."""
        for i, channels in self.copied[step]:
            np.copyto(y[:, channels], xs[i])

    def _call(self, step, node, x):
        """A convolution or pooling step on NCHW arrays reading x, as a function of no arguments
        (the backend's `_call` kernels: its arguments checked now)."""
        a, y = node.attrs, self.arrays[node.output]
        if node.op == "conv":  # its ReLU in the kernel's store
            return self.backend.conv2d_forward_call(
                x, a["weight"], a["bias"], y, a["stride"], a["padding"], self.workspaces.get(step),
                plan=self.conv_plans[step], relu=a["relu"], packed=self.packed.get(step))
        return self._pool(node, x, y, "_call")

    def _pool(self, node, x, y, kind):
        """A pooling step by the backend's kernel of this kind: "_nchwc" blocked arrays, "_call"
        NCHW arrays (returns the call to run); max pooling keeps no argmax."""
        a, backend = node.attrs, self.backend
        layout = kind if kind == "_nchwc" else ""
        window = () if node.op == "global_avgpool" else (a["kernel"], a["stride"], a["padding"],
                                                         a["ceil_mode"])
        if node.op == "maxpool":
            argmax = () if layout else (None,)
            return getattr(backend, "max_pool2d_forward" + kind)(x, y, *argmax, *window)
        if node.op == "avgpool":
            return getattr(backend, "avg_pool2d_forward" + kind)(x, y, *window,
                                                                 a["count_include_pad"])
        return getattr(backend, "global_avg_pool_forward" + kind)(x, y)

    def _run_blocked(self, step, node, xs, y):
        """One step on blocked arrays (or from or to them)."""
        a, backend = node.attrs, self.backend
        if node.op == "conv":  # its ReLU in the kernel's store
            backend.conv2d_forward_nchwc(xs[0], a["packed"], a["bias"], y, a["stride"],
                                         a["padding"], relu=a["relu"])
        elif node.op in POOLS:
            self._pool(node, xs[0], y, "_nchwc")
        elif node.op == "to_nchwc":
            backend.nchw_to_nchwc(xs[0], y)
        elif node.op == "to_nchw":
            backend.nchwc_to_nchw(xs[0], y)
        elif node.op == "concat":
            self._copy_parts(step, xs, y)


class Frozen:
    """Inference only: forward(x) for x of (batch, *input_shape) in the network's dtype; returns
    a fresh array ([array] for a Network, as its forward does). A batch runs max_batch images
    at a time (the arena holds the maps of that many images); plans are made on the first call
    for each batch size (up to max_batch) and thread count, and kept (self.plans)."""

    def __init__(self, layer, input_shape=None, max_batch=MAX_BATCH, backend=None, layout="nchw"):
        if input_shape is None:
            input_shape = getattr(layer, "input_shape", None)
            if input_shape is None:
                raise ValueError("freezing a layer needs its input_shape (channels, height, width)")
        params = list(layer.params.values())
        dtype = params[0].dtype if params else np.float32
        self.input_shape, self.dtype = tuple(input_shape), np.dtype(dtype)
        self.backend = backend or getattr(layer, "backend", native)
        self.as_list = hasattr(layer, "stages")
        self.graph = stack_pointwise(lower(layer, self.input_shape, self.dtype),
                                     concat_branch_last=layout == "nchw")
        self.output_shape = self.graph.shapes[self.graph.output]
        self.max_batch = check.size("max_batch", max_batch, 1)
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.layout, self.plans, self.graphs = layout, {}, {None: self.graph}

    def block(self):
        """The block of the blocked layout the plans use now (the convolution ISA's,
        backend.nchwc_block(), read now: it may change between plans), or None: NCHW
        throughout (layout "nchw", or a float64 network)."""
        if self.layout == "nchw" or self.dtype != np.float32:
            return None
        return self.backend.nchwc_block()

    def plan(self, batch):
        """The Plan for batch images (<= max_batch)."""
        blk = self.block()
        key = (batch, get_num_threads(), blk)
        if blk not in self.graphs:
            self.graphs[blk] = nchwc_layout(self.graph, blk, self.backend)
        if key not in self.plans:
            self.plans[key] = Plan(self.graphs[blk], batch, self.backend)
        return self.plans[key]

    @L._one_call_at_a_time  # the arena serves one call at a time, as a layer does
    def forward(self, x, *, spent=None):
        """The network's output for x; spent: a dict that gains the seconds of each kind of
        step (step_kind: "conv 3x3", "max pool", ...) over the call, or None."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
        if x.ndim != 1 + len(self.input_shape) or x.shape[1:] != self.input_shape:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, self.input_shape))}), "
                             f"got {x.shape}")
        if x.dtype != self.dtype:
            raise TypeError(f"x must have dtype {self.dtype} (the network's), got {x.dtype}")
        x, y = np.ascontiguousarray(x), np.empty((len(x), *self.output_shape), self.dtype)
        for start in range(0, len(x), self.max_batch):
            chunk = x[start:start + self.max_batch]
            np.copyto(y[start:start + len(chunk)], self.plan(len(chunk)).run(chunk, spent))
        return [y] if self.as_list else y

    __call__ = forward


def freeze(layer, input_shape=None, max_batch=MAX_BATCH, layout="nchw"):
    """Frozen inference of layer (see the module's note); input_shape (C, H, W): a Network's own
    when None; max_batch: the images a plan runs at once; layout "nchw" (NCHW throughout) or
    "nchwc" (float32: the blocked layout NCHWc where it can)."""
    return Frozen(layer, input_shape, max_batch, layout=layout)
