"""Hyper-parameter schedules during training (fastai's callback.schedule):
SchedCos/SchedExp, combined_cos, ParamScheduler, and LRFinder with its
suggestion functions valley, minimum and steep."""
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad.callbacks import (
    Callback,
    CancelFitException,
    CancelValidException,
    _snapshot,
)

__all__ = ["LRFinder", "ParamScheduler", "SchedCos", "SchedExp", "combine_scheds",
           "combined_cos", "minimum", "set_hyper", "steep", "valley"]

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
