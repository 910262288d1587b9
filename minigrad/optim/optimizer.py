"""Optimizer: PyTorch's base class (param_groups, state, zero_grad, state dicts)."""
import copy
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from minigrad.tensor import Tensor

__all__ = ["Optimizer", "storage"]


def storage(t: Tensor) -> np.ndarray:
    """The array behind tensor ``t`` (shared, so updates to it are in place)."""
    return t.detach().numpy()


class Optimizer:
    """Base of all optimizers, as ``torch.optim.Optimizer``.

    ``params`` is an iterable of tensors or of dicts (parameter groups) with a
    ``'params'`` key and per-group options; ``defaults`` fills the options a
    group leaves out. ``self.state[p]`` holds the per-parameter buffers.
    Subclasses implement ``_update(group, p, w, g)``, one parameter's update
    in place on its array ``w`` given its gradient's array ``g``; ``step()``
    calls it for every parameter with a gradient (and so does the compiled
    training step, minigrad.compiled), or they override ``step()``."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]],
                 defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups: list[Any] = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (a dict with 'params' and optional options)."""
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError("a parameter group must be a dict with a 'params' key")
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if hasattr(params, "requires_grad") else list(params)
        for p in group["params"]:
            if not hasattr(p, "requires_grad"):
                raise TypeError(f"{type(self).__name__} can only optimize tensors, got "
                                f"{type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (``set_to_none=False``: fill them with zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    storage(p.grad)[...] = 0

    def step(self) -> None:
        """One update of every parameter that has a gradient. Each update is in
        place and bumps the parameter's version counter, as PyTorch's do, so a
        graph recorded before the step can no longer be differentiated."""
        update = self._update
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is not None:
                    update(group, p, p._a, g._a)
                    p._vc[0] += 1

    def _update(self, group: dict[str, Any], p: Tensor, w: np.ndarray,
                g: np.ndarray) -> None:
        """Update the array ``w`` of parameter ``p`` in place from its gradient ``g``."""
        raise NotImplementedError(f"{type(self).__name__} defines neither step() nor _update()")

    def _params_with_grad(self) -> Iterator[tuple[dict[str, Any], Tensor]]:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p

    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: buffers}, 'param_groups': [options with param indices]}
        (copies, as PyTorch's indices: parameters numbered in group order)."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: copy.deepcopy(v) for k, v in group.items() if k != "params"},
                           "params": ids})
        state = {index[id(p)]: {k: np.copy(v) if isinstance(v, np.ndarray) else v
                                for k, v in s.items()}
                 for p, s in ((p, self.state[p]) for g in self.param_groups
                              for p in g["params"] if p in self.state)}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and buffers saved by ``state_dict()`` (copied in)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(s["params"]) for g, s in zip(
                    self.param_groups, groups, strict=True)):
            raise ValueError("loaded state dict has a different number of parameter groups "
                             "or parameters")
        by_index: dict[int, Tensor] = {}
        for group, saved in zip(self.param_groups, groups, strict=True):
            for p, i in zip(group["params"], saved["params"], strict=True):
                by_index[i] = p
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, buffers in state_dict["state"].items():
            p = by_index[int(i)]
            self.state[p] = {k: _buffer_like(v, p) for k, v in buffers.items()}

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _buffer_like(value, p):
    if not isinstance(value, np.ndarray):
        return value
    if value.shape != tuple(p.shape):
        raise ValueError(f"loaded optimizer state of shape {value.shape} for a parameter "
                         f"of shape {tuple(p.shape)}")
    return np.array(value, dtype=storage(p).dtype)
