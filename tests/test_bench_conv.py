"""The convolution and pooling benchmarks run and report every column (tiny layers: no timing
claims here, benchmarks carry those)."""
import pytest

from inception_native.bench.conv import CONV_TABLE, conv_benchmark, pool_benchmark


def test_conv_benchmark_rows():
    rows = conv_benchmark(threads=1, repeats=1, batch=2,
                          layers=[("tiny 3x3", (3, 9, 9), (4, 3, 3), 1, 1),
                                  ("tiny 1x1 /2", (5, 8, 8), (2, 1, 1), 2, 0)])
    assert [r["layer"] for r in rows] == ["tiny 3x3", "tiny 1x1 /2"]
    assert rows[0]["gemm (M, N, K)"] == (4, 2 * 81, 27)
    for r in rows:
        assert all(r[k] > 0 for k in ("native fwd", "native fwd+bwd", "sgemm", "numpy fwd", "numpy fwd+bwd"))
    assert "tiny 3x3" in CONV_TABLE.format(rows)
    assert all(r["native fwd range"][0] <= r["native fwd"] <= r["native fwd range"][1] for r in rows)


def test_pool_benchmark_rows():
    rows = pool_benchmark(threads=1, repeats=1, batch=2, layers=[
        ("max", (3, 9, 9), 3, 2, 0, True, "max"), ("avg", (3, 9, 9), 3, 1, 1, False, "avg"),
        ("global", (3, 7, 7), None, None, None, None, "global")])
    for r in rows:
        assert r["native fwd"] > 0 and r["numpy fwd+bwd"] > 0
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("torch columns need torch")
    assert all(r["torch fwd+bwd"] > 0 for r in rows)
