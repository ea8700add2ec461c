"""BatchNorm kernels: native against its NumPy twin, the article's
Darknet loops compiled as they stand, and PyTorch when it is installed.

Every contender of one case runs interleaved with the others in the same loop (so a noisy
neighbour hurts all alike); each figure is the median of `repeats` timed calls after `warmup`
untimed ones, and every timed call follows an untimed call of the same contender, so that none
inherits the caches or the allocator state that another left behind (the NumPy twin's
temporaries would otherwise evict a 13 MB tensor from the 32 MB L3 before every native call,
and hand PyTorch freshly unmapped memory to fault in). Outputs go to buffers allocated once,
as a training loop would reuse them; PyTorch allocates its own, as it does in training.
"""
import numpy as np

from .. import _article, native, reference
from .timing import time_interleaved, use_threads

GOOGLENET_SHAPES = [(16, 64, 112, 112), (16, 192, 56, 56), (16, 256, 28, 28), (16, 528, 14, 14),
                    (16, 1024, 7, 7)]
# bytes the exact flavour must move, in units of the tensor: forward reads x twice and writes y;
# backward reads dy and x twice and writes dx
EXACT_TRAFFIC = {"forward": 3, "backward": 5}


class ExactCase:
    """Buffers and calls of the exact flavour on one backend."""

    def __init__(self, backend, x, dy):
        c = x.shape[1]
        self.backend, self.x, self.dy = backend, x, dy
        self.gamma, self.beta = np.ones(c, x.dtype), np.zeros(c, x.dtype)
        self.rolling = (np.zeros(c, x.dtype), np.ones(c, x.dtype))
        self.y, self.dx = np.empty_like(x), np.empty_like(x)
        self.mean, self.invstd = np.empty(c, x.dtype), np.empty(c, x.dtype)
        self.dgamma, self.dbeta = np.empty(c, x.dtype), np.empty(c, x.dtype)
        self.forward()

    def forward(self):
        self.backend.batchnorm_forward(self.x, self.gamma, self.beta, *self.rolling, self.y,
                                       self.mean, self.invstd)

    def backward(self):
        self.backend.batchnorm_backward(self.dy, self.x, self.mean, self.invstd, self.gamma,
                                        self.dx, self.dgamma, self.dbeta)


class DarknetCase:
    """Buffers and calls of the darknet flavour on one backend. The backward copies dy into the
    delta buffer first (it works in place), as every contender's backward does."""

    def __init__(self, backend, x, dy):
        c = x.shape[1]
        self.backend, self.x, self.dy = backend, x, dy
        self.scales, self.biases = np.ones(c, x.dtype), np.zeros(c, x.dtype)
        self.rolling = (np.zeros(c, x.dtype), np.ones(c, x.dtype))
        self.y, self.x_norm, self.delta = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        self.mean, self.variance = np.empty(c, x.dtype), np.empty(c, x.dtype)
        self.updates = (np.zeros(c, x.dtype), np.zeros(c, x.dtype))
        self.forward()

    def forward(self):
        self.backend.batchnorm_forward_darknet(self.x, self.scales, self.biases, *self.rolling,
                                               self.y, self.x_norm, self.mean, self.variance)

    def backward(self):
        self.backend.copy_cpu(self.dy.size, self.dy, 1, self.delta, 1)
        self.backend.batchnorm_backward_darknet(self.delta, self.x, self.x_norm, self.mean,
                                                self.variance, self.scales, *self.updates)


