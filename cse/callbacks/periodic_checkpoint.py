"""`last.ckpt` every N steps, and at the run's final step."""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint


class PeriodicCheckpoint(ModelCheckpoint):
    """Lightning's `ModelCheckpoint` (`every_n_train_steps`, `save_last`) that also writes `last.ckpt` after the final
    training step (`trainer.max_steps`, or the last batch of the last of `trainer.max_epochs`).

    Lightning 2.6 writes `last.ckpt` at the end of training only if it never wrote one: a run whose final validation
    found no new best kept the `last.ckpt` of its latest periodic save or best, up to `every_n_train_steps` - 1 steps
    before the end, which `cse export last.ckpt` took for the trained model. Written after the step's batch, before
    the epoch is counted as done, the checkpoint resumes with a larger `trainer.max_steps` as any other; a validation
    that then finds a new best writes it again.
    """

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.save_last and _is_final_step(trainer) and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def _is_final_step(trainer: pl.Trainer) -> bool:
    """Whether the step just taken ends training (`max_steps`, or the last batch of the last epoch)."""
    if trainer.fast_dev_run or trainer.sanity_checking:
        return False
    if trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
        return True
    last_batch = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
    return last_batch and trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs
