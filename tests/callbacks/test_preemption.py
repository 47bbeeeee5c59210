"""`PreemptionCheckpoint` under DDP: a signal that reaches one process stops every process after the same batch with
one `last.ckpt`. Lightning 2.6's own handler broadcast from inside the signal handler, in the middle of the step's
gradient all-reduce, and each process stopped at its own flag's check: the run hung or failed, with no checkpoint."""

import os
import signal
from pathlib import Path

import lightning.pytorch as pl
import torch
from gloo_processes import free_port, join_gloo_group
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader

from cse.callbacks.preemption import PreemptionCheckpoint

SIGNALLED_STEP = 3  # rank 0 gets SIGTERM as its batch of step 3 (global_step 2 before it) starts


class SignalRankZero(Callback):
    """Sends this process SIGTERM at the start of a training batch, on rank 0 only (as a job's launcher gets it)."""

    def on_train_batch_start(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_rank == 0 and trainer.global_step == SIGNALLED_STEP - 1:
            os.kill(os.getpid(), signal.SIGTERM)


class Linear(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self.layer(batch).square().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _process(rank: int, port: int, directory: Path) -> None:
    join_gloo_group(rank, 2, port, timeout_s=30)
    trainer = pl.Trainer(
        max_steps=8,
        accelerator="cpu",
        strategy="ddp",
        devices=2,
        callbacks=[SignalRankZero(), PreemptionCheckpoint(), ModelCheckpoint(directory, save_last=True)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    stopped = None
    try:
        trainer.fit(Linear(), DataLoader(torch.ones(32, 4), batch_size=2))
    except SIGTERMException:
        stopped = trainer.global_step
    torch.save(stopped, directory / f"stopped-{rank}.pt")
    torch.distributed.destroy_process_group()


def test_a_signal_to_one_process_stops_all_after_the_same_batch_with_one_checkpoint(tmp_path):
    torch.multiprocessing.spawn(_process, args=(free_port(), tmp_path), nprocs=2, join=True)
    assert [torch.load(tmp_path / f"stopped-{rank}.pt") for rank in range(2)] == [SIGNALLED_STEP] * 2
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == SIGNALLED_STEP
