"""Learner callbacks: events, Recorder, stop rules, one-cycle and lr_find."""
import math
import os
import signal
from functools import partial

import numpy as np
import pytest

import minigrad as mg
from minigrad import callbacks as C
from minigrad import nn, optim
from minigrad.nn import functional as F
from minigrad.schedule import minimum, steep, valley


def _data(n=40, seed=0, nan=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2)).astype(np.float32)
    y = (x[:, :1] + x[:, 1:] > 0).astype(np.float32)
    if nan:
        x[3, 0] = np.nan
    return x, y


def _learner(n=40, batch_size=10, nan=False, loss_func=F.mnist_loss, **kw):
    xt, yt = _data(n, 0, nan)
    xv, yv = _data(20, 1)
    dls = mg.DataLoaders.from_arrays(xt, yt, xv, yv, batch_size=batch_size, seed=0)
    model = nn.Linear(2, 1, rng=np.random.default_rng(0))
    lines = []
    kw = {"lr": 0.5, "metrics": [mg.batch_accuracy], **kw}
    return mg.Learner(dls, model, loss_func, log=lines.append, **kw), lines


def _weights(learn):
    return {k: np.array(v, copy=True) for k, v in learn.model.state_dict().items()}


class Events(C.Callback):
    def __init__(self):
        self.seen = []


for _event in C.EVENTS:  # the Learner looks handlers up on the class
    setattr(Events, _event, lambda self, _e=_event: self.seen.append(_e))


def test_events_come_in_fastais_order():
    ev = Events()
    learn, _ = _learner(n=20, cbs=[ev])
    learn.fit(1)
    batch = ["before_batch", "after_pred", "after_loss", "before_backward", "after_backward",
             "before_step", "after_step", "after_batch"]
    assert ev.seen == (["before_fit", "before_epoch", "before_train"] + batch * 2
                       + ["after_train", "before_validate", "after_validate", "after_epoch",
                          "after_fit"])


def test_cancel_batch_skips_the_step_and_cancel_fit_ends():
    class SkipAll(C.Callback):
        def before_batch(self):
            raise C.CancelBatchException

    learn, _ = _learner(cbs=[SkipAll()])
    before = _weights(learn)
    learn.fit(2)
    for k, v in _weights(learn).items():
        np.testing.assert_array_equal(v, before[k])

    class StopAtThird(C.Callback):
        order = 80  # after the Recorder has the batch

        def after_batch(self):
            if self.train_iter == 2:  # attributes come from the learner
                raise C.CancelFitException

    learn, _ = _learner(cbs=[StopAtThird()])
    learn.fit(5)
    assert len(learn.recorder.losses) == 3 and learn.recorder.values == []
    assert learn.stop_reason == "cancelled at epoch 0, batch 2"


def test_recorder_values_losses_and_lrs():
    learn, lines = _learner()
    learn.fit(3)
    rec = learn.recorder
    assert len(rec.values) == 3 and all(len(v) == 3 for v in rec.values)
    assert len(rec.losses) == len(rec.lrs) == 3 * 4 and set(rec.lrs) == {0.5}
    assert rec.metric_names == ["epoch", "train_loss", "valid_loss", "batch_accuracy", "time"]
    (_, _), (xv, yv) = (None, None), _data(20, 1)
    valid_loss = F.mnist_loss(learn.predict(xv), mg.tensor(yv)).item()
    assert rec.values[-1][1] == pytest.approx(valid_loss, rel=1e-6)
    assert rec.values[-1][2] == mg.batch_accuracy(learn.predict(xv), yv)
    assert [r["epoch"] for r in learn.history] == [0, 1, 2]
    assert rec.had_finite_loss and rec.best_epoch == int(np.argmin([v[1] for v in rec.values]))
    assert len(lines) == 5 and lines[-1] == "stopped: finished 3 epochs"


def test_train_loss_is_the_mean_over_the_epochs_batches():
    class Losses(C.Callback):
        order = 40

        def after_loss(self):
            self.got.append(self.loss.item())

    cb = Losses()
    cb.got = []
    learn, _ = _learner(n=25, cbs=[cb])  # batches 10, 10, 5
    learn.fit(1)
    want = (10 * cb.got[0] + 10 * cb.got[1] + 5 * cb.got[2]) / 25
    assert learn.recorder.values[0][0] == pytest.approx(want, rel=1e-9)
    smooth = [0.0]
    for i, v in enumerate(cb.got):
        smooth.append(0.98 * smooth[-1] + 0.02 * v)
        assert learn.recorder.losses[i] == pytest.approx(smooth[-1] / (1 - 0.98 ** (i + 1)))


