"""layers: BatchNorm's backends agree, both flavours train and infer, gradients are dL/dx; the
other layers against PyTorch; Concat's in-place branches and stacked 1x1 heads."""
import numpy as np
import pytest
from test_batchnorm import finite_difference

from inception_native import inception, layers, native, reference


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


# ---- a Concat's 1x1 heads run as one stacked convolution -----------------------------------

STACKED = {  # name: (build(builder), BN, input shape, heads stacked)
    "v1_conv_bias": (lambda b: inception.inception_v1(b, 6, 3, 2, 4, 1, 3, 2), False, (2, 6, 5, 5), 3),
    "v1_exact_bn": (lambda b: inception.inception_v1(b, 6, 3, 2, 4, 1, 3, 2), True, (2, 6, 5, 5), 3),
    "v1_darknet_bn": (lambda b: inception.inception_v1(b, 6, 3, 2, 4, 1, 3, 2), "darknet", (3, 6, 5, 5), 3),
    # and the average pooling's projection, which pools after its convolution
    "v3_figure5": (lambda b: inception.inception_a(b, 6, 3), True, (2, 6, 5, 5), 4),
    "v3_figure5_darknet_bn": (lambda b: inception.inception_a(b, 6, 3), "darknet", (2, 6, 5, 5), 4),
    "v3_reduction_17": (lambda b: inception.reduction_d(b, 6), True, (2, 6, 9, 9), 2),
}


def _stacked_and_separate(name, dtype, backend):
    build, bn, shape, _ = STACKED[name]
    blocks = [build(inception.Builder(bn=bn, dtype=dtype, backend=backend, seed=3)) for _ in range(2)]
    blocks[1].stack_heads = False
    return blocks, shape


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", STACKED)
def test_stacked_heads_give_the_numbers_of_separate_convolutions(name, dtype, backend, rng):
    """Over two training steps and an eval forward: the same outputs, dL/dx (summed in another
    order, a pool projection's pooling after its convolution) and gradients as the units run
    one by one; the units' own weights are read at each forward (a change between steps counts)
    and their own grads written."""
    (stacked, separate), shape = _stacked_and_separate(name, dtype, backend)
    assert len(stacked.stacked_heads.members) == STACKED[name][3] and separate.stacked_heads is None
    tol = 1e-10 if dtype == np.float64 else 1e-5

    def close(ours, theirs, what, scale=None):  # atol: tol times the largest value (sums cancel)
        scale = np.abs(theirs).max() if scale is None else scale
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * scale, err_msg=what)

    x = rng.standard_normal(shape).astype(dtype)
    for step in range(2):
        ys = [block.forward(x).copy() for block in (stacked, separate)]
        close(*ys, "y")
        dy = rng.standard_normal(ys[0].shape).astype(dtype)
        close(*[block.backward(dy).copy() for block in (stacked, separate)], "dx")
        scale = max(np.abs(grad).max() for grad in separate.grads.values())
        for key, grad in separate.grads.items():  # BN's with the block's largest gradient
            close(stacked.grads[key], grad, key, scale if ".bn." in key else None)
        for block in (stacked, separate):  # an update between steps, as an optimiser makes
            for key, p in block.params.items():
                p -= dtype(0.1) * block.grads[key]
    if STACKED[name][1] != "darknet":
        close(*[block.eval().forward(x).copy() for block in (stacked, separate)], "eval y")


def test_stacked_heads_backward_matches_finite_differences(rng):
    """dL/dx and a stacked head's dL/dw and dL/dbias of L = sum(dy * y), GoogLeNet's module
    without BN, float64, against central differences."""
    block = inception.inception_v1(inception.Builder(bn=False, dtype=np.float64, seed=4), 3, 2, 2, 3, 1, 2, 2)
    assert len(block.stacked_heads.members) == 3
    x = rng.standard_normal((2, 3, 4, 4))
    dy = rng.standard_normal(block.output_shape(x.shape))
    loss = lambda: float((block.forward(x) * dy).sum())
    block.forward(x)
    dx = block.backward(dy).copy()
    head = block.children[2][1].children[0][1].conv  # the 5x5 branch's reduction
    grads = {name: head.grads[name].copy() for name in ("weight", "bias")}
    np.testing.assert_allclose(dx, finite_difference(loss, x), rtol=1e-6, atol=1e-8)
    for name, grad in grads.items():
        np.testing.assert_allclose(grad, finite_difference(loss, head.params[name]), rtol=1e-6,
                                   atol=1e-8, err_msg=name)


def test_a_stacked_pool_projection_matches_finite_differences(rng):
    """Inception v3's 35x35 module (BN, training mode), float64: dL/dx and the pool
    projection's dL/dw, which it computes from its convolution's output pooled, against central
    differences of L = sum(dy * y)."""
    block = inception.inception_a(inception.Builder(dtype=np.float64, seed=5), 3, 2)
    projection = block.children[3][1]
    assert isinstance(projection, layers.PoolProjection) and projection in dict(block.stacked_heads.members).values()
    x = rng.standard_normal((2, 3, 5, 5))
    dy = rng.standard_normal(block.output_shape(x.shape))
    loss = lambda: float((block.forward(x) * dy).sum())
    block.forward(x)
    dx, dw = block.backward(dy).copy(), projection.conv.grads["weight"].copy()
    for ours, of in ((dx, x), (dw, projection.conv.params["weight"])):  # atol: BN's curvature
        np.testing.assert_allclose(ours, finite_difference(loss, of), rtol=1e-6,
                                   atol=1e-8 * np.abs(ours).max())


def test_only_alike_1x1_heads_are_stacked_and_their_parameters_are_views():
    """Heads with and without BN and a 3x3 head are not stacked together; the stacked units'
    parameters and gradients become views of the stacked convolution's (weights kept). A unit
    made unfused, or a first layer that skips dL/dx, or a parameter replaced by another array
    turns the stacking off."""
    b, bn = inception.Builder(bn=False), inception.Builder(bn=True)
    units = [b.conv(4, 2, 1), bn.conv(4, 3, 1), b.conv(4, 2, 3, padding=1), b.conv(4, 5, 1)]
    weights = [unit.conv.params["weight"].copy() for unit in units]
    alone = b.conv(4, 1, 1)  # a Sequential of a head alone: nothing after it to hand it to
    assert layers.Concat(units[0], layers.Sequential(alone)).stacked_heads is None
    block = layers.Concat(*units)
    stack = block.stacked_heads
    assert [i for i, _ in stack.members] == [0, 3]
    np.testing.assert_array_equal(stack.conv.params["weight"], np.concatenate([weights[0], weights[3]]))
    for i, unit in stack.members:
        for kind in ("params", "grads"):
            assert all(np.shares_memory(a, getattr(stack.conv, kind)[n]) for n, a in getattr(unit.conv, kind).items())
        np.testing.assert_array_equal(unit.conv.params["weight"], weights[i])
    assert not np.shares_memory(units[1].conv.params["weight"], stack.conv.params["weight"])
    for change, undo in ((lambda: setattr(units[3], "fused", False), lambda: setattr(units[3], "fused", True)),
                         (lambda: setattr(units[3].conv, "input_grad", False),
                          lambda: setattr(units[3].conv, "input_grad", True))):
        change()
        assert block.stacked_heads is None
        undo()
        assert block.stacked_heads is stack
    units[0].conv.params["bias"] = units[0].conv.params["bias"].copy()
    assert block.stacked_heads is None
