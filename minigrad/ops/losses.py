"""Loss functions. mnist_loss, binary_cross_entropy_with_logits and the
common case of cross_entropy run on fused C kernels; the rest are compositions
of differentiable ops."""
import numpy as np

import minigrad.ops.activations as A
import minigrad.ops.elementwise as E
import minigrad.ops.indexing as I
import minigrad.ops.reductions as R
from minigrad import kernels as K
from minigrad.ops.activations import contiguous
from minigrad.tensor import Tensor, as_array, as_tensor, record

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(losses, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return losses if reduction == "none" else getattr(losses, reduction)()


def _mean_by(total, denom):
    """total / denom; nan with zero gradient when denom is 0 (all targets ignored)."""
    if denom:
        return E.div(total, np.asarray(denom, total.dtype))
    return record(np.asarray(np.nan, total.dtype), (total,), lambda g: (np.zeros_like(g),),
                  "div")


def _targets_like(targets, logits):
    t = as_array(targets)
    if t.size != logits._a.size:
        raise ValueError(f"targets have shape {t.shape} but predictions have shape "
                         f"{logits.shape}")
    return np.asarray(t.reshape(logits.shape), dtype=logits.dtype, order="C")


def _kernel_loss(loss, grad, logits, op, extra=()):
    """A scalar loss computed with its gradient by one kernel call."""
    value = np.asarray(loss, dtype=logits.dtype)

    def backward(g):
        return (grad * g if g != 1 else grad,) + tuple(f(g) for _, f in extra)
    return record(value, (logits,) + tuple(t for t, _ in extra), backward, op)


def mnist_loss(predictions, targets):
    """The chapter's loss: mean(where(targets == 1, 1 - sigmoid(p), sigmoid(p))) (C kernel)."""
    p = as_tensor(predictions)
    loss, grad = K.mnist_loss(contiguous(p._a), _targets_like(targets, p))
    return _kernel_loss(loss, grad, p, "mnist_loss")


def binary_cross_entropy_with_logits(input, target, reduction="mean"):  # noqa: A002
    """Binary cross-entropy of sigmoid(input) against targets in [0, 1]; the
    mean runs on the C kernel. Targets that require grad get d/dt = -input."""
    z = as_tensor(input)
    if reduction == "mean":
        t = _targets_like(target, z)
        loss, grad = K.bce_with_logits(contiguous(z._a), t)
        extra = ()
        if isinstance(target, Tensor) and target.requires_grad:
            tshape, n = target.shape, max(z._a.size, 1)
            extra = ((target, lambda g: (-z._a * (g / n)).reshape(tshape)),)
        return _kernel_loss(loss, grad, z, "bce_with_logits", extra)
    t = as_tensor(target, z.dtype)
    # max(z, 0) - z t + log(1 + exp(-|z|))
    losses = E.sub(E.add(A.relu(z), A.softplus(E.neg(E.abs(z)))), E.mul(z, t))
    return _reduce(losses, reduction)


def binary_cross_entropy(input, target, reduction="mean"):  # noqa: A002
    """-(t log p + (1 - t) log(1 - p)), logs clamped at -100 as in PyTorch."""
    p = as_tensor(input)
    t = as_tensor(target, p.dtype)
    log_p = E.clamp(E.log(p), min=-100.0)
    log_q = E.clamp(E.log(E.sub(1.0, p)), min=-100.0)
    losses = E.neg(E.add(E.mul(t, log_p), E.mul(E.sub(1.0, t), log_q)))
    return _reduce(losses, reduction)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):  # noqa: A002
    """Negative log-likelihood of log-probabilities ``input`` (classes on dim 1,
    or dim 0 for one item) at integer ``target``; ``reduction='mean'`` divides
    by the summed weights of the targets not ignored."""
    logp = as_tensor(input)
    t = as_array(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold class indices (integers), got {t.dtype}")
    cdim = 0 if logp.ndim == 1 else 1
    n_classes = logp.shape[cdim]
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    if safe.size and (safe.min() < 0 or safe.max() >= n_classes):
        raise IndexError(f"nll_loss: target values must be in [0, {n_classes}), got "
                         f"{safe.min()}..{safe.max()}")
    picked = I.gather(logp, cdim, np.expand_dims(safe, cdim)).squeeze(cdim)
    w = valid.astype(logp.dtype)
    if weight is not None:
        w = w * as_array(weight).astype(logp.dtype)[safe]
    losses = E.mul(picked, -w)
    if reduction == "mean":
        return _mean_by(R.sum(losses), w.sum())
    return _reduce(losses, reduction)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",  # noqa: A002
                  label_smoothing=0.0):
    """Softmax cross-entropy of logits (classes on dim 1) against class indices
    or class probabilities (a float target of the input's shape). The usual
    case, (n, c) logits and mean over indices, runs on the fused C kernel."""
    z = as_tensor(input)
    t = as_array(target)
    is_index = t.dtype.kind in "iu"
    if (is_index and z.ndim == 2 and t.ndim == 1 and reduction == "mean" and weight is None
            and not label_smoothing and not (t == ignore_index).any()):
        loss, grad = K.softmax_cross_entropy(contiguous(z._a), t)
        return _kernel_loss(loss, grad, z, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    cdim = 0 if z.ndim == 1 else 1
    logp = A.log_softmax(z, cdim)
    n_classes = z.shape[cdim]
    if is_index:
        loss = nll_loss(logp, t, weight, ignore_index, reduction)
        if not label_smoothing:
            return loss
        valid = t != ignore_index
        wc = (np.ones(n_classes) if weight is None else as_array(weight)).astype(z.dtype)
        shape = [1] * z.ndim
        shape[cdim] = n_classes
        smooth = E.neg(R.sum(E.mul(logp, wc.reshape(shape)), cdim))
        smooth = E.mul(smooth, valid.astype(z.dtype))
        if reduction == "mean":
            denom = (valid * (1 if weight is None else wc[np.where(valid, t, 0)])).sum()
            smooth = _mean_by(R.sum(smooth), denom)
        else:
            smooth = _reduce(smooth, reduction)
        return E.add(E.mul(loss, 1 - label_smoothing),
                     E.mul(smooth, label_smoothing / n_classes))
    probs = as_tensor(target, z.dtype)
    if probs.shape != z.shape:
        raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                         f"{z.shape}, got {probs.shape}")
    if label_smoothing:
        probs = E.add(E.mul(probs, 1 - label_smoothing), label_smoothing / n_classes)
    terms = E.mul(logp, probs)
    if weight is not None:
        shape = [1] * z.ndim
        shape[cdim] = n_classes
        terms = E.mul(terms, as_array(weight).astype(z.dtype).reshape(shape))
    losses = E.neg(R.sum(terms, cdim))
    if reduction == "mean":
        count = z._a.size // n_classes if n_classes else 0  # no classes: nan, as PyTorch
        with np.errstate(invalid="ignore", divide="ignore"):
            return E.div(R.sum(losses), np.asarray(count, z.dtype))
    return _reduce(losses, reduction)


def mse_loss(input, target, reduction="mean"):  # noqa: A002
    """Mean (or sum, or none) of squared differences."""
    d = E.sub(input, target)
    return _reduce(E.mul(d, d), reduction)


def l1_loss(input, target, reduction="mean"):  # noqa: A002
    """Mean (or sum, or none) of absolute differences."""
    return _reduce(E.abs(E.sub(input, target)), reduction)


FUNCTIONS = [mnist_loss, binary_cross_entropy_with_logits, binary_cross_entropy, nll_loss,
             cross_entropy, mse_loss, l1_loss]
__all__ = [fn.__name__ for fn in FUNCTIONS]
