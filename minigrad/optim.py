"""Optimizers: SGD with momentum and weight decay, on the sgd_step kernel."""
import numpy as np

from minigrad import kernels as K


class SGD:
    """Stochastic gradient descent with PyTorch's update rule:
    ``g = grad + weight_decay * p; v = momentum * v + g; p -= lr * v``."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.params = list(params)
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got "
                             f"{lr}, {momentum}, {weight_decay}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity = [np.zeros_like(p.data) if momentum else None for p in self.params]

    def step(self):
        for p, v in zip(self.params, self.velocity, strict=True):
            if p.grad is None:
                continue
            K.sgd_step(p.numpy(), p.grad.numpy(), self.lr, momentum=self.momentum, velocity=v,
                       weight_decay=self.weight_decay)

    def zero_grad(self):
        for p in self.params:
            p.grad = None
