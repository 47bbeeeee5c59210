"""`PreemptionCheckpoint` under DDP: a signal that reaches one process stops every process after the same batch with
one `last.ckpt`. Lightning 2.6's own handler broadcast from inside the signal handler, in the middle of the step's
gradient all-reduce, and each process stopped at its own flag's check: the run hung or failed, with no checkpoint.
The agreement waits for no step: each batch's reduced note is read `SIGNAL_READ_LAG` batches later, and Lightning's
own per-batch broadcast and read is left out."""

import os
import signal
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from devices import CPU_AND_CUDA
from gloo_processes import free_port, join_gloo_group
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader

from cse.callbacks.preemption import SIGNAL_READ_LAG, AgreedNotes, PreemptionCheckpoint

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


class CountBroadcasts(Callback):
    """Counts `torch.distributed.broadcast` calls from the start of training to its end."""

    def __init__(self) -> None:
        self.count = 0
        self._broadcast = torch.distributed.broadcast

    def on_train_start(self, *args) -> None:
        def counted(*args, **kwargs):
            self.count += 1
            return self._broadcast(*args, **kwargs)

        torch.distributed.broadcast = counted

    def on_train_end(self, *args) -> None:
        torch.distributed.broadcast = self._broadcast


def _trainer(callbacks: list[Callback], max_steps: int, directory: Path) -> pl.Trainer:
    return pl.Trainer(
        max_steps=max_steps,
        default_root_dir=directory,  # Lightning's own checkpoint goes there, not into the folder pytest runs in
        accelerator="cpu",
        strategy="ddp",
        devices=2,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def _process(rank: int, port: int, directory: Path) -> None:
    join_gloo_group(rank, 2, port, timeout_s=30)
    callbacks = [SignalRankZero(), PreemptionCheckpoint(), ModelCheckpoint(directory, save_last=True)]
    trainer = _trainer(callbacks, 8, directory)
    stopped = None
    try:
        trainer.fit(Linear(), DataLoader(torch.ones(32, 4), batch_size=2))
    except SIGTERMException:
        stopped = trainer.global_step
    torch.save(stopped, directory / f"stopped-{rank}.pt")
    torch.distributed.destroy_process_group()


def test_a_signal_to_one_process_stops_all_after_the_same_batch_with_one_checkpoint(tmp_path):
    torch.multiprocessing.spawn(_process, args=(free_port(), tmp_path), nprocs=2, join=True)
    stopped_at = SIGNALLED_STEP + SIGNAL_READ_LAG
    assert [torch.load(tmp_path / f"stopped-{rank}.pt") for rank in range(2)] == [stopped_at] * 2
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == stopped_at


def _count_broadcasts(rank: int, port: int, directory: Path) -> None:
    join_gloo_group(rank, 2, port, timeout_s=30)
    counts = {}
    for name, callbacks in (("lightning", []), ("cse", [PreemptionCheckpoint()])):
        counter = CountBroadcasts()
        trainer = _trainer([counter, *callbacks], 4, directory)
        trainer.fit(Linear(), DataLoader(torch.ones(32, 4), batch_size=2))
        counts[name] = (counter.count, "_broadcast_sigterm_tensor" in vars(trainer.fit_loop.epoch_loop))
    torch.save(counts, directory / f"broadcasts-{rank}.pt")
    torch.distributed.destroy_process_group()


def test_no_broadcast_of_lightnings_flag_before_each_batch_and_lightnings_loop_restored_after(tmp_path):
    torch.multiprocessing.spawn(_count_broadcasts, args=(free_port(), tmp_path), nprocs=2, join=True)
    for rank in range(2):
        counts = torch.load(tmp_path / f"broadcasts-{rank}.pt")
        assert counts == {"lightning": (4, False), "cse": (0, False)}  # Lightning alone: one per batch


@pytest.fixture(params=CPU_AND_CUDA)
def one_process_group(request):
    """A process group of this process alone (gloo on the CPU, NCCL on CUDA), without torchrun's variables."""
    device = torch.device(request.param)
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend, store=torch.distributed.HashStore(), rank=0, world_size=1)
    yield device
    torch.distributed.destroy_process_group()


def test_each_batchs_agreed_note_is_read_the_lag_later(one_process_group):
    notes = AgreedNotes(one_process_group)
    signalled = [False, True, False, False, True, True, False, False, False]
    read = [notes.any_signalled(noted) for noted in signalled]
    assert read == [False] * SIGNAL_READ_LAG + signalled[:-SIGNAL_READ_LAG]


@pytest.mark.parametrize("one_process_group", CPU_AND_CUDA[1:], indirect=True)
def test_on_cuda_reading_a_note_does_not_wait_for_the_batches_after_it(one_process_group):
    notes = AgreedNotes(one_process_group)
    assert not notes.any_signalled(True)
    torch.cuda._sleep(2_000_000_000)  # the GPU busy for about a second: the batches after the first note
    read = [notes.any_signalled(False) for _ in range(SIGNAL_READ_LAG)]
    still_busy = not torch.cuda.current_stream().query()
    torch.cuda.synchronize()
    assert read == [False] * (SIGNAL_READ_LAG - 1) + [True]  # the first note, read without waiting for the sleep
    assert still_busy
