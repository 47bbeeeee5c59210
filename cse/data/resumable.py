"""A training DataLoader that Lightning checkpoints mid-epoch, so a resumed run sees exactly the batches still due.

Lightning saves the `state_dict()` of a training DataLoader that has one in every checkpoint (the fit loop's
`combined_loader` state) and hands it back through `load_state_dict` before the first batch of the resumed run (when
the loader was built before the restore, `cse.callbacks.loader_position` hands it back instead). The
state here is the order's seed, the epoch and the number of batches given to the training loop in it. Resuming
restores the seed and skips that many batches of the sampler's indices, so no skipped example is read, collated or
masked, and no random number is drawn for it.

This is exact because the sampler's order is a function of the seed and of the epoch that Lightning sets through
`set_epoch`, never of a global random state. The seed travels with the checkpoint: a resumed run whose
`seed_everything` is drawn anew (LightningCLI's default when none is configured) continues the same order.
"""

from collections.abc import Iterator, Sized
from itertools import islice
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

INDEX_CHUNK = 65536  # indices listed at a time


class ResumableSampler(DistributedSampler):
    """This process's share of a seeded shuffle of the epoch (torch's `DistributedSampler`), from position `start` on.

    The order is a permutation seeded by seed + epoch; under DDP, process `rank` of `num_replicas` takes every
    `num_replicas`-th index of it, so the processes' batches are disjoint. Being a `DistributedSampler`, Lightning
    uses it as it is under DDP. Any other sampler it wraps in a `DistributedSamplerWrapper`, which deals the
    wrapped order out among the processes index by index: that failed at the first epoch with this loader's
    position skipping, and it would mix the rows of several duplicate-free batches into one step.

    Args:
        dataset: a sized dataset.
        num_replicas: training processes (`trainer.world_size`).
        rank: this process's global rank.
        seed: base seed of the shuffle; the epoch is added to it.
    """

    def __init__(self, dataset: Sized, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0  # position in this process's indices of the epoch where the next pass begins

    def __iter__(self) -> Iterator[int]:
        return islice(self.epoch_indices(), self.start, None)

    def epoch_indices(self) -> Iterator[int]:
        """This process's indices of the whole current epoch: torch's `DistributedSampler.__iter__` (shuffled, last
        indices dropped), kept as a tensor and listed in chunks, so a corpus of 100M rows does not become a list of
        100M Python ints (3.6 GB) at every epoch start."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        own = torch.randperm(len(self.dataset), generator=generator)[: self.total_size][self.rank :: self.num_replicas]
        for start in range(0, len(own), INDEX_CHUNK):
            yield from own[start : start + INDEX_CHUNK].tolist()


class ResumableDataLoader(DataLoader):
    """A `DataLoader` whose position in the epoch is saved in Lightning checkpoints and restored on resume.

    Batches are counted as the training loop takes them from this loader (in the main process), so worker
    processes that read ahead do not move the position. Its length stays the full epoch's, as Lightning expects.

    Args:
        dataset: a map-style dataset.
        batch_size: examples per batch.
        sampler: the order of one epoch.
        **kwargs: further `DataLoader` arguments (`drop_last`, `collate_fn`, `num_workers`, `generator`, ...).
    """

    def __init__(self, dataset: Dataset, batch_size: int, sampler: ResumableSampler, **kwargs: Any) -> None:
        if not isinstance(sampler, ResumableSampler):  # any other sampler would silently restart the epoch
            raise TypeError(f"sampler must be a ResumableSampler, got {type(sampler).__name__}")
        super().__init__(dataset, batch_size, sampler=sampler, **kwargs)
        self._taken = 0  # batches of the current epoch handed to the training loop
        self._resume_at: dict[str, int] | None = None

    def __iter__(self) -> Iterator[Any]:
        # A generator: this runs at the first `next`, after Lightning has called `set_epoch` for the epoch.
        resume, self._resume_at = self._resume_at, None
        self._taken = resume["batches"] if resume and resume["epoch"] == self.sampler.epoch else 0
        self.sampler.start = self._taken * self.batch_size
        for batch in super().__iter__():
            self._taken += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The order's seed, the epoch and how many of its batches the training loop has taken."""
        return {"seed": self.sampler.seed, "epoch": self.sampler.epoch, "batches": self._taken}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Continue the saved order: its seed, and the next pass at the saved position if it is a pass over the saved
        epoch (else at its beginning). A state without a seed (cse 0.1 checkpoints) keeps the configured one."""
        self.sampler.seed = int(state_dict.get("seed", self.sampler.seed))
        self._resume_at = {"epoch": int(state_dict["epoch"]), "batches": int(state_dict["batches"])}
