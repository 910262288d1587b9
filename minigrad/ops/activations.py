"""Activation functions. relu and sigmoid run on the C kernels; the others are
NumPy for now, each written so that its kernel (``K.tanh`` etc.) is a one-line
swap where marked ``kernel:``."""
import math

import numpy as np

from minigrad import kernels as K
from minigrad.ops import creation
from minigrad.tensor import as_tensor, record


def contiguous(a, dtype=None):
    """a as a C-contiguous array (a copy only when needed; 0-d stays 0-d)."""
    return np.asarray(a, dtype=dtype, order="C")


def _float(x):
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"expected a floating-point tensor, got {x.dtype}")
    return x


def relu(x):
    """max(x, 0) (C kernel; gradient 0 at 0)."""
    x = _float(x)
    y = K.relu(contiguous(x._a))
    return record(y, (x,), lambda g: (K.relu_backward(contiguous(g, y.dtype), y),), "relu",
                  saves_output=True)


def sigmoid(x):
    """1 / (1 + exp(-x)) (C kernel)."""
    x = _float(x)
    y = K.sigmoid(contiguous(x._a))
    return record(y, (x,), lambda g: (K.sigmoid_backward(contiguous(g, y.dtype), y),),
                  "sigmoid", saves_output=True)


def tanh(x):
    """Hyperbolic tangent."""
    x = _float(x)
    y = np.tanh(x._a)  # kernel: K.tanh(contiguous(x._a))
    return record(y, (x,), lambda g: (g * (1 - y * y),), "tanh", saves_output=True)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x, approximate="none"):
    """x * Phi(x) (exact, with erf) or PyTorch's tanh approximation."""
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
        cdf = (0.5 * (1 + _erf(X / math.sqrt(2)))).astype(X.dtype)  # kernel: K.gelu
        y = X * cdf

        def backward(g):  # kernel: K.gelu_backward
            pdf = np.exp(-0.5 * X * X) / math.sqrt(2 * math.pi)
            return (g * (cdf + X * pdf),)
    else:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return record(y.astype(X.dtype), (x,), backward, "gelu", (x,))


def silu(x):
    """x * sigmoid(x)."""
    x = _float(x)
    X = x._a
    s = K.sigmoid(contiguous(X))
    return record(X * s, (x,), lambda g: (g * s * (1 + X * (1 - s)),), "silu", (x,))


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta; linear where beta x > threshold (PyTorch)."""
    x = _float(x)
    X = x._a
    z = X * beta
    big = z > threshold
    y = np.where(big, X, np.logaddexp(0, z) / beta).astype(X.dtype)
    s = K.sigmoid(contiguous(z.astype(X.dtype)))
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
    """exp(x) / sum(exp(x)) along ``dim``."""
    x = _float(x)
    X = x._a
    e = np.exp(X - X.max(axis=dim, keepdims=True))  # kernel: K.softmax
    s = e / e.sum(axis=dim, keepdims=True)
    return record(s, (x,), lambda g: (s * (g - (g * s).sum(axis=dim, keepdims=True)),),
                  "softmax", saves_output=True)


def log_softmax(x, dim=-1):
    """x - logsumexp(x) along ``dim``."""
    x = _float(x)
    X = x._a
    shifted = X - X.max(axis=dim, keepdims=True)  # kernel: K.log_softmax
    y = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))

    def backward(g):  # kernel: K.log_softmax_backward
        return (g - np.exp(y) * g.sum(axis=dim, keepdims=True),)
    return record(y, (x,), backward, "log_softmax", saves_output=True)


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
