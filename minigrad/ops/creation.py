"""Creating tensors: zeros, ones, full, empty, arange, linspace, eye, the
random ones (randn, rand, randint, randperm) on one seeded generator, and the
*_like variants. Each takes PyTorch's ``device=`` ("cpu", ``device("cpu")`` or
None; other devices raise RuntimeError: minigrad runs on the CPU only)."""
import numpy as np

import minigrad._device as D
from minigrad.tensor import DEFAULT_FLOAT, Tensor, as_array

_rng = [np.random.default_rng()]


def manual_seed(seed):
    """Seed the generator behind randn, rand, randint, randperm, dropout and
    layer initialisation."""
    _rng[0] = np.random.default_rng(int(seed))
    return _rng[0]


def generator():
    """The current default generator (a NumPy Generator)."""
    return _rng[0]


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(int(n) for n in size)


def _new(arr, dtype, requires_grad, device=None):
    D.check(device)
    arr = np.asarray(arr, dtype=DEFAULT_FLOAT if dtype is None else dtype)
    return Tensor(arr, requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros (float32 unless dtype is given)."""
    return _new(np.zeros(_size(size)), dtype, requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones (float32 unless dtype is given)."""
    return _new(np.ones(_size(size)), dtype, requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad=False):
    """An uninitialised tensor (here: zeros)."""
    return _new(np.zeros(_size(size)), dtype, requires_grad, device)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of ``fill_value``; its dtype follows the value (float32, int64 or bool)."""
    dtype = as_array(fill_value).dtype if dtype is None else dtype
    return _new(np.full(_size((size,)), fill_value), dtype, requires_grad, device)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """start, start+step, ... below end; int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else DEFAULT_FLOAT
    return _new(np.arange(start, end, step, dtype=np.float64 if np.dtype(dtype).kind == "f"
                          else dtype), dtype, requires_grad, device)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from start to end inclusive."""
    return _new(np.linspace(start, end, int(steps)), dtype, requires_grad, device)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The n x m identity matrix."""
    return _new(np.eye(n, m), dtype, requires_grad, device)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal samples."""
    return _new(_rng[0].standard_normal(_size(size)), dtype, requires_grad, device)


def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1)."""
    return _new(_rng[0].random(_size(size)), dtype, requires_grad, device)


def randint(low, high=None, size=(), dtype=np.int64, device=None):
    """Integers in [low, high) (or [0, low) when high is left out)."""
    if high is None:
        low, high = 0, low
    return _new(_rng[0].integers(low, high, _size((size,))), dtype, False, device)


def randperm(n, dtype=np.int64, device=None):
    """A random permutation of 0..n-1."""
    return _new(_rng[0].permutation(int(n)), dtype, False, device)


def _like(fn):
    def like(t, dtype=None, device=None, requires_grad=False):
        return fn(t.shape, dtype=t.dtype if dtype is None else dtype, device=device,
                  requires_grad=requires_grad)
    like.__name__ = fn.__name__ + "_like"
    like.__doc__ = f"{fn.__name__} with the shape (and by default the dtype) of a tensor."
    return like


zeros_like, ones_like, empty_like = _like(zeros), _like(ones), _like(empty)
rand_like, randn_like = _like(rand), _like(randn)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of ``fill_value`` with the shape (and by default the dtype) of t."""
    return full(t.shape, fill_value, dtype=t.dtype if dtype is None else dtype,
                device=device, requires_grad=requires_grad)


def from_numpy(array):
    """A tensor sharing ``array``'s storage."""
    return Tensor(np.asarray(array))


FUNCTIONS = [manual_seed, zeros, ones, empty, full, arange, linspace, eye, randn, rand, randint,
             randperm, zeros_like, ones_like, empty_like, rand_like, randn_like, full_like,
             from_numpy]
__all__ = [fn.__name__ for fn in FUNCTIONS]
