"""A resumed run's checkpoint records point at files that exist, so its final export never fails after training.

`ModelCheckpoint` restores from the resumed checkpoint the paths it recorded: the best checkpoint, the top-k ones and
the last. When the run folder was moved, or the resumed checkpoint was copied out of it, those paths name files that
are not there; training would run to the end and the export of the best model then fail. (Lightning also restores
the best score only when the checkpoint folder's path is unchanged, so a moved run would forget its best model.)
"""

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info


class ResumedCheckpointPaths(Callback):
    """At the start of a resumed run, each recorded checkpoint path that no longer exists is mapped to the file of that
    name in the checkpoint callback's folder (a moved run folder: the best score is restored with it), else forgotten:
    a lost best checkpoint is replaced by the best of this run's own validations, or by its last checkpoint.

    Args:
        ckpt_path: the checkpoint the run resumes.
    """

    def __init__(self, ckpt_path: str) -> None:
        self.ckpt_path = ckpt_path
        self._saved_states: dict[str, dict[str, Any]] = {}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._saved_states = dict(checkpoint.get("callbacks", {}))  # Lightning calls this before restoring callbacks

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint):
                self._restore_moved(callback, self._saved_states.get(callback.state_key, {}))
                self._forget_missing(callback)

    def _restore_moved(self, callback: ModelCheckpoint, state: dict[str, Any]) -> None:
        """The state Lightning did not restore because the folder's path changed, when its files are in the new one."""
        if not state or not callback.dirpath or state.get("dirpath") == callback.dirpath:
            return
        folder = Path(callback.dirpath)
        best = _in_folder(state.get("best_model_path", ""), folder)
        if best is None:
            return
        callback.best_model_path, callback.best_model_score = best, state["best_model_score"]
        callback.best_k_models = {
            moved: score
            for path, score in state.get("best_k_models", {}).items()
            if (moved := _in_folder(path, folder)) is not None
        }
        callback.kth_best_model_path = _in_folder(state.get("kth_best_model_path", ""), folder) or best
        callback.kth_value = state.get("kth_value", callback.kth_value)
        callback.last_model_path = _in_folder(state.get("last_model_path", ""), folder) or ""

    def _forget_missing(self, callback: ModelCheckpoint) -> None:
        callback.best_k_models = {path: score for path, score in callback.best_k_models.items() if Path(path).is_file()}
        if callback.kth_best_model_path and not Path(callback.kth_best_model_path).is_file():
            callback.kth_best_model_path = ""
        if callback.last_model_path and not Path(callback.last_model_path).is_file():
            callback.last_model_path = ""
        if callback.best_model_path and not Path(callback.best_model_path).is_file():
            rank_zero_info(
                f"warning: the best checkpoint recorded in {self.ckpt_path} ({callback.best_model_path}) is not there "
                "any more; this run keeps the best of its own validations"
            )
            callback.best_model_path, callback.best_model_score = "", None


def _in_folder(path: str, folder: Path) -> str | None:
    """The file named as `path`'s in `folder`, if it exists (None for no path)."""
    if not path:
        return None
    moved = folder / Path(path).name
    return str(moved) if moved.is_file() else None
