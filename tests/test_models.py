"""GoogLeNet, BN-Inception and Inception v3: stage shapes against the papers' tables, parameter
counts computed here from the tables, native against NumPy on a GoogLeNet-shaped network, a
finite-difference check in float64, and a small network overfitting one batch."""
import numpy as np
import pytest
from test_batchnorm import finite_difference

from inception_native import losses, models, native, optim, reference
from inception_native.layers import ConvUnit


def conv(k, cin, cout, bn):
    """Parameters of a k x k (or (kh, kw)) convolution: bias, or BN's gamma and beta, when bn."""
    kh, kw = (k, k) if isinstance(k, int) else k
    return kh * kw * cin * cout + (2 * cout if bn else cout)


def fc(cin, cout):
    return cin * cout + cout


# ---- GoogLeNet: Table 1 of Szegedy et al. 2014 ----------------------------------------------

# (output H=W, output channels) of every row of Table 1 at 224x224
TABLE1_SHAPES = {
    "conv1": (112, 64), "pool1": (56, 64), "conv2": (56, 192), "pool2": (28, 192),
    "inception_3a": (28, 256), "inception_3b": (28, 480), "pool3": (14, 480),
    "inception_4a": (14, 512), "inception_4b": (14, 512), "inception_4c": (14, 512),
    "inception_4d": (14, 528), "inception_4e": (14, 832), "pool4": (7, 832),
    "inception_5a": (7, 832), "inception_5b": (7, 1024),
}
# Table 1's columns: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
TABLE1_ROWS = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64),
               (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
               (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128),
               (384, 192, 384, 48, 128, 128)]


def googlenet_params(num_classes, bn, aux):
    total = conv(7, 3, 64, bn) + conv(1, 64, 64, bn) + conv(3, 64, 192, bn)
    cin = 192
    for c1, c3r, c3, c5r, c5, pp in TABLE1_ROWS:
        total += (conv(1, cin, c1, bn) + conv(1, cin, c3r, bn) + conv(3, c3r, c3, bn)
                  + conv(1, cin, c5r, bn) + conv(5, c5r, c5, bn) + conv(1, cin, pp, bn))
        cin = c1 + c3 + c5 + pp
    total += fc(1024, num_classes)
    # section 5: 5x5/3 average pooling to 4x4x512 (4a) and 4x4x528 (4d), 1x1 conv 128, fc 1024
    for channels in (512, 528) if aux else ():
        total += conv(1, channels, 128, bn) + fc(4 * 4 * 128, 1024) + fc(1024, num_classes)
    return total


def test_googlenet_stage_shapes_are_table1s():
    shapes = models.googlenet().stage_shapes()
    for name, (size, channels) in TABLE1_SHAPES.items():
        assert shapes[name] == (1, channels, size, size), name
    assert shapes["classifier"] == (1, 1000)


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("aux", [False, True])
def test_googlenet_parameter_count_follows_table1(bn, aux):
    net = models.googlenet(bn=bn, aux=aux)
    assert net.num_params() == googlenet_params(1000, bn, aux)
    assert models.googlenet(num_classes=10, bn=bn, aux=aux).num_params() == googlenet_params(10, bn, aux)
    if not (bn or aux):
        assert net.num_params() == 6_998_552  # "about 7M": the paper's 5x5 branches, no LRN
    assert "inception_4d" in net.summary() and f"{net.num_params():,}" in net.summary()


# ---- BN-Inception: Figure 5 of Ioffe & Szegedy 2015 -------------------------------------------

# #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool proj (0: pass through), out size
V2_ROWS = {"inception_3a": (64, 64, 64, 64, 96, 32, 28), "inception_3b": (64, 64, 96, 64, 96, 64, 28),
           "inception_3c": (0, 128, 160, 64, 96, 0, 14), "inception_4a": (224, 64, 96, 96, 128, 128, 14),
           "inception_4b": (192, 96, 128, 96, 128, 128, 14), "inception_4c": (160, 128, 160, 128, 160, 128, 14),
           "inception_4d": (96, 128, 192, 160, 192, 128, 14), "inception_4e": (0, 128, 192, 192, 256, 0, 7),
           "inception_5a": (352, 192, 320, 160, 224, 128, 7), "inception_5b": (352, 192, 320, 192, 224, 128, 7)}
