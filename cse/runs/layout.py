"""The folder of a `cse fit` run, e.g. `runs/quickstart/version_0/`, and the names of what is in it.

LightningCLI with the CSV logger writes `config.yaml` (every configuration key) and `metrics.csv`; the checkpoint
callbacks write `checkpoints/best-step=N.ckpt` (the best by STS-B dev Spearman) and `checkpoints/last.ckpt`; the end
of `cse fit` exports the best as `best_model/`. A resumed run goes on in the same folder.
"""

from pathlib import Path

from cse.errors import InputError

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
BEST_CHECKPOINT_FILENAME = "best-step={step}"  # ModelCheckpoint's `filename`: best-step=125.ckpt
BEST_CHECKPOINT_GLOB = "best-step=*.ckpt"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
BEST_MODEL_DIR = "best_model"


def find_checkpoint(path: str | Path) -> Path:
    """A `.ckpt` file as given, or a run directory's best checkpoint (`best-step=N.ckpt`, else `last.ckpt`)."""
    path = Path(path)
    if path.suffix == ".ckpt" and path.is_dir() and not (path / CHECKPOINT_DIR).is_dir():
        raise InputError(f"checkpoint {path}: is a directory; expected a checkpoint file")
    if path.is_file() or (path.suffix == ".ckpt" and not path.is_dir()):
        if not path.is_file():
            raise InputError(f"checkpoint {path}: no such file")
        if path.suffix != ".ckpt":
            raise InputError(f"checkpoint {path}: expected a .ckpt file or a run directory")
        return path
    if not path.is_dir():
        raise InputError(f"checkpoint {path}: no such file or run directory")
    checkpoint_dir = path / CHECKPOINT_DIR
    best = sorted(checkpoint_dir.glob(BEST_CHECKPOINT_GLOB))
    if len(best) > 1:
        names = ", ".join(candidate.name for candidate in best)
        raise InputError(f"run directory {path}: several best checkpoints ({names}); name the .ckpt to export")
    if best:
        return best[0]
    if (checkpoint_dir / LAST_CHECKPOINT).is_file():
        return checkpoint_dir / LAST_CHECKPOINT
    raise InputError(f"run directory {path}: no {CHECKPOINT_DIR}/best-step=N.ckpt or {CHECKPOINT_DIR}/last.ckpt")


def run_directory(checkpoint: Path, run_dir: str | Path | None = None) -> Path:
    """`run_dir`, or when None the run folder of `checkpoint`: the parent of its `checkpoints/`, else its folder."""
    if run_dir is not None:
        return Path(run_dir)
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINT_DIR else checkpoint.parent
