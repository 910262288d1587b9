"""Layers and loss modules (PyTorch's names); each forwards to minigrad.nn.functional."""
from collections.abc import Callable
from typing import Any

import numpy as np

import minigrad.nn.functional as F
from minigrad import kernels as K
from minigrad.nn.module import Module, Parameter, runs_as
from minigrad.ops.creation import generator
from minigrad.tensor import Tensor, is_grad_enabled


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features), both drawn
    from U(-1/sqrt(in), 1/sqrt(in)) as PyTorch's default initialisation does
    (from ``rng``, else minigrad's generator, see manual_seed)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype: Any = np.float32, rng: np.random.Generator | None = None) -> None:
        rng = rng if rng is not None else generator()
        bound = 1.0 / np.sqrt(in_features) if in_features else 0.0
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features))
                                .astype(dtype))
        self.bias: Parameter | None = Parameter(
            rng.uniform(-bound, bound, out_features).astype(dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        # F.linear has this path too; repeating it here saves ~0.6 of a 5.3 us batch-1 call
        if type(x) is Tensor and x._a.ndim == 2 and not is_grad_enabled():  # inference: kernel only
            b = self.bias
            return Tensor(K.linear(x._a, self.weight._a, None if b is None else b._a,
                                   trans_w=True))
        return F.linear(x, self.weight, self.bias)

    def fuse_with(self, following: Module) -> Module | None:
        """Linear then ReLU (neither with its forward overridden) -> LinearReLU."""
        if runs_as(self, Linear) and isinstance(following, ReLU) and runs_as(following, ReLU):
            return LinearReLU(self)
        return None

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class LinearReLU(Module):
    """relu(linear(x)) on one fused kernel each way, sharing ``linear``'s parameters."""

    def __init__(self, linear: Linear) -> None:
        self.linear = linear

    def forward(self, x: Tensor) -> Tensor:
        lin = self.linear
        if type(x) is Tensor and x._a.ndim == 2 and not is_grad_enabled():  # inference: kernel only
            b = lin.bias
            return Tensor(K.linear(x._a, lin.weight._a, None if b is None else b._a,
                                   relu=True, trans_w=True))
        return F.linear_relu(x, lin.weight, lin.bias)


def _activation(name: str, fn: Callable | None, doc: str,
                params: Any = ()) -> Any:  # Any: each class has its own __init__ options
    """A Module class calling ``fn(x, **options)``; ``params``: [(option, default)]."""
    def __init__(self, *args, **kwargs):
        values = dict(params)
        values.update(zip([k for k, _ in params], args, strict=False))
        unknown = set(kwargs) - set(values)
        if unknown:
            raise TypeError(f"{name}() got unexpected arguments {sorted(unknown)}")
        values.update(kwargs)
        self.__dict__.update(values)

    def forward(self, x):
        return fn(x, **{k: getattr(self, k) for k, _ in params if k != "inplace"})

    def extra_repr(self):
        return ", ".join(f"{k}={getattr(self, k)}" for k, _ in params if k != "inplace")
    return type(name, (Module,), {"__init__": __init__, "forward": forward,
                                  "extra_repr": extra_repr, "__doc__": doc})


_INPLACE = ("inplace", False)  # accepted for PyTorch code; minigrad computes out of place
ReLU = _activation("ReLU", F.relu, "max(x, 0).", [_INPLACE])
Sigmoid = _activation("Sigmoid", F.sigmoid, "1 / (1 + exp(-x)).")
Tanh = _activation("Tanh", F.tanh, "tanh(x).")
GELU = _activation("GELU", F.gelu, "x * Phi(x).", [("approximate", "none")])
SiLU = _activation("SiLU", F.silu, "x * sigmoid(x).", [_INPLACE])
Softplus = _activation("Softplus", F.softplus, "log(1 + exp(x)).",
                       [("beta", 1.0), ("threshold", 20.0)])
ELU = _activation("ELU", F.elu, "x, or alpha (exp(x) - 1) below 0.",
                  [("alpha", 1.0), _INPLACE])
LeakyReLU = _activation("LeakyReLU", F.leaky_relu, "x, or slope * x below 0.",
                        [("negative_slope", 0.01), _INPLACE])
Hardtanh = _activation("Hardtanh", F.hardtanh, "x clipped to [min_val, max_val].",
                       [("min_val", -1.0), ("max_val", 1.0), _INPLACE])
Softmax = _activation("Softmax", F.softmax, "softmax along dim.", [("dim", -1)])
LogSoftmax = _activation("LogSoftmax", F.log_softmax, "log_softmax along dim.", [("dim", -1)])
Flatten = _activation("Flatten", lambda x, start_dim, end_dim: x.flatten(start_dim, end_dim),
                      "Flatten dims start_dim..end_dim (all but the batch dim by default).",
                      [("start_dim", 1), ("end_dim", -1)])
Identity = _activation("Identity", lambda x: x, "Returns its input.")


class Dropout(Module):
    """Zero elements with probability p in training mode (see Module.train/eval)."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _loss(name: str, fn: Callable, doc: str, params: Any = ()) -> Any:
    """A loss Module class calling ``fn(input, target, reduction=..., **options)``."""
    cls = _activation(name, None, doc, [("reduction", "mean"), *params])

    def forward(self, input, target):  # noqa: A002 - PyTorch's name
        return fn(input, target, **{k: getattr(self, k) for k in
                                    ["reduction", *[k for k, _ in params]]})
    cls.forward = forward
    return cls


MSELoss = _loss("MSELoss", F.mse_loss, "Mean squared error.")
L1Loss = _loss("L1Loss", F.l1_loss, "Mean absolute error.")
CrossEntropyLoss = _loss("CrossEntropyLoss", F.cross_entropy, "Softmax cross-entropy.",
                         [("weight", None), ("ignore_index", -100), ("label_smoothing", 0.0)])
NLLLoss = _loss("NLLLoss", F.nll_loss, "Negative log-likelihood.",
                [("weight", None), ("ignore_index", -100)])
BCEWithLogitsLoss = _loss("BCEWithLogitsLoss", F.binary_cross_entropy_with_logits,
                          "Binary cross-entropy on logits.")
BCELoss = _loss("BCELoss", F.binary_cross_entropy, "Binary cross-entropy on probabilities.")


# every public Module class defined above, so a new layer needs no list of its own
__all__ = sorted(name for name, value in list(globals().items())
                 if isinstance(value, type) and issubclass(value, Module)
                 and value.__module__ == __name__ and not name.startswith("_"))
