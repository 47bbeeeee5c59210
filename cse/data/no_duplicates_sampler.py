"""A sampler whose batches never contain the same text twice, across all columns and all processes.

NLI data repeats premises: two rows with one premise in a batch make each other's positive a false negative.
Like sentence-transformers' `NoDuplicatesBatchSampler`, a row that would repeat a text is deferred to a later batch.
Under DDP with the embeddings gathered, every process's rows are negatives of every other's, so the duplicate-free
unit is the global batch of all processes together.
"""

from collections import deque
from collections.abc import Hashable, Iterator, Sequence

import torch

from cse.data.resumable import ResumableSampler


class NoDuplicatesSampler(ResumableSampler):
    """Indices in an order where each step's batches, of all processes together, hold each text at most once.

    Global batches of `batch_size × num_replicas` rows are built from a seeded shuffle; process `rank` takes rows
    `[rank · batch_size, (rank + 1) · batch_size)` of each. Use with `DataLoader(batch_size=batch_size,
    drop_last=True)`. Reshuffled per epoch (`set_epoch`, called by Lightning); rows that cannot complete a
    duplicate-free global batch at the end of an epoch are left out of it.

    Args:
        row_texts: per row, the identities of its texts (e.g. token-id tuples of each column).
        batch_size: rows per batch of one process.
        num_replicas: training processes (`trainer.world_size`).
        rank: this process's global rank.
        seed: base seed of the shuffle; the epoch is added to it.
    """

    def __init__(
        self,
        row_texts: Sequence[Sequence[Hashable]],
        batch_size: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
    ) -> None:
        self.row_texts = [frozenset(texts) for texts in row_texts]
        super().__init__(self.row_texts, num_replicas, rank, seed)
        self.batch_size = batch_size
        self._batches: tuple[tuple[int, int], list[list[int]]] | None = None  # ((seed, epoch), batches)

    def batches(self) -> list[list[int]]:
        """This process's duplicate-free batches of the current epoch (computed once per epoch)."""
        if self._batches is None or self._batches[0] != (self.seed, self.epoch):
            first = self.rank * self.batch_size
            own = [batch[first : first + self.batch_size] for batch in self._global_batches()]
            self._batches = ((self.seed, self.epoch), own)
        return self._batches[1]

    def epoch_indices(self) -> Iterator[int]:
        return (index for batch in self.batches() for index in batch)

    def __len__(self) -> int:
        return len(self.batches()) * self.batch_size

    def _global_batches(self) -> list[list[int]]:
        """Batches of batch_size × num_replicas rows, none holding a text twice."""
        size = self.batch_size * self.num_replicas
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        pending = deque(torch.randperm(len(self.row_texts), generator=generator).tolist())
        batches = []
        while len(pending) >= size:
            batch, seen, deferred = [], set(), []
            while pending and len(batch) < size:
                index = pending.popleft()
                if self.row_texts[index] & seen:
                    deferred.append(index)
                else:
                    batch.append(index)
                    seen |= self.row_texts[index]
            pending.extendleft(reversed(deferred))  # deferred rows open the next batch, keeping their order
            if len(batch) < size:
                break
            batches.append(batch)
        return batches
