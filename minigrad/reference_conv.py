"""NumPy reference of the convolution, pooling and batch-norm kernels (NCHW),
re-exported by minigrad.reference.

Written for clarity, with PyTorch's semantics (groups=1, ceil_mode=False).
Same signatures and results as the kernels up to rounding; no input checking
beyond what NumPy does.
"""
import numpy as np


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(e) for e in v)


def out_size(size, kernel, stride, padding, dilation=1):
    """Output length of a sliding window along one axis (floor mode)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _geometry(hw, kernel_size, stride, padding, dilation):
    kh, kw = _pair(kernel_size)
    s, p, d = _pair(stride), _pair(padding), _pair(dilation)
    oh = out_size(hw[0], kh, s[0], p[0], d[0])
    ow = out_size(hw[1], kw, s[1], p[1], d[1])
    return kh, kw, s, p, d, oh, ow


def _windows(xp, kh, kw, oh, ow, s, d):
    """(N, C, kh, kw, oh, ow): element (i, j) of every window of the padded xp."""
    n, c = xp.shape[:2]
    cols = np.empty((n, c, kh, kw, oh, ow), xp.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * d[0]:i * d[0] + s[0] * (oh - 1) + 1:s[0],
                                  j * d[1]:j * d[1] + s[1] * (ow - 1) + 1:s[1]]
    return cols


def _fold(cols, shape, s, p, d):
    """Adjoint of _windows followed by padding: adds every window element back
    into an array of the unpadded `shape`."""
    n, c, kh, kw, oh, ow = cols.shape
    h, w = shape[2:]
    xp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i * d[0]:i * d[0] + s[0] * (oh - 1) + 1:s[0],
               j * d[1]:j * d[1] + s[1] * (ow - 1) + 1:s[1]] += cols[:, :, i, j]
    return xp[:, :, p[0]:p[0] + h, p[1]:p[1] + w]


def _pad(x, p, value=0.0):
    return np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=value)


def _store(result, out):
    if out is None:
        return result
    out[...] = result
    return out


# ---------------------------------------------------------------- conv2d

def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, relu=False, out=None):
    """y[n, o] = sum over c, i, j of w[o, c, i, j] * x_padded[n, c, window] + b[o]
    (then max(y, 0) if relu)."""
    kh, kw, s, p, d, oh, ow = _geometry(x.shape[2:], w.shape[2:], stride, padding, dilation)
    cols = _windows(_pad(x, p), kh, kw, oh, ow, s, d)
    y = np.einsum("ncijuv,ocij->nouv", cols, w)
    if b is not None:
        y = y + b[:, None, None]
    if relu:
        y = np.maximum(y, 0)
    return _store(y.astype(x.dtype), out)


def conv2d_backward_input(grad_out, w, input_shape, *, stride=1, padding=0, dilation=1,
                          out=None):
    """Gradient of conv2d with respect to x (of shape input_shape)."""
    kh, kw, s, p, d, oh, ow = _geometry(input_shape[2:], w.shape[2:], stride, padding,
                                        dilation)
    cols = np.einsum("nouv,ocij->ncijuv", grad_out, w)
    return _store(_fold(cols, input_shape, s, p, d).astype(grad_out.dtype), out)


def conv2d_backward_weight(x, grad_out, kernel_size, *, stride=1, padding=0, dilation=1,
                           out=None, accumulate=False):
    """Gradient of conv2d with respect to w (added into out when accumulate)."""
    kh, kw, s, p, d, oh, ow = _geometry(x.shape[2:], kernel_size, stride, padding, dilation)
    cols = _windows(_pad(x, p), kh, kw, oh, ow, s, d)
    dw = np.einsum("nouv,ncijuv->ocij", grad_out, cols).astype(x.dtype)
    if accumulate:
        out += dw
        return out
    return _store(dw, out)


def conv2d_backward_bias(grad_out, out=None):
    """Gradient of conv2d with respect to b: grad_out summed over N, H, W."""
    return _store(grad_out.sum(axis=(0, 2, 3)), out)


# ---------------------------------------------------------------- pooling

def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1):
    """(y, indices): each window's maximum and its flat index h * W + w in x's
    plane. Padding never wins; among equal maxima the first wins; a NaN wins
    over any number (the last NaN, as PyTorch scans). A window of padding only
    (possible with dilation) gives -inf and index -1."""
    stride = kernel_size if stride is None else stride
    kh, kw, s, p, d, oh, ow = _geometry(x.shape[2:], kernel_size, stride, padding, dilation)
    n, c, h, w = x.shape
    vals = _windows(_pad(x, p, -np.inf), kh, kw, oh, ow, s, d).reshape(n, c, kh * kw, oh, ow)
    flat = np.arange(h * w).reshape(1, 1, h, w)
    idx = _windows(_pad(flat, p, -1), kh, kw, oh, ow, s, d).reshape(1, 1, kh * kw, oh, ow)
    valid = idx >= 0
    best = np.where(valid, vals, -np.inf).max(axis=2, keepdims=True)
    first_best = np.argmax(valid & (vals == best), axis=2)
    nan = np.isnan(vals)
    last_nan = kh * kw - 1 - np.argmax(nan[:, :, ::-1], axis=2)
    pos = np.where(nan.any(axis=2), last_nan, first_best)
    indices = np.take_along_axis(np.broadcast_to(idx, vals.shape), pos[:, :, None], 2)[:, :, 0]
    y = np.take_along_axis(vals, pos[:, :, None], 2)[:, :, 0]
    return y, indices.astype(np.int64)


def max_pool2d_backward(grad_out, indices, input_shape, out=None):
    """Adds each grad_out element to the input element its max came from
    (nowhere for index -1)."""
    n, c, h, w = input_shape
    dx = np.zeros((n * c, h * w), grad_out.dtype)
    idx, g = indices.reshape(n * c, -1), grad_out.reshape(n * c, -1)
    for plane in range(n * c):
        hit = idx[plane] >= 0
        np.add.at(dx[plane], idx[plane][hit], g[plane][hit])
    return _store(dx.reshape(input_shape), out)


def _avg_divisor(hw, kh, kw, s, p, oh, ow, count_include_pad):
    ones = np.ones((1, 1) + tuple(hw))
    if count_include_pad:  # windows never pass the padding when ceil_mode=False
        return np.full((oh, ow), kh * kw, np.float64)
    return _windows(_pad(ones, p), kh, kw, oh, ow, s, (1, 1)).sum(axis=(2, 3))[0, 0]


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True, out=None):
    """Mean over each window (zero padding counted when count_include_pad)."""
    stride = kernel_size if stride is None else stride
    kh, kw, s, p, d, oh, ow = _geometry(x.shape[2:], kernel_size, stride, padding, 1)
    total = _windows(_pad(x, p), kh, kw, oh, ow, s, d).sum(axis=(2, 3))
    div = _avg_divisor(x.shape[2:], kh, kw, s, p, oh, ow, count_include_pad)
    return _store((total / div).astype(x.dtype), out)


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                        count_include_pad=True, out=None):
    """Spreads each grad_out element evenly over its window."""
    stride = kernel_size if stride is None else stride
    kh, kw, s, p, d, oh, ow = _geometry(input_shape[2:], kernel_size, stride, padding, 1)
    div = _avg_divisor(input_shape[2:], kh, kw, s, p, oh, ow, count_include_pad)
    cols = np.broadcast_to((grad_out / div)[:, :, None, None],
                           grad_out.shape[:2] + (kh, kw) + grad_out.shape[2:])
    return _store(_fold(cols, input_shape, s, p, d).astype(grad_out.dtype), out)


def _adaptive_ranges(size, out):
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_avg_pool2d(x, output_size, out=None):
    """Mean over PyTorch's adaptive windows: [floor(i*H/OH), ceil((i+1)*H/OH))."""
    oh, ow = _pair(output_size)
    y = np.empty(x.shape[:2] + (oh, ow), x.dtype)
    for i, (h0, h1) in enumerate(_adaptive_ranges(x.shape[2], oh)):
        for j, (w0, w1) in enumerate(_adaptive_ranges(x.shape[3], ow)):
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return _store(y, out)


