# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: embedsignature=True
"""Validated Python face of minigrad's C kernels (see minigrad.kernels).

The kernels listed in mg_kernels.def are reached through one wrapper per
kind (unary, binary, rows, rows_backward, loss) taking the kernel's id from
catalog(); the others have a wrapper each.

Every function checks its arguments once here -- types, dtypes, shapes,
layout, aliasing -- and then runs the C kernel without the GIL. Rules:

* Arrays are ``numpy.ndarray`` of float32 or float64 (native byte order,
  aligned), all of one dtype per call; anything else is a TypeError.
* ``matmul`` and ``linear`` accept any strided 2-D operands (transposed views,
  slices, negative or zero strides): packing reads them, no copy is made.
  Every other kernel needs C-contiguous inputs and raises ValueError otherwise.
* ``out=`` must be C-contiguous, writeable, of the exact shape and dtype; it is
  overwritten (``matmul(..., accumulate=True)`` adds into it instead). An
  elementwise ``out`` may be the input itself (in place); any other overlap
  between an output and an input is a ValueError.
"""
import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t

from mg_kernels cimport *

cnp.import_array()

include "_validate.pxi"
include "_settings.pxi"
include "_gemm.pxi"
include "_listed.pxi"
include "_own_shape.pxi"
include "_conv.pxi"
include "_bn.pxi"
include "_program.pxi"
