"""A sampler whose batches never contain the same text twice, across all columns.

NLI data repeats premises: two rows with one premise in a batch make each other's positive a false negative.
Like sentence-transformers' `NoDuplicatesBatchSampler`, a row that would repeat a text is deferred to a later batch.
"""

from collections import deque
from collections.abc import Hashable, Iterator, Sequence

import torch
from torch.utils.data import Sampler


class NoDuplicatesSampler(Sampler[int]):
    """Indices in an order where every consecutive block of `batch_size` holds each text at most once.

    Use with `DataLoader(batch_size=batch_size, drop_last=True)`. Reshuffled per epoch (`set_epoch`, called by
    Lightning); rows that cannot complete a duplicate-free batch at the end of an epoch are left out of it.

    Args:
        row_texts: per row, the identities of its texts (e.g. token-id tuples of each column).
        batch_size: rows per batch.
        seed: base seed of the shuffle; the epoch is added to it.
    """

    def __init__(self, row_texts: Sequence[Sequence[Hashable]], batch_size: int, seed: int = 0) -> None:
        self.row_texts = [frozenset(texts) for texts in row_texts]
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self._batches: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """The duplicate-free batches of the current epoch (computed once per epoch)."""
        if self._batches is None or self._batches[0] != self.epoch:
            self._batches = (self.epoch, self._build_batches())
        return self._batches[1]

    def __iter__(self) -> Iterator[int]:
        return (index for batch in self.batches() for index in batch)

    def __len__(self) -> int:
        return len(self.batches()) * self.batch_size

    def _build_batches(self) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        pending = deque(torch.randperm(len(self.row_texts), generator=generator).tolist())
        batches = []
        while len(pending) >= self.batch_size:
            batch, seen, deferred = [], set(), []
            while pending and len(batch) < self.batch_size:
                index = pending.popleft()
                if self.row_texts[index] & seen:
                    deferred.append(index)
                else:
                    batch.append(index)
                    seen |= self.row_texts[index]
            pending.extendleft(reversed(deferred))  # deferred rows open the next batch, keeping their order
            if len(batch) < self.batch_size:
                break
            batches.append(batch)
        return batches
