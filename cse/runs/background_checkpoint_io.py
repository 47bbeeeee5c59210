"""How `cse fit` writes its checkpoints: whole files, written by a background thread while training goes on.

Measured on an H100: unsupervised BERT-base spent 45% of its run validating (57% under `model.compile`), by the
figures (docs/gpu.md) nearly all of it in the validations that found a new best model. Each of those wrote two full
checkpoints (`best-step=N.ckpt` and `last.ckpt`, 1.32 GB each with AdamW's state): about 7 s of stopped training.
Lightning's own writer (`TorchCheckpointIO`) pickles the checkpoint into memory, copies it, and writes the copy to a
temporary file in `$TMPDIR` before moving it into place: on the 2-core CPU machine a BERT-base checkpoint took 4.5 s
that way and 0.7 s with `torch.save` straight to a file (`scripts/checkpoint_writes.py`).

Here the training thread only copies the checkpoint's tensors to host memory (the optimizer changes the weights in
place during the next step); a thread then writes the copy with `torch.save` under a temporary name beside the
target and renames it into place, as every other file `cse` writes (`cse.whole_file`): a reader, or a run killed
mid-write, finds the previous file or the complete new one. `torch.save` to a file holds the interpreter lock only
briefly, so training runs on at nearly full speed while the file is written (`scripts/checkpoint_writes.py`).

Lightning's `AsyncCheckpointIO` does the threading; two things change:
- the copy is taken in host memory, not by cloning on the GPU (two pending checkpoints of BERT-base would hold
  2.6 GB of GPU memory that a run sized to its largest batch does not have);
- removing a checkpoint (the previous best) is queued behind the writes, so that a write still pending cannot
  bring back a file already removed.
Writes happen one at a time, in the order asked. The trainer's teardown, also when training stops on an exception
or a termination signal, waits for the last one. An error a write met (a full disk, say) is raised in the training
thread at the next write, or by `raise_write_error` after training: not from the teardown, as Lightning's class
does, where it would cut Lightning's teardown short and leave its signal handlers installed.
"""

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

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        snapshot = apply_to_collection(checkpoint, torch.Tensor, _host_copy)
        self._queue(self.checkpoint_io.save_checkpoint, snapshot, path, storage_options)

    def remove_checkpoint(self, path: Any) -> None:
        self._queue(self.checkpoint_io.remove_checkpoint, path)

    def teardown(self) -> None:
        """Waits for the pending writes; an error one met is kept for `raise_write_error`."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

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


def _host_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A copy in host memory that the next training step cannot change (a CPU tensor is copied too)."""
    return tensor.detach().to("cpu", copy=True)
