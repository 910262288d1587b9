"""minigrad: a small deep-learning framework with Cython/C kernels.

The seven steps of training, PyTorch/fastai style (``import minigrad as torch``
runs much PyTorch code unchanged)::

    import minigrad as mg
    from minigrad import nn
    model = nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 1))
    learn = mg.Learner(dls, model, nn.functional.mnist_loss, lr=0.1,
                       metrics=[mg.batch_accuracy])
    learn.fit(10, target=0.98)
"""
# isort: split
from minigrad import _openmp  # noqa: F401  (first: OpenMP's wait policy, before NumPy's BLAS)

# isort: split
import numpy as np

from minigrad import kernels, nn, ops, optim, utils
from minigrad._device import backends, cuda, device
from minigrad._version import __version__
from minigrad.data import DataLoader, DataLoaders
from minigrad.gradcheck import GradcheckError, gradcheck
from minigrad.kernels import get_num_threads, set_num_threads
from minigrad.learner import Learner
from minigrad.metrics import accuracy, batch_accuracy
from minigrad.ops import *  # noqa: F403
from minigrad.optim import SGD
from minigrad.serialize import load, save
from minigrad.tensor import (
    DEFAULT_FLOAT,
    Tensor,
    enable_grad,
    is_grad_enabled,
    is_tensor,
    no_grad,
    set_grad_enabled,
    tensor,
)

# dtypes by PyTorch's names (NumPy dtypes underneath)
float32 = float = DEFAULT_FLOAT.type  # noqa: A001
float64 = double = np.float64
float16 = half = np.float16
int64 = long = np.int64
int32 = int = np.int32  # noqa: A001
int16, int8, uint8 = np.int16, np.int8, np.uint8
bool = np.bool_  # noqa: A001

__all__ = [
    "DataLoader", "DataLoaders", "GradcheckError", "Learner", "SGD", "Tensor", "accuracy",
    "backends", "batch_accuracy", "cuda", "device", "enable_grad", "get_num_threads", "gradcheck",
    "is_grad_enabled", "is_tensor", "kernels", "load", "nn", "no_grad", "ops", "optim",
    "save", "set_grad_enabled", "set_num_threads", "tensor", "utils", "__version__", *ops.__all__,
]
