"""net.freeze(): the frozen forward equals eval().forward (BatchNorm folded per flavour, ReLU
fused, no argmax), keeps its snapshot of the weights, plans each batch size into one arena, and
refuses bad input clearly; torchvision's weights give torchvision's logits through it."""
import time

import numpy as np
import pytest

from inception_native import conv, freeze, layers, models, native, reference
from torchvision_fixture import CASES, read, seeded_images, seeded_state_dict

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def relative_error(actual, expected):
    return np.abs(actual - expected).max() / np.abs(expected).max()


def randomised(net, seed=0):
    """net with BatchNorm statistics, scales and biases away from their initial values (so that
    folding them is tested), in training mode."""
    rng = np.random.default_rng(seed)
    for name, value in {**net.params, **net.buffers}.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("rolling_mean", "beta", "bias"):
            value[...] = rng.standard_normal(value.shape) * 0.1
        elif leaf in ("rolling_variance", "gamma"):
            value[...] = rng.uniform(0.5, 2, value.shape)
    return net.train()


BUILDS = {
    "tiny": lambda dtype: models.tiny_inception(dtype=dtype),
    "tiny_darknet": lambda dtype: models.tiny_inception(bn="darknet", dtype=dtype),
    "googlenet": lambda dtype: models.googlenet(input_size=64, num_classes=10, aux=False, dtype=dtype),
    "googlenet_torchvision": lambda dtype: models.googlenet(
        layout="torchvision", input_size=96, num_classes=10, transform_input=True, dtype=dtype),
    "inception_v2_darknet": lambda dtype: models.inception_v2(input_size=64, num_classes=10,
                                                              bn="darknet", dtype=dtype),
    "inception_v3": lambda dtype: models.inception_v3(input_size=75, num_classes=10, aux=False,
                                                      dtype=dtype),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(BUILDS))
def test_frozen_equals_eval_forward(name, dtype):
    net = randomised(BUILDS[name](dtype))
    frozen = net.freeze(max_batch=4)  # from training mode: the frozen net is inference all the same
    assert net.training
    rng = np.random.default_rng(1)
    for batch in (1, 6, 1):  # 6: two chunks, of 4 and 2 images
        x = rng.standard_normal((batch, *net.input_shape)).astype(dtype)
        (out,) = frozen.forward(x)
        expected = net.eval().forward(x)[0]
        net.train()
        assert out.dtype == dtype and out.shape == expected.shape
        assert relative_error(out, expected) < TOL[dtype]
    assert {key[0] for key in frozen.plans} == {1, 4, 2}


def test_batchnorm_and_relu_are_fused_and_pools_keep_no_argmax():  # ReLU: in the conv's store
    graph = randomised(BUILDS["googlenet_torchvision"](np.float32)).freeze().graph
    ops = [node.op for node in graph.nodes]
    assert "relu" not in ops and ops.count("affine") == 1  # transform_input alone
    assert all(node.attrs["relu"] for node in graph.nodes if node.op == "conv")
    assert "layer" not in ops and "maxpool" in ops


@pytest.mark.parametrize("batch", [1, 3])  # 3 with max_batch 2: two plans, both profiled
def test_a_profiled_forward_counts_each_kind_of_step_and_changes_nothing(batch, rng):
    frozen = freeze.freeze(BUILDS["googlenet"](np.float32).eval(), max_batch=2)
    x = rng.standard_normal((batch, 3, 64, 64)).astype(np.float32)
    y = frozen.forward(x)[0]
    spent, start = {}, time.perf_counter()
    profiled = frozen.forward(x, spent=spent)[0]
    whole = time.perf_counter() - start
    np.testing.assert_array_equal(profiled, y)
    assert {"conv 7x7/2", "conv 1x1", "conv 3x3", "conv 5x5", "max pool", "linear"} <= set(spent)
    assert all(t > 0 for t in spent.values()) and sum(spent.values()) < whole


def test_step_kinds_name_the_kernel_and_a_stride_other_than_one():
    assert freeze.conv_kind(7, 7, 2, 2) == "conv 7x7/2"
    assert freeze.conv_kind(1, 7, 1, 1) == "conv 1x7"
    assert freeze.conv_kind(3, 3, 2, 1) == "conv 3x3/2x1"
    graph = freeze.lower(models.tiny_inception(), (1, 32, 32), np.float32)
    assert {freeze.step_kind(n) for n in graph.nodes if n.op == "maxpool"} == {"max pool"}


