"""Several training datasets in one run, each batch drawn from one of them, so in-batch negatives stay within a task.

The batch schedules are sentence-transformers' multi-dataset samplers (`sentence_transformers/base/sampler.py`,
`RoundRobinBatchSampler` and `ProportionalBatchSampler`): round robin takes one batch of each dataset in turn, in
whole rounds only, so the epoch ends after as many rounds as the smallest dataset has full batches and every dataset
gives the same number of batches; proportional visits every full batch of every dataset once, in a seeded random
order of datasets, so each dataset is drawn in proportion to its size.

Under DDP the unit is the global batch of all processes of a step: it comes from one dataset, and process `rank`
takes its `rank`-th slice, so the gathered embeddings of a step share a task too.
"""

from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Literal

import torch

from cse.data.resumable import ResumableSampler

Mixture = Literal["round_robin", "proportional"]
MIXTURE_CHOICES = ("round_robin", "proportional")


class MixtureSampler(ResumableSampler):
    """Indices into the concatenation of datasets (`torch.utils.data.ConcatDataset` order), in batches from one dataset.

    Use with `DataLoader(batch_size=batch_size, drop_last=True)`: every `batch_size` consecutive indices of this
    process are one batch. The order is a function of seed and epoch (`set_epoch`), so `ResumableDataLoader`
    resumes it exactly.

    Args:
        lengths: examples of each dataset, in concatenation order.
        batch_size: rows per batch of one process.
        mixture: "round_robin" or "proportional" (see the module docstring).
        num_replicas: training processes (`trainer.world_size`).
        rank: this process's global rank.
        seed: base seed; the epoch is added to it.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        mixture: Mixture = "proportional",
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(range(sum(lengths)), num_replicas, rank, seed)
        self.lengths = list(lengths)
        self.offsets = [0, *accumulate(self.lengths)][:-1]  # first concatenated index of each dataset
        self.batch_size = batch_size
        self.mixture = mixture
        self._batches: tuple[tuple[int, int], list[tuple[int, list[int]]]] | None = None  # ((seed, epoch), batches)

    def dataset_batches(self) -> list[tuple[int, list[int]]]:
        """This process's batches of the current epoch: (dataset, its concatenated indices), in training order."""
        if self._batches is None or self._batches[0] != (self.seed, self.epoch):
            self._batches = ((self.seed, self.epoch), self._schedule())
        return self._batches[1]

    def _schedule(self) -> list[tuple[int, list[int]]]:
        size = self.batch_size * self.num_replicas
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        queues = []  # per dataset: its global batches, a seeded shuffle cut into full batches
        for offset, length in zip(self.offsets, self.lengths, strict=True):
            order = (torch.randperm(length, generator=generator) + offset).tolist()
            queues.append([order[start : start + size] for start in range(0, length - size + 1, size)])
        if self.mixture == "round_robin":
            rounds = min(len(queue) for queue in queues)  # whole rounds: as many as the smallest has batches
            schedule = [dataset for _ in range(rounds) for dataset in range(len(queues))]
        else:
            slots = torch.tensor([dataset for dataset, queue in enumerate(queues) for _ in queue])
            schedule = slots[torch.randperm(len(slots), generator=generator)].tolist()
        taken = [0] * len(queues)
        first = self.rank * self.batch_size
        batches = []
        for dataset in schedule:
            batch = queues[dataset][taken[dataset]]
            taken[dataset] += 1
            batches.append((dataset, batch[first : first + self.batch_size]))
        return batches

    def epoch_indices(self) -> Iterator[int]:
        return (index for _, batch in self.dataset_batches() for index in batch)

    def __len__(self) -> int:
        return len(self.dataset_batches()) * self.batch_size
