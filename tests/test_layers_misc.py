"""ReLU, inverted dropout, channel concatenation and softmax cross-entropy: native against the
NumPy twin, finite differences, a float64 log-sum-exp reference and PyTorch; bad input raises."""
import numpy as np
import pytest
from conftest import DTYPES, assert_close
from test_batchnorm import finite_difference

from inception_native import native, reference


# ---- ReLU ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (2, 3, 5, 5), (16, 64, 7, 7)], ids=str)
def test_relu_forward_backward_and_in_place(shape, dtype, backend, rng):
    x = rng.standard_normal(shape).astype(dtype)
    y = np.empty_like(x)
    assert backend.relu_forward(x, y) is y
    np.testing.assert_array_equal(y, np.where(x > 0, x, 0))
    dy = rng.standard_normal(shape).astype(dtype)
    dx = np.empty_like(x)
    assert backend.relu_backward(dy, y, dx) is dx
    np.testing.assert_array_equal(dx, np.where(x > 0, dy, 0))
    inplace = x.copy()
    backend.relu_forward(inplace, inplace)
    np.testing.assert_array_equal(inplace, y)
    backend.relu_backward(dy, inplace, dy)  # dx in place of dy
    np.testing.assert_array_equal(dy, dx)


def test_relu_keeps_nan(backend):
    y = backend.relu_forward(np.array([np.nan, -1.0, 2.0]), np.empty(3))
    assert np.isnan(y[0]) and list(y[1:]) == [0, 2]


def test_relu_rejects_partial_overlap(backend):
    x = np.ones(10)
    with pytest.raises(ValueError, match="x and y must not overlap"):
        backend.relu_forward(x[:5], x[1:6])