def test_the_frozen_net_keeps_its_snapshot():
    net = randomised(BUILDS["tiny"](np.float32))
    frozen = net.freeze()
    x = np.random.default_rng(2).standard_normal((2, *net.input_shape)).astype(np.float32)
    before = net.eval().forward(x)[0].copy()
    for value in {**net.params, **net.buffers}.values():
        value[...] = value * 1.5 + 0.25
    assert relative_error(frozen.forward(x)[0], before) < 1e-5
    assert relative_error(net.freeze().forward(x)[0], net.forward(x)[0]) < 1e-5  # freeze again


def test_arrays_share_one_arena_by_liveness():
    net = BUILDS["googlenet"](np.float32)
    plan = net.freeze().plan(4)
    owned = [a for v, a in plan.arrays.items() if v not in plan.views]
    separate = sum(a.nbytes for a in owned + list(plan.workspaces.values()))
    assert plan.bytes < separate / 3  # most arrays reuse dead ones' bytes
    for array in plan.arrays.values():
        assert np.shares_memory(array, plan.arena)


def test_every_convolution_runs_on_weights_packed_once():
    frozen = BUILDS["tiny"](np.float32).freeze()
    plan = frozen.plan(2)
    assert plan.conv_plans and plan.packed.keys() == plan.conv_plans.keys()
    for step, packed in plan.packed.items():
        weight = plan.graph.nodes[step].attrs["weight"]
        np.testing.assert_array_equal(packed, plan.conv_plans[step].pack(weight))
    x = np.random.default_rng(0).standard_normal((2, *frozen.input_shape)).astype(np.float32)
    first = frozen.forward(x)[0].copy()
    for packed in plan.packed.values():
        packed[:] = 0  # the frozen forward reads these, not the weights
    assert not np.array_equal(frozen.forward(x)[0], first)


def test_steps_on_the_arena_are_checked_once_and_the_input_at_every_run():
    frozen = BUILDS["tiny"](np.float32).freeze()
    plan = frozen.plan(2)
    steps = [(step, node) for step, node in enumerate(plan.graph.nodes)
             if node.op in ("conv", "maxpool", "avgpool", "global_avgpool")]
    assert {step for step, node in steps if 0 not in node.inputs} == plan.calls.keys()
    assert len(plan.calls) == len(steps) - 1  # the first convolution reads the input
    with pytest.raises(ValueError, match="x must have shape"):
        frozen.forward(np.ones((2, 1, 3, 3), np.float32))


def test_pointwise_convolutions_are_stacked_and_concats_written_in_place_at_batch_one():
    net = BUILDS["googlenet"](np.float32)
    frozen = net.freeze(layout="nchw")
    nodes = frozen.graph.nodes
    slices = [n for n in nodes if n.op == "slice"]
    assert len(slices) == 3 * 9  # each block's 1x1 branch and its two reductions
    plan = frozen.plan(1)
    concats = [n for n in nodes if n.op == "concat"]
    for n in concats:  # every branch in place, the 1x1 branch too: the last channels of the
        # stacked output, which lies just below the concat in one array
        assert [plan.views[v][0] == n.output for v in n.inputs] == [False, True, True, True]
        stacked, channels = plan.views[n.inputs[0]]
        assert channels.stop == frozen.graph.shapes[stacked][0]
        assert plan.views[stacked][0] == plan.views[n.output][0]
        assert np.shares_memory(plan.arrays[n.inputs[0]], plan.arrays[n.output])
    assert all(n.output in plan.views for n in slices)
    ran = [n for _, n in plan.steps]
    assert not any(n in ran for n in concats + slices)  # nothing left to copy
    plan = frozen.plan(2)  # convolutions and concats read channel slices at any batch
    for n in concats:  # the convolutions store into their slice at any batch, the pool's 1x1 too
        assert [plan.views[v][0] == n.output for v in n.inputs] == [False, True, True, True]
    assert all(n.output in plan.views for n in slices)
    ran = [n for _, n in plan.steps]
    assert all(n in ran for n in concats)  # each copies its 1x1 branch (a strided slice)
    assert not any(n in ran for n in slices)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    assert relative_error(frozen.forward(x)[0], net.eval().forward(x)[0]) < 1e-5
    plan = BUILDS["googlenet"](np.float32).freeze(layout="nchwc").plan(2)  # block slices at any batch
    blocked = [n for n in slices if n.inputs[0] in plan.graph.blocked]  # all but 4b's, 4c's at 16
    assert blocked and all(n.output in plan.views for n in blocked)
    if native.nchwc_block() == 8:
        assert blocked == slices
    for n in (n for n in concats if n.inputs[0] in plan.graph.blocked):
        assert [plan.views[v][0] == n.output for v in n.inputs] == [False, True, True, True]


