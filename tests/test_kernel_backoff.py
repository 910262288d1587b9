"""Backing off to one thread while a team's threads are kept off their cores
(csrc/mg_driver.c): three strikes in a row send the next kernel calls to one
thread, the wait ends, it can be turned off, and results do not change.

A worker kept off its core is simulated with the extension's test hook: every
worker sleeps as it enters a team (``_thread_backoff(test_late_seconds=)``).
"""
import time

import numpy as np
import pytest

from minigrad import _kernels
from minigrad import kernels as K

pytestmark = pytest.mark.skipif(not K.openmp_enabled(), reason="built without OpenMP")

LATE = 0.01  # each worker sleeps 10 ms entering a team: far longer than it works


@pytest.fixture
def two_threads():
    before = K.get_num_threads()
    K.set_num_threads(2)
    _kernels._thread_backoff(True)
    yield
    _kernels._thread_backoff(True)  # the test hook off, no wait left
    K.set_num_threads(before)


def _operands(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((192, 160)).astype(np.float32),
            rng.standard_normal((160, 224)).astype(np.float32))


def _product(a, b):
    return K.matmul(a, b)  # 6.9M multiply-adds: a team of two when granted


def _until_waiting(a, b, expected=None):
    """Calls the product until a wait starts (three calls should do)."""
    for _ in range(3):
        out = _product(a, b)
        if expected is not None:
            assert np.array_equal(out, expected)
    assert _kernels._thread_backoff()["serial_for_s"] > 0, "no wait after three late teams"


def test_three_late_teams_send_calls_to_one_thread(two_threads):
    a, b = _operands()
    before = _kernels._thread_backoff(True, test_late_seconds=LATE)
    for _ in range(2):
        _product(a, b)
    two = _kernels._thread_backoff()
    assert two["late_teams"] - before["late_teams"] == 2
    assert two["waits"] == before["waits"]  # two strikes: still teams
    _product(a, b)
    three = _kernels._thread_backoff()
    assert three["waits"] == before["waits"] + 1
    assert 0 < three["serial_for_s"] <= 0.025
    calls = three["serial_calls"]
    for _ in range(3):
        _product(a, b)
    after = _kernels._thread_backoff()
    assert after["serial_calls"] == calls + 3  # no team, so no new strike
    assert after["late_teams"] == three["late_teams"]


def test_results_do_not_change_while_waiting(two_threads):
    a, b = _operands(1)
    K.set_num_threads(1)
    expected = _product(a, b)
    x = np.random.default_rng(2).standard_normal(1 << 18).astype(np.float32)
    relu_expected = K.relu(x)
    K.set_num_threads(2)
    _kernels._thread_backoff(True, test_late_seconds=LATE)
    _until_waiting(a, b, expected)
    calls = _kernels._thread_backoff()["serial_calls"]
    assert np.array_equal(_product(a, b), expected)
    assert np.array_equal(K.relu(x), relu_expected)  # elementwise kernels wait too
    assert _kernels._thread_backoff()["serial_calls"] == calls + 2


def test_teams_come_back_when_the_wait_ends(two_threads):
    a, b = _operands()
    _kernels._thread_backoff(True, test_late_seconds=LATE)
    _until_waiting(a, b)
    time.sleep(_kernels._thread_backoff()["serial_for_s"] + 0.01)
    before = _kernels._thread_backoff()
    assert before["serial_for_s"] == 0
    _product(a, b)
    after = _kernels._thread_backoff()
    assert after["serial_calls"] == before["serial_calls"]  # a team again...
    assert after["late_teams"] == before["late_teams"] + 1  # ...whose worker came late


def test_turned_off_it_neither_counts_nor_waits(two_threads):
    a, b = _operands()
    before = _kernels._thread_backoff(False, test_late_seconds=LATE)
    assert before["enabled"] is False
    for _ in range(5):
        _product(a, b)
    after = _kernels._thread_backoff()
    assert after["late_teams"] == before["late_teams"]
    assert after["serial_calls"] == before["serial_calls"]
    assert after["waits"] == before["waits"]


def test_one_thread_counts_nothing(two_threads):
    a, b = _operands()
    K.set_num_threads(1)
    before = _kernels._thread_backoff(True, test_late_seconds=LATE)
    for _ in range(4):
        _product(a, b)
    assert _kernels._thread_backoff()["late_teams"] == before["late_teams"]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_test_sleep_is_refused(bad):
    with pytest.raises(ValueError, match="test_late_seconds"):
        _kernels._thread_backoff(True, test_late_seconds=bad)
