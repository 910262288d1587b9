"""Optimizers and schedules against torch.optim, step by step."""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.optim import lr_scheduler

torch = pytest.importorskip("torch", reason="PyTorch (the oracle for these tests) is not "
                                             "installed")

SHAPES = [(5, 3), (7,)]


def _pair(dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ours = [mg.tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return ours, theirs


def _run(make_ours, make_theirs, dtype, steps=6, seed=0):
    """Step both optimizers on the same random gradients; compare every step."""
    ours, theirs = _pair(dtype, seed)
    opt, ref = make_ours(ours), make_theirs(theirs)
    rng = np.random.default_rng(seed + 1)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for _ in range(steps):
        for p, q in zip(ours, theirs, strict=True):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad, q.grad = mg.tensor(g.copy()), torch.tensor(g.copy())
        opt.step()
        ref.step()
        for p, q in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p.numpy(), q.detach().numpy(), **tol)
    return opt, ref, ours


SGD_CASES = [dict(), dict(momentum=0.9), dict(momentum=0.9, weight_decay=0.1),
             dict(weight_decay=0.05), dict(momentum=0.8, dampening=0.3),
             dict(momentum=0.9, nesterov=True, weight_decay=0.01)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_matches_torch(kw, dtype):
    _run(lambda ps: optim.SGD(ps, lr=0.1, **kw), lambda ps: torch.optim.SGD(ps, lr=0.1, **kw),
         dtype)


ADAM_CASES = [dict(), dict(weight_decay=0.1), dict(betas=(0.8, 0.9), eps=1e-3),
              dict(lr=0.05, weight_decay=0.3, betas=(0.5, 0.7))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", ADAM_CASES, ids=str)
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_and_adamw_match_torch(name, kw, dtype):
    kw = {"lr": 0.01, **kw}
    _run(lambda ps: getattr(optim, name)(ps, **kw),
         lambda ps: getattr(torch.optim, name)(ps, **kw), dtype, steps=8)


def test_adamw_default_weight_decay_is_pytorchs():
    assert optim.AdamW(_pair(np.float32)[0]).param_groups[0]["weight_decay"] == \
        torch.optim.AdamW(_pair(np.float32)[1]).param_groups[0]["weight_decay"]


def test_param_groups_get_their_own_options():
    def groups(ps):
        return [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.5, "momentum": 0.5}]
    opt, _, _ = _run(lambda ps: optim.SGD(groups(ps), lr=0.1, momentum=0.9),
                     lambda ps: torch.optim.SGD(groups(ps), lr=0.1, momentum=0.9), np.float32)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[0]["momentum"] == 0.9


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.01)])
def test_state_dict_round_trip_continues_the_same_run(make):
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(6)]

    def steps(opt, ps, gs):
        for g in gs:
            for p, gi in zip(ps, g, strict=True):
                p.grad = mg.tensor(gi)
            opt.step()

    ps, _ = _pair(np.float32)
    opt = make(ps)
    steps(opt, ps, grads[:3])
    saved, weights = opt.state_dict(), [p.numpy().copy() for p in ps]
    steps(opt, ps, grads[3:])
    qs = [mg.tensor(w, requires_grad=True) for w in weights]
    other = make(qs)
    other.load_state_dict(saved)
    steps(other, qs, grads[3:])
    for p, q in zip(ps, qs, strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    assert sorted(saved["state"]) == [0, 1] and saved["param_groups"][0]["params"] == [0, 1]


def test_zero_grad_and_bad_arguments():
    ps, _ = _pair(np.float32)
    opt = optim.SGD(ps, lr=0.1)
    for p in ps:
        p.grad = mg.tensor(np.ones(p.shape, np.float32))
    opt.zero_grad(set_to_none=False)
    assert all(not p.grad.numpy().any() for p in ps)
    opt.zero_grad()
    assert all(p.grad is None for p in ps)
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(ps, lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(ps, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([{"params": ps}, {"params": ps[:1]}])
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(ps, nesterov=True)


def _lrs(make_ours, make_theirs, n, opt_name="SGD", **opt_kw):
    ps, qs = _pair(np.float32)
    opt = getattr(optim, opt_name)(ps, lr=0.1, **opt_kw)
    ref = getattr(torch.optim, opt_name)(qs, lr=0.1, **opt_kw)
    ours, theirs = make_ours(opt), make_theirs(ref)
    key = "betas" if opt_name == "Adam" else "momentum"
    got, want = [], []
    for _ in range(n):
        got.append((ours.get_last_lr()[0], opt.param_groups[0][key]))
        want.append((theirs.get_last_lr()[0], ref.param_groups[0][key]))
        opt.step()
        ref.step()
        ours.step()
        theirs.step()
    return got, want


def _close(got, want):
    assert len(got) == len(want)
    for (a, ma), (b, mb) in zip(got, want, strict=True):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-15)
        assert np.allclose(ma, mb, rtol=1e-9)


@pytest.mark.parametrize("name,kw,n", [
    ("StepLR", dict(step_size=3, gamma=0.5), 12),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.001), 35),
    ("CosineAnnealingLR", dict(T_max=4), 20),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=40), 40),
    ("OneCycleLR", dict(max_lr=0.3, epochs=3, steps_per_epoch=7, pct_start=0.25,
                        final_div_factor=1e5), 21),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=30, anneal_strategy="linear",
                        three_phase=True), 30),
])
def test_schedules_match_torch_over_a_run(name, kw, n):
    got, want = _lrs(lambda o: getattr(lr_scheduler, name)(o, **kw),
                     lambda o: getattr(torch.optim.lr_scheduler, name)(o, **kw), n,
                     momentum=0.9)
    _close(got, want)
    if name == "OneCycleLR":
        assert max(lr for lr, _ in got) == pytest.approx(kw["max_lr"], rel=0.05)


def test_one_cycle_moves_adams_beta1():
    kw = dict(max_lr=0.01, total_steps=20)
    got, want = _lrs(lambda o: lr_scheduler.OneCycleLR(o, **kw),
                     lambda o: torch.optim.lr_scheduler.OneCycleLR(o, **kw), 20, "Adam")
    _close(got, want)
    assert got[0][1][0] == 0.95 and min(b[0] for _, b in got) == pytest.approx(0.85, abs=1e-3)


def test_one_cycle_refuses_a_step_past_the_end_and_bad_settings():
    opt = optim.SGD(_pair(np.float32)[0], lr=0.1, momentum=0.9)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()
    with pytest.raises(ValueError, match="total_steps"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0)
    assert math.isclose(lr_scheduler.StepLR(optim.SGD(_pair(np.float32)[0], lr=0.2), 1)
                        .get_last_lr()[0], 0.2)
