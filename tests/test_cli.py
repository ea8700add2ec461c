"""The command line: info reports the build, bench times every contender and writes its JSON."""
import json
import re
import subprocess
import sys

import pytest

from inception_native import __main__ as cli
from inception_native import native, reference
from interrupt import interrupt_after


def run(*args):
    return subprocess.run([sys.executable, "-m", "inception_native", *args], capture_output=True,
                          text=True, check=True, timeout=300).stdout


def test_info_reports_the_build():
    out = run("info")
    assert "inception_native 0.1.0" in out
    assert "OpenMP:" in out and "threads:" in out and "compiler:" in out


def test_bench_measures_every_contender(tmp_path):
    path = tmp_path / "bench.json"
    out = run("bench", "--sections", "batchnorm", "--shapes", "2x8x6x6", "--repeats", "2",
              "--warmup", "1", "--threads", "1",
              "--json", str(path))
    assert "x copy bound" in out
    rows = json.loads(path.read_text())["batchnorm"]
    seen = {(r["flavour"], r["pass"], r["contender"]) for r in rows}
    for direction in ("forward", "backward"):
        assert {("exact", direction, "native"), ("exact", direction, "numpy"),
                ("darknet", direction, "native"), ("darknet", direction, "article C")} <= seen
    assert all(r["ms"] > 0 and r["shape"] == [2, 8, 6, 6] for r in rows)


def test_bench_profile_shows_where_a_training_step_spends_its_time(tmp_path):
    path = tmp_path / "profile.json"
    out = run("bench", "--model", "googlenet", "--profile", "--batch", "1", "--repeats", "1",
              "--threads", "1", "--json", str(path))
    assert "a native training step at batch 1" in out and "% of step" in out
    rows = json.loads(path.read_text())["profile"]
    seen = {(r["layer"], r["direction"]) for r in rows}
    assert {("Conv2d", "forward"), ("Conv2d", "backward"), ("total step", "")} <= seen
    assert all(r["seconds"] > 0 for r in rows if r["layer"] != "rest")


def test_bad_bench_options_are_rejected():
    with pytest.raises(SystemExit):
        cli.main(["bench", "--shapes", "16x0x3"])
    with pytest.raises(SystemExit):
        cli.main(["bench", "--repeats", "0"])
    with pytest.raises(SystemExit, match="--profile goes with --model"):
        cli.main(["bench", "--profile"])
    with pytest.raises(SystemExit, match="--profile goes with --model"):
        cli.main(["bench", "--profile", "inference"])


def test_native_and_reference_export_the_same_kernels():
    public = lambda module: {n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))}  # noqa: E731
    assert set(native.__all__) <= public(reference)


