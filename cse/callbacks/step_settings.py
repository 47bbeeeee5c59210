"""The trainer settings that decide what one optimizer step is, kept in each checkpoint so that a resumed run can be
checked against them (`cse.runs.resumed_settings`)."""

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

STEP_SETTINGS_KEY = "cse_step_settings"  # {"accumulate_grad_batches": N} in the checkpoint


class StepSettingsCheckpoint(Callback):
    """Writes `trainer.accumulate_grad_batches` into each checkpoint: resumed with another value, Lightning would go
    on counting validations in batches of the old step (`trainer.val_check_interval` counts optimizer steps), so they
    fall between the steps asked for and the final step may go unvalidated."""

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[STEP_SETTINGS_KEY] = {"accumulate_grad_batches": trainer.accumulate_grad_batches}