def test_a_metric_returning_a_tensor_is_printed():
    def batch_accuracy(xb, yb):  # the chapter's, returning a one-element tensor
        preds = xb.sigmoid()
        correct = (preds > 0.5) == yb
        return correct.float().mean()

    learn, lines = _learner(metrics=[batch_accuracy])
    learn.fit(1)
    assert isinstance(learn.recorder.values[0][2], float)
    assert lines[1].split()[3] == f"{learn.recorder.values[0][2]:.6f}"


def test_ctrl_c_stops_after_the_batch_and_restores_the_handler():
    class CtrlC(C.Callback):
        order = 10

        def after_batch(self):
            if self.train_iter == 1:
                os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    learn, _ = _learner(cbs=[CtrlC()])
    learn.fit(10)
    assert learn.stop_reason == "interrupted (Ctrl-C) at epoch 0, batch 1"
    assert len(learn.recorder.values) == 1 and len(learn.recorder.losses) == 2
    assert signal.getsignal(signal.SIGINT) is before


def test_nan_from_the_start_is_reported_not_restored_as_good():
    learn, lines = _learner(nan=True)  # the first training batch holds a NaN
    start = _weights(learn)
    learn.fit(3)
    rec = learn.recorder
    assert not rec.had_finite_loss and rec.best_epoch is None and learn.best_state is None
    assert rec.good_state is None and math.isnan(rec.values[0][0])
    assert "no epoch had a finite loss" in learn.stop_reason
    for k, v in _weights(learn).items():
        np.testing.assert_array_equal(v, start[k])


def test_nan_late_in_the_first_epoch_is_no_good_epoch():
    calls = [0]

    def nan_from_third_batch(p, t):
        calls[0] += 1
        return F.mnist_loss(p, t) * (float("nan") if calls[0] > 2 else 1.0)

    learn, _ = _learner(loss_func=nan_from_third_batch)
    start = _weights(learn)
    learn.fit(3)
    rec = learn.recorder
    assert not rec.had_finite_loss and learn.best_state is None
    assert len(rec.values) == 1 and math.isnan(rec.values[0][0])
    assert "epoch 0, batch 2" in learn.stop_reason
    for k, v in _weights(learn).items():  # the two steps taken are undone
        np.testing.assert_array_equal(v, start[k])


def test_nan_after_good_epochs_restores_the_last_good_one():
    learn, _ = _learner()
    learn.fit(2)
    learn.loss_func = lambda p, t: F.mnist_loss(p, t) * float("nan")
    good = _weights(learn)
    learn.fit(2)
    assert "restored the weights from before the fit" in learn.stop_reason
    for k, v in _weights(learn).items():
        np.testing.assert_array_equal(v, good[k])

    calls = [0]

    def late_nan(p, t):  # finite for the first epoch (4 batches), then NaN
        calls[0] += 1
        return F.mnist_loss(p, t) * (float("nan") if calls[0] > 5 else 1.0)

    learn, _ = _learner(loss_func=late_nan)
    learn.fit(3)
    assert learn.recorder.had_finite_loss and learn.recorder.best_epoch == 0
    assert "restored the weights of the last good epoch" in learn.stop_reason
    for k, v in _weights(learn).items():
        np.testing.assert_array_equal(v, learn.recorder.good_state[k])


def test_learns_from_a_chapter_style_list_of_pairs():
    x, y = _data(200)
    xv, yv = _data(40, 1)
    dset = list(zip(mg.tensor(x), mg.tensor(y), strict=True))
    valid = list(zip(mg.tensor(xv), mg.tensor(yv), strict=True))
    dls = mg.DataLoaders(mg.DataLoader(dset, batch_size=20, shuffle=True, seed=0),
                         mg.DataLoader(valid, batch_size=20))
    learn = mg.Learner(dls, nn.Linear(2, 1), F.mnist_loss, opt_func=mg.SGD, lr=1.0,
                       metrics=mg.batch_accuracy, log=lambda *a: None)
    learn.fit(10)
    assert learn.recorder.values[-1][2] >= 0.9
    with pytest.raises(ValueError, match="n_epoch"):
        learn.fit(-1)


