"""Convolution, pooling and batch norm over NCHW tensors on the C kernels,
forward and backward side by side (PyTorch's functional signatures)."""
import numpy as np

from minigrad import kernels as K
from minigrad.ops.activations import contiguous
from minigrad.tensor import as_tensor, record


def _nchw(x, fn, name="input"):
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: {name} must be a floating-point tensor, got {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{fn}: {name} must be 4-D (N, C, H, W), got shape {x.shape}")
    return x


def _array(t):
    return None if t is None else contiguous(t._a)


def _only(fn, what, value, default):
    """ValueError unless an option PyTorch has but minigrad lacks keeps its default."""
    if value != default:
        raise ValueError(f"{fn}: {what}={value!r} is not supported (only {default!r})")


def _pair(v):
    return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)


def _same_padding(weight, dilation, stride, fn):
    """padding='same' as symmetric padding (odd effective kernels, stride 1)."""
    if _pair(stride) != (1, 1):
        raise ValueError(f"{fn}: padding='same' needs stride 1, got stride={stride!r}")
    pads = []
    for k, d in zip(weight.shape[2:], _pair(dilation), strict=True):
        span = d * (k - 1)
        if span % 2:
            raise ValueError(f"{fn}: padding='same' needs an odd effective kernel size, got "
                             f"kernel {tuple(weight.shape[2:])} with dilation {dilation!r}")
        pads.append(span // 2)
    return tuple(pads)


def _conv2d(fn, input, weight, bias, stride, padding, dilation, groups, relu):  # noqa: A002
    _only(fn, "groups", groups, 1)
    x, w = _nchw(input, fn), _nchw(weight, fn, "weight")
    if padding == "valid":
        padding = 0
    elif padding == "same":
        padding = _same_padding(w, dilation, stride, fn)
    geo = dict(stride=stride, padding=padding, dilation=dilation)
    X, W = contiguous(x._a), contiguous(w._a)
    b = None if bias is None else as_tensor(bias)
    y = K.conv2d(X, W, _array(b), relu=relu, **geo)
    parents = (x, w) if b is None else (x, w, b)

    def backward(g):
        g = contiguous(g, y.dtype)
        if relu:
            g = K.relu_backward(g, y)
        dx = K.conv2d_backward_input(g, W, X.shape, **geo) if x.requires_grad else None
        dw = K.conv2d_backward_weight(X, g, W.shape[2:], **geo) if w.requires_grad else None
        if b is None:
            return dx, dw
        return dx, dw, K.conv2d_backward_bias(g) if b.requires_grad else None
    return record(y, parents, backward, fn, (x, w), saves_output=relu)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-D convolution (cross-correlation) of input (N, C, H, W) with weight
    (O, C, kh, kw), plus bias (O,); padding an int, a pair, 'valid' or 'same'."""
    return _conv2d("conv2d", input, weight, bias, stride, padding, dilation, groups, False)


def conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """relu(conv2d(...)): the ReLU applied as the GEMM stores the output, and
    its mask applied to the gradient in one pass."""
    return _conv2d("conv2d_relu", input, weight, bias, stride, padding, dilation, groups, True)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    """Max over each window; with return_indices also each maximum's flat
    index in its input plane (int64, as PyTorch)."""
    fn = "max_pool2d"
    _only(fn, "ceil_mode", ceil_mode, False)
    x = _nchw(input, fn)
    X = contiguous(x._a)
    y, idx = K.max_pool2d(X, kernel_size, stride, padding, dilation)
    out = record(y, (x,), lambda g: (K.max_pool2d_backward(contiguous(g, y.dtype), idx,
                                                           X.shape),), fn)
    return (out, as_tensor(idx)) if return_indices else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True, divisor_override=None):
    """Mean over each window (zero padding counted when count_include_pad)."""
    fn = "avg_pool2d"
    _only(fn, "ceil_mode", ceil_mode, False)
    _only(fn, "divisor_override", divisor_override, None)
    x = _nchw(input, fn)
    X = contiguous(x._a)
    args = (kernel_size, stride, padding, count_include_pad)
    y = K.avg_pool2d(X, *args)
    return record(y, (x,), lambda g: (K.avg_pool2d_backward(contiguous(g, y.dtype), X.shape,
                                                            *args),), fn)


def adaptive_avg_pool2d(input, output_size):  # noqa: A002
    """Mean pooling to output_size (an int or a pair; None keeps that input size)."""
    fn = "adaptive_avg_pool2d"
    x = _nchw(input, fn)
    X = contiguous(x._a)
    size = _pair(output_size)
    size = tuple(X.shape[2 + i] if s is None else s for i, s in enumerate(size))
    y = K.adaptive_avg_pool2d(X, size)
    return record(y, (x,), lambda g: (K.adaptive_avg_pool2d_backward(contiguous(g, y.dtype),
                                                                     X.shape),), fn)


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,  # noqa: A002
                relu):
    fn = "batch_norm_relu" if relu else "batch_norm"
    x = as_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be a floating-point tensor, got {x.dtype}")
    if x.ndim not in (2, 4):
        raise ValueError(f"{fn}: input must be 4-D (N, C, H, W) or 2-D (N, C), got shape "
                         f"{x.shape}")
    X = contiguous(x._a)
    w = None if weight is None else as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    rm = None if running_mean is None else as_tensor(running_mean)._a
    rv = None if running_var is None else as_tensor(running_var)._a
    y, mean, invstd = K.batch_norm(X, _array(w), _array(b), rm, rv,
                                   training=training, momentum=momentum, eps=eps, relu=relu)
    parents = (x,) + tuple(t for t in (w, b) if t is not None)

    def backward(g):
        dx, dw, db = K.batch_norm_backward(contiguous(g, y.dtype), X, _array(w), mean,
                                           invstd, training=training, y=y if relu else None)
        return (dx,) + ((dw,) if w is not None else ()) + ((db,) if b is not None else ())
    return record(y, parents, backward, fn, tuple(t for t in (x, w) if t is not None))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,  # noqa: A002
               momentum=0.1, eps=1e-5):
    """Batch normalization per channel (PyTorch's F.batch_norm): batch
    statistics in training, updating running_mean/running_var in place (when
    given); the running statistics otherwise."""
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum,
                       eps, False)


def batch_norm_relu(input, running_mean, running_var, weight=None, bias=None,  # noqa: A002
                    training=False, momentum=0.1, eps=1e-5):
    """relu(batch_norm(...)) in one kernel each way."""
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum,
                       eps, True)


FUNCTIONS = [conv2d, conv2d_relu, max_pool2d, avg_pool2d, adaptive_avg_pool2d, batch_norm,
             batch_norm_relu]
__all__ = [fn.__name__ for fn in FUNCTIONS]
