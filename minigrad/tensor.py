"""Tensor, the autograd graph and ``backward()``, in the spirit of micrograd.

A Tensor owns a NumPy array (its storage; ``numpy()`` returns it). Operations
on tensors that require gradients record, on their output, the parents and a
function mapping the output's gradient to the parents' gradients;
``backward()`` walks that graph in reverse topological order. Gradients
accumulate in the ``.grad`` of leaf tensors until zeroed, as in PyTorch.

The operations themselves live in ``minigrad.ops`` (forward and backward side
by side) and are bound to Tensor as methods there (declared for type checkers
in ``minigrad._tensor_ops``); this module imports only ``grad_mode``, ``_device``.

Storage follows PyTorch: ``t.data`` is a tensor sharing ``t``'s storage with
``requires_grad=False``; in-place operations bump a version counter shared by
every tensor on that storage, and ``backward()`` refuses to use a tensor saved
for the backward pass that was modified since.
"""
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

import minigrad._device as D
from minigrad.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

if TYPE_CHECKING:
    from minigrad._tensor_ops import TensorOps
else:
    TensorOps = object

#: the dtype of tensors made from Python floats (PyTorch's default dtype)
DEFAULT_FLOAT = np.dtype(np.float32)
# dtypes a repr leaves unnamed, as PyTorch's does; others show dtype=minigrad.<name>
_REPR_IMPLIED_DTYPES = (DEFAULT_FLOAT, np.dtype(np.int64), np.dtype(np.bool_))


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """The one coercion to an array: tensors give their storage, arrays and
    array-likes keep their dtype; Python floats (and lists of them) become
    float32, ints int64 and bools bool, as in PyTorch; ``dtype`` forces a type."""
    if isinstance(data, Tensor):
        data = data._a
    elif isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in data):
        data = [as_array(d) for d in data]
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data)
    if isinstance(data, (np.ndarray, np.generic)) or (
            not isinstance(data, (list, tuple, bool, int, float)) and arr.dtype != object):
        return arr  # arrays and array-likes (e.g. a PIL image: uint8) keep their dtype
    if arr.dtype.kind == "f":
        return arr.astype(DEFAULT_FLOAT)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind != "b":
        raise TypeError(f"cannot make a tensor from {type(data).__name__} of dtype {arr.dtype}")
    return arr


def as_tensor(x: Any, dtype: Any = None) -> "Tensor":
    """x itself if it is a Tensor (and of ``dtype`` if given), else a new leaf."""
    if isinstance(x, Tensor) and (dtype is None or x.dtype == dtype):
        return x
    return Tensor(as_array(x, dtype))


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None,
           device: Any = None) -> "Tensor":
    """A new leaf tensor holding a copy of ``data`` (dtypes: see as_array; device: the CPU)."""
    D.check(device)
    arr = as_array(data, dtype)
    return Tensor(np.array(arr, copy=True), requires_grad=requires_grad)


def is_tensor(x: object) -> bool:
    """Whether x is a Tensor."""
    return isinstance(x, Tensor)


def _check_float(dtype):
    if dtype.kind != "f":
        raise TypeError(f"only floating-point tensors can require gradients, got {dtype}")


