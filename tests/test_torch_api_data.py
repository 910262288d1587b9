"""``minigrad.utils.data`` as PyTorch's ``torch.utils.data``: the import lines of
PyTorch code port by changing the package name; Dataset, Subset, ConcatDataset
and random_split behave as PyTorch's (checked against it when installed)."""
import numpy as np
import pytest

import minigrad
import minigrad as torch_like
from minigrad.utils.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


def test_the_names_are_minigrads_own_reexported():
    assert DataLoader is minigrad.DataLoader is minigrad.data.DataLoader
    assert TensorDataset is minigrad.data.TensorDataset
    assert default_collate is minigrad.data.default_collate
    assert torch_like.utils.data.DataLoader is DataLoader  # torch.utils.data.DataLoader


class Squares(Dataset):
    """A map-style dataset as PyTorch code writes one."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return minigrad.tensor([float(i)]), i * i


def test_a_dataset_subclass_batches_through_the_dataloader():
    batches = list(DataLoader(Squares(5), batch_size=2))
    assert [b[1].tolist() for b in batches] == [[0, 1], [4, 9], [16]]
    assert batches[0][0].shape == (2, 1) and batches[0][0].dtype == np.float32


def test_tensor_dataset_is_a_dataset_and_the_base_needs_getitem():
    assert isinstance(TensorDataset(minigrad.zeros(3)), Dataset)
    assert not isinstance([1, 2], Dataset)
    with pytest.raises(NotImplementedError, match="__getitem__"):
        Dataset()[0]


def test_concat_dataset_indexes_across_its_parts():
    both = Squares(2) + Squares(3)
    assert isinstance(both, ConcatDataset) and len(both) == 5
    assert [both[i][1] for i in range(5)] == [0, 1, 0, 1, 4]
    assert both[-1][1] == 4 and both[-5][1] == 0
    with pytest.raises(IndexError):
        both[5]
    with pytest.raises(ValueError, match="exceed"):
        both[-6]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])


def test_subset_takes_the_given_indices_in_order():
    part = Subset(Squares(10), [7, 2, 5])
    assert len(part) == 3 and [part[i][1] for i in range(3)] == [49, 4, 25]
    assert [s[1] for s in part[[0, 2]]] == [49, 25]
    assert next(iter(DataLoader(part, batch_size=3)))[1].tolist() == [49, 4, 25]


@pytest.mark.parametrize(("n", "lengths", "sizes"), [
    (10, [3, 7], [3, 7]), (10, [0.33, 0.33, 0.34], [4, 3, 3]), (7, [0.5, 0.5], [4, 3]),
    (5, [1.0, 0.0], [5, 0])])
def test_random_split_sizes_and_a_partition(n, lengths, sizes):
    parts = random_split(range(n), lengths, generator=np.random.default_rng(0))
    assert [len(p) for p in parts] == sizes
    items = [p[i] for p in parts for i in range(len(p))]
    assert sorted(items) == list(range(n))


def test_random_split_repeats_with_a_seed_and_checks_lengths():
    def split(rng):
        return [list(p.indices) for p in random_split(range(20), [5, 15], generator=rng)]
    assert split(np.random.default_rng(4)) == split(np.random.default_rng(4))
    minigrad.manual_seed(3)
    first = [list(p.indices) for p in random_split(range(20), [5, 15])]
    minigrad.manual_seed(3)
    assert [list(p.indices) for p in random_split(range(20), [5, 15])] == first
    assert first != [list(range(5)), list(range(5, 20))]
    with pytest.raises(ValueError, match="do not sum"):
        random_split(range(10), [3, 3])


@pytest.mark.parametrize(("n", "lengths"), [(10, [0.33, 0.33, 0.34]), (7, [0.5, 0.5]),
                                            (11, [0.2, 0.3, 0.5]), (10, [4, 6])])
def test_random_split_sizes_against_pytorch(n, lengths):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: no oracle")
    theirs = torch.utils.data.random_split(range(n), lengths)
    ours = random_split(range(n), lengths)
    assert [len(p) for p in ours] == [len(p) for p in theirs]


def test_concat_against_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: no oracle")
    parts = [list(range(3)), list(range(10, 12)), list(range(20, 24))]
    theirs, ours = torch.utils.data.ConcatDataset(parts), ConcatDataset(parts)
    assert len(ours) == len(theirs) and ours.cumulative_sizes == theirs.cumulative_sizes
    assert [ours[i] for i in range(-9, 9)] == [theirs[i] for i in range(-9, 9)]
