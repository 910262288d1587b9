"""In-place operations (add_, mul_, ..., +=, t[i] = v) with PyTorch's rules:
they bump the storage's version counter; a leaf that requires grad may change
only under no_grad(); on a tensor in the graph they become a graph node."""
import numpy as np

import minigrad.ops.elementwise as E
from minigrad.ops.indexing import split_key
from minigrad.ops.promote import unbroadcast
from minigrad.tensor import Tensor, as_tensor, is_grad_enabled, no_grad, record


def _write(self, result):
    """Store result's values in self's storage (cast as PyTorch allows)."""
    if not np.can_cast(result.dtype, self.dtype, "same_kind"):
        raise RuntimeError(f"result type {result.dtype} can't be cast to the desired output "
                           f"type {self.dtype}")
    np.copyto(self._a, result._a, casting="unsafe")
    self._bump()


def _apply(self, op, *args):
    """self = op(self, *args), in place."""
    self._check_inplace()
    tracked = is_grad_enabled() and (self.requires_grad or any(
        isinstance(x, Tensor) and x.requires_grad for x in args))
    if not tracked:
        with no_grad():
            _write(self, op(self, *args))
        return self
    _no_view(self)
    before = _snapshot(self)
    result = op(before, *(before if x is self else x for x in args))
    _write(self, result)
    _adopt(self, result)
    return self


def _no_view(t):
    if t._base is not None:
        raise RuntimeError("an in-place operation that records a gradient cannot write through "
                           "a view (minigrad does not rewrite the base's graph); write into the "
                           "base tensor (base[index] = value) or work out of place")


def _snapshot(t):
    """t's old value (a copy) at t's old place in the graph."""
    old = Tensor(t._a.copy())
    old.requires_grad, old.grad_fn = t.requires_grad, t.grad_fn
    return old


def _adopt(self, result):
    """self becomes the output of result's node; the graph built before still
    refers to self's old node."""
    self.requires_grad, self.grad_fn = result.requires_grad, result.grad_fn


def setitem(self, key, value):
    """self[key] = value (a number, array or tensor; broadcasts)."""
    self._check_inplace()
    k1, k2 = split_key(key)
    target = self._a if k1 is None else self._a[k1]
    if not (is_grad_enabled() and (self.requires_grad or (
            isinstance(value, Tensor) and value.requires_grad))):
        target[k2] = value._a if isinstance(value, Tensor) else value
        self._bump()
        return
    _no_view(self)
    before = _snapshot(self)
    v = as_tensor(value, self.dtype)
    out = before._a.copy()
    (out if k1 is None else out[k1])[k2] = v._a
    shape = (before._a if k1 is None else before._a[k1])[k2].shape

    def backward(g):
        g_old = g.copy()
        (g_old if k1 is None else g_old[k1])[k2] = 0
        picked = (g if k1 is None else g[k1])[k2]
        return g_old, unbroadcast(np.broadcast_to(picked, shape), v.shape)
    result = record(out, (before, v), backward, "setitem")
    _write(self, result)
    _adopt(self, result)


def zero_(self):
    """Fill with zeros in place; returns self."""
    return fill_(self, 0)


def fill_(self, value):
    """Fill with ``value`` in place; returns self."""
    self._check_inplace()
    self._a[...] = value._a if isinstance(value, Tensor) else value
    self._bump()
    return self


def copy_(self, src):
    """Copy src's values (broadcast, cast) into self."""
    return _apply(self, lambda a, s: E.add(E.mul(a, 0), as_tensor(s, a.dtype)), src)


def clamp_(self, min=None, max=None):  # noqa: A002 - PyTorch's names
    """clamp in place; returns self."""
    return _apply(self, lambda a: E.clamp(a, min, max))


def _inplace(op):
    def method(self, other):
        return _apply(self, op, other)
    method.__name__ = op.__name__ + "_"
    return method


METHODS = {
    "add_": lambda s, o, alpha=1: _apply(s, lambda a, b: E.add(a, b, alpha), o),
    "sub_": lambda s, o, alpha=1: _apply(s, lambda a, b: E.sub(a, b, alpha), o),
    "mul_": _inplace(E.mul), "div_": _inplace(E.div),
    "__iadd__": _inplace(E.add), "__isub__": _inplace(E.sub),
    "__imul__": _inplace(E.mul), "__itruediv__": _inplace(E.div),
    "zero_": zero_, "fill_": fill_, "copy_": copy_, "clamp_": clamp_,
    "__setitem__": setitem,
}
