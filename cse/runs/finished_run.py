"""A `cse fit` run as the export and the model card see it: its checkpoint, hyperparameters and validation log.

A run directory is what LightningCLI with the CSV logger writes, e.g. `runs/quickstart/version_0/`:
`checkpoints/best-step=N.ckpt` and `last.ckpt`, `config.yaml` (every configuration key) and `metrics.csv`. A run
resumed with `cse fit --ckpt_path` goes on in the same directory, its `metrics.csv` holding the whole history.
"""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cse.data.scored_pairs import read_scored_pairs
from cse.data.training_data import load_examples
from cse.data.training_sources import training_sources
from cse.errors import InputError
from cse.models.matryoshka import TRUNCATED_SPEARMAN
from cse.runs.checkpoint_file import load_checkpoint
from cse.runs.layout import CONFIG_FILE, METRICS_FILE, run_directory
from cse.runs.metrics_file import MetricsRows, read_metrics_rows

SPEARMAN, PEARSON = "val/stsb_spearman", "val/stsb_pearson"
TRUNCATED = f"val/{TRUNCATED_SPEARMAN}"  # + dimension: a Matryoshka run's Spearman of each truncated embedding


@dataclass(frozen=True)
class Validation:
    """One STS dev evaluation during training; correlations in [-1, 1]."""

    step: int  # optimizer steps done, as in checkpoint names (metrics.csv counts from 0: its step + 1)
    spearman: float
    pearson: float | None
    # Matryoshka runs (model.matryoshka_dims): the Spearman of the embedding truncated to each smaller dimension.
    spearman_by_dimension: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingRun:
    """What is known about the run that produced `checkpoint`; the run directory's files may be missing.

    Attributes:
        checkpoint: the Lightning checkpoint exported.
        global_step: optimizer steps done when it was saved.
        hyperparameters: the LightningModule's `__init__` arguments, from the checkpoint.
        config: the run's `config.yaml` (trainer, data, seed, ...), None when not found.
        validations: the STS dev log from `metrics.csv`, in step order, one per step (a step logged twice, as a
            resumed run may have, keeps its last row); empty when not found.
        train_examples: training examples (sentences, pairs, ...) as training read them, None when not readable now.
        data_mode: `unsupervised`, `pairs`, `triplets` or `scored` (which objective trained), None when unknown.
        dev_pairs: scored pairs in the dev file, None when there is none or it is not readable now.
        versions: library versions at training time recorded in the checkpoint.
        incomplete_metrics_line: the last line of `metrics.csv` when it was cut short (left out of `validations`).
    """

    checkpoint: Path
    global_step: int
    hyperparameters: dict
    config: dict | None
    validations: list[Validation]
    train_examples: int | None
    data_mode: str | None
    dev_pairs: int | None
    versions: dict[str, str]
    incomplete_metrics_line: int | None = None

    @property
    def exported_validation(self) -> Validation | None:
        """The dev evaluation of the exported checkpoint (validation runs just before a checkpoint is saved)."""
        return next((v for v in reversed(self.validations) if v.step == self.global_step), None)


def read_training_run(checkpoint: Path, run_dir: str | Path | None = None) -> TrainingRun:
    """Read the run behind `checkpoint`; `run_dir` None looks beside the checkpoint (the parent of `checkpoints/`)."""
    content = load_checkpoint(checkpoint, metadata_only=True)  # not gigabytes of weights and optimizer state
    if not isinstance(content.get("hyper_parameters"), dict):
        raise InputError(f"checkpoint {checkpoint}: not a cse checkpoint (no hyperparameters)")
    run_dir = run_directory(checkpoint, run_dir)
    config = _read_config(run_dir / CONFIG_FILE)
    metrics = read_metrics_rows(run_dir / METRICS_FILE)
    data = (config or {}).get("data") or {}
    versions = {"lightning": content.get("pytorch-lightning_version")}
    versions["transformers"] = content.get("cse_backbone", {}).get("config", {}).get("transformers_version")
    return TrainingRun(
        checkpoint=checkpoint,
        global_step=int(content.get("global_step", 0)),
        hyperparameters={k: v for k, v in content["hyper_parameters"].items() if not k.startswith("_")},
        config=config,
        validations=validations_in(metrics),
        **_training_data(data),
        dev_pairs=_count_pairs(data.get("dev_file")),
        versions={name: version for name, version in versions.items() if version},
        incomplete_metrics_line=metrics.incomplete_line,
    )


def _read_config(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(f"run config {path}: not valid YAML ({type(error).__name__})") from None
    if not isinstance(config, dict):
        raise InputError(f"run config {path}: expected a mapping of configuration keys")
    return config


def read_validations(path: Path) -> list[Validation]:
    """Validations in step order, one per step: of a step logged twice, the last row (see `validations_in`)."""
    return validations_in(read_metrics_rows(path))


def validations_in(metrics: MetricsRows) -> list[Validation]:
    """The validations of a metrics file's rows, in step order, one per step: of a step logged twice, the last row.

    A NaN correlation (constant similarities) is kept as logged; a value outside [-1, 1] is a damaged file.
    """
    validations: dict[int, Validation] = {}
    for line, row in metrics.rows:
        spearman = _correlation(metrics, line, row, SPEARMAN)
        if spearman is None:
            continue
        truncated = {
            int(key.removeprefix(TRUNCATED)): _correlation(metrics, line, row, key)
            for key, value in row.items()
            if key and key.startswith(TRUNCATED) and key.removeprefix(TRUNCATED).isdigit() and value
        }
        try:
            step = int(row["step"]) + 1
        except (KeyError, TypeError, ValueError):
            raise InputError(f"metrics file {metrics.path} line {line}: no valid step ({row.get('step')!r})") from None
        # A resumed run repeats the steps after its checkpoint: their later rows describe the weights that
        # training went on with. (`cse fit --ckpt_path` already drops the earlier ones, see `cse.runs.resume`.)
        validations[step] = Validation(step, spearman, _correlation(metrics, line, row, PEARSON), truncated)
    return sorted(validations.values(), key=lambda validation: validation.step)


def _correlation(metrics: MetricsRows, line: int, row: dict[str, str], column: str) -> float | None:
    value = metrics.number(line, row, column)
    # NaN passes: a model with constant similarities logs it; float32 rounding may pass 1 by a few ulps.
    if value is not None and abs(value) > 1 + 1e-4:
        raise InputError(f"metrics file {metrics.path} line {line}: {column} is {value}, outside [-1, 1]")
    return value


def _training_data(data: dict) -> dict:
    """Size and mode of the training data (a mixture's datasets together), read as training read it; unknown if any
    of it is gone or unreachable now."""
    try:
        sources = training_sources(data.get("train_file"), data.get("columns"), data.get("train_files"))
        examples = [
            load_examples(
                source.file,
                source.columns,
                data.get("score_range"),
                data.get("on_bad_rows", "error"),
                data.get("cache_dir"),
            )
            for source in sources
        ]
    except InputError:
        return {"train_examples": None, "data_mode": None}
    modes = {example.mapping.mode for example in examples}
    mode = modes.pop() if len(modes) == 1 else None
    return {"train_examples": sum(len(example.dataset) for example in examples), "data_mode": mode}


def _count_pairs(dev_file: str | None) -> int | None:
    if not dev_file or not Path(dev_file).is_file():
        return None
    try:
        return len(read_scored_pairs(dev_file))
    except InputError:
        return None
