"""Hyper-parameter schedules during training (fastai's callback.schedule):
SchedCos/SchedExp, combined_cos, ParamScheduler, and LRFinder with its
suggestion functions valley, minimum and steep; Learner's fit_one_cycle and
lr_find (as fastai, defined here and bound to Learner)."""
import collections
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from minigrad.callbacks import (
    Callback,
    CancelFitException,
    CancelValidException,
    _snapshot,
)

__all__ = ["LRFinder", "ParamScheduler", "SchedCos", "SchedExp", "combine_scheds",
           "combined_cos", "fit_one_cycle", "lr_find", "minimum", "set_hyper", "steep",
           "valley"]

Schedule = Callable[[float], float]
"""A hyper-parameter as a function of the fraction of training done (0 to 1)."""
Suggestion = tuple[float, tuple[float, float]]


def SchedCos(start: float, end: float) -> Schedule:  # noqa: N802 - fastai's name
    """Cosine from ``start`` (pos 0) to ``end`` (pos 1)."""
    return lambda pos: start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def SchedExp(start: float, end: float) -> Schedule:  # noqa: N802 - fastai's name
    """Exponential from ``start`` to ``end``."""
    return lambda pos: start * (end / start) ** pos


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Schedule]) -> Schedule:
    """One schedule from pieces: ``scheds[i]`` covers a fraction ``pcts[i]``."""
    edges = np.cumsum([0.0, *pcts])

    def sched(pos: float) -> float:
        if int(pos) == 1:
            return scheds[-1](1.0)
        i = int(np.nonzero(pos >= edges)[0].max())
        return scheds[i]((pos - edges[i]) / (edges[i + 1] - edges[i]))
    return sched


def combined_cos(pct: float, start: float, middle: float, end: float) -> Schedule:
    """Cosine from ``start`` to ``middle`` over ``pct``, then to ``end``."""
    return combine_scheds([pct, 1 - pct], [SchedCos(start, middle), SchedCos(middle, end)])


def set_hyper(opt: Any, name: str, value: float) -> None:
    """Set 'lr' or 'mom' in every parameter group. 'mom' is SGD's momentum
    (only where it is non-zero) or Adam's beta1."""
    for group in opt.param_groups:
        if name == "lr":
            group["lr"] = value
        elif name == "mom":
            if "betas" in group:
                group["betas"] = (value, *group["betas"][1:])
            elif group.get("momentum"):
                group["momentum"] = value
        else:
            group[name] = value


class ParamScheduler(Callback):
    """Set hyper-parameters before every training batch from ``scheds``
    ({'lr': f, 'mom': g}, each a function of the fraction of training done);
    the values used are kept in ``hps``."""

    order = 60

    def __init__(self, scheds: dict[str, Schedule]) -> None:
        self.scheds = scheds

    def before_fit(self):
        self.hps = {name: [] for name in self.scheds}

    def before_batch(self):
        if self.learn.training:
            self._update(self.learn.pct_train)

    def _update(self, pct):
        for name, f in self.scheds.items():
            value = f(pct)
            set_hyper(self.learn.opt, name, value)
            self.hps[name].append(value)


class LRFinder(ParamScheduler):
    """fastai's learning-rate range test: the rate grows exponentially from
    ``start_lr`` to ``end_lr`` over ``num_it`` batches, stopping early when
    the smoothed loss exceeds 4x its best (``stop_div``) or is not finite.
    The model and optimizer state are restored afterwards."""

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100,
                 stop_div: bool = True) -> None:
        super().__init__({"lr": SchedExp(start_lr, end_lr)})
        self.num_it, self.stop_div = max(num_it, 6), stop_div

    def before_fit(self):
        super().before_fit()
        self._model_state = _snapshot(self.learn.model)
        self._opt_state = self.learn.opt.state_dict()
        self.best_loss = math.inf

    def before_batch(self):
        if self.learn.training:
            self._update(self.learn.train_iter / self.num_it)

    def after_batch(self):
        if not self.learn.training:
            return
        loss = self.learn.smooth_loss
        self.best_loss = min(self.best_loss, loss)
        if self.stop_div and (loss > 4 * self.best_loss or not math.isfinite(loss)):
            self.learn.stop_reason = "lr_find: the loss diverged"
            raise CancelFitException
        if self.learn.train_iter + 1 >= self.num_it:
            self.learn.stop_reason = f"lr_find: {self.num_it} iterations done"
            raise CancelFitException

    def before_validate(self):
        raise CancelValidException

    def after_fit(self):
        self.learn.opt.zero_grad()
        self.learn.model.load_state_dict(self._model_state)
        self.learn.opt.load_state_dict(self._opt_state)


