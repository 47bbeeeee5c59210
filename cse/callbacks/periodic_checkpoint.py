"""`last.ckpt` every N steps, and at the run's final step."""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint


class PeriodicCheckpoint(ModelCheckpoint):
    """Lightning's `ModelCheckpoint` (`every_n_train_steps`, `save_last`) that also writes `last.ckpt` at the end of
    the run's final epoch (`trainer.max_steps` reached, or the last of `trainer.max_epochs`), unless a checkpoint
    callback wrote it at that step.

    Lightning 2.6 writes `last.ckpt` at the end of training only if it never wrote one: a run whose final validation
    found no new best kept the `last.ckpt` of its latest periodic save or best, up to `every_n_train_steps` - 1 steps
    before the end, which `cse export last.ckpt` took for the trained model. Written at `on_train_epoch_end`, after
    the final validation and outside the training step (no wait for the GPU there), with the epoch not yet counted as
    processed (`on_save_checkpoint`), as a save after the final validation has it: resumed with a larger
    `trainer.max_steps`, the run goes on with the rest of the epoch (Lightning would otherwise count the epoch as done
    and train nothing, or skip the rest of it). For the same reason Lightning's own save at the end of training does
    not replace a `last.ckpt` written at the final step (by a final validation that found a new best).
    """

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.save_last and _ends_training(trainer) and not _saved_at_this_step(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Lightning's save of `last.ckpt` when this callback wrote none, unless a checkpoint callback wrote it at the
        final step: written again here, after the epoch was counted as done, it would replace that one with a state
        that resumes as a finished epoch."""
        if not _saved_at_this_step(trainer):
            super().on_train_end(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Any checkpoint written at the end of an epoch that `max_steps` cut short (this callback's, or a best one
        without a monitor) keeps the epoch unprocessed: Lightning marks it processed just before `on_train_epoch_end`,
        and would resume it as done."""
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        loop = checkpoint.get("loops", {}).get("fit_loop")  # none in a weights-only checkpoint
        if loop is None or loop["epoch_loop.batch_progress"]["is_last_batch"] is not False:
            return
        progress = loop["epoch_progress"]
        for counts in (progress["total"], progress["current"]):
            counts["processed"] = counts["completed"]


def _ends_training(trainer: pl.Trainer) -> bool:
    """Whether the epoch ending now is the run's last (`max_steps` reached, or the last of `max_epochs`)."""
    if trainer.fast_dev_run or trainer.sanity_checking:
        return False
    if trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
        return True
    return (
        trainer.max_epochs is not None and trainer.max_epochs != -1 and trainer.current_epoch + 1 >= trainer.max_epochs
    )


def _saved_at_this_step(trainer: pl.Trainer) -> bool:
    """Whether a checkpoint callback that keeps `last.ckpt` wrote at this step (a best checkpoint and `last.ckpt`)."""
    return any(
        isinstance(callback, ModelCheckpoint)
        and callback.save_last
        and callback._last_global_step_saved == trainer.global_step
        for callback in trainer.checkpoint_callbacks
    )
