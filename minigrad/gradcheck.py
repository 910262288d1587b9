"""Compare autograd gradients with central finite differences."""
from collections.abc import Callable, Sequence

import numpy as np

from minigrad.tensor import Tensor

__all__ = ["GradcheckError", "gradcheck"]


class GradcheckError(AssertionError):
    """Autograd and finite differences disagree."""


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True,
              seed: int = 0) -> bool:
    """Check the gradients of ``fn(*inputs)`` for every input that requires grad.

    Inputs should be float64. A non-scalar output is reduced to the scalar
    ``sum(out * r)`` with fixed random weights r, which checks the whole
    vector-Jacobian product. Returns True, or raises GradcheckError (False when
    ``raise_exception=False``) naming the worst mismatch."""
    inputs = list(inputs)
    weights: dict[str, np.ndarray] = {}

    def scalar(out):
        if out.numel() == 1:
            return out.sum()
        if "r" not in weights:
            weights["r"] = np.random.default_rng(seed).standard_normal(out.shape)
        return (out * Tensor(weights["r"].astype(out.dtype))).sum()

    for x in inputs:
        if isinstance(x, Tensor):
            x.data = np.ascontiguousarray(x.numpy())  # perturbed in place below
            x.grad = None
    scalar(fn(*inputs)).backward()
    worst: tuple[float, str | None] = (0.0, None)
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        analytic = np.zeros_like(x.numpy()) if x.grad is None else x.grad.numpy()
        flat = x.numpy().reshape(-1)
        numeric = np.zeros(flat.size)
        for j in range(flat.size):
            keep = flat[j]
            flat[j] = keep + eps
            up = scalar(fn(*inputs)).item()
            flat[j] = keep - eps
            down = scalar(fn(*inputs)).item()
            flat[j] = keep
            numeric[j] = (up - down) / (2 * eps)
        numeric = numeric.reshape(x.shape)
        excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if excess.size and excess.max() > worst[0]:
            k = np.unravel_index(np.argmax(excess), x.shape)
            worst = (excess.max(), f"input {i} at index {tuple(int(v) for v in k)}: autograd "
                     f"{analytic[k]:.6g}, finite differences {numeric[k]:.6g}")
    if worst[1] is None:
        return True
    if raise_exception:
        raise GradcheckError(f"gradcheck failed: {worst[1]}")
    return False
