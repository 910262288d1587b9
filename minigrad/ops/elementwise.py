"""Elementwise arithmetic, math functions, comparisons and casts."""
import functools

import numpy as np

import minigrad._device as D
from minigrad.ops.promote import operands, unbroadcast
from minigrad.tensor import Tensor, as_array, record


def quiet(fn):
    """Run fn with NumPy's floating-point warnings off: like PyTorch, results
    are inf or nan without a warning."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(*args, **kwargs)
    return wrapper


def add(a, b, alpha=1):
    """a + alpha * b, broadcasting."""
    if alpha != 1:
        b = mul(b, alpha)
    a, b = operands(a, b)
    return record(a._a + b._a, (a, b),
                  lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)), "add")


def sub(a, b, alpha=1):
    """a - alpha * b, broadcasting."""
    if alpha != 1:
        b = mul(b, alpha)
    a, b = operands(a, b)
    return record(a._a - b._a, (a, b),
                  lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)), "sub")


def mul(a, b):
    """a * b, broadcasting."""
    a, b = operands(a, b)
    A, B = a._a, b._a
    return record(A * B, (a, b), lambda g: (unbroadcast(g * B, a.shape),
                                            unbroadcast(g * A, b.shape)), "mul", (a, b))


@quiet
def div(a, b):
    """True division; integers divide to float32, as in PyTorch."""
    a, b = operands(a, b, floating=True)
    A, B = a._a, b._a
    return record(A / B, (a, b), lambda g: (unbroadcast(g / B, a.shape),
                                            unbroadcast(-g * A / (B * B), b.shape)),
                  "div", (a, b))


def neg(a):
    """-a."""
    return record(-a._a, (a,), lambda g: (-g,), "neg")


@quiet
def pow(a, exponent):  # noqa: A001 - PyTorch's name
    """a ** exponent (either may be a tensor). d/da of a**0 is 0 everywhere,
    and d/d(exponent) is 0 where a == 0, as in PyTorch."""
    a, b = operands(a, exponent)
    A, B = a._a, b._a
    out = A ** B

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(np.where(B == 0, 0, g * B * A ** np.where(B == 0, 1, B - 1)),
                             a.shape)
        if b.requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(np.where(A == 0, 0, g * out * np.log(A)), b.shape)
        return ga, gb
    return record(out, (a, b), backward, "pow", (a, b), saves_output=True)


def rpow(a, base):
    """base ** a (``2 ** t``)."""
    return pow(base, a)


@quiet
def exp(a):
    """e ** a."""
    out = np.exp(a._a)
    return record(out, (a,), lambda g: (g * out,), "exp", saves_output=True)


@quiet
def log(a):
    """Natural logarithm."""
    A = a._a
    return record(np.log(A), (a,), lambda g: (g / A,), "log", (a,))


@quiet
def sqrt(a):
    """Square root."""
    out = np.sqrt(a._a)
    return record(out, (a,), lambda g: (g / (2 * out),), "sqrt", saves_output=True)


@quiet
def rsqrt(a):
    """1 / sqrt(a)."""
    out = 1 / np.sqrt(a._a)
    return record(out, (a,), lambda g: (-0.5 * g * out ** 3,), "rsqrt", saves_output=True)


def abs(a):  # noqa: A001 - PyTorch's name
    """|a| (gradient 0 at 0)."""
    A = a._a
    return record(np.abs(A), (a,), lambda g: (g * np.sign(A),), "abs", (a,))


def sign(a):
    """-1, 0 or 1 (gradient zero)."""
    return record(np.sign(a._a), (a,), lambda g: (np.zeros_like(g),), "sign")


def _stepwise(ufunc, name):
    def op(a, *args):
        return record(ufunc(a._a, *args), (a,), lambda g: (np.zeros_like(g),), name)
    op.__name__ = name
    op.__doc__ = f"Elementwise {name} (gradient zero)."
    return op


round, floor, ceil, trunc = (_stepwise(f, n) for f, n in  # noqa: A001 - PyTorch's names
                             [(np.round, "round"), (np.floor, "floor"), (np.ceil, "ceil"),
                              (np.trunc, "trunc")])


def _pick(name, pick_a):
    def op(a, b):
        a, b = operands(a, b)
        A, B = a._a, b._a
        wa = np.where(pick_a(A, B), 1.0, np.where(A == B, 0.5, 0.0)).astype(A.dtype)
        return record(np.maximum(A, B) if name == "maximum" else np.minimum(A, B), (a, b),
                      lambda g: (unbroadcast(g * wa, a.shape),
                                 unbroadcast(g * (1 - wa), b.shape)), name, (a, b))
    op.__name__ = name
    op.__doc__ = f"Elementwise {name[:3]}; at ties each side gets half the gradient (PyTorch)."
    return op


maximum = _pick("maximum", np.greater)
minimum = _pick("minimum", np.less)


def where(condition, a, b):
    """Elementwise ``a`` where ``condition`` holds, else ``b`` (tensors or numbers)."""
    c = np.asarray(as_array(condition), dtype=bool)
    a, b = operands(a, b)
    return record(np.where(c, a._a, b._a), (a, b),
                  lambda g: (unbroadcast(np.where(c, g, 0), a.shape),
                             unbroadcast(np.where(c, 0, g), b.shape)), "where")


def clamp(a, min=None, max=None):  # noqa: A002 - PyTorch's names
    """a limited to [min, max]; the bounds may be numbers or tensors (gradient
    flows to whichever value is taken)."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    out = a
    if min is not None:
        out = _bound(out, min, np.less, "clamp_min")
    if max is not None:
        out = _bound(out, max, np.greater, "clamp_max")
    return out


