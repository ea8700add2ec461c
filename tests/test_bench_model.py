"""bench_model: the PyTorch twin is the same network (same logits, same parameters); the
benchmark returns a row per pass, batch and contender."""
import numpy as np
import pytest

from inception_native import models
from inception_native.bench import model as bench_model


@pytest.mark.parametrize("build", [lambda: models.googlenet(num_classes=10, bn=True, input_size=96),
                                   lambda: models.inception_v3(num_classes=10, aux=False, input_size=75)],
                         ids=["googlenet", "inception_v3"])
def test_torch_twin_is_the_same_network(build, rng):
    torch = pytest.importorskip("torch")
    twin_module = bench_model.load_twin()
    net = build()
    twin = twin_module.build(net)
    renamed = {k.replace("stages.", "").replace("heads.", "aux_").replace("branches.", "")
               .replace("bn.weight", "bn.gamma").replace("bn.bias", "bn.beta"): v
               for k, v in twin.named_parameters()}
    assert set(renamed) == set(net.params)
    assert all(np.array_equal(renamed[k].detach().numpy(), p) for k, p in net.params.items())
    x = rng.standard_normal((2, *net.input_shape)).astype(np.float32)
    net.eval()
    twin.eval()
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x))
    ours = net.forward(x)
    assert len(ours) == len(theirs) == 1
    np.testing.assert_allclose(ours[0], theirs[0].numpy(), rtol=1e-3, atol=1e-3 * np.abs(ours[0]).max())


def test_model_benchmark_rows():
    rows = bench_model.model_benchmark("googlenet", threads=1, batches=(1,), train_batch=2, size=80,
                                       num_classes=10, use_torch=False, use_onnxruntime=False)
    assert {(r["pass"], r["batch"], r["contender"]) for r in rows} == {
        ("inference", 1, "native"), ("inference", 1, "frozen"), ("inference", 1, "frozen_nchwc"),
        ("inference", 1, "numpy"),
        ("training", 2, "native"), ("training", 2, "numpy")}
    assert all(r["images_per_s"] > 0 for r in rows)
    assert "training" in bench_model.TABLE.format(rows)


def test_inference_contenders_include_onnxruntime_and_channels_last_with_their_peak_memory():
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    rows = bench_model.model_benchmark("googlenet_torchvision", threads=1, batches=(2,), size=80,
                                       num_classes=10, numpy_twin=False, training=False, memory=True)
    assert [r["contender"] for r in rows] == ["native", "frozen", "frozen_nchwc", "pytorch", "pytorch_cl",
                                              "onnxruntime"]
    assert all(r["images_per_s"] > 0 and r["peak_MB"] > 0 for r in rows)


def test_profile_accounts_for_the_step():
    spent = bench_model.profile("googlenet", threads=1, batch=2, size=80, num_classes=10, steps=1)
    total = spent.pop(("total step", ""))
    assert {("Conv2d", "forward"), ("Conv2d", "backward"), ("MaxPool2d", "forward"), ("rest", "")} <= set(spent)
    assert sum(spent.values()) == pytest.approx(total)


def test_inference_profile_lines_up_frozen_steps_with_onnxruntime_operators():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    profiles = bench_model.profile_inference("googlenet", threads=1, batch=1, size=80,
                                             num_classes=10, rounds=1)
    ours, theirs = profiles["native"], profiles["onnxruntime"]
    convs = lambda spent: {kind for kind in spent if kind.startswith("conv")}  # noqa: E731
    assert convs(ours) == convs(theirs) == {"conv 7x7/2", "conv 1x1", "conv 3x3", "conv 5x5"}
    assert {"max pool", "linear", bench_model.WHOLE, bench_model.REST} <= set(ours) & set(theirs)
    for spent in (ours, theirs):  # the kinds and the rest make up the call
        whole = spent.pop(bench_model.WHOLE)
        assert sum(spent.values()) == pytest.approx(whole)
        assert all(t > 0 for kind, t in spent.items() if kind != bench_model.REST)


