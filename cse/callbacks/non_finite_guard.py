"""Stop training when the loss stays NaN or infinite, before a checkpoint of a broken model is written."""

import math
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from cse.callbacks.preemption import last_checkpoint_path


class NonFiniteLossError(RuntimeError):
    """Training stopped on a non-finite loss; the message names the step and the last checkpoint written."""


class NonFiniteGuard(Callback):
    """Stops the run with a one-line error when the training loss is not finite for several steps in a row.

    With fp16 (`16-mixed`), Lightning's GradScaler skips the optimizer step of a batch whose gradients overflow and
    lowers the loss scale, so an occasional non-finite step is normal and harmless. In fp32 or bf16 nothing skips the
    step: its NaN gradients reach the weights, so the run is also stopped when a non-finite loss was seen and the
    weights are no longer finite.

    Training never waits for the device here: each step copies its loss into one slot of a device buffer (one
    kernel; the streaks and their steps are worked out on the host when the buffer is read). The buffer is read (one
    synchronisation) every `check_every_n_steps` batches, at the end of training, and whenever a checkpoint is saved:
    Lightning calls `on_save_checkpoint` while it builds the checkpoint, before writing it, so raising there writes
    no file, and the last checkpoint on disk stays the last good one. The weights are inspected only after a
    non-finite loss.

    Args:
        max_consecutive_steps: stop after this many consecutive steps with a NaN or infinite loss; 1 stops at the first.
        check_every_n_steps: read the record on the host after this many training batches at most (after every
            batch while a `save_weights_only` checkpoint is configured: such saves call no callback hook); 1 checks
            every step. A run that breaks between checkpoints goes on until the next check; at 50 that wastes little
            time, and one synchronisation per 50 steps costs nothing measurable.
    """

    def __init__(self, max_consecutive_steps: int = 3, check_every_n_steps: int = 50) -> None:
        if max_consecutive_steps < 1:
            raise ValueError(f"max_consecutive_steps must be at least 1, got {max_consecutive_steps}")
        if check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps must be at least 1, got {check_every_n_steps}")
        self.max_consecutive_steps = max_consecutive_steps
        self.check_every_n_steps = check_every_n_steps
        self._record: _Record | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A weights-only save calls no callback hook (`dump_checkpoint(weights_only=True)`): check after every batch
        # instead, which runs before the checkpoint callbacks (Lightning runs them last).
        weights_only = any(
            isinstance(callback, ModelCheckpoint) and callback.save_weights_only
            for callback in trainer.checkpoint_callbacks
        )
        every = 1 if weights_only else self.check_every_n_steps
        self._record = _Record(torch.empty(every, device=pl_module.device))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and self._record is not None:
            self._record.add(loss.detach(), trainer.global_step)
            if self._record.full():
                self._check(trainer, pl_module)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._check(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module)

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Reads the record on the host and raises `NonFiniteLossError` if the run must stop.

        Under DDP each process's loss is its own, so one process may see a non-finite streak the others do not: the
        decision is reduced over all processes (one collective per check, in step on every process, since all count
        the same batches and save the same checkpoints), and all stop together instead of the others waiting in
        their next collective forever. A check that raises keeps what it found, so a later save fails too.
        """
        record = self._record
        if record is None or not record.read(self.max_consecutive_steps):
            return
        weights_finite = record.first is None or _all_finite(pl_module)  # no non-finite loss: no reason to look
        stops_here = record.limit is not None or not weights_finite
        if not trainer.strategy.reduce_boolean_decision(stops_here, all=False):
            record.first = None
            return
        last = last_checkpoint_path(trainer)
        kept = f"{last} is from before it" if last.is_file() else "no checkpoint was written"
        advice = "(lower model.learning_rate, or check the data and the precision)"
        if not stops_here:
            raise NonFiniteLossError(
                f"training stopped at step {trainer.global_step}: the loss of another process is not finite; {kept} "
                f"{advice}"
            )
        if weights_finite:
            limit_step, loss = record.limit
            why = (
                f"{self.max_consecutive_steps} steps in a row up to step {limit_step} "
                f"(non_finite_guard.max_consecutive_steps: {self.max_consecutive_steps})"
            )
        else:
            first_step, loss = record.first
            why = f"and the weights are no longer finite (first non-finite loss at step {first_step})"
        raise NonFiniteLossError(
            f"training stopped at step {trainer.global_step}: the loss is {loss} {why}; {kept} {advice}"
        )


class _Record:
    """The losses of the batches since the last read, in a device buffer (N,), with their steps on the host; and what
    the reads found. Steps are `trainer.global_step` after the batch.

    `limit` is (step, loss) where the streak of non-finite losses first reached the limit, `first` the first
    non-finite loss since the last check that passed; None when there is none.
    """

    def __init__(self, losses: torch.Tensor) -> None:
        self.losses = losses
        self.steps: list[int] = []
        self.streak = 0
        self.limit: tuple[int, float] | None = None
        self.first: tuple[int, float] | None = None

    def add(self, loss: torch.Tensor, step: int) -> None:
        """Stores one batch's loss without synchronising: one copy into the buffer (a mean first if not a scalar)."""
        self.losses[len(self.steps)] = loss if loss.numel() == 1 else loss.float().mean()
        self.steps.append(step)

    def full(self) -> bool:
        return len(self.steps) == len(self.losses)

    def read(self, limit: int) -> bool:
        """Reads the stored losses (one synchronisation) into the streak, `limit` and `first`, and empties the buffer.

        Returns:
            Whether there is anything to decide: losses were read, or a check that raised left its findings.
        """
        if not self.steps:
            return self.limit is not None or self.first is not None
        for step, loss in zip(self.steps, self.losses[: len(self.steps)].tolist(), strict=True):
            finite = math.isfinite(loss)
            self.streak = 0 if finite else self.streak + 1
            if self.streak == limit and self.limit is None:
                self.limit = (step, loss)
            if not finite and self.first is None:
                self.first = (step, loss)
        self.steps.clear()
        return True


def _all_finite(module: torch.nn.Module) -> bool:
    """Whether every parameter is finite, with one synchronisation."""
    return bool(torch.stack([parameter.isfinite().all() for parameter in module.parameters()]).all())
