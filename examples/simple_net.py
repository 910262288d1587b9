"""The chapter's simple_net (Linear(784, 30), ReLU, Linear(30, 1)) trained on
3s vs 7s with Learner, then the same network written with x.max(0.0)."""
import time

import numpy as np

import minigrad as mg
from minigrad import datasets, nn
from minigrad.nn.functional import mnist_loss

start = time.perf_counter()
(x_train, y_train), (x_valid, y_valid) = datasets.mnist_sample()
dls = mg.DataLoaders.from_arrays(x_train, y_train.reshape(-1, 1), x_valid,
                                 y_valid.reshape(-1, 1), batch_size=64, seed=0)
rng = np.random.default_rng(0)
simple_net = nn.Sequential(nn.Linear(28 * 28, 30, rng=rng), nn.ReLU(), nn.Linear(30, 1, rng=rng))
learn = mg.Learner(dls, simple_net, mnist_loss, opt_func=mg.SGD, lr=0.5,
                   metrics=[mg.batch_accuracy])
learn.fit(20)
acc = learn.history[-1]["batch_accuracy"]
print(f"simple_net (Learner): accuracy {acc:.4f} ({time.perf_counter() - start:.2f}s)")

# The same model as the chapter first writes it, with plain tensors.
w1 = mg.tensor(rng.standard_normal((28 * 28, 30)).astype(np.float32) * 0.05).requires_grad_()
b1 = mg.tensor(np.zeros(30, np.float32)).requires_grad_()
w2 = mg.tensor(rng.standard_normal((30, 1)).astype(np.float32) * 0.2).requires_grad_()
b2 = mg.tensor(np.zeros(1, np.float32)).requires_grad_()


def by_hand(xb):
    res = xb @ w1 + b1
    res = res.max(mg.tensor(0.0))
    return res @ w2 + b2


opt = mg.SGD([w1, b1, w2, b2], lr=0.5)
for _ in range(20):
    for xb, yb in dls.train:
        loss = mnist_loss(by_hand(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
acc2 = mg.batch_accuracy(by_hand(mg.tensor(x_valid)), y_valid)
print(f"simple_net (by hand, x.max(0.0)): accuracy {acc2:.4f} "
      f"({time.perf_counter() - start:.2f}s)")