V2_CHANNELS = {"inception_3a": 256, "inception_3b": 320, "inception_3c": 576, "inception_4a": 576,
               "inception_4b": 576, "inception_4c": 608, "inception_4d": 608, "inception_4e": 1056,
               "inception_5a": 1024, "inception_5b": 1024}


def test_inception_v2_follows_its_table():
    net = models.inception_v2()
    shapes = net.stage_shapes()
    total, cin = conv(7, 3, 64, True) + conv(1, 64, 64, True) + conv(3, 64, 192, True), 192
    for name, (c1, c3r, c3, d3r, d3, pp, size) in V2_ROWS.items():
        assert shapes[name] == (1, V2_CHANNELS[name], size, size), name
        total += (conv(1, cin, c1, True) if c1 else 0) + conv(1, cin, c3r, True) + conv(3, c3r, c3, True)
        total += conv(1, cin, d3r, True) + conv(3, d3r, d3, True) + conv(3, d3, d3, True)
        total += conv(1, cin, pp, True) if pp else 0
        cin = V2_CHANNELS[name]
    assert net.num_params() == total + fc(1024, 1000)


# ---- Inception v3: 1512.00567 as released ------------------------------------------------------

def test_inception_v3_grids_are_the_papers():
    shapes = models.inception_v3().stage_shapes()
    assert shapes["pool2"] == (1, 192, 35, 35)
    assert shapes["mixed_5d"] == (1, 288, 35, 35)
    assert shapes["mixed_6a"] == shapes["mixed_6e"] == (1, 768, 17, 17)
    assert shapes["mixed_7a"] == (1, 1280, 8, 8)
    assert shapes["mixed_7c"] == (1, 2048, 8, 8)
    assert shapes["classifier"] == (1, 1000)


def v3_params(num_classes, aux):
    c = lambda k, i, o: conv(k, i, o, True)  # noqa: E731 - BN after every convolution
    stem = c(3, 3, 32) + c(3, 32, 32) + c(3, 32, 64) + c(1, 64, 80) + c(3, 80, 192)

    def fig5(cin, pool):  # 1x1 64 | 1x1 48, 5x5 64 | 1x1 64, 3x3 96, 3x3 96 | pool, 1x1
        return c(1, cin, 64) + c(1, cin, 48) + c(5, 48, 64) + c(1, cin, 64) + c(3, 64, 96) + c(3, 96, 96) + c(1, cin, pool)

    def fig6(n):  # 1x1 192 | 1x1 n, 1x7 n, 7x1 192 | 1x1 n, (7x1, 1x7) x 2 | pool, 1x1 192
        return (c(1, 768, 192) + c(1, 768, n) + c((1, 7), n, n) + c((7, 1), n, 192) + c(1, 768, n)
                + 3 * c((7, 1), n, n) + c((1, 7), n, 192) + c(1, 768, 192))

    def fig7(cin):  # 1x1 320 | 1x1 384, 1x3 + 3x1 384 | 1x1 448, 3x3 384, 1x3 + 3x1 384 | pool, 1x1 192
        split = c((1, 3), 384, 384) + c((3, 1), 384, 384)
        return c(1, cin, 320) + c(1, cin, 384) + split + c(1, cin, 448) + c(3, 448, 384) + split + c(1, cin, 192)

    reduce35 = c(3, 288, 384) + c(1, 288, 64) + c(3, 64, 96) + c(3, 96, 96)
    reduce17 = c(1, 768, 192) + c(3, 192, 320) + c(1, 768, 192) + c((1, 7), 192, 192) + c((7, 1), 192, 192) + c(3, 192, 192)
    total = (stem + fig5(192, 32) + fig5(256, 64) + fig5(288, 64) + reduce35
             + sum(fig6(n) for n in (128, 160, 160, 192)) + reduce17 + fig7(1280) + fig7(2048)
             + fc(2048, num_classes))
    return total + (c(1, 768, 128) + c(5, 128, 768) + fc(768, num_classes) if aux else 0)


@pytest.mark.parametrize("aux", [False, True])
def test_inception_v3_parameter_count(aux):
    net = models.inception_v3(aux=aux)
    assert net.num_params() == v3_params(1000, aux)
    if aux:
        assert net.num_params() == 27_161_264  # torchvision's inception_v3, as its docs list it
    assert models.inception_v3(num_classes=7, aux=aux).num_params() == v3_params(7, aux)