def test_batches_must_be_input_target_pairs():
    dls = mg.DataLoaders(mg.DataLoader(range(6), batch_size=3), mg.DataLoader(range(2)))
    learn = mg.Learner(dls, nn.Linear(2, 1), F.mnist_loss, log=lambda *a: None)
    with pytest.raises(ValueError, match="input, target"):
        learn.fit(1)


def test_empty_training_set_raises():
    x, y = np.zeros((0, 2), np.float32), np.zeros((0, 1), np.float32)
    dls = mg.DataLoaders(mg.DataLoader((x, y), batch_size=4), mg.DataLoader((x, y), 4))
    learn = mg.Learner(dls, nn.Linear(2, 1), F.mnist_loss, log=lambda *a: None)
    with pytest.raises(ValueError, match="training set"):
        learn.fit(1)


def test_early_stopping_on_a_metric_and_target():
    learn, _ = _learner(lr=0.0)
    learn.fit(10, cbs=[C.EarlyStoppingCallback(monitor="batch_accuracy", patience=2)])
    assert len(learn.recorder.values) == 3
    assert learn.stop_reason.startswith("batch accuracy did not improve for 2 epochs")
    learn.fit(2)
    assert learn.stop_reason == "finished 2 epochs"  # fit's callbacks were for one fit
    with pytest.raises(ValueError, match="cannot monitor"):
        learn.fit(1, cbs=[C.EarlyStoppingCallback(monitor="nope")])


def _scheduled(opt_func, n_epoch=2, **kw):
    class Hypers(C.Callback):
        order = 5

        def before_fit(self):
            self.lrs, self.moms = [], []

        def before_step(self):
            group = self.opt.param_groups[0]
            self.lrs.append(group["lr"])
            self.moms.append(group["betas"][0] if "betas" in group else group["momentum"])

    hyp = Hypers()
    learn, _ = _learner(n=80, opt_func=opt_func)  # 8 batches an epoch
    learn.fit_one_cycle(n_epoch, 0.4, cbs=[hyp], **kw)
    return hyp, learn


@pytest.mark.parametrize("opt_func", [partial(optim.SGD, momentum=0.9), optim.Adam])
def test_fit_one_cycle_follows_fastais_schedule(opt_func):
    hyp, learn = _scheduled(opt_func)
    total = 16
    assert len(hyp.lrs) == total
    assert hyp.lrs[0] == pytest.approx(0.4 / 25) and hyp.moms[0] == pytest.approx(0.95)
    assert hyp.lrs[4] == pytest.approx(0.4) and hyp.moms[4] == pytest.approx(0.85)
    assert hyp.lrs[2] == pytest.approx((0.4 / 25 + 0.4) / 2)  # cosine: halfway at pct 1/8
    assert hyp.moms[2] == pytest.approx(0.9)
    # second phase: pct 4/16..15/16 of a cosine from 0.4 down to 0.4e-5
    for i in range(4, total):
        pos = (i / total - 0.25) / 0.75
        want = 0.4 + (1 + math.cos(math.pi * (1 - pos))) * (0.4e-5 - 0.4) / 2
        assert hyp.lrs[i] == pytest.approx(want, rel=1e-9)
    assert hyp.lrs == learn.recorder.lrs
    assert (np.diff(hyp.lrs[4:]) < 0).all() and (np.diff(hyp.moms[4:]) > 0).all()


def test_fit_one_cycle_leaves_plain_sgd_without_momentum():
    hyp, _ = _scheduled(optim.SGD)
    assert set(hyp.moms) == {0.0}


def test_fit_one_cycle_trains_three_vs_seven():
    from minigrad import datasets
    (xt, yt), (xv, yv) = datasets.mnist_sample()
    dls = mg.DataLoaders.from_arrays(xt, yt.reshape(-1, 1), xv, yv.reshape(-1, 1), 64, seed=0)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(784, 30, rng=rng), nn.ReLU(), nn.Linear(30, 1, rng=rng))
    learn = mg.Learner(dls, model, F.mnist_loss, opt_func=optim.Adam, metrics=[mg.batch_accuracy],
                       log=lambda *a: None)
    learn.fit_one_cycle(3, 0.01)
    assert learn.recorder.values[-1][2] >= 0.97