# ---- per-channel affine map ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (2, 3, 5, 5), (3, 17, 4, 7)], ids=str)
@pytest.mark.parametrize("scaled", [True, False])
@pytest.mark.parametrize("relu", [True, False])
def test_channel_affine_forward_against_its_formula(shape, scaled, relu, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    C = shape[1]
    scale = rng.standard_normal(C).astype(dtype) if scaled else None
    shift = rng.standard_normal(C).astype(dtype)
    per_channel = (-1,) + (1,) * (len(shape) - 2)
    expected = (x * scale.reshape(per_channel) if scaled else x) + shift.reshape(per_channel)
    if relu:
        expected = np.where(expected < 0, 0, expected)
    for backend in (native, reference):  # the product and sum rounded apart: the same bits
        y = np.empty_like(x)
        assert backend.channel_affine_forward(x, scale, shift, y, relu=relu) is y
        np.testing.assert_array_equal(y, expected)
        inplace = x.copy()
        backend.channel_affine_forward(inplace, scale, shift, inplace, relu=relu)
        np.testing.assert_array_equal(inplace, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_affine_forward_reads_and_writes_channel_slices(dtype, rng):
    big_x = rng.standard_normal((3, 9, 4, 5)).astype(dtype)
    x = big_x[:, 2:6]
    shift = rng.standard_normal(4).astype(dtype)
    y_native, y_twin = np.zeros((3, 11, 4, 5), dtype), np.zeros((3, 11, 4, 5), dtype)
    native.channel_affine_forward(x, None, shift, y_native[:, 5:9], relu=True)
    reference.channel_affine_forward(x, None, shift, y_twin[:, 5:9], relu=True)
    np.testing.assert_array_equal(y_native, y_twin)
    np.testing.assert_array_equal(y_native[:, 5:9], np.maximum(x + shift[:, None, None], 0))
    assert not y_native[:, :5].any() and not y_native[:, 9:].any()  # nothing written outside


def test_channel_affine_forward_keeps_nan_and_rejects_bad_input(backend):
    x = np.array([[np.nan, -1.0, 2.0]]).reshape(1, 1, 3)
    y = backend.channel_affine_forward(x, None, np.zeros(1), np.empty_like(x), relu=True)
    assert np.isnan(y[0, 0, 0]) and list(y[0, 0, 1:]) == [0, 2]
    x = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="shift has 2 elements, expected 3"):
        backend.channel_affine_forward(x, None, np.ones(2), np.empty_like(x))
    with pytest.raises(ValueError, match="scale has 4 elements, expected 3"):
        backend.channel_affine_forward(x, np.ones(4), np.ones(3), np.empty_like(x))
    with pytest.raises(ValueError, match="y"):
        backend.channel_affine_forward(x, None, np.ones(3), np.empty((2, 3, 5)))
    with pytest.raises(TypeError, match="y"):
        backend.channel_affine_forward(x, None, np.ones(3), np.empty((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="x and y must not overlap"):
        flat = np.ones(30)
        backend.channel_affine_forward(flat[:24].reshape(2, 3, 4), None, np.ones(3),
                                       flat[6:].reshape(2, 3, 4))


# ---- dropout -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.4, 0.9])
def test_dropout_native_and_numpy_draw_the_same_mask(p, dtype, rng):
    x = rng.standard_normal((16, 1024)).astype(dtype)
    out = {}
    for backend in (native, reference):
        y, mask = np.empty_like(x), np.empty_like(x)
        assert backend.dropout_forward(x, y, mask, p, 12345) is y
        out[backend] = (y, mask)
    np.testing.assert_array_equal(out[native][1], out[reference][1])
    np.testing.assert_array_equal(out[native][0], out[reference][0])
    y, mask = out[native]
    kept = mask != 0
    assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / x.size) + 1e-12
    assert_close(mask[kept], np.full(kept.sum(), 1 / (1 - p)), dtype)
    np.testing.assert_array_equal(y, x * mask)
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = native.dropout_backward(dy, mask, np.empty_like(x))
    np.testing.assert_array_equal(dx, dy * mask)
    np.testing.assert_array_equal(reference.dropout_backward(dy, mask, np.empty_like(x)), dx)


def test_dropout_seed_decides_the_mask_and_keeps_the_mean(rng):
    x = np.ones(200_000, np.float32)
    masks = [native.dropout_forward(x, np.empty_like(x), m := np.empty_like(x), 0.4, s) is not None and m
             for s in (1, 1, 2)]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert (masks[0] != masks[2]).mean() > 0.4
    assert abs(masks[0].mean() - 1) < 0.01  # inverted dropout: E[y] = x
    y = x.copy()
    native.dropout_forward(y, y, mask := np.empty_like(x), 0.4, 1)  # in place
    np.testing.assert_array_equal(y, masks[0])


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_dropout_rejects_bad_input(backend):
    x = np.ones(4)
    with pytest.raises(ValueError, match="p must be < 1"):
        backend.dropout_forward(x, np.empty(4), np.empty(4), 1.0, 0)
    with pytest.raises(ValueError, match="p must be a finite number"):
        backend.dropout_forward(x, np.empty(4), np.empty(4), -0.1, 0)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        backend.dropout_forward(x, np.empty(4), np.empty(4), 0.5, -1)
    with pytest.raises(ValueError, match=r"mask must have shape \(4,\)"):
        backend.dropout_forward(x, np.empty(4), np.empty(3), 0.5, 0)


# ---- concatenation -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_and_split(dtype, backend, rng):
    parts = [rng.standard_normal((3, c, 5, 4)).astype(dtype) for c in (64, 1, 128, 32)]
    y = np.empty((3, 225, 5, 4), dtype)
    assert backend.concat_forward(parts, y) is y
    np.testing.assert_array_equal(y, np.concatenate(parts, axis=1))
    dxs = [np.empty_like(p) for p in parts]
    assert backend.concat_backward(y, dxs) is dxs
    for got, part in zip(dxs, parts):
        np.testing.assert_array_equal(got, part)


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_concat_rejects_bad_input(backend):
    a, b = np.ones((2, 3, 4, 4)), np.ones((2, 5, 4, 4))
    with pytest.raises(ValueError, match="the parts of xs have 8 channels in all, y has 9"):
        backend.concat_forward([a, b], np.empty((2, 9, 4, 4)))
    with pytest.raises(ValueError, match=r"xs\[1\] has shape \(2, 5, 3, 4\)"):
        backend.concat_forward([a, np.ones((2, 5, 3, 4))], np.empty((2, 8, 4, 4)))
    with pytest.raises(TypeError, match="xs must be a non-empty list"):
        backend.concat_forward([], np.empty((2, 8, 4, 4)))
    with pytest.raises(TypeError, match=r"xs\[0\] has dtype float32"):
        backend.concat_forward([a.astype(np.float32), b], np.empty((2, 8, 4, 4)))


# ---- softmax cross-entropy -----------------------------------------------------------------

def logsumexp_loss(logits, labels, e):
    """float64 reference: mean_n [logsumexp(z_n) - sum_k q_nk z_nk]."""
    z = logits.astype(np.float64)
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    N, K = z.shape
    q = np.full((N, K), e / K)
    q[np.arange(N), labels] += 1 - e
    return float(np.mean(lse - (q * z).sum(axis=1)))


def xent(backend, logits, labels, e):
    probs = np.empty_like(logits)
    loss = backend.softmax_cross_entropy_forward(logits, labels, probs, label_smoothing=e)
    assert isinstance(loss, float)
    dlogits = np.empty_like(logits)
    assert backend.softmax_cross_entropy_backward(probs, labels, dlogits, e) is dlogits
    return loss, probs, dlogits


@pytest.mark.parametrize("e", [0.0, 0.1])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, K, scale", [(1, 1, 1.0), (4, 10, 1.0), (16, 1000, 5.0), (8, 7, 1e4)])
def test_softmax_cross_entropy_matches_logsumexp(N, K, scale, e, dtype, backend, rng):
    logits = (rng.standard_normal((N, K)) * scale).astype(dtype)
    labels = rng.integers(0, K, N)
    loss, probs, dlogits = xent(backend, logits, labels, e)
    assert np.isfinite(loss) and np.isfinite(probs).all() and np.isfinite(dlogits).all()
    np.testing.assert_allclose(loss, logsumexp_loss(logits, labels, e), rtol=1e-12 if dtype == np.float64 else 1e-6, atol=1e-12)
    assert_close(probs.sum(axis=1), np.ones(N), dtype)
    native_out = xent(native, logits, labels, e)
    assert_close(dlogits, native_out[2], dtype)


@pytest.mark.parametrize("e", [0.0, 0.1])
def test_softmax_cross_entropy_gradient_matches_finite_differences(e, backend, rng):
    logits, labels = rng.standard_normal((5, 7)), rng.integers(0, 7, 5)
    _, _, dlogits = xent(backend, logits, labels, e)
    loss = lambda: backend.softmax_cross_entropy_forward(logits, labels, np.empty_like(logits), e)  # noqa: E731
    np.testing.assert_allclose(dlogits, finite_difference(loss, logits), rtol=1e-6, atol=1e-9)
    scaled = backend.softmax_cross_entropy_backward(np.full((5, 7), 1 / 7), labels, np.empty((5, 7)), e, dloss=3.0)
    q = np.full((5, 7), e / 7)
    q[np.arange(5), labels] += 1 - e
    np.testing.assert_allclose(scaled, 3.0 * (1 / 7 - q) / 5, rtol=1e-14)


@pytest.mark.parametrize("e", [0.0, 0.1])
def test_softmax_cross_entropy_matches_pytorch(e, rng):
    torch = pytest.importorskip("torch")
    logits, labels = rng.standard_normal((6, 11)) * 3, rng.integers(0, 11, 6)
    zt = torch.tensor(logits, requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(labels), label_smoothing=e)
    lt.backward()
    loss, _, dlogits = xent(native, logits, labels, e)
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-12)
    np.testing.assert_allclose(dlogits, zt.grad.numpy(), rtol=1e-10, atol=1e-15)
    big = np.array([[1e4, 0.0, -1e4]], np.float32)  # no overflow, exact loss
    assert native.softmax_cross_entropy_forward(big, np.array([1]), np.empty_like(big)) == pytest.approx(1e4)


@pytest.mark.parametrize("backend", [native, reference], ids=["native", "numpy"])
def test_softmax_cross_entropy_rejects_bad_input(backend):
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got values in \[0, 3\]"):
        backend.softmax_cross_entropy_forward(z, np.array([0, 3]), np.empty_like(z))
    with pytest.raises(TypeError, match="labels must have dtype int64, got int32"):
        backend.softmax_cross_entropy_forward(z, np.array([0, 1], np.int32), np.empty_like(z))
    with pytest.raises(ValueError, match="labels has 3 elements, expected 2"):
        backend.softmax_cross_entropy_forward(z, np.array([0, 1, 2]), np.empty_like(z))
    with pytest.raises(ValueError, match="label_smoothing must be a finite number in"):
        backend.softmax_cross_entropy_forward(z, np.array([0, 1]), np.empty_like(z), 1.5)
    with pytest.raises(ValueError, match=r"logits must have shape \(batch, classes\)"):
        backend.softmax_cross_entropy_forward(np.zeros(3), np.array([0]), np.empty(3))


# ---- ChannelAffine (torchvision's transform_input) --------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_affine_forward_backward(dtype, backend, rng):
    from inception_native.layers import ChannelAffine
    scale, shift = [0.458, 0.448, 0.450], [-0.03, -0.088, -0.188]
    layer = ChannelAffine(scale, shift, dtype, backend)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    expected = x * np.array(scale)[:, None, None] + np.array(shift)[:, None, None]
    assert_close(layer.forward(x), expected, dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_close(layer.backward(dy), dy * np.array(scale, dtype)[:, None, None], dtype)
    assert layer.backward(None) is None  # the next layer skipped its dL/dx
    if dtype == np.float64:  # dL/dx of L = sum(dy * y) by central differences
        numeric = finite_difference(lambda: float((layer.forward(x) * dy).sum()), x)
        np.testing.assert_allclose(layer.backward(dy), numeric, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="x has 2 channels, the transform expects 3"):
        layer.forward(x[:, :2].copy())
    with pytest.raises(ValueError, match="scale and shift must be 1-D and alike"):
        ChannelAffine([1.0, 2.0], [0.0], dtype, backend)
