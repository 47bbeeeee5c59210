"""`cse fit --ckpt_path last|PATH`: find the checkpoint to resume, and continue the run it belongs to.

Each fresh `cse fit` logs into a new run folder (`runs/NAME/version_N/`), so Lightning's own `last`, which looks in
the new run's empty `checkpoints/`, would find nothing and silently start over. Here `last` is the newest `last.ckpt`
among the experiment's runs. A resumed run stays one run, in one folder:

- `choose_run_folder` names that folder in the config, before the logger exists, as the logger's `version`
  (CSVLogger and TensorBoardLogger, when given none), so `metrics.csv`, `config.yaml` (overwritten) and the exported
  `best_model/` go beside the checkpoints instead of into a new `version_N+1/`.
- `resume_checkpoint` points checkpoint callbacks without an explicit `dirpath` at the folder of the checkpoint,
  where `ModelCheckpoint` finds its saved state (best score, top-k files) and keeps choosing the best model as an
  uninterrupted run would.
- `cse.runs.metrics_history` keeps the CSV history: the rows of the run's `metrics.csv` up to the checkpoint's
  step, the resumed run's appended.

A checkpoint outside `checkpoints/`, or in another experiment's folder, is resumed as before, with its metrics in a
new run folder. A TensorBoardLogger's event files are left as written: those of both parts, repeated steps included.
"""

import importlib
import os
from pathlib import Path

import lightning.pytorch as pl
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from cse.errors import InputError
from cse.runs.checkpoint_file import load_checkpoint
from cse.runs.layout import CHECKPOINT_DIR

LIGHTNING_LOOKUPS = ("best", "hpc")  # `--ckpt_path` values Lightning resolves itself


def resume_checkpoint(trainer: pl.Trainer, ckpt_path: str | None) -> str | None:
    """The checkpoint `trainer.fit` should resume from (None: start from scratch), given `--ckpt_path`.

    Checkpoint callbacks without an explicit `dirpath` are pointed at the folder of a checkpoint in a run's
    `checkpoints/` folder.

    Raises:
        InputError: a path that is not a file, or not a checkpoint `cse.runs.checkpoint_file` loads.
    """
    callbacks = [callback for callback in trainer.checkpoint_callbacks if isinstance(callback, ModelCheckpoint)]
    if _lightning_lookup(ckpt_path):
        return ckpt_path  # Lightning's own lookups, and remote files it reads through fsspec
    if ckpt_path == "last":
        if not callbacks or all(callback.dirpath for callback in callbacks):
            return ckpt_path  # a fixed checkpoint folder: Lightning's own lookup finds it
        # ModelCheckpoint's folder: <save_dir>/<name>/<version>/checkpoints with a logger, else in default_root_dir.
        logger = trainer.loggers[0] if trainer.loggers else None
        root = Path(logger.save_dir, str(logger.name)) if logger and logger.save_dir else Path(trainer.default_root_dir)
        newest = newest_last_checkpoint(root)
        if newest is None:
            rank_zero_info(f"--ckpt_path last: no last.ckpt under {root} yet; training from the start")
            return None
        ckpt_path = str(newest)
    path = Path(ckpt_path)
    if path.is_dir():
        raise InputError(
            f"--ckpt_path {ckpt_path}: is a directory; give a checkpoint file (a run's is in its checkpoints/)"
        )
    if not path.is_file():
        raise InputError(f"--ckpt_path {ckpt_path}: no such checkpoint file")
    # A truncated (killed while saving), damaged or unsafe file: one line now, not Lightning's traceback later.
    load_checkpoint(path, metadata_only=True)
    if path.parent.name == CHECKPOINT_DIR:
        for callback in callbacks:
            callback.dirpath = callback.dirpath or os.path.normpath(path.parent)
    rank_zero_info(f"resuming from {ckpt_path}")
    return ckpt_path


def newest_last_checkpoint(root: Path) -> Path | None:
    """The newest `last*.ckpt` in `root/<version>/checkpoints/` (or `root/checkpoints/`), None when there is none."""
    candidates = [*root.glob(f"*/{CHECKPOINT_DIR}/last*.ckpt"), *root.glob(f"{CHECKPOINT_DIR}/last*.ckpt")]
    return max(candidates, key=lambda path: path.stat().st_mtime) if candidates else None