def test_input_size_and_shape_errors():
    assert models.googlenet(input_size=96).stage_shapes()["inception_5b"] == (1, 1024, 3, 3)
    with pytest.raises(ValueError, match="pooling window 5x5 is larger than the padded input 4x4"):
        models.googlenet(input_size=64)  # the auxiliary heads' 5x5 pooling needs 4a >= 5x5
    assert models.inception_v3(aux=False, input_size=75).stage_shapes()["mixed_7c"] == (1, 2048, 1, 1)
    with pytest.raises(ValueError, match="kernel 5x5 is larger than the padded input"):
        models.inception_v3(input_size=298)  # the auxiliary head's 5x5 conv needs the 17x17 grid
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3, 96, 96\)"):
        models.googlenet(input_size=96).forward(np.zeros((1, 3, 64, 64), np.float32))


# ---- whole networks run --------------------------------------------------------------------

def googlenet_step(backend, bn, x, labels):
    net = models.googlenet(num_classes=10, bn=bn, input_size=x.shape[-1], dtype=x.dtype,
                           backend=backend, seed=11)
    loss = losses.CrossEntropy(label_smoothing=0.1, backend=backend)
    outputs = [o.copy() for o in net.forward(x)]
    value = loss.forward(outputs, labels)
    net.backward(loss.backward())
    return net.grads, outputs, value


# ||native - numpy|| / ||numpy|| per tensor. In float64 the two agree to ~1e-13. In float32 the
# rounding of two summation orders is amplified by BatchNorm on a 2-image batch with 3x3 maps
# (channels of tiny variance): up to ~1e-2 on a few gradients; without BN ~1e-6, except where
# two nearly equal maxima of a pooling window swap places by an ulp (with 2 threads, one does
# here): the gradient takes the other's route, ~1e-2 of the first layers' gradients.
TOLERANCE = {(np.float32, False): 3e-2, (np.float32, True): 3e-2,
             (np.float64, False): 1e-10, (np.float64, True): 1e-10}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("bn", [False, True], ids=["paper", "bn"])
def test_googlenet_native_and_numpy_agree(bn, dtype, rng):
    x = rng.standard_normal((2, 3, 96, 96)).astype(dtype)
    labels = np.array([3, 7])
    grads_a, outputs_a, loss_a = googlenet_step(native, bn, x, labels)
    grads_b, outputs_b, loss_b = googlenet_step(reference, bn, x, labels)
    assert len(outputs_a) == 3  # main and the two auxiliary heads
    tol = TOLERANCE[dtype, bn]
    for o, p in zip(outputs_a, outputs_b):
        np.testing.assert_allclose(o, p, rtol=min(tol, 1e-4), atol=min(tol, 1e-4) * np.abs(p).max())
    assert loss_a == pytest.approx(loss_b, rel=min(tol, 1e-5))
    assert list(grads_a) == list(grads_b)
    for name, g in grads_a.items():
        assert np.linalg.norm(g - grads_b[name]) <= tol * np.linalg.norm(grads_b[name]), name


