"""Build of minigrad's one C extension, minigrad._kernels (metadata: pyproject.toml)."""
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

SOURCES = ["csrc/_kernels.pyx", "csrc/mg_driver.c", "csrc/mg_isa.c"]


def compile_args():
    if sys.platform == "win32":
        return ["/O2", "/openmp"], []
    args = ["-O3", "-ffp-contract=fast", "-fno-math-errno", "-fopenmp", "-fvisibility=hidden"]
    # MINIGRAD_SANITIZE=1 builds with AddressSanitizer and UBSan (see README).
    if os.environ.get("MINIGRAD_SANITIZE"):
        args = ["-O1", "-g", "-fno-omit-frame-pointer", "-fopenmp",
                "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    return args, [a for a in args if a.startswith(("-fopenmp", "-fsanitize"))]


cflags, ldflags = compile_args()
extension = Extension(
    "minigrad._kernels",
    sources=SOURCES,
    include_dirs=["csrc", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
                   ("MG_BUILD_FLAGS", '"' + " ".join(cflags) + '"')],  # for `minigrad info`
    extra_compile_args=cflags,
    extra_link_args=ldflags,
    depends=[os.path.join("csrc", f) for f in sorted(os.listdir("csrc"))
             if f.endswith((".h", ".def", ".pxd", ".pxi"))],
)

setup(
    ext_modules=cythonize([extension], include_path=["csrc"],
                          compiler_directives={"language_level": 3}),
)