def adaptive_avg_pool2d_backward(grad_out, input_shape, out=None):
    """Spreads each grad_out element evenly over its adaptive window."""
    oh, ow = grad_out.shape[2:]
    dx = np.zeros(input_shape, grad_out.dtype)
    for i, (h0, h1) in enumerate(_adaptive_ranges(input_shape[2], oh)):
        for j, (w0, w1) in enumerate(_adaptive_ranges(input_shape[3], ow)):
            area = (h1 - h0) * (w1 - w0)
            dx[:, :, h0:h1, w0:w1] += (grad_out[:, :, i, j] / area)[:, :, None, None]
    return _store(dx, out)


# ---------------------------------------------------------------- batch norm

def _axes(x):
    """The axes a channel's statistics run over: all but 1 (N, C[, H, W])."""
    return (0,) + tuple(range(2, x.ndim))


def _channel(v, x):
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def batch_norm(x, weight=None, bias=None, running_mean=None, running_var=None, *,
               training=True, momentum=0.1, eps=1e-5, relu=False):
    """(y, save_mean, save_invstd), y = (x - mean) * invstd * weight + bias per channel.

    x is (N, C, H, W) or (N, C). Training: batch statistics (biased variance),
    and running_mean/running_var (if given) updated in place with momentum, the
    variance unbiased. Eval: the running statistics. relu=True applies max(y, 0)."""
    if training:
        mean = x.mean(axis=_axes(x), dtype=np.float64)
        var = ((x - _channel(mean, x)) ** 2).mean(axis=_axes(x))
        m = int(np.prod([x.shape[a] for a in _axes(x)]))
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * m / (m - 1)
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    invstd = 1 / np.sqrt(var + eps)
    y = (x - _channel(mean, x)) * _channel(invstd, x)
    if weight is not None:
        y = y * _channel(weight, x)
    if bias is not None:
        y = y + _channel(bias, x)
    if relu:
        y = np.maximum(y, 0)
    return y.astype(x.dtype), mean.astype(x.dtype), invstd.astype(x.dtype)


