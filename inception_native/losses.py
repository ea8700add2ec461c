"""Softmax cross-entropy with label smoothing over the native kernel, summed over a network's
outputs with GoogLeNet's weights: total = main + aux_weight x each auxiliary loss (0.3 in the
paper; Inception v3 uses the same weighting for its one head here)."""
import numpy as np

from . import native
from .layers import _reuse


class CrossEntropy:
    """forward(outputs, labels) -> the total loss (float); outputs: the list of logits a Network
    returns (main first), or one array; labels int64 (batch,). `parts` holds each output's loss.
    backward() -> one dL/dlogits per output, written over the softmax buffers of the forward
    (so once per forward)."""

    def __init__(self, aux_weight=0.3, label_smoothing=0.0, backend=native):
        self.aux_weight, self.label_smoothing, self.backend = aux_weight, label_smoothing, backend
        self._probs, self._labels, self.parts = [], None, []

    def forward(self, outputs, labels):
        outputs = [outputs] if isinstance(outputs, np.ndarray) else list(outputs)
        self._probs = [_reuse(p, o.shape, o.dtype) for p, o in
                       zip(self._probs + [None] * len(outputs), outputs)]
        self._labels = labels
        self.parts = [self.backend.softmax_cross_entropy_forward(o, labels, p, self.label_smoothing)
                      for o, p in zip(outputs, self._probs)]
        return sum(w * loss for w, loss in zip(self.weights(), self.parts))

    def weights(self):
        return [1.0] + [self.aux_weight] * (len(self._probs) - 1)

    def backward(self):
        if self._labels is None:
            raise RuntimeError("backward called before forward")
        return [self.backend.softmax_cross_entropy_backward(p, self._labels, p, self.label_smoothing, w)
                for p, w in zip(self._probs, self.weights())]


def top_classes(logits, k):
    """For each row of logits: [(class, softmax probability)] of its k likeliest classes,
    likeliest first."""
    logits = np.asarray(logits, np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return [[(int(c), float(p[c])) for c in np.argsort(-p, kind="stable")[:k]] for p in probs]
