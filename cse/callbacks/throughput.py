"""Training speed in steps/s and sentences/s, measured without waiting for the GPU at every step."""

import math
import time
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from cse.models.batch import TrainingBatch

VALIDATION_SECONDS = "val/seconds"  # one validation, from its start to the next training batch (checkpoints included)


@dataclass(frozen=True)
class RunThroughput:
    """What a whole `fit` did: optimizer steps, training sentences (of all processes), wall-clock seconds, and the
    seconds of those spent validating, with the checkpoints written when a validation ends."""

    steps: int
    sentences: int
    seconds: float
    validation_seconds: float

    def summary(self) -> str:
        """`trained 1,000 steps in 38 s: 26.04 steps/s, 1,667 sentences/s, 9% of the time validating`; a rate below 1
        shows two significant digits (`0.0031 steps/s`, `0.52 sentences/s`), so a slow run's never reads 0."""
        seconds = max(self.seconds, 1e-9)
        steps = "step" if self.steps == 1 else "steps"
        return (
            f"trained {self.steps:,} {steps} in {self.seconds:.0f} s: {_rate(self.steps / seconds, 2)} steps/s, "
            f"{_rate(self.sentences / seconds, 0)} sentences/s, "
            f"{self.validation_seconds / seconds:.0%} of the time validating"
        )


def _rate(value: float, decimals: int) -> str:
    """`value` with `decimals` decimals, or more below 1: as many as its first two significant digits need."""
    if 0 < value < 1:
        decimals = max(decimals, 1 - math.floor(math.log10(value)))
    return f"{value:,.{decimals}f}"


class ThroughputLog(Callback):
    """Logs `train/steps_per_sec` and `train/sentences_per_sec` at every logging step, over the steps since the
    previous one, validation and checkpoint saves included; keeps the whole run's figures in `run` at the end.

    Sentences are the texts of the training examples, of all processes: one per example for unsupervised SimCSE (each
    is encoded twice), two for pairs, three for triplets. Lightning's `ThroughputMonitor` synchronizes with the GPU
    after every batch, which would stall its queue; here the clock is read on the host only. Lightning reads the
    logged loss from the device at each logging step (`trainer.log_every_n_steps`), so a window from one logging step
    to the next is timed as the GPU ran it, give or take the few steps queued at either end. The whole run's clock
    stops after waiting for the GPU once, at the end of training.

    A validation is timed from its start to the next training batch (or the end of training), so it includes the
    checkpoints saved when it ends (the best model's, `last.ckpt`): the share of a run that validation every
    `val_check_interval` steps costs. Its clock starts while the GPU may still run the steps queued before it. Each
    validation's seconds are logged as `val/seconds` in the rows of its step, beside its Spearman.
    """

    def __init__(self) -> None:
        self.run: RunThroughput | None = None
        self._start = self._window = (0.0, 0, 0)  # (time, optimizer step, sentences)
        self._sentences = 0
        self._validation_seconds = 0.0
        self._validation_start: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sentences = 0
        self._start = self._window = (time.perf_counter(), trainer.global_step, 0)
        self._validation_seconds, self._validation_start = 0.0, None
        self.run = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation_start = time.perf_counter()  # the sanity check's is dropped by `on_train_start`

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        self._end_validation(trainer)

    def _end_validation(self, trainer: pl.Trainer) -> None:
        """Count the seconds of the validation that ran since `on_validation_start`, if any, and log them."""
        if self._validation_start is None:
            return
        seconds = time.perf_counter() - self._validation_start
        self._validation_seconds += seconds
        self._validation_start = None
        # Written by the loggers directly: `self.log` here would wait for the next logging step. A validation after
        # optimizer step N has its metrics in the rows of step N - 1 (the loggers' steps count from 0).
        for logger in trainer.loggers:
            logger.log_metrics({VALIDATION_SECONDS: seconds}, step=trainer.global_step - 1)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._sentences += _sentences(batch) * trainer.world_size
        step = trainer.global_step
        if step == self._window[1] or step % trainer.log_every_n_steps:  # Lightning's logging steps, see above
            return
        now = time.perf_counter()
        seconds = max(now - self._window[0], 1e-9)
        pl_module.log("train/steps_per_sec", (step - self._window[1]) / seconds)
        pl_module.log("train/sentences_per_sec", (self._sentences - self._window[2]) / seconds)
        self._window = (now, step, self._sentences)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        self._end_validation(trainer)
        started, first_step, _ = self._start
        seconds = time.perf_counter() - started
        self.run = RunThroughput(trainer.global_step - first_step, self._sentences, seconds, self._validation_seconds)


def _sentences(batch: TrainingBatch) -> int:
    """Texts in a `TrainingBatch`: B examples of k texts, (B, k, L) token ids."""
    ids = batch["input_ids"]
    return ids.shape[0] * ids.shape[1]
