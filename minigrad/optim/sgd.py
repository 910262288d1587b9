"""SGD with PyTorch's rule; the common case runs on the sgd_step kernel."""
from collections.abc import Iterable
from typing import Any

import numpy as np

from minigrad import kernels as K
from minigrad.optim.optimizer import Optimizer
from minigrad.tensor import Tensor

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``::

        g = grad + weight_decay * p
        b = g (first step), else momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b
        p -= lr * g

    With ``dampening=0`` and no Nesterov the update is one C kernel call."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        for name, v in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if not v >= 0:
                raise ValueError(f"SGD: {name} must be >= 0, got {v}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, group: dict[str, Any], p: Tensor, w: np.ndarray,
                g: np.ndarray) -> None:
        lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {}
        if mom == 0:
            K.sgd_step(w, g, lr, weight_decay=wd)
            return
        buf = state.get("momentum_buffer")
        damp, nesterov = group["dampening"], group["nesterov"]
        if damp == 0 and not nesterov:
            if buf is None:  # zeros: the first step gives b = g, as PyTorch's clone
                buf = state["momentum_buffer"] = np.zeros_like(w)
            K.sgd_step(w, g, lr, momentum=mom, velocity=buf, weight_decay=wd)
            return
        d = g + wd * w if wd else g.copy()
        if buf is None:
            buf = state["momentum_buffer"] = d.copy()
        else:
            buf *= mom
            buf += (1 - damp) * d
        w -= lr * (d + mom * buf if nesterov else buf)
