"""Old name of ``minigrad.nn.functional``, kept for code written against it."""
from minigrad.nn.functional import *  # noqa: F403
from minigrad.nn.functional import __all__  # noqa: F401