class Tensor(TensorOps):
    """An n-dimensional array that can record operations for autograd.

    Operations and in-place methods are bound from ``minigrad.ops``."""

    __slots__ = ("_a", "grad", "requires_grad", "grad_fn", "_vc", "_base", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected op

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        self._a: np.ndarray = data if isinstance(data, np.ndarray) else as_array(data)
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self.grad_fn: Node | None = None  # the Node that made this tensor (None for a leaf)
        self._vc = [0]  # the version counter, shared by every view of one storage
        self._base: Tensor | None = None  # the tensor this one is a view of
        if self.requires_grad:
            _check_float(self._a.dtype)

    def _share(self, arr: np.ndarray | None = None) -> "Tensor":
        """A leaf on this storage (or on a view of it), with the shared version counter."""
        t = Tensor(self._a if arr is None else arr)
        t._vc = self._vc
        return t

    # ------------------------------------------------------------ storage
    @property
    def data(self) -> "Tensor":
        """This tensor's storage as a tensor that does not require grad."""
        return self._share()

    @data.setter
    def data(self, value: Any) -> None:
        self._a = as_array(value)
        self._vc[0] += 1

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self._a

    @property
    def _version(self):
        return self._vc[0]

    def _bump(self):
        self._vc[0] += 1

    def _check_inplace(self):
        """PyTorch's rule: a leaf that requires grad (or a view of a tensor that
        requires grad) changes only under no_grad()."""
        if not is_grad_enabled():
            return
        if self.requires_grad and self.grad_fn is None:
            raise RuntimeError("a leaf tensor that requires grad is being used in an in-place "
                               "operation; wrap the update in `with no_grad():` or use .data")
        if self._base is not None and self._base.requires_grad:
            raise RuntimeError("an in-place operation on a view of a tensor that requires grad "
                               "is not supported; clone() the view or work out of place")

    def detach(self) -> "Tensor":
        """The same storage, cut from the graph."""
        return self._share()

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Mark this (leaf) tensor as needing gradients; returns self."""
        if requires_grad:
            _check_float(self._a.dtype)
        self.requires_grad = bool(requires_grad)
        return self

    # ------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, ...]:
        """The sizes of the dimensions (a tuple; PyTorch's torch.Size)."""
        return self._a.shape

    @property
    def dtype(self) -> np.dtype:
        """The element type (a NumPy dtype; ``minigrad.float32`` etc. name them)."""
        return self._a.dtype

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._a.ndim

    @property
    def device(self) -> D.device:
        """Always ``device(type='cpu')``."""
        return D.CPU

    is_cpu, is_cuda = True, False

    @property
    def is_leaf(self) -> bool:
        """True unless an operation that recorded the graph made this tensor."""
        return self.grad_fn is None

    def dim(self) -> int:
        """The number of dimensions."""
        return self._a.ndim

    def size(self, dim: int | None = None) -> Any:
        """The shape, or the size of dimension ``dim``."""
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        """The number of elements."""
        return self._a.size

    def __len__(self) -> int:
        if self._a.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._a)

    def __iter__(self) -> Iterator["Tensor"]:
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self._a)))

    def _one(self, what):
        if self._a.size != 1:
            raise ValueError(f"{what} needs a tensor with one element, got shape {self.shape}")
        return self._a.reshape(()).item()

    def item(self) -> Any:
        """The single element as a Python number."""
        return self._one("item()")

    def tolist(self) -> Any:
        """The elements as (nested) Python lists of numbers."""
        return self._a.tolist()

    def __bool__(self) -> bool:
        if self._a.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is "
                             f"ambiguous; use .any() or .all()")
        return bool(self._one("bool()"))

    def __float__(self) -> float:
        return float(self._one("float()"))

    def __int__(self) -> int:
        return int(self._one("int()"))

    def __index__(self) -> int:
        if self._a.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of one element can be used as an index, "
                            f"got {self.dtype}")
        return int(self._one("__index__()"))

    def __format__(self, spec):
        if self._a.size == 1 and spec:
            return format(self._one("format"), spec)
        return format(repr(self), spec)

    def __repr__(self) -> str:
        extra = f", grad_fn=<{self.grad_fn.op}>" if self.grad_fn else (
            ", requires_grad=True" if self.requires_grad else "")
        if self._a.dtype not in _REPR_IMPLIED_DTYPES:
            extra = f", dtype=minigrad.{self._a.dtype}{extra}"
        body = np.array2string(self._a, precision=4, threshold=20, separator=", ",
                               prefix="tensor(")
        return f"tensor({body}{extra})"

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)

    __hash__ = object.__hash__

    # ------------------------------------------------------------ autograd
    def backward(self, gradient: Any = None, retain_graph: bool | None = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's .grad.

        ``gradient`` is the upstream gradient; it may be left out only when
        self holds a single element. As in PyTorch, what operations saved for it is freed:
        going through them again raises RuntimeError unless ``retain_graph=True``."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(did you forget requires_grad_()?)")
        if gradient is None:
            if self._a.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar output, got shape "
                    f"{self.shape}; pass backward(gradient) or reduce with .sum()/.mean()")
            g = np.ones_like(self._a)
        else:
            g = np.asarray(as_array(gradient), dtype=self.dtype)
            if g.shape != self.shape:
                raise ValueError(f"backward(): gradient has shape {g.shape}, "
                                 f"expected {self.shape}")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            _run_backward(self.grad_fn or self, g, bool(retain_graph))


#: what sys.getrefcount says of an array that only one local variable holds
_SOLE_REFS = (lambda: sys.getrefcount(_held := np.empty(1)))()


