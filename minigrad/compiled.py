"""A compiled training step: the kernel calls of one eager step (forward, loss,
backward, optimizer update), recorded once for a model of supported layers and
replayed on persistent buffers: per step no graph, no Tensor, no topological
sort, and no array but the 0-d loss (and the targets' cast when their dtype is
not the one the loss kernel takes, as eager does).

Supported: an ``nn.Sequential`` of ``Linear`` (a Linear followed by ``ReLU``
fuses into ``LinearReLU``, as eager) and ``Flatten()``; the losses
``cross_entropy`` (class indices, mean, no weight or label smoothing),
``binary_cross_entropy_with_logits`` (mean) and ``mnist_loss``, as functions or
their loss modules; an optimizer whose ``step()`` is ``Optimizer.step`` (SGD,
Adam, AdamW), whose per-parameter ``_update`` is called exactly as eager calls
it, reading the hyper-parameters from ``param_groups`` at every step.

Each phase's calls (forward and loss; gradients; SGD's updates) are checked
once and then made by one C call, ``kernels.StepProgram`` (``NATIVE``).

The kernels are the eager ones, called in the same order on equal operands, so
on one thread the parameters, optimizer state and losses are bit for bit
those of eager training (tests/test_compiled.py). Parameters are updated in
place and their version counters bumped, as by ``Optimizer.step``. The
gradients stay in the step's buffers (``grads(n)``): ``p.grad`` is not set, as
after the Learner's eager step, which ends with ``zero_grad()``.

Each step first checks that the model and optimizer are still what it was
compiled from (the layers, their parameters and which require grad, the
parameter groups) and reads them again if not, so freezing, unfreezing or
adding layers mid-fit trains as eager would; a change it cannot take leaves
the batches to eager. A weight modified in place between ``forward`` and
``backward_and_update`` raises RuntimeError, as eager's ``backward()`` does.

Inputs given as bytes (a ``ByteBatch`` of ``minigrad.data.ScaledBytes``) are
read as bytes: the first layer's forward product and weight gradient convert
them (``bytes / scale``) while packing, with eager's arithmetic.
"""
import operator
from typing import Any

import numpy as np

import minigrad.ops.losses as L
from minigrad import kernels as K
from minigrad.compiled_calls import Direct, backward_calls, forward_calls
from minigrad.data import ByteBatch
from minigrad.nn.layers import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Flatten,
    Linear,
    LinearReLU,
)
from minigrad.nn.module import Sequential, runs_as
from minigrad.optim.optimizer import Optimizer
from minigrad.optim.sgd import SGD
from minigrad.tensor import Tensor

__all__ = ["CompileError", "CompiledStep", "compile_step"]


class CompileError(ValueError):
    """The model, loss or optimizer is outside what the compiled step supports."""


def _layers(model):
    """([(weight, bias or None, relu)], whether a Flatten comes first), or CompileError."""
    if not isinstance(model, Sequential) or not runs_as(model, Sequential):
        raise CompileError(f"the model is a {type(model).__name__}, not an nn.Sequential")
    layers = []
    flatten = False
    for i, m in enumerate(model.fuse()._plan):
        if type(m) is LinearReLU:
            layers.append((m.linear.weight, m.linear.bias, True))
        elif isinstance(m, Linear) and runs_as(m, Linear):
            layers.append((m.weight, m.bias, False))
        elif type(m) is Flatten and (m.start_dim, m.end_dim) == (1, -1) and not layers:
            flatten = True
        else:
            raise CompileError(f"layer {i} ({type(m).__name__}) is not supported by the "
                               f"compiled step (supported: Linear, ReLU after a Linear, a "
                               f"leading Flatten())")
    if not layers:
        raise CompileError("the model has no Linear layer")
    return layers, flatten