def valley(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> Suggestion:
    """fastai's default: the middle of the longest descending stretch."""
    n = len(losses)
    max_start = max_end = 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]), (float(lrs[idx]), float(losses[idx]))


def minimum(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> Suggestion:
    """A tenth of the rate with the lowest loss."""
    i = int(np.argmin(losses))
    return float(lrs[i]) / 10, (float(lrs[i]), float(losses[i]))


def steep(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> Suggestion:
    """The rate where the loss falls fastest (per log of the rate)."""
    rates, values = np.asarray(lrs), np.asarray(losses)
    i = int(np.argmin(np.diff(values) / np.diff(np.log(rates))))
    return float(rates[i]), (float(rates[i]), float(values[i]))


def fit_one_cycle(learn: Any, n_epoch: int, lr_max: float | None = None, div: float = 25.0,
                  div_final: float = 1e5, pct_start: float = 0.25,
                  moms: tuple[float, float, float] = (0.95, 0.85, 0.95), cbs: Iterable = (),
                  **kwargs: Any) -> list[dict]:
    """``Learner.fit_one_cycle``, fastai's 1cycle: the rate rises (cosine)
    from ``lr_max/div`` to ``lr_max`` over ``pct_start`` of the batches, then falls to
    ``lr_max/div_final``; momentum (SGD's, where non-zero, or Adam's beta1)
    goes ``moms[0] -> moms[1] -> moms[2]``. Other arguments as ``fit``."""
    lr_max = learn.lr if lr_max is None else lr_max
    scheds = {"lr": combined_cos(pct_start, lr_max / div, lr_max, lr_max / div_final),
              "mom": combined_cos(pct_start, *moms)}
    return learn.fit(n_epoch, cbs=[ParamScheduler(scheds), *cbs], **kwargs)


def lr_find(learn: Any, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100,
            stop_div: bool = True, suggest_funcs: Sequence[Callable] = (valley,)) -> Any:
    """``Learner.lr_find``, fastai's learning-rate finder: train ``num_it``
    batches with the rate growing exponentially from ``start_lr`` to ``end_lr`` (stopping
    when the loss diverges), restore the model and optimizer, and return a
    namedtuple of suggested rates, one per function in ``suggest_funcs``
    (``valley``, ``minimum``, ``steep`` from minigrad.schedule). The sweep
    is in ``recorder.lrs``/``recorder.losses`` (``recorder.plot_lr_find()``)."""
    if learn.opt is None:
        learn.create_opt()
    n_epoch = num_it // max(len(learn.dls.train), 1) + 1
    log, learn.log = learn.log, lambda *a: None
    try:
        learn.fit(n_epoch, cbs=[LRFinder(start_lr, end_lr, num_it, stop_div)],
                  progress=False)
    finally:
        learn.log = log
    lrs = learn.recorder.lrs[num_it // 10:-5]
    losses = learn.recorder.losses[num_it // 10:-5]
    bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
    if bad:
        lrs, losses = lrs[:bad[0]], losses[:bad[0]]
    if len(losses) < 2:
        raise ValueError(f"lr_find: too few finite losses to suggest a rate "
                         f"({len(learn.recorder.losses)} batches ran); raise num_it or "
                         f"start_lr")
    names = [getattr(f, "__name__", "suggestion") for f in suggest_funcs]
    found = [f(lrs, losses, num_it) for f in suggest_funcs]
    learn.lr_find_points = [point for _, point in found]
    return collections.namedtuple("SuggestedLRs", names)(*(lr for lr, _ in found))