def _run_backward(root, g, retain_graph=False):
    """Push g from root through the graph into the leaves' .grad."""
    grads = {id(root): g}
    for node in reversed(_topological_order(root)):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if isinstance(node, Tensor):  # a leaf
            if node.grad is None:  # g itself where nothing else holds it (a fresh
                # array), as PyTorch's AccumulateGrad steals such a gradient; else a copy
                take = (type(g) is np.ndarray and g.base is None and g.dtype == node.dtype
                        and g.flags.c_contiguous and g.flags.writeable
                        and sys.getrefcount(g) <= _SOLE_REFS)
                node.grad = Tensor(g if take else np.array(g, dtype=node.dtype, copy=True))
            else:
                node.grad._a += g
            continue
        node.check_saved()
        backward = node.backward
        if backward is None:
            raise RuntimeError(_FREED.format(node.op))
        if not retain_graph and node.saved:  # free what it saved (with its closure)
            node.backward, node.saved = None, []
        if g.dtype != node.dtype:
            g = g.astype(node.dtype)
        for parent, pg in zip(node.parents, backward(g), strict=True):
            if pg is None or parent is None:
                continue
            key = id(parent)
            grads[key] = grads[key] + pg if key in grads else pg
        pg = None  # (a reference left here would make the leaf copy it)


_FREED = ("Trying to backward through the graph a second time ({} freed what it saved at the "
          "first backward()); specify retain_graph=True to backward through it again")


class Node:
    """One recorded operation: its inputs' nodes (a leaf's is the leaf tensor,
    None where no gradient is needed), the function from the output's gradient
    to the inputs' gradients, and the tensors it saved with their versions.

    The output, when saved, is kept by its version counter and shape only: a
    reference to it would make a cycle (output -> node -> output) that only the
    cyclic garbage collector frees, keeping every step's arrays alive until then."""

    __slots__ = ("parents", "backward", "op", "saved", "dtype")

    def __init__(self, parents: Sequence[Tensor], backward: Callable, op: str,
                 saved: Sequence[Tensor], dtype: np.dtype, output: Tensor | None = None) -> None:
        self.parents = [(p.grad_fn or p) if p.requires_grad else None for p in parents]
        self.saved = [(t._vc, t._vc[0], t) for t in saved]
        if output is not None:
            self.saved.append((output._vc, output._vc[0], output._a.shape))
        self.backward, self.op, self.dtype = backward, op, dtype

    def check_saved(self) -> None:
        """Raise RuntimeError if a saved tensor was modified in place since."""
        for vc, version, t in self.saved:
            if vc[0] != version:
                shape, what = ((t.shape, "output of " + t.grad_fn.op if t.grad_fn else "a leaf")
                               if isinstance(t, Tensor) else (t, "output of " + self.op))
                raise RuntimeError(
                    f"a tensor needed for the gradient of {self.op} was modified by an "
                    f"in-place operation: tensor of shape {shape} ({what}) is at "
                    f"version {vc[0]}; expected version {version}")

    def __repr__(self):
        return f"<{self.op}>"


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
        if isinstance(node, Node):
            for p in node.parents:
                if p is not None and id(p) not in seen:
                    stack.append((p, False))
    return order


def record(data: np.ndarray, parents: Sequence[Tensor], backward: Callable, op: str,
           saved: tuple = (), saves_output: bool = False,
           view_of: Tensor | None = None) -> Tensor:
    """The output of an operation; it records the graph only when needed.

    ``saved`` are the tensors whose values ``backward`` reads (and
    ``saves_output`` that it reads the output's): modifying one in place
    before ``backward()`` is an error. ``view_of``: the input whose storage the
    output may share (it then shares its version counter, as a view)."""
    out = Tensor(data)
    if view_of is not None and np.may_share_memory(data, view_of._a):
        out._vc = view_of._vc
        out._base = view_of if view_of._base is None else view_of._base
    if not is_grad_enabled():
        return out
    for p in parents:
        if p.requires_grad:
            out.requires_grad = True
            out.grad_fn = Node(parents, backward, op, saved, out._a.dtype,
                               out if saves_output else None)
            break
    return out


__all__ = ["DEFAULT_FLOAT", "Node", "Tensor", "as_array", "as_tensor", "enable_grad",
           "is_grad_enabled", "is_tensor", "no_grad", "record", "set_grad_enabled", "tensor"]
