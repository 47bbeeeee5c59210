"""On SIGTERM or SIGUSR1 (a preempted cloud or cluster job) or a first Ctrl-C, save `last.ckpt` at the end of the
batch and stop."""

import signal
import threading
from collections import deque
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cse.callbacks.periodic_checkpoint import PeriodicCheckpoint

# Batches between a note's reduction and its read. At 1 the host may run one batch ahead of the GPU and no more, and
# a host hiccup longer than a step would leave the GPU idle; at 2 it has a batch to spare. A signal stops the run 2
# batches later than it was noted, all processes at the same batch.
SIGNAL_READ_LAG = 2


class PreemptionCheckpoint(Callback):
    """Saves the last checkpoint when the run is stopped by a termination signal, so `--ckpt_path last` resumes it.

    Lightning 2.6 already turns SIGTERM into an orderly stop: its handler sets `trainer.received_sigterm`, and the
    training loop raises `SIGTERMException` once the running batch (and a validation due after it) is done. It saves
    no checkpoint then, except under SLURM with auto-requeue, where SIGUSR1 writes `hpc_ckpt_N.ckpt` and requeues the
    job, and the requeued run loads it. This callback writes `last.ckpt` at that batch boundary, where it resumes
    exactly, and makes SIGUSR1 act as SIGTERM where Lightning leaves it unhandled (it would kill the process). A first
    Ctrl-C (SIGINT) stops the same way (Lightning's own handling raises KeyboardInterrupt mid-step and saves nothing);
    a second one interrupts at once.
    `ModelCheckpoint(save_on_exception=True)` is not used: it saves on any exception, also one raised in the middle
    of a step or by `NonFiniteGuard`, states that must not be resumed.

    With several processes, Lightning 2.6's SIGTERM handler broadcasts from inside the handler, in the middle of
    whatever collective the process was in, and each process stops at the first check that sees its own flag: a
    signal could hang the run with no checkpoint. There, a signal only notes itself (and rank 0 passes SIGTERM on to
    the processes Lightning started, as Lightning's handler does); after each training batch every process takes the
    maximum of the notes (`all_reduce`, one collective at the same point in every process) and reads it
    `SIGNAL_READ_LAG` batches later (`AgreedNotes`), so that no step waits for the GPU; if any process was
    signalled, all set Lightning's flag together: they stop after the same batch and write one `last.ckpt`.
    Lightning's own per-step agreement (`_broadcast_sigterm_tensor`: a broadcast of rank 0's flag read with `.item()`
    before every batch, a wait for the GPU at each step) is then left out: only this callback sets the flag.
    """

    def __init__(self) -> None:
        self._signalled = False
        self._trainer: pl.Trainer | None = None
        self._notes: AgreedNotes | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning registers its handlers before training starts and restores the previous ones when it ends.
        if threading.current_thread() is not threading.main_thread():
            return
        if _distributed(trainer):
            self._trainer = trainer
            self._notes = AgreedNotes(trainer.strategy.root_device)
            signal.signal(signal.SIGTERM, self._note_signal)
            trainer.fit_loop.epoch_loop._broadcast_sigterm_tensor = _agreed_by_preemption_checkpoint
        stop_after_batch = signal.getsignal(signal.SIGTERM)
        if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGUSR1, stop_after_batch)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:

            def first_ctrl_c(signum: int, frame: FrameType | None) -> None:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                rank_zero_info("Ctrl-C: stopping after this step to save last.ckpt (Ctrl-C again stops at once)")
                stop_after_batch(signum, frame)  # Lightning's SIGTERM handler: the loop stops after the batch

            signal.signal(signal.SIGINT, first_ctrl_c)

    def _note_signal(self, signum: int, frame: FrameType | None) -> None:
        """The handler of SIGTERM (and of SIGUSR1 and a first Ctrl-C) with several processes: no collective here."""
        if self._signalled:
            return
        self._signalled = True
        launcher = self._trainer.strategy.launcher if self._trainer is not None else None
        if launcher is not None:  # the processes it started (none in those it started): SIGTERM, noted there too
            launcher.kill(signal.SIGTERM)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self._notes is None:  # one process: Lightning's own flag, checked after this batch
            return
        if self._notes.any_signalled(self._signalled):
            trainer._signal_connector.received_sigterm = True  # every process: the loop stops after this batch

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        vars(trainer.fit_loop.epoch_loop).pop("_broadcast_sigterm_tensor", None)  # Lightning's own method again
        self._trainer = self._notes = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        path = last_checkpoint_path(trainer)
        trainer.save_checkpoint(path, weights_only=False)
        rank_zero_info(
            f"stopped by a signal after step {trainer.global_step}: saved {path}; "
            "run the same command with --ckpt_path last to resume"
        )


class AgreedNotes:
    """Whether any process noted a signal, agreed by every process without waiting for the GPU.

    After each batch, each process's note is reduced to the maximum over the processes (a collective queued on the
    device like the step's own) and copied to pinned host memory without waiting; the result is read
    `SIGNAL_READ_LAG` batches later, once the GPU has long finished that batch, so the host keeps queueing steps
    ahead of the GPU. Every process reads the same batch's result: all stop after the same batch.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._queued: deque[tuple[torch.Tensor, torch.cuda.Event | None]] = deque()

    def any_signalled(self, signalled: bool) -> bool:
        """Queues this batch's note; returns whether any process had noted a signal `SIGNAL_READ_LAG` batches ago
        (False for the first batches)."""
        noted = torch.full((1,), int(signalled), dtype=torch.int32, device=self.device)  # a fill: no host copy
        torch.distributed.all_reduce(noted, op=torch.distributed.ReduceOp.MAX)
        if noted.is_cuda:
            on_host = noted.to("cpu", non_blocking=True)  # into pinned memory, asynchronously
            done = torch.cuda.Event()
            done.record()
        else:
            on_host, done = noted.cpu(), None  # on the CPU: the tensor itself
        self._queued.append((on_host, done))
        if len(self._queued) <= SIGNAL_READ_LAG:
            return False
        on_host, done = self._queued.popleft()
        if done is not None:
            done.synchronize()  # the batch of SIGNAL_READ_LAG batches ago: finished on the GPU already
        return bool(on_host.item())  # host memory: nothing to wait for


def _agreed_by_preemption_checkpoint() -> None:
    """Stands for Lightning's per-batch `_broadcast_sigterm_tensor`: `PreemptionCheckpoint` agrees on the flag."""


def _distributed(trainer: pl.Trainer) -> bool:
    return trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()


def last_checkpoint_path(trainer: pl.Trainer) -> Path:
    """Where `ModelCheckpoint(save_last=True)` keeps `last.ckpt`, which `--ckpt_path last` looks for: that of cse's
    `PeriodicCheckpoint` where there is one (Lightning's `trainer.checkpoint_callback` is the first of them, a
    ModelCheckpoint of `trainer.callbacks` with a folder of its own before cse's)."""
    periodic = [callback for callback in trainer.checkpoint_callbacks if isinstance(callback, PeriodicCheckpoint)]
    callback = periodic[0] if periodic else trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.dirpath:
        return Path(callback.dirpath) / f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}"
    return Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
