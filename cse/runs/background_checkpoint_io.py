"""How `cse fit` writes its checkpoints: whole files, written by a background thread while training goes on.

A validation that finds a new best model writes two full checkpoints (`best-step=N.ckpt` and `last.ckpt`, 1.32 GB
each for BERT-base with AdamW's state). Lightning's own writer (`TorchCheckpointIO`) pickles the checkpoint into
memory, copies it, and writes the copy to a temporary file in `$TMPDIR` before moving it into place, all while
training waits; `scripts/checkpoint_writes.py` times each writer, and docs/gpu.md gives what it and the H100 measured.

Here the training thread only copies the checkpoint's tensors to host memory (the optimizer changes the weights in
place during the next step); a thread then writes the copy with `torch.save` under a temporary name beside the
target and renames it into place, as every other file `cse` writes (`cse.whole_file`): a reader, or a run killed
mid-write, finds the previous file or the complete new one. `torch.save` to a file holds the interpreter lock only
briefly, so training runs on at nearly full speed while the file is written (`scripts/checkpoint_writes.py`).

Lightning's `AsyncCheckpointIO` does the threading; three things change:
- the copy is taken in host memory, not by cloning on the GPU (two pending checkpoints of BERT-base would hold
  2.6 GB of GPU memory that a run sized to its largest batch does not have);
- checkpoints of the same training position share their host copies: a new best writes `best-step=N.ckpt` and
  then `last.ckpt`, the same weights and optimizer state, so the second one copies nothing while the first one's
  write is still pending (see `_HostCopies`);
- removing a checkpoint (the previous best) is queued behind the writes, so that a write still pending cannot
  bring back a file already removed.
Writes happen one at a time, in the order asked. The trainer's teardown, also when training stops on an exception
or a termination signal, waits for the last one. An error a write met (a full disk, say) is raised in the training
thread at the next write, or by `raise_write_error` after training: not from the teardown, as Lightning's class
does, where it would cut Lightning's teardown short and leave its signal handlers installed.
"""

import copy
import weakref
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.apply_func import apply_to_collection
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import AsyncCheckpointIO

from cse.whole_file import written_whole


class WholeFileCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` writing a local checkpoint with `torch.save` under a temporary name, renamed when complete.

    Remote paths (`s3://...`) are written by Lightning's own code.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with written_whole(path) as temporary:
            torch.save(checkpoint, temporary)


class BackgroundCheckpointIO(AsyncCheckpointIO):
    """`AsyncCheckpointIO` over `WholeFileCheckpointIO`, with a host-memory copy and removals queued behind writes."""

    def __init__(self) -> None:
        super().__init__(WholeFileCheckpointIO())
        self._host_copies = _HostCopies()

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        snapshot = self._host_copies.of(checkpoint)
        self._queue(self.checkpoint_io.save_checkpoint, snapshot, path, storage_options)

    def remove_checkpoint(self, path: Any) -> None:
        self._queue(self.checkpoint_io.remove_checkpoint, path)

    def teardown(self) -> None:
        """Waits for the pending writes; an error one met is kept for `raise_write_error`."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._host_copies = _HostCopies()  # a later fit may change the weights without changing the step

    def raise_write_error(self) -> None:
        """Raises the error a write met, if any (`cse fit` calls it once training has ended)."""
        if self._error:
            raise self._error

    def _queue(self, write: Callable[..., None], *args: Any) -> None:
        """Run `write(*args)` in the writer thread after the writes asked before; raise an earlier write's error
        instead (the run stops there: nothing is written after a failed write)."""
        self.raise_write_error()
        self._ensure_setup()

        def run() -> None:
            try:
                write(*args)
            except BaseException as error:  # raised in the training thread, at the next write or after training
                self._error = error

        self._executor.submit(run)


class _HostCopies:
    """Host copies of a checkpoint's tensors, shared with the next checkpoint of the same training position.

    The position is Lightning's count of optimizer steps and of training batches started: no batch has trained
    between two checkpoints of the same position, so the optimizer has changed nothing (the fused AdamW kernel
    changes the weights in place without moving their version counters: those alone cannot tell). A tensor of the
    next checkpoint then reuses the copy of the previous checkpoint's tensor when both view the same memory the same
    way (storage address, offset, shape, strides, dtype, device) and its version counter has not moved (any other
    in-place change). The previous checkpoint's tensors are held until then, so their memory cannot be reused by
    another tensor in between. A copy is shared only while a pending write still holds it (a weak reference): once
    written, it is freed as before. A dict without Lightning's loop state shares nothing.
    """

    def __init__(self) -> None:
        self._position: tuple[int, int] | None = None
        self._copies: dict[tuple, tuple[torch.Tensor, int, weakref.ref]] = {}

    def of(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """`checkpoint` with every tensor replaced by a host copy, new or shared."""
        position = _training_position(checkpoint)
        previous = self._copies if position is not None and position == self._position else {}
        self._position, self._copies = position, {}

        def shared_or_new(tensor: torch.Tensor) -> torch.Tensor:
            key = _memory_view(tensor)
            kept = previous.get(key) or self._copies.get(key)
            host = kept[2]() if kept is not None and kept[1] == tensor._version else None
            if host is None:
                host = _host_copy(tensor)
            self._copies[key] = (tensor, tensor._version, weakref.ref(host))
            return host

        return _with_tensors_replaced(checkpoint, shared_or_new)


def _with_tensors_replaced(data: Any, replace: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """`data` with each tensor in its dicts, lists and tuples replaced by `replace(tensor)`; strings, bytes and numbers
    kept as they are.

    Lightning's `apply_to_collection` walks `bytes` as a sequence, one call per byte: the tokenizer files that every
    cse checkpoint holds (`cse.models.checkpoint_assets`, 0.7 MB for BERT's) cost about 1 s a checkpoint that way on
    the 2-core CPU. Dicts are shallow-copied, so a state dict keeps its type and its `_metadata`; other objects
    (dataclasses, say) go to `apply_to_collection`.
    """
    if isinstance(data, torch.Tensor):
        return replace(data)
    if data is None or isinstance(data, (str, bytes, bytearray, int, float, complex)):
        return data
    if isinstance(data, dict) and not isinstance(data, defaultdict):
        copied = copy.copy(data)
        for key, value in data.items():
            copied[key] = _with_tensors_replaced(value, replace)
        return copied
    if type(data) in (list, tuple):
        return type(data)(_with_tensors_replaced(value, replace) for value in data)
    return apply_to_collection(data, torch.Tensor, replace)


def _training_position(checkpoint: Any) -> tuple[int, int] | None:
    """(optimizer steps, training batches started) of a Lightning checkpoint; None for any other dict."""
    try:
        started = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["started"]
        return checkpoint["global_step"], started
    except (KeyError, TypeError):
        return None


def _memory_view(tensor: torch.Tensor) -> tuple:
    """What makes two tensors the same values while both are alive and unchanged."""
    return (
        tensor.untyped_storage().data_ptr(),
        tensor.storage_offset(),
        tuple(tensor.shape),
        tensor.stride(),
        tensor.dtype,
        tensor.device,
    )


def _host_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A copy in host memory that the next training step cannot change (a CPU tensor is copied too)."""
    return tensor.detach().to("cpu", copy=True)
