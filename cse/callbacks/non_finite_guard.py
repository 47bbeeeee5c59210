"""Stop training when the loss stays NaN or infinite, before a checkpoint of a broken model is written."""

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from cse.callbacks.preemption import last_checkpoint_path


class NonFiniteLossError(RuntimeError):
    """Training stopped on a non-finite loss; the message names the step and the last checkpoint written."""


class NonFiniteGuard(Callback):
    """Stops the run with a one-line error when the training loss is not finite for several steps in a row.

    With fp16 (`16-mixed`), Lightning's GradScaler skips the optimizer step of a batch whose gradients overflow and
    lowers the loss scale, so an occasional non-finite step is normal and harmless. In fp32 or bf16 nothing skips the
    step: its NaN gradients reach the weights, so the run is stopped at once when the weights are no longer finite.
    Either way the error is raised in `on_train_batch_end`, before the checkpoint callbacks (Lightning runs them
    last), so no checkpoint of the broken state is written and the last one on disk stays the last good one.

    The check costs one host-device synchronisation per step (`isfinite(loss)`): fp16's GradScaler already waits
    for its own overflow check each step, and the weights are only inspected after a non-finite loss.

    Args:
        max_consecutive_steps: stop after this many consecutive steps with a NaN or infinite loss; 1 stops at the first.
    """

    def __init__(self, max_consecutive_steps: int = 3) -> None:
        if max_consecutive_steps < 1:
            raise ValueError(f"max_consecutive_steps must be at least 1, got {max_consecutive_steps}")
        self.max_consecutive_steps = max_consecutive_steps
        self._streak = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        if bool(torch.isfinite(loss).all()):
            self._streak = 0
            return
        self._streak += 1
        weights_finite = _all_finite(pl_module)
        if self._streak < self.max_consecutive_steps and weights_finite:
            return
        why = (
            f"{self._streak} steps in a row (non_finite_guard.max_consecutive_steps: {self.max_consecutive_steps})"
            if weights_finite
            else "and the weights are no longer finite"
        )
        last = last_checkpoint_path(trainer)
        kept = f"{last} is from before it" if last.is_file() else "no checkpoint was written"
        raise NonFiniteLossError(
            f"training stopped at step {trainer.global_step}: the loss is {loss.float().mean().item()} {why}; {kept} "
            "(lower model.learning_rate, or check the data and the precision)"
        )


def _all_finite(module: torch.nn.Module) -> bool:
    """Whether every parameter is finite, with one synchronisation."""
    return bool(torch.stack([parameter.isfinite().all() for parameter in module.parameters()]).all())
