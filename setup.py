"""Build of minigrad's one C extension, minigrad._kernels (metadata: pyproject.toml).

The C code needs a GCC-compatible compiler (GCC or Clang): it uses vector extensions
(`vector_size`), `#pragma GCC target`, `__builtin_cpu_supports` (x86) and `__atomic`
builtins, and C11 `aligned_alloc`. Any CPU works (a portable vector path; x86-64 also
gets AVX2 and AVX-512 paths chosen at run time). OpenMP is used where the compiler has
it; without it (Apple's Clang) the kernels run on one thread.
"""
import os
import sys
import tempfile
import textwrap

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, LinkError, PlatformError

SOURCES = ["csrc/_kernels.pyx", "csrc/mg_driver.c", "csrc/mg_isa.c"]

if sys.platform == "win32":
    raise PlatformError(
        "minigrad's C kernels need GCC or Clang and a C11 C library (aligned_alloc); "
        "MSVC and MinGW are not supported. On Windows use WSL.")

# Each program must compile (and link) with the given flags.
GNU_C_PROBE = textwrap.dedent("""\
    #if !defined(__GNUC__)
    #error "not a GCC-compatible compiler"
    #endif
    #include <stdlib.h>
    typedef float v4 __attribute__((vector_size(16)));
    int main(void)
    {
        v4 a = {1, 2, 3, 4};
        int one = 1;
        void *p = aligned_alloc(64, 64);
        free(p);
        a = a * a;
        return (int)a[1] - 4 + __atomic_load_n(&one, __ATOMIC_RELAXED) - 1;
    }
    """)
OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n"


def _builds(compiler, source, cflags, ldflags):
    """Whether `source` compiles and links with these flags."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=cflags)
            compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=ldflags)
        except (CompileError, LinkError):
            return False
    return True


def compile_args(compiler):
    """(compile flags, link flags) for this compiler; raises if it cannot build minigrad."""
    if compiler.compiler_type != "unix" or not _builds(compiler, GNU_C_PROBE, [], []):
        raise PlatformError(
            f"minigrad's C kernels need GCC or Clang (C11 with GNU vector extensions); "
            f"the compiler here ({' '.join(getattr(compiler, 'compiler_so', None) or [])}"
            f" of type {compiler.compiler_type}) cannot build them. Set CC to gcc or clang.")
    # MINIGRAD_SANITIZE=1 builds with AddressSanitizer and UBSan (see README).
    if os.environ.get("MINIGRAD_SANITIZE"):
        args = ["-O1", "-g", "-fno-omit-frame-pointer", "-fopenmp",
                "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
        return args, [a for a in args if a.startswith(("-fopenmp", "-fsanitize"))]
    # -g0 drops the debug info that Python's own CFLAGS (-g) would put in the wheel.
    args = ["-O3", "-g0", "-ffp-contract=fast", "-fno-math-errno", "-fvisibility=hidden"]
    if _builds(compiler, OPENMP_PROBE, ["-fopenmp"], ["-fopenmp"]):
        return args + ["-fopenmp"], ["-fopenmp"]
    print("warning: this compiler has no OpenMP (-fopenmp); minigrad's kernels will run "
          "on one thread", file=sys.stderr)
    return args + ["-fopenmp-simd"], []


class BuildExt(build_ext):
    """Checks the compiler, picks the flags, then cythonizes and builds."""

    def build_extensions(self):
        from Cython.Build import cythonize

        cflags, ldflags = compile_args(self.compiler)
        # Objects of another flag set (a MINIGRAD_SANITIZE build in this tree)
        # are not reused: a plain rebuild would link them into a plain build.
        stamp = os.path.join(self.build_temp, "minigrad-flags.txt")
        flags = " ".join(cflags + ["|"] + ldflags)
        try:
            with open(stamp) as f:
                stale = f.read() != flags
        except OSError:
            stale = True
        if stale:
            self.force = self.compiler.force = True
        for ext in self.extensions:
            ext.extra_compile_args = cflags
            ext.extra_link_args = ldflags
            # reported by `minigrad info`
            ext.define_macros.append(("MG_BUILD_FLAGS", '"' + " ".join(cflags) + '"'))
        generated = cythonize(self.extensions, include_path=["csrc"],
                              compiler_directives={"language_level": 3})
        for ext, c_ext in zip(self.extensions, generated, strict=True):
            ext.sources = c_ext.sources  # .pyx -> generated .c
        super().build_extensions()
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as f:
            f.write(flags)


extension = Extension(
    "minigrad._kernels",
    sources=SOURCES,
    include_dirs=["csrc", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
    depends=[os.path.join("csrc", f) for f in sorted(os.listdir("csrc"))
             if f.endswith((".h", ".def", ".pxd", ".pxi"))],
)

setup(ext_modules=[extension], cmdclass={"build_ext": BuildExt})
