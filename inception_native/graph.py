"""Graph: a Network whose stages may read the outputs of any earlier stages, not only the one
before (Darknet's [route] layers; see io.darknet).

    Graph(stages, sources, input_shape)

stages: (name, layer) pairs in forward order. sources: {stage name: [earlier stage names, None
for the network's input]}; such a stage (a layers.Route) receives the list of their outputs and
its backward returns one gradient per source. Every other stage reads the output of the stage
before it (the first: the input). The network's output is the last stage's.

The backward walks the stages in reverse and hands each stage the sum of the gradients of its
output's readers (one reader: its gradient as is, no copy); a stage whose output reaches no
reader gets no backward.
"""
from . import native
from .layers import _add_into, _reuse
from .models import Network, _walk


class Graph(Network):
    def __init__(self, stages, sources, input_shape, backend=native):
        super().__init__(stages, {}, input_shape, backend)
        self._sums = {}  # stage index -> the sum of its readers' gradients
        names = [name for name, _ in self.stages]
        unknown = set(sources) - set(names)
        if unknown:
            raise ValueError(f"sources names stages that are not in the graph: {sorted(unknown)}")
        self.sources = dict(sources)
        # per stage: the indices of the stages it reads (-1: the input), and whether as a list
        self._reads = []
        for i, name in enumerate(names):
            if name not in sources:
                self._reads.append(([i - 1], False))
                continue
            reads = [-1 if s is None else names.index(s) if s in names[:i] else None
                     for s in sources[name]]
            if not reads or None in reads:
                raise ValueError(f"stage {name} must read earlier stages (or None, the input), "
                                 f"got {sources[name]}")
            self._reads.append((reads, True))
        self._ran = None

    def _inputs(self, i, outputs):
        reads, as_list = self._reads[i]
        values = [outputs[j] for j in reads]  # outputs[-1] is the input (appended last)
        return values if as_list else values[0]

    def stage_shapes(self, batch=1):
        shapes = [None] * len(self.stages) + [(batch, *self.input_shape)]
        for i, (_, stage) in enumerate(self.stages):
            shapes[i] = stage.output_shape(self._inputs(i, shapes))
        return {name: shape for (name, _), shape in zip(self.stages, shapes)}

    def layers(self, batch=1):
        """(path, layer, input shape) of every layer, containers included, in forward order; a
        Route's input shape is the list of its sources' shapes."""
        found, shapes = [], list(self.stage_shapes(batch).values()) + [(batch, *self.input_shape)]
        for i, (name, stage) in enumerate(self.stages):
            _walk(name, stage, self._inputs(i, shapes), found)
        return found

    def forward(self, x):
        """[the last stage's output]: a list of one, as Network.forward returns."""
        self._check_images(x)
        outputs = [None] * len(self.stages) + [x]
        for i, (_, stage) in enumerate(self.stages):
            outputs[i] = stage.forward(self._inputs(i, outputs))
        self._ran = True
        return [outputs[-2]]

    def backward(self, dys):
        """dys: [dL/d(output)]; returns dL/dx (None when the first convolution skips it)."""
        self._saved(self._ran)
        if len(dys) != 1:
            raise ValueError(f"dys must hold 1 gradient (one per output), got {len(dys)}")
        pending = {len(self.stages) - 1: [dys[0]]}  # stage index (-1: the input) -> gradients
        for i in range(len(self.stages) - 1, -1, -1):
            if i in pending:
                grads = self.stages[i][1].backward(self._total(i, pending.pop(i)))
                reads, as_list = self._reads[i]
                for j, grad in zip(reads, grads if as_list else [grads]):
                    if grad is not None:
                        pending.setdefault(j, []).append(grad)
        return self._total(-1, pending[-1]) if -1 in pending else None

    def _total(self, key, grads):
        if len(grads) == 1:
            return grads[0]
        self._sums[key] = _reuse(self._sums.get(key), grads[0].shape, grads[0].dtype)
        return _add_into(self.backend, self._sums[key], grads)
