"""Tensors with reverse-mode autograd, in the spirit of micrograd.

A Tensor wraps a NumPy array (``.data``). Operations on tensors that require
gradients record, on their output, the parents and a function mapping the
output's gradient to the parents' gradients; ``backward()`` walks that graph in
reverse topological order. Gradients accumulate in the ``.grad`` of leaf
tensors (those created by the user) until zeroed, as in PyTorch.
"""
import threading
from contextlib import contextmanager

import numpy as np

_state = threading.local()


def is_grad_enabled():
    """False inside ``no_grad()``."""
    return getattr(_state, "grad_enabled", True)


@contextmanager
def no_grad():
    """Context in which operations record no graph (evaluation, updates)."""
    before = is_grad_enabled()
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = before


def _as_array(data, dtype=None):
    """NumPy arrays keep their dtype; Python floats become float32 and Python
    ints int64, as in PyTorch."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        return np.asarray(data)
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind != "b":
        raise TypeError(f"cannot make a tensor from {type(data).__name__} of dtype {arr.dtype}")
    return arr


def tensor(data, requires_grad=False, dtype=None):
    """A new tensor (see _as_array for the default dtype)."""
    return Tensor(_as_array(data, dtype), requires_grad=requires_grad)


def _unbroadcast(grad, shape):
    """Sum grad over the axes that broadcasting added or stretched."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class Tensor:
    """An n-dimensional array that can record operations for autograd."""

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected op

    def __init__(self, data, requires_grad=False, _parents=(), _backward=None, _op=""):
        self.data = data if isinstance(data, np.ndarray) else _as_array(data)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = _parents
        self._backward = _backward
        self._op = _op
        if self.requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"got {self.data.dtype}")

    # ------------------------------------------------------------ basics
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def T(self):
        return self.transpose()

    @property
    def is_leaf(self):
        return self._backward is None

    def __len__(self):
        return len(self.data)

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is "
                             f"ambiguous; use .any() or .all() on .data")
        return bool(self.data)

    def __repr__(self):
        extra = f", grad_fn=<{self._op}>" if self._op else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"tensor({np.array2string(self.data, precision=4, threshold=20)}{extra})"

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def numpy(self):
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return self.data.size

    def requires_grad_(self, requires_grad=True):
        """Mark this (leaf) tensor as needing gradients; returns self."""
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"got {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def zero_(self):
        """Fill with zeros in place; returns self."""
        self.data[...] = 0
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def to(self, dtype):
        """Cast (differentiable between float types)."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        src = self.dtype
        return _make(self.data.astype(dtype), (self,), lambda g: (g.astype(src),), "cast")

    # ------------------------------------------------------------ autograd
    def backward(self, gradient=None):
        """Accumulate d(self)/d(leaf) into every leaf's .grad.

        ``gradient`` is the upstream gradient; it may be left out only when
        self holds a single element."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(did you forget requires_grad_()?)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar output, got shape "
                    f"{self.shape}; pass backward(gradient) or reduce with .sum()/.mean()")
            g = np.ones_like(self.data)
        else:
            g = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient,
                           dtype=self.dtype)
            if g.shape != self.shape:
                raise ValueError(f"backward(): gradient has shape {g.shape}, "
                                 f"expected {self.shape}")
        grads = {id(self): g}
        for node in reversed(_topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:
                if node.requires_grad:
                    if node.grad is None:
                        node.grad = Tensor(np.array(g, dtype=node.dtype, copy=True))
                    else:
                        node.grad.data += g
                continue
            for parent, pg in zip(node._parents, node._backward(g), strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = grads[key] + pg if key in grads else pg

    # ------------------------------------------------------------ operators
    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __neg__(self):
        return _make(-self.data, (self,), lambda g: (-g,), "neg")

    def __pow__(self, exponent):
        return power(self, exponent)

    def __matmul__(self, other):
        from minigrad.functional import matmul
        return matmul(self, other)

    def __rmatmul__(self, other):
        from minigrad.functional import matmul
        return matmul(other, self)

    def __getitem__(self, index):
        index = index.data if isinstance(index, Tensor) else index
        shape, dtype = self.shape, self.dtype

        def backward(g):
            full = np.zeros(shape, dtype)
            np.add.at(full, index, g)
            return (full,)
        return _make(self.data[index], (self,), backward, "index")

    # comparisons: no gradient
    def __gt__(self, other):
        return Tensor(self.data > _value(other))

    def __ge__(self, other):
        return Tensor(self.data >= _value(other))

    def __lt__(self, other):
        return Tensor(self.data < _value(other))

    def __le__(self, other):
        return Tensor(self.data <= _value(other))

    def __eq__(self, other):
        return Tensor(self.data == _value(other))

    def __ne__(self, other):
        return Tensor(self.data != _value(other))

    __hash__ = object.__hash__

    # ------------------------------------------------------------ methods
    def sum(self, axis=None, keepdims=False):
        return reduce_sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        count = self.data.size if axis is None else np.prod(
            [self.shape[a] for a in np.atleast_1d(axis)])
        return reduce_sum(self, axis, keepdims) * (1.0 / max(count, 1))

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        old = self.shape
        return _make(self.data.reshape(shape), (self,), lambda g: (g.reshape(old),), "reshape")

    view = reshape

    def flatten(self, start_dim=0):
        return self.reshape(*self.shape[:start_dim], -1)

    def unsqueeze(self, dim):
        shape = list(self.shape)
        shape.insert(dim if dim >= 0 else len(shape) + 1 + dim, 1)
        return self.reshape(*shape)

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(*[n for n in self.shape if n != 1])
        if self.shape[dim] != 1:
            return self
        shape = list(self.shape)
        del shape[dim]
        return self.reshape(*shape)

    def transpose(self, *axes):
        axes = axes or None
        inverse = None if axes is None else np.argsort(axes)
        return _make(self.data.transpose(axes), (self,),
                     lambda g: (g.transpose(inverse),), "transpose")

    def relu(self):
        from minigrad.functional import relu
        return relu(self)

    def sigmoid(self):
        from minigrad.functional import sigmoid
        return sigmoid(self)

    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def abs(self):
        return _make(np.abs(self.data), (self,), lambda g: (g * np.sign(self.data),), "abs")

    def sqrt(self):
        return self ** 0.5

    def max(self, other=None, axis=None, keepdims=False):
        """Elementwise maximum with ``other`` (``x.max(0.0)`` is ReLU, as the
        chapter writes it), or the maximum over ``axis``."""
        if other is not None:
            return maximum(self, other)
        return reduce_max(self, axis, keepdims)

    def argmax(self, axis=None):
        return Tensor(np.argmax(self.data, axis=axis))

    def clamp(self, min=None, max=None):  # noqa: A002 - PyTorch's names
        mask = np.ones(self.shape, bool)
        if min is not None:
            mask &= self.data >= min
        if max is not None:
            mask &= self.data <= max
        return _make(np.clip(self.data, min, max), (self,), lambda g: (g * mask,), "clamp")


def _value(x):
    return x.data if isinstance(x, Tensor) else x


def _topological_order(root):
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in node._parents:
            if id(p) not in seen and p.requires_grad:
                stack.append((p, False))
    return order


def _make(data, parents, backward, op):
    """The output of an operation; it records the graph only when needed."""
    if is_grad_enabled() and any(p.requires_grad for p in parents):
        return Tensor(data, True, parents, backward, op)
    return Tensor(data)


def _pair(a, b):
    """Both operands as tensors of one floating dtype (NumPy's promotion;
    Python numbers take the tensor's dtype)."""
    if not isinstance(a, Tensor):
        a = Tensor(np.asarray(a, dtype=b.dtype if b.dtype.kind == "f" else np.float32))
    if not isinstance(b, Tensor):
        b = Tensor(np.asarray(b, dtype=a.dtype if a.dtype.kind == "f" else np.float32))
    return a, b


def add(a, b):
    a, b = _pair(a, b)
    return _make(a.data + b.data, (a, b),
                 lambda g: (_unbroadcast(g, a.shape), _unbroadcast(g, b.shape)), "add")


def sub(a, b):
    a, b = _pair(a, b)
    return _make(a.data - b.data, (a, b),
                 lambda g: (_unbroadcast(g, a.shape), _unbroadcast(-g, b.shape)), "sub")


def mul(a, b):
    a, b = _pair(a, b)
    return _make(a.data * b.data, (a, b),
                 lambda g: (_unbroadcast(g * b.data, a.shape),
                            _unbroadcast(g * a.data, b.shape)), "mul")


def div(a, b):
    a, b = _pair(a, b)
    return _make(a.data / b.data, (a, b),
                 lambda g: (_unbroadcast(g / b.data, a.shape),
                            _unbroadcast(-g * a.data / (b.data * b.data), b.shape)), "div")


def power(a, exponent):
    if isinstance(exponent, Tensor) or not np.isscalar(exponent):
        raise TypeError("only powers by a number are supported")
    out = a.data ** exponent
    return _make(out, (a,), lambda g: (g * exponent * a.data ** (exponent - 1),), "pow")


def exp(a):
    out = np.exp(a.data)
    return _make(out, (a,), lambda g: (g * out,), "exp")


def log(a):
    return _make(np.log(a.data), (a,), lambda g: (g / a.data,), "log")


def maximum(a, b):
    a, b = _pair(a, b)
    if b.data.ndim == 0 and b.data == 0 and not b.requires_grad:
        from minigrad.functional import relu
        return relu(a)
    a_wins = a.data >= b.data
    return _make(np.maximum(a.data, b.data), (a, b),
                 lambda g: (_unbroadcast(g * a_wins, a.shape),
                            _unbroadcast(g * ~a_wins, b.shape)), "maximum")


def where(cond, a, b):
    """Elementwise ``a`` where ``cond`` holds, else ``b`` (both differentiable)."""
    c = np.asarray(_value(cond), dtype=bool)
    a, b = _pair(a, b)
    return _make(np.where(c, a.data, b.data), (a, b),
                 lambda g: (_unbroadcast(np.where(c, g, 0), a.shape),
                            _unbroadcast(np.where(c, 0, g), b.shape)), "where")


def reduce_sum(a, axis=None, keepdims=False):
    shape = a.shape

    def backward(g):
        if axis is not None and not keepdims:
            g = np.expand_dims(g, axis)
        return (np.broadcast_to(g, shape).astype(a.dtype, copy=True),)
    return _make(np.asarray(a.data.sum(axis=axis, keepdims=keepdims), dtype=a.dtype), (a,),
                 backward, "sum")


def reduce_max(a, axis=None, keepdims=False):
    out = a.data.max(axis=axis, keepdims=True)

    def backward(g):
        if axis is not None and not keepdims:
            g = np.expand_dims(g, axis)
        mask = a.data == out
        return (mask * g / mask.sum(axis=axis, keepdims=True),)
    value = out if keepdims else (out.reshape(()) if axis is None else out.squeeze(axis))
    return _make(value, (a,), backward, "max")


def cat(tensors, dim=0):
    """Concatenate along ``dim``."""
    tensors = [t if isinstance(t, Tensor) else Tensor(_as_array(t)) for t in tensors]
    sizes = np.cumsum([t.shape[dim] for t in tensors])[:-1]
    return _make(np.concatenate([t.data for t in tensors], axis=dim), tuple(tensors),
                 lambda g: tuple(np.split(g, sizes, axis=dim)), "cat")


def stack(tensors, dim=0):
    """Stack along a new axis ``dim``."""
    return cat([t.unsqueeze(dim) if isinstance(t, Tensor) else Tensor(_as_array(t)).unsqueeze(
        dim) for t in tensors], dim)


__all__ = ["Tensor", "tensor", "no_grad", "is_grad_enabled", "where", "cat", "stack",
           "exp", "log", "maximum"]
