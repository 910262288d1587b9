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
