"""optim.SGD follows torch.optim.SGD (momentum, weight decay on the weights only); cosine_lr."""
import numpy as np
import pytest

from inception_native import optim


def test_sgd_matches_pytorch_over_steps(backend, rng):
    torch = pytest.importorskip("torch")
    params = {"conv.weight": rng.standard_normal((3, 2)), "conv.bias": rng.standard_normal(3),
              "bn.gamma": rng.standard_normal(3)}
    grads = {k: np.zeros_like(p) for k, p in params.items()}
    tparams = {k: torch.tensor(p, requires_grad=True) for k, p in params.items()}
    decayed = [t for k, t in tparams.items() if k.endswith("weight")]
    others = [t for k, t in tparams.items() if not k.endswith("weight")]
    theirs = torch.optim.SGD([{"params": decayed, "weight_decay": 1e-2}, {"params": others}],
                             lr=0.1, momentum=0.9)
    ours = optim.SGD(params, grads, lr=0.1, momentum=0.9, weight_decay=1e-2, backend=backend)
    for step in range(4):
        for k in params:
            g = rng.standard_normal(params[k].shape)
            grads[k][...] = g
            tparams[k].grad = torch.tensor(g)
        lr = optim.cosine_lr(step, 4, 0.1, warmup_steps=1)
        ours.lr = lr
        for group in theirs.param_groups:
            group["lr"] = lr
        ours.step()
        theirs.step()
        for k in params:
            np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-12, atol=1e-14)


def test_cosine_schedule():
    assert optim.cosine_lr(0, 100, 1.0, warmup_steps=10) == pytest.approx(0.1)
    assert optim.cosine_lr(9, 100, 1.0, warmup_steps=10) == pytest.approx(1.0)
    assert optim.cosine_lr(10, 100, 1.0, warmup_steps=10) == pytest.approx(1.0)
    assert optim.cosine_lr(55, 100, 1.0, warmup_steps=10) == pytest.approx(0.5)
    assert optim.cosine_lr(100, 100, 1.0) == pytest.approx(0.0)


def test_sgd_rejects_bad_settings():
    p = {"w": np.zeros(2)}
    with pytest.raises(ValueError, match="same names"):
        optim.SGD(p, {"v": np.zeros(2)})
    with pytest.raises(ValueError, match="momentum must be"):
        optim.SGD(p, {"w": np.zeros(2)}, momentum=1.5)
