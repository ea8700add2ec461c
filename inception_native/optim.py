"""SGD with momentum and weight decay, PyTorch's update rule, on the blas kernels:

    v = momentum * v + (grad + weight_decay * p);   p = p - lr * v

(Darknet's rule is the same recurrence with the velocity kept as a negative, batch-summed
gradient; PyTorch's is the one torch.optim.SGD users expect.) Weight decay applies to the
convolution and linear weights only (parameters named "...weight"), not to biases or BatchNorm's
gamma and beta. And a learning-rate schedule: linear warm-up, then cosine decay to zero.
"""
import math

import numpy as np

from . import _checks as check
from . import native


class SGD:
    """Updates `params` (name -> array, e.g. model.params) in place from `grads` (the same
    names) on each step(); lr may be changed between steps (see cosine_lr)."""

    def __init__(self, params, grads, lr=0.01, momentum=0.9, weight_decay=0.0, backend=native):
        if set(params) != set(grads):
            raise ValueError("params and grads must have the same names")
        self.params, self.grads, self.backend = params, grads, backend
        self.lr = check.number("lr", lr, 0.0)
        self.momentum = check.number("momentum", momentum, 0.0, 1.0)
        self.weight_decay = check.number("weight_decay", weight_decay, 0.0)
        self.velocity = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self):
        for name, p in self.params.items():
            decay = self.weight_decay if name.endswith("weight") else 0.0
            self.backend.sgd_momentum_cpu(p, self.grads[name], self.velocity[name], self.lr,
                                          self.momentum, decay)


def cosine_lr(step, total_steps, base_lr, warmup_steps=0):
    """The learning rate at `step` (0-based): linear warm-up to base_lr over warmup_steps, then
    cosine decay to 0 at total_steps."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return base_lr * 0.5 * (1 + math.cos(math.pi * progress))