def evaluation_checkpoint(ckpt_path: str | None, config: Namespace) -> str | None:
    """`cse validate|test --ckpt_path`: `last` found as `cse fit` finds it (the experiment's newest `last.ckpt`).

    Lightning's own `last` and `best` look in the new run's empty folder: `last` evaluated the untrained base model
    with a warning, `best` ended in a traceback.

    Raises:
        InputError: `best` or `hpc`, or `last` where the experiment has no `last.ckpt`.
    """
    if ckpt_path in LIGHTNING_LOOKUPS:
        raise InputError(
            f"--ckpt_path {ckpt_path}: cse validate and test take 'last' or a checkpoint file (a run's best one is "
            "runs/NAME/version_N/checkpoints/best-step=N.ckpt)"
        )
    if ckpt_path != "last":
        return ckpt_path
    root = _logger_root(config)
    newest = newest_last_checkpoint(root) if root is not None else None
    if newest is None:
        raise InputError(f"--ckpt_path last: no last.ckpt under {root or 'the logger'}; give the checkpoint file")
    return str(newest)


def evaluation_loggers(loggers: object) -> list | bool:
    """The loggers of `cse validate|test`: the config's without its first, the run folder's (`False` when none is
    left). Their result is the table they print: that folder would hold only it and take the version number of the
    experiment's next `cse fit`; a logger added after it (W&B, TensorBoard) still receives the scores."""
    return (loggers[1:] or False) if isinstance(loggers, list) else False


def _first_logger(config: Namespace) -> Namespace | None:
    """The config's first logger (the one whose folder holds the checkpoints) with its `init_args`; None without."""
    loggers = config.trainer.logger
    logger = loggers[0] if isinstance(loggers, list) and loggers else loggers
    return logger if isinstance(logger, Namespace) and logger.get("init_args") is not None else None


def _logger_root(config: Namespace) -> Path | None:
    """`save_dir/name` of the config's first logger, where its runs' `version_N/` folders are; None without one."""
    logger = _first_logger(config)
    if logger is None or not logger.init_args.get("save_dir"):
        return None
    return Path(logger.init_args.save_dir, logger.init_args.get("name") or "")


def run_to_resume(ckpt_path: str | None, root: str | Path) -> str | None:
    """The run folder's name (`version_K`) under the logger's `root` (`save_dir/name`) that `--ckpt_path` resumes.

    None when the checkpoint is not in `root/<version>/checkpoints/` (or there is none): the run logs into a new
    folder. Bad paths are left to `resume_checkpoint` to report.
    """
    if _lightning_lookup(ckpt_path):
        return None
    root = Path(root)
    path = newest_last_checkpoint(root) if ckpt_path == "last" else Path(ckpt_path)
    if path is None or path.parent.name != CHECKPOINT_DIR or not path.is_file():
        return None
    run_dir = path.parent.parent
    return run_dir.name if os.path.realpath(run_dir.parent) == os.path.realpath(root) else None


def choose_run_folder(config: Namespace) -> list[Path]:
    """`cse fit`'s config: a logger with no `version` logs into the run folder of the checkpoint it resumes, or into a
    new folder claimed here.

    For the first logger (the one whose folder holds the checkpoints), if it is a CSVLogger or TensorBoardLogger, whose
    `version` names the folder `save_dir/name/version`; WandbLogger's, for one, is a run id. Lightning's loggers pick
    the next free `version_N` when they first write, so two runs started at once in one folder would both take it:
    a new run's folder is created here (on the first process only), with `mkdir`, which only one process can win.
    Call before the logger is instantiated.

    Returns:
        The folders created for a new run (empty until the run writes into them): its own, then those of its
        experiment that did not exist yet (`save_dir/name`, ...), innermost first; none for any other run.
    """
    if config.trainer.logger is False or config.trainer.logger == []:
        _check_root_dir_is_free(config)
        return []
    logger = _first_logger(config)
    if logger is None:
        return []
    module, _, name = logger.class_path.rpartition(".")
    logger_class = getattr(importlib.import_module(module), name, None)
    if not (isinstance(logger_class, type) and issubclass(logger_class, CSVLogger | TensorBoardLogger)):
        return []
    if logger.init_args.get("version") is not None:  # the user's
        _check_version_is_free(config, _logger_root(config), logger.init_args.version)
        return []
    if config.ckpt_path == "last" and config.checkpoint.dirpath and config.periodic_checkpoint.dirpath:
        return []  # fixed checkpoint folders: Lightning's own lookup of `last` (see `resume_checkpoint`)
    root = _logger_root(config)
    version = run_to_resume(config.ckpt_path, root)
    if version is not None:
        logger.init_args.version = version
        return []
    if rank_zero_only.rank != 0:
        return []  # Lightning broadcasts the first process's folder to the others
    number = _next_version(root)
    created = [folder for folder in (root, *root.parents) if not folder.exists()]
    root.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            (root / f"version_{number}").mkdir()
        except FileExistsError:  # another run took it between the listing and now
            number += 1
            continue
        logger.init_args.version = number
        return [root / f"version_{number}", *created]


