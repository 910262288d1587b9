"""Mini-batches, as PyTorch's: DataLoader over any indexable dataset with the
default collate, TensorDataset, and fastai's DataLoaders (train and valid);
ScaledBytes, inputs kept as bytes and read as floats."""
import collections.abc
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from minigrad.ops.creation import generator as global_generator
from minigrad.tensor import Tensor

__all__ = ["ByteBatch", "DataLoader", "DataLoaders", "ScaledBytes", "TensorDataset",
           "default_collate"]

_STORAGE = Tensor.__dict__["_a"]  # the slot a Tensor keeps its array in
_NO_VALUES = np.empty(0)  # a ByteBatch's storage until its floats are made (then None)


def _from_bytes(raw, scale, dtype):
    """raw / scale in dtype: a true division, as the GEMM's conversion does."""
    return raw.astype(dtype) / dtype.type(scale)


def _scale_dtype(fn, scale, dtype):
    """(scale as a float, dtype) checked: a divisor the kernels take, float32 or float64."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{fn}: dtype must be float32 or float64, got {dtype}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: scale must be a number, got {type(scale).__name__}")
    if not 2.0 ** -100 <= scale <= 2.0 ** 100:
        raise ValueError(f"{fn}: scale must lie in [2**-100, 2**100], got {scale}")
    return float(scale), dtype


class ScaledBytes:
    """uint8 samples that read as ``data / scale`` in ``dtype`` (float32:
    what torchvision's ``ToTensor()`` gives with scale 255), kept as bytes.

    Indexing and ``numpy()`` give the floats. As the inputs of a DataLoader
    (``DataLoader((ScaledBytes(images), labels), 64)``, or in a
    TensorDataset) the batches are gathered as bytes, 4x fewer than float32,
    into ``ByteBatch`` tensors whose floats are made when first read. The
    Learner's compiled step reads the bytes instead: its first layer's
    products convert them while packing, with the same true division, so
    compiled and eager training give the same numbers."""

    def __init__(self, data: Any, scale: float = 255.0, dtype: Any = np.float32) -> None:
        data = np.asarray(data)
        if data.dtype != np.uint8:
            raise TypeError(f"ScaledBytes: data must have dtype uint8, got {data.dtype}")
        if data.ndim < 1:
            raise ValueError("ScaledBytes: data must have at least one dimension (the samples)")
        scale, dtype = _scale_dtype("ScaledBytes", scale, dtype)
        self._data, self._scale, self._dtype = np.ascontiguousarray(data), scale, dtype

    # read-only: checked once here, then trusted by every batch
    @property
    def data(self) -> np.ndarray:
        """The uint8 samples (C-contiguous)."""
        return self._data

    @property
    def scale(self) -> float:
        """The divisor: a sample reads as ``data / scale``."""
        return self._scale

    @property
    def dtype(self) -> np.dtype:
        """The floats' dtype (float32 or float64)."""
        return self._dtype

    @property
    def shape(self) -> tuple[int, ...]:
        """The samples' shape (that of the bytes and of the floats)."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Any) -> np.ndarray:
        return _from_bytes(np.asarray(self.data[index]), self.scale, self.dtype)

    def numpy(self) -> np.ndarray:
        """All samples as floats (a new array)."""
        return _from_bytes(self.data, self.scale, self.dtype)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def reshape(self, *shape: Any) -> "ScaledBytes":
        """The same samples with the bytes reshaped (numpy's reshape)."""
        return ScaledBytes(self.data.reshape(*shape), self.scale, self.dtype)

    def batch(self, rows: Any) -> "ByteBatch":
        """The samples at ``rows`` (a slice or indices) as a ByteBatch."""
        raw = self.data[rows] if isinstance(rows, slice) else self.data.take(rows, axis=0)
        return ByteBatch._checked(raw, self.scale, self.dtype)

    def __repr__(self) -> str:
        return f"ScaledBytes(shape={self.shape}, scale={self.scale}, dtype={self.dtype})"


class ByteBatch(Tensor):
    """A batch of ScaledBytes: a tensor of ``bytes / scale`` (``dtype``)
    whose values are made when first read; ``bytes`` and ``scale`` are what
    the compiled training step reads instead."""

    __slots__ = ("bytes", "scale", "_dtype")

    def __init__(self, raw: np.ndarray, scale: float, dtype: Any) -> None:
        if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8:
            raise TypeError(f"ByteBatch: raw must be a numpy.ndarray of dtype uint8, got "
                            f"{getattr(raw, 'dtype', type(raw).__name__)}")
        self.bytes, (self.scale, self._dtype) = raw, _scale_dtype("ByteBatch", scale, dtype)
        super().__init__(_NO_VALUES)
        _STORAGE.__set__(self, None)

    @classmethod
    def _checked(cls, raw: np.ndarray, scale: float, dtype: np.dtype) -> "ByteBatch":
        """A ByteBatch of uint8 raw with a scale and dtype ScaledBytes checked
        (the DataLoader's batches: no checks again)."""
        b = cls.__new__(cls)
        b.bytes, b.scale, b._dtype = raw, scale, dtype
        Tensor.__init__(b, _NO_VALUES)
        _STORAGE.__set__(b, None)
        return b

    @property  # type: ignore[override]
    def _a(self) -> np.ndarray:
        a = _STORAGE.__get__(self)
        if a is None:
            a = _from_bytes(self.bytes, self.scale, self._dtype)
            _STORAGE.__set__(self, a)
        return a

    @_a.setter
    def _a(self, value: np.ndarray) -> None:
        _STORAGE.__set__(self, value)

    def _made(self) -> np.ndarray | None:
        """The floats if made (or assigned), else None: then the bytes are the values."""
        return _STORAGE.__get__(self)

    @property
    def shape(self) -> tuple[int, ...]:
        """The sizes of the dimensions (the bytes' shape until the storage is replaced)."""
        a = self._made()
        return self.bytes.shape if a is None else a.shape

    @property
    def dtype(self) -> np.dtype:
        """The floats' dtype."""
        a = self._made()
        return self._dtype if a is None else a.dtype

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return len(self.shape)

    def __len__(self) -> int:
        return len(self.bytes) if self._made() is None else super().__len__()


class TensorDataset:
    """Items ``(t0[i], t1[i], ...)`` of equally long tensors or arrays."""

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.arrays = [t if isinstance(t, ScaledBytes) else t.numpy() if isinstance(t, Tensor)
                       else np.asarray(t) for t in tensors]
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            raise ValueError(f"TensorDataset: tensors differ in length: "
                             f"{[len(a) for a in self.arrays]}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, i: Any) -> tuple[Tensor, ...]:
        return tuple(Tensor(a[i]) for a in self.arrays)


def _rows(a, rows):
    """The batch of array a (or ScaledBytes) at rows, a slice or sorted indices."""
    if isinstance(a, ScaledBytes):
        return a.batch(rows)
    return Tensor(a[rows] if isinstance(rows, slice) else a.take(rows, axis=0))


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
            isinstance(d, (np.ndarray, Tensor, ScaledBytes)) for d in dataset):
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
        if order is not None and self._arrays is not None:
            # each batch's rows in memory order, for np.take: the same batch, ~35%
            # faster; sorted here for the whole pass rather than batch by batch
            full = n // bs * bs
            order[:full].reshape(-1, bs).sort(axis=1)
            order[full:].sort()
        for start in range(0, len(self) * bs, bs):
            stop = min(start + bs, n)
            if self._arrays is not None:
                rows = slice(start, stop) if order is None else order[start:stop]
                yield [_rows(a, rows) for a in self._arrays]
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
