"""Check the settings of `cse fit`'s Trainer and callbacks (checkpoints, guard) before anything is built or trained.

Lightning refuses many of these only when it reaches them: a zero accumulation or logging interval ends in a
`ZeroDivisionError` at the first step, a `checkpoint.monitor` that names no metric fails at the first validation,
after training has run. Each is one line here: the key, its value and what is allowed.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
from jsonargparse import Namespace
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    StochasticWeightAveraging,
)

from cse.errors import InputError

# Metrics `cse fit` logs that a checkpoint can select on: STS dev correlations (max) and the training loss (min).
MONITORABLE = ("val/stsb_spearman", "val/stsb_pearson", "train/loss")
# Precisions that keep the weights themselves in half precision, with no float32 copy for the optimizer to update:
# what goes wrong there with AdamW at SimCSE's learning rates, and the mixed precision that trains instead.
HALF_WEIGHTS = {
    "bf16-true": ("bfloat16, where most of AdamW's small updates round away", "bf16-mixed"),
    "16-true": ("float16, where AdamW's state underflows and its steps turn to NaN", "16-mixed"),
}


@dataclass(frozen=True)
class Rule:
    """A config key, what values it allows (in words), and the test of a value."""

    key: str
    allowed: str
    accepts: Callable[[Any], bool]


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _at_least(minimum: int, *, null: bool = False) -> Callable[[Any], bool]:
    return lambda value: (null and value is None) or (_integer(value) and value >= minimum)


def _interval(value: Any) -> bool:
    """Lightning's val_check_interval: a number of steps, or a fraction of an epoch."""
    if value is None or _integer(value):
        return value is None or value >= 1
    return isinstance(value, float) and 0.0 < value <= 1.0


RULES = (
    Rule("trainer.accumulate_grad_batches", "an integer >= 1", _at_least(1)),
    Rule("trainer.log_every_n_steps", "an integer >= 1", _at_least(1, null=True)),
    Rule(
        "trainer.val_check_interval",
        "a number of steps >= 1 (or, with trainer.check_val_every_n_epoch set, a fraction of an epoch in (0, 1])",
        _interval,
    ),
    Rule(
        "trainer.check_val_every_n_epoch",
        "null (count steps across epochs) or an integer >= 1",
        _at_least(1, null=True),
    ),
    Rule("trainer.max_epochs", "-1 (no limit), null, or an integer >= 1", lambda v: v in (None, -1) or _at_least(1)(v)),
    Rule("trainer.max_steps", "-1 (no limit) or an integer >= 1", lambda v: v == -1 or _at_least(1)(v)),
    Rule(
        "trainer.gradient_clip_val",
        "null or a number >= 0",
        lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool) and v >= 0),
    ),
    Rule("trainer.num_sanity_val_steps", "-1 (the whole dev set), 0, or more batches", _at_least(-1, null=True)),
    Rule(  # Lightning's refusal named a ModelCheckpoint in trainer.callbacks that the user never gave
        "trainer.enable_checkpointing",
        "true: cse keeps the best checkpoint (checkpoint.*) and last.ckpt, to export the best model and to resume",
        lambda v: v is not False,
    ),
    Rule(  # Lightning replaces the training loader's sampler, and the run ended in a traceback
        "trainer.overfit_batches",
        "0: cse fit's training order is seeded and resumable, Lightning's overfit sampler is neither (to overfit a "
        "few batches, give a data.train_file of that many examples)",
        lambda v: v == 0 and not isinstance(v, bool),
    ),
    Rule("checkpoint.mode", "min or max", lambda v: v in ("min", "max")),
    Rule("checkpoint.save_top_k", "-1 (keep all), 0, or more checkpoints", _at_least(-1)),
    Rule("checkpoint.every_n_train_steps", "null or an integer >= 0", _at_least(0, null=True)),
    Rule("periodic_checkpoint.every_n_train_steps", "null or an integer >= 0", _at_least(0, null=True)),
    Rule("non_finite_guard.max_consecutive_steps", "an integer >= 1", _at_least(1)),
    Rule("non_finite_guard.check_every_n_steps", "an integer >= 1", _at_least(1)),
    Rule("checkpoint.monitor", f"null or one of {', '.join(MONITORABLE)}", lambda v: v is None or v in MONITORABLE),
)


def check_lightning_settings(config: Namespace) -> None:
    """Raise `InputError` for the first key of `RULES` whose value is not allowed, or a checkpoint that would keep
    the worst model."""
    for rule in RULES:
        value = config.get(rule.key)
        if not rule.accepts(value):
            raise InputError(f"{rule.key}: {value!r} is not allowed; use {rule.allowed}")
    if config.get("trainer.max_steps") == -1 and config.get("trainer.max_epochs") == -1:
        raise InputError(
            "trainer.max_epochs: -1 with trainer.max_steps -1 never ends (and the learning rate decays "
            "to 0 at the last step); set either"
        )
    _check_validation_happens(config)
    if config.get("checkpoint.monitor") == "train/loss" and config.get("checkpoint.mode") == "max":
        raise InputError("checkpoint.mode: 'max' would keep the checkpoint with the highest train/loss; use min")