class ArticleCase:
    def __init__(self, x, dy):
        b, c = x.shape[:2]
        self.layer = _article.ArticleBatchNorm(b, c, x.size // (b * c))
        self.x, self.dy, self.delta = x.reshape(-1), dy.reshape(-1), np.empty(x.size, x.dtype)
        self.forward()

    def forward(self):
        self.layer.forward(self.x)

    def backward(self):
        np.copyto(self.delta, self.dy)
        self.layer.backward(self.delta)


class TorchCase:
    """torch.nn.functional.batch_norm in training mode, forward recorded by autograd."""

    def __init__(self, torch, x, dy):
        c = x.shape[1]
        self.torch = torch
        self.x = torch.from_numpy(x).requires_grad_()
        self.gamma = torch.ones(c, requires_grad=True)
        self.beta = torch.zeros(c, requires_grad=True)
        self.rolling = (torch.zeros(c), torch.ones(c))
        self.dy = torch.from_numpy(dy)
        self.forward()

    def forward(self):
        self.y = self.torch.nn.functional.batch_norm(self.x, *self.rolling, self.gamma, self.beta,
                                                     training=True, momentum=0.01, eps=1e-5)

    def backward(self):
        self.x.grad = self.gamma.grad = self.beta.grad = None
        self.y.backward(self.dy, retain_graph=True)


def copy_bandwidth(x, repeats, warmup):
    """GB/s of native copy_cpu (OpenMP, memcpy blocks) on a tensor of x's size: read + write."""
    y = np.empty_like(x)
    t = time_interleaved({"copy": lambda: native.copy_cpu(x.size, x, 1, y, 1)}, repeats, warmup)
    return 2 * x.nbytes / t["copy"] / 1e9


def batchnorm_cases(shape, torch, rng):
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    exact = {"native": ExactCase(native, x, dy), "numpy": ExactCase(reference, x, dy)}
    darknet = {"native": DarknetCase(native, x, dy), "numpy": DarknetCase(reference, x, dy),
               "article C": ArticleCase(x, dy)}
    if torch is not None:
        exact["pytorch"] = TorchCase(torch, x, dy)
    return x, {"exact": exact, "darknet": darknet}


def bench_batchnorm(shapes, threads, repeats, warmup, use_torch=True, seed=0):
    """Rows of {shape, flavour, pass, contender, ms, ...} and a copy bandwidth per shape."""
    torch = use_threads(threads) if use_torch else (use_threads(threads), None)[1]
    rng = np.random.default_rng(seed)
    rows = []
    for shape in shapes:
        x, flavours = batchnorm_cases(shape, torch, rng)
        bandwidth = copy_bandwidth(x, repeats, warmup)
        for flavour, cases in flavours.items():
            for direction in ("forward", "backward"):
                ms = time_interleaved({name: getattr(case, direction) for name, case in cases.items()},
                                      repeats, warmup)
                for name, seconds in ms.items():
                    row = {"shape": list(shape), "flavour": flavour, "pass": direction,
                           "contender": name, "ms": seconds * 1e3,
                           "vs_numpy": ms["numpy"] / seconds,
                           "vs_pytorch": ms["pytorch"] / seconds if "pytorch" in ms else None,
                           "copy_GBps": bandwidth}
                    if flavour == "exact":
                        traffic = EXACT_TRAFFIC[direction] * x.nbytes
                        row["GBps"] = traffic / seconds / 1e9
                        row["x_copy_bound"] = seconds / (traffic / (bandwidth * 1e9))
                    rows.append(row)
        del flavours
    return rows


def format_table(rows):
    header = (f"{'shape':>18} {'flavour':>8} {'pass':>8} {'contender':>10} {'ms':>9} "
              f"{'vs NumPy':>9} {'vs PyTorch':>10} {'GB/s':>7} {'x copy bound':>12}")
    lines = [header, "-" * len(header)]
    for r in rows:
        opt = lambda key, fmt: format(r[key], fmt) if r.get(key) is not None else "-"  # noqa: E731
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"{shape:>18} {r['flavour']:>8} {r['pass']:>8} {r['contender']:>10} "
                     f"{r['ms']:9.3f} {r['vs_numpy']:8.1f}x {opt('vs_pytorch', '9.2f'):>9}x "
                     f"{opt('GBps', '7.1f'):>7} {opt('x_copy_bound', '12.2f'):>12}")
    copy = {tuple(r["shape"]): r["copy_GBps"] for r in rows}
    lines.append("")
    lines.append("copy bandwidth (native copy_cpu, same run, same size): " +
                 ", ".join(f"{'x'.join(map(str, s))}: {bw:.0f} GB/s" for s, bw in copy.items()))
    lines.append("vs NumPy / vs PyTorch: their time over this row's (higher is faster); "
                 "x copy bound: time over the time copy bandwidth allows for the exact flavour's "
                 "bytes (forward 3, backward 5 tensor-sized transfers)")
    return "\n".join(lines)


