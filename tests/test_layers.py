"""layers.BatchNorm: both backends agree, both flavours train and infer, gradients are dL/dx."""
import numpy as np
import pytest

from inception_native import layers, native, reference


@pytest.mark.parametrize("flavour", layers.FLAVOURS)
def test_backends_agree_over_training_steps(flavour, rng):
    pair = [layers.BatchNorm(6, flavour, backend=b, dtype=np.float64) for b in (native, reference)]
    for step in range(3):
        x = rng.standard_normal((4, 6, 3, 3)) * (step + 1)
        dy = rng.standard_normal(x.shape)
        outputs = [(bn.forward(x).copy(), bn.backward(dy).copy()) for bn in pair]
        for a, b in zip(*outputs):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        for name in ("gamma", "beta"):
            np.testing.assert_allclose(pair[0].grads[name], pair[1].grads[name], rtol=1e-10)
    np.testing.assert_allclose(pair[0].rolling_variance, pair[1].rolling_variance, rtol=1e-12)


@pytest.mark.parametrize("flavour", layers.FLAVOURS)
def test_grads_are_per_backward_not_accumulated(flavour, rng):
    bn = layers.BatchNorm(3, flavour, dtype=np.float64)
    x, dy = rng.standard_normal((5, 3, 4)), rng.standard_normal((5, 3, 4))
    bn.forward(x)
    bn.backward(dy)
    first = bn.grads["beta"].copy()
    bn.backward(dy)
    np.testing.assert_allclose(bn.grads["beta"], first, rtol=1e-12)
    np.testing.assert_allclose(first, dy.sum(axis=(0, 2)), rtol=1e-12)


def test_eval_mode_normalises_with_rolling_statistics(rng):
    bn = layers.BatchNorm(2, dtype=np.float64)
    bn.rolling_mean[:] = [1.0, -2.0]
    bn.rolling_variance[:] = [4.0, 0.5]
    x = rng.standard_normal((3, 2, 5))
    y = bn.eval().forward(x)
    expected = (x - bn.rolling_mean[None, :, None]) / np.sqrt(bn.rolling_variance[None, :, None] + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    dx = bn.backward(np.ones_like(x))  # frozen statistics: dx = dy * gamma * invstd
    np.testing.assert_allclose(dx, np.ones_like(x) / np.sqrt(bn.rolling_variance[None, :, None] + 1e-5))


def test_misuse_is_reported():
    with pytest.raises(ValueError, match="flavour must be one of"):
        layers.BatchNorm(3, flavour="keras")
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layers.BatchNorm(3).backward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(TypeError, match="gamma has dtype float32, expected float64 like x"):
        layers.BatchNorm(3).forward(np.zeros((2, 3, 4)))
