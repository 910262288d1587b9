# Run-time settings: threads, SIMD path, build flags (included by _kernels.pyx).

ISA_NAMES = ("generic", "avx2", "avx512")


def get_num_threads():
    """Number of threads the kernels use for large problems."""
    return mg_get_num_threads()


def set_num_threads(int n):
    """Set the number of threads the kernels use (at least 1)."""
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    mg_set_num_threads(n)


def _thread_backoff(enabled=None, *, first_wait_seconds=None, test_late_seconds=None,
                    test_off_seconds=None):
    """The kernels' backing off to one thread while their team's threads are
    kept off their cores (another library's threads, or another process,
    holding them; see csrc/mg_driver.c). With ``enabled`` given: turn it on
    or off, set the first wait (None or 0: 5 ms; doubled while the trouble
    recurs, 256 times as long at most) and end the current one; for tests,
    every team worker then sleeps ``test_late_seconds`` as it enters a team
    before its clocks start (it comes late) and ``test_off_seconds`` after
    (it is off its core). Returns {"enabled", "strikes", "waits",
    "serial_calls", "serial_for_s", "last_wait_s"}: the strikes, waits
    started and calls sent to one thread since the process started, the
    seconds of the current wait left and the length of the last wait."""
    cdef int64_t out[6]
    settings = {"first_wait_seconds": first_wait_seconds or 0.0,
                "test_late_seconds": test_late_seconds or 0.0,
                "test_off_seconds": test_off_seconds or 0.0}
    if enabled is None:
        if (first_wait_seconds, test_late_seconds, test_off_seconds) != (None, None, None):
            raise ValueError("_thread_backoff: the settings need enabled=True or False")
    else:
        for name, value in settings.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"_thread_backoff: {name} must be in [0, 1], got {value}")
        mg_backoff_set(bool(enabled), settings["first_wait_seconds"],
                       settings["test_late_seconds"], settings["test_off_seconds"])
    mg_backoff_stats(out)
    return {"enabled": bool(out[0]), "strikes": out[1], "waits": out[2],
            "serial_calls": out[3], "serial_for_s": out[4] / 1e9,
            "last_wait_s": out[5] / 1e9}


def openmp_enabled():
    """Whether the extension was built with OpenMP (threads)."""
    return bool(mg_openmp_enabled())


def build_flags():
    """The C compiler flags this extension was built with."""
    return mg_build_flags().decode()


def simd_path():
    """Name of the instruction set the kernels run on: avx512, avx2 or generic."""
    return ISA_NAMES[mg_isa_active()]


def simd_paths_available():
    """Instruction sets this CPU can run, best last."""
    return ISA_NAMES[:mg_isa_best() + 1]


def set_simd_path(str name):
    """Force an instruction set (for testing every path on one machine)."""
    if name not in ISA_NAMES:
        raise ValueError(f"set_simd_path: unknown path {name!r}; choose from {ISA_NAMES}")
    if mg_set_isa(ISA_NAMES.index(name)) != 0:
        raise ValueError(f"set_simd_path: this CPU cannot run {name!r}; "
                         f"available: {simd_paths_available()}")


def _mxcsr():
    """The calling thread's x86 MXCSR register (0 elsewhere): for tests that
    check that kernels leave the caller's floating-point state alone."""
    return mg_fp_state()
