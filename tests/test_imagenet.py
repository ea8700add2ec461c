"""`predict --weights`: images prepared as torchvision's weights expect, top-5 ImageNet classes
printed, bad input reported."""
import re

import numpy as np
import pytest

from inception_native import __main__ as cli
from inception_native import imagenet, io
from torchvision_fixture import FIXTURE_SHAPES, seeded_state_dict

Image = pytest.importorskip("PIL.Image")


def random_image(rng, width, height):
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_prepare_resizes_the_shorter_side_crops_the_centre_and_normalises(rng):
    image = random_image(rng, 300, 260)
    resized = np.asarray(image.resize((295, 256), Image.BILINEAR), np.float64) / 255  # 300 * 256 / 260
    centre = resized[16:240, 36:260]  # top (256 - 224) / 2, left round((295 - 224) / 2) = 36
    expected = ((centre - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)
    prepared = imagenet.prepare(image, 224, 256)
    assert prepared.shape == (3, 224, 224) and prepared.dtype == np.float32
    np.testing.assert_allclose(prepared, expected, rtol=1e-5, atol=1e-5)
    assert imagenet.resized_size(200, 500, 342) == (342, 855)
    assert imagenet.prepare(image.convert("L"), 299, 342).shape == (3, 299, 299)


def test_prepare_matches_torchvisions_transforms(rng):
    torchvision = pytest.importorskip("torchvision")
    for arch, weights in (("googlenet", torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1),
                          ("inception_v3", torchvision.models.Inception_V3_Weights.IMAGENET1K_V1)):
        for width, height in ((500, 375), (333, 480)):
            image = random_image(rng, width, height)
            expected = weights.transforms()(image).numpy()
            np.testing.assert_allclose(imagenet.prepare(image, *imagenet.SIZES[arch]), expected,
                                       rtol=1e-5, atol=1e-5)
        assert weights.meta["categories"] == imagenet.class_names()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "googlenet.npz"
    np.savez(path, **seeded_state_dict(FIXTURE_SHAPES["googlenet"]))
    return path


def test_predict_prints_the_top_five_of_each_image(tmp_path, weights, rng, capsys):
    paths = [str(tmp_path / f"{n}.png") for n in range(2)]
    for n, path in enumerate(paths):
        random_image(rng, 256 + 40 * n, 256).save(path)
    assert cli.main(["predict", "--weights", str(weights), "--model", "googlenet", *paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 and lines[0] == paths[0] and lines[6] == paths[1]
    names = imagenet.class_names()
    logits = io.torchvision_model("googlenet", weights).eval().forward(
        imagenet.read_images(paths, 224, 256))[0]
    for block, row in zip((lines[1:6], lines[7:12]), logits):
        percents = [float(line.split("%")[0]) for line in block]
        assert percents == sorted(percents, reverse=True) and 0 < sum(percents) <= 100.1
        classes = [int(line.rsplit("(", 1)[1].rstrip(")")) for line in block]
        assert classes == list(np.argsort(-row, kind="stable")[:5])
        assert all(f"  {names[c]} ({c})" in line for c, line in zip(classes, block))


def test_bad_predict_input_is_reported(tmp_path, weights):
    (tmp_path / "not.png").write_text("not an image")
    ten = {k: v[:10] if k.startswith(("fc.", "aux1.fc2", "aux2.fc2")) else v
           for k, v in seeded_state_dict(FIXTURE_SHAPES["googlenet"]).items()}
    np.savez(tmp_path / "ten.npz", **ten)
    random_image(np.random.default_rng(0), 64, 64).save(tmp_path / "small.png")
    cases = [
        (["--weights", str(weights)], "needs at least one IMAGE"),
        (["--weights", str(weights), str(tmp_path / "not.png")], "cannot read image"),
        (["--weights", str(weights), str(tmp_path / "none.png")], "cannot read image"),
        (["--weights", str(tmp_path / "ten.npz"), str(tmp_path / "small.png")], "10 classes, not ImageNet's 1000"),
        (["--weights", str(tmp_path / "none.npz"), str(tmp_path / "small.png")], "none.npz is not a readable .npz file"),
        (["--weights", str(weights), "--model", "inception_v3", str(tmp_path / "small.png")], "googlenet.npz: the weights do not fit"),
        (["--weights", str(weights), "--input", "x.npy", str(tmp_path / "small.png")], "--input goes with --checkpoint"),
        (["--checkpoint", "c.npz", str(tmp_path / "small.png")], "IMAGE arguments go with --weights"),
        (["--checkpoint", "c.npz"], "needs --input"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit, match=message):
            cli.main(["predict", *argv])


def bad_weight_files(tmp_path, weights):
    """{name: (path, message)}: files predict --weights must refuse with one line."""
    state = dict(np.load(weights))
    files = {"missing": (tmp_path / "missing.pth", "No such file"),
             "directory": (tmp_path, "Is a directory"),
             "empty": (tmp_path / "empty.pth", "not a PyTorch file"),
             "text": (tmp_path / "text.pth", "not a PyTorch file"),
             "random": (tmp_path / "random.pth", "not a PyTorch file"),
             "npy named npz": (tmp_path / "one.npz", "one .npy array, not an .npz"),
             "huge header": (tmp_path / "huge.npz", r"claims \(1000000000000,\) float32"),
             "overflow": (tmp_path / "overflow.npz", "conv1.conv.weight must hold finite floating-point numbers within float32's range"),
             "negative variance": (tmp_path / "negative.npz", "conv2.bn.running_var holds negative variances")}
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "text.pth").write_text("weights\n")
    (tmp_path / "random.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    with open(tmp_path / "huge.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
    import zipfile
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.write(tmp_path / "huge.npy", "fc.weight.npy")
    overflow = state["conv1.conv.weight"].astype(np.float64)
    overflow[0, 0, 0, 0] = 1e300
    np.savez(tmp_path / "overflow.npz", **{**state, "conv1.conv.weight": overflow})
    np.savez(tmp_path / "negative.npz", **{**state, "conv2.bn.running_var": -state["conv2.bn.running_var"]})
    torch = pytest.importorskip("torch")
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")
    torch.save({"conv1.conv.weight": torch.zeros(2, dtype=torch.bfloat16)}, tmp_path / "bf16.pth")
    files.update({"truncated": (tmp_path / "truncated.pth", "not a PyTorch file"),
                  "module": (tmp_path / "module.pth", "not a PyTorch file"),
                  "bfloat16": (tmp_path / "bf16.pth", "conv1.conv.weight is a torch.bfloat16 tensor")})
    return files


def test_bad_weight_files_end_in_one_line_naming_the_problem(tmp_path, weights, capsys):
    random_image(np.random.default_rng(0), 64, 64).save(tmp_path / "small.png")
    for name, (path, message) in bad_weight_files(tmp_path, weights).items():
        with pytest.raises(SystemExit) as stop:
            cli.main(["predict", "--weights", str(path), str(tmp_path / "small.png")])
        text = str(stop.value.code)
        assert "\n" not in text and str(path) in text and re.search(message, text), (name, text)


def test_weights_are_told_apart_by_their_contents(tmp_path, weights, capsys):
    random_image(np.random.default_rng(0), 64, 64).save(tmp_path / "small.png")
    (tmp_path / "weights.pth").write_bytes(weights.read_bytes())  # an .npz named .pth
    assert cli.main(["predict", "--weights", str(tmp_path / "weights.pth"), str(tmp_path / "small.png")]) == 0
    assert capsys.readouterr().out.count("%") == 5


def test_decompression_bombs_are_refused(tmp_path, weights, monkeypatch):
    random_image(np.random.default_rng(0), 64, 64).save(tmp_path / "bomb.png")
    for pixels in (1000, 3000):  # 4096 pixels: beyond twice the limit (Pillow's error), beyond it (its warning)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pixels)
        with pytest.raises(SystemExit, match="cannot read image .*bomb.png: .*decompression bomb"):
            cli.main(["predict", "--weights", str(weights), str(tmp_path / "bomb.png")])
