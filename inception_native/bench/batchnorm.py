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
from .table import Table
from .timing import spread, time_interleaved, use_threads

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
    return 2 * x.nbytes / t["copy"].median / 1e9


def batchnorm_cases(shape, torch, rng):
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    exact = {"native": ExactCase(native, x, dy), "numpy": ExactCase(reference, x, dy)}
    darknet = {"native": DarknetCase(native, x, dy), "numpy": DarknetCase(reference, x, dy),
               "article C": ArticleCase(x, dy)}
    if torch is not None:
        exact["pytorch"] = TorchCase(torch, x, dy)
    return x, {"exact": exact, "darknet": darknet}


def bench_batchnorm(shapes, threads, repeats, warmup, use_torch=True, seed=0, on_rows=None):
    """Rows of {shape, flavour, pass, contender, ms, ms_range, ...} and a copy bandwidth per
    shape; on_rows(rows) is called with each pass's rows as soon as they are measured."""
    torch = use_threads(threads) if use_torch else (use_threads(threads), None)[1]
    rng = np.random.default_rng(seed)
    rows = []
    for shape in shapes:
        x, flavours = batchnorm_cases(shape, torch, rng)
        bandwidth = copy_bandwidth(x, repeats, warmup)
        for flavour, cases in flavours.items():
            for direction in ("forward", "backward"):
                timings = time_interleaved({name: getattr(case, direction) for name, case in cases.items()},
                                           repeats, warmup)
                ms = {name: t.median for name, t in timings.items()}
                group = []
                for name, (seconds, fastest, slowest) in timings.items():
                    row = {"shape": list(shape), "flavour": flavour, "pass": direction,
                           "contender": name, "ms": seconds * 1e3,
                           "ms_range": [fastest * 1e3, slowest * 1e3],
                           "vs_numpy": ms["numpy"] / seconds,
                           "vs_pytorch": ms["pytorch"] / seconds if "pytorch" in ms else None,
                           "copy_GBps": bandwidth}
                    if flavour == "exact":
                        traffic = EXACT_TRAFFIC[direction] * x.nbytes
                        row["GBps"] = traffic / seconds / 1e9
                        row["x_copy_bound"] = seconds / (traffic / (bandwidth * 1e9))
                    group.append(row)
                rows += group
                if on_rows:
                    on_rows(group)
        del flavours
    return rows


def _optional(key, spec):
    return lambda r, group: format(r[key], spec) if r.get(key) is not None else "-"


def _copy_bandwidths(rows):
    copy = {tuple(r["shape"]): r["copy_GBps"] for r in rows}
    return ["copy bandwidth (native copy_cpu, same run, same size): " +
            ", ".join(f"{'x'.join(map(str, s))}: {bw:.0f} GB/s" for s, bw in copy.items())]


TABLE = Table(
    [("shape", ">18", lambda r, group: "x".join(map(str, r["shape"]))),
     ("flavour", ">8", lambda r, group: r["flavour"]), ("pass", ">8", lambda r, group: r["pass"]),
     ("contender", ">10", lambda r, group: r["contender"]),
     ("ms (fastest-slowest)", ">23", lambda r, group: spread(r["ms"], *r["ms_range"], digits=3)),
     ("vs NumPy", ">9", _optional("vs_numpy", ".1f")), ("vs PyTorch", ">10", _optional("vs_pytorch", ".2f")),
     ("GB/s", ">7", _optional("GBps", ".1f")), ("x copy bound", ">12", _optional("x_copy_bound", ".2f"))],
    ["shape: batch x channels x height x width of the activations, float32",
     "flavour: exact (fused kernels, the true gradient) or darknet (Darknet's blas routines, in "
     "its order); pass: forward or backward (a training step's)",
     "contender: native (our C kernels), numpy (their NumPy twins), article C (the Darknet loops "
     "the article quotes, compiled as they stand), pytorch (torch.nn.functional.batch_norm)",
     "ms: median milliseconds per call, the fastest and slowest timed call in brackets",
     "vs NumPy / vs PyTorch: their median time over this row's (above 1: this row is faster)",
     "GB/s: the bytes the exact flavour must move (forward 3, backward 5 tensor-sized transfers) "
     "over the median time",
     "x copy bound: the median time over the time copying those bytes takes at the copy "
     "bandwidth above (1: as fast as memory allows; below 1: faster than that bound, when part "
     "of the traffic stays in the caches, as small tensors and the second read of x do)"],
    _copy_bandwidths)
