"""SGD with PyTorch's rule; the common case runs on the sgd_step kernel."""
from collections.abc import Iterable
from typing import Any, cast

import numpy as np

from minigrad import kernels as K
from minigrad.optim.optimizer import Optimizer, storage
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

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group, p in self._params_with_grad():
            lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            w, g = storage(p), storage(cast(Tensor, p.grad))  # not None: _params_with_grad
            state = self.state.setdefault(p, {})
            if mom == 0:
                K.sgd_step(w, g, lr, weight_decay=wd)
                continue
            buf = state.get("momentum_buffer")
            if damp == 0 and not nesterov:
                if buf is None:  # zeros: the first step gives b = g, as PyTorch's clone
                    buf = state["momentum_buffer"] = np.zeros_like(w)
                K.sgd_step(w, g, lr, momentum=mom, velocity=buf, weight_decay=wd)
                continue
            d = g + wd * w if wd else g.copy()
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()
            else:
                buf *= mom
                buf += (1 - damp) * d
            w -= lr * (d + mom * buf if nesterov else buf)