def blocked_and_nchw(net, batches, backend=None):
    """The outputs of net's blocked plan and its NCHW plan, and eval().forward's, for random
    batches of each size; and the blocked Frozen."""
    frozen = [freeze.Frozen(net, max_batch=4, backend=backend, layout=layout)
              for layout in ("nchwc", "nchw")]
    rng = np.random.default_rng(12)
    for batch in batches:
        x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
        yield [f.forward(x)[0] for f in frozen] + [net.eval().forward(x)[0]]
    yield frozen[0]


@pytest.mark.parametrize("name", ["googlenet", "googlenet_torchvision", "inception_v3", "tiny"])
def test_the_blocked_plan_equals_the_nchw_plan_and_eval_forward(name):
    """float32 plans run in the blocked layout NCHWc wherever the steps have blocked kernels:
    GoogLeNet and Inception v3 from the first convolution (reading the plain input) to the
    global average pool (giving a plain (B, C)); the tiny net's channels are partly no multiple
    of the block (GoogLeNet's too at a block of 16: 4b's and 4c's 24-channel 5x5 reductions),
    and reorders join its blocked and NCHW regions."""
    net = randomised(BUILDS[name](np.float32))
    *outputs, frozen = blocked_and_nchw(net, [1, 3, 5])  # 5: chunks of 4 and 1
    for blocked, nchw, expected in outputs:
        assert relative_error(blocked, expected) < 1e-5 and relative_error(nchw, expected) < 1e-5
        assert relative_error(blocked, nchw) < 1e-5
    blk = native.nchwc_block()
    assert {key[2] for key in frozen.plans} == {blk}
    plan, graph = frozen.plan(3), frozen.plan(3).graph
    ops = [n.op for n in graph.nodes]
    aligned = all(graph.shapes[n.output][0] % blk == 0 for n in graph.nodes if n.op == "conv")
    if not aligned:  # the tiny net; GoogLeNet's 24-channel 5x5 reductions (4b, 4c) at blk 16
        # blocked where the channels allow, reorders where a blocked region ends
        assert 0 < ops.count("to_nchw") and 0 < ops.count("to_nchwc")
        assert 0 < len(plan.blocked_steps) < len(ops)
        return
    convs = [step for step, n in enumerate(graph.nodes) if n.op == "conv"]
    assert "to_nchw" not in ops and "to_nchwc" not in ops and set(convs) <= plan.blocked_steps
    assert graph.nodes[convs[0]].attrs["packed"].ndim == 5  # the plain-input variant
    assert all(graph.nodes[s].attrs["packed"].ndim == 6 for s in convs[1:])
    assert {n.op for s, n in enumerate(graph.nodes) if s not in plan.blocked_steps} <= {
        "linear", "affine", "flatten"}
    for step in plan.blocked_steps:
        node = graph.nodes[step]
        if node.op != "global_avgpool":
            assert plan.arrays[node.output].shape[-1] == blk


def test_the_blocked_plan_runs_on_the_twins_too():
    net = randomised(models.googlenet(input_size=64, num_classes=10, aux=False, backend=reference))
    *outputs, frozen = blocked_and_nchw(net, [2], backend=reference)
    for blocked, nchw, expected in outputs:
        assert relative_error(blocked, expected) < 1e-5 and relative_error(nchw, expected) < 1e-5
    assert frozen.plan(2).blocked_steps
    native_frozen = freeze.Frozen(net, backend=native)
    x = np.random.default_rng(13).standard_normal((2, *net.input_shape)).astype(np.float32)
    assert relative_error(native_frozen.forward(x)[0], frozen.forward(x)[0]) < 1e-5


