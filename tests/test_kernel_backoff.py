"""Backing off to one thread while a team's threads are kept off their cores
(csrc/mg_driver.c): three strikes send the next kernel calls to one thread,
the wait ends, a thread switched out mid-kernel is seen by its CPU clock, it
can be turned off, and results do not change.

A worker kept off its core is simulated with the extension's test hooks:
every worker sleeps as it enters a team, before its clocks start (it comes
late) or after (it is off its core). conftest.py turns the backoff off for
every other test; the fixture here turns it on.
"""
import os
import time

import numpy as np
import pytest

from minigrad import _kernels
from minigrad import kernels as K

pytestmark = pytest.mark.skipif(
    not K.openmp_enabled() or os.environ.get("OMP_THREAD_LIMIT") == "1"
    or os.environ.get("OMP_DYNAMIC", "").lower() in ("true", "1"),
    reason="no team of two threads here")

SLEEP = 0.01  # each worker sleeps 10 ms entering a team: far longer than it works
WAIT = 0.05  # the first wait here (5 ms by default), long enough for a loaded machine
MARGIN = 0.02  # a call is sure to run inside a wait with this much of it left


@pytest.fixture
def two_threads():
    before = K.get_num_threads()
    K.set_num_threads(2)
    _kernels._thread_backoff(True)
    yield
    _kernels._thread_backoff(False)  # as conftest.py leaves it: off, hooks off, no wait
    K.set_num_threads(before)


def _operands(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((192, 160)).astype(np.float32),
            rng.standard_normal((160, 224)).astype(np.float32))


def _product(a, b):
    return K.matmul(a, b)  # 6.9M multiply-adds: a team of two when granted


def _until_waiting(a, b, expected=None, calls=3):
    """Calls the product until a wait starts (three late teams should do)."""
    for _ in range(calls):
        out = _product(a, b)
        if expected is not None:
            assert np.array_equal(out, expected)
        if _kernels._thread_backoff()["serial_for_s"] > 0:
            return
    pytest.fail(f"no wait after {calls} teams with a sleeping worker")


def _calls_inside_the_wait(f, n=3):
    """Calls f n times; returns how many were sure to start inside the wait."""
    inside = 0
    for _ in range(n):
        inside += _kernels._thread_backoff()["serial_for_s"] > MARGIN
        f()
    return inside


def test_three_late_teams_send_calls_to_one_thread(two_threads):
    a, b = _operands()
    before = _kernels._thread_backoff(True, first_wait_seconds=WAIT, test_late_seconds=SLEEP)
    for _ in range(2):
        _product(a, b)
    two = _kernels._thread_backoff()
    assert two["strikes"] - before["strikes"] == 2
    assert two["waits"] == before["waits"] and two["serial_for_s"] == 0
    _product(a, b)
    three = _kernels._thread_backoff()
    assert three["waits"] == before["waits"] + 1
    assert 0 < three["serial_for_s"] <= WAIT
    inside = _calls_inside_the_wait(lambda: _product(a, b))
    after = _kernels._thread_backoff()
    assert inside >= 1
    assert after["serial_calls"] - three["serial_calls"] >= inside
    # each call ran on one thread or as a team whose worker came late
    teams, serial = (after[k] - three[k] for k in ("strikes", "serial_calls"))
    assert teams + serial == 3


def test_a_worker_switched_out_is_seen_by_its_cpu_clock(two_threads):
    """Off its core after its clocks started: only the CPU clock, read in one
    team of eight and then in every team after a strike, can tell."""
    a, b = _operands()
    _kernels._thread_backoff(True, first_wait_seconds=WAIT, test_off_seconds=SLEEP)
    _until_waiting(a, b, calls=8 + 3)


def test_results_do_not_change_while_waiting(two_threads):
    a, b = _operands(1)
    x = np.random.default_rng(2).standard_normal(1 << 18).astype(np.float32)
    K.set_num_threads(1)
    expected, relu_expected = _product(a, b), K.relu(x)
    K.set_num_threads(2)
    _kernels._thread_backoff(True, first_wait_seconds=WAIT, test_late_seconds=SLEEP)
    _until_waiting(a, b, expected)
    calls = _kernels._thread_backoff()["serial_calls"]
    inside = _calls_inside_the_wait(
        lambda: (np.testing.assert_array_equal(_product(a, b), expected),
                 np.testing.assert_array_equal(K.relu(x), relu_expected)))  # elementwise too
    assert inside >= 1
    assert _kernels._thread_backoff()["serial_calls"] - calls >= 2 * inside


def test_teams_come_back_when_the_wait_ends(two_threads):
    a, b = _operands()
    _kernels._thread_backoff(True, first_wait_seconds=WAIT, test_late_seconds=SLEEP)
    _until_waiting(a, b)
    time.sleep(_kernels._thread_backoff()["serial_for_s"] + 0.01)
    before = _kernels._thread_backoff()
    assert before["serial_for_s"] == 0
    _product(a, b)
    after = _kernels._thread_backoff()
    assert after["serial_calls"] == before["serial_calls"]  # a team again...
    assert after["strikes"] == before["strikes"] + 1  # ...whose worker came late


def test_turned_off_it_neither_counts_nor_waits(two_threads):
    a, b = _operands()
    before = _kernels._thread_backoff(False, test_late_seconds=SLEEP)
    assert before["enabled"] is False
    for _ in range(4):
        _product(a, b)
    after = _kernels._thread_backoff()
    for key in ("strikes", "serial_calls", "waits"):
        assert after[key] == before[key]


def test_one_thread_counts_nothing(two_threads):
    a, b = _operands()
    K.set_num_threads(1)
    before = _kernels._thread_backoff(True, first_wait_seconds=WAIT, test_late_seconds=SLEEP)
    for _ in range(4):
        _product(a, b)
    assert _kernels._thread_backoff()["strikes"] == before["strikes"]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
@pytest.mark.parametrize("name", ["first_wait_seconds", "test_late_seconds",
                                  "test_off_seconds"])
def test_bad_test_sleep_is_refused(name, bad):
    with pytest.raises(ValueError, match=name):
        _kernels._thread_backoff(False, **{name: bad})


def test_settings_need_enabled():
    with pytest.raises(ValueError, match="enabled"):
        _kernels._thread_backoff(test_late_seconds=0.01)


def test_the_first_wait_is_five_ms_by_default(two_threads):
    a, b = _operands()
    _kernels._thread_backoff(True, test_late_seconds=SLEEP)
    _until_waiting(a, b)
    assert 0 < _kernels._thread_backoff()["serial_for_s"] <= 0.005
