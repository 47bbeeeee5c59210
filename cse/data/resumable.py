"""A training DataLoader that Lightning checkpoints mid-epoch, so a resumed run sees exactly the batches still due.

Lightning saves the `state_dict()` of a training DataLoader that has one in every checkpoint (the fit loop's
`combined_loader` state) and hands it back through `load_state_dict` before the first batch of the resumed run. The
state here is the epoch and the number of batches given to the training loop in it. Resuming skips that many batches
of the sampler's indices, so no skipped example is read, collated or masked, and no random number is drawn for it.

This is exact when the sampler's order is a function of the epoch that Lightning sets through `set_epoch`, never of
a global random state: torch's `DistributedSampler` (a permutation seeded by seed + epoch) and `NoDuplicatesSampler`.
"""

from collections.abc import Iterator
from itertools import islice
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler


class ResumableDataLoader(DataLoader):
    """A `DataLoader` whose position in the epoch is saved in Lightning checkpoints and restored on resume.

    Batches are counted as the training loop takes them from this loader (in the main process), so worker
    processes that read ahead do not move the position. Its length stays the full epoch's, as Lightning expects.

    Args:
        dataset: a map-style dataset.
        batch_size: examples per batch.
        sampler: the order of one epoch; it must have `set_epoch(epoch)` and give the same order for the same epoch.
        **kwargs: further `DataLoader` arguments (`drop_last`, `collate_fn`, `num_workers`, `generator`, ...).
    """

    def __init__(self, dataset: Dataset, batch_size: int, sampler: Sampler[int], **kwargs: Any) -> None:
        super().__init__(dataset, batch_size, sampler=_FromPosition(sampler), **kwargs)
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
        """The epoch and how many of its batches the training loop has taken."""
        return {"epoch": self.sampler.epoch, "batches": self._taken}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """Start the next pass at the saved position, if it is a pass over the saved epoch (else at its beginning)."""
        self._resume_at = {"epoch": int(state_dict["epoch"]), "batches": int(state_dict["batches"])}


class _FromPosition(Sampler[int]):
    """`sampler`'s indices from position `start` on; its length stays the whole epoch's."""

    def __init__(self, sampler: Sampler[int]) -> None:
        self.sampler = sampler
        self.start = 0
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        return islice(iter(self.sampler), self.start, None)

    def __len__(self) -> int:
        return len(self.sampler)
