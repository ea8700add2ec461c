"""losses.CrossEntropy: GoogLeNet's weighted sum of the main and auxiliary losses, with label
smoothing, against PyTorch; both backends."""
import numpy as np
import pytest

from inception_native import losses


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_weighted_total_and_gradients_match_pytorch(smoothing, backend, rng):
    torch = pytest.importorskip("torch")
    outputs = [rng.standard_normal((4, 6)) for _ in range(3)]
    labels = np.array([0, 5, 2, 2])
    loss = losses.CrossEntropy(aux_weight=0.3, label_smoothing=smoothing, backend=backend)
    total = loss.forward(outputs, labels)
    grads = [g.copy() for g in loss.backward()]
    ts = [torch.tensor(o, requires_grad=True) for o in outputs]
    ce = [torch.nn.functional.cross_entropy(t, torch.tensor(labels), label_smoothing=smoothing) for t in ts]
    expected = ce[0] + 0.3 * ce[1] + 0.3 * ce[2]
    expected.backward()
    assert total == pytest.approx(expected.item(), rel=1e-12)
    assert loss.parts == pytest.approx([c.item() for c in ce], rel=1e-12)
    for g, t in zip(grads, ts):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_one_output_and_misuse(rng):
    loss = losses.CrossEntropy()
    logits = rng.standard_normal((3, 4)).astype(np.float32)
    assert loss.forward(logits, np.array([0, 1, 2])) == pytest.approx(loss.parts[0])
    assert len(loss.backward()) == 1
    with pytest.raises(RuntimeError, match="backward called before forward"):
        losses.CrossEntropy().backward()
    with pytest.raises(TypeError, match="labels must have dtype int64"):
        loss.forward(logits, np.array([0, 1, 2], np.int32))
    with pytest.raises(ValueError, match="labels must lie in"):
        loss.forward(logits, np.array([0, 1, 4]))
