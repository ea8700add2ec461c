"""The convolution and pooling benchmarks run and report every column (tiny layers: no timing
claims here, benchmarks carry those)."""
import pytest

from inception_native.bench import conv, timing
from inception_native.bench.conv import CONV_TABLE, POOL_TABLE, conv_benchmark, pool_benchmark

# 16 input channels for the 1x1/2: with fewer than oneDNN's channel block (8 on AVX2, 16 on
# AVX-512), PyTorch 2.13's channels_last backward of a strided 1x1 convolution writes past its
# workspace and corrupts the heap (oneDNN issue #6035; none of the real layers is one).
TINY_CONVS = [("tiny 3x3", (3, 9, 9), (4, 3, 3), 1, 1), ("tiny 1x1 /2", (16, 8, 8), (2, 1, 1), 2, 0)]
TINY_POOLS = [("max", (3, 9, 9), 3, 2, 0, True, "max"), ("avg", (3, 9, 9), 3, 1, 1, False, "avg"),
              ("global", (3, 7, 7), None, None, None, None, "global")]
CONTENDERS = ("torch fwd", "torch fwd+bwd", "torch cl fwd", "torch cl fwd+bwd", "onnxruntime fwd")


def test_conv_benchmark_rows():
    rows = conv_benchmark(threads=1, repeats=1, batch=2, layers=TINY_CONVS)
    assert [r["layer"] for r in rows] == ["tiny 3x3", "tiny 1x1 /2"]
    assert rows[0]["gemm (M, N, K)"] == (4, 2 * 81, 27)
    for r in rows:
        assert all(r[k] > 0 for k in ("native fwd", "native fwd+bwd", "sgemm", "numpy fwd", "numpy fwd+bwd",
                                      "fma peak", "native % peak"))
        assert r["native % peak"] == pytest.approx(100 * r["native fwd"] / r["fma peak"])
    text = CONV_TABLE.format(rows)
    assert "tiny 3x3" in text and "FMA peak on the" in text
    assert all(r["native fwd range"][0] <= r["native fwd"] <= r["native fwd range"][1] for r in rows)


def test_conv_benchmark_in_float64_runs_every_contender_in_float64_against_half_the_peak(monkeypatch):
    monkeypatch.setattr(conv, "fma_peak", lambda threads, repeats: (100.0, [90.0, 110.0]))
    rows = conv_benchmark(threads=1, repeats=1, batch=2, layers=TINY_CONVS[:1], dtype="float64")
    (r,) = rows
    assert r["dtype"] == "float64" and r["fma peak"] == 50.0 and r["fma peak range"] == [45.0, 55.0]
    assert r["onnxruntime fwd"] is None  # onnxruntime's CPU Conv: float32 only
    assert all(r[k] > 0 for k in ("native fwd", "native fwd+bwd", "sgemm", "numpy fwd"))
    assert r["native % peak"] == pytest.approx(2 * r["native fwd"])
    if timing.load_torch() is not None:
        assert r["torch fwd+bwd"] > 0
    assert "float64: half the float32 loop's" in CONV_TABLE.format(rows)


def test_pool_benchmark_rows():
    rows = pool_benchmark(threads=1, repeats=1, batch=2, layers=TINY_POOLS)
    for r in rows:
        assert r["native fwd"] > 0 and r["numpy fwd+bwd"] > 0 and r["copy GB/s"] > 0
        assert r["native x copy bound"] > 0
    assert "x copy bound" in POOL_TABLE.format(rows)


@pytest.mark.parametrize("measure, layers", [(conv_benchmark, TINY_CONVS[:1]), (pool_benchmark, TINY_POOLS)],
                         ids=["conv", "pool"])
def test_onnxruntime_and_channels_last_columns_when_installed(measure, layers):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    rows = measure(threads=1, repeats=1, batch=2, layers=layers, numpy_twin=False)
    assert all(r[k] > 0 for r in rows for k in CONTENDERS)


@pytest.mark.parametrize("measure, layers", [(conv_benchmark, TINY_CONVS[:1]), (pool_benchmark, TINY_POOLS[:1])],
                         ids=["conv", "pool"])
def test_absent_packages_leave_their_columns_none(measure, layers, monkeypatch):
    monkeypatch.setattr(conv, "load_onnxruntime", lambda: None)
    monkeypatch.setattr(timing, "load_torch", lambda: None)
    rows = measure(threads=1, repeats=1, batch=2, layers=layers, numpy_twin=False)
    assert all(r[k] is None for r in rows for k in CONTENDERS + ("numpy fwd",))
    assert all(r["native fwd"] > 0 for r in rows)


@pytest.mark.parametrize("measure, layers", [(conv_benchmark, TINY_CONVS[:1]), (pool_benchmark, TINY_POOLS[:1])],
                         ids=["conv", "pool"])
def test_no_torch_leaves_torch_columns_none(measure, layers):
    rows = measure(threads=1, repeats=1, batch=2, layers=layers, numpy_twin=False, use_torch=False)
    assert all(r[k] is None for r in rows for k in CONTENDERS if k.startswith("torch"))


def test_fma_peak_is_positive_on_every_isa_path():
    from inception_native.conv import conv_isa_levels, fma_peak_flops, set_conv_isa
    for name in conv_isa_levels():
        previous = set_conv_isa(name)
        try:
            assert fma_peak_flops(1000, 2) >= fma_peak_flops(1000, 1) > 0
        finally:
            set_conv_isa(previous)
    median, (slowest, fastest) = conv.fma_peak(threads=1, repeats=1)
    assert 0 < slowest <= median <= fastest


def test_benchmarked_layers_come_from_the_models():
    """The layer list is read off the models' own leaves: GoogLeNet (Table 1) and Inception v3."""
    from inception_native.bench.conv import conv_layers, pool_layers
    convs = {name: rest for name, *rest in conv_layers(batch=16)}
    assert list(convs) == ["conv1 7x7/2 3->64 @224", "conv2 3x3 64->192 @56", "3a 1x1 192->64 @28",
                           "3a 3x3 96->128 @28", "3a 5x5 16->32 @28", "4e 3x3 160->320 @14",
                           "5b 1x1 832->384 @7", "v3 5b 5x5 48->64 @35", "v3 6b 1x7 128->128 @17",
                           "v3 7b 3x3 448->384 @8"]
    assert convs["conv1 7x7/2 3->64 @224"] == [(3, 224, 224), (64, 7, 7), (2, 2), (3, 3)]
    assert convs["v3 6b 1x7 128->128 @17"] == [(128, 17, 17), (128, 1, 7), (1, 1), (0, 3)]
    pools = {name: rest for name, *rest in pool_layers()}
    assert pools["pool1 max 3x3/2 p0 @112"] == [(64, 112, 112), 3, 2, 0, True, "max"]
    assert pools["v3 5b branch avg 3x3/1 p1 @35"] == [(192, 35, 35), 3, 1, 1, False, "avg"]


def test_each_library_is_woken_by_an_untimed_call_before_its_timed_ones():
    calls = {"native fwd": 0, "native bwd": 0, "torch fwd": 0}

    def counted(key):
        def run():
            calls[key] += 1
        return run

    result = timing.median_of_rounds({key: counted(key) for key in calls}, repeats=2, pause=0)
    assert set(result) == set(calls)
    # 3 rounds (one warm-up); each group's first closure once more per round, untimed
    assert calls == {"native fwd": 6, "native bwd": 3, "torch fwd": 6}
