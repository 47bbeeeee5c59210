"""On SIGTERM or SIGUSR1 (a preempted cloud or cluster job) or a first Ctrl-C, save `last.ckpt` at the end of the
batch and stop."""

import signal
import threading
from pathlib import Path
from types import FrameType

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException


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
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning registers its handlers before training starts and restores the previous ones when it ends.
        if threading.current_thread() is not threading.main_thread():
            return
        stop_after_batch = signal.getsignal(signal.SIGTERM)
        if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGUSR1, stop_after_batch)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:

            def first_ctrl_c(signum: int, frame: FrameType | None) -> None:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                rank_zero_info("Ctrl-C: stopping after this step to save last.ckpt (Ctrl-C again stops at once)")
                stop_after_batch(signum, frame)  # Lightning's SIGTERM handler: the loop stops after the batch

            signal.signal(signal.SIGINT, first_ctrl_c)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        path = last_checkpoint_path(trainer)
        trainer.save_checkpoint(path, weights_only=False)
        rank_zero_info(
            f"stopped by a signal after step {trainer.global_step}: saved {path}; "
            "run the same command with --ckpt_path last to resume"
        )


def last_checkpoint_path(trainer: pl.Trainer) -> Path:
    """Where `ModelCheckpoint(save_last=True)` keeps `last.ckpt`, which `--ckpt_path last` looks for."""
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.dirpath:
        return Path(callback.dirpath) / f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}"
    return Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
