"""`cse fit --ckpt_path last|PATH`: find the checkpoint to resume, and keep writing checkpoints beside it.

Each `cse fit` logs into a new run folder (`runs/NAME/version_N/`), so Lightning's own `last`, which looks in the
new run's empty `checkpoints/`, would find nothing and silently start over. Here `last` is the newest `last.ckpt`
among the experiment's runs. The resumed run writes its checkpoints into the folder it resumed from, where
`ModelCheckpoint` finds its saved state (best score, top-k files) and keeps choosing the best model as an
uninterrupted run would; its metrics and config go to its own new run folder.
"""

import os
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info

from cse.errors import InputError

CHECKPOINT_DIR = "checkpoints"


def resume_checkpoint(trainer: pl.Trainer, ckpt_path: str | None) -> str | None:
    """The checkpoint `trainer.fit` should resume from (None: start from scratch), given `--ckpt_path`.

    Checkpoint callbacks without an explicit `dirpath` are pointed at the folder of a checkpoint in a run's
    `checkpoints/` folder.

    Raises:
        InputError: a path that is not a file.
    """
    callbacks = [callback for callback in trainer.checkpoint_callbacks if isinstance(callback, ModelCheckpoint)]
    if ckpt_path is None or ckpt_path in ("best", "hpc") or ckpt_path.startswith("registry") or "://" in ckpt_path:
        return ckpt_path  # Lightning's own lookups, and remote files it reads through fsspec
    if ckpt_path == "last":
        if not callbacks or all(callback.dirpath for callback in callbacks):
            return ckpt_path  # a fixed checkpoint folder: Lightning's own lookup finds it
        # ModelCheckpoint's folder: <save_dir>/<name>/<version>/checkpoints with a logger, else in default_root_dir.
        logger = trainer.loggers[0] if trainer.loggers else None
        root = Path(logger.save_dir, str(logger.name)) if logger and logger.save_dir else Path(trainer.default_root_dir)
        candidates = [*root.glob(f"*/{CHECKPOINT_DIR}/last*.ckpt"), *root.glob(f"{CHECKPOINT_DIR}/last*.ckpt")]
        if not candidates:
            rank_zero_info(f"--ckpt_path last: no last.ckpt under {root} yet; training from the start")
            return None
        ckpt_path = str(max(candidates, key=lambda path: path.stat().st_mtime))
    path = Path(ckpt_path)
    if not path.is_file():
        raise InputError(f"--ckpt_path {ckpt_path}: no such checkpoint file")
    if path.parent.name == CHECKPOINT_DIR:
        for callback in callbacks:
            callback.dirpath = callback.dirpath or os.path.normpath(path.parent)
    rank_zero_info(f"resuming from {ckpt_path}")
    return ckpt_path