def remove_unused_folders(folders: list[Path]) -> None:
    """Remove `choose_run_folder`'s folders, innermost first, as long as they are empty (a run that stopped before
    writing anything; not those holding another run started at the same time)."""
    for folder in folders:
        try:
            folder.rmdir()  # only an empty folder
        except OSError:
            return


def _check_version_is_free(config: Namespace, root: Path, version: int | str) -> None:
    """Refuse a `version` whose folder holds another run's checkpoints, unless `--ckpt_path` resumes that run: the new
    run would replace its `last.ckpt`, best checkpoints, `best_model/` and `config.yaml`."""
    name = version if isinstance(version, str) else f"version_{version}"  # as CSVLogger and TensorBoardLogger name it
    if not _holds_checkpoints(root / name):
        return
    if config.ckpt_path is not None and run_to_resume(config.ckpt_path, root) == name:
        return
    raise InputError(
        f"trainer.logger.init_args.version: {version}: {root / name} holds a run already ({CHECKPOINT_DIR}/); resume "
        "it with --ckpt_path last, or give another version (or none, for the next free one)"
    )


def _check_root_dir_is_free(config: Namespace) -> None:
    """Without a logger the run folder is `trainer.default_root_dir`, the same for every run: refuse a new run there
    while it holds another run's checkpoints, unless `--ckpt_path` resumes that run (`last`, or one of its files). The
    new run would replace its `last.ckpt`, best checkpoints, `best_model/` and `config.yaml`."""
    if config.checkpoint.get("dirpath"):
        return  # checkpoints in a folder of the user's choosing
    root = Path(config.trainer.get("default_root_dir") or os.getcwd())
    if not _holds_checkpoints(root):
        return
    ckpt_path = config.ckpt_path
    if ckpt_path == "last" or (
        ckpt_path is not None and os.path.realpath(Path(ckpt_path).parent) == os.path.realpath(root / CHECKPOINT_DIR)
    ):
        return
    raise InputError(
        f"trainer.logger: {config.trainer.logger}: without a logger the run folder is trainer.default_root_dir "
        f"({root}), which holds a run already ({CHECKPOINT_DIR}/); resume it with --ckpt_path last, or give another "
        "trainer.default_root_dir"
    )


def _holds_checkpoints(run_dir: Path) -> bool:
    """Whether `run_dir` holds a run: files in its checkpoints folder."""
    checkpoints = run_dir / CHECKPOINT_DIR
    return checkpoints.is_dir() and any(checkpoints.iterdir())


def _next_version(root: Path) -> int:
    """The number after the highest `version_N` under `root` (0 when there is none), as Lightning's loggers count."""
    suffixes = [path.name.removeprefix("version_") for path in root.glob("version_*")]
    return max((int(suffix) for suffix in suffixes if suffix.isdigit()), default=-1) + 1


def _lightning_lookup(ckpt_path: str | None) -> bool:
    """None, or a `--ckpt_path` Lightning resolves itself: `best`, `hpc`, `registry...`, a remote URL."""
    if ckpt_path is None:
        return True
    return ckpt_path in LIGHTNING_LOOKUPS or ckpt_path.startswith("registry") or "://" in ckpt_path
