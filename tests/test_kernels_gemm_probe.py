"""The benchmark helpers of the extension: the caller's flush-to-zero switch
and the FMA peak probe (no timing bounds: only that they work)."""
import math
import platform

import pytest

from minigrad import _kernels, kernels

FTZ_DAZ = 0x8040

x86 = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"),
                         reason="MXCSR is x86 only")


@x86
def test_set_ftz_sets_and_restores_the_callers_mxcsr():
    before = _kernels._mxcsr()
    try:
        was = _kernels._set_ftz(True)
        assert was == ((before & FTZ_DAZ) == FTZ_DAZ)
        assert _kernels._mxcsr() & FTZ_DAZ == FTZ_DAZ
        assert _kernels._set_ftz(False) is True
        assert _kernels._mxcsr() & FTZ_DAZ == 0
        assert _kernels._mxcsr() & ~FTZ_DAZ == before & ~FTZ_DAZ  # nothing else touched
    finally:
        _kernels._set_ftz((before & FTZ_DAZ) == FTZ_DAZ)
    assert _kernels._mxcsr() == before


@x86
def test_flush_to_zero_changes_numpy_subnormal_results():
    import numpy as np
    tiny = np.array([1e-39], np.float32)  # subnormal in float32
    before = _kernels._set_ftz(True)
    try:
        assert (tiny * np.float32(1.0))[0] == 0.0
    finally:
        _kernels._set_ftz(before)
    assert (tiny * np.float32(1.0))[0] != 0.0


def test_peak_probe_reports_a_rate_on_every_simd_path(simd):
    rate = _kernels._peak_probe(0.01)
    assert math.isfinite(rate) and rate > 0
    assert kernels.simd_path() == simd
