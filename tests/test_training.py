"""Layers, SGD and Learner: behaviour and real learning on MNIST."""
import math
import time
from functools import partial

import numpy as np
import pytest

import minigrad as mg
from minigrad import datasets, nn
from minigrad import reference as R
from minigrad.nn import functional as F


def test_linear_init_and_shapes_follow_pytorch():
    layer = nn.Linear(784, 30, rng=np.random.default_rng(0))
    assert layer.weight.shape == (30, 784) and layer.bias.shape == (30,)
    bound = 1 / math.sqrt(784)
    assert np.abs(layer.weight.numpy()).max() <= bound
    assert np.abs(layer.weight.numpy()).max() > 0.9 * bound  # uniform over the whole range
    assert layer(mg.tensor(np.zeros((5, 784), np.float32))).shape == (5, 30)
    assert nn.Linear(3, 2, bias=False).bias is None


def test_sequential_fused_linear_relu_equals_unfused():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(20, 16, rng=rng), nn.ReLU(), nn.Linear(16, 3, rng=rng))
    x = mg.tensor(rng.standard_normal((8, 20)).astype(np.float32))
    fused = model(x)
    l1, _, l2 = model.layers
    unfused = l2(l1(x).relu())
    np.testing.assert_allclose(fused.numpy(), unfused.numpy(), rtol=1e-6, atol=1e-6)
    assert len(model.parameters()) == 4
    loss = F.cross_entropy(fused, np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    loss.backward()
    g_fused = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    F.cross_entropy(unfused, np.array([0, 1, 2, 0, 1, 2, 0, 1])).backward()
    for a, p in zip(g_fused, model.parameters(), strict=True):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_state_dict_round_trip_and_mismatch():
    a = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    b = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    b.load_state_dict(a.state_dict())
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    with pytest.raises(ValueError, match="shape"):
        nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 1)).load_state_dict(
            a.state_dict())


@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.01)])
def test_sgd_matches_reference_rule(momentum, wd):
    rng = np.random.default_rng(0)
    p = mg.tensor(rng.standard_normal(7).astype(np.float32), requires_grad=True)
    ref, vel = p.numpy().copy(), np.zeros(7, np.float32)
    opt = mg.SGD([p], lr=0.1, momentum=momentum, weight_decay=wd)
    for _ in range(3):
        g = rng.standard_normal(7).astype(np.float32)
        p.grad = mg.tensor(g)
        opt.step()
        R.sgd_step(ref, g, 0.1, momentum=momentum, velocity=vel if momentum else None,
                   weight_decay=wd)
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-6, atol=1e-7)
    opt.zero_grad()
    assert p.grad is None
    with pytest.raises(ValueError):
        mg.SGD([p], lr=-1)


def _three_vs_seven_learner(seed=0, lr=0.5, batch_size=64, hidden=30, **kw):
    (xt, yt), (xv, yv) = datasets.mnist_sample()
    dls = mg.DataLoaders.from_arrays(xt, yt.reshape(-1, 1), xv, yv.reshape(-1, 1),
                                     batch_size=batch_size, seed=seed)
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(784, hidden, rng=rng), nn.ReLU(),
                          nn.Linear(hidden, 1, rng=rng))
    lines = []
    learn = mg.Learner(dls, model, F.mnist_loss, lr=lr, metrics=[mg.batch_accuracy],
                       log=lines.append, **kw)
    return learn, lines


def test_simple_net_learns_three_vs_seven_on_real_mnist():
    learn, lines = _three_vs_seven_learner()
    history = learn.fit(15)
    assert history[-1]["batch_accuracy"] >= 0.97
    assert history[-1]["valid_loss"] < history[0]["valid_loss"]
    assert lines[0].split()[:4] == ["epoch", "train_loss", "valid_loss", "batch_accuracy"]
    assert len(lines) == 1 + 15 + 1 and lines[-1].startswith("stopped: finished 15 epochs")


