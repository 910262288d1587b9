"""Argument types of the command line: each parses one option's text or
raises argparse.ArgumentTypeError naming what it expected."""
import argparse
import os

THREADS_PER_CPU = 4
"""--threads and MINIGRAD_NUM_THREADS may be at most this many times the CPUs."""

__all__ = ["THREADS_PER_CPU", "cpus", "fraction", "max_threads", "nonneg_float", "nonneg_int",
           "positive_int", "threads"]


def cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def max_threads() -> int:
    """The largest thread count the command line accepts."""
    return THREADS_PER_CPU * cpus()


def _integer(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _integer(text, 1, "a positive integer")


def nonneg_int(text: str) -> int:
    return _integer(text, 0, "an integer >= 0")


def nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """An accuracy: a number from 0 to 1."""
    value = nonneg_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def threads(text: str) -> int:
    value = positive_int(text)
    if value > max_threads():
        raise argparse.ArgumentTypeError(f"at most {max_threads()} ({THREADS_PER_CPU}x the "
                                         f"{cpus()} CPUs), got {value}")
    return value
