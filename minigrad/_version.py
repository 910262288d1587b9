"""The one place minigrad's version is written (read by setuptools and minigrad)."""
__version__ = "0.2.0"
