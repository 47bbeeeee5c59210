"""On SIGTERM or SIGUSR1 (a preempted cloud or cluster job) or a first Ctrl-C, save `last.ckpt` at the end of the
batch and stop."""

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from cse.callbacks.periodic_checkpoint import PeriodicCheckpoint


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
    maximum of the notes (`all_reduce`, one collective at the same point in every process; Lightning already reads a
    broadcast flag at every step under DDP) and, if any process was signalled, all set Lightning's flag together:
    they stop after the same batch and write one `last.ckpt`.
    """

    def __init__(self) -> None:
        self._signalled = False
        self._trainer: pl.Trainer | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning registers its handlers before training starts and restores the previous ones when it ends.
        if threading.current_thread() is not threading.main_thread():
            return
        if _distributed(trainer):
            self._trainer = trainer
            signal.signal(signal.SIGTERM, self._note_signal)
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
        if self._trainer is None:  # one process: Lightning's own flag, checked after this batch
            return
        noted = torch.tensor([int(self._signalled)], device=trainer.strategy.root_device)
        torch.distributed.all_reduce(noted, op=torch.distributed.ReduceOp.MAX)
        if noted.item():
            trainer._signal_connector.received_sigterm = True  # every process: the loop stops after this batch

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        path = last_checkpoint_path(trainer)
        trainer.save_checkpoint(path, weights_only=False)
        rank_zero_info(
            f"stopped by a signal after step {trainer.global_step}: saved {path}; "
            "run the same command with --ckpt_path last to resume"
        )


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