def test_stage_outputs_have_the_shapes_summary_reports(rng):
    net = models.googlenet(num_classes=10, input_size=96, bn=True).eval()
    x = rng.standard_normal((2, 3, 96, 96)).astype(np.float32)
    expected = net.stage_shapes(batch=2)
    for name, stage in net.stages:
        x = stage.forward(x)
        assert x.shape == expected[name], name
    assert len(net.forward(rng.standard_normal((2, 3, 96, 96)).astype(np.float32))) == 1  # eval: no heads
    assert net["inception_4a"] is dict(net.stages)["inception_4a"]
    net.train().forward(rng.standard_normal((2, 3, 96, 96)).astype(np.float32))
    with pytest.raises(ValueError, match="dys must hold 3 gradients"):
        net.backward([np.ones((2, 10), np.float32)])
    assert net.backward([np.ones((2, 10), np.float32)] * 3) is None  # the images' gradient is skipped


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_small_inception_network_passes_finite_differences(backend, rng):
    net = models.tiny_inception(num_classes=4, in_channels=2, input_size=8, dropout=0,
                                dtype=np.float64, backend=backend, seed=2)
    x = rng.standard_normal((3, 2, 8, 8))
    labels = np.array([0, 3, 1])
    loss = losses.CrossEntropy(label_smoothing=0.1, backend=backend)
    f = lambda: loss.forward(net.forward(x), labels)  # noqa: E731
    f()
    net.backward(loss.backward())
    grads = {k: g.copy() for k, g in net.grads.items()}
    params = net.params
    for name in rng.choice(sorted(params), 8, replace=False):
        p = params[name].reshape(-1)
        for i in rng.choice(p.size, min(3, p.size), replace=False):
            one = p[i:i + 1]  # a view: finite_difference perturbs the parameter itself
            numeric = finite_difference(f, one)[0]
            assert grads[name].reshape(-1)[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (name, i)


def test_a_small_network_overfits_one_batch(rng):
    net = models.tiny_inception(num_classes=5, in_channels=1, input_size=12, dropout=0, seed=4)
    x = rng.standard_normal((10, 1, 12, 12)).astype(np.float32)
    labels = np.arange(10) % 5
    loss = losses.CrossEntropy()
    opt = optim.SGD(net.params, net.grads, lr=0.05, momentum=0.9)
    start = loss.forward(net.forward(x), labels)
    for _ in range(40):
        value = loss.forward(net.forward(x), labels)
        net.backward(loss.backward())
        opt.step()
    assert value < start / 10


@pytest.mark.parametrize("bn", [False, True], ids=["paper", "bn"])
def test_whole_googlenet_matches_pytorch_autograd(bn, rng):
    """Main and auxiliary logits, every parameter gradient: against the same network (same
    weights, same dropout masks) differentiated by PyTorch, in float64."""
    torch = pytest.importorskip("torch")
    from torch_mirror import assert_matches_torch

    net = models.googlenet(num_classes=5, bn=bn, input_size=80, dtype=np.float64, seed=5)
    x = rng.standard_normal((2, 3, 80, 80))
    assert_matches_torch(net, x, [rng.standard_normal((2, 5)) for _ in range(3)], torch, rtol=1e-8)


def test_darknet_flavour_networks_agree_across_backends_and_train(rng):
    x = rng.standard_normal((4, 1, 12, 12)).astype(np.float32)
    labels = np.arange(4) % 5
    runs = []
    for backend in (native, reference):
        net = models.tiny_inception(num_classes=5, input_size=12, bn="darknet", dropout=0, backend=backend)
        assert net["conv1"]["bn"].flavour == "darknet"
        loss = losses.CrossEntropy(backend=backend)
        opt = optim.SGD(net.params, net.grads, lr=0.05, backend=backend)
        values = []
        for _ in range(3):
            values.append(loss.forward(net.forward(x), labels))
            net.backward(loss.backward())
            opt.step()
        runs.append(values)
    assert runs[0] == pytest.approx(runs[1], rel=1e-4)
    assert runs[0][-1] < runs[0][0]
    assert models.inception_v2(bn="darknet").num_params() == models.inception_v2().num_params()
    with pytest.raises(ValueError, match="bn must be False, True or one of"):
        models.googlenet(bn="keras")


# ---- fused conv (+BN) + ReLU units against their composition ---------------------------------

def three_sgd_steps(net, fused, x, labels):
    """Outputs, gradients and weights of three SGD steps (momentum, weight decay) with the
    ConvUnits fused or run as the composition of their layers."""
    for _, layer, _ in net.layers():
        if isinstance(layer, ConvUnit):
            layer.fused = fused
    loss = losses.CrossEntropy(aux_weight=0.3)
    opt = optim.SGD(net.params, net.grads, lr=0.01, momentum=0.9, weight_decay=1e-4)
    seen = []
    for _ in range(3):
        outputs = [o.copy() for o in net.forward(x)]
        loss.forward(outputs, labels)
        net.backward(loss.backward())
        seen.append((outputs, {k: g.copy() for k, g in net.grads.items()}))
        opt.step()
    return seen, {k: p.copy() for k, p in net.params.items()}


FUSED_NETS = {"tiny_bn": lambda d: models.tiny_inception(4, 1, 12, dropout=0, dtype=d, seed=2),
              "tiny_darknet": lambda d: models.tiny_inception(4, 1, 12, bn="darknet", dropout=0,
                                                              dtype=d, seed=2),
              "googlenet": lambda d: models.googlenet(4, input_size=80, dropout=0, dtype=d, seed=2)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", FUSED_NETS)
def test_fused_units_train_as_their_composition(name, dtype, rng):
    """Three SGD steps with ReLU fused into the convolution or BatchNorm give the outputs,
    gradients and updated weights of the layers run one by one (float64 to 1e-10, float32 to
    the native-vs-NumPy tolerance above). Fused units stack a block's 1x1 convolutions, whose
    sums then run in another order: bit for bit on some machines, not on others (a 32 KB L1's
    smaller blocks), where float32's rounding differences, amplified by three steps through
    ReLU and max-pool ties, can reach percents; so float32 compares the first step only."""
    build = FUSED_NETS[name]
    x = rng.standard_normal((3, *build(dtype).input_shape)).astype(dtype)
    labels = np.array([0, 3, 1])
    fused = three_sgd_steps(build(dtype), True, x, labels)
    plain = three_sgd_steps(build(dtype), False, x, labels)
    tol = TOLERANCE[dtype, True]
    steps = 3 if dtype == np.float64 else 1
    for (outs_a, grads_a), (outs_b, grads_b) in zip(fused[0][:steps], plain[0][:steps]):
        for o, p in zip(outs_a, outs_b):
            np.testing.assert_allclose(o, p, rtol=min(tol, 1e-4), atol=min(tol, 1e-4) * np.abs(p).max())
        for key, g in grads_a.items():
            assert np.linalg.norm(g - grads_b[key]) <= tol * np.linalg.norm(grads_b[key]), key
    for key, p in fused[1].items() if steps == 3 else ():  # the weights after three steps
        assert np.linalg.norm(p - plain[1][key]) <= tol * np.linalg.norm(plain[1][key]), key


def test_fused_units_keep_the_relu_child_without_buffers(rng):
    """The ReLU of a fused unit never runs: no output or gradient buffer of its own."""
    net = models.tiny_inception(4, 1, 12, dropout=0)
    net.forward(rng.standard_normal((2, 1, 12, 12)).astype(np.float32))
    net.backward([np.ones((2, 4), np.float32)])
    units = [layer for _, layer, _ in net.layers() if isinstance(layer, ConvUnit)]
    assert units and all(u["relu"]._y is None and u["relu"]._dx is None for u in units)
    assert "conv1.conv.weight" in net.params and "conv1.bn.gamma" in net.params


# ---- the gradient pool: dL/dx arrays lent while a container's backward runs ------------------

def test_a_training_step_holds_the_gradients_in_flight_not_one_per_layer(rng):
    """Inside a network's backward no layer keeps a dL/dx buffer: the thread's gradient pool
    lends each one and takes it back once read, so it holds a few arrays, far fewer bytes than
    one gradient per layer, and the next step reuses the same arrays (no new allocations)."""
    from inception_native import layers

    net = models.googlenet(4, input_size=80, dropout=0, seed=2)
    x, labels = rng.standard_normal((2, 3, 80, 80)).astype(np.float32), np.array([0, 3])
    loss = losses.CrossEntropy(aux_weight=0.3)

    def step():
        loss.forward(net.forward(x), labels)
        net.backward(loss.backward())

    layers._scratch.pool = layers._GradientPool()  # this thread's, without earlier tests' arrays
    step()
    pool = layers._gradient_pool()
    arrays = dict(pool.free)
    leaves = net.leaves(2)
    assert all(getattr(layer, "_dx", None) is None for _, layer, _ in leaves)
    one_per_layer = sum(4 * np.prod(shape) for _, layer, shape in leaves if layer.takes_dx or
                        not isinstance(layer, layers.Conv2d))
    assert not pool.lent and pool.depth == 0
    assert len(arrays) <= 6 and sum(a.nbytes for a in arrays.values()) < one_per_layer / 5
    step()
    assert pool.free.keys() == arrays.keys()


def test_the_outermost_container_keeps_what_it_returns(rng):
    """What a container's backward returns stays valid (it keeps that memory out of the pool)
    until its own next backward, whatever other containers run on the thread meanwhile, and
    equals the gradient of its layers run one by one on their own buffers."""
    from inception_native import layers

    def block():
        conv = layers.Conv2d(3, 4, 3, padding=1, rng=np.random.default_rng(1))
        return layers.Sequential(conv, layers.ReLU(), layers.MaxPool2d(2), layers.Flatten())
    a, b = block(), block()
    x, dy = rng.standard_normal((2, 3, 6, 6)).astype(np.float32), rng.standard_normal((2, 36)).astype(np.float32)
    a.forward(x)
    dx = a.backward(dy)
    first = dx.copy()
    b.forward(x)
    b.backward(2 * dy)
    np.testing.assert_array_equal(dx, first)
    alone = 2 * dy.reshape(2, 4, 3, 3)
    for _, layer in reversed(b.children[:-1]):  # the same layers outside a container: own buffers
        alone = layer.backward(alone)
    np.testing.assert_array_equal(alone, 2 * first)
    again = a.backward(dy)
    assert np.shares_memory(again, a._kept)
    np.testing.assert_array_equal(again, first)


def test_a_backward_lends_the_activations_it_has_read_to_its_gradients(rng):
    """Once BatchNorm's backward has read a unit's convolution output, that array holds gradients
    for the rest of the backward (_GradientPool.borrow): here the middle unit's dL/dx. The
    gradients equal the composition's, layer by layer on their own arrays; a second backward
    without a forward raises instead of reading the overwritten activations."""
    from inception_native import layers

    def block(fused):
        units = [layers.ConvUnit(layers.Conv2d(c, o, 1, bias=False, dtype=np.float64,
                                               rng=np.random.default_rng(c)),
                                 layers.BatchNorm(o, dtype=np.float64), layers.ReLU())
                 for c, o in ((3, 8), (8, 8), (8, 4))]
        for unit in units:
            unit.fused = fused
        return layers.Sequential(*units)
    x, dy = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 4, 5, 5))
    fused, composed = block(True), block(False)
    fused.forward(x), composed.forward(x)
    middle = fused["1"].conv
    run, middle_dx = middle.backward, []
    middle.backward = lambda d, **into: middle_dx.append(run(d, **into)) or middle_dx[-1]
    layers._scratch.pool = layers._GradientPool()  # this thread's, without earlier tests' arrays
    dx = fused.backward(dy)
    assert np.shares_memory(middle_dx[0], middle._y)
    np.testing.assert_array_equal(dx, composed.backward(dy))
    for (name, g), (_, h) in zip(fused.grads.items(), composed.grads.items()):
        np.testing.assert_array_equal(g, h, err_msg=name)
    with pytest.raises(RuntimeError, match="backward called twice"):
        fused.backward(dy)
    stacked = layers.Concat(*[layers.ConvUnit(layers.Conv2d(3, o, 1, bias=False), layers.BatchNorm(o),
                                              layers.ReLU()) for o in (2, 5)])
    assert stacked.stacked_heads
    stacked.forward(x.astype(np.float32))
    stacked.backward(np.ones((2, 7, 5, 5), np.float32))
    with pytest.raises(RuntimeError, match="Concat: backward called twice"):
        stacked.backward(np.ones((2, 7, 5, 5), np.float32))


