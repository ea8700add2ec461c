"""io.export_onnx: standard operators, opset 17, a dynamic batch; onnxruntime running the file
gives our forward's logits (auxiliary heads left out: the inference graph)."""
import pathlib

import numpy as np
import pytest

from inception_native import io, layers, models
from test_freeze import randomised, relative_error

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

DIGITS_CFG = str(pathlib.Path(io.__file__).parent.parent / "darknet_cfgs" / "digits.cfg")
STANDARD = {"Conv", "Relu", "LeakyRelu", "Sigmoid", "Softmax", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Concat",
            "Gemm", "Mul", "Add", "Identity"}
BUILDS = {
    "tiny_inception": lambda: models.tiny_inception(),
    "tiny_darknet": lambda: models.tiny_inception(bn="darknet"),
    "googlenet": lambda: models.googlenet(input_size=96, num_classes=10),
    "googlenet_torchvision": lambda: models.googlenet(layout="torchvision", input_size=96,
                                                      num_classes=10, transform_input=True),
    "inception_v2": lambda: models.inception_v2(input_size=96, num_classes=10),
    "inception_v3": lambda: models.inception_v3(num_classes=10),  # 299: its aux head is built
}


@pytest.mark.parametrize("name", list(BUILDS))
def test_onnxruntime_on_the_export_gives_our_logits(name, tmp_path):
    net = randomised(BUILDS[name]())
    path = tmp_path / f"{name}.onnx"
    model = io.export_onnx(net, path)
    assert {n.op_type for n in model.graph.node} <= STANDARD
    assert model.opset_import[0].version >= 17
    assert [o.name for o in model.graph.output] == ["logits"]  # no auxiliary heads
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch in (1, 2):  # one file, any batch
        x = rng.standard_normal((batch, *net.input_shape)).astype(np.float32)
        (theirs,) = session.run(None, {"input": x})
        assert relative_error(theirs, net.eval().forward(x)[0]) < 1e-5


def test_the_batch_dimension_is_dynamic_and_the_rest_fixed(tmp_path):
    model = io.export_onnx(models.tiny_inception(), tmp_path / "t.onnx")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 32, 32]


def test_a_layer_without_an_onnx_operator_is_refused(tmp_path):
    class Custom(layers.Layer):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="Custom has no ONNX export"):
        io.export_onnx(layers.Sequential(layers.Conv2d(1, 2, 3), Custom()), tmp_path / "c.onnx",
                       input_shape=(1, 8, 8))
    assert not (tmp_path / "c.onnx").exists()


def test_an_unwritable_path_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        io.export_onnx(models.tiny_inception(), tmp_path / "missing" / "t.onnx")


def test_export_command_writes_what_onnxruntime_runs(tmp_path, capsys):
    from inception_native import __main__ as cli
    from inception_native import train
    from torchvision_fixture import FIXTURE_SHAPES, seeded_state_dict

    net = randomised(train.build(16)).eval()
    io.save(tmp_path / "digits.npz", net, epoch=1, size=16)
    weights = tmp_path / "googlenet.npz"
    np.savez(weights, **seeded_state_dict(FIXTURE_SHAPES["googlenet"]))
    x = np.random.default_rng(5).standard_normal((2, 1, 16, 16)).astype(np.float32)
    for source, expected in ((["--checkpoint", str(tmp_path / "digits.npz")], net.forward(x)[0]),
                             (["--weights", str(weights), "--model", "googlenet"], None)):
        out = tmp_path / "out.onnx"
        assert cli.main(["export", *source, "--onnx", str(out)]) == 0
        assert capsys.readouterr().out.strip() == f"wrote {out}"
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        if expected is not None:
            assert relative_error(session.run(None, {"input": x})[0], expected) < 1e-5
    assert session.get_outputs()[0].shape[1] == 1000


def test_export_command_reports_errors_in_one_line(tmp_path):
    from inception_native import __main__ as cli

    io.save(tmp_path / "digits.npz", models.tiny_inception(input_size=16), epoch=1, size=16)
    cases = [(["--checkpoint", str(tmp_path / "digits.npz"), "--onnx", str(tmp_path / "no" / "x.onnx")],
              "cannot write .*x.onnx: No such file or directory"),
             (["--checkpoint", str(tmp_path / "none.npz"), "--onnx", str(tmp_path / "x.onnx")],
              "none.npz is not a readable"),
             (["--weights", str(tmp_path / "digits.npz"), "--onnx", str(tmp_path / "x.onnx")],
              "cannot load"),
             (["--checkpoint", str(tmp_path / "digits.npz")], "needs --darknet OUT or --onnx"),
             (["--onnx", str(tmp_path / "x.onnx")], "needs --cfg, --checkpoint or"),
             (["--weights", "w.npz", "--darknet", "out"], "--darknet writes a --cfg or --checkpoint"),
             (["--checkpoint", str(tmp_path / "digits.npz"), "--weights", "w.npz", "--onnx", "x.onnx"],
              "not with --checkpoint"),
             (["--checkpoint", str(tmp_path / "digits.npz"), "--model", "googlenet", "--onnx", "x.onnx"],
              "--model goes with")]
    for argv, message in cases:
        with pytest.raises(SystemExit, match=message) as error:
            cli.main(["export", *argv])
        assert "\n" not in str(error.value.code)


# Darknet's leaky and logistic activations, its softmax, and [maxpool] windows that reach past
# the bottom and right edges (size 2 stride 1: no symmetric padding gives them)
EDGE_POOLS_CFG = """
[net]
height=9
width=9
channels=3

[convolutional]
filters=4
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=1

[maxpool]
size=3
stride=2

[convolutional]
filters=5
size=1
stride=1
pad=0
activation=logistic

[avgpool]

[softmax]
"""


@pytest.mark.parametrize("cfg", ["edge_pools", "digits"])
def test_darknet_networks_export_and_onnxruntime_gives_our_output(cfg, tmp_path):
    from inception_native import __main__ as cli

    path = tmp_path / "edge.cfg"
    path.write_text(EDGE_POOLS_CFG)
    path = path if cfg == "edge_pools" else DIGITS_CFG
    net = randomised(io.load_darknet(str(path)))
    out = tmp_path / "net.onnx"
    assert cli.main(["export", "--cfg", str(path), "--onnx", str(out)]) == 0
    model = io.export_onnx(net, out)
    ops = [n.op_type for n in model.graph.node]
    assert set(ops) <= STANDARD and {"LeakyRelu", "Softmax"} <= set(ops)
    if cfg == "edge_pools":
        pads = [list(a.ints) for n in model.graph.node if n.op_type == "MaxPool"
                for a in n.attribute if a.name == "pads"]
        assert pads[0] == [0, 0, 1, 1] and "Sigmoid" in ops
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(6).standard_normal((2, *net.input_shape)).astype(np.float32)
    assert relative_error(session.run(None, {"input": x})[0], net.eval().forward(x)[0]) < 1e-5
