"""Mini-batches, as PyTorch's: DataLoader over any indexable dataset with the
default collate, TensorDataset, and fastai's DataLoaders (train and valid)."""
import collections.abc
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from minigrad.ops.creation import generator as global_generator
from minigrad.tensor import Tensor

__all__ = ["DataLoader", "DataLoaders", "TensorDataset", "default_collate"]


class TensorDataset:
    """Items ``(t0[i], t1[i], ...)`` of equally long tensors or arrays."""

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.arrays = [t.numpy() if isinstance(t, Tensor) else np.asarray(t) for t in tensors]
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            raise ValueError(f"TensorDataset: tensors differ in length: "
                             f"{[len(a) for a in self.arrays]}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, i: Any) -> tuple[Tensor, ...]:
        return tuple(Tensor(a[i]) for a in self.arrays)


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, as PyTorch's ``default_collate``:
    tensors and arrays stack into a tensor; Python floats give float64, ints
    int64, bools bool; strings stay as given; dicts collate per key; tuples and
    lists collate per position into a list."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor(np.stack([b.numpy() for b in batch]))
    if isinstance(elem, (np.ndarray, np.generic)):
        if isinstance(elem, np.ndarray) and elem.dtype.kind in "USO":
            raise TypeError(f"default_collate: arrays of {elem.dtype} cannot be collated")
        return Tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=bool))
    if isinstance(elem, int):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(b) != size for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(samples) for samples in zip(*batch, strict=True)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
            return type(elem)(*columns)
        return columns
    raise TypeError(f"default_collate: batch must contain tensors, arrays, numbers, "
                    f"strings, dicts or sequences; found {type(elem).__name__}")


def _array_pair(dataset):
    """(xs, ys) for the fast path: a pair of arrays/tensors or a TensorDataset."""
    if isinstance(dataset, TensorDataset):
        return dataset.arrays
    if isinstance(dataset, tuple) and len(dataset) == 2 and all(
            isinstance(d, (np.ndarray, Tensor)) for d in dataset):
        xs, ys = (d.numpy() if isinstance(d, Tensor) else d for d in dataset)
        if len(xs) != len(ys):
            raise ValueError(f"inputs and targets differ in length: {len(xs)} and {len(ys)}")
        return [xs, ys]
    return None


class DataLoader:
    """Batches of ``batch_size`` samples of ``dataset``, as PyTorch's.

    ``dataset`` is anything with ``len`` and integer indexing (a list, a
    ``range``, a TensorDataset...); each batch is ``collate_fn`` (default:
    ``default_collate``) of its samples. minigrad also takes a pair of equally
    long arrays/tensors ``(inputs, targets)``: its batches are gathered from
    the arrays directly (fast) as ``[inputs, targets]`` tensors.

    ``shuffle=True`` draws a new order every pass from ``generator`` (a
    ``numpy.random.Generator``), from one seeded with ``seed``, or, with
    neither, from minigrad's global generator as PyTorch does, so runs repeat
    after ``minigrad.manual_seed``. ``drop_last`` drops a final short batch."""

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn: Callable[[list], Any] | None = None,
                 generator: np.random.Generator | None = None, seed: int | None = None) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if generator is not None and seed is not None:
            raise ValueError("give a generator or a seed, not both")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.generator = (generator if generator is not None
                          else np.random.default_rng(seed) if seed is not None else None)
        self._arrays = _array_pair(dataset)
        if self._arrays is not None and collate_fn is not None:
            self.dataset, self._arrays = TensorDataset(*self._arrays), None
        if self._arrays is None:
            if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
                raise TypeError(f"DataLoader needs a dataset with __len__ and __getitem__, "
                                f"got {type(dataset).__name__}")
        self.collate_fn = collate_fn or default_collate

    @property
    def n(self) -> int:
        """The number of samples."""
        return len(self._arrays[0]) if self._arrays is not None else len(self.dataset)

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[Any]:
        n, bs = self.n, self.batch_size
        rng = self.generator if self.generator is not None else global_generator()
        order = rng.permutation(n) if self.shuffle else None
        for start in range(0, len(self) * bs, bs):
            stop = min(start + bs, n)
            if self._arrays is not None:
                if order is None:
                    yield [Tensor(a[start:stop]) for a in self._arrays]
                else:
                    # rows in memory order, by np.take: the same batch, gathered ~35% faster
                    idx = np.sort(order[start:stop])
                    yield [Tensor(np.take(a, idx, axis=0)) for a in self._arrays]
            else:
                rows = range(start, stop) if order is None else order[start:stop].tolist()
                yield self.collate_fn([self.dataset[i] for i in rows])


class DataLoaders:
    """fastai's pair of loaders: ``dls.train`` and ``dls.valid`` (also
    ``dls[0]``, ``dls[1]``)."""

    def __init__(self, *loaders: DataLoader) -> None:
        if len(loaders) < 2:
            raise ValueError("DataLoaders needs a train and a valid loader")
        self.loaders = list(loaders)

    @property
    def train(self) -> DataLoader:
        """The training loader (the first)."""
        return self.loaders[0]

    @property
    def valid(self) -> DataLoader:
        """The validation loader (the second)."""
        return self.loaders[1]

    def __getitem__(self, i: int) -> DataLoader:
        return self.loaders[i]

    def __len__(self) -> int:
        return len(self.loaders)

    @classmethod
    def from_arrays(cls, x_train: Any, y_train: Any, x_valid: Any, y_valid: Any,
                    batch_size: int = 64, seed: int | None = None) -> "DataLoaders":
        """Shuffled training batches, valid batches in order."""
        return cls(DataLoader((x_train, y_train), batch_size, shuffle=True, seed=seed),
                   DataLoader((x_valid, y_valid), batch_size))
