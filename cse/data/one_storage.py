"""A worker's batch in one storage per dtype, so that the training process takes it over with one handshake.

A DataLoader worker sends each storage of a batch through shared memory; torch's default sharing strategy on Linux
passes each storage's file descriptor over a socket, and the receiving process opens an authenticated connection
back to the worker for every one (Python's `multiprocessing` handshake, an HMAC challenge each way), under the GIL.
A cse batch holds 3 tensors or more (`input_ids`, `attention_mask`, `token_type_ids`, the MLM pair, ...), each in
its own storage. On a GPU the pin-memory thread does that work, taking the GIL from the training loop, whose eager
step is bound by host time. Views of one storage travel as one: the tensors are copied, in the worker, into one
flat buffer per dtype, and handed on as views of it with their own shapes. The values, shapes and dtypes are those
collated. `scripts/worker_batches.py` times both.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def in_one_storage_per_dtype(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch with its tensors replaced by contiguous views of one new buffer per dtype (same values and shapes);
    other values as they are."""
    by_dtype: dict[torch.dtype, list[str]] = {}
    for key, value in batch.items():
        if isinstance(value, Tensor):
            by_dtype.setdefault(value.dtype, []).append(key)
    packed = dict(batch)
    for keys in by_dtype.values():
        buffer = torch.cat([batch[key].reshape(-1) for key in keys])  # (N,): a copy, even of a single tensor
        for key, flat in zip(keys, buffer.split([batch[key].numel() for key in keys]), strict=True):
            packed[key] = flat.view(batch[key].shape)
    return packed


class OneStoragePerDtype:
    """A collate function that hands on `collate`'s batches with `in_one_storage_per_dtype`: for DataLoader workers."""

    def __init__(self, collate: Callable[[list], dict[str, Any]]) -> None:
        self.collate = collate

    def __call__(self, rows: list) -> dict[str, Any]:
        return in_one_storage_per_dtype(self.collate(rows))
