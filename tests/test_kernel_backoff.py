"""Backing off to one thread while a team's threads are kept off their cores
(csrc/mg_driver.c): three strikes at most two teams apart send the next kernel
calls to one thread, the wait ends and doubles when the trouble recurs right
after it, a thread switched out mid-kernel is seen by its CPU clock, every
kind of parallel kernel is judged, it can be turned off, and results do not
change.

A worker kept off its core is simulated with the extension's test hooks:
every worker sleeps as it enters a team, before its clocks start (it comes
late) or after (it is off its core). conftest.py turns the backoff off for
every other test; the fixture here turns it on. Waits are made long (a call
to ``_thread_backoff(enabled)`` ends them) so that a loaded machine cannot
end one before the test looks.
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
WAIT = 1.0  # the first wait here (5 ms by default)


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


def _stats():
    return _kernels._thread_backoff()


def _until_waiting(f, calls=3):
    """Calls f until a wait starts; fails after `calls` calls."""
    waits = _stats()["waits"]
    for _ in range(calls):
        f()
        if _stats()["waits"] > waits:
            return
    pytest.fail(f"no wait after {calls} teams with a sleeping worker")


def test_three_late_teams_send_calls_to_one_thread(two_threads):
    a, b = _operands()
    before = _kernels._thread_backoff(True, first_wait_seconds=WAIT, test_late_seconds=SLEEP)
    for _ in range(2):
        _product(a, b)
    two = _stats()
    assert two["strikes"] - before["strikes"] == 2
    assert two["waits"] == before["waits"]
    _product(a, b)
    three = _stats()
    assert three["waits"] == before["waits"] + 1
    assert three["last_wait_s"] == WAIT and three["serial_for_s"] > 0
    for _ in range(3):
        _product(a, b)
    after = _stats()
    assert after["serial_calls"] == three["serial_calls"] + 3
    assert after["strikes"] == three["strikes"]  # one thread: no team to judge


def test_teams_are_counted_where_they_fork(two_threads):
    """One-thread products between the team products do not break the row."""
    a, b = _operands()
    small = np.ones((32, 32), np.float32)  # 32k multiply-adds: one thread
    _kernels._thread_backoff(True, first_wait_seconds=WAIT, test_late_seconds=SLEEP)

    def big_then_small():
        _product(a, b)
        for _ in range(3):
            K.matmul(small, small)
    _until_waiting(big_then_small)


def test_a_worker_switched_out_is_seen_by_its_cpu_clock(two_threads):
    """Off its core after its clocks started: only the CPU clock, read in one
    team of eight and then in every team after a strike, can tell."""
    a, b = _operands()
    _kernels._thread_backoff(True, first_wait_seconds=WAIT, test_off_seconds=SLEEP)
    _until_waiting(lambda: _product(a, b), calls=8 + 3)


def test_every_kind_of_parallel_kernel_is_judged(two_threads, simd):
    """Each kernel's work, split in two, stays far below the worker's sleep
    (on every SIMD path, and several times slower under AddressSanitizer)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 16, 16, 16)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    xp = rng.standard_normal((16, 16, 32, 32)).astype(np.float32)  # pooling is cheap
    y = K.conv2d(x, w, padding=1)
    a16, b16 = (rng.standard_normal(s).astype(np.float32) for s in ((16, 256), (256, 1024)))
    flat = rng.standard_normal(1 << 18).astype(np.float32)
    calls = {
        "conv2d": lambda: K.conv2d(x, w, padding=1),
        "conv2d_backward_input": lambda: K.conv2d_backward_input(y, w, x.shape, padding=1),
        "conv2d_backward_weight": lambda: K.conv2d_backward_weight(x, y, 3, padding=1),
        "max_pool2d": lambda: K.max_pool2d(xp, 2),
        "few-row product": lambda: K.matmul(a16, b16),
        "relu": lambda: K.relu(flat),
    }
    for name, call in calls.items():
        before = _kernels._thread_backoff(True, first_wait_seconds=WAIT,
                                          test_late_seconds=5 * SLEEP)
        call()
        assert _stats()["strikes"] > before["strikes"], name


def test_results_do_not_change_while_waiting(two_threads):
    a, b = _operands(1)
    x = np.random.default_rng(2).standard_normal(1 << 18).astype(np.float32)
    K.set_num_threads(1)
    expected, relu_expected = _product(a, b), K.relu(x)
    K.set_num_threads(2)
    _kernels._thread_backoff(True, first_wait_seconds=WAIT, test_late_seconds=SLEEP)
    _until_waiting(lambda: np.testing.assert_array_equal(_product(a, b), expected))
    calls = _stats()["serial_calls"]
    for _ in range(3):
        np.testing.assert_array_equal(_product(a, b), expected)
        np.testing.assert_array_equal(K.relu(x), relu_expected)  # elementwise kernels wait too
    assert _stats()["serial_calls"] == calls + 6


def test_teams_come_back_when_the_wait_ends(two_threads):
    a, b = _operands()
    _kernels._thread_backoff(True, first_wait_seconds=0.02, test_late_seconds=SLEEP)
    _until_waiting(lambda: _product(a, b))
    time.sleep(_stats()["serial_for_s"] + 0.01)
    before = _stats()
    assert before["serial_for_s"] == 0
    _product(a, b)
    after = _stats()
    assert after["serial_calls"] == before["serial_calls"]  # a team again...
    assert after["strikes"] == before["strikes"] + 1  # ...whose worker came late


def test_a_row_right_after_a_wait_doubles_the_next(two_threads):
    a, b = _operands()
    first = 0.05
    _kernels._thread_backoff(True, first_wait_seconds=first, test_late_seconds=SLEEP)
    _until_waiting(lambda: _product(a, b))
    assert _stats()["last_wait_s"] == first
    time.sleep(_stats()["serial_for_s"] + 0.002)
    _until_waiting(lambda: _product(a, b))
    assert _stats()["last_wait_s"] == 2 * first


def test_the_first_wait_is_five_ms_by_default(two_threads):
    a, b = _operands()
    _kernels._thread_backoff(True, test_late_seconds=SLEEP)
    _until_waiting(lambda: _product(a, b))
    assert _stats()["last_wait_s"] == 0.005


def test_turned_off_it_neither_counts_nor_waits(two_threads):
    a, b = _operands()
    before = _kernels._thread_backoff(False, test_late_seconds=SLEEP)
    assert before["enabled"] is False
    for _ in range(4):
        _product(a, b)
    after = _stats()
    for key in ("strikes", "serial_calls", "waits"):
        assert after[key] == before[key]


def test_one_thread_counts_nothing(two_threads):
    a, b = _operands()
    K.set_num_threads(1)
    before = _kernels._thread_backoff(True, test_late_seconds=SLEEP)
    for _ in range(4):
        _product(a, b)
    assert _stats()["strikes"] == before["strikes"]


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
@pytest.mark.parametrize("name", ["first_wait_seconds", "test_late_seconds",
                                  "test_off_seconds"])
def test_bad_settings_are_refused(name, bad):
    with pytest.raises(ValueError, match=name):
        _kernels._thread_backoff(False, **{name: bad})


def test_settings_need_enabled():
    with pytest.raises(ValueError, match="enabled"):
        _kernels._thread_backoff(test_late_seconds=0.01)
