"""Activation functions. relu, sigmoid, tanh, exact gelu, softmax and
log_softmax (forward and backward) run on the C kernels; the others are NumPy."""
import math

import numpy as np

import minigrad.ops.creation as creation
from minigrad import kernels as K
from minigrad.ops.reductions import dims
from minigrad.tensor import as_tensor, record


def contiguous(a, dtype=None):
    """a as a C-contiguous array (a copy only when needed; 0-d stays 0-d)."""
    return np.asarray(a, dtype=dtype, order="C")


def _kernel(kernel, *arrays):
    """kernel(*arrays) on C-contiguous arrays of the last one's dtype (the
    op's input or output; a gradient is cast to it), copied only when needed.
    Other float dtypes (float16) are computed in float32 and cast back."""
    dtype = arrays[-1].dtype
    work = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
    y = kernel(*(contiguous(a, work) for a in arrays))
    return y if work == dtype else y.astype(dtype)


def _rows(kernel, dim, *arrays):
    """A row kernel applied along ``dim``: dim moved last, the other axes
    flattened into rows, the result in the input's layout."""
    shape = arrays[0].shape
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{kernel.__name__}: dim must be an int, got {dim!r}")
    dim = (dims(dim, len(shape)) or (0,))[0]  # checks the range (0-d: 0 or -1)
    moved = [np.moveaxis(a.reshape(shape or (1,)), dim, -1) for a in arrays]
    n = moved[0].shape[-1]
    y = _kernel(kernel, *(m.reshape(math.prod(m.shape[:-1]), n) for m in moved))
    return np.moveaxis(y.reshape(moved[0].shape), -1, dim).reshape(shape)


def _float(x):
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"expected a floating-point tensor, got {x.dtype}")
    return x


def relu(x):
    """max(x, 0) (C kernel; gradient 0 at 0)."""
    x = _float(x)
    y = _kernel(K.relu, x._a)
    return record(y, (x,), lambda g: (_kernel(K.relu_backward, g, y),), "relu",
                  saves_output=True)


def sigmoid(x):
    """1 / (1 + exp(-x)) (C kernel)."""
    x = _float(x)
    y = _kernel(K.sigmoid, x._a)
    return record(y, (x,), lambda g: (_kernel(K.sigmoid_backward, g, y),), "sigmoid",
                  saves_output=True)


def tanh(x):
    """Hyperbolic tangent (C kernel)."""
    x = _float(x)
    y = _kernel(K.tanh, x._a)
    return record(y, (x,), lambda g: (_kernel(K.tanh_backward, g, y),), "tanh",
                  saves_output=True)


def gelu(x, approximate="none"):
    """x * Phi(x) (exact, with erf: C kernel) or PyTorch's tanh approximation."""
    x = _float(x)
    X = x._a
    if approximate == "tanh":
        c = math.sqrt(2 / math.pi)
        inner = c * (X + 0.044715 * X ** 3)
        t = np.tanh(inner)
        y = 0.5 * X * (1 + t)

        def backward(g):
            return (g * (0.5 * (1 + t) + 0.5 * X * (1 - t * t) * c * (1 + 3 * 0.044715 * X * X)),)
    elif approximate == "none":
        y = _kernel(K.gelu, X)

        def backward(g):
            return (_kernel(K.gelu_backward, g, X),)
    else:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return record(y.astype(X.dtype, copy=False), (x,), backward, "gelu", (x,))


def silu(x):
    """x * sigmoid(x)."""
    x = _float(x)
    X = x._a
    s = _kernel(K.sigmoid, X)
    return record(X * s, (x,), lambda g: (g * s * (1 + X * (1 - s)),), "silu", (x,))


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta; linear where beta x > threshold (PyTorch)."""
    x = _float(x)
    X = x._a
    z = X * beta
    big = z > threshold
    y = np.where(big, X, np.logaddexp(0, z) / beta).astype(X.dtype)
    s = _kernel(K.sigmoid, z.astype(X.dtype))
    return record(y, (x,), lambda g: (np.where(big, g, g * s),), "softplus", (x,))


def elu(x, alpha=1.0):
    """x where x > 0, else alpha * (exp(x) - 1)."""
    x = _float(x)
    X = x._a
    e = np.expm1(np.minimum(X, 0))
    y = np.where(X > 0, X, alpha * e).astype(X.dtype)
    return record(y, (x,), lambda g: (np.where(X > 0, g, g * alpha * (e + 1)),), "elu", (x,))


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    x = _float(x)
    X = x._a
    pos = X > 0
    y = np.where(pos, X, X * negative_slope).astype(X.dtype)
    return record(y, (x,), lambda g: (np.where(pos, g, g * negative_slope),), "leaky_relu",
                  (x,))


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """x clipped to [min_val, max_val] (gradient zero outside)."""
    x = _float(x)
    X = x._a
    inside = (X > min_val) & (X < max_val)
    return record(np.clip(X, min_val, max_val), (x,), lambda g: (np.where(inside, g, 0),),
                  "hardtanh", (x,))


def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) along ``dim`` (C kernel)."""
    x = _float(x)
    s = _rows(K.softmax, dim, x._a)
    return record(s, (x,), lambda g: (_rows(K.softmax_backward, dim, g, s),), "softmax",
                  saves_output=True)


def log_softmax(x, dim=-1):
    """x - logsumexp(x) along ``dim`` (C kernel)."""
    x = _float(x)
    y = _rows(K.log_softmax, dim, x._a)
    return record(y, (x,), lambda g: (_rows(K.log_softmax_backward, dim, g, y),),
                  "log_softmax", saves_output=True)


METHODS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax,
           "log_softmax": log_softmax}
FUNCTIONS = [relu, sigmoid, tanh, gelu, silu, softplus, elu, leaky_relu, hardtanh, softmax,
             log_softmax]
__all__ = [fn.__name__ for fn in FUNCTIONS]


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1/(1-p)
    (identity when not training)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    x = _float(x)
    if not training or p == 0.0:
        return x
    keep = creation.generator().random(x.shape) >= p
    scale = (keep / (1.0 - p) if p < 1.0 else keep * 0.0).astype(x.dtype)
    return record(x._a * scale, (x,), lambda g: (g * scale,), "dropout")


FUNCTIONS.append(dropout)
__all__.append("dropout")