def _loss_kind(loss_func):
    """'cross_entropy' (with its ignore_index), 'bce' or 'mnist', or CompileError."""
    if loss_func is L.cross_entropy:
        return "cross_entropy", -100
    if loss_func is L.binary_cross_entropy_with_logits:
        return "bce", None
    if loss_func is L.mnist_loss:
        return "mnist", None
    if type(loss_func) is CrossEntropyLoss and loss_func.reduction == "mean" \
            and loss_func.weight is None and not loss_func.label_smoothing:
        return "cross_entropy", loss_func.ignore_index
    if type(loss_func) is BCEWithLogitsLoss and loss_func.reduction == "mean":
        return "bce", None
    name = getattr(loss_func, "__name__", type(loss_func).__name__)
    raise CompileError(f"the loss {name} is not supported by the compiled step (supported: "
                       f"cross_entropy, binary_cross_entropy_with_logits, mnist_loss with "
                       f"reduction='mean' and no class weights or label smoothing)")


def _updates(opt, layers):
    """[(group, parameter, layer index, 'weight' or 'bias')] in param_groups order."""
    if not isinstance(opt, Optimizer) or type(opt).step is not Optimizer.step \
            or type(opt)._update is Optimizer._update:
        raise CompileError(f"the optimizer {type(opt).__name__} overrides step(); the compiled "
                           f"step needs one that defines _update() (SGD, Adam, AdamW)")
    where = {}
    for i, (w, b, _) in enumerate(layers):
        for p, kind in ((w, "weight"), (b, "bias")):
            if p is None:
                continue
            if id(p) in where:
                raise CompileError("a parameter is used by two layers (shared weights)")
            where[id(p)] = (i, kind)
    plan, seen = [], set()
    for group in opt.param_groups:
        for p in group["params"]:
            if id(p) not in where:
                raise CompileError("the optimizer holds a parameter that is not in the model")
            seen.add(id(p))
            if p.requires_grad:
                plan.append((group, p, *where[id(p)]))
    for w, b, _ in layers:
        for p in (w, b):
            if p is not None and p.requires_grad and id(p) not in seen:
                raise CompileError("a parameter that requires grad is not in the optimizer")
    return plan


class _Buffers:
    """The arrays of one step at batch size n, reused by every step of that size."""

    def __init__(self, layers, n, dtype):
        self.out = [np.empty((n, w.shape[0]), dtype) for w, _, _ in layers]
        # d loss / d pre-activation, and d loss / d output (the same array without ReLU)
        self.dz = [np.empty_like(o) for o in self.out]
        self.dout = [np.empty_like(o) if relu else dz
                     for o, dz, (_, _, relu) in zip(self.out, self.dz, layers, strict=True)]
        self.bias_grad = [np.empty(w.shape[0], dtype) for w, _, _ in layers]
        # the kernel calls on these buffers, by (bytes input, fused head): (the
        # program, what it was made with as ``CompiledStep._bound`` lists it,
        # whether it makes SGD's updates)
        self.programs: dict[tuple[bool, bool], tuple[Any, list, bool]] = {}


