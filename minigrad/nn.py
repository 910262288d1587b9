"""Layers: Module, Linear, ReLU, Sigmoid, Sequential (PyTorch's names)."""
import numpy as np

from minigrad import functional as F
from minigrad.tensor import Tensor


class Module:
    """Base class: parameters are the Tensor attributes that require grad, and
    those of sub-modules (found recursively, in attribute order)."""

    def __call__(self, *args):
        return self.forward(*args)

    def forward(self, *args):
        raise NotImplementedError

    def named_parameters(self, prefix=""):
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(f"{prefix}{name}.")
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield from item.named_parameters(f"{prefix}{name}.{i}.")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def state_dict(self):
        """Parameter arrays by name (copies)."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state):
        """Copy arrays into the parameters; names and shapes must match."""
        params = dict(self.named_parameters())
        if set(params) != set(state):
            raise ValueError(f"state does not fit the model: expected {sorted(params)}, "
                             f"got {sorted(state)}")
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ValueError(f"{name}: expected shape {p.shape}, got {value.shape}")
            p.data[...] = value


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features), both drawn
    from U(-1/sqrt(in), 1/sqrt(in)) as PyTorch's default initialisation does."""

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        bound = 1.0 / np.sqrt(in_features) if in_features else 0.0
        self.in_features, self.out_features = in_features, out_features
        self.weight = Tensor(rng.uniform(-bound, bound, (out_features, in_features))
                             .astype(dtype), requires_grad=True)
        self.bias = Tensor(rng.uniform(-bound, bound, out_features).astype(dtype),
                           requires_grad=True) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def __repr__(self):
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None})")


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)

    def __repr__(self):
        return "ReLU()"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)

    def __repr__(self):
        return "Sigmoid()"


class Sequential(Module):
    """Modules applied in order. A Linear followed by a ReLU runs as one fused
    kernel (F.linear_relu), with the same result."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        i, layers = 0, self.layers
        while i < len(layers):
            layer = layers[i]
            if type(layer) is Linear and i + 1 < len(layers) and type(layers[i + 1]) is ReLU:
                x = F.linear_relu(x, layer.weight, layer.bias)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
