"""The chapter's linear1 model, trained with the hand-written loop and then with
a BasicOptim-style optimizer, on 3s vs 7s."""
import time

import numpy as np

import minigrad as mg
from minigrad import datasets
from minigrad.nn.functional import mnist_loss

start = time.perf_counter()
(x_train, y_train), (x_valid, y_valid) = datasets.mnist_sample()
rng = np.random.default_rng(0)
dl = mg.DataLoader((x_train, y_train.reshape(-1, 1)), batch_size=256, shuffle=True, seed=0)
valid_dl = mg.DataLoader((x_valid, y_valid.reshape(-1, 1)), batch_size=256)


mg.manual_seed(0)


def init_params(size, std=1.0):
    return (mg.randn(size) * std).requires_grad_()


weights, bias = init_params((28 * 28, 1)), init_params(1)


def linear1(xb):
    return xb @ weights + bias


def calc_grad(xb, yb, model):
    loss = mnist_loss(model(xb), yb)
    loss.backward()


def train_epoch(model, lr, params):
    for xb, yb in dl:
        calc_grad(xb, yb, model)
        for p in params:
            p.data -= p.grad * lr
            p.grad.zero_()


def batch_accuracy(xb, yb):
    preds = xb.sigmoid()
    correct = (preds > 0.5) == yb
    return correct.float().mean()


def validate_epoch(model):
    accs = [batch_accuracy(model(xb), yb).item() * len(xb) for xb, yb in valid_dl]
    return round(sum(accs) / valid_dl.n, 4)


for _ in range(20):
    train_epoch(linear1, 1.0, (weights, bias))
manual = validate_epoch(linear1)


class BasicOptim:
    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def step(self, *args, **kwargs):
        for p in self.params:
            p.data -= p.grad * self.lr

    def zero_grad(self, *args, **kwargs):
        for p in self.params:
            p.grad = None


linear_model = mg.nn.Linear(28 * 28, 1, rng=rng)
opt = BasicOptim(linear_model.parameters(), 1.0)
for _ in range(20):
    for xb, yb in dl:
        calc_grad(xb, yb, linear_model)
        opt.step()
        opt.zero_grad()
print(f"linear1: manual loop accuracy {manual:.4f}, BasicOptim + nn.Linear accuracy "
      f"{validate_epoch(linear_model):.4f} ({time.perf_counter() - start:.2f}s)")
