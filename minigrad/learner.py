"""Learner: fastai's training loop, driven by callbacks (minigrad.callbacks)."""
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from minigrad import callbacks as C
from minigrad import schedule as S
from minigrad.compiled import CompiledStep, CompileError, compile_step
from minigrad.ops.shape import cat
from minigrad.optim import SGD
from minigrad.tensor import Tensor, no_grad

__all__ = ["Learner", "default_callbacks"]


def _scalar(v):
    return float(v.item() if hasattr(v, "item") else v)


def default_callbacks() -> list[C.Callback]:
    """Recorder, progress bar, Ctrl-C handling and the NaN stop."""
    return [C.Recorder(), C.ProgressCallback(), C.InterruptCallback(),
            C.TerminateOnNaNCallback()]


class Learner:
    """Trains ``model`` on ``dls`` (fastai's DataLoaders: ``dls.train`` and
    ``dls.valid`` yield ``(input, target)`` batches) with ``loss_func``.

    ``opt_func(params, lr)`` makes the optimizer (once: its state carries over
    between fits); ``metrics`` are functions ``(predictions, targets)``
    returning a number or a one-element tensor, computed over the whole valid
    set each epoch. ``cbs`` are extra callbacks; ``default_cbs`` adds
    ``default_callbacks()``. Each callback is reachable by name
    (``learn.recorder``). ``log`` prints the epoch table.

    ``compile``: train with the compiled step (minigrad.compiled: the same
    kernels replayed on persistent buffers, bit for bit eager's results on one
    thread) when it applies (None, the default), never (False), or always
    (True: ``fit`` raises CompileError saying why it cannot). It applies when,
    at the start of a fit, the model, loss and optimizer are ones
    ``compile_step`` supports and no callback handles an event that sees the
    graph, the predictions before the loss, the gradients or the update:
    ``after_pred``, ``after_backward``, ``before_step``, ``after_step``,
    ``after_cancel_backward``, ``after_cancel_step`` (``COMPILE_BLOCKERS``).
    Compiled, a training batch runs ``before_batch``, the forward pass and
    loss, ``after_loss`` (``learn.loss`` is a 0-d tensor without a graph;
    ``learn.pred`` a copy of the output, made when read), ``before_backward``,
    then backward and update, ``after_batch``; ``p.grad`` stays None, as after
    an eager step. Replacing ``learn.loss`` in ``after_loss`` needs
    ``compile=False``. A batch the compiled step does not take (another dtype,
    targets the fused loss does not take) runs eagerly."""

    #: events whose handlers make the Learner train eagerly
    COMPILE_BLOCKERS = ("after_pred", "after_backward", "before_step", "after_step",
                        "after_cancel_backward", "after_cancel_step")

    recorder: "C.Recorder"  # set by add_cb, as every callback by its name
    epoch: int
    n_epoch: int
    n_iter: int
    train_iter: int

    def __init__(self, dls: Any, model: Any, loss_func: Callable,
                 opt_func: Callable = SGD, lr: float = 0.1,
                 metrics: Callable | Sequence[Callable] = (), cbs: Iterable = (),
                 default_cbs: bool = True, log: Callable[[str], object] = print,
                 compile: bool | None = None) -> None:  # noqa: A002 - torch.compile's word
        if compile not in (None, True, False):
            raise ValueError(f"compile must be None, True or False, got {compile!r}")
        self.dls, self.model, self.loss_func = dls, model, loss_func
        self.compile = compile
        self.compiled: CompiledStep | None = None  # the step of the current fit, if compiled
        self._pred: Any = None
        self._pred_step: CompiledStep | None = None
        self._compile_blocked = False
        self.opt_func, self.lr, self.log = opt_func, lr, log
        self.metrics: list[Callable] = list(metrics) if isinstance(metrics, (list, tuple)) \
            else [metrics]  # type: ignore[list-item]
        self.opt: Any = None
        self.cbs: list[C.Callback] = []
        self._handlers: dict[str, list] | None = None
        self.stop_reason, self.show_progress, self.training = None, None, False
        self.add_cbs((default_callbacks() if default_cbs else []) + list(cbs))

    # ------------------------------------------------------------ callbacks
    def add_cb(self, cb: C.Callback | type[C.Callback]) -> "Learner":
        """Add a callback (a Callback instance or class)."""
        if isinstance(cb, type):
            cb = cb()
        if not isinstance(cb, C.Callback):
            raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")
        cb.learn = self
        setattr(self, cb.name, cb)
        self.cbs.append(cb)
        self._handlers = None
        return self

    def add_cbs(self, cbs: Iterable[C.Callback | type[C.Callback]]) -> "Learner":
        """Add each callback in ``cbs``."""
        for cb in cbs:
            self.add_cb(cb)
        return self

    def remove_cb(self, cb: C.Callback | type[C.Callback]) -> "Learner":
        """Remove a callback (an instance, or every instance of a class)."""
        gone = [c for c in self.cbs if c is cb or (isinstance(cb, type) and isinstance(c, cb))]
        for c in gone:
            self.cbs.remove(c)
            if getattr(self, c.name, None) is c:
                delattr(self, c.name)
            c.learn = None
        self._handlers = None
        return self

    def _build_handlers(self):
        ordered = sorted(self.cbs, key=lambda c: c.order)
        h = self._handlers = {e: [getattr(c, e) for c in ordered if hasattr(type(c), e)]
                              for e in C.EVENTS}
        self._compile_blocked = any(h[e] for e in self.COMPILE_BLOCKERS)
        return h

    def __call__(self, event: str) -> None:
        """Run every callback's handler of ``event``, in callback order."""
        h = self._handlers if self._handlers is not None else self._build_handlers()
        for handler in h[event]:
            handler()

    def _with_events(self, f, name, ex):
        h = self._handlers if self._handlers is not None else self._build_handlers()
        try:
            for handler in h[f"before_{name}"]:
                handler()
            f()
        except ex:
            for handler in h[f"after_cancel_{name}"]:
                handler()
        for handler in h[f"after_{name}"]:
            handler()

    # ------------------------------------------------------------ steps
    def create_opt(self) -> None:
        """Make the optimizer from ``opt_func``."""
        self.opt = self.opt_func(self.model.parameters(), self.lr)

    def _set_mode(self, training):
        self.training = training
        mode = getattr(self.model, "train", None)
        if callable(mode):
            mode(training)

    @property
    def pred(self) -> Any:
        """The model's output for the current batch (compiled: a copy, made when read)."""
        if self._pred is None and self._pred_step is not None:
            self._pred = Tensor(self._pred_step.logits().copy())
        return self._pred

    @pred.setter
    def pred(self, value: Any) -> None:
        self._pred = value

    def _eager_batch(self, h):
        self._pred = self.model(self.xb)
        for handler in h["after_pred"]:
            handler()
        self.loss = self.loss_func(self._pred, self.yb)
        for handler in h["after_loss"]:
            handler()
        if not self.training:
            return
        if h["before_backward"] or h["after_backward"] or h["after_cancel_backward"]:
            self._with_events(self.loss.backward, "backward", C.CancelBackwardException)
        else:
            self.loss.backward()
        if h["before_step"] or h["after_step"] or h["after_cancel_step"]:
            self._with_events(self.opt.step, "step", C.CancelStepException)
        else:
            self.opt.step()
        self.opt.zero_grad()

    def _compiled_batch(self, h, step):
        """The batch on the compiled step; False (nothing done) to leave it to eager."""
        value = step.forward(self.xb, self.yb)
        if value is None:
            return False
        self._pred_step = step
        loss = self.loss = Tensor(value)
        for handler in h["after_loss"]:
            handler()
        if self.loss is not loss:
            raise RuntimeError("a callback replaced learn.loss in after_loss; the compiled "
                               "step cannot differentiate it: use Learner(compile=False)")
        try:
            for handler in h["before_backward"]:
                handler()
        except C.CancelBackwardException:
            return True
        step.backward_and_update()
        return True

    def one_batch(self, i: int, batch: Sequence[Any]) -> None:
        """Train on one ``(input, target)`` batch (with its events)."""
        self.iter = i
        if not isinstance(batch, (list, tuple)) or len(batch) != 2:
            raise ValueError(f"Learner needs (input, target) batches; dls.train gave a "
                             f"{type(batch).__name__} of {len(batch)} items")
        self.xb, self.yb = batch
        h = self._handlers if self._handlers is not None else self._build_handlers()
        step = self.compiled
        self._pred = self._pred_step = None
        try:
            for handler in h["before_batch"]:
                handler()
            if step is None or not self.training or not self._compiled_applies(step) \
                    or not self._compiled_batch(h, step):
                self._eager_batch(h)
        except C.CancelBatchException:
            for handler in h["after_cancel_batch"]:
                handler()
        for handler in h["after_batch"]:
            handler()
        self.train_iter += 1
        self.pct_train += 1 / (self.n_iter * self.n_epoch)

    def _compiled_applies(self, step):
        return (step.model is self.model and step.loss_func is self.loss_func
                and step.opt is self.opt and not self._compile_blocked)

    def _compile(self):
        """The compiled step for this fit, or None (see ``compile``)."""
        if self.compile is False:
            return None
        h = self._handlers if self._handlers is not None else self._build_handlers()
        blockers = [f"{type(f.__self__).__name__}.{e}" for e in self.COMPILE_BLOCKERS
                    for f in h[e]]
        try:
            if blockers:
                raise CompileError(f"callbacks handle events the compiled step does not "
                                   f"run: {', '.join(blockers)}")
            return compile_step(self.model, self.loss_func, self.opt)
        except CompileError as e:
            if self.compile:
                raise CompileError(f"Learner(compile=True) cannot compile: {e}") from None
            return None

    def _do_train(self):
        self.pct_train = self.epoch / self.n_epoch
        for i, batch in enumerate(self.dls.train):
            self.one_batch(i, batch)

    def validate(self) -> tuple[float, list[float]]:
        """(valid loss, [metric values]) over the whole valid set (NaN if empty)."""
        preds, targets = [], []
        with no_grad():
            for xb, yb in self.dls.valid:
                preds.append(self.model(xb))
                targets.append(yb)
            if not preds:
                return math.nan, [math.nan] * len(self.metrics)
            p, t = cat(preds), cat(targets)
            loss = self.loss_func(p, t).item()
        return loss, [_scalar(m(p, t)) for m in self.metrics]

    def _do_validate(self):
        self.valid_results = self.validate()

    def _do_epoch(self):
        self._set_mode(True)
        self._with_events(self._do_train, "train", C.CancelTrainException)
        self._set_mode(False)
        self.valid_results = (math.nan, [math.nan] * len(self.metrics))
        self._with_events(self._do_validate, "validate", C.CancelValidException)

    def _do_fit(self):
        for epoch in range(self.n_epoch):
            self.epoch = epoch
            self._with_events(self._do_epoch, "epoch", C.CancelEpochException)
            if self.stop_reason is not None:
                raise C.CancelFitException

    def predict(self, x: Any) -> Any:
        """The model's output for ``x``, without gradients."""
        with no_grad():
            return self.model(x if isinstance(x, Tensor) else Tensor(x))

    # ------------------------------------------------------------ fit
    def fit(self, n_epoch: int, lr: float | None = None, *, cbs: Iterable = (),
            target: float | None = None, time_limit: float | None = None,
            patience: int | None = None, min_delta: float = 0.0,
            progress: bool | None = None) -> list[dict]:
        """Train for up to ``n_epoch`` epochs; returns ``recorder.history``.

        ``lr`` sets the rate of every parameter group (default ``self.lr``);
        ``cbs`` are callbacks for this fit only. Shortcuts for stop rules:
        ``target`` (TargetCallback on the first metric), ``time_limit``
        seconds (TimeLimitCallback), ``patience``/``min_delta``
        (EarlyStoppingCallback on the valid loss). Why it stopped is in
        ``stop_reason``; a NaN loss and Ctrl-C stop it too (default callbacks).
        ``progress`` shows (True) or hides (False) the bar (None: on a tty).
        Raises ValueError on an empty training set."""
        if lr is not None:
            self.lr = lr
        if not isinstance(n_epoch, numbers.Integral) or n_epoch < 0:
            raise ValueError(f"fit: n_epoch must be an integer >= 0, got {n_epoch!r}")
        if target is not None and not self.metrics:
            raise ValueError("fit(target=...) needs a metric to compare with")
        if len(self.dls.train) == 0:
            raise ValueError("fit: the training set (dls.train) yields no batches")
        extra = list(cbs)
        if target is not None:
            extra.append(C.TargetCallback(target))
        if time_limit is not None:
            extra.append(C.TimeLimitCallback(time_limit))
        if patience is not None:
            extra.append(C.EarlyStoppingCallback(min_delta=min_delta, patience=patience))
        if self.opt is None:
            self.create_opt()
        S.set_hyper(self.opt, "lr", self.lr)
        self.n_epoch, self.n_iter = n_epoch, len(self.dls.train)
        self.show_progress = progress
        self.stop_reason, self.epoch, self.iter, self.train_iter = None, 0, 0, 0
        self.pct_train = 0.0
        self.add_cbs(extra)
        try:
            self.compiled = self._compile()
        except CompileError:
            for cb in extra:
                self.remove_cb(cb)
            raise
        completed = False
        try:
            self.opt.zero_grad()
            try:
                self("before_fit")
                self._do_fit()
            except C.CancelFitException:
                if self.stop_reason is None:
                    self.stop_reason = f"cancelled at epoch {self.epoch}, batch {self.iter}"
                self("after_cancel_fit")
            completed = True
        finally:
            if self.stop_reason is None:
                self.stop_reason = (f"finished {n_epoch} epochs" if completed
                                    else "an exception ended the fit")
            try:
                self("after_fit")
            finally:
                for cb in extra:
                    self.remove_cb(cb)
                self._set_mode(False)
                self.compiled = None
        return self.history

    @property
    def history(self) -> list[dict]:
        """Per-epoch dicts (epoch, train_loss, valid_loss, metrics, time) of the last fit."""
        return self.recorder.history

    @property
    def best_state(self) -> dict | None:
        """The weights of the epoch with the lowest finite valid loss (None if none)."""
        return self.recorder.best_state

    fit_one_cycle = S.fit_one_cycle
    lr_find = S.lr_find
