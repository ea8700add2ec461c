"""inception_native.torch: the native kernels as PyTorch modules (skipped without PyTorch)."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from inception_native.torch import (BatchNorm2d, BatchNormFunction, Conv2d,  # noqa: E402
                                    Conv2dFunction, MaxPool2d, MaxPool2dFunction, use_native)


def small_network():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 6, (1, 3), stride=(2, 1), padding=(0, 1)), torch.nn.BatchNorm2d(6, eps=1e-3),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_swapped_network_gives_the_same_outputs_gradients_and_statistics(dtype):
    original = small_network().to(dtype)
    ours = use_native(small_network().to(dtype))
    assert sum(isinstance(m, (BatchNorm2d, Conv2d)) for m in ours.modules()) == 4
    x = torch.randn(5, 3, 9, 9, dtype=dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    for _ in range(2):  # two training steps: running statistics move
        y0, y1 = original(x), ours(x)
        torch.testing.assert_close(y1, y0, **tol)
        y0.square().sum().backward()
        y1.square().sum().backward()
    for (name, p0), p1 in zip(original.named_parameters(), ours.parameters()):
        torch.testing.assert_close(p1.grad, p0.grad, **tol, msg=name)
    for (name, b0), b1 in zip(original.named_buffers(), ours.buffers()):
        torch.testing.assert_close(b1, b0, **tol, msg=name)
    original.eval(), ours.eval()
    torch.testing.assert_close(ours(x), original(x), **tol)
    assert ours.state_dict().keys() == original.state_dict().keys()


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_function_passes_gradcheck(training, relu):
    x = torch.randn(3, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    running = (torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64))
    f = lambda a, w, b: BatchNormFunction.apply(a, w, b, *running, training, 0.1, 1e-5, relu)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, weight, bias))
    if relu:  # the fused ReLU's output
        assert f(x, weight, bias).min() >= 0


def test_conv_function_passes_gradcheck():
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    f = lambda a, w, b: Conv2dFunction.apply(a, w, b, (2, 1), (1, 0))  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, weight, bias))


def test_unsupported_configurations_are_refused():
    with pytest.raises(NotImplementedError, match="groups=1"):
        Conv2d(4, 4, 3, groups=2)
    with pytest.raises(NotImplementedError, match="momentum"):
        BatchNorm2d(4, momentum=None)
    with pytest.raises(NotImplementedError, match="dilation=1"):
        use_native(torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3, dilation=2)))


def test_modules_are_drop_in_replacements():
    conv = Conv2d(3, 5, 3, stride=2, padding=1)
    reference = torch.nn.Conv2d(3, 5, 3, stride=2, padding=1)
    reference.load_state_dict(conv.state_dict())
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(conv(x), reference(x), rtol=1e-4, atol=1e-5)
    assert np.isfinite(conv(x).detach().numpy()).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inference_runs_conv_batchnorm_relu_as_one_convolution(dtype):
    """A swapped Sequential, in eval mode without gradients: conv (with or without bias) + BN +
    ReLU, conv + BN, conv + ReLU each as one native convolution (the BatchNorm's and ReLU's own
    forward never runs: their hooks stay silent), PyTorch's outputs."""
    torch.manual_seed(0)
    original = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 6, 3, stride=2, padding=1), torch.nn.BatchNorm2d(6, eps=1e-3),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 5, 1), torch.nn.ReLU(inplace=True)).to(dtype)
    for m in original:
        if isinstance(m, torch.nn.BatchNorm2d):  # statistics and affine parameters away from 0, 1
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-1, 1)
    original.eval()
    swapped = use_native(copy.deepcopy(original))
    assert swapped._get_name() == "NativeSequential"
    calls = []
    for m in swapped:
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.ReLU)):
            m.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(2, 3, 9, 9, dtype=dtype)
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    with torch.no_grad():
        torch.testing.assert_close(swapped(x), original(x), **tolerance)
    assert calls == []
    # with gradients: module by module, but the first BatchNorm and its ReLU as one (no hooks)
    torch.testing.assert_close(swapped(x), original(x), **tolerance)
    assert len(calls) == 2


@pytest.mark.parametrize("window", [(3, 2, 0, True), (3, 2, 1, False), ((2, 3), (1, 2), (1, 0), True),
                                    (16, 4, 8, False)],  # 256 taps: no byte holds them, the search
                         ids=str)
def test_max_pool_matches_pytorch_and_passes_gradcheck(window):
    kernel, stride, padding, ceil_mode = window
    original = torch.nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil_mode)
    swapped = use_native(copy.deepcopy(original))
    assert isinstance(swapped, MaxPool2d) and swapped._get_name() == "NativeMaxPool2d"
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, requires_grad=True)
    y, expected = swapped(x), original(x)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    dy = torch.randn_like(y)
    got, = torch.autograd.grad(y, x, dy)
    want, = torch.autograd.grad(expected, x, dy)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert torch.autograd.gradcheck(swapped, (x,))
    assert swapped(x[0]).shape == expected[0].shape  # unbatched: PyTorch's own forward
    with pytest.raises(NotImplementedError, match="native MaxPool2d covers dilation=1"):
        use_native(torch.nn.MaxPool2d(3, dilation=2))
    with pytest.raises(NotImplementedError, match="return_indices=False"):
        MaxPool2d(3, return_indices=True)