def test_plot_panels_are_the_speed_ups(tmp_path):
    from inception_native.bench import plot

    results = {"pool": [{"layer": "p", "native fwd": 2.0, "numpy fwd": 8.0, "torch fwd": 3.0}],
               "model": [{"model": "googlenet", "pass": "inference", "batch": 16,
                          "contender": c, "images_per_s": v}
                         for c, v in (("native", 30.0), ("numpy", 10.0), ("pytorch", 20.0))]}
    charts = dict((title.split(":")[0], series) for title, _, series in plot.panels(results))
    assert charts["Pooling"] == {"fwd vs NumPy": [4.0], "fwd vs PyTorch": [1.5]}
    assert charts["googlenet"] == {"vs numpy": [3.0], "vs pytorch": [1.5]}
    pytest.importorskip("matplotlib")
    plot.plot(results, tmp_path / "speed.png")
    assert (tmp_path / "speed.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_version():
    from inception_native import __version__
    assert run("--version").strip() == f"inception_native {__version__}"


def test_info_into_a_closed_pipe_prints_no_traceback():
    """`info | head -0`: the reader is gone before info writes; no BrokenPipeError on stderr."""
    info = subprocess.Popen([sys.executable, "-m", "inception_native", "info"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    info.stdout.close()
    stderr = info.stderr.read().decode()
    info.wait(timeout=120)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def test_bench_arguments_are_checked_before_any_work(tmp_path, monkeypatch, capsys):
    for shape, message in (("1x8", "more than one value per channel"),
                           ("1x8x1x1", "more than one value per channel"),
                           ("1000x1000x1000x1000", "GiB, more than this machine's")):
        with pytest.raises(SystemExit) as stop:
            cli.main(["bench", "--sections", "batchnorm", "--shapes", shape])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    common = ["bench", "--sections", "batchnorm", "--shapes", "2x8x6x6", "--repeats", "1"]
    for option, path, message in (("--json", tmp_path, "it is a directory"),
                                  ("--json", tmp_path / "none" / "b.json", "none is not a directory"),
                                  ("--plot", tmp_path / "file" / "b.png", "file is not a directory")):
        with pytest.raises(SystemExit, match=f"^error: {option} {path}: cannot write there: .*{message}"):
            cli.main([*common, option, str(path)])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    with pytest.raises(SystemExit, match="^error: --plot needs matplotlib"):
        cli.main([*common, "--plot", str(tmp_path / "b.png")])
    assert capsys.readouterr().out == ""  # nothing was benchmarked


def test_bench_prints_rows_as_they_come_with_spreads_a_legend_and_its_total_time():
    out = run("bench", "--sections", "batchnorm", "--shapes", "2x8x6x6", "--repeats", "2",
              "--threads", "1", "--no-torch")
    assert out.startswith("1 thread;") and re.search(r"\ntotal time: \d+ s\n", out)
    assert "PyTorch left out (--no-torch)" in out.splitlines()[0]
    rows = [line for line in out.splitlines() if line.strip().startswith("2x8x6x6")]
    assert len(rows) == 10 and all(re.search(r" \d+\.\d{3} \(\d+\.\d{3}-\d+\.\d{3}\) ", r) for r in rows)
    for column in ("shape:", "flavour:", "contender:", "article C (", "ms:", "vs NumPy / vs PyTorch:",
                   "GB/s:", "x copy bound:", "below 1:"):
        assert column in out, column
    from inception_native.bench import conv, model
    for legend, words in ((conv.CONV_TABLE.legend, ("sgemm:", "fwd+bwd:", "native:", "numpy:", "torch:")),
                          (conv.POOL_TABLE.legend, ("fwd+bwd:", "native:")),
                          (model.TABLE.legend, ("pass:", "contender:", "s:", "img/s:", "vs PyTorch:", "peak MB:"))):
        assert all(word in "\n".join(legend) for word in words)


def test_bench_shows_each_row_at_once_and_ctrl_c_stops_it_within_seconds():
    # the first shape's rows are printed while the second, larger one is being timed
    status, stderr, waited = interrupt_after("2x8x6x6", "bench", "--sections", "batchnorm", "--shapes",
                                             "2x8x6x6", "16x64x56x56", "--repeats", "50", "--threads", "1")
    assert status == 130 and stderr == "interrupted\n" and waited < 5


def test_predict_help_says_where_weights_come_from_before_the_example():
    text = run("predict", "--help")
    source = text.index("Where --weights files come from")
    assert "googlenet-1378be20.pth" in text[source:] and "torch.save(model.state_dict()" in text
    assert source < text.index("predict --weights googlenet-1378be20.pth")


def test_bench_dropin_and_neighbour_sections_run_on_the_model_named(monkeypatch, capsys):
    """Opt-in sections: the network they measure is --model's, and their rows are printed
    under their table's header; the measurements themselves are tested in test_bench_model."""
    from inception_native.bench import dropin, neighbour

    asked = []

    def fake(kind):
        def measure(model, threads, batch, repeats):
            asked.append((kind, model, threads, batch, repeats))
            return [{"model": model, "threads": threads, "batch": batch, "pass": "inference",
                     "contender": "pytorch", "seconds": 1.0, "seconds_range": [1.0, 1.0],
                     "alone_s": 1.0, "beside_s": 1.5, "slowdown": 1.5}]
        return measure

    monkeypatch.setattr(dropin, "dropin_benchmark", fake("dropin"))
    monkeypatch.setattr(neighbour, "neighbour_slowdown", fake("neighbour"))
    cli.main(["bench", "--sections", "dropin", "neighbour", "--model", "googlenet", "--threads", "2",
              "--batch", "4", "--repeats", "2"])
    out = capsys.readouterr().out
    assert asked == [("dropin", "googlenet", 2, 4, 2), ("neighbour", "googlenet", 2, 4, 2)]
    assert "images/s" not in out  # --model names their network: no whole-model benchmark
    assert "PyTorch drop-in (use_native)" in out and "Beside a busy process" in out and "1.50x" in out