def test_the_outermost_result_is_copied_out_of_a_borrowed_array():
    """A borrowed array goes back to its layer when the outermost backward ends: a result that
    lives in one is copied out (its layer's next forward writes over it), the pool keeps none."""
    from inception_native import layers

    pool, activation = layers._GradientPool(), np.arange(24.0).reshape(2, 3, 4)
    pool.depth = 1
    pool.borrow(activation)
    gradient = pool.take((4, 6), np.float64)
    assert np.shares_memory(gradient, activation)
    gradient[...] = 7.0
    pool.depth = 0
    result, kept = pool.settle(gradient, None)
    assert not np.shares_memory(result, activation) and kept is None
    np.testing.assert_array_equal(result, np.full((4, 6), 7.0))
    assert not pool.borrowed and not pool.free and not pool.lent


def test_a_handed_over_gradient_takes_batchnorms_dx_in_place(rng):
    """A container hands the lent dy it will not read again to the unit it calls: that unit's
    BatchNorm (exact) writes dL/dx over it. The same gradients as the composition's, layer by
    layer on their own arrays (float64, bit for bit)."""
    from inception_native import layers

    def block(fused):
        units = [layers.ConvUnit(layers.Conv2d(c, 4, 3, padding=1, bias=False, dtype=np.float64,
                                               rng=np.random.default_rng(c)),
                                 layers.BatchNorm(4, dtype=np.float64), layers.ReLU()) for c in (3, 4)]
        for unit in units:
            unit.fused = fused
        return layers.Sequential(*units, layers.MaxPool2d(2))
    x, dy = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 4, 3, 3))
    fused, composed = block(True), block(False)
    bn = fused["1"].bn
    seen = []
    run = bn.backward
    bn.backward = lambda d, dx=None: seen.append(dx is d) or run(d, dx=dx)
    fused.forward(x), composed.forward(x)
    np.testing.assert_array_equal(fused.backward(dy), composed.backward(dy))
    assert seen == [True]
    for (name, g), (_, h) in zip(fused.grads.items(), composed.grads.items()):
        np.testing.assert_array_equal(g, h, err_msg=name)
