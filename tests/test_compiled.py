"""The compiled training step (minigrad.compiled) against eager training, bit for bit."""
import functools

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.compiled import CompileError, compile_step
from minigrad.nn import functional as F

pytestmark = pytest.mark.usefixtures("one_thread")


def _mlp(seed=1, sizes=(20, 16, 8, 5), relu_last=False, bias=True, dtype=np.float32):
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b, bias=bias, rng=rng, dtype=dtype))
        if i < len(sizes) - 2 or relu_last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _data(n=90, d=20, classes=5, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, classes, n)


def _state(model, opt):
    params = [p.numpy().copy() for p in model.parameters()]
    state = [{k: np.copy(v) for k, v in opt.state.get(p, {}).items()}
             for p in model.parameters()]
    return params, state


def _assert_same(a, b):
    (pa, sa), (pb, sb) = a, b
    assert all(np.array_equal(x, y) for x, y in zip(pa, pb, strict=True))
    assert [sorted(s) for s in sa] == [sorted(s) for s in sb]
    for s, t in zip(sa, sb, strict=True):
        assert all(np.array_equal(s[k], t[k]) for k in s)


def _train_both(make_model, loss_func, make_opt, batches):
    """Losses and final state of eager steps and of compiled steps on twin models."""
    results = []
    for compiled in (False, True):
        model = make_model()
        opt = make_opt(model.parameters())
        step = compile_step(model, loss_func, opt) if compiled else None
        losses = []
        for xb, yb in batches:
            xb, yb = mg.Tensor(xb), mg.Tensor(yb)
            if compiled:
                losses.append(step.step(xb, yb))
                assert all(p.grad is None for p in model.parameters())
            else:
                loss = loss_func(model(xb), yb)
                loss.backward()
                opt.step()
                opt.zero_grad()
                losses.append(loss.numpy())
        results.append((losses, _state(model, opt)))
    (le, se), (lc, sc) = results
    assert len(le) == len(lc)
    for a, b in zip(le, lc, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    _assert_same(se, sc)
    return se


def _batches(x, y, sizes):
    out, start = [], 0
    for n in sizes:
        out.append((x[start:start + n], y[start:start + n]))
        start += n
    return out


OPTIMIZERS = {
    "sgd": functools.partial(mg.SGD, lr=0.1),
    "sgd_momentum": functools.partial(mg.SGD, lr=0.05, momentum=0.9),
    "sgd_wd": functools.partial(mg.SGD, lr=0.05, momentum=0.9, weight_decay=1e-2),
    "sgd_dampening": functools.partial(mg.SGD, lr=0.05, momentum=0.9, dampening=0.3),
    "sgd_nesterov": functools.partial(mg.SGD, lr=0.05, momentum=0.9, nesterov=True),
    "adam": functools.partial(optim.Adam, lr=1e-2, weight_decay=1e-3),
    "adamw": functools.partial(optim.AdamW, lr=1e-2),
}


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_cross_entropy_steps_match_eager_bit_for_bit(opt):
    x, y = _data()
    before = _state(_mlp(), OPTIMIZERS[opt](_mlp().parameters()))
    after = _train_both(_mlp, F.cross_entropy, OPTIMIZERS[opt],
                        _batches(x, y, [32, 7, 32, 2, 17]))
    assert not np.array_equal(before[0][0], after[0][0])  # it trained


@pytest.mark.parametrize("loss", ["bce", "bce_module", "mnist", "ce_module"])
def test_other_losses_match_eager(loss):
    x, y = _data()
    if loss == "ce_module":
        _train_both(_mlp, nn.CrossEntropyLoss(), OPTIMIZERS["sgd_momentum"],
                    _batches(x, y, [30, 30, 11]))
        return
    t = (y[:, None] > 2).astype(np.float32)
    func = {"bce": F.binary_cross_entropy_with_logits, "bce_module": nn.BCEWithLogitsLoss(),
            "mnist": F.mnist_loss}[loss]
    _train_both(functools.partial(_mlp, sizes=(20, 12, 1)), func, OPTIMIZERS["sgd_momentum"],
                _batches(x, t, [30, 30, 11]))


def test_variants_match_eager_no_bias_relu_last_frozen_layer_float64():
    x, y = _data()
    _train_both(functools.partial(_mlp, bias=False, relu_last=True), F.cross_entropy,
                OPTIMIZERS["sgd_momentum"], _batches(x, y, [32, 32, 26]))

    def frozen():
        model = _mlp()
        model[0].weight.requires_grad_(False)
        model[0].bias.requires_grad_(False)
        return model
    _train_both(frozen, F.cross_entropy,
                lambda ps: mg.SGD([p for p in ps if p.requires_grad], lr=0.1, momentum=0.9),
                _batches(x, y, [32, 32, 26]))
    x64, _ = _data(dtype=np.float64)
    _train_both(functools.partial(_mlp, dtype=np.float64), F.cross_entropy,
                OPTIMIZERS["adam"], _batches(x64, y, [40, 50]))


def test_leading_flatten_takes_image_batches():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4, 5)).astype(np.float32)
    y = rng.integers(0, 5, 40)

    def model():
        return nn.Sequential(nn.Flatten(), *_mlp().layers)
    _train_both(model, F.cross_entropy, OPTIMIZERS["sgd_momentum"], _batches(x, y, [16, 16, 8]))


