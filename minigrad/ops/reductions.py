"""Reductions: sum, mean, max/min (values, indices), var/std, prod, logsumexp,
argmax/argmin, any/all."""
import functools
from collections import namedtuple

import numpy as np

import minigrad.ops.elementwise as E
from minigrad.tensor import Tensor, as_tensor, record

MinMax = namedtuple("MinMax", ["values", "indices"])


def dims(dim, ndim):
    """``dim`` (None, an int or a sequence; negative counts from the end) as a
    sorted tuple of axes; a 0-d tensor accepts 0 and -1, as in PyTorch."""
    if dim is None:
        return tuple(range(ndim))
    seq = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    n = ndim or 1
    out = []
    for d in seq:
        d = int(d)
        if not -n <= d < n:
            raise IndexError(f"dimension {d} out of range for a tensor with {ndim} dims")
        out.append(d % n)
    if len(set(out)) != len(out):
        raise RuntimeError(f"dim {out} names a dimension more than once")
    return tuple(sorted(out)) if ndim else ()


def _numpy_names(fn):
    """Also accept NumPy's ``axis=`` and ``keepdims=`` for ``dim=`` and
    ``keepdim=``, as PyTorch's reductions do (giving both is a TypeError)."""
    @functools.wraps(fn)
    def reduction(a, *args, **kwargs):
        for alias, name in (("axis", "dim"), ("keepdims", "keepdim")):
            if alias in kwargs:
                if name in kwargs or (name == "dim" and args):
                    raise TypeError(f"{fn.__name__}() got both {name} and its alias {alias}")
                kwargs[name] = kwargs.pop(alias)
        return fn(a, *args, **kwargs)
    return reduction


def _expand(g, axes, keepdim, shape):
    """g (reduced over axes) broadcast back to shape."""
    if not keepdim and axes:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


@_numpy_names
def sum(a, dim=None, keepdim=False, dtype=None):  # noqa: A001 - PyTorch's name
    """Sum over ``dim`` (all dims by default); integers sum to int64."""
    a = as_tensor(a)
    axes = dims(dim, a.ndim)
    A = a._a
    out_dtype = np.dtype(dtype) if dtype else (A.dtype if A.dtype.kind == "f" else np.int64)
    out = np.asarray(A.sum(axis=axes, keepdims=keepdim), dtype=out_dtype)
    return record(out, (a,), lambda g: (_expand(g, axes, keepdim, a.shape),), "sum")


@_numpy_names
def mean(a, dim=None, keepdim=False):
    """Mean over ``dim``; nan over no elements, as in PyTorch."""
    a = as_tensor(a)
    if a.dtype.kind != "f":
        raise TypeError(f"mean() needs a floating-point tensor, got {a.dtype}")
    axes = dims(dim, a.ndim)
    count = int(np.prod([a.shape[i] for i in axes]))
    scale = np.asarray(1.0 / count if count else np.nan, a.dtype)
    with np.errstate(invalid="ignore"):
        out = np.asarray(a._a.sum(axis=axes, keepdims=keepdim) * scale, a.dtype)
    # saves no tensor (as PyTorch's): the graph can be walked again after backward()
    return record(out, (a,), lambda g: (_expand(g * scale, axes, keepdim, a.shape),), "mean")


def _extreme(a, dim, keepdim, pick, name):
    a = as_tensor(a)
    axes = dims(dim, a.ndim)
    A = a._a
    if A.size == 0:
        raise RuntimeError(f"{name}(): cannot reduce an empty tensor")
    out = pick(A, axis=axes, keepdims=True)

    def backward(g):
        mask = A == out
        return (_expand(g, axes, keepdim, a.shape) * mask / mask.sum(axis=axes, keepdims=True),)
    return record(out if keepdim else out.reshape([n for i, n in enumerate(A.shape)
                                                   if i not in axes]),
                  (a,), backward, name, (a,), saves_output=True)


@_numpy_names
def amax(a, dim=None, keepdim=False):
    """Maximum over ``dim``; ties share the gradient evenly."""
    return _extreme(a, dim, keepdim, np.max, "amax")


@_numpy_names
def amin(a, dim=None, keepdim=False):
    """Minimum over ``dim``; ties share the gradient evenly."""
    return _extreme(a, dim, keepdim, np.min, "amin")


def _with_indices(a, dim, keepdim, arg, name):
    idx = arg(a._a, axis=dim, keepdims=True)
    values = np.take_along_axis(a._a, idx, axis=dim)

    def backward(g):
        full = np.zeros(a.shape, g.dtype)
        np.put_along_axis(full, idx, g if keepdim else np.expand_dims(g, dim), axis=dim)
        return (full,)
    if not keepdim:
        values, indices = values.squeeze(dim), idx.squeeze(dim)
    else:
        indices = idx
    return MinMax(record(values, (a,), backward, name), Tensor(indices.astype(np.int64)))


def _along(a, dim, keepdim, arg, name):
    if a.ndim == 0:
        dims(dim, 0)
        return MinMax(a.clone(), Tensor(np.int64(0)))
    return _with_indices(a, dims(dim, a.ndim)[0], keepdim, arg, name)


