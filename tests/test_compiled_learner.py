"""Learner with the compiled step: when it applies, and the same training as eager."""
import functools

import numpy as np
import pytest

import minigrad as mg
from minigrad import callbacks as C
from minigrad import nn
from minigrad.compiled import CompileError
from minigrad.nn import functional as F

pytestmark = pytest.mark.usefixtures("one_thread")


def _dls(n=150, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 12)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    return mg.DataLoaders.from_arrays(x[:100], y[:100], x[100:], y[100:], batch_size=32,
                                      seed=0)  # 100 rows: a last batch of 4


def _model(*extra):
    rng = np.random.default_rng(1)
    return nn.Sequential(nn.Linear(12, 16, rng=rng), nn.ReLU(), *extra,
                         nn.Linear(16, 4, rng=rng))


class Seen(C.Callback):
    """Records, per training batch, whether the step was compiled, and the loss."""

    def before_fit(self):
        self.compiled, self.losses = [], []

    def after_loss(self):
        if self.learn.training:
            self.compiled.append(self.learn.compiled is not None)
            self.losses.append(self.learn.loss.numpy().copy())


MOMENTUM = functools.partial(mg.SGD, momentum=0.9)


def _learner(compile, model=None, cbs=(), opt=MOMENTUM):  # noqa: A002
    return mg.Learner(_dls(), model or _model(), F.cross_entropy, opt_func=opt, lr=0.1,
                      metrics=[mg.accuracy], cbs=[Seen(), *cbs], log=lambda *a: None,
                      compile=compile)


def _weights(learn):
    return [p.numpy().copy() for p in learn.model.parameters()]


@pytest.mark.parametrize("fit", ["fit", "fit_one_cycle"])
def test_compiled_fit_equals_eager_fit(fit):
    runs = []
    for compile in (False, None):  # noqa: A001
        learn = _learner(compile)
        getattr(learn, fit)(3)
        runs.append(learn)
    eager, compiled = runs
    assert not any(eager.seen.compiled) and all(compiled.seen.compiled)
    assert len(compiled.seen.compiled) == 3 * 4
    assert all(np.array_equal(a, b) for a, b in zip(_weights(eager), _weights(compiled),
                                                    strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(eager.seen.losses, compiled.seen.losses,
                                                    strict=True))
    assert eager.recorder.values == compiled.recorder.values
    assert eager.recorder.losses == compiled.recorder.losses
    for p, q in zip(eager.opt.param_groups[0]["params"], compiled.opt.param_groups[0]["params"],
                    strict=True):
        assert np.array_equal(eager.opt.state[p]["momentum_buffer"],
                              compiled.opt.state[q]["momentum_buffer"])
    assert all(p.grad is None for p in compiled.model.parameters())
    assert compiled.compiled is None  # only during a fit


class AfterPred(C.Callback):
    def after_pred(self):
        pass


def test_a_callback_on_after_pred_makes_it_eager_and_compile_true_says_why():
    learn = _learner(None, cbs=[AfterPred()])
    learn.fit(1)
    assert not any(learn.seen.compiled)
    with pytest.raises(CompileError, match="AfterPred.after_pred"):
        _learner(True, cbs=[AfterPred()]).fit(1)


def test_unsupported_model_falls_back_and_compile_true_names_the_layer():
    learn = _learner(None, model=_model(nn.Sigmoid()))
    learn.fit(1)
    assert not any(learn.seen.compiled) and len(learn.seen.compiled) == 4
    with pytest.raises(CompileError, match="Sigmoid"):
        _learner(True, model=_model(nn.Sigmoid())).fit(1)
    learn = _learner(True)
    learn.fit(1)
    assert all(learn.seen.compiled)
    with pytest.raises(ValueError, match="compile must be"):
        _learner("yes")


def test_pred_is_readable_and_replacing_the_loss_is_refused():
    class Preds(C.Callback):
        def before_fit(self):
            self.preds = []

        def after_batch(self):
            self.preds.append(self.learn.pred.numpy())
    got = []
    for compile in (False, True):  # noqa: A001
        cb = Preds()
        _learner(compile, cbs=[cb]).fit(1)
        got.append(cb.preds)
    assert len(got[1]) == 4 and all(np.array_equal(a, b) for a, b in zip(*got, strict=True))

    class Scale(C.Callback):
        def after_loss(self):
            self.learn.loss = self.learn.loss * 2
    with pytest.raises(RuntimeError, match="compile=False"):
        _learner(True, cbs=[Scale()]).fit(1)


def test_nan_loss_stops_before_the_update_when_compiled():
    learn = _learner(True)
    x = learn.dls.train._arrays[0]
    x[5, 0] = np.nan
    learn.fit(2)
    assert "training loss became nan" in learn.stop_reason
    assert all(np.isfinite(p.numpy()).all() for p in learn.model.parameters())
    assert all(np.isfinite(s["momentum_buffer"]).all() for s in learn.opt.state.values())
