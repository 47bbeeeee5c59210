"""A resumed run's `metrics.csv`: its rows up to the checkpoint's step kept, the resumed run's rows appended to them.

Lightning 2.6's CSVLogger, given the folder of an existing run, deletes its `metrics.csv` when it starts writing (and
warns that it will), at the start of the trainer's setup, before the data module and the model check their settings.
`continue_metrics` runs before that: it reads the file (a damaged one is refused in one line and left where it is, as
`cse.runs.metrics_file` reads it), moves it aside (to `.metrics.csv.resumed`) and writes its rows up to the
checkpoint's step back through the logger, which then appends the resumed run's rows. Rows of later steps are dropped:
the resumed run repeats those steps and logs them again, so each step is in the file once. (Lightning 2.6 writes
`last.ckpt` at a validation only with a new best checkpoint, so a crash usually resumes a few steps and validations
back.) `cse.runs.finished_run` also reads a step logged twice as one, its last row.

The file set aside stays until fitting starts (`cse.callbacks.resumed_metrics`): a run refused at setup puts it back
as it was, and a crash leaves it for the next resume, which reads the rows from it.
"""

import os
import warnings
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from cse.errors import InputError
from cse.runs.checkpoint_file import load_checkpoint
from cse.runs.layout import CHECKPOINT_DIR, METRICS_FILE
from cse.runs.metrics_file import read_metrics_rows


@rank_zero_only
def continue_metrics(logger: Logger | None, ckpt_path: str) -> Path | None:
    """Keep the rows of the run's `metrics.csv` up to the resumed checkpoint's step when CSVLogger writes there again.

    Only a CSVLogger whose folder is the checkpoint's run folder (`version_K/` of `version_K/checkpoints/x.ckpt`) is
    concerned; call before the logger first writes (it deletes the file then).

    Returns:
        The file as it was, set aside (None when there was none, or another logger or folder).

    Raises:
        InputError: a damaged file or row (not UTF-8, not CSV, a row without its integer step or with another
            number of cells than the header), naming the file and line; the file is left as it was.
    """
    path = Path(ckpt_path)
    if not isinstance(logger, CSVLogger) or not path.is_file() or path.parent.name != CHECKPOINT_DIR:
        return None
    if os.path.realpath(path.parent.parent) != os.path.realpath(logger.log_dir):
        return None
    metrics_file = Path(logger.log_dir, METRICS_FILE)
    kept_aside = metrics_file.with_name(f".{METRICS_FILE}.resumed")
    source = kept_aside if kept_aside.is_file() else metrics_file  # set aside by a resume that stopped early
    if not source.is_file():
        return None
    global_step = int(load_checkpoint(path, metadata_only=True).get("global_step", 0))
    try:
        rows = _rows_with_steps(source)  # read before anything is moved
    except InputError as error:
        raise InputError(
            f"{error}; --ckpt_path {ckpt_path} keeps the run's metrics from it: repair it, or move it away to resume "
            "without them"
        ) from None
    if source == metrics_file:
        metrics_file.replace(kept_aside)
    # A row's `step` is 0-based: the rows of optimizer step N (and of a validation after it) have step N - 1.
    kept = [(step, row) for step, row in rows if step < global_step]
    with warnings.catch_warnings():  # its "previous log files ... will be deleted": the rows are written back below
        warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
        writer = logger.experiment  # creating the writer deletes any metrics.csv
    for step, row in kept:  # through the writer, which then knows the columns and appends the new rows to these
        writer.log_metrics({key: value for key, value in row.items() if key != "step" and value}, step)
    logger.save()
    dropped = f"; dropped {len(rows) - len(kept)} rows of later steps, which this run repeats" if rows != kept else ""
    rank_zero_info(f"{metrics_file}: kept the {len(kept)} rows up to step {global_step}{dropped}")
    return kept_aside


def _rows_with_steps(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The complete rows of the metrics file `path` with their steps (an incomplete last line, cut when a run
    stopped while writing it, left out, as `cse.runs.metrics_file` reads it)."""
    metrics = read_metrics_rows(path)
    rows = []
    for line, row in metrics.rows:
        if None in row or None in row.values():  # csv.DictReader's key of extra cells, or value of missing ones
            raise InputError(f"metrics file {path} line {line}: not as many cells as the header (a damaged file)")
        try:
            rows.append((int(row["step"]), row))
        except (KeyError, ValueError):
            raise InputError(f"metrics file {path} line {line}: step is {row.get('step')!r}, not an integer") from None
    if metrics.incomplete_line is not None:
        rank_zero_info(f"{path}: left out its incomplete last line {metrics.incomplete_line}")
    return rows
