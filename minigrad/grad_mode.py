"""Whether operations record the autograd graph: no_grad, enable_grad and
set_grad_enabled, per thread, as in PyTorch."""
import functools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]

class _GradState(threading.local):
    grad_enabled = True  # each thread starts recording (a class default: no getattr fallback)


_state = _GradState()


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``."""
    return _state.grad_enabled


class _GradMode:
    """Sets graph recording on entry and restores it on exit; as in PyTorch it is
    also a decorator, with or without the call (``@no_grad`` or ``@no_grad()``)."""

    mode = False

    __slots__ = ("_before",)

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        self = object.__new__(cls)
        # a stack, (mode, rest) pairs: one instance may be entered recursively
        self._before: tuple[bool, Any] | None = None
        return self(func) if func is not None else self

    def __enter__(self) -> None:
        self._before = (_state.grad_enabled, self._before)
        _state.grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled, self._before = self._before

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():  # a fresh context per call: threads, recursion
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context (or decorator) in which operations record no graph (evaluation, updates)."""

    __slots__ = ()
    mode = False


class enable_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context (or decorator) in which operations record the graph again (inside no_grad)."""

    __slots__ = ()
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
