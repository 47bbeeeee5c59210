"""Save the global random states in checkpoints, so a resumed run draws the same dropout masks as an unbroken one."""

import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


class RngStateCheckpoint(Callback):
    """Keeps the global RNG states (torch, CUDA, Apple's MPS, NumPy, Python) in checkpoints and restores them on resume.

    Lightning's checkpoints hold no random state, yet dropout (unsupervised SimCSE's only augmentation) and MLM
    masking draw from torch's global generator. The state saved is the one of the training stream, and validation is
    kept from consuming it: the training states are taken when validation starts and put back when it ends, so the
    random stream of training depends only on the batches trained, not on when validation ran or whether the run was
    interrupted; Lightning's `isolate_rng` does the same for the sanity check. The states are restored when training
    starts, after everything that runs between loading the checkpoint and the first batch.

    The states are collected only when validation starts and when a checkpoint is written, except torch's CPU state,
    copied (5 KB, no device synchronisation) after each training batch: before any validation hook runs, Lightning
    creates the validation DataLoader's iterator, which draws its base seed from that generator, and fetches the first
    batch. Neither Lightning nor torch draws from the other generators in between.

    With several processes, each draws its own masks, so their states part (CUDA's Philox offsets grow with each
    mask's size, and every process has its own GPU's): the checkpoint, written by rank 0, holds every rank's states
    (`rng_states_by_rank`, gathered as it is written), and each rank restores its own. `rng_states` stays rank 0's,
    which a checkpoint written without the per-rank states (or resumed on another number of processes) gives all.
    """

    def __init__(self) -> None:
        self._trainer: pl.Trainer | None = None
        self._torch_after_batch: torch.Tensor | None = None
        self._training: dict[str, Any] | None = None  # the training stream's states while validation runs
        self._loaded: dict[str, Any] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer  # its rank and processes, for `state_dict` and `load_state_dict`

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._torch_after_batch = torch.get_rng_state()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:  # runs inside Lightning's `isolate_rng`
            return
        self._training = _rng_states()
        if self._torch_after_batch is not None:
            self._training["torch"] = self._torch_after_batch

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning runs ModelCheckpoint callbacks after all others (`_CallbackConnector._reorder_callbacks`), so the
        # checkpoint it saves at validation end already sees the training states put back here.
        if self._training is not None:
            _set_rng_states(self._training)
            self._training = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._loaded is not None:
            by_rank = self._loaded.get("rng_states_by_rank")
            if trainer is not None and by_rank is not None and len(by_rank) == trainer.world_size:
                _set_rng_states(by_rank[trainer.global_rank])
            else:
                _set_rng_states(self._loaded["rng_states"])
            self._loaded = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._torch_after_batch = None  # a later `trainer.validate` must not rewind torch's generator to it

    def state_dict(self) -> dict[str, Any]:
        # A checkpoint written during validation (e.g. on SIGTERM) still gets the states of the training stream.
        states = self._training if self._training is not None else _rng_states()
        trainer = self._trainer
        if trainer is None or trainer.world_size == 1:
            return {"rng_states": states}
        # Every rank builds the checkpoint (Lightning's `dump_checkpoint`) and rank 0 writes it: a collective.
        by_rank: list[dict[str, Any] | None] = [None] * trainer.world_size
        torch.distributed.all_gather_object(by_rank, states)
        return {"rng_states": by_rank[0], "rng_states_by_rank": by_rank}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = state_dict


def _rng_states() -> dict[str, Any]:
    """The global random states, from torch's, NumPy's and Python's public getters, with NumPy's key array as a list.

    The keys and values are those of Lightning's private `_collect_rng_states`, which cse used before, so older
    checkpoints still load. Checkpoints are loaded with `torch.load(weights_only=True)`, which accepts tensors and
    plain Python values only.
    """
    kind, keys, *rest = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), *rest),
        "torch.cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if torch.backends.mps.is_available():  # Apple's GPU draws dropout masks on a generator of its own
        states["torch.mps"] = torch.mps.get_rng_state()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    """Restore the states `_rng_states` collected (the CUDA ones on as many devices as were saved; MPS's where it was
    saved and is here)."""
    torch.set_rng_state(states["torch"])
    torch.cuda.set_rng_state_all(states["torch.cuda"])
    if "torch.mps" in states and torch.backends.mps.is_available():
        torch.mps.set_rng_state(states["torch.mps"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