class CompiledStep:
    """The training step of ``model``, ``loss_func`` and ``opt`` replayed on
    kernels (see the module docstring); ``compile_step`` makes one."""

    MAX_SIZES = 4
    #: cross-entropy after two or more layers: the last layer, the loss and the
    #: gradient at its input in one kernel (``kernels.linear_cross_entropy``,
    #: bit for bit the calls it replaces); False makes those calls (A/B timing)
    FUSE_HEAD = True
    #: the kernel calls of each phase made by one C call (``kernels.StepProgram``,
    #: checked when made; per step only the batch is checked); False makes
    #: them one by one from Python (A/B timing), with the same numbers
    NATIVE = True

    def __init__(self, model: Any, loss_func: Any, opt: Any) -> None:
        self.model, self.loss_func, self.opt = model, loss_func, opt
        self._plan()
        self._signature, self._refusal = self._model_signature(), None

    def _plan(self) -> None:
        """Read the model, loss and optimizer into the plan (CompileError if unsupported)."""
        model, loss_func, opt = self.model, self.loss_func, self.opt
        self._layers, self._flatten = _layers(model)
        self._loss, self._ignore_index = _loss_kind(loss_func)
        self._updates = _updates(opt, self._layers)
        self._native_sgd = type(opt)._update is SGD._update
        self._trained = [p for _, p, _, _ in self._updates]
        w0 = self._layers[0][0]
        self.dtype = w0.dtype
        if self.dtype.kind != "f" or any(p.dtype != self.dtype for w, b, _ in self._layers
                                         for p in (w, b) if p is not None):
            raise CompileError("the parameters must share one floating-point dtype")
        # an input gradient is needed where some earlier layer has a trained parameter
        trained = [any(p is not None and p.requires_grad for p in (w, b))
                   for w, b, _ in self._layers]
        self._needs_dx = [any(trained[:i]) for i in range(len(trained))]
        self._weight_grads = [np.empty(w.shape, self.dtype) for w, _, _ in self._layers]
        self._buffers: dict[int, _Buffers] = {}
        self._x: np.ndarray | None = None
        self._scale: float | None = None  # the divisor of uint8 inputs
        self._n = 0
        self._head = False
        self._prog, self._prog_bound, self._prog_sgd = None, [], False
        # the weights eager's backward would read (of layers that record a node)
        self._saved = [w for (w, _, _), t, dx in zip(self._layers, trained, self._needs_dx,
                                                      strict=True) if t or dx]
        self._versions: list[int] = []

    def _model_signature(self) -> tuple:
        """What the plan was read from: the layers, their parameters and which
        of those require grad, and the optimizer's parameter groups."""
        sig: list = []
        for layer in self.model.layers:
            sig.append(id(layer))
            for p in (getattr(layer, "weight", None), getattr(layer, "bias", None)):
                if p is not None:
                    sig += (id(p), p.requires_grad)
        for g in self.opt.param_groups:
            sig += (id(g), len(g["params"]))
        return tuple(sig)

    def _replan_if_changed(self) -> bool:
        """Re-read the plan when the model or optimizer changed since (a layer
        frozen or added, a parameter group added...); False if it no longer compiles."""
        sig = self._model_signature()
        if sig != self._signature:
            self._signature, self._refusal = sig, None
            try:
                self._plan()
            except CompileError as e:
                self._refusal = e
        return self._refusal is None

    def buffers(self, n: int) -> _Buffers:
        """The buffers for batch size n (made on first use; those of the
        ``MAX_SIZES`` batch sizes seen last are kept)."""
        b = self._buffers.get(n)
        if b is None:
            if len(self._buffers) >= self.MAX_SIZES:
                del self._buffers[next(iter(self._buffers))]
            b = self._buffers[n] = _Buffers(self._layers, n, self.dtype)
        return b

    def _inputs(self, xb, yb):
        """(x, targets, the divisor of uint8 x or None) as the kernels take
        them, or None to leave the batch to eager."""
        scale = None
        # bytes only while they are the values: floats once made (maybe changed in place)
        if type(xb) is ByteBatch and xb._made() is None and xb.dtype == self.dtype \
                and not xb.requires_grad:
            x, scale = xb.bytes, xb.scale
        else:
            x = xb._a if isinstance(xb, Tensor) and not xb.requires_grad else xb
            if type(x) is not np.ndarray or x.dtype != self.dtype:
                return None
        if not x.flags.c_contiguous or x.ndim < 2 or not len(x) \
                or (x.ndim > 2 and not self._flatten):
            return None
        if x.ndim > 2:
            x = x.reshape(len(x), -1)
        t = yb._a if isinstance(yb, Tensor) else yb
        if type(t) is not np.ndarray or (isinstance(yb, Tensor) and yb.requires_grad):
            return None
        if self._loss == "cross_entropy":
            if t.dtype.kind not in "iu" or t.ndim != 1:
                return None
            if self._ignore_index >= 0 and (t == self._ignore_index).any():
                return None
        elif t.size != len(x) * self._layers[-1][0].shape[0]:
            return None
        return x, t, scale

    def forward(self, xb: Any, yb: Any) -> np.ndarray | None:
        """Forward pass and loss with its gradient; returns the loss (a 0-d
        array of the parameters' dtype, as eager's loss tensor holds), or None
        when this batch is one the compiled step leaves to eager (an input of
        another dtype or layout, targets the fused loss does not take)."""
        if not self._replan_if_changed():
            return None
        args = self._inputs(xb, yb)
        if args is None:
            return None
        x, t, scale = args
        n = len(x)
        buf = self.buffers(n)
        layers = self._layers
        # cross-entropy after a layer that reads floats: the last layer, the
        # loss and the gradient at its input in one kernel (bit for bit the
        # calls it replaces)
        head = self.FUSE_HEAD and self._loss == "cross_entropy" and len(layers) > 1 \
            and not layers[-1][2]
        prog = self._program(buf, x, scale is not None, head) if self.NATIVE else None
        self._prog = prog
        if prog is not None:
            if self._loss == "cross_entropy":
                if t.dtype != np.int64 or not t.flags.carray:
                    t = np.require(t, np.int64, "CA")
            else:
                t = np.asarray(t.reshape(buf.out[-1].shape), dtype=self.dtype, order="C")
            try:
                loss = prog.run(0, x, t, 1.0 if scale is None else scale)
            except ValueError:  # e.g. a label out of range: eager raises its own error
                return None
        else:
            sink = Direct(x, t, scale)
            forward_calls(sink, layers, buf, self._loss, head, self._needs_dx)
            if sink.refused:
                return None
            loss = sink.value
        self._x, self._n, self._scale, self._head = x, n, scale, head
        self._versions = [w._vc[0] for w in self._saved]
        return np.asarray(loss, self.dtype)

    def backward_and_update(self) -> None:
        """Gradients into the buffers, then the optimizer's update of every
        trained parameter (in place, version counter bumped). Call after
        ``forward`` returned a loss."""
        x, n = self._x, self._n
        for w, version in zip(self._saved, self._versions, strict=True):
            if w._vc[0] != version:
                raise RuntimeError(
                    f"a tensor needed for the gradient of linear was modified by an in-place "
                    f"operation: weight of shape {w.shape} is at version {w._vc[0]}; "
                    f"expected version {version} (as eager backward() refuses)")
        buf = self._buffers[n]
        if self._prog is not None and not self._same_arrays(self._prog_bound, self._bound()):
            self._prog = None  # a parameter or its state replaced since forward: from Python
        if self._prog is not None:
            self._prog.run(1, x, scale=1.0 if self._scale is None else self._scale)
            if self._prog_sgd and all(p.requires_grad for p in self._trained) \
                    and self._native_update(self._prog):
                for _, p, _, _ in self._updates:
                    p._vc[0] += 1
                return
        else:
            backward_calls(Direct(x, scale=self._scale), self._layers, buf, self._head,
                           self._needs_dx, self._weight_grads)
        update = self.opt._update
        for group, p, i, kind in self._updates:
            if p.requires_grad:  # (frozen since forward: no gradient for it, as eager)
                grad = self._weight_grads[i] if kind == "weight" else buf.bias_grad[i]
                update(group, p, p._a, grad)
                p._vc[0] += 1

    def _bound(self) -> list:
        """What a program reads from the model and the optimizer: each layer's
        weight and bias arrays, then each SGD parameter's state and velocity
        (None while absent)."""
        arrays = []
        for w, b, _ in self._layers:
            arrays += (w._a, None if b is None else b._a)
        if self._native_sgd:
            state = self.opt.state
            for _, p, _, _ in self._updates:
                st = state.get(p)
                arrays += (st, None if st is None else st.get("momentum_buffer"))
        return arrays

    @staticmethod
    def _same_arrays(a: list, b: list) -> bool:
        return len(a) == len(b) and all(map(operator.is_, a, b))

    def _program(self, buf: _Buffers, x: np.ndarray, u8: bool, head: bool) -> Any:
        """The program of this step on buf, made again when an array it reads was
        replaced (``p.data = ...``, a new optimizer state); None where it does
        not apply (an input of another width, a parameter not C-contiguous):
        the calls are then made from Python, which raises as eager does."""
        if x.shape[1] != self._layers[0][0].shape[1]:
            return None
        bound = self._prog_bound = self._bound()
        made = buf.programs.get((u8, head))
        if made is None or not self._same_arrays(made[1], bound):
            try:
                prog, sgd = self._make_program(buf, x.shape[1], u8, head, bound)
            except (TypeError, ValueError):
                prog, sgd = None, False
            made = buf.programs[(u8, head)] = (prog, bound, sgd)
        self._prog_sgd = made[2]
        return made[0]

    def _make_program(self, buf, k, u8, head, bound):
        """The calls of ``forward`` and ``backward_and_update`` on buf, in their
        order, as a kernels.StepProgram, and whether it makes the updates."""
        layers = self._layers
        prog = K.StepProgram(self.dtype, len(buf.out[0]), k, u8, self._loss == "cross_entropy",
                             layers[-1][0].shape[0])
        forward_calls(prog, layers, buf, self._loss, head, self._needs_dx)
        backward_calls(prog, layers, buf, head, self._needs_dx, self._weight_grads)
        # SGD's updates once its first update has made every parameter's state
        state = bound[2 * len(layers)::2]
        sgd = self._native_sgd and all(st is not None for st in state)
        if sgd:
            group_index = {id(g): gi for gi, g in enumerate(self.opt.param_groups)}
            velocities = bound[2 * len(layers) + 1::2]
            for (group, p, i, kind), v in zip(self._updates, velocities, strict=True):
                if id(group) not in group_index:
                    raise ValueError("a parameter group was replaced")
                grad = self._weight_grads[i] if kind == "weight" else buf.bias_grad[i]
                prog.sgd(2, p._a, grad, v, group_index[id(group)])
        return prog, sgd

    def _native_update(self, prog: Any) -> bool:
        """SGD's updates by the program, with each group's hyper-parameters read
        now; False (nothing done) where SGD._update must make them instead
        (dampening, Nesterov, momentum before its buffer exists, a bad value)."""
        hp = []
        for g in self.opt.param_groups:
            if g["dampening"] or g["nesterov"]:
                return False
            hp += (g["lr"], g["momentum"], g["weight_decay"])
        try:
            return prog.update(hp)
        except (TypeError, ValueError):  # not numbers: SGD._update raises its own error
            return False

    def step(self, xb: Any, yb: Any) -> np.ndarray | None:
        """forward then backward_and_update: one training step; the loss (None:
        the batch was left untouched, for eager to run)."""
        loss = self.forward(xb, yb)
        if loss is not None:
            self.backward_and_update()
        return loss

    def logits(self) -> np.ndarray:
        """The last forward pass's output (a buffer the next step overwrites)."""
        return self._buffers[self._n].out[-1]

    def grads(self) -> dict[Tensor, np.ndarray]:
        """The last step's gradient of every trained parameter (buffers the
        next step overwrites)."""
        buf = self._buffers[self._n]
        return {p: self._weight_grads[i] if kind == "weight" else buf.bias_grad[i]
                for _, p, i, kind in self._updates}


def compile_step(model: Any, loss_func: Any, opt: Any) -> CompiledStep:
    """The compiled training step of ``model`` with ``loss_func`` and ``opt``;
    raises CompileError naming what is not supported."""
    return CompiledStep(model, loss_func, opt)
