"""Save the global random states in checkpoints, so a resumed run draws the same dropout masks as an unbroken one."""

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.callbacks import Callback


class RngStateCheckpoint(Callback):
    """Keeps the global RNG states (torch, CUDA, NumPy, Python) in checkpoints and restores them on resume.

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

    With several processes, the checkpoint holds rank 0's states and every rank restores them.
    """

    def __init__(self) -> None:
        self._torch_after_batch: torch.Tensor | None = None
        self._training: dict[str, Any] | None = None  # the training stream's states while validation runs
        self._loaded: dict[str, Any] | None = None

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
            _set_rng_states(self._loaded)
            self._loaded = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._torch_after_batch = None  # a later `trainer.validate` must not rewind torch's generator to it

    def state_dict(self) -> dict[str, Any]:
        # A checkpoint written during validation (e.g. on SIGTERM) still gets the states of the training stream.
        return {"rng_states": self._training if self._training is not None else _rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = state_dict["rng_states"]


def _rng_states() -> dict[str, Any]:
    """Lightning's collection of the global random states, with NumPy's key array as a list.

    Checkpoints are loaded with `torch.load(weights_only=True)`, which accepts tensors and plain Python values only.
    """
    states = _collect_rng_states()
    if "numpy" in states:
        kind, keys, *rest = states["numpy"]
        states["numpy"] = (kind, keys.tolist(), *rest)
    return states
