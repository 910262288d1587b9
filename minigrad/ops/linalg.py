"""matmul and the linear layer (with fused ReLU) on the GEMM kernel."""
import numpy as np

import minigrad.ops.shape as S
from minigrad import kernels as K
from minigrad.ops.activations import contiguous
from minigrad.ops.promote import operands, unbroadcast
from minigrad.tensor import Tensor, as_tensor, is_grad_enabled, record


def matmul(a, b):
    """a @ b; 2-D float operands of one dtype run on the GEMM kernel."""
    a, b = operands(a, b)
    A, B = a._a, b._a
    if A.ndim == 2 and B.ndim == 2 and A.dtype.kind == "f":
        def backward(g):
            g = contiguous(g, A.dtype)
            return (K.matmul(g, B, trans_b=True) if a.requires_grad else None,
                    K.matmul(A, g, trans_a=True) if b.requires_grad else None)
        return record(K.matmul(A, B), (a, b), backward, "matmul", (a, b))
    if A.ndim == 0 or B.ndim == 0:
        raise ValueError("matmul: both operands need at least one dim")

    def backward(g):  # other ranks (1-D, batched): NumPy's matmul and its gradients
        a2 = A[None, :] if A.ndim == 1 else A
        b2 = B[:, None] if B.ndim == 1 else B
        g2 = np.expand_dims(g, -1) if B.ndim == 1 else g
        g2 = np.expand_dims(g2, -2) if A.ndim == 1 else g2
        ga = g2 @ np.swapaxes(b2, -1, -2)
        gb = np.swapaxes(a2, -1, -2) @ g2
        return (unbroadcast(ga, a2.shape).reshape(A.shape),
                unbroadcast(gb, b2.shape).reshape(B.shape))
    return record(A @ B, (a, b), backward, "matmul", (a, b))


def _linear_grads(dz, x, weight, bias, db):
    """Gradients of x @ weight.T + bias given dz = d(loss)/d(output); the
    input's gradient is computed only when x needs one (not for a batch of data)."""
    dx = K.matmul(dz, weight._a) if x.requires_grad else None
    dw = K.matmul(dz, x._a, trans_a=True) if weight.requires_grad else None
    return (dx, dw) if bias is None else (dx, dw, db)


def _on_rows(fn, x, weight, bias):
    """fn (a 2-D linear) on an input of shape (in,) or (..., in), as PyTorch's
    linear takes them: on its rows, reshaped back to (out,) or (..., out)."""
    if x.ndim == 0:
        raise RuntimeError("linear: the input must have at least one dimension (got a 0-d tensor)")
    y = fn(S.reshape(x, (-1, x.shape[-1])), weight, bias)
    return S.reshape(y, (*x.shape[:-1], y.shape[-1]))


def linear(x, weight, bias=None):
    """x @ weight.T + bias, with weight of shape (out, in) as in PyTorch (GEMM
    kernel); x of shape (in,), (batch, in) or (..., in)."""
    if type(x) is Tensor and x.ndim == 2 and not is_grad_enabled():  # no graph to record
        return Tensor(K.linear(x._a, weight._a, None if bias is None else bias._a, trans_w=True))
    x = as_tensor(x)
    if x.ndim != 2:
        return _on_rows(linear, x, weight, bias)
    parents = (x, weight) if bias is None else (x, weight, bias)
    y = K.linear(x._a, weight._a, None if bias is None else bias._a, trans_w=True)

    def backward(g):
        g = contiguous(g, y.dtype)
        return _linear_grads(g, x, weight, bias, K.bias_grad(g) if bias is not None else None)
    return record(y, parents, backward, "linear", (x, weight))


def linear_relu(x, weight, bias=None):
    """relu(linear(x, weight, bias)) as one fused kernel each way: bias and
    ReLU are applied in the GEMM's store, and the backward pass computes the
    ReLU mask and the bias gradient in one pass. x as in ``linear``."""
    if type(x) is Tensor and x.ndim == 2 and not is_grad_enabled():  # no graph to record
        return Tensor(K.linear(x._a, weight._a, None if bias is None else bias._a, relu=True,
                               trans_w=True))
    x = as_tensor(x)
    if x.ndim != 2:
        return _on_rows(linear_relu, x, weight, bias)
    parents = (x, weight) if bias is None else (x, weight, bias)
    y = K.linear(x._a, weight._a, None if bias is None else bias._a, relu=True, trans_w=True)

    def backward(g):
        g = contiguous(g, y.dtype)
        if bias is None:
            return _linear_grads(K.relu_backward(g, y), x, weight, None, None)
        dz, db = K.relu_backward_bias_grad(g, y)
        return _linear_grads(dz, x, weight, bias, db)
    return record(y, parents, backward, "linear_relu", (x, weight), saves_output=True)


METHODS = {"__matmul__": matmul, "__rmatmul__": lambda a, b: matmul(b, a), "matmul": matmul}
FUNCTIONS = [matmul]
__all__ = [fn.__name__ for fn in FUNCTIONS]