def check_training_precision(precision: object) -> None:
    """Raise `InputError` for a `trainer.precision` that keeps the weights in half precision (`cse fit` only: it is
    fine to evaluate in one)."""
    if precision in HALF_WEIGHTS:
        what, mixed = HALF_WEIGHTS[precision]
        raise InputError(
            f"trainer.precision: {precision} keeps the weights and AdamW's state in {what}; use {mixed} (float32 "
            "weights, half-precision compute)"
        )


def _check_validation_happens(config: Namespace) -> None:
    """Refuse a validation interval the run never reaches (it would export its last checkpoint unevaluated), and a
    fraction of an epoch where Lightning counts steps across epochs (it refuses it with a traceback)."""
    interval, max_steps = config.get("trainer.val_check_interval"), config.get("trainer.max_steps")
    if isinstance(interval, float) and config.get("trainer.check_val_every_n_epoch") is None:
        raise InputError(
            f"trainer.val_check_interval: {interval} is a fraction of an epoch, which Lightning takes only with "
            "trainer.check_val_every_n_epoch set; give a number of steps"
        )
    if config.get("data.dev_file") and _integer(interval) and max_steps != -1 and interval > max_steps:
        raise InputError(
            f"trainer.val_check_interval: {interval} is more than trainer.max_steps {max_steps}: the run would never "
            "validate on data.dev_file, and would export its last checkpoint unevaluated"
        )


def first_validation_step(trainer: pl.Trainer, batches: int) -> int:
    """The optimizer step after which a run validating once or more per epoch (`trainer.check_val_every_n_epoch`
    set) first validates, given its `batches` training batches per epoch: Lightning counts batches within the epoch
    (`trainer.val_check_interval`, already in batches, or a fraction of the epoch's), after
    `trainer.limit_train_batches` (a number or a fraction of them). Rounded down where gradients accumulate over the
    epoch's end."""
    limit = trainer.limit_train_batches
    in_epoch = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
    interval = trainer.val_check_interval
    at = interval if isinstance(interval, int) else max(1, int(in_epoch * interval))
    return ((trainer.check_val_every_n_epoch - 1) * in_epoch + at) // trainer.accumulate_grad_batches


def check_training_callbacks(callbacks: list[Callback], validates: bool, logs: bool) -> None:
    """Raise `InputError` for a callback of `trainer.callbacks` whose result `cse fit` would drop without a word:
    StochasticWeightAveraging puts its averaged weights into the model when training ends, after the last checkpoint
    is written, and the run exports its best checkpoint by dev Spearman (the last without a dev set). An EarlyStopping
    or ModelCheckpoint on a metric the run never logs (`validates`: it has a dev set) would fail after training has
    started, or never act, and a LearningRateMonitor without a logger (`logs`) once `config.yaml` is written."""
    for callback in callbacks:
        if isinstance(callback, LearningRateMonitor) and not logs:
            raise InputError(
                "trainer.callbacks: LearningRateMonitor writes to a logger, and trainer.logger is false; leave it out "
                "(cse fit logs train/lr itself), or set a logger"
            )
        if isinstance(callback, EarlyStopping | ModelCheckpoint) and callback.monitor is not None:
            _check_monitor(type(callback).__name__, callback.monitor, validates)
        if isinstance(callback, StochasticWeightAveraging):
            raise InputError(
                "trainer.callbacks: StochasticWeightAveraging's averaged weights replace the model only when training "
                "ends, after cse fit wrote its last checkpoint; they would be neither validated nor exported (the run "
                "exports its best checkpoint); leave it out"
            )


def _check_monitor(kind: str, monitor: str, validates: bool) -> None:
    """Refuse the monitor of an EarlyStopping or ModelCheckpoint (`kind`) that `cse fit` does not log: a name outside
    `MONITORABLE` (Lightning raised at the first validation, after the run folder was written; EarlyStopping with a
    traceback), or a validation metric of a run without a dev set (the EarlyStopping never stopped the run)."""
    if monitor not in MONITORABLE:
        raise InputError(
            f"trainer.callbacks: {kind} monitors {monitor!r}, which cse fit does not log; use one of "
            f"{', '.join(MONITORABLE)}"
        )
    if monitor.startswith("val/") and not validates:
        raise InputError(
            f"trainer.callbacks: {kind} monitors {monitor}, which is logged only with data.dev_file set; set "
            "data.dev_file, or monitor train/loss"
        )
