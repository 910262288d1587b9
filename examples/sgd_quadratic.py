"""SGD by hand: fit a quadratic a*t^2 + b*t + c to noisy speeds of a roller
coaster, as the chapter does, with minigrad's autograd."""
import time

import numpy as np

import minigrad as mg

start = time.perf_counter()
rng = np.random.default_rng(42)
time_steps = np.arange(0, 20, dtype=np.float32)
speed = rng.standard_normal(20).astype(np.float32) * 3 + 0.75 * (time_steps - 9.5) ** 2 + 1
t, y = mg.tensor(time_steps), mg.tensor(speed)


def f(t, params):
    a, b, c = params[0], params[1], params[2]
    return a * (t ** 2) + (b * t) + c


def mse(preds, targets):
    return ((preds - targets) ** 2).mean()


params = mg.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
lr = 1e-5
first = mse(f(t, params), y).item()
for _ in range(2000):  # step: initialize, predict, loss, gradient, step, repeat
    loss = mse(f(t, params), y)
    loss.backward()
    params.data -= lr * params.grad
    params.grad = None
final = mse(f(t, params), y).item()
print(f"sgd quadratic: loss {first:.1f} -> {final:.1f}, params {np.round(params.numpy(), 3)} "
      f"({time.perf_counter() - start:.2f}s)")
