"""Learner: the training loop with metrics, a progress bar and real stop rules."""
import math
import signal
import sys
import threading
import time

import numpy as np

from minigrad.ops import cat
from minigrad.optim import SGD
from minigrad.tensor import Tensor, no_grad


def _fmt_time(seconds):
    if seconds < 60:
        return f"{seconds:.2f}s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m:02d}:{s:02d}"


class _ProgressBar:
    """A one-line bar on a terminal; silent otherwise."""

    def __init__(self, total, label, stream=sys.stderr, enabled=None):
        self.total, self.label, self.stream = total, label, stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.last = 0.0

    def update(self, done, loss):
        if not self.enabled or (time.perf_counter() - self.last < 0.1 and done < self.total):
            return
        self.last = time.perf_counter()
        width = 30
        filled = int(width * done / max(self.total, 1))
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                          f"{done}/{self.total} loss {loss:.4f}")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()


class Learner:
    """Trains ``model`` on ``dls`` (a DataLoaders) with ``loss_func``.

    ``opt_func(params, lr)`` makes the optimizer (SGD by default; use
    functools.partial for momentum). ``metrics`` are functions
    ``(predictions, targets) -> float``, computed over the whole valid set."""

    def __init__(self, dls, model, loss_func, opt_func=SGD, lr=0.1, metrics=(),
                 log=print):
        self.dls, self.model, self.loss_func = dls, model, loss_func
        self.opt_func, self.lr = opt_func, lr
        self.metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        self.log = log
        self.opt = None
        self.history = []
        self.stop_reason = None
        self.best_state, self.best_valid_loss = None, math.inf

    # ------------------------------------------------------------ steps
    def one_batch(self, xb, yb):
        """Predict, loss, gradient, step: returns the batch loss."""
        loss = self.loss_func(self.model(xb), yb)
        self.opt.zero_grad()
        loss.backward()
        value = loss.item()
        if math.isfinite(value):
            self.opt.step()
        return value

    def validate(self):
        """(valid loss, [metric values]) over the whole valid set."""
        preds, targets = [], []
        with no_grad():
            for xb, yb in self.dls.valid:
                preds.append(self.model(xb))
                targets.append(yb)
        if not preds:
            return math.nan, [math.nan] * len(self.metrics)
        p, t = cat(preds), cat(targets)
        with no_grad():
            loss = self.loss_func(p, t).item()
        return loss, [m(p, t) for m in self.metrics]

    def predict(self, x):
        with no_grad():
            return self.model(x if isinstance(x, Tensor) else Tensor(x))

    # ------------------------------------------------------------ loop
    def fit(self, n_epoch, lr=None, *, target=None, time_limit=None, patience=None,
            min_delta=0.0, progress=None):
        """Train for up to ``n_epoch`` epochs; returns the history.

        Stops early, and says why (``self.stop_reason``), when the first
        metric reaches ``target``, when ``time_limit`` seconds have passed
        (checked after every batch), when the valid loss has not improved by
        ``min_delta`` for ``patience`` epochs, when the loss becomes NaN or
        infinite (the weights of the last good epoch are restored), or on
        Ctrl-C (after the current batch)."""
        if lr is not None:
            self.lr = lr
        if target is not None and not self.metrics:
            raise ValueError("fit(target=...) needs a metric to compare with")
        if self.opt is None:  # made once: momentum carries over between fit calls
            self.opt = self.opt_func(self.model.parameters(), self.lr)
        self.opt.lr = self.lr
        self.stop_reason = f"finished {n_epoch} epochs"
        names = ["epoch", "train_loss", "valid_loss"] + [
            getattr(m, "__name__", type(m).__name__) for m in self.metrics] + ["time"]
        self.log("  ".join(f"{n:<14}" for n in names).rstrip())
        start, stale = time.perf_counter(), 0
        good_state = self.model.state_dict()
        interrupted = _InterruptFlag()
        with interrupted:
            for epoch in range(n_epoch):
                t0 = time.perf_counter()
                total, count, reason = 0.0, 0, None
                bar = _ProgressBar(len(self.dls.train), f"epoch {epoch}", enabled=progress)
                for i, (xb, yb) in enumerate(self.dls.train):
                    loss = self.one_batch(xb, yb)
                    if not math.isfinite(loss):
                        self.model.load_state_dict(good_state)
                        reason = (f"the training loss became {loss} at epoch {epoch}, batch "
                                  f"{i}; restored the weights of the last good epoch")
                        break
                    total += loss * len(xb)
                    count += len(xb)
                    bar.update(i + 1, total / count)
                    if interrupted.set:
                        reason = f"interrupted (Ctrl-C) at epoch {epoch}, batch {i}"
                        break
                    if time_limit is not None and time.perf_counter() - start >= time_limit:
                        reason = f"time limit of {time_limit:g}s reached at epoch {epoch}"
                        break
                bar.close()
                valid_loss, values = self.validate()
                row = {"epoch": epoch, "train_loss": total / count if count else math.nan,
                       "valid_loss": valid_loss}
                row.update(zip(names[3:-1], values, strict=True))
                row["time"] = time.perf_counter() - t0
                self.history.append(row)
                self.log("  ".join(f"{_fmt_cell(row[n]):<14}" for n in names[:-1])
                         + "  " + _fmt_time(row["time"]))
                if math.isfinite(valid_loss):
                    good_state = self.model.state_dict()
                    if valid_loss < self.best_valid_loss - min_delta:
                        self.best_valid_loss, self.best_state = valid_loss, good_state
                        stale = 0
                    else:
                        stale += 1
                if reason is None and target is not None and values[0] >= target:
                    reason = f"{names[3]} {values[0]:.4f} reached the target {target}"
                if reason is None and patience is not None and stale >= patience:
                    reason = (f"valid loss did not improve for {patience} epochs "
                              f"(best {self.best_valid_loss:.6f})")
                if reason is None and time_limit is not None and \
                        time.perf_counter() - start >= time_limit:
                    reason = f"time limit of {time_limit:g}s reached after epoch {epoch}"
                if reason is not None:
                    self.stop_reason = reason
                    break
        self.log(f"stopped: {self.stop_reason}")
        return self.history


def _fmt_cell(v):
    if isinstance(v, (int, np.integer)):
        return str(v)
    return f"{v:.6f}"


class _InterruptFlag:
    """While active (main thread only), Ctrl-C sets a flag instead of raising,
    so training stops cleanly after the current batch."""

    def __init__(self):
        self.set = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.set:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False
