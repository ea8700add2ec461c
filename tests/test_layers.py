"""layers.BatchNorm: both backends agree, both flavours train and infer, gradients are dL/dx."""
import numpy as np
import pytest

from inception_native import layers, native, reference


@pytest.mark.parametrize("flavour", layers.FLAVOURS)
def test_backends_agree_over_training_steps(flavour, rng):
    pair = [layers.BatchNorm(6, flavour, backend=b, dtype=np.float64) for b in (native, reference)]
    for step in range(3):
        x = rng.standard_normal((4, 6, 3, 3)) * (step + 1)
        dy = rng.standard_normal(x.shape)
        outputs = [(bn.forward(x).copy(), bn.backward(dy).copy()) for bn in pair]
        for a, b in zip(*outputs):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        for name in ("gamma", "beta"):
            np.testing.assert_allclose(pair[0].grads[name], pair[1].grads[name], rtol=1e-10)
    np.testing.assert_allclose(pair[0].rolling_variance, pair[1].rolling_variance, rtol=1e-12)


@pytest.mark.parametrize("flavour", layers.FLAVOURS)
def test_grads_are_per_backward_not_accumulated(flavour, rng):
    bn = layers.BatchNorm(3, flavour, dtype=np.float64)
    x, dy = rng.standard_normal((5, 3, 4)), rng.standard_normal((5, 3, 4))
    bn.forward(x)
    bn.backward(dy)
    first = bn.grads["beta"].copy()
    bn.backward(dy)
    np.testing.assert_allclose(bn.grads["beta"], first, rtol=1e-12)
    np.testing.assert_allclose(first, dy.sum(axis=(0, 2)), rtol=1e-12)


