"""Differentiable operations that run on minigrad's C kernels: matmul, linear
layers (with fused ReLU), activations and losses."""
import numpy as np

from minigrad import kernels as K
from minigrad.tensor import Tensor, _make, _pair, _unbroadcast


def _contiguous(g, like):
    """g as a C-contiguous array of like's dtype (a copy only when it is not)."""
    return np.asarray(g, dtype=like.dtype, order="C")


def _c(a):
    """a C-contiguous (a copy only when it is not; unlike np.ascontiguousarray,
    a 0-d array stays 0-d)."""
    return np.asarray(a, order="C")


def matmul(a, b):
    """a @ b; 2-D float operands of one dtype run on the GEMM kernel."""
    a, b = _pair(a, b)
    A, B = a.data, b.data
    if A.ndim == 2 and B.ndim == 2 and A.dtype == B.dtype and A.dtype.kind == "f":
        def backward(g):
            g = _contiguous(g, A)
            return (K.matmul(g, B, trans_b=True) if a.requires_grad else None,
                    K.matmul(A, g, trans_a=True) if b.requires_grad else None)
        return _make(K.matmul(A, B), (a, b), backward, "matmul")
    # other ranks (1-D, batched): NumPy's matmul and its gradients
    def backward(g):
        a2 = A[None, :] if A.ndim == 1 else A
        b2 = B[:, None] if B.ndim == 1 else B
        g2 = np.expand_dims(g, -1) if B.ndim == 1 else g
        g2 = np.expand_dims(g2, -2) if A.ndim == 1 else g2
        ga = g2 @ np.swapaxes(b2, -1, -2)
        gb = np.swapaxes(a2, -1, -2) @ g2
        return (_unbroadcast(ga, a2.shape).reshape(A.shape),
                _unbroadcast(gb, b2.shape).reshape(B.shape))
    return _make(A @ B, (a, b), backward, "matmul")


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def linear(x, weight, bias=None):
    """x @ weight.T + bias, with weight of shape (out, in) as in PyTorch."""
    x = _tensor(x)
    parents = (x, weight) if bias is None else (x, weight, bias)
    y = K.linear(x.data, weight.data, None if bias is None else bias.data, trans_w=True)

    def backward(g):
        g = _contiguous(g, y)
        return _linear_grads(g, x, weight, bias, K.bias_grad(g) if bias is not None else None)
    return _make(y, parents, backward, "linear")


def _linear_grads(dz, x, weight, bias, db):
    """Gradients of x @ weight.T + bias given dz = d(loss)/d(output); the
    input's gradient is computed only when x needs one (not for a batch of data)."""
    dx = K.matmul(dz, weight.data) if x.requires_grad else None
    dw = K.matmul(dz, x.data, trans_a=True) if weight.requires_grad else None
    return (dx, dw) if bias is None else (dx, dw, db)


def linear_relu(x, weight, bias=None):
    """relu(linear(x, weight, bias)) as one fused kernel each way: bias and
    ReLU are applied in the GEMM's store, and the backward pass computes the
    ReLU mask and the bias gradient in one pass."""
    x = _tensor(x)
    parents = (x, weight) if bias is None else (x, weight, bias)
    y = K.linear(x.data, weight.data, None if bias is None else bias.data, relu=True,
                 trans_w=True)

    def backward(g):
        g = _contiguous(g, y)
        if bias is None:
            return _linear_grads(K.relu_backward(g, y), x, weight, None, None)
        dz, db = K.relu_backward_bias_grad(g, y)
        return _linear_grads(dz, x, weight, bias, db)
    return _make(y, parents, backward, "linear_relu")


def relu(x):
    """max(x, 0)."""
    X = _c(x.data)
    y = K.relu(X)
    return _make(y, (x,), lambda g: (K.relu_backward(_contiguous(g, y), y),), "relu")


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    y = K.sigmoid(_c(x.data))
    return _make(y, (x,), lambda g: (K.sigmoid_backward(_contiguous(g, y), y),), "sigmoid")


def _scalar_loss(loss, grad, logits, op):
    value = np.asarray(loss, dtype=logits.dtype)
    return _make(value, (logits,), lambda g: (grad * g if g != 1 else grad,), op)


def _targets_like(targets, logits):
    t = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    if t.size != logits.data.size:
        raise ValueError(f"targets have shape {t.shape} but predictions have shape "
                         f"{logits.shape}")
    return np.asarray(t.reshape(logits.shape), dtype=logits.dtype, order="C")


def mnist_loss(predictions, targets):
    """The chapter's loss: mean(where(targets == 1, 1 - sigmoid(p), sigmoid(p)))."""
    p = _tensor(predictions)
    loss, grad = K.mnist_loss(_c(p.data), _targets_like(targets, p))
    return _scalar_loss(loss, grad, p, "mnist_loss")


def binary_cross_entropy_with_logits(logits, targets):
    """Mean binary cross-entropy of sigmoid(logits) against 0/1 targets."""
    z = _tensor(logits)
    loss, grad = K.bce_with_logits(_c(z.data), _targets_like(targets, z))
    return _scalar_loss(loss, grad, z, "bce_with_logits")


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy of (n, c) logits against integer labels."""
    z = _tensor(logits)
    y = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    loss, grad = K.softmax_cross_entropy(_c(z.data), y.reshape(-1))
    return _scalar_loss(loss, grad, z, "cross_entropy")


def softmax(x, axis=-1):
    """Softmax along ``axis`` (differentiable, NumPy)."""
    x = _tensor(x)
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return _make(s, (x,), lambda g: (s * (g - (g * s).sum(axis=axis, keepdims=True)),),
                 "softmax")