def _bound(a, bound, outside, op):
    a, b = operands(a, bound)
    take_b = outside(a._a, b._a)
    return record(np.where(take_b, b._a, a._a), (a, b),
                  lambda g: (unbroadcast(np.where(take_b, 0, g), a.shape),
                             unbroadcast(np.where(take_b, g, 0), b.shape)), op)


def _compare(ufunc, name):
    def op(a, b):
        a, b = operands(a, b)
        return Tensor(ufunc(a._a, b._a))
    op.__name__ = name
    op.__doc__ = f"Elementwise {ufunc.__name__} (a bool tensor, no gradient)."
    return op


eq, ne = _compare(np.equal, "eq"), _compare(np.not_equal, "ne")
gt, ge = _compare(np.greater, "gt"), _compare(np.greater_equal, "ge")
lt, le = _compare(np.less, "lt"), _compare(np.less_equal, "le")


def isnan(a):
    """Where a is nan (a bool tensor)."""
    return Tensor(np.isnan(a._a))


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise |a - b| <= atol + rtol |b| (a bool tensor)."""
    a, b = operands(a, b)
    return Tensor(np.isclose(a._a, b._a, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when isclose holds everywhere."""
    return bool(isclose(a, b, rtol, atol, equal_nan)._a.all())


def _bitwise(ufunc, name):
    def op(a, b):
        a, b = operands(a, b)
        if a.dtype.kind not in "biu":
            raise TypeError(f"{name} needs bool or integer tensors, got {a.dtype}")
        return Tensor(ufunc(a._a, b._a))
    op.__name__ = name
    return op


bitwise_and = _bitwise(np.bitwise_and, "bitwise_and")
bitwise_or = _bitwise(np.bitwise_or, "bitwise_or")
bitwise_xor = _bitwise(np.bitwise_xor, "bitwise_xor")


def bitwise_not(a):
    """~a: logical not of a bool tensor, bitwise not of an integer one."""
    if a.dtype.kind not in "biu":
        raise TypeError(f"~ needs a bool or integer tensor, got {a.dtype}")
    return Tensor(np.invert(a._a))


