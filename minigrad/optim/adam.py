"""Adam and AdamW with PyTorch's update rules, on the adam_step kernel."""
import numpy as np

from minigrad import kernels as K
from minigrad.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (``weight_decay`` adds ``wd * p`` to the
    gradient; ``amsgrad`` is not supported)."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        beta1, beta2 = betas
        for name, v in (("lr", lr), ("eps", eps), ("weight_decay", weight_decay)):
            if not v >= 0:
                raise ValueError(f"{type(self).__name__}: {name} must be >= 0, got {v}")
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=(beta1, beta2), eps=eps,
                                      weight_decay=weight_decay))

    def _update(self, group, p, w, g):
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {}
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(w), exp_avg_sq=np.zeros_like(w))
        state["step"] += 1
        beta1, beta2 = group["betas"]
        K.adam_step(w, g, state["exp_avg"], state["exp_avg_sq"], state["step"], group["lr"],
                    beta1, beta2, group["eps"], group["weight_decay"], self._decoupled)


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: decoupled weight decay
    ``p *= 1 - lr * weight_decay`` before the Adam update."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
