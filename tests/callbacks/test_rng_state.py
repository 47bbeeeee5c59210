"""`RngStateCheckpoint`: the random states survive a checkpoint, and validation does not consume them."""

import random
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from gloo_processes import free_port, join_gloo_group
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader

from cse.callbacks import rng_state
from cse.callbacks.rng_state import RngStateCheckpoint, _rng_states


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


def test_apples_mps_generator_survives_a_checkpoint_and_older_checkpoints_leave_it_be(tmp_path, monkeypatch):
    """On a Mac, dropout on the GPU draws from MPS's own generator (faked here by a CPU one, behind torch.mps's
    getter and setter): a resumed run must continue its stream, as it does CUDA's."""
    mps = torch.Generator().manual_seed(3)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "get_rng_state", mps.get_state)
    monkeypatch.setattr(torch.mps, "set_rng_state", mps.set_state)
    torch.save({"callback": RngStateCheckpoint().state_dict()}, tmp_path / "state.pt")
    expected = torch.rand(3, generator=mps)
    torch.rand(5, generator=mps)  # the interrupted run went on drawing
    restored = RngStateCheckpoint()
    restored.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True)["callback"])
    restored.on_train_start(None, None)
    assert torch.equal(torch.rand(3, generator=mps), expected)

    older = RngStateCheckpoint()  # written without MPS's state (on Linux, or by an older cse): MPS's stream goes on
    states = torch.load(tmp_path / "state.pt", weights_only=True)["callback"]
    del states["rng_states"]["torch.mps"]
    older.load_state_dict(states)
    following = torch.Generator()
    following.set_state(mps.get_state())
    older.on_train_start(None, None)
    assert torch.equal(torch.rand(3, generator=mps), torch.rand(3, generator=following))


def test_the_states_keep_the_format_of_older_checkpoints():
    """The keys and values Lightning's `_collect_rng_states` gave, which cse's checkpoints held before it used the
    public getters: a checkpoint written then still resumes."""
    states = _rng_states()
    assert set(states) == {"torch", "python", "numpy", "torch.cuda"}
    assert isinstance(states["torch"], torch.Tensor) and isinstance(states["torch.cuda"], list)
    kind, keys, position, has_gauss, cached_gaussian = states["numpy"]
    assert kind == "MT19937" and isinstance(keys, list) and len(keys) == 624
    assert states["python"] == random.getstate()


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


