"""Shared test settings: hypothesis profiles and fixtures that run a test on
every SIMD path this CPU has and on one and two threads."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from minigrad import _kernels, kernels

# Tests that ask for two threads get a team of two: the backing off to one
# thread (tests/test_kernel_backoff.py turns it on for itself) would otherwise
# run them on one whenever the shared test machine keeps a worker waiting.
_kernels._thread_backoff(False)

# In CI (CI=true) the examples are derandomized so that a run is repeatable;
# elsewhere every run explores new ones.
settings.register_profile(
    "default", deadline=None, max_examples=40, derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long", deadline=None, max_examples=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=kernels.simd_paths_available())
def simd(request):
    """Runs the test once per instruction set available here."""
    before = kernels.simd_path()
    kernels.set_simd_path(request.param)
    yield request.param
    kernels.set_simd_path(before)


@pytest.fixture
def one_thread():
    """Runs the test on one kernel thread (bit-for-bit comparisons)."""
    before = kernels.get_num_threads()
    kernels.set_num_threads(1)
    yield
    kernels.set_num_threads(before)


@pytest.fixture(params=[1, 2])
def threads(request):
    """Runs the test with one and with two kernel threads."""
    before = kernels.get_num_threads()
    kernels.set_num_threads(request.param)
    yield request.param
    kernels.set_num_threads(before)


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param
