"""torchvision's GoogLeNet and Inception v3 weights in our models (io.load_torchvision and
friends): logits and auxiliary heads against torchvision's own (from the fixture made by
tests/torchvision_fixture.py, and live where torchvision is installed), lossless round trips,
and clear errors on weights that do not fit."""
import numpy as np
import pytest

from inception_native import io, models
from torchvision_fixture import CASES, HEADS, read, seeded_images, seeded_state_dict

FIXTURE = read()


def relative_error(actual, expected):
    return np.abs(actual - expected).max() / np.abs(expected).max()


def our_outputs(net, images):
    """Eval-mode logits, and the auxiliary heads' logits (stacked) on their stages' outputs."""
    net.eval()
    x, aux = images, []
    for name, stage in net.stages:
        x = stage.forward(x)
        if name in net.heads:
            aux.append(net.heads[name].forward(x).copy())
    return x.copy(), np.stack(aux)


@pytest.fixture(scope="module", params=list(CASES))
def imported(request):
    """(arch, its fixture state dict, our model with it loaded)."""
    arch = request.param
    state = seeded_state_dict(FIXTURE[arch][0])
    return arch, state, io.torchvision_model(arch, state, transform_input=CASES[arch][1])


def test_logits_and_heads_match_torchvision(imported):
    arch, _, net = imported
    logits, aux = our_outputs(net, seeded_images(arch))
    assert len(net.heads) == len(HEADS[arch])
    assert relative_error(logits, FIXTURE[arch][1]) < 1e-4
    assert relative_error(aux, FIXTURE[arch][2]) < 1e-4
    assert (logits.argmax(1) == FIXTURE[arch][1].argmax(1)).all()


def test_export_gives_back_the_state_dict_and_imports_losslessly(imported):
    arch, state, net = imported
    exported = io.export_torchvision(net)
    assert exported.keys() == state.keys()
    for name, value in state.items():
        assert exported[name].dtype == value.dtype and np.array_equal(exported[name], value), name
    other = io.torchvision_model(arch, exported)
    mine, theirs = {**net.params, **net.buffers}, {**other.params, **other.buffers}
    for name in io.torchvision_names(net):
        assert np.array_equal(mine[name], theirs[name]), name


def test_the_wrong_input_transform_changes_the_logits(imported):
    arch, state, _ = imported
    flipped = io.torchvision_model(arch, state, transform_input=not CASES[arch][1])
    assert relative_error(our_outputs(flipped, seeded_images(arch))[0], FIXTURE[arch][1]) > 1e-2


def test_weights_that_do_not_fit_raise_naming_the_tensor_and_change_nothing():
    state = seeded_state_dict(FIXTURE["googlenet"][0])
    net = models.googlenet(layout="torchvision", seed=3)
    before = {k: v.copy() for k, v in {**net.params, **net.buffers}.items()}
    bad_shape = dict(state, **{"inception4b.branch3.1.conv.weight": np.zeros((64, 24, 5, 5), np.float32)})
    nan = dict(state, **{"conv1.bn.running_var": np.full(64, np.nan, np.float32)})
    cases = [
        ({k: v for k, v in state.items() if k != "inception3a.branch2.0.bn.weight"},
         r"missing inception3a\.branch2\.0\.bn\.weight"),
        (bad_shape, r"inception4b\.branch3\.1\.conv\.weight has shape \(64, 24, 5, 5\), the model.s is \(64, 24, 3, 3\)"),
        (dict(state, extra=np.zeros(1, np.float32)), "not in the model: extra"),
        (nan, "conv1.bn.running_var must hold finite"),
        ({**state, "fc.bias": np.zeros(1000, np.int64)}, "fc.bias must hold finite floating-point"),
    ]
    for weights, message in cases:
        with pytest.raises(ValueError, match=message):
            io.load_torchvision(net, weights)
    for name, value in {**net.params, **net.buffers}.items():
        assert np.array_equal(value, before[name]), name
    with pytest.raises(ValueError, match="fc.weight has shape"):  # 10 classes, weights for 1000
        io.load_torchvision(models.googlenet(num_classes=10, layout="torchvision"), state)
    with pytest.raises(ValueError, match="missing aux1"):  # heads built, weights without them
        io.load_torchvision(net, {k: v for k, v in state.items() if not k.startswith("aux")})


