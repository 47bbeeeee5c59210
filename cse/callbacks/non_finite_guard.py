"""Stop training when the loss stays NaN or infinite, before a checkpoint of a broken model is written."""

from collections.abc import Mapping
from dataclasses import dataclass
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

    Training never waits for the device here: each step only updates a few device tensors (the streak of non-finite
    losses, the step it reached the limit, the first non-finite loss since the last check). They are read on the host
    (one synchronisation) every `check_every_n_steps` batches, at the end of training, and whenever a checkpoint is
    saved: Lightning calls `on_save_checkpoint` while it builds the checkpoint, before writing it, so raising there
    writes no file, and the last checkpoint on disk stays the last good one. The weights are inspected only after a
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
        self._every = check_every_n_steps
        self._unchecked = 0  # batches recorded since the last check that passed
        self._record: _Record | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A weights-only save calls no callback hook (`dump_checkpoint(weights_only=True)`): check after every batch
        # instead, which runs before the checkpoint callbacks (Lightning runs them last).
        weights_only = any(
            isinstance(callback, ModelCheckpoint) and callback.save_weights_only
            for callback in trainer.checkpoint_callbacks
        )
        self._every = 1 if weights_only else self.check_every_n_steps
        self._unchecked = 0
        self._record = _Record.empty(pl_module.device)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and self._record is not None:
            self._record.update(loss.detach(), trainer.global_step, self.max_consecutive_steps)
        self._unchecked += 1
        if self._unchecked >= self._every:
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
        their next collective forever. A check that raises leaves the record as it is, so a later save fails too.
        """
        record = self._record
        if record is None or self._unchecked == 0:
            return
        limit_step, first_step = torch.stack([record.limit_step, record.first_step]).tolist()  # one sync
        weights_finite = first_step < 0 or _all_finite(pl_module)  # no non-finite loss: no reason to look
        stops_here = limit_step >= 0 or not weights_finite
        if not trainer.strategy.reduce_boolean_decision(stops_here, all=False):
            if first_step >= 0:
                record.first_step.fill_(-1)
            self._unchecked = 0
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
            loss = record.limit_loss.item()
            why = (
                f"{self.max_consecutive_steps} steps in a row up to step {limit_step} "
                f"(non_finite_guard.max_consecutive_steps: {self.max_consecutive_steps})"
            )
        else:
            loss = record.first_loss.item()
            why = f"and the weights are no longer finite (first non-finite loss at step {first_step})"
        raise NonFiniteLossError(
            f"training stopped at step {trainer.global_step}: the loss is {loss} {why}; {kept} {advice}"
        )


@dataclass
class _Record:
    """The guard's record, on the training device. Steps are `trainer.global_step` after the batch; -1 is unset."""

    streak: torch.Tensor  # consecutive non-finite losses up to the last batch
    limit_step: torch.Tensor  # where the streak first reached the limit
    limit_loss: torch.Tensor
    first_step: torch.Tensor  # the first non-finite loss since the last check that passed
    first_loss: torch.Tensor

    @classmethod
    def empty(cls, device: torch.device) -> "_Record":
        unset = torch.full((), -1, dtype=torch.long, device=device)
        loss = torch.zeros((), device=device)
        return cls(torch.zeros_like(unset), unset, loss, unset.clone(), loss)

    def update(self, loss: torch.Tensor, step: int, limit: int) -> None:
        """Adds one batch's loss without synchronising: `step` enters the kernels as a scalar argument."""
        bad = ~torch.isfinite(loss).all()
        value = loss.float().mean()
        self.streak = torch.where(bad, self.streak + 1, 0)
        reached = (self.streak == limit) & (self.limit_step < 0)
        self.limit_step = torch.where(reached, step, self.limit_step)
        self.limit_loss = torch.where(reached, value, self.limit_loss)
        first = bad & (self.first_step < 0)
        self.first_step = torch.where(first, step, self.first_step)
        self.first_loss = torch.where(first, value, self.first_loss)


def _all_finite(module: torch.nn.Module) -> bool:
    """Whether every parameter is finite, with one synchronisation."""
    return bool(torch.stack([parameter.isfinite().all() for parameter in module.parameters()]).all())
