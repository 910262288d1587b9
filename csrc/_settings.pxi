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


def _thread_backoff(enabled=None, *, test_late_seconds=0.0):
    """The backing off to one thread while team workers start late (another
    library's threads, or another process, holding the cores; see
    csrc/mg_driver.c): with ``enabled`` given, turn it on or off and reset the
    current wait; ``test_late_seconds`` makes every worker sleep that long as
    it enters a team (for tests). Returns the counts since the process started:
    {"enabled", "late_teams", "waits", "serial_calls", "serial_for_s"}."""
    cdef int64_t out[5]
    if enabled is not None:
        if not 0.0 <= test_late_seconds <= 1.0:
            raise ValueError(f"_thread_backoff: test_late_seconds must be in [0, 1], "
                             f"got {test_late_seconds}")
        mg_backoff_set(bool(enabled), test_late_seconds)
    mg_backoff_stats(out)
    return {"enabled": bool(out[0]), "late_teams": out[1], "waits": out[2],
            "serial_calls": out[3], "serial_for_s": out[4] / 1e9}


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