def test_models_outside_torchvisions_layout_are_refused():
    for net in (models.googlenet(), models.googlenet(bn=True),
                models.googlenet(layout="torchvision", bn="darknet"),
                models.inception_v3(bn="darknet", aux=False, input_size=75)):
        with pytest.raises(ValueError, match="not in torchvision's layout"):
            io.export_torchvision(net)
    with pytest.raises(ValueError, match="bn must not be False"):
        models.googlenet(layout="torchvision", bn=False)
    with pytest.raises(ValueError, match="arch must be one of"):
        io.torchvision_model("resnet50", {})
    with pytest.raises(TypeError, match="weights must be a state dict"):
        io.load_torchvision(models.googlenet(layout="torchvision"), [1, 2])


def test_weights_without_heads_build_a_model_without_heads():
    state = seeded_state_dict(FIXTURE["googlenet"][0])
    net = io.torchvision_model("googlenet", {k: v for k, v in state.items() if not k.startswith("aux")})
    assert net.heads == {} and net.layout == "torchvision googlenet"
    assert "transform_input" == net.stages[0][0]


def test_npz_and_pth_files_load(tmp_path):
    state = seeded_state_dict(FIXTURE["googlenet"][0])
    np.savez(tmp_path / "w.npz", **state)
    net = io.torchvision_model("googlenet", tmp_path / "w.npz")
    assert np.array_equal(net.params["inception_5b.branch0.conv.weight"],
                          state["inception5b.branch1.conv.weight"])
    torch = pytest.importorskip("torch")
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "w.pth")
    from_pth = io.torchvision_model("googlenet", tmp_path / "w.pth")
    assert all(np.array_equal(a, b) for a, b in zip(from_pth.params.values(), net.params.values()))


@pytest.mark.parametrize("arch", list(CASES))
def test_live_against_torchvisions_own_initialisation(arch):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    size, transform_input, batch = CASES[arch]
    theirs = getattr(torchvision.models, arch)(weights=None, aux_logits=True, init_weights=True,
                                               transform_input=not transform_input).eval()
    images = np.random.default_rng(1).standard_normal((batch, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(images)).numpy()
    ours = io.torchvision_model(arch, theirs.state_dict(), transform_input=not transform_input)
    assert relative_error(our_outputs(ours, images)[0], expected) < 1e-4
    # the other way: our own weights, exported, load into torchvision's model (strictly)
    builder = models.googlenet if arch == "googlenet" else models.inception_v3
    mine = builder(seed=5, transform_input=not transform_input,
                   **({"layout": "torchvision"} if arch == "googlenet" else {})).eval()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in io.export_torchvision(mine).items()})
    with torch.no_grad():
        expected = theirs(torch.from_numpy(images)).numpy()
    assert relative_error(mine.forward(images)[0], expected) < 1e-4


def test_torchvision_googlenet_runs_its_heads_at_small_inputs(rng):
    # the heads pool adaptively to 4x4 whatever 4a's size (2x2 at 32x32, upsampled as PyTorch does)
    net = models.googlenet(num_classes=7, layout="torchvision", input_size=32)
    assert net.stage_shapes()["inception_4a"] == (1, 512, 2, 2)
    outputs = net.train().forward(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    assert [o.shape for o in outputs] == [(2, 7)] * 3
    assert net.backward([np.ones((2, 7), np.float32)] * 3) is None
    assert all(np.isfinite(g).all() for g in net.grads.values())
