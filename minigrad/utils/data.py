"""PyTorch's ``torch.utils.data``, so that ``from torch.utils.data import
DataLoader, TensorDataset`` ports by changing the package name. DataLoader,
TensorDataset and default_collate are ``minigrad.data``'s (re-exported here);
this module adds the map-style dataset helpers: Dataset (the base class),
Subset, ConcatDataset and random_split."""
import abc
import bisect
import itertools
import math
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from minigrad.data import DataLoader, TensorDataset, default_collate
from minigrad.ops.creation import generator as global_generator

__all__ = ["ConcatDataset", "DataLoader", "Dataset", "Subset", "TensorDataset",
           "default_collate", "random_split"]

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co], metaclass=abc.ABCMeta):
    """The base of map-style datasets, as PyTorch's: a subclass defines
    ``__getitem__`` (and ``__len__``, which a DataLoader needs); ``a + b`` is
    their ConcatDataset. minigrad's TensorDataset counts as a Dataset."""

    def __getitem__(self, index: Any) -> T_co:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


Dataset.register(TensorDataset)


class Subset(Dataset):
    """The items of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """The items of several datasets, one after the other."""

    def __init__(self, datasets: Any) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        if which == len(self.datasets):
            raise IndexError(f"index {idx} is out of range for a dataset of {len(self)} items")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


def random_split(dataset: Any, lengths: Sequence[int | float],
                 generator: np.random.Generator | None = None) -> list[Subset]:
    """Split ``dataset`` at random into Subsets of the given ``lengths``, or of
    fractions of its length that sum to 1 (the remainder goes one item each to
    the first subsets, as in PyTorch). The order comes from ``generator`` (a
    NumPy Generator), else from minigrad's global one (see manual_seed)."""
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        if any(not 0 <= f <= 1 for f in lengths):
            raise ValueError(f"random_split: fractions must lie in [0, 1], got {list(lengths)}")
        sizes = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError(f"random_split: the lengths {list(lengths)} do not sum to the "
                         f"dataset's length {n}")
    rng = generator if generator is not None else global_generator()
    order = rng.permutation(n).tolist()
    return [Subset(dataset, order[end - size:end])
            for end, size in zip(itertools.accumulate(lengths), lengths, strict=True)]