def test_blocks_of_16_leave_unaligned_stacked_convolutions_nchw():
    """On an AVX-512 conv path the block is 16: GoogLeNet's 4e and 5a stack 1x1 convolutions
    whose slices (at 272 and 256 channels) are not whole blocks of 16: those stay NCHW."""
    net = randomised(BUILDS["googlenet"](np.float32))
    frozen = net.freeze(layout="nchwc")
    x = np.random.default_rng(14).standard_normal((2, *net.input_shape)).astype(np.float32)
    before = conv.conv_isa()
    try:
        conv.set_conv_isa("portable512")
        out, plan = frozen.forward(x)[0], frozen.plan(2)
    finally:
        conv.set_conv_isa(before)
    assert plan.graph.block == 16 and relative_error(out, net.eval().forward(x)[0]) < 1e-5
    stacked_plain = [n for n in plan.graph.nodes if n.op == "conv" and n.output not in plan.graph.blocked]
    assert len(stacked_plain) == 2 and all(n.attrs["weight"].shape[2:] == (1, 1) for n in stacked_plain)
    assert {key[2] for key in frozen.plans} == {16}
    frozen.forward(x)
    assert {key[2] for key in frozen.plans} == {16, native.nchwc_block()}  # a plan per block


def test_float64_and_the_default_layout_plan_nchw_throughout():
    net = BUILDS["tiny"](np.float64)
    assert not net.freeze().plan(2).blocked_steps
    net = BUILDS["tiny"](np.float32)
    assert not net.freeze().plan(2).blocked_steps and net.freeze(layout="nchwc").plan(2).blocked_steps
    with pytest.raises(ValueError, match="layout must be one of"):
        net.freeze(layout="nhwc")


def test_unknown_layers_run_their_own_forward_from_a_snapshot():
    class Doubling(layers.Layer):
        def __init__(self):
            self.factor, self.backend = np.array(2, np.float32), reference  # a module: shared

        def forward(self, x):
            assert not self.training
            return x * self.factor

    doubling = Doubling()
    seq = layers.Sequential(layers.Conv2d(2, 3, 3, padding=1), doubling, layers.ReLU())
    frozen = seq.freeze((2, 5, 5))
    doubling.factor[...] = 7
    x = np.random.default_rng(3).standard_normal((2, 2, 5, 5)).astype(np.float32)
    expected = np.maximum(seq["0"].forward(x) * 2, 0)
    np.testing.assert_allclose(frozen.forward(x), expected, rtol=1e-6)


def test_the_reference_backend_freezes_too():
    net = randomised(models.tiny_inception(backend=reference, input_size=16))
    x = np.random.default_rng(4).standard_normal((2, *net.input_shape)).astype(np.float32)
    assert relative_error(net.freeze().forward(x)[0], net.eval().forward(x)[0]) < 1e-5


def test_bad_input_is_refused_clearly():
    frozen = BUILDS["tiny"](np.float32).freeze()
    with pytest.raises(ValueError, match="shape"):
        frozen.forward(np.zeros((2, 1, 16, 16), np.float32))
    with pytest.raises(ValueError, match="shape"):
        frozen.forward(np.zeros((1, 32, 32), np.float32))
    with pytest.raises(TypeError, match="float32"):
        frozen.forward(np.zeros((2, 1, 32, 32)))
    with pytest.raises(TypeError, match="ndarray"):
        frozen.forward([[0.0]])
    with pytest.raises(ValueError, match="input_shape"):
        layers.ReLU().freeze()


def test_zero_images_give_an_empty_result():
    (out,) = BUILDS["tiny"](np.float32).freeze().forward(np.zeros((0, 1, 32, 32), np.float32))
    assert out.shape == (0, 10) and out.dtype == np.float32


@pytest.mark.parametrize("arch", list(CASES))
def test_torchvision_weights_give_torchvisions_logits_frozen(arch):
    from inception_native import io

    logits = read()[arch][1]
    net = io.torchvision_model(arch, seeded_state_dict(read()[arch][0]), transform_input=CASES[arch][1])
    (out,) = net.freeze().forward(seeded_images(arch))
    assert relative_error(out, logits) < 1e-4
    assert (out.argmax(1) == logits.argmax(1)).all()


def test_predict_digits_runs_in_batches_through_the_frozen_net(tmp_path, capsys):
    from argparse import Namespace

    from inception_native import io, train

    net = randomised(train.build(16)).eval()
    io_path = tmp_path / "digits.npz"
    io.save(io_path, net, epoch=1, size=16)
    digits = np.random.default_rng(6).integers(0, 17, (7, 8, 8)).astype(np.float64)
    np.save(tmp_path / "seven.npy", digits)
    train.predict(Namespace(input=str(tmp_path / "seven.npy"), checkpoint=str(io_path), top=1), batch=3)
    lines = capsys.readouterr().out.splitlines()
    best = net.forward(train.prepare(digits, 16))[0].argmax(1)
    assert [line.split(": ")[0] for line in lines] == [str(n) for n in range(7)]
    assert [int(line.split(": ")[1].split()[0]) for line in lines] == list(best)
    np.save(tmp_path / "none.npy", np.zeros((0, 8, 8)))
    with pytest.raises(SystemExit, match="N >= 1"):  # no digits: said clearly
        train.predict(Namespace(input=str(tmp_path / "none.npy"), checkpoint=str(io_path), top=1))