def test_lr_find_sweeps_exponentially_and_restores_everything():
    learn, _ = _learner(n=200, opt_func=partial(optim.SGD, momentum=0.9))
    learn.fit(1)
    weights, opt_state = _weights(learn), learn.opt.state_dict()
    lr_before = learn.opt.param_groups[0]["lr"]
    found = learn.lr_find(start_lr=1e-5, end_lr=1.0, num_it=30)
    rec = learn.recorder
    assert len(rec.lrs) == 30
    np.testing.assert_allclose(rec.lrs, [1e-5 * 1e5 ** (i / 30) for i in range(30)], rtol=1e-9)
    assert found._fields == ("valley",) and 1e-5 <= found.valley <= 1.0
    for k, v in _weights(learn).items():
        np.testing.assert_array_equal(v, weights[k])
    after = learn.opt.state_dict()
    for i, s in opt_state["state"].items():
        np.testing.assert_array_equal(after["state"][i]["momentum_buffer"], s["momentum_buffer"])
    assert learn.opt.param_groups[0]["lr"] == lr_before
    assert all(p.grad is None for p in learn.model.parameters())


def test_lr_find_stops_when_the_loss_diverges():
    learn, _ = _learner(n=400, loss_func=lambda p, t: ((p - t) ** 2).mean())
    found = learn.lr_find(start_lr=1e-3, end_lr=1e6, num_it=100,
                          suggest_funcs=(valley, minimum, steep))
    losses = learn.recorder.losses
    assert len(losses) < 100 and "diverged" in learn.stop_reason
    best = np.minimum.accumulate(losses)
    assert all(v <= 4 * b for v, b in zip(losses[:-1], best[:-1], strict=True))
    assert not losses[-1] <= 4 * best[-2]  # stopped at the first batch past 4x the best
    assert found._fields == ("valley", "minimum", "steep")
    assert all(1e-3 <= v <= 1e6 for v in found)


def test_suggestions_on_a_known_curve():
    lrs = np.logspace(-5, 1, 50)
    losses = list(1 + np.cos(np.linspace(0, np.pi, 50)))  # falls, flat at the end
    losses[40:] = [losses[39] + k for k in range(10)]  # then rises
    assert minimum(lrs, losses, 50)[0] == pytest.approx(lrs[39] / 10)
    assert steep(lrs, losses, 50)[0] == pytest.approx(lrs[int(np.argmin(np.diff(losses)))])
    v = valley(lrs, losses, 50)[0]
    assert lrs[10] < v < lrs[30]


def test_plots_draw_the_recorded_curves():
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    matplotlib.use("Agg")
    learn, _ = _learner(n=200)
    learn.fit(2)
    ax = learn.recorder.plot_loss(skip_start=0)
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [40, 2]
    learn.lr_find(num_it=20)
    ax = learn.recorder.plot_lr_find(skip_end=0)
    assert ax.get_xscale() == "log" and len(ax.get_lines()[0].get_xdata()) == 20


def test_callbacks_are_reachable_by_name_and_removable():
    learn, _ = _learner()
    assert isinstance(learn.recorder, C.Recorder)
    assert isinstance(learn.terminate_on_nan, C.TerminateOnNaNCallback)
    assert isinstance(learn.progress, C.ProgressCallback) and learn.progress.name == "progress"
    learn.remove_cb(C.ProgressCallback)
    assert not hasattr(learn, "progress")
    assert not any(isinstance(c, C.ProgressCallback) for c in learn.cbs)
    learn.fit(1)
    with pytest.raises(TypeError, match="Callback"):
        learn.add_cb(object())


def test_progress_bar_draws_when_asked():
    import io
    out = io.StringIO()
    learn, _ = _learner(cbs=[])
    learn.remove_cb(C.ProgressCallback).add_cb(C.ProgressCallback(stream=out))
    learn.fit(1, progress=False)
    assert out.getvalue() == ""
    learn.fit(1, progress=True)
    assert "epoch 0 [" in out.getvalue() and "4/4 loss" in out.getvalue()
