"""PyTorch's type promotion and broadcasting for operands that may be tensors or
Python numbers."""
import numpy as np

from minigrad.tensor import DEFAULT_FLOAT, Tensor, as_tensor

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
_DEFAULT = {0: np.dtype(bool), 1: np.dtype(np.int64), 2: DEFAULT_FLOAT}


def _category(dtype):
    return _CATEGORY.get(dtype.kind, 2)


def result_dtype(*operands):
    """The dtype PyTorch gives an elementwise op on ``operands``: the highest
    category (bool < integer < float) wins; within it, tensors with dimensions
    decide before 0-d tensors, and those before Python numbers (which then take
    the default dtype: float32 or int64)."""
    levels = ([], [], [])  # dimensioned tensors, 0-d tensors/arrays, Python numbers
    for x in operands:
        if isinstance(x, Tensor | np.ndarray):
            levels[0 if x.ndim else 1].append(np.dtype(x.dtype))
        elif isinstance(x, np.generic):
            levels[1].append(np.dtype(x.dtype))
        elif isinstance(x, bool | int | float):
            levels[2].append(np.dtype(bool) if isinstance(x, bool) else
                             np.dtype(np.int64) if isinstance(x, int) else DEFAULT_FLOAT)
        else:
            raise TypeError(f"unsupported operand type {type(x).__name__}")
    top = max(_category(d) for level in levels for d in level)
    for i, level in enumerate(levels):
        same = [d for d in level if _category(d) == top]
        if same:
            return _DEFAULT[top] if i == 2 else np.result_type(*same)
    raise AssertionError("unreachable")


def operands(*xs, floating=False):
    """``xs`` as tensors of their common dtype (float32 when ``floating`` and
    the common type is not floating)."""
    dtype = result_dtype(*xs)
    if floating and dtype.kind != "f":
        dtype = DEFAULT_FLOAT
    return tuple(_cast(x, dtype) for x in xs)


def _cast(x, dtype):
    if isinstance(x, Tensor):
        return x if x.dtype == dtype else x.to(dtype)
    return as_tensor(np.asarray(x, dtype=dtype))


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
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
