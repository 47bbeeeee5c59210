"""Resuming a run that `max_steps` stopped inside an epoch: Lightning would skip the rest of that epoch."""

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.demos.boring_classes import BoringModel

from cse.errors import InputError
from cse.runs.resumed_settings import check_epoch_left_unfinished


class _SaveAfterStep(Callback):
    def __init__(self, step: int, path: Path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)


def _checkpoints(tmp_path: Path, max_steps: int, batches: int) -> tuple[dict, dict]:
    """Lightning's checkpoints of a run of `batches` batches an epoch stopped by `max_steps`: written after the last
    step's batch (as `PeriodicCheckpoint`) and after training ended (as `ModelCheckpoint.on_train_end`)."""
    trainer = Trainer(
        max_steps=max_steps,
        limit_train_batches=batches,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_SaveAfterStep(max_steps, tmp_path / "step.ckpt")],
    )
    trainer.fit(BoringModel())
    trainer.save_checkpoint(tmp_path / "end.ckpt")
    return tuple(torch.load(tmp_path / name, weights_only=False) for name in ("step.ckpt", "end.ckpt"))


def test_a_run_stopped_inside_an_epoch_is_not_trained_on(tmp_path):
    after_step, after_end = _checkpoints(tmp_path, max_steps=3, batches=10)
    with pytest.raises(InputError, match=r"^--ckpt_path end.ckpt: its run ended at step 3, inside an epoch"):
        check_epoch_left_unfinished(after_end, 6, "end.ckpt")
    with pytest.raises(InputError, match="inside an epoch"):
        check_epoch_left_unfinished(after_end, -1, "end.ckpt")  # no step limit: as many epochs as max_epochs
    check_epoch_left_unfinished(after_end, 3, "end.ckpt")  # nothing more to train: it only finishes
    check_epoch_left_unfinished(after_step, 6, "step.ckpt")  # written before the epoch was counted as done


def test_a_run_stopped_at_the_end_of_its_epoch_may_go_on(tmp_path):
    _, after_end = _checkpoints(tmp_path, max_steps=5, batches=5)
    check_epoch_left_unfinished(after_end, 10, "end.ckpt")