def test_format_inference_profile_puts_the_call_first_and_compares_each_kind():
    lines = bench_model.format_inference_profile(
        {"native": {"whole forward": 3.0, "conv 3x3": 2.0, "max pool": 0.5, "rest": 0.5},
         "onnxruntime": {"whole forward": 4.0, "conv 3x3": 3.0, "reorder": 0.5, "rest": 0.5}}).splitlines()
    assert lines[2].split() == ["whole", "forward", "3000.00", "4000.00", "1.33x"]
    assert lines[3].split() == ["conv", "3x3", "2000.00", "3000.00", "1.50x"]
    assert [line.split()[:2] for line in lines[4:7]] == [["max", "pool"], ["reorder", "-"], ["rest", "500.00"]]
    assert lines[5].split()[-1] == "-"


def test_training_contenders_include_pytorch_channels_last():
    pytest.importorskip("torch")
    rows = bench_model.model_benchmark("googlenet", threads=1, batches=(), train_batch=2, size=80,
                                       num_classes=10, numpy_twin=False, use_onnxruntime=False)
    assert [(r["pass"], r["contender"]) for r in rows] == [
        ("training", "native"), ("training", "pytorch"), ("training", "pytorch_cl")]
    lines = bench_model.TABLE.lines(rows)
    assert lines[2].split()[-3:-1] == ["1.00x", f"{rows[1]['seconds'] / rows[2]['seconds']:.2f}x"]


def test_format_profile_lists_each_layer_type_and_direction():
    spent = {("total step", ""): 2.0, ("Conv2d", "backward"): 1.0, ("Conv2d", "forward"): 0.5,
             ("rest", ""): 0.5}
    lines = bench_model.format_profile(spent).splitlines()
    assert lines[0].split() == ["layer", "direction", "ms", "per", "step", "%", "of", "step"]
    assert lines[3].split() == ["Conv2d", "backward", "1000.0", "50.0"]
    assert "fused conv" in lines[-1]


def test_format_rows_compares_each_model_with_its_own_pytorch_row():
    row = lambda model, contender, seconds: {"model": model, "size": 8, "threads": 1, "pass": "inference", "batch": 1,  # noqa: E731
                                             "contender": contender, "seconds": seconds,
                                             "seconds_range": [seconds, seconds], "images_per_s": 1 / seconds}
    lines = bench_model.TABLE.lines([row("a", "native", 1.0), row("a", "pytorch", 2.0),
                                     row("b", "native", 3.0), row("b", "pytorch", 1.5)])
    assert [line.split()[-2] for line in lines] == ["2.00x", "1.00x", "0.50x", "1.00x"]


def test_peak_memory_counts_the_network():
    """A fresh process grows by at least the weights it builds (GoogLeNet at 96: 6M floats)."""
    grown = bench_model.peak_memory_mb("googlenet", "native", 1, False, 96, 10)
    weights_mb = models.googlenet(num_classes=10, input_size=96).num_params() * 4 / 2**20
    assert weights_mb < grown < 50 * weights_mb


def test_neighbour_slowdown_times_each_contender_alone_and_beside_a_busy_process():
    from inception_native.bench import neighbour

    rows = neighbour.neighbour_slowdown("googlenet", threads=1, batch=1, repeats=1, size=80)
    names = {r["contender"] for r in rows}
    assert "frozen" in names and names <= {"frozen", "onnxruntime"}
    for r in rows:
        assert r["alone_s"] > 0 and r["beside_s"] > 0
        assert r["slowdown"] == pytest.approx(r["beside_s"] / r["alone_s"])
    assert "slowdown" in neighbour.TABLE.format(rows)


def test_the_busy_neighbour_spins_while_inside_and_is_gone_after():
    from inception_native.bench.neighbour import busy_neighbour

    with busy_neighbour() as n:
        assert n.process.poll() is None  # still running
    assert n.process.poll() is not None


def test_dropin_benchmark_times_pytorch_before_and_after_use_native():
    pytest.importorskip("torch")
    from inception_native.bench import dropin

    rows = dropin.dropin_benchmark("googlenet_bn", threads=1, batch=2, repeats=1, size=80)
    assert {(r["pass"], r["contender"]) for r in rows} == {
        (p, c) for p in ("inference", "training") for c in ("pytorch", "use_native")}
    assert all(r["seconds"] > 0 for r in rows)
    table = dropin.TABLE.format(rows)
    assert "use_native" in table and "1.00x" in table  # PyTorch against itself