def test_predict_images_reads_directories_in_batches(tmp_path, capsys, monkeypatch):
    Image = pytest.importorskip("PIL.Image")
    from inception_native import __main__ as cli
    from inception_native import imagenet
    from torchvision_fixture import FIXTURE_SHAPES

    np.savez(tmp_path / "w.npz", **seeded_state_dict(FIXTURE_SHAPES["googlenet"]))
    (tmp_path / "images").mkdir()
    rng = np.random.default_rng(7)
    for n in range(3):
        pixels = rng.integers(0, 256, (240, 250, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "images" / f"{n}.png")
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    monkeypatch.setattr(imagenet, "BATCH", 2)
    assert cli.main(["predict", "--weights", str(tmp_path / "w.npz"), "--top", "1",
                     str(tmp_path / "images")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[::2] == [str(tmp_path / "images" / f"{n}.png") for n in range(3)]


@pytest.mark.parametrize("cfg", ["googlenet.cfg", "digits.cfg"])
def test_darknet_networks_freeze_routes_into_concatenations(cfg):
    """A models.Graph from a Darknet cfg (stages reading earlier stages through [route]):
    routes become concatenations, Darknet's own layers (leaky, softmax ...) run their forward."""
    import os

    from inception_native import io

    path = os.path.join(os.path.dirname(io.__file__), "..", "darknet_cfgs", cfg)
    net = randomised(io.load_darknet(path))
    frozen = net.freeze()
    x = np.random.default_rng(8).standard_normal((2, *net.input_shape)).astype(np.float32)
    assert relative_error(frozen.forward(x)[0], net.eval().forward(x)[0]) < 1e-5
    if cfg == "googlenet.cfg":
        assert any(n.op == "concat" for n in frozen.graph.nodes)


# expected steps worked out by hand from Darknet's output size (H + padding - size) // stride + 1
# and max_pool2d's with padding // 2 on both sides; only size 2 stride 1 (its windows one past
# the right and bottom edges, the map's size kept) has no max_pool2d twin
@pytest.mark.parametrize("size, stride, padding, op", [
    (2, 2, None, "maxpool"), (3, 2, None, "maxpool"), (2, 1, None, "layer"), (3, 1, None, "maxpool"),
    (3, 2, 0, "maxpool"), (3, 2, 2, "maxpool"), (5, 3, 3, "maxpool")])
@pytest.mark.parametrize("side", [7, 8])
def test_darknet_pools_run_max_pool2d_wherever_its_windows_are_theirs(size, stride, padding, op, side):
    """A [maxpool] becomes the argmax-free max_pool2d step (floor or ceil mode) when its windows
    are Darknet's; otherwise it runs its own forward: the same values either way."""
    pool = layers.DarknetMaxPool(size, stride, padding)
    frozen = layers.Sequential(pool).freeze((2, side, side))
    assert [n.op for n in frozen.graph.nodes] == [op]
    x = np.random.default_rng(9).standard_normal((3, 2, side, side)).astype(np.float32)
    np.testing.assert_array_equal(frozen.forward(x), pool.forward(x))


def test_darknet_activations_and_softmax_are_steps_of_their_own():
    net = randomised(io_load_digits())
    frozen = net.freeze()
    ops = {n.op for n in frozen.graph.nodes}
    assert {"leaky_relu", "softmax", "maxpool"} <= ops and "layer" not in ops
    x = np.random.default_rng(10).standard_normal((3, *net.input_shape)).astype(np.float32)
    assert relative_error(frozen.forward(x)[0], net.eval().forward(x)[0]) < 1e-6
    seq = layers.Sequential(layers.Conv2d(2, 3, 3), layers.Logistic())
    frozen = seq.freeze((2, 6, 6))
    assert [n.op for n in frozen.graph.nodes] == ["conv", "logistic"]
    x = np.random.default_rng(11).standard_normal((3, 2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(frozen.forward(x), seq.forward(x), rtol=1e-6)


def io_load_digits():
    import os

    from inception_native import io

    return io.load_darknet(os.path.join(os.path.dirname(io.__file__), "..", "darknet_cfgs", "digits.cfg"))