def test_eval_mode_normalises_with_rolling_statistics(rng):
    bn = layers.BatchNorm(2, dtype=np.float64)
    bn.rolling_mean[:] = [1.0, -2.0]
    bn.rolling_variance[:] = [4.0, 0.5]
    x = rng.standard_normal((3, 2, 5))
    y = bn.eval().forward(x)
    expected = (x - bn.rolling_mean[None, :, None]) / np.sqrt(bn.rolling_variance[None, :, None] + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    dx = bn.backward(np.ones_like(x))  # frozen statistics: dx = dy * gamma * invstd
    np.testing.assert_allclose(dx, np.ones_like(x) / np.sqrt(bn.rolling_variance[None, :, None] + 1e-5))


def test_misuse_is_reported():
    with pytest.raises(ValueError, match="flavour must be one of"):
        layers.BatchNorm(3, flavour="keras")
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layers.BatchNorm(3).backward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(TypeError, match="gamma has dtype float32, expected float64 like x"):
        layers.BatchNorm(3).forward(np.zeros((2, 3, 4)))


# ---- the other layers: against PyTorch's autograd, on both backends --------------------------

def _layer_cases(seed=5):
    rng = np.random.default_rng(seed)
    f64 = dict(dtype=np.float64, rng=rng)
    return {  # name: (layer factory taking the backend, input shape)
        "conv_bias": (lambda be: layers.Conv2d(3, 4, (3, 2), (2, 1), 1, backend=be, **f64), (2, 3, 7, 6)),
        "conv_1x1_no_bias": (lambda be: layers.Conv2d(3, 5, 1, bias=False, backend=be, **f64), (2, 3, 4, 4)),
        "linear": (lambda be: layers.Linear(6, 3, backend=be, **f64), (4, 6)),
        "relu": (lambda be: layers.ReLU(be), (2, 3, 4, 4)),
        "maxpool_ceil": (lambda be: layers.MaxPool2d(3, 2, ceil_mode=True, backend=be), (2, 3, 8, 8)),
        "maxpool_pad": (lambda be: layers.MaxPool2d(3, 1, 1, backend=be), (2, 3, 5, 5)),
        "avgpool_ceil": (lambda be: layers.AvgPool2d(5, 3, ceil_mode=True, backend=be), (2, 3, 14, 14)),
        "avgpool_pad": (lambda be: layers.AvgPool2d(3, 1, 1, backend=be), (2, 3, 5, 5)),
        "global_avg_pool": (lambda be: layers.GlobalAvgPool(be), (2, 3, 5, 4)),
        "adaptive_avg_pool": (lambda be: layers.AdaptiveAvgPool2d((4, 3), be), (2, 3, 14, 8)),
        "flatten": (lambda be: layers.Flatten(), (2, 3, 2, 2)),
        "dropout": (lambda be: layers.Dropout(0.4, seed=9, backend=be), (3, 50)),
        "concat_sums_branch_gradients": (lambda be: layers.Concat(
            layers.Conv2d(3, 2, 1, backend=be, **f64),
            layers.Sequential(layers.Conv2d(3, 4, 3, padding=1, backend=be, **f64), layers.ReLU(be)),
            layers.MaxPool2d(3, 1, 1, backend=be), backend=be), (2, 3, 5, 5)),
        "concat_of_fused_units": (lambda be: layers.Concat(
            layers.ConvUnit(layers.Conv2d(3, 2, 1, backend=be, **f64), None, layers.ReLU(be)),
            layers.ConvUnit(layers.Conv2d(3, 4, 3, padding=1, bias=False, backend=be, **f64),
                            layers.BatchNorm(4, backend=be, dtype=np.float64), layers.ReLU(be)),
            layers.MaxPool2d(3, 1, 1, backend=be), backend=be), (2, 3, 5, 5)),
    }


@pytest.mark.parametrize("name", list(_layer_cases()))
def test_layer_matches_pytorch(name, backend, rng):
    torch = pytest.importorskip("torch")
    from torch_mirror import assert_matches_torch

    make, shape = _layer_cases()[name]
    layer = make(backend)
    out_shape = layer.output_shape(shape)
    x = rng.standard_normal(shape)
    assert layer.forward(x).shape == out_shape
    assert_matches_torch(layer, x, [rng.standard_normal(out_shape)], torch)


def test_concat_branches_add_their_input_gradients_into_one_array(rng):
    """A Concat's convolution branches write dL/dx into its array (no buffer of their own);
    every convolution a thread runs shares one workspace."""
    conv_a, conv_b = layers.Conv2d(3, 2, 1), layers.Conv2d(3, 4, 3, padding=1)
    block = layers.Concat(conv_a, layers.MaxPool2d(3, 1, 1), layers.Sequential(conv_b, layers.ReLU()))
    assert [b.takes_dx for _, b in block.children] == [True, False, True]
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    block.forward(x)
    dx = block.backward(np.ones((2, 9, 5, 5), np.float32))
    assert conv_a._dx is None and conv_b._dx is None and np.shares_memory(dx, block._kept)
    workspaces = [c._planned(x)["workspace"] for c in (conv_a, conv_b)]
    assert np.shares_memory(*workspaces)


def test_fused_branches_write_into_and_read_from_the_concatenation(rng):
    """Branches ending in a conv + ReLU unit, with or without (exact) BN, write their channels
    of the Concat's output and read their channels of its dy in place; a darknet-flavour BN
    unit's branch goes through copies. The same values as the composition's."""
    def block(fused):
        units = [layers.ConvUnit(layers.Conv2d(3, 2, 1, rng=np.random.default_rng(1)), None, layers.ReLU()),
                 layers.ConvUnit(layers.Conv2d(3, 4, 1, bias=False, rng=np.random.default_rng(2)),
                                 layers.BatchNorm(4), layers.ReLU()),
                 layers.ConvUnit(layers.Conv2d(3, 3, 1, bias=False, rng=np.random.default_rng(3)),
                                 layers.BatchNorm(3, "darknet"), layers.ReLU())]
        for unit in units:
            unit.fused = fused
        return layers.Concat(units[0], layers.MaxPool2d(3, 1, 1), *units[1:]), units
    (fused, (plain, with_bn, darknet)), (composed, _) = block(True), block(False)
    assert [b.gives_out for _, b in fused.children] == [True, False, True, False]
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    y = fused.forward(x)
    assert np.shares_memory(plain.conv._y, y) and plain.conv._buffer is None
    assert np.shares_memory(with_bn.bn._y, y) and with_bn.bn._buffer is None
    assert not np.shares_memory(darknet.bn._y, y)
    np.testing.assert_array_equal(y, composed.forward(x))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(fused.backward(dy), composed.backward(dy))
    np.testing.assert_array_equal(with_bn.bn.grads["gamma"], composed.children[2][1].bn.grads["gamma"])
    with pytest.raises(ValueError, match="exact flavour"):
        darknet.bn.forward(x[:, :3], out=np.empty((2, 3, 5, 5), np.float32))


def test_outputs_are_reused_buffers_for_the_same_shape(rng):
    conv = layers.Conv2d(2, 3, 3, padding=1)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    y1, dx1 = conv.forward(x), conv.backward(np.ones((2, 3, 5, 5), np.float32))
    assert conv.forward(x) is y1 and conv.backward(np.ones((2, 3, 5, 5), np.float32)) is dx1
    assert conv.forward(x[:1].copy()) is not y1


def test_dropout_is_seeded_and_the_identity_in_eval(rng):
    x = rng.standard_normal((4, 1000))
    a, b = layers.Dropout(0.5, seed=1, backend=native), layers.Dropout(0.5, seed=1, backend=reference)
    first = a.forward(x).copy()
    np.testing.assert_array_equal(first, b.forward(x))
    assert set(np.unique(a._mask)) == {0.0, 2.0}
    assert not np.array_equal(a.forward(x), first)  # the next call draws a new mask
    assert int(a.buffers["step"]) == 2
    assert a.eval().forward(x) is x and a.backward(x) is x


def test_container_names_its_children_parameters():
    seq = layers.Sequential(layers.Conv2d(1, 2, 1), layers.ReLU(), layers.BatchNorm(2), names=["c", "r", "n"])
    assert list(seq.params) == ["c.weight", "c.bias", "n.gamma", "n.beta"]
    assert all(seq.params[k] is seq["c"].params[k[2:]] for k in ("c.weight", "c.bias"))
    assert list(seq.buffers) == ["n.rolling_mean", "n.rolling_variance"]
    assert not seq.eval().training and not seq["n"].training and not seq["r"].training


def test_layer_misuse_is_reported():
    conv = layers.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="x has 2 channels, the convolution expects 3"):
        conv.forward(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        conv.forward(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(TypeError, match="dtype float32, expected float64"):
        conv.forward(np.zeros((1, 3, 5, 5)))
    with pytest.raises(ValueError, match="must have shape \\(batch, 6\\)"):
        layers.Linear(6, 2).forward(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="pooling window 3x3 is larger than the padded input 2x2"):
        layers.MaxPool2d(3, 2).forward(np.zeros((1, 1, 2, 2), np.float32))
    for layer in (layers.Conv2d(3, 4, 3), layers.Linear(2, 2), layers.ReLU(), layers.MaxPool2d(2), layers.AvgPool2d(2),
                  layers.GlobalAvgPool(), layers.AdaptiveAvgPool2d(1), layers.Flatten(),
                  layers.Dropout(), layers.Concat(layers.ReLU())):
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(np.zeros((1, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="2 names for 1 layers"):
        layers.Sequential(layers.ReLU(), names=["a", "b"])