def _dropout_masks(limit_val_batches: float, *callbacks: Callback, ckpt_path: str | None = None) -> list[torch.Tensor]:
    """Six training steps (one epoch) with a validation after steps 2, 4 and 6; returns the dropout masks drawn."""
    module = DropoutWithRandomValidation()
    trainer = pl.Trainer(
        max_steps=6,
        val_check_interval=2,
        limit_val_batches=limit_val_batches,
        num_sanity_val_steps=0,
        accelerator="cpu",
        callbacks=[RngStateCheckpoint(), *callbacks],
        logger=False,
        enable_checkpointing=any(isinstance(callback, ModelCheckpoint) for callback in callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    # Its own generator, as cse's training loader has: starting to iterate draws nothing from the global one. The
    # validation loader has none: Lightning creates its iterator, which draws from torch's generator, before any
    # validation hook runs, and the callback must still keep that draw out of the training stream.
    data = DataLoader(torch.ones(24, 4), batch_size=4, generator=torch.Generator())
    torch.manual_seed(0)
    trainer.fit(module, data, DataLoader(torch.ones(8, 4), batch_size=4), ckpt_path=ckpt_path)
    return module.masks


def test_validation_leaves_the_training_random_stream_untouched():
    with_validation, without = _dropout_masks(1.0), _dropout_masks(0)
    assert len(with_validation) == 6
    assert all(torch.equal(a, b) for a, b in zip(with_validation, without, strict=True))


def test_a_resumed_run_draws_the_dropout_masks_of_the_uninterrupted_one(tmp_path):
    uninterrupted = _dropout_masks(1.0, ModelCheckpoint(tmp_path, "{step}", every_n_train_steps=3, save_top_k=-1))
    resumed = _dropout_masks(1.0, ckpt_path=str(tmp_path / "step=3.ckpt"))  # validates after steps 4 and 6
    assert len(resumed) == 3
    assert all(torch.equal(a, b) for a, b in zip(resumed, uninterrupted[3:], strict=True))


class SaveDuringValidation(Callback):
    """Records the random states after each training batch, and writes a checkpoint during each validation."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.after_batch: list[dict] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        self.after_batch.append(_rng_states())

    def on_validation_batch_end(self, trainer: pl.Trainer, *args) -> None:
        path = self.directory / f"validation-{trainer.global_step}.ckpt"
        if not path.exists():  # after the first validation step, which drew from torch's generator
            trainer.save_checkpoint(path)


def test_a_checkpoint_written_during_validation_holds_the_states_of_the_training_stream(tmp_path):
    probe = SaveDuringValidation(tmp_path)
    _dropout_masks(1.0, probe)
    for step in (2, 4, 6):
        checkpoint = torch.load(tmp_path / f"validation-{step}.ckpt", weights_only=True)
        saved, expected = checkpoint["callbacks"]["RngStateCheckpoint"]["rng_states"], probe.after_batch[step - 1]
        assert torch.equal(saved["torch"], expected["torch"]), step
        assert (saved["numpy"], saved["python"]) == (expected["numpy"], expected["python"]), step


def test_the_states_are_collected_for_validation_and_checkpoints_only(monkeypatch):
    collect, collected = rng_state._rng_states, []

    def counted() -> dict:
        collected.append(True)
        return collect()

    monkeypatch.setattr(rng_state, "_rng_states", counted)
    _dropout_masks(1.0)
    assert len(collected) == 3, "once per validation (no checkpoint is written), not after every training batch"


class RankSizedDraws(pl.LightningModule):
    """Each training step draws 1 + rank numbers, as dropout masks of each process's own sizes do, and keeps them."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.draws: list[list[float]] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.draws.append(torch.rand(1 + self.global_rank).tolist())
        return self.layer(batch).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _rank_draws(directory: Path, ckpt_path: str | None = None) -> list[list[float]]:
    """Six steps on 2 DDP processes, a checkpoint after each third; returns this process's draws."""
    module = RankSizedDraws()
    trainer = pl.Trainer(
        max_steps=6,
        accelerator="cpu",
        strategy="ddp",
        devices=2,
        callbacks=[RngStateCheckpoint(), ModelCheckpoint(directory, "{step}", every_n_train_steps=3, save_top_k=-1)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    torch.manual_seed(0)  # the same seed in both processes, as seed_everything gives
    trainer.fit(module, DataLoader(torch.ones(24, 4), batch_size=2, generator=torch.Generator()), ckpt_path=ckpt_path)
    return module.draws


def _two_processes(rank: int, port: int, directory: Path) -> None:
    join_gloo_group(rank, 2, port, timeout_s=60)
    uninterrupted = _rank_draws(directory)
    resumed = _rank_draws(directory / "resumed", ckpt_path=str(directory / "step=3.ckpt"))
    torch.save({"uninterrupted": uninterrupted, "resumed": resumed}, directory / f"draws-{rank}.pt")
    torch.distributed.destroy_process_group()


def test_each_process_resumes_its_own_random_stream(tmp_path):
    """Under DDP the processes' random states part; a resumed rank 1 drew rank 0's numbers, not its own."""
    torch.multiprocessing.spawn(_two_processes, args=(free_port(), tmp_path), nprocs=2, join=True)
    for rank in range(2):
        draws = torch.load(tmp_path / f"draws-{rank}.pt")
        assert len(draws["uninterrupted"]) == 6 and len(draws["resumed"]) == 3
        assert draws["resumed"] == draws["uninterrupted"][3:], f"rank {rank}"
