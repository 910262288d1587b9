"""minigrad: a small deep-learning framework with Cython/C kernels.

The seven steps of training, PyTorch/fastai style::

    import minigrad as mg
    from minigrad import nn
    model = nn.Sequential(nn.Linear(784, 30), nn.ReLU(), nn.Linear(30, 1))
    learn = mg.Learner(dls, model, mg.functional.mnist_loss, lr=0.1,
                       metrics=[mg.batch_accuracy])
    learn.fit(10, target=0.98)
"""
from minigrad import functional, kernels, nn, optim
from minigrad._version import __version__
from minigrad.data import DataLoader, DataLoaders
from minigrad.gradcheck import GradcheckError, gradcheck
from minigrad.kernels import get_num_threads, set_num_threads
from minigrad.learner import Learner
from minigrad.metrics import accuracy, batch_accuracy
from minigrad.optim import SGD
from minigrad.tensor import Tensor, cat, exp, log, no_grad, stack, tensor, where

__all__ = [
    "DataLoader", "DataLoaders", "GradcheckError", "Learner", "SGD", "Tensor", "accuracy",
    "batch_accuracy", "cat", "exp", "functional", "get_num_threads", "gradcheck", "kernels",
    "log", "nn", "no_grad", "optim", "set_num_threads", "stack", "tensor", "where",
    "__version__",
]
