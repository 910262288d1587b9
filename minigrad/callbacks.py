"""Callbacks for Learner, with fastai's names: events, cancel exceptions, the
Recorder, the progress bar, Ctrl-C handling and the stop rules.

A callback subclasses ``Callback`` and defines methods named after events;
the Learner calls them in ``order`` (lower first) with the learner as
``self.learn`` (attributes a callback lacks are read from the learner, as in
fastai). A callback stops training by raising a Cancel*Exception; ``stop()``
records why and ends the epoch's training (validation still runs), after
which the fit ends."""
import math
import re
import signal
import sys
import threading
import time
from typing import IO, Any, NoReturn

import numpy as np

__all__ = ["EVENTS", "Callback", "CancelBackwardException", "CancelBatchException",
           "CancelEpochException", "CancelFitException", "CancelStepException",
           "CancelTrainException", "CancelValidException", "EarlyStoppingCallback",
           "InterruptCallback", "ProgressCallback", "Recorder", "TargetCallback",
           "TerminateOnNaNCallback", "TimeLimitCallback"]

EVENTS = ("before_fit", "before_epoch", "before_train", "before_batch", "after_pred",
          "after_loss", "before_backward", "after_cancel_backward", "after_backward",
          "before_step", "after_cancel_step", "after_step",
          "after_cancel_batch", "after_batch", "after_cancel_train", "after_train",
          "before_validate", "after_cancel_validate", "after_validate", "after_cancel_epoch",
          "after_epoch", "after_cancel_fit", "after_fit")


class CancelFitException(Exception):
    """Raised by a callback: end the fit now."""


class CancelEpochException(Exception):
    """Raised by a callback: skip the rest of this epoch."""


class CancelTrainException(Exception):
    """Raised by a callback: skip the rest of this epoch's training."""


class CancelValidException(Exception):
    """Raised by a callback: skip this epoch's validation."""


class CancelBatchException(Exception):
    """Raised by a callback: skip the rest of this batch."""


class CancelBackwardException(Exception):
    """Raised by a callback: skip this batch's backward pass."""


class CancelStepException(Exception):
    """Raised by a callback: skip this batch's optimizer step."""


class Callback:
    """Base class; ``learn`` is set when the callback is added to a Learner."""

    order = 0
    learn: Any = None

    def __getattr__(self, name: str) -> Any:
        learn = self.__dict__.get("learn")
        if learn is None or name.startswith("_"):
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(learn, name)

    @property
    def name(self) -> str:
        """The learner attribute it is reachable as: ``Recorder`` -> ``learn.recorder``."""
        base = re.sub(r"Callback$", "", type(self).__name__) or "callback"
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()

    def stop(self, reason: str) -> NoReturn:
        """End training after this epoch's validation, saying why."""
        self.learn.stop_reason = reason
        raise CancelTrainException

    def __repr__(self):
        return f"{type(self).__name__}()"


def _fmt_time(seconds):
    if seconds < 60:
        return f"{seconds:.2f}s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m:02d}:{s:02d}"