def test_updates_in_place_bump_versions_and_reads_hyperparameters_each_step():
    x, y = _data()
    model = _mlp()
    opt = mg.SGD(model.parameters(), lr=0.1, momentum=0.9)
    arrays = [p.numpy() for p in model.parameters()]
    step = compile_step(model, F.cross_entropy, opt)
    stale = F.cross_entropy(model(mg.Tensor(x[:8])), mg.Tensor(y[:8]))
    step.step(x[:8], y[:8])
    assert all(p.numpy() is a for p, a in zip(model.parameters(), arrays, strict=True))
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        stale.backward()
    for group in opt.param_groups:
        group["lr"] = 0.0
    frozen = [a.copy() for a in arrays]
    opt.param_groups[0]["momentum"] = 0.0  # lr 0 and no velocity: nothing moves
    step.step(x[8:16], y[8:16])
    assert all(np.array_equal(a, b) for a, b in zip(arrays, frozen, strict=True))
    assert set(step.grads()) == set(model.parameters())


def test_eager_step_bumps_versions_too():
    x, y = _data()
    model = _mlp()
    opt = mg.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(mg.Tensor(x)), mg.Tensor(y))
    loss.backward(retain_graph=True)  # the graph stays: only the versions can refuse
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_batches_it_does_not_take_are_left_untouched():
    x, y = _data()
    model = _mlp()
    step = compile_step(model, F.cross_entropy, mg.SGD(model.parameters(), lr=0.1))
    before = [p.numpy().copy() for p in model.parameters()]
    assert step.step(x.astype(np.float64), y) is None  # another dtype
    assert step.step(x[:, :10], y) is None  # not contiguous
    assert step.step(x, y.astype(np.float32)) is None  # probabilities, not indices
    assert step.step(x, y + 10) is None  # labels out of range: eager raises its error
    assert step.step(x[:0], y[:0]) is None
    assert all(np.array_equal(p.numpy(), b) for p, b in zip(model.parameters(), before,
                                                            strict=True))


class Custom(nn.Module):
    def __init__(self):
        self.lin = nn.Linear(20, 5)

    def forward(self, x):
        return self.lin(x)


class StepSGD(mg.SGD):
    def step(self):
        super().step()


@pytest.mark.parametrize("model, loss, opt, message", [
    (lambda: nn.Sequential(nn.Linear(20, 5), nn.Sigmoid()), F.cross_entropy, mg.SGD,
     "layer 1 \\(Sigmoid\\)"),
    (lambda: nn.Sequential(nn.ReLU(), nn.Linear(20, 5)), F.cross_entropy, mg.SGD,
     "layer 0 \\(ReLU\\)"),
    (Custom, F.cross_entropy, mg.SGD, "Custom, not an nn.Sequential"),
    (_mlp, F.mse_loss, mg.SGD, "mse_loss is not supported"),
    (_mlp, nn.CrossEntropyLoss(label_smoothing=0.1), mg.SGD, "CrossEntropyLoss"),
    (_mlp, F.cross_entropy, StepSGD, "StepSGD overrides step"),
])
def test_unsupported_models_losses_optimizers_are_named(model, loss, opt, message):
    m = model()
    with pytest.raises(CompileError, match=message):
        compile_step(m, loss, opt(m.parameters(), lr=0.1))


def test_shared_and_missing_parameters_are_refused():
    lin = nn.Linear(5, 5)
    shared = nn.Sequential(lin, nn.ReLU(), lin)
    with pytest.raises(CompileError, match="shared"):
        compile_step(shared, F.cross_entropy, mg.SGD(shared.parameters(), lr=0.1))
    model = _mlp()
    with pytest.raises(CompileError, match="not in the optimizer"):
        compile_step(model, F.cross_entropy, mg.SGD(model.parameters()[:2], lr=0.1))


def test_ignored_labels_are_left_to_eager():
    x, y = _data()
    model = _mlp()
    step = compile_step(model, nn.CrossEntropyLoss(ignore_index=3),
                        mg.SGD(model.parameters(), lr=0.1))
    y = np.where(np.arange(len(y)) == 4, 3, np.where(y == 3, 0, y))
    assert step.step(x[:4], y[:4]) is not None
    assert step.step(x[:8], y[:8]) is None  # label 3 at row 4: eager ignores it


def test_buffers_are_kept_for_a_few_batch_sizes():
    x, y = _data()
    _train_both(_mlp, F.cross_entropy, OPTIMIZERS["sgd_momentum"],
                _batches(x, y, [5, 6, 7, 8, 9, 5, 10, 6]))
    model = _mlp()
    step = compile_step(model, F.cross_entropy, mg.SGD(model.parameters(), lr=0.1))
    for n in range(1, 8):
        step.step(x[:n], y[:n])
    assert len(step._buffers) == step.MAX_SIZES