def to(a, *args, **kwargs):
    """PyTorch's ``Tensor.to``: ``to(dtype)``, ``to(device)``, ``to(device, dtype)``,
    ``to(other)`` (other's dtype) and the keywords device, dtype and copy; the
    device must be the CPU. Casts are differentiable between float types; returns
    a itself when nothing changes, unless ``copy=True``."""
    if args and isinstance(args[0], Tensor):
        if len(args) > 1:
            raise TypeError("to(other) takes no further positional arguments")
        args = (args[0].dtype,)
    dtype, copy = D.to_args(args, kwargs)
    if dtype is None or dtype == a.dtype:
        return clone(a) if copy else a
    src = a.dtype
    return record(a._a.astype(dtype), (a,), lambda g: (g.astype(src),), "cast")


def cuda(a, *args, **kwargs):
    """PyTorch's ``Tensor.cuda()``: a RuntimeError, minigrad runs on the CPU only."""
    D.check("cuda")


def type_(a, dtype=None):
    """Without an argument, the type's name (``minigrad.FloatTensor``); else ``to(dtype)``."""
    if dtype is None:
        names = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                 "uint8": "Byte", "bool": "Bool", "float16": "Half", "int16": "Short",
                 "int8": "Char"}
        return f"minigrad.{names.get(a.dtype.name, a.dtype.name)}Tensor"
    return to(a, np.dtype(dtype))


def clone(a):
    """A copy with its own storage; gradients flow back to a."""
    return record(a._a.copy(), (a,), lambda g: (g,), "clone")


METHODS = {
    "__add__": add, "__radd__": lambda a, b: add(b, a), "add": add,
    "__sub__": sub, "__rsub__": lambda a, b: sub(b, a), "sub": sub,
    "__mul__": mul, "__rmul__": lambda a, b: mul(b, a), "mul": mul,
    "__truediv__": div, "__rtruediv__": lambda a, b: div(b, a), "div": div,
    "__neg__": neg, "neg": neg, "__pow__": pow, "__rpow__": rpow, "pow": pow,
    "exp": exp, "log": log, "sqrt": sqrt, "rsqrt": rsqrt, "abs": abs, "__abs__": abs,
    "sign": sign, "round": round, "floor": floor, "ceil": ceil, "trunc": trunc,
    "maximum": maximum, "minimum": minimum, "clamp": clamp, "clip": clamp,
    "__eq__": eq, "__ne__": ne, "__gt__": gt, "__ge__": ge, "__lt__": lt, "__le__": le,
    "eq": eq, "ne": ne, "gt": gt, "ge": ge, "lt": lt, "le": le,
    "isnan": isnan, "isclose": isclose, "allclose": allclose,
    "to": to, "type": type_, "clone": clone, "cpu": lambda a: a, "cuda": cuda,
    "__and__": bitwise_and, "__rand__": bitwise_and, "__or__": bitwise_or,
    "__ror__": bitwise_or, "__xor__": bitwise_xor, "__rxor__": bitwise_xor,
    "__invert__": bitwise_not, "logical_not": lambda a: Tensor(~a._a.astype(bool)),
    "float": lambda a: to(a, np.float32), "double": lambda a: to(a, np.float64),
    "long": lambda a: to(a, np.int64), "int": lambda a: to(a, np.int32),
    "bool": lambda a: to(a, np.bool_), "byte": lambda a: to(a, np.uint8),
}
FUNCTIONS = [add, sub, mul, div, neg, pow, exp, log, sqrt, rsqrt, abs, sign, round, floor,
             ceil, trunc, maximum, minimum,
             where, clamp, eq, ne, gt, ge, lt, le, isnan, isclose, allclose, clone, bitwise_and,
             bitwise_or, bitwise_xor, bitwise_not]
__all__ = [fn.__name__ for fn in FUNCTIONS]