def test_all_ten_digits_learn_with_cross_entropy():
    (xt, yt), (xv, yv) = datasets.mnist_digits()
    dls = mg.DataLoaders.from_arrays(xt, yt, xv, yv, batch_size=64, seed=0)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(784, 64, rng=rng), nn.ReLU(), nn.Linear(64, 10, rng=rng))
    learn = mg.Learner(dls, model, F.cross_entropy, opt_func=partial(mg.SGD, momentum=0.9),
                       lr=0.05, metrics=[mg.accuracy], log=lambda *_: None)
    assert learn.fit(5)[-1]["accuracy"] >= 0.88


def test_valid_metrics_cover_the_whole_valid_set():
    learn, _ = _three_vs_seven_learner(batch_size=100)  # 408 valid: batches 100,...,8
    learn.fit(1)
    (_, _), (xv, yv) = datasets.mnist_sample()
    want = mg.batch_accuracy(learn.predict(xv), yv)
    assert learn.history[-1]["batch_accuracy"] == want
    assert learn.history[-1]["valid_loss"] == pytest.approx(
        F.mnist_loss(learn.predict(xv), yv).item(), rel=1e-6)


def test_stops_when_target_is_reached():
    learn, lines = _three_vs_seven_learner()
    history = learn.fit(50, target=0.95)
    assert len(history) < 50 and history[-1]["batch_accuracy"] >= 0.95
    assert all(r["batch_accuracy"] < 0.95 for r in history[:-1])
    assert "reached the target" in learn.stop_reason and lines[-1].startswith("stopped")


def test_stops_when_time_runs_out():
    learn, _ = _three_vs_seven_learner(batch_size=8)
    start = time.perf_counter()
    learn.fit(1000, time_limit=0.3)
    assert time.perf_counter() - start < 5  # 1000 epochs would take far longer
    assert "time limit" in learn.stop_reason


def test_stops_when_valid_loss_stalls():
    learn, _ = _three_vs_seven_learner(lr=0.0)  # lr 0: the loss never improves
    history = learn.fit(20, patience=3)
    assert len(history) == 4 and "did not improve for 3 epochs" in learn.stop_reason


def test_non_finite_loss_stops_and_keeps_last_good_weights():
    learn, _ = _three_vs_seven_learner(lr=0.5)
    learn.fit(1)
    good = learn.model.state_dict()
    learn.loss_func = lambda p, t: F.mnist_loss(p, t) * float("nan")
    learn.fit(3)
    assert "became nan" in learn.stop_reason
    for name, value in learn.model.state_dict().items():
        np.testing.assert_array_equal(value, good[name])


def test_optimizer_state_carries_over_between_fit_calls():
    learn, _ = _three_vs_seven_learner(opt_func=partial(mg.SGD, momentum=0.9))
    learn.fit(1)
    opt = learn.opt
    buffers = [opt.state[p]["momentum_buffer"].copy() for p in learn.model.parameters()]
    learn.fit(1, lr=0.05)
    assert learn.opt is opt and opt.param_groups[0]["lr"] == 0.05
    assert all(not np.array_equal(a, opt.state[p]["momentum_buffer"])
               for a, p in zip(buffers, learn.model.parameters(), strict=True))


def test_fit_needs_a_metric_for_target():
    learn, _ = _three_vs_seven_learner()
    learn.metrics = []
    with pytest.raises(ValueError, match="metric"):
        learn.fit(1, target=0.9)


def test_same_seed_gives_bit_identical_weights():
    runs = []
    for _ in range(2):
        learn, _ = _three_vs_seven_learner(seed=3)
        learn.fit(2)
        runs.append(learn.model.state_dict())
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_metrics():
    assert mg.batch_accuracy(np.array([2.0, -1.0, 0.5]), np.array([1.0, 0.0, 0.0])) == \
        pytest.approx(2 / 3)
    assert mg.accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])) == 0.5
