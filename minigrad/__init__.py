"""minigrad: a small deep-learning framework with Cython/C kernels."""
from minigrad import kernels
from minigrad.kernels import get_num_threads, set_num_threads

__version__ = "0.1.0"
__all__ = ["kernels", "get_num_threads", "set_num_threads", "__version__"]
