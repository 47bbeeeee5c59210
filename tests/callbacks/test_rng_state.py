"""`RngStateCheckpoint`: the random states survive a checkpoint, and validation does not consume them."""

import random

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from cse.callbacks.rng_state import RngStateCheckpoint


def _draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_states_load_with_weights_only_and_reproduce_every_generator(tmp_path):
    callback = RngStateCheckpoint()
    torch.save({"callback": callback.state_dict()}, tmp_path / "state.pt")
    expected = _draws()
    restored = RngStateCheckpoint()
    restored.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True)["callback"])
    restored.on_train_start(None, None)
    assert _draws() == expected


class DropoutWithRandomValidation(pl.LightningModule):
    """Training draws dropout masks; validation draws from the same global generator."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 4)
        self.dropout = torch.nn.Dropout(0.5)
        self.masks: list[torch.Tensor] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        output = self.dropout(self.layer(batch))
        self.masks.append(output == 0)
        return output.sum()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        torch.rand(5)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _dropout_masks(limit_val_batches: float) -> list[torch.Tensor]:
    module = DropoutWithRandomValidation()
    trainer = pl.Trainer(
        max_steps=6,
        val_check_interval=2,
        limit_val_batches=limit_val_batches,
        num_sanity_val_steps=0,
        accelerator="cpu",
        callbacks=[RngStateCheckpoint()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    data = DataLoader(torch.ones(24, 4), batch_size=4)
    torch.manual_seed(0)
    trainer.fit(module, data, DataLoader(torch.ones(8, 4), batch_size=4))
    return module.masks


def test_validation_leaves_the_training_random_stream_untouched():
    with_validation, without = _dropout_masks(1.0), _dropout_masks(0)
    assert len(with_validation) == 6
    assert all(torch.equal(a, b) for a, b in zip(with_validation, without, strict=True))