def nested_network():
    torch.manual_seed(0)
    features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                   torch.nn.Conv2d(4, 4, 3, groups=2), torch.nn.BatchNorm2d(4, momentum=None))
    model = torch.nn.Sequential()
    model.add_module("features", features)
    model.add_module("head", torch.nn.Conv2d(4, 2, 1))
    return model


def test_use_native_checks_every_module_before_it_swaps_any():
    model = nested_network()
    with pytest.raises(NotImplementedError) as refused:
        use_native(model)
    message = str(refused.value)
    assert "features.3: native Conv2d covers groups=1" in message
    assert "features.4: native BatchNorm2d needs" in message and "features.0" not in message
    assert not any(isinstance(m, (BatchNorm2d, Conv2d)) for m in model.modules())  # nothing swapped
    with pytest.warns(UserWarning, match="left these modules to torch.nn: features.3: .*; features.4: ") as caught:
        assert use_native(model, strict=False) is model
    assert len(caught) == 1
    assert [type(m).__name__ for m in model.features] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d"]
    assert [isinstance(m, (BatchNorm2d, Conv2d)) for m in model.features] == [True, True, False, False, False]
    assert isinstance(model.head, Conv2d)
    assert "(0): NativeConv2d(3, 4, kernel_size=(3, 3)" in repr(model)
    assert "(3): Conv2d(4, 4" in repr(model) and "(head): NativeConv2d(4, 2" in repr(model)
    with pytest.raises(NotImplementedError, match="^use_native swapped nothing; not covered: Conv2d: .*float32 or float64 tensors on the CPU, got torch.bfloat16 on cpu"):
        use_native(torch.nn.Conv2d(2, 2, 1).bfloat16())


def test_a_bare_module_is_swapped_and_returned():
    conv, bn = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(3)
    native_conv, native_bn = use_native(conv), use_native(bn)
    assert isinstance(native_conv, Conv2d) and isinstance(native_bn, BatchNorm2d)
    assert native_conv.weight is conv.weight and native_bn.running_var is bn.running_var
    assert repr(native_conv).startswith("NativeConv2d(3, 4") and repr(native_bn).startswith("NativeBatchNorm2d(3")
    shared = torch.nn.Conv2d(2, 2, 1)
    twice = use_native(torch.nn.Sequential(shared, torch.nn.ReLU(), shared))
    assert isinstance(twice[0], Conv2d) and twice[0] is twice[2]


def _outcome(module, x):
    try:
        return module(x)
    except Exception as error:  # noqa: BLE001 - compared with PyTorch's
        return type(error), str(error)


@pytest.mark.parametrize("name, args", [("Conv2d", (3, 4, 3)), ("BatchNorm2d", (3,))])
def test_inputs_the_kernels_do_not_take_behave_as_in_pytorch(name, args):
    from inception_native import torch as native_torch
    theirs, ours = getattr(torch.nn, name)(*args), getattr(native_torch, name)(*args)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 8, 8)
    for case in (x, x.bfloat16(), x[None].bfloat16(), x[None].double(), x[None, None]):
        expected, got = _outcome(theirs, case), _outcome(ours, case)
        if isinstance(expected, tuple):
            assert got == expected
        else:
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_a_native_conv_keeps_its_plan_and_shares_the_threads_workspace():
    conv, other = use_native(torch.nn.Conv2d(3, 4, 3, padding=1)), use_native(torch.nn.Conv2d(4, 2, 1))
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    other(conv(x)).sum().backward()
    plan = conv._scratch.plan
    conv(x).sum().backward()  # forward and backward again: the same plan
    assert conv._scratch.plan is plan

    def address(module, x):
        arrays = module._scratch.planned(x.numpy(), module.weight, module.stride, module.padding)
        return arrays["workspace"].__array_interface__["data"][0]
    # both modules take this thread's one workspace
    assert address(conv, x.detach()) == address(other, conv(x).detach())
    conv(torch.randn(3, 3, 8, 8))  # another batch: a plan of its own
    assert conv._scratch.plan is not plan and conv._scratch.key[0] == (3, 3, 8, 8)


def test_a_swapped_model_copies_and_pickles_and_its_copies_compute_the_same():
    import copy
    import pickle

    model = use_native(small_network()).eval()
    x = torch.randn(2, 3, 9, 9)
    expected = model(x)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin[0]._scratch.plan is None  # no plan carried over
        torch.testing.assert_close(twin(x), expected, rtol=0, atol=0)


def test_two_threads_may_run_one_native_conv_at_once():
    import threading

    conv = use_native(torch.nn.Conv2d(4, 5, 3, padding=1))
    plain = torch.nn.Conv2d(4, 5, 3, padding=1)
    plain.load_state_dict(conv.state_dict())
    inputs = [torch.randn(b, 4, 12, 12) for b in (1, 3)]  # other shapes: other plans
    failures = []

    def run(x):
        for _ in range(20):
            if not torch.allclose(conv(x), plain(x), rtol=1e-4, atol=1e-5):
                failures.append(x.shape)

    threads = [threading.Thread(target=run, args=(x,)) for x in inputs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
