"""The chapter's baseline: classify a digit as 3 or 7 by which mean image it
is closer to (mean absolute difference). No training."""
import time

import numpy as np

from minigrad import datasets

start = time.perf_counter()
(x_train, y_train), (x_valid, y_valid) = datasets.mnist_sample(flatten=False)
mean3 = x_train[y_train == 1].mean(axis=0)
mean7 = x_train[y_train == 0].mean(axis=0)


def mnist_distance(a, b):
    return np.abs(a - b).mean(axis=(-1, -2))


def is_3(x):
    return mnist_distance(x, mean3) < mnist_distance(x, mean7)


acc3 = is_3(x_valid[y_valid == 1]).mean()
acc7 = 1 - is_3(x_valid[y_valid == 0]).mean()
print(f"pixel similarity: accuracy on 3s {acc3:.4f}, on 7s {acc7:.4f}, "
      f"overall {(acc3 + acc7) / 2:.4f} ({time.perf_counter() - start:.2f}s)")
