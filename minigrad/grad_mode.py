"""Whether operations record the autograd graph: no_grad, enable_grad and
set_grad_enabled, per thread, as in PyTorch."""
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]

_state = threading.local()


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``."""
    return getattr(_state, "grad_enabled", True)


@contextmanager
def no_grad() -> Iterator[None]:
    """Context in which operations record no graph (evaluation, updates)."""
    before = is_grad_enabled()
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = before


class set_grad_enabled:  # noqa: N801 - PyTorch's name
    """Turn graph recording on or off: as a call, or as a context restoring it."""

    def __init__(self, mode: bool) -> None:
        self.before = is_grad_enabled()
        _state.grad_enabled = bool(mode)

    def __enter__(self) -> "set_grad_enabled":
        return self

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self.before


def enable_grad() -> set_grad_enabled:
    """Context in which operations record the graph again (inside no_grad())."""
    return set_grad_enabled(True)
