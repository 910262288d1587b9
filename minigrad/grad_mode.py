"""Whether operations record the autograd graph: no_grad, enable_grad and
set_grad_enabled, per thread, as in PyTorch."""
import functools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]

_state = threading.local()


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``."""
    return getattr(_state, "grad_enabled", True)


class _GradMode:
    """Sets graph recording on entry and restores it on exit; as in PyTorch it is
    also a decorator, with or without the call (``@no_grad`` or ``@no_grad()``)."""

    mode = False

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        self = super().__new__(cls)
        self._before: list[bool] = []  # a stack: one instance may be entered recursively
        return self(func) if func is not None else self

    def __enter__(self) -> None:
        self._before.append(is_grad_enabled())
        _state.grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._before.pop()

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():  # a fresh context per call: threads, recursion
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context (or decorator) in which operations record no graph (evaluation, updates)."""

    mode = False


class enable_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context (or decorator) in which operations record the graph again (inside no_grad)."""

    mode = True


class set_grad_enabled:  # noqa: N801 - PyTorch's name
    """Turn graph recording on or off: as a call, or as a context restoring it."""

    def __init__(self, mode: bool) -> None:
        self.before = is_grad_enabled()
        _state.grad_enabled = bool(mode)

    def __enter__(self) -> "set_grad_enabled":
        return self

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self.before
