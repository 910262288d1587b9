"""Where the real MNIST test set lies (../shared/data/mnist beside the
checkout, or $MINIGRAD_MNIST_DIR)."""
import os
import pathlib

import pytest

MNIST_DIR = pathlib.Path(os.environ.get(
    "MINIGRAD_MNIST_DIR",
    pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
IMAGES = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
LABELS = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"

needs_mnist = pytest.mark.skipif(not IMAGES.exists(),
                                 reason=f"real MNIST files not found in {MNIST_DIR}")