@_numpy_names
def max(a, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    """``max()``: the largest element; ``max(dim)``: (values, indices) along dim;
    ``max(tensor)`` (or a float): the elementwise maximum."""
    a = as_tensor(a)
    if isinstance(dim, Tensor | float):
        return E.maximum(a, dim)
    if dim is None:
        return amax(a)
    return _along(a, dim, keepdim, np.argmax, "max")


@_numpy_names
def min(a, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    """``min()``, ``min(dim)`` -> (values, indices), or ``min(tensor)``: as max."""
    a = as_tensor(a)
    if isinstance(dim, Tensor | float):
        return E.minimum(a, dim)
    if dim is None:
        return amin(a)
    return _along(a, dim, keepdim, np.argmin, "min")


@_numpy_names
def argmax(a, dim=None, keepdim=False):
    """Index of the largest element (of the flattened tensor when dim is None)."""
    A = as_tensor(a)._a
    if dim is None:
        return Tensor(np.int64(np.argmax(A)))
    return Tensor(np.argmax(A, axis=dims(dim, A.ndim)[0], keepdims=keepdim).astype(np.int64))


@_numpy_names
def argmin(a, dim=None, keepdim=False):
    """Index of the smallest element (of the flattened tensor when dim is None)."""
    A = as_tensor(a)._a
    if dim is None:
        return Tensor(np.int64(np.argmin(A)))
    return Tensor(np.argmin(A, axis=dims(dim, A.ndim)[0], keepdims=keepdim).astype(np.int64))


@_numpy_names
def var(a, dim=None, keepdim=False, correction=1, unbiased=None):
    """Variance with ``correction`` (1: Bessel's, the default; 0: population)."""
    a = as_tensor(a)
    if unbiased is not None:
        correction = int(unbiased)
    axes = dims(dim, a.ndim)
    count = int(np.prod([a.shape[i] for i in axes]))
    centered = E.sub(a, mean(a, dim, keepdim=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.asarray(1.0 / (count - correction) if count > correction else np.nan, a.dtype)
    return E.mul(sum(E.mul(centered, centered), dim, keepdim), scale)


@_numpy_names
def std(a, dim=None, keepdim=False, correction=1, unbiased=None):
    """Standard deviation (see var); its gradient is 0 where it is 0, as in PyTorch."""
    a = as_tensor(a)
    if unbiased is not None:
        correction = int(unbiased)
    axes = dims(dim, a.ndim)
    A = a._a
    count = int(np.prod([a.shape[i] for i in axes]))
    centered = A - A.mean(axis=axes, keepdims=True)
    denom = count - correction
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sqrt((centered * centered).sum(axis=axes, keepdims=True) / denom)
        out = np.where(denom > 0, out, np.nan).astype(A.dtype)

    def backward(g):
        g = g if keepdim else np.expand_dims(g, axes)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.where(out == 0, 0, g * centered / (denom * out)).astype(A.dtype),)
    return record(out if keepdim else out.reshape([n for i, n in enumerate(A.shape)
                                                   if i not in axes]), (a,), backward, "std",
                  (a,), saves_output=True)


@_numpy_names
def prod(a, dim=None, keepdim=False):
    """Product over one ``dim`` (or all elements); exact gradients with zeros."""
    a = as_tensor(a)
    if dim is None:
        flat = a.reshape(-1)
        return prod(flat, 0).reshape(()) if not keepdim else prod(flat, 0).reshape(
            (1,) * a.ndim)
    axis = dims(dim, a.ndim)[0] if a.ndim else None
    A = a._a
    if axis is None:
        return record(A.copy(), (a,), lambda g: (g,), "prod")
    out = A.prod(axis=axis, keepdims=keepdim)

    def backward(g):
        ones = np.ones_like(np.take(A, [0], axis=axis))
        left = np.cumprod(np.concatenate([ones, np.take(A, range(A.shape[axis] - 1),
                                                        axis=axis)], axis), axis)
        rev = np.flip(A, axis)
        right = np.flip(np.cumprod(np.concatenate(
            [ones, np.take(rev, range(A.shape[axis] - 1), axis=axis)], axis), axis), axis)
        return ((g if keepdim else np.expand_dims(g, axis)) * left * right,)
    return record(out, (a,), backward, "prod", (a,))


@_numpy_names
def logsumexp(a, dim, keepdim=False):
    """log(sum(exp(a))) along dim, computed stably."""
    a = as_tensor(a)
    axes = dims(dim, a.ndim)
    A = a._a
    m = A.max(axis=axes, keepdims=True) if A.size else np.zeros([1] * A.ndim, A.dtype)
    m = np.where(np.isfinite(m), m, 0)
    y = np.log(np.exp(A - m).sum(axis=axes, keepdims=True)) + m
    return record(y if keepdim else y.reshape([n for i, n in enumerate(A.shape)
                                               if i not in axes]), (a,),
                  lambda g: (_expand(g, axes, keepdim, a.shape) * np.exp(A - y),),
                  "logsumexp", (a,), saves_output=True)


@_numpy_names
def any(a, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    """Whether any element is true (over ``dim``)."""
    A = as_tensor(a)._a
    return Tensor(np.asarray(A.any(axis=dims(dim, A.ndim), keepdims=keepdim)))


@_numpy_names
def all(a, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    """Whether all elements are true (over ``dim``)."""
    A = as_tensor(a)._a
    return Tensor(np.asarray(A.all(axis=dims(dim, A.ndim), keepdims=keepdim)))


METHODS = {"sum": sum, "mean": mean, "amax": amax, "amin": amin, "max": max, "min": min,
           "argmax": argmax, "argmin": argmin, "var": var, "std": std, "prod": prod,
           "logsumexp": logsumexp, "any": any, "all": all}
FUNCTIONS = list(METHODS.values())
__all__ = [fn.__name__ for fn in FUNCTIONS] + ["MinMax"]