def _snapshot(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


class Recorder(Callback):
    """Records the training: per epoch ``values`` ([train_loss, valid_loss,
    *metrics]) and ``history`` (dicts with those names, ``epoch`` and
    ``time``); per training batch ``losses`` (smoothed, as fastai: an
    exponential average with ``beta``, debiased) and ``lrs``. Prints a row
    per epoch through ``learn.log``. Everything restarts with each fit.

    Epochs whose training and valid losses are both finite are good ones:
    ``had_finite_loss`` says whether this fit had one, ``good_state`` holds
    the weights of the last (None if none), ``best_epoch``/``best_state``/
    ``best_valid_loss`` the one with the lowest valid loss."""

    order = 50

    def __init__(self, beta: float = 0.98) -> None:
        self.beta = beta
        self.values: list[list[float]] = []
        self.history: list[dict[str, Any]] = []
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.iters: list[int] = []
        self.had_finite_loss, self.good_state = False, None
        self.best_epoch: int | None = None
        self.best_state: dict | None = None
        self.best_valid_loss = math.inf

    @property
    def metric_names(self) -> list[str]:
        """'epoch', 'train_loss', 'valid_loss', the metrics' names, 'time'."""
        return (["epoch", "train_loss", "valid_loss"]
                + [getattr(m, "__name__", type(m).__name__) for m in self.learn.metrics]
                + ["time"])

    def before_fit(self):
        self.__init__(self.beta)
        self._count, self._smooth, self._loss = 0, 0.0, None
        self.learn.smooth_loss = math.nan
        self.learn.log("  ".join(f"{n:<14}" for n in self.metric_names).rstrip())

    def before_epoch(self):
        self._start, self._sum, self._n, self._finite = time.perf_counter(), 0.0, 0, True

    def after_loss(self):
        if self.learn.training:
            self._loss = self.learn.loss.item()
            self._finite &= math.isfinite(self._loss)

    def after_batch(self):
        if not self.learn.training or self._loss is None:  # cancelled before the loss
            return
        n = len(self.learn.yb)
        self._sum += self._loss * n
        self._n += n
        self._count += 1
        self._smooth = self.beta * self._smooth + (1 - self.beta) * self._loss
        self.learn.smooth_loss = self._smooth / (1 - self.beta ** self._count)
        self.losses.append(self.learn.smooth_loss)
        self.lrs.append(self.learn.opt.param_groups[-1]["lr"])
        self._loss = None

    def after_epoch(self):
        learn = self.learn
        train_loss = self._sum / self._n if self._n and self._finite else math.nan
        valid_loss, metrics = learn.valid_results
        self.values.append([train_loss, valid_loss, *metrics])
        names = self.metric_names
        row = dict(zip(names, [learn.epoch, train_loss, valid_loss, *metrics,
                               time.perf_counter() - self._start], strict=True))
        self.history.append(row)
        self.iters.append(self._count)
        learn.log("  ".join(f"{_fmt_cell(row[n]):<14}" for n in names[:-1])
                  + "  " + _fmt_time(row["time"]))
        if math.isfinite(train_loss) and math.isfinite(valid_loss):
            self.had_finite_loss, self.good_state = True, _snapshot(learn.model)
            if valid_loss < self.best_valid_loss:
                self.best_epoch, self.best_valid_loss = learn.epoch, valid_loss
                self.best_state = self.good_state

    def after_fit(self):
        self.learn.log(f"stopped: {self.learn.stop_reason}")

    def plot_loss(self, skip_start: int = 5, with_valid: bool = True, ax: Any = None) -> Any:
        """Smoothed training loss per batch and valid loss per epoch (matplotlib)."""
        ax = _axes(ax)
        ax.plot(range(skip_start, len(self.losses)), self.losses[skip_start:], label="train")
        if with_valid:
            idx = int((np.array(self.iters) < skip_start).sum())
            ax.plot(self.iters[idx:], [v[1] for v in self.values[idx:]], label="valid")
            ax.legend()
        return ax

    def plot_lr_find(self, skip_end: int = 5, suggestions: Any = None, ax: Any = None) -> Any:
        """Smoothed loss against learning rate (log scale) after ``lr_find``;
        ``suggestions``: the (lr, loss) points to mark."""
        ax = _axes(ax)
        end = len(self.lrs) - skip_end if skip_end else len(self.lrs)
        ax.plot(self.lrs[:end], self.losses[:end])
        ax.set_xscale("log")
        ax.set_xlabel("Learning Rate")
        ax.set_ylabel("Loss")
        for lr, loss in suggestions or ():
            ax.plot(lr, loss, "o")
        return ax


def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from e
    return plt.subplots()[1]


def _fmt_cell(v):
    if isinstance(v, (int, np.integer)):
        return str(v)
    return f"{v:.6f}"


class ProgressCallback(Callback):
    """A one-line progress bar per epoch on a terminal (``enabled=None``:
    when the stream is one); silent otherwise."""

    order = 60

    def __init__(self, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.stream, self.enabled = stream, enabled

    def before_train(self):
        self._stream = self.stream or sys.stderr
        on = self.learn.show_progress
        on = self.enabled if on is None else on
        self._on = self._stream.isatty() if on is None else on
        self._last = 0.0

    def after_batch(self):
        if not self.learn.training or not self._on:
            return
        done, total = self.learn.iter + 1, self.learn.n_iter
        if time.perf_counter() - self._last < 0.1 and done < total:
            return
        self._last = time.perf_counter()
        width = 30
        filled = int(width * done / max(total, 1))
        self._stream.write(f"\repoch {self.learn.epoch} [{'#' * filled}{'.' * (width - filled)}]"
                           f" {done}/{total} loss {self.learn.smooth_loss:.4f}")
        self._stream.flush()

    def after_train(self):
        if self._on:
            self._stream.write("\r" + " " * 79 + "\r")
            self._stream.flush()


class InterruptCallback(Callback):
    """Ctrl-C (in the main thread) ends training after the current batch; a
    second Ctrl-C stops at once."""

    order = 70

    def before_fit(self):
        self._set, self._old = False, None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self._set:
            raise KeyboardInterrupt
        self._set = True

    def after_batch(self):
        if self._set:
            self.stop(f"interrupted (Ctrl-C) at epoch {self.learn.epoch}, batch {self.learn.iter}")

    def after_fit(self):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


class TerminateOnNaNCallback(Callback):
    """A NaN or infinite training loss ends training before the step: the
    weights of the last good epoch of this fit are restored, or, if none, the
    weights from before the fit (then ``recorder.had_finite_loss`` is False)."""

    order = 60
    name = "terminate_on_nan"

    def before_fit(self):
        self._start_state = _snapshot(self.learn.model)

    def after_loss(self):
        learn = self.learn
        if not learn.training:
            return
        loss = learn.loss.item()
        if math.isfinite(loss):
            return
        good = learn.recorder.good_state
        learn.model.load_state_dict(good if good is not None else self._start_state)
        where = f"the training loss became {loss} at epoch {learn.epoch}, batch {learn.iter}"
        self.stop(f"{where}; restored the weights of the last good epoch" if good is not None
                  else f"{where}; no epoch had a finite loss: restored the weights from "
                       f"before the fit")


class TimeLimitCallback(Callback):
    """End training when ``seconds`` have passed (checked after every batch)."""

    order = 70

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def before_fit(self):
        self._start = time.perf_counter()

    def _over(self):
        return time.perf_counter() - self._start >= self.seconds

    def after_batch(self):
        if self.learn.training and self._over():
            self.stop(f"time limit of {self.seconds:g}s reached at epoch {self.learn.epoch}")

    def after_epoch(self):
        if self.learn.stop_reason is None and self._over():
            self.learn.stop_reason = (f"time limit of {self.seconds:g}s reached after epoch "
                                      f"{self.learn.epoch}")


def _monitored(learn, monitor):
    names = learn.recorder.metric_names[1:-1]
    if monitor not in names:
        raise ValueError(f"cannot monitor {monitor!r}: the recorded values are {names}")
    return learn.recorder.values[-1][names.index(monitor)]


class TargetCallback(Callback):
    """End the fit when ``monitor`` (default: the first metric) reaches ``target``."""

    order = 70

    def __init__(self, target: float, monitor: str | None = None) -> None:
        self.target, self.monitor = target, monitor

    def before_fit(self):
        if self.monitor is None and not self.learn.metrics:
            raise ValueError("a target needs a metric to compare with")

    def after_epoch(self):
        name = self.monitor or self.learn.recorder.metric_names[3]
        value = _monitored(self.learn, name)
        if self.learn.stop_reason is None and value >= self.target:
            self.learn.stop_reason = f"{name} {value:.4f} reached the target {self.target}"


class EarlyStoppingCallback(Callback):
    """End the fit when ``monitor`` has not improved by ``min_delta`` for
    ``patience`` epochs (lower is better for losses, higher for metrics)."""

    order = 70

    def __init__(self, monitor: str = "valid_loss", min_delta: float = 0.0,
                 patience: int = 1) -> None:
        self.monitor, self.min_delta, self.patience = monitor, min_delta, patience

    def before_fit(self):
        self.best, self.wait = None, 0

    def after_epoch(self):
        value = _monitored(self.learn, self.monitor)
        sign = 1 if "loss" in self.monitor else -1
        if not math.isfinite(value):
            self.wait += 1
        elif self.best is None or sign * value < sign * self.best - self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if self.learn.stop_reason is None and self.wait >= self.patience:
            best = "none finite" if self.best is None else f"best {self.best:.6f}"
            self.learn.stop_reason = (f"{self.monitor.replace('_', ' ')} did not improve for "
                                      f"{self.patience} epochs ({best})")
