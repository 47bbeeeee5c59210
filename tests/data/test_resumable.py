"""`ResumableDataLoader` against the batches of an uninterrupted pass over the same sampler and epoch."""

import pytest
import torch
from torch.utils.data import Dataset, DistributedSampler

from cse.data.no_duplicates_sampler import NoDuplicatesSampler
from cse.data.resumable import ResumableDataLoader, ResumableSampler

SIZE, BATCH = 40, 4


class CountingDataset(Dataset):
    """Items are their own index; counts reads, to show skipped batches are never read."""

    def __init__(self) -> None:
        self.reads = 0

    def __len__(self) -> int:
        return SIZE

    def __getitem__(self, index: int) -> int:
        self.reads += 1
        return index


def _loader(dataset: CountingDataset, kind: str, seed: int = 3, **options) -> ResumableDataLoader:
    if kind == "shuffle":
        sampler = ResumableSampler(dataset, seed=seed)
    else:  # rows 2i and 2i + 1 share a text, so batches are built around the duplicates
        sampler = NoDuplicatesSampler([[index // 2] for index in range(SIZE)], BATCH, seed=seed)
    return ResumableDataLoader(dataset, BATCH, sampler=sampler, drop_last=True, **options)


def _epoch(loader: ResumableDataLoader, epoch: int) -> list[list[int]]:
    loader.sampler.set_epoch(epoch)  # what Lightning does at the start of each epoch
    return [batch.tolist() for batch in loader]


@pytest.mark.parametrize("kind", ["shuffle", "no_duplicates"])
@pytest.mark.parametrize("taken", [0, 3, 9])
def test_resumed_loader_gives_exactly_the_batches_not_yet_taken(kind, taken):
    reference = _epoch(_loader(CountingDataset(), kind), epoch=1)
    assert len(reference) == 10 and reference != _epoch(_loader(CountingDataset(), kind), epoch=2)

    interrupted = _loader(CountingDataset(), kind)
    interrupted.sampler.set_epoch(1)
    iterator = iter(interrupted)
    seen = [next(iterator).tolist() for _ in range(taken)]
    state = interrupted.state_dict()
    assert state == {"seed": 3, "epoch": 1, "batches": taken}

    dataset = CountingDataset()
    resumed = _loader(dataset, kind, seed=99)  # a resumed run whose seed_everything was drawn anew
    assert _epoch(resumed, epoch=1) != reference
    dataset.reads = 0
    resumed.load_state_dict(state)
    rest = _epoch(resumed, epoch=1)
    assert seen + rest == reference
    assert dataset.reads == (10 - taken) * BATCH, "skipped batches must not be read"
    assert len(resumed) == 10, "Lightning counts the whole epoch"
    assert resumed.state_dict() == {"seed": 3, "epoch": 1, "batches": 10}
    assert _epoch(resumed, epoch=2) == _epoch(_loader(CountingDataset(), kind), epoch=2), "the next epoch is whole"


def test_state_of_another_epoch_starts_at_the_beginning():
    loader = _loader(CountingDataset(), "shuffle")
    loader.load_state_dict({"epoch": 0, "batches": 10})  # saved at the end of epoch 0; Lightning goes on to epoch 1
    assert _epoch(loader, epoch=1) == _epoch(_loader(CountingDataset(), "shuffle"), epoch=1)


def test_position_counts_batches_taken_not_read_ahead_by_workers():
    loader = _loader(CountingDataset(), "shuffle", num_workers=2)
    iterator = iter(loader)
    first = [next(iterator).tolist() for _ in range(2)]  # the workers have prefetched several more by now
    assert loader.state_dict() == {"seed": 3, "epoch": 0, "batches": 2}
    resumed = _loader(CountingDataset(), "shuffle", num_workers=2)
    resumed.load_state_dict(loader.state_dict())
    assert first + _epoch(resumed, epoch=0) == _epoch(_loader(CountingDataset(), "shuffle"), epoch=0)


def test_iterating_draws_nothing_from_the_global_generator():
    loader = _loader(CountingDataset(), "shuffle", generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _epoch(loader, epoch=0)
    assert torch.equal(torch.rand(3), expected)


def test_processes_take_disjoint_shares_of_one_seeded_order():
    samplers = [ResumableSampler(CountingDataset(), num_replicas=3, rank=rank, seed=3) for rank in range(3)]
    for sampler in samplers:
        sampler.set_epoch(1)
    shares = [list(sampler) for sampler in samplers]
    assert all(len(share) == SIZE // 3 for share in shares)
    assert len(set().union(*shares)) == 3 * (SIZE // 3), "an example went to two processes"
    generator = torch.Generator().manual_seed(3 + 1)  # seed + epoch
    permutation = torch.randperm(SIZE, generator=generator).tolist()
    assert shares == [permutation[rank : 3 * (SIZE // 3) : 3] for rank in range(3)]


def test_a_sampler_that_cannot_start_mid_epoch_is_refused():
    with pytest.raises(TypeError, match="ResumableSampler, got DistributedSampler"):
        ResumableDataLoader(CountingDataset(), BATCH, sampler=DistributedSampler(CountingDataset(), 1, 0))


@pytest.mark.parametrize(("size", "replicas", "rank"), [(100, 1, 0), (101, 2, 1), (150_001, 3, 2)])
def test_order_is_torchs_distributed_sampler_order(size, replicas, rank, monkeypatch):
    """Listed from a tensor in chunks (two and more of them here), the order is still `DistributedSampler`'s."""
    monkeypatch.setattr("cse.data.resumable.INDEX_CHUNK", 64)
    for epoch in (0, 3):
        ours = ResumableSampler(range(size), replicas, rank, seed=7)
        torchs = DistributedSampler(range(size), replicas, rank, shuffle=True, seed=7, drop_last=True)
        ours.set_epoch(epoch)
        torchs.set_epoch(epoch)
        assert list(ours) == list(torchs) and len(ours) == len(torchs)