def batch_norm_backward(grad_out, x, weight, save_mean, save_invstd, *, training=True,
                        y=None):
    """(grad_x, grad_weight, grad_bias) of batch_norm. save_mean/save_invstd are
    batch_norm's outputs; y (its output) masks grad_out when it fused a ReLU."""
    g = grad_out.astype(np.float64)
    if y is not None:
        g = np.where(y > 0, g, 0)
    mean, invstd = _channel(save_mean.astype(np.float64), x), _channel(save_invstd, x)
    xhat = (x - mean) * invstd
    gamma = _channel(np.ones(x.shape[1]) if weight is None else weight, x)
    grad_bias = g.sum(axis=_axes(x))
    grad_weight = (g * xhat).sum(axis=_axes(x))
    if training:
        m = int(np.prod([x.shape[a] for a in _axes(x)]))
        dx = gamma * invstd * (
            g - _channel(grad_bias, x) / m - xhat * _channel(grad_weight, x) / m)
    else:
        dx = g * gamma * invstd
    dt = grad_out.dtype
    return dx.astype(dt), grad_weight.astype(dt), grad_bias.astype(dt)


__all__ = ["adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "avg_pool2d",
           "avg_pool2d_backward", "batch_norm", "batch_norm_backward", "conv2d",
           "conv2d_backward_bias", "conv2d_backward_input", "conv2d_backward_weight",
           "max_pool2d", "max_pool2d_backward", "out_size"]
