"""The compiled step follows changes made to the model and optimizer after it
was compiled (as eager training does), and refuses what eager refuses."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.compiled import CompileError, compile_step
from minigrad.nn import functional as F

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(seed=1):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(6, 5, rng=rng), nn.ReLU(), nn.Linear(5, 3, rng=rng))


def _batch(seed=0, n=16):
    rng = np.random.default_rng(seed)
    return mg.tensor(rng.standard_normal((n, 6)).astype(np.float32)), mg.tensor(
        rng.integers(0, 3, n))


def _eager_step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def _run(change, steps=4):
    """Parameters after steps with ``change(model, opt)`` applied after the
    first, eager and compiled."""
    out = []
    for compiled in (False, True):
        model = _model()
        opt = mg.SGD(model.parameters(), lr=0.1, momentum=0.9)
        step = compile_step(model, F.cross_entropy, opt) if compiled else None
        for i in range(steps):
            x, y = _batch(i)
            if i == 1:
                change(model, opt)
            if compiled:
                step.step(x, y)
            else:
                _eager_step(model, opt, x, y)
        out.append([p.numpy().copy() for p in model.parameters()])
    return out


def _assert_same(eager, compiled):
    for a, b in zip(eager, compiled, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_parameter_frozen_after_compiling_stays_put():
    def freeze(model, opt):
        model[0].weight.requires_grad_(False)
    eager, compiled = _run(freeze)
    _assert_same(eager, compiled)


def test_a_parameter_unfrozen_after_compiling_is_trained():
    def unfreeze(model, opt):
        model[0].weight.requires_grad_(True)

    out = []
    for compiled in (False, True):
        model = _model()
        model[0].weight.requires_grad_(False)
        opt = mg.SGD(model.parameters(), lr=0.1)
        step = compile_step(model, F.cross_entropy, opt) if compiled else None
        start = model[0].weight.numpy().copy()
        for i in range(3):
            x, y = _batch(i)
            if i == 1:
                unfreeze(model, opt)
            step.step(x, y) if compiled else _eager_step(model, opt, x, y)
        assert not np.array_equal(start, model[0].weight.numpy())
        out.append([p.numpy().copy() for p in model.parameters()])
    _assert_same(*out)


def test_a_layer_appended_after_compiling_runs():
    def append(model, opt):
        model.append(nn.ReLU())
    eager, compiled = _run(append)
    _assert_same(eager, compiled)


def test_a_change_it_cannot_compile_leaves_the_batches_to_eager():
    model = _model()
    step = compile_step(model, F.cross_entropy, mg.SGD(model.parameters(), lr=0.1))
    x, y = _batch()
    assert step.step(x, y) is not None
    model.append(nn.Sigmoid())
    assert step.forward(x, y) is None


def test_call_overrides_are_not_compiled():
    class Half(nn.Sequential):
        def __call__(self, x):
            return super().__call__(x) * 0.5

    class Shifted(nn.Linear):
        def __call__(self, x):
            return super().__call__(x) + 1.0

    rng = np.random.default_rng(0)
    for model in (Half(nn.Linear(6, 3, rng=rng)), nn.Sequential(Shifted(6, 3, rng=rng))):
        with pytest.raises(CompileError):
            compile_step(model, F.cross_entropy, mg.SGD(model.parameters(), lr=0.1))


def test_a_relu_with_its_call_overridden_is_not_fused():
    class Leaky(nn.ReLU):
        def __call__(self, x):
            return super().__call__(x) - 1.0

    model = nn.Sequential(nn.Linear(6, 3), Leaky())
    x = mg.randn(4, 6)
    want = np.maximum(x.numpy() @ model[0].weight.numpy().T + model[0].bias.numpy(), 0) - 1
    np.testing.assert_allclose(model(x).numpy(), want, rtol=1e-5, atol=1e-6)


def test_a_weight_modified_between_forward_and_backward_is_refused():
    model = _model()
    opt = mg.SGD(model.parameters(), lr=0.1)
    step = compile_step(model, F.cross_entropy, opt)
    x, y = _batch()
    assert step.forward(x, y) is not None
    with mg.no_grad():
        model[2].weight.mul_(0.5)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        step.backward_and_update()
