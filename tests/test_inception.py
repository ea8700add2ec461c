"""Inception blocks: output shapes from the figures, and forward/backward against the same block
run in PyTorch's autograd (float64), on both backends."""
import numpy as np
import pytest
from torch_mirror import assert_matches_torch

from inception_native import inception

BLOCKS = {  # name: (build(builder, cin), cin, input size, output channels from the figure)
    "naive_2a": (lambda b, c: inception.naive_inception(b, c, 4, 6, 3), 5, 6, 4 + 6 + 3 + 5),
    "v1_2b": (lambda b, c: inception.inception_v1(b, c, 4, 3, 6, 2, 3, 2), 5, 6, 4 + 6 + 3 + 2),
    "bn_avg": (lambda b, c: inception.inception_bn(b, c, 4, 3, 5, 2, 3, "avg", 2), 5, 6, 14),
    "bn_stride2": (lambda b, c: inception.inception_bn(b, c, 0, 3, 5, 2, 3, "max", 0, 2), 5, 6, 13),
    "v3_figure5": (lambda b, c: inception.inception_a(b, c, 8), 7, 5, 64 + 64 + 96 + 8),
    "v3_figure6": (lambda b, c: inception.inception_c(b, c, 6), 7, 9, 4 * 192),
    "v3_figure7": (lambda b, c: inception.inception_e(b, c), 7, 4, 2048),
    "v3_reduction_35": (lambda b, c: inception.reduction_b(b, c), 7, 9, 384 + 96 + 7),
    "v3_reduction_17": (lambda b, c: inception.reduction_d(b, c), 7, 9, 320 + 192 + 7),
}
REDUCED = {"bn_stride2": 3, "v3_reduction_35": 4, "v3_reduction_17": 4}


@pytest.mark.parametrize("name", BLOCKS)
def test_block_matches_pytorch(name, backend, rng):
    torch = pytest.importorskip("torch")
    build, cin, size, cout = BLOCKS[name]
    bn = name != "naive_2a"  # the naive module as GoogLeNet published it: conv + bias, ReLU
    b = inception.Builder(bn=bn, dtype=np.float64, backend=backend, seed=3,
                          ceil_mode=not name.startswith("v3"))
    block = build(b, cin)
    x = rng.standard_normal((2, cin, size, size))
    out = REDUCED.get(name, size)
    assert block.output_shape(x.shape) == (2, cout, out, out)
    assert_matches_torch(block, x, [rng.standard_normal((2, cout, out, out))], torch)


def test_builder_without_bn_gives_biased_convolutions():
    unit = inception.Builder(bn=False).conv(3, 4, 1)
    assert [n for n, _ in unit.children] == ["conv", "relu"] and set(unit.params) == {"conv.weight", "conv.bias"}
    unit = inception.Builder(bn=True).conv(3, 4, 1)
    assert set(unit.params) == {"conv.weight", "bn.gamma", "bn.beta"}
    assert set(unit.buffers) == {"bn.rolling_mean", "bn.rolling_variance"}
