"""Shape operations: reshape/view, flatten/unflatten, squeeze/unsqueeze,
transpose/permute, expand, flip, repeat, split/chunk, cat/stack, pad."""
import numpy as np

from minigrad.ops.promote import unbroadcast
from minigrad.ops.reductions import dims
from minigrad.tensor import as_tensor, record


def _sizes(shape):
    """reshape(2, 3) and reshape((2, 3)) alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


def reshape(a, *shape):
    """The same elements in a new shape (one size may be -1)."""
    old = a.shape
    return record(a._a.reshape(_sizes(shape)), (a,), lambda g: (g.reshape(old),), "reshape",
                  view_of=a)


def flatten(a, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one."""
    if a.ndim == 0:
        return reshape(a, 1)
    s, e = dims(start_dim, a.ndim)[0], dims(end_dim, a.ndim)[0]
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(a, *a.shape[:s], -1, *a.shape[e + 1:])


def unflatten(a, dim, sizes):
    """Split dim into ``sizes``."""
    d = dims(dim, a.ndim)[0]
    return reshape(a, *a.shape[:d], *sizes, *a.shape[d + 1:])


def squeeze(a, dim=None):
    """Drop dims of size 1 (all, or those in ``dim`` that have size 1)."""
    axes = dims(dim, a.ndim)
    return reshape(a, *[n for i, n in enumerate(a.shape) if not (i in axes and n == 1)])


def unsqueeze(a, dim):
    """Insert a dim of size 1 at ``dim`` (-1 appends)."""
    n = a.ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"unsqueeze: dim {dim} out of range for {n - 1} dims")
    shape = list(a.shape)
    shape.insert(dim % n, 1)
    return reshape(a, *shape)


def permute(a, *order):
    """Reorder dims: ``order`` is the full new order (negative dims allowed)."""
    order = _sizes(order)
    if len(order) != a.ndim:
        raise ValueError(f"permute: got {len(order)} dims for a tensor with {a.ndim}")
    order = tuple(d % a.ndim for d in order) if a.ndim else ()
    if sorted(order) != list(range(a.ndim)):
        raise ValueError(f"permute: {order} is not a permutation of the dims")
    inverse = tuple(np.argsort(order))
    return record(a._a.transpose(order), (a,), lambda g: (g.transpose(inverse),), "permute",
                  view_of=a)


def transpose(a, dim0, dim1):
    """Swap two dims (PyTorch's meaning; permute takes a full order)."""
    if a.ndim == 0:
        return a
    order = list(range(a.ndim))
    d0, d1 = dims(dim0, a.ndim)[0], dims(dim1, a.ndim)[0]
    order[d0], order[d1] = order[d1], order[d0]
    return permute(a, *order)


def t(a):
    """Transpose of a tensor with at most two dims."""
    if a.ndim > 2:
        raise ValueError(f"t() expects at most 2 dims, got {a.ndim}; use transpose or permute")
    return permute(a, *reversed(range(a.ndim)))


def T(a):
    """All dims reversed."""
    return permute(a, *reversed(range(a.ndim)))


def expand(a, *sizes):
    """Broadcast to ``sizes`` (-1 keeps a dim); gradients sum back."""
    sizes = _sizes(sizes)
    lead = len(sizes) - a.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes for a tensor with {a.ndim} dims")
    shape = tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
    old = a.shape
    return record(np.broadcast_to(a._a, shape), (a,), lambda g: (unbroadcast(g, old),),
                  "expand", view_of=a)


def expand_as(a, other):
    """expand to other's shape."""
    return expand(a, *other.shape)


def flip(a, *dim):
    """Reverse the order of elements along the given dims."""
    axes = dims(_sizes(dim), a.ndim)
    return record(np.flip(a._a, axes).copy(), (a,), lambda g: (np.flip(g, axes),), "flip")


