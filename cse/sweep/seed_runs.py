"""A sweep folder's runs, one folder per seed: `SWEEP_DIR/seed_S/version_N/`, as `cse fit` lays out a run.

A seed is finished when `cse fit` exported its best model (`best_model/`, written after training ends), interrupted
when it left a `last.ckpt` to resume, missing otherwise.
"""

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from cse.errors import InputError
from cse.export.model_card import read_eval_scores
from cse.runs.finished_run import SPEARMAN, validations_in
from cse.runs.layout import BEST_MODEL_DIR, CHECKPOINT_DIR, LAST_CHECKPOINT, METRICS_FILE
from cse.runs.metrics_file import MetricsRows, read_metrics_rows

EVAL_FILE = "sweep_eval.json"  # `cse eval` of the seed's best model, in its run folder
STEPS_PER_SEC = "train/steps_per_sec"


@dataclass(frozen=True)
class SeedRun:
    """Where seed `seed` stands: `finished`, `interrupted` or `missing`; `run_dir` its newest run folder, if any."""

    seed: int
    state: str
    run_dir: Path | None


@dataclass(frozen=True)
class SeedResult:
    """A finished seed's figures: its best STS-B dev Spearman (in [-1, 1]) and step, the curve, its speed."""

    seed: int
    run_dir: Path
    best_step: int
    best_spearman: float
    curve: list[tuple[int, float]]
    steps_per_sec: float | None
    eval_scores: dict[str, float] = field(default_factory=dict)  # `cse eval` results ×100, by task
    incomplete_metrics_line: int | None = None  # metrics.csv's last line, cut short and left out


def find_seed_run(sweep_dir: Path, seed: int) -> SeedRun:
    """The state of `seed`'s run in `sweep_dir`; of several finished run folders, the newest (highest version)."""
    folders = sorted((sweep_dir / f"seed_{seed}").glob("version_*"), key=_version_number, reverse=True)
    for folder in folders:
        if (folder / BEST_MODEL_DIR / "README.md").is_file():
            return SeedRun(seed, "finished", folder)
    for folder in folders:
        if (folder / CHECKPOINT_DIR / LAST_CHECKPOINT).is_file():
            return SeedRun(seed, "interrupted", folder)
    return SeedRun(seed, "missing", None)


def seeds_in(sweep_dir: Path) -> list[int]:
    """The seeds that have a folder in `sweep_dir`, in increasing order."""
    names = [path.name.removeprefix("seed_") for path in sweep_dir.glob("seed_*") if path.is_dir()]
    return sorted(int(name) for name in names if re.fullmatch(r"-?\d+", name))


def read_seed_result(run: SeedRun) -> SeedResult:
    """The figures of a finished seed, read from its `metrics.csv` (and `sweep_eval.json` when evaluated).

    A NaN validation (constant similarities) is no best, as for ModelCheckpoint. Raises `InputError` (one line naming
    the file, and the line) for a seed with nothing to report: no validation but NaN ones, a damaged file.
    """
    path = run.run_dir / METRICS_FILE
    metrics = read_metrics_rows(path)
    curve = [(validation.step, validation.spearman) for validation in validations_in(metrics)]
    if not curve:
        raise InputError(f"{run.run_dir}: no {SPEARMAN} in {METRICS_FILE}; was data.dev_file set?")
    scored = [point for point in curve if not math.isnan(point[1])]
    if not scored:
        raise InputError(
            f"metrics file {path}: every {SPEARMAN} is nan (the model's similarities were constant or not finite): "
            "no best to report"
        )
    best_step, best = max(scored, key=lambda point: point[1])  # the first of equal scores, as ModelCheckpoint keeps
    eval_file = run.run_dir / EVAL_FILE
    scores = read_eval_scores(eval_file) if eval_file.is_file() else {}
    return SeedResult(
        run.seed, run.run_dir, best_step, best, curve, _steps_per_sec(metrics), scores, metrics.incomplete_line
    )


def _steps_per_sec(metrics: MetricsRows) -> float | None:
    """The run's training speed: logged steps over the time of the logged windows (ThroughputLog's
    `train/steps_per_sec` over the steps since the previous logged row; the first window, which holds the start-up,
    left out). Validation inside a window counts, as for every method alike. None with fewer than two rows."""
    rows = []
    for line, row in metrics.rows:
        rate = metrics.positive(line, row, STEPS_PER_SEC)
        if rate is not None:
            step = metrics.number(line, row, "step")
            if step is None or not step.is_integer():
                raise InputError(f"metrics file {metrics.path} line {line}: step is {row.get('step')!r}, not a step")
            rows.append((int(step), rate))
    windows = [(step - previous, rate) for (previous, _), (step, rate) in zip(rows, rows[1:], strict=False)]
    windows = [(steps, rate) for steps, rate in windows if steps > 0]
    if not windows:
        return None
    return sum(steps for steps, _ in windows) / sum(steps / rate for steps, rate in windows)


def _version_number(path: Path) -> int:
    suffix = path.name.removeprefix("version_")
    return int(suffix) if suffix.isdigit() else -1
