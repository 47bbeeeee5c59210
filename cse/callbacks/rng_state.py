"""Save the global random states in checkpoints, so a resumed run draws the same dropout masks as an unbroken one."""

from typing import Any

import lightning.pytorch as pl
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.callbacks import Callback


class RngStateCheckpoint(Callback):
    """Keeps the global RNG states (torch, CUDA, NumPy, Python) in checkpoints and restores them on resume.

    Lightning's checkpoints hold no random state, yet dropout (unsupervised SimCSE's only augmentation) and MLM
    masking draw from torch's global generator. The state saved is the one after the last training batch, and
    validation is kept from consuming it (its states are put back when it ends), so the random stream of training
    depends only on the batches trained, not on when validation ran or whether the run was interrupted; Lightning's
    `isolate_rng` does the same for the sanity check. The states are restored when training starts, after everything
    that runs between loading the checkpoint and the first batch.

    With several processes, the checkpoint holds rank 0's states and every rank restores them.
    """

    def __init__(self) -> None:
        self._after_batch: dict[str, Any] | None = None
        self._loaded: dict[str, Any] | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._after_batch = _rng_states()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._after_batch is not None and not trainer.sanity_checking:
            _set_rng_states(self._after_batch)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._loaded is not None:
            _set_rng_states(self._loaded)
            self._loaded = None

    def state_dict(self) -> dict[str, Any]:
        # A checkpoint written during validation (e.g. on SIGTERM) still gets the states of the training stream.
        return {"rng_states": self._after_batch if self._after_batch is not None else _rng_states()}

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
