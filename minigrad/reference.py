"""NumPy reference of every kernel in minigrad.kernels, written for clarity.

Same signatures and results as the kernels (up to rounding). The tests use it
as the oracle and the benchmarks as the baseline; it never imports the C
extension, and it does no input checking beyond what NumPy does. The NCHW
kernels' references (conv2d, pooling, batch norm) live in
minigrad.reference_conv and are re-exported here.
"""
import math

import numpy as np

from minigrad.reference_conv import *  # noqa: F403

_erfc = np.frompyfunc(math.erfc, 1, 1)


def _op(a, trans):
    return a.T if trans else a


def _store(result, out, accumulate=False):
    if out is None:
        return result
    if accumulate:
        out += result
    else:
        out[...] = result
    return out


def matmul(a, b, *, trans_a=False, trans_b=False, out=None, accumulate=False):
    return _store(_op(a, trans_a) @ _op(b, trans_b), out, accumulate)


def linear(x, w, b=None, *, relu=False, trans_w=False, out=None):
    y = x @ _op(w, trans_w)
    if b is not None:
        y = y + b
    if relu:
        y = np.maximum(y, 0)
    return _store(y, out)


def bias_grad(dy, out=None):
    return _store(dy.sum(axis=0), out)


def relu(x, out=None):
    return _store(np.maximum(x, 0), out)


def relu_backward(grad_out, x, out=None):
    return _store(np.where(x > 0, grad_out, 0).astype(grad_out.dtype), out)


def relu_backward_bias_grad(grad_out, y, out=None, bias_out=None):
    grad = relu_backward(grad_out, y)
    return _store(grad, out), _store(grad.sum(axis=0), bias_out)


def sigmoid(x, out=None):
    # exp(-|x|) never overflows; the two forms agree where both are defined.
    e = np.exp(-np.abs(x))
    return _store(np.where(x >= 0, 1 / (1 + e), e / (1 + e)), out)


def sigmoid_backward(grad_out, y, out=None):
    return _store(grad_out * y * (1 - y), out)


def tanh(x, out=None):
    return _store(np.tanh(x), out)


def tanh_backward(grad_out, y, out=None):
    return _store(grad_out * (1 - y * y), out)


def _phi_cdf(x):
    """P(N(0, 1) <= x) as 0.5 erfc(-x / sqrt 2), in float64, accurate in both tails."""
    return 0.5 * np.asarray(_erfc(-np.asarray(x, np.float64) / math.sqrt(2)), np.float64)


def gelu(x, out=None):
    # PyTorch's exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)), written with erfc
    with np.errstate(invalid="ignore"):
        return _store((x * _phi_cdf(x)).astype(x.dtype), out)


def gelu_backward(grad_out, x, out=None):
    xd = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        pdf = np.exp(-0.5 * xd * xd) / math.sqrt(2 * math.pi)
        return _store((grad_out * (_phi_cdf(x) + xd * pdf)).astype(grad_out.dtype), out)


def softmax(x, out=None):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return _store(e / e.sum(axis=-1, keepdims=True), out)


def log_softmax(x, out=None):
    shifted = x - x.max(axis=-1, keepdims=True)
    return _store(shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)), out)


def softmax_backward(grad_out, y, out=None):
    return _store(y * (grad_out - (grad_out * y).sum(axis=-1, keepdims=True)), out)


def log_softmax_backward(grad_out, y, out=None):
    return _store(grad_out - np.exp(y) * grad_out.sum(axis=-1, keepdims=True), out)


def mnist_loss(logits, targets, *, out=None):
    s = sigmoid(logits)
    loss = np.where(targets == 1, 1 - s, s).mean()
    grad = np.where(targets == 1, -1, 1) * s * (1 - s) / logits.size
    return float(loss), _store(grad.astype(logits.dtype), out)


def bce_with_logits(logits, targets, *, out=None):
    z, t = logits, targets
    loss = (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean()
    grad = (sigmoid(z) - t) / z.size
    return float(loss), _store(grad.astype(z.dtype), out)


def softmax_cross_entropy(logits, labels, *, out=None):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_probs[rows, labels].mean()
    grad = np.exp(log_probs)
    grad[rows, labels] -= 1
    return float(loss), _store((grad / n).astype(logits.dtype), out)


def linear_cross_entropy(x, w, b, labels, *, relu=False, input_grad=True):
    z = x @ w.T + (0 if b is None else b)
    loss, dz = softmax_cross_entropy(z, labels)
    dx = None
    if input_grad:
        dx = dz @ w
        if relu:
            dx = np.where(x > 0, dx, 0)
    return loss, z.astype(x.dtype), dz, dx


def sgd_step(param, grad, lr, *, momentum=0.0, velocity=None, weight_decay=0.0):
    g = grad + weight_decay * param
    if momentum != 0:
        velocity *= momentum
        velocity += g
        g = velocity
    param -= (lr * g).astype(param.dtype)
    return param


def adam_step(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, decoupled=False):
    if decoupled:
        param *= 1 - lr * weight_decay
        g = grad
    else:
        g = grad + weight_decay * param
    m += (1 - beta1) * (g - m)
    v *= beta2
    v += (1 - beta2) * g * g
    denom = np.sqrt(v) / math.sqrt(1 - beta2**step) + eps
    param -= (lr / (1 - beta1**step) * m / denom).astype(param.dtype)
    return param


def from_uint8(x, scale, dtype=np.float32):
    """A uint8 operand as matmul / linear read it with ``scale=``:
    ``x.astype(dtype) / scale``, a true division in ``dtype``."""
    dtype = np.dtype(dtype)
    return np.asarray(x).astype(dtype) / dtype.type(scale)