def repeat(a, *sizes):
    """Tile ``sizes`` times along each dim (leading sizes add dims), as torch's repeat."""
    sizes = _sizes(sizes)
    if len(sizes) < a.ndim:
        raise ValueError(f"repeat: {len(sizes)} sizes for a tensor with {a.ndim} dims")
    src = (1,) * (len(sizes) - a.ndim) + a.shape
    old = a.shape

    def backward(g):
        split = [x for n, r in zip(src, sizes, strict=True) for x in (r, n)]
        g = g.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return (g.reshape(old),)
    return record(np.tile(a._a.reshape(src), sizes), (a,), backward, "repeat")


def cat(tensors, dim=0):
    """Concatenate along ``dim``."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    axis = dims(dim, tensors[0].ndim)[0]
    sizes = np.cumsum([t.shape[axis] for t in tensors])[:-1]
    return record(np.concatenate([t._a for t in tensors], axis=axis), tuple(tensors),
                  lambda g: tuple(np.split(g, sizes, axis=axis)), "cat")


def stack(tensors, dim=0):
    """Stack along a new dim ``dim``."""
    return cat([unsqueeze(as_tensor(t), dim) for t in tensors], dim)


def split(a, split_size_or_sections, dim=0):
    """Pieces of size ``split_size`` (the last may be smaller) or of the listed sizes."""
    axis = dims(dim, a.ndim)[0]
    n = a.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: size must be positive, got {step}")
        bounds = list(range(0, n, step)) + [n]
    else:
        if sum(split_size_or_sections) != n:
            raise ValueError(f"split: sizes {split_size_or_sections} do not add up to {n}")
        bounds = [0, *np.cumsum(split_size_or_sections).tolist()]
    index = [slice(None)] * a.ndim
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        index[axis] = slice(lo, hi)
        out.append(a[tuple(index)])
    return tuple(out)


def chunk(a, chunks, dim=0):
    """At most ``chunks`` pieces of equal size (the last may be smaller)."""
    n = a.shape[dims(dim, a.ndim)[0]]
    return split(a, max(1, -(-n // chunks)), dim)


def pad(a, pad, mode="constant", value=0.0):
    """Pad the last dims: ``pad`` = (left, right, top, bottom, ...) as in F.pad
    (negative values crop)."""
    if len(pad) % 2 or len(pad) // 2 > a.ndim:
        raise ValueError(f"pad: expected pairs for at most {a.ndim} dims, got {pad}")
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is implemented, got {mode!r}")
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    grow = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    crop = tuple(slice(-min(lo, 0), n + max(lo, 0) + max(hi, 0) + min(hi, 0))
                 for (lo, hi), n in zip(widths, a.shape, strict=True))
    out = np.pad(a._a, grow, constant_values=value)[crop]
    padded = [n + lo + hi for (lo, hi), n in zip(grow, a.shape, strict=True)]
    inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(grow, a.shape, strict=True))

    def backward(g):
        full = np.zeros(padded, g.dtype)
        full[crop] = g
        return (full[inner],)
    return record(out, (a,), backward, "pad")


def contiguous(a):
    """The tensor itself (storage layout is NumPy's concern here)."""
    return a


METHODS = {"reshape": reshape, "view": reshape, "flatten": flatten, "unflatten": unflatten,
           "squeeze": squeeze, "unsqueeze": unsqueeze, "permute": permute,
           "transpose": transpose, "t": t, "expand": expand, "expand_as": expand_as,
           "flip": flip, "repeat": repeat, "split": split, "chunk": chunk,
           "contiguous": contiguous, "view_as": lambda a, o: reshape(a, *o.shape),
           "reshape_as": lambda a, o: reshape(a, *o.shape)}
PROPERTIES = {"T": T, "mT": lambda a: transpose(a, -2, -1)}
FUNCTIONS = [reshape, flatten, unflatten, squeeze, unsqueeze, permute, transpose, t, expand,
             flip, repeat, cat, stack, split, chunk, pad]
__all__ = [fn.__name__ for fn in FUNCTIONS]
