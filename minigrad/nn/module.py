"""Module (parameters, train/eval, state_dict), Parameter, Sequential and
ModuleList, with PyTorch's names and parameter naming."""
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

import minigrad._device as D
from minigrad.tensor import Tensor, as_array, no_grad

__all__ = ["Module", "ModuleList", "Parameter", "Sequential"]


class Parameter(Tensor):
    """A tensor that is a module's parameter (requires grad by default)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(np.array(as_array(data), copy=True), requires_grad=requires_grad)


class Module:
    """Base class: parameters are the Tensor attributes that are Parameters or
    require grad, and those of sub-modules, in attribute order."""

    training = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any) -> Any:
        """The module's computation (subclasses); call the module, not forward()."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """(name, module) of the direct sub-modules, in attribute order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> list["Module"]:
        """The direct sub-modules."""
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) of this module ("") and all below it."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> list["Module"]:
        """This module and all below it."""
        return [m for _, m in self.named_modules()]

    def _own_parameters(self) -> Iterator[tuple[str, Tensor]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter) or (isinstance(value, Tensor) and value.requires_grad):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(name, parameter) pairs with PyTorch's dotted names ("0.weight")."""
        for name, p in self._own_parameters():
            yield prefix + name, p
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Tensor]:
        """Every parameter, in named_parameters() order."""
        return [p for _, p in self.named_parameters()]

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Make ``tensor`` state that state_dict saves but training does not
        change through gradients (BatchNorm's running statistics); None keeps
        an empty slot."""
        if "_buffer_names" not in vars(self):
            self._buffer_names: list[str] = []
        if name not in self._buffer_names:
            self._buffer_names.append(name)
        setattr(self, name, tensor)

    def _own_buffers(self) -> Iterator[tuple[str, Tensor]]:
        for name in vars(self).get("_buffer_names", ()):
            if getattr(self, name) is not None:
                yield name, getattr(self, name)

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(name, buffer) pairs with PyTorch's dotted names ("1.running_mean")."""
        for name, b in self._own_buffers():
            yield prefix + name, b
        for name, child in self.named_children():
            yield from child.named_buffers(f"{prefix}{name}.")

    def buffers(self) -> list[Tensor]:
        """Every buffer, in named_buffers() order."""
        return [b for _, b in self.named_buffers()]

    def _named_state(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """Parameters and buffers in PyTorch's state_dict order: each module's
        own parameters, then its buffers, then its children's."""
        for name, t in (*self._own_parameters(), *self._own_buffers()):
            yield prefix + name, t
        for name, child in self.named_children():
            yield from child._named_state(f"{prefix}{name}.")

    def zero_grad(self) -> None:
        """Drop every parameter's gradient."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active) for this module and its children; returns self."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """PyTorch's ``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(tensor)``:
        cast every parameter and floating-point buffer to the dtype in place
        (storage replaced); the device must be the CPU. Returns self."""
        if args and isinstance(args[0], Tensor):
            args = (args[0].dtype, *args[1:])
        dtype, _ = D.to_args(args, kwargs)
        if dtype is None:
            return self
        if dtype.kind != "f":
            raise TypeError(f"parameters must stay floating point, got {dtype}")
        for p in self.parameters() + [b for b in self.buffers() if b.dtype.kind == "f"]:
            p.data = p.numpy().astype(dtype)
        return self

    def cpu(self) -> "Module":
        """Self: the parameters are on the CPU already."""
        return self

    def cuda(self, device: Any = None) -> "Module":
        """A RuntimeError: minigrad runs on the CPU only."""
        D.check("cuda")  # raises
        return self

    def float(self) -> "Module":
        """``to(float32)``."""
        return self.to(np.float32)

    def double(self) -> "Module":
        """``to(float64)``."""
        return self.to(np.float64)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Turn gradients on or off for every parameter (e.g. to freeze a layer)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def state_dict(self) -> dict[str, Tensor]:
        """Parameters and buffers by name, in PyTorch's order, as detached
        copies (PyTorch shares storage instead)."""
        return {name: t.detach().clone() for name, t in self._named_state()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy values (tensors or arrays) into the parameters and buffers;
        with ``strict`` the names must match exactly; shapes always."""
        params = dict(self._named_state())
        if strict and set(params) != set(state):
            missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
            raise ValueError(f"state does not fit the model: missing {missing}, "
                             f"unexpected {unexpected}")
        for name, p in params.items():
            if name not in state:
                continue
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ValueError(f"{name}: expected shape {p.shape}, got {value.shape}")
            with no_grad():
                p.numpy()[...] = value
                p._bump()

    def __repr__(self) -> str:
        children = [f"  ({name}): " + repr(m).replace("\n", "\n  ")
                    for name, m in self.named_children()]
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n" + "\n".join(children) + "\n)"

    def extra_repr(self) -> str:
        """The options shown inside the module's repr."""
        return ""

    def fuse_with(self, following: "Module") -> "Module | None":
        """A module computing ``following(self(x))`` in one step, or None (the default)."""
        return None


def runs_as(module: Module, cls: type) -> bool:
    """Whether calling ``module`` runs ``cls.forward`` as is: neither its
    ``forward`` nor its ``__call__`` overridden (what fusing and compiling need)."""
    return type(module).forward is cls.forward and type(module).__call__ is Module.__call__


class Sequential(Module):
    """Modules applied in order, named "0", "1", ... as in PyTorch.

    Before running, ``fuse()`` (called on the first forward, or explicitly)
    asks each layer for a fused module with the next one (``fuse_with``), so a
    Linear followed by a ReLU runs as one kernel each way, with the same result
    and the same parameters."""

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)
        self._plan: list[Module] = []
        self._planned_for: list[Module] | None = None  # the layers the plan was built from

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def fuse(self) -> "Sequential":
        """Build the execution plan from adjacent layers that fuse; returns self."""
        plan, i, layers = [], 0, self.layers
        while i < len(layers):
            fused = layers[i].fuse_with(layers[i + 1]) if i + 1 < len(layers) else None
            plan.append(fused if fused is not None else layers[i])
            i += 2 if fused is not None else 1
        self._plan, self._planned_for = plan, list(layers)
        return self

    def forward(self, x: Any) -> Any:
        if self._planned_for != self.layers:  # compares the layers by identity (no __eq__)
            self.fuse()
        for layer in self._plan:
            x = layer(x)
        return x

    def append(self, module: Module) -> "Sequential":
        """Add a layer at the end; returns self."""
        self.layers.append(module)
        return self

    def __getitem__(self, i: int | slice) -> Any:
        return Sequential(*self.layers[i]) if isinstance(i, slice) else self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)


class ModuleList(Module):
    """A list of modules whose parameters belong to the owner ("0.weight", ...)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        self.items = list(modules)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for i, m in enumerate(self.items):
            yield str(i), m

    def append(self, module: Module) -> "ModuleList":
        """Add a module at the end; returns self."""
        self.items.append(module)
        return self

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        """Add modules at the end; returns self."""
        self.items.extend(modules)
        return self

    def __getitem__(self, i: int | slice) -> Any:
        return ModuleList(self.items[i]) if isinstance(i, slice) else self.items[i]

    def __setitem__(self, i: int, module: Module) -> None:
        self.items[i] = module

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.items)
