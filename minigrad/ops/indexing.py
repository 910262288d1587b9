"""Indexing: t[key] (PyTorch's placement of index tensors), gather,
masked_fill, tril/triu."""
import numpy as np

from minigrad.ops.promote import operands
from minigrad.ops.reductions import dims
from minigrad.tensor import Tensor, as_array, as_tensor, record


def _is_advanced(k):
    return isinstance(k, (np.ndarray, list)) or (isinstance(k, Tensor) and k.ndim > 0)


def split_key(key):
    """key as (k1, k2) with a[key] == a[k1][k2] in PyTorch's meaning: k1 picks
    the integer positions (basic indexing, a view), k2 the rest. NumPy counts an
    integer as an advanced index, which moves dims when an index array sits
    among slices; PyTorch does not."""
    key = key if isinstance(key, tuple) else (key,)
    key = tuple(as_array(k) if isinstance(k, Tensor) and k.ndim > 0 else
                (k.item() if isinstance(k, Tensor) else k) for k in key)
    if not any(_is_advanced(k) for k in key) or not any(
            isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in key):
        return None, key
    k1 = tuple(k if isinstance(k, (int, np.integer)) or k is Ellipsis else slice(None)
               for k in key if k is not None)
    k2 = tuple(k for k in key if not isinstance(k, (int, np.integer)))
    return k1, k2


def getitem(a, key):
    """a[key], with index tensors placed as PyTorch places them."""
    k1, k2 = split_key(key)
    src = a._a if k1 is None else a._a[k1]
    out = src[k2]
    shape, dtype = a.shape, a.dtype

    def backward(g):
        full = np.zeros(shape, dtype)
        np.add.at(full if k1 is None else full[k1], k2, g)
        return (full,)
    return record(out, (a,), backward, "index", view_of=a)


def gather(a, dim, index):
    """out[i][j] = a[index[i][j]][j] (dim 0) etc.: values picked along ``dim``."""
    idx = as_array(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be an integer tensor, got {idx.dtype}")
    axis = dims(dim, a.ndim)[0]
    if idx.ndim != a.ndim or any(
            i > n for d, (i, n) in enumerate(zip(idx.shape, a.shape, strict=True)) if d != axis):
        raise ValueError(f"gather: index of shape {idx.shape} does not fit input {a.shape} "
                         f"along dims other than {axis}")
    shape = a.shape
    grid = list(np.indices(idx.shape, sparse=True))
    grid[axis] = idx
    grid = tuple(grid)

    def backward(g):
        full = np.zeros(shape, g.dtype)
        np.add.at(full, grid, g)
        return (full,)
    saved = (index,) if isinstance(index, Tensor) else ()  # modified in place: refused
    return record(a._a[grid], (a,), backward, "gather", saved=saved)


def masked_fill(a, mask, value):
    """a with ``value`` where ``mask`` is true (mask broadcasts)."""
    m = np.asarray(as_array(mask), dtype=bool)
    a, v = operands(a, value)
    if v.ndim:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got {v.shape}")
    out = np.where(m, v._a, a._a).astype(a.dtype)
    return record(out, (a, v), lambda g: (np.where(m, 0, g),
                                          np.where(m, g, 0).sum().astype(g.dtype)),
                  "masked_fill")


def _tri(a, diagonal, lower):
    if a.ndim < 2:
        raise ValueError(f"{'tril' if lower else 'triu'} needs at least 2 dims, got {a.ndim}")
    rows, cols = a.shape[-2:]
    keep = (np.tri(rows, cols, diagonal, dtype=bool) if lower else
            ~np.tri(rows, cols, diagonal - 1, dtype=bool))
    return record(np.where(keep, a._a, 0).astype(a.dtype), (a,),
                  lambda g: (np.where(keep, g, 0),), "tril" if lower else "triu")


def tril(a, diagonal=0):
    """The lower triangle (elements on and below ``diagonal``); the rest zero."""
    return _tri(as_tensor(a), diagonal, True)


def triu(a, diagonal=0):
    """The upper triangle (elements on and above ``diagonal``); the rest zero."""
    return _tri(as_tensor(a), diagonal, False)


METHODS = {"__getitem__": getitem, "gather": gather, "masked_fill": masked_fill,
           "tril": tril, "triu": triu}
FUNCTIONS = [gather, masked_fill, tril, triu]
__all__ = [fn.__name__ for fn in FUNCTIONS]
