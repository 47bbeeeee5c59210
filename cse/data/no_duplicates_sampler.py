"""A sampler whose batches never contain the same text twice, across all columns and all processes.

NLI data repeats premises: two rows with one premise in a batch make each other's positive a false negative.
Like sentence-transformers' `NoDuplicatesBatchSampler`, a row that would repeat a text is deferred to the next batch.
Under DDP with the embeddings gathered, every process's rows are negatives of every other's, so the duplicate-free
unit is the global batch of all processes together.

Texts are compared by id (`cse.data.text_identity`: normalized text), the rows held as one (N, k) int64 array, and
each batch is filled with numpy operations on windows of candidates rather than a Python step per row
(`scripts/benchmark_no_duplicates.py` times 10M rows at batch 8,192).
"""

from collections.abc import Iterator
from itertools import chain

import numpy as np
import torch

from cse.data.resumable import ResumableSampler


class NoDuplicatesSampler(ResumableSampler):
    """Indices in an order where each step's batches, of all processes together, hold each text at most once.

    Global batches of `batch_size × num_replicas` rows are built from a seeded shuffle; process `rank` takes rows
    `[rank · batch_size, (rank + 1) · batch_size)` of each. Use with `DataLoader(batch_size=batch_size,
    drop_last=True)`. Reshuffled per epoch (`set_epoch`, called by Lightning); rows that cannot complete a
    duplicate-free global batch at the end of an epoch are left out of it.

    Args:
        text_ids: (N, k) integer ids of each row's k texts; equal ids are the same text (see `row_text_ids`).
        batch_size: rows per batch of one process.
        num_replicas: training processes (`trainer.world_size`).
        rank: this process's global rank.
        seed: base seed of the shuffle; the epoch is added to it.
    """

    def __init__(
        self, text_ids: np.ndarray, batch_size: int, num_replicas: int = 1, rank: int = 0, seed: int = 0
    ) -> None:
        self.text_ids = np.asarray(text_ids, dtype=np.int64)
        if self.text_ids.ndim != 2:
            raise ValueError(f"text_ids must be (rows, texts per row), got shape {self.text_ids.shape}")
        super().__init__(range(len(self.text_ids)), num_replicas, rank, seed)
        self.batch_size = batch_size
        self._batches: tuple[tuple[int, int], np.ndarray] | None = None  # ((seed, epoch), (batches, batch_size))

    def batches(self) -> np.ndarray:
        """This process's duplicate-free batches of this epoch, (batches, batch_size), computed once per epoch."""
        if self._batches is None or self._batches[0] != (self.seed, self.epoch):
            first = self.rank * self.batch_size
            own = self._global_batches()[:, first : first + self.batch_size]
            self._batches = ((self.seed, self.epoch), own)
        return self._batches[1]

    def epoch_indices(self) -> Iterator[int]:
        return chain.from_iterable(batch.tolist() for batch in self.batches())  # a batch of Python ints at a time

    def __len__(self) -> int:
        return self.batches().size

    def _global_batches(self) -> np.ndarray:
        """(batches, batch_size × num_replicas) row indices, no batch holding a text twice."""
        size = self.batch_size * self.num_replicas
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.text_ids), generator=generator).numpy()
        return duplicate_free_batches(self.text_ids, order, size)


def duplicate_free_batches(text_ids: np.ndarray, order: np.ndarray, size: int) -> np.ndarray:
    """Rows of `order` grouped into batches of `size` in which no text id repeats: (batches, size) int64.

    Rows are taken in order, as sentence-transformers' `NoDuplicatesBatchSampler` takes them: a row that shares a text
    with the batch is deferred, and the deferred rows, in order, open the next batch. The epoch ends when the rows
    left cannot fill a batch.

    Args:
        text_ids: (N, k) text ids of each row.
        order: (N,) the rows' order this epoch.
        size: rows per batch.
    """
    batches: list[np.ndarray] = []
    carried = np.empty(0, dtype=np.int64)  # rows deferred by earlier batches, in order: they come first
    position = 0  # next row of `order` not yet examined
    while True:
        accepted, deferred, seen, filled = [], [], np.empty(0, dtype=np.int64), 0
        while filled < size:
            need = size - filled
            head, carried = carried[:need], carried[need:]
            tail = order[position : position + need - len(head)]
            position += len(tail)
            window = np.concatenate([head, tail])
            if len(window) == 0:
                break
            keep = _acceptable(text_ids[window], seen)
            accepted.append(window[keep])
            deferred.append(window[~keep])
            filled += int(keep.sum())
            seen = np.sort(np.concatenate([seen, text_ids[window[keep]].ravel()]))  # sorted, for searchsorted
        if filled < size:
            break
        batches.append(np.concatenate(accepted))
        carried = np.concatenate([*deferred, carried])
    return np.stack(batches) if batches else np.empty((0, size), dtype=np.int64)


def _acceptable(window_ids: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """(m,) which of the window's rows join the batch, exactly as taking them one by one in order would decide.

    A row joins unless it shares a text with `seen` (sorted: the batch so far) or with an earlier row of the window
    that joined. Rows sharing no text with any other row of the window are decided at once; only the few that do are
    walked in order. A text repeated within one row (an anchor equal to its positive) does not stop that row.
    """
    rows, texts = window_ids.shape
    flat = window_ids.ravel()  # row-major: row r's texts are flat[r·k : r·k + k]
    if len(seen):
        spot = np.searchsorted(seen, flat).clip(max=len(seen) - 1)
        taken = (seen[spot] == flat).reshape(rows, texts).any(axis=1)
    else:
        taken = np.zeros(rows, dtype=bool)
    owner = np.repeat(np.arange(rows), texts)
    by_text = np.lexsort((owner, flat))  # sorted by text, then row
    text, row = flat[by_text], owner[by_text]
    distinct = np.ones(len(flat), dtype=bool)  # each (text, row) once
    distinct[1:] = (text[1:] != text[:-1]) | (row[1:] != row[:-1])
    text, row = text[distinct], row[distinct]
    repeated = np.zeros(len(text), dtype=bool)  # texts held by two rows or more
    same = text[1:] == text[:-1]
    repeated[1:] |= same
    repeated[:-1] |= same
    sharing = np.zeros(rows, dtype=bool)
    sharing[row[repeated]] = True
    joins = ~taken & ~sharing
    batch_texts: set[int] = set()
    for index in np.flatnonzero(sharing & ~taken).tolist():
        own = set(window_ids[index].tolist())
        if batch_texts.isdisjoint(own):
            joins[index] = True
            batch_texts |= own
    return joins
