"""Lightning's progress bar, updated during training at most every half second rather than after every batch.

Lightning's bar (Rich's when `rich` is installed, else tqdm's) updates its count and metrics after every training
batch: about half a millisecond of host time per step on a 2-core CPU (`scripts/benchmark.py`'s `ratio cse/floor`
0.88 with the bar off, 0.85 with Lightning's Rich bar on), which an eager GPU step, bound by host time, pays in
full, and a compiled one too. An update every `interval` seconds shows the same progress.
"""

import math
from time import monotonic
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar


class _UpdatedAtIntervals:
    """Before a Lightning progress bar class: its training bar is updated at an epoch's first batch, then at the
    first batch `interval` seconds after the last update, and at the epoch's end (or the run's) for the last batch
    if it was not. Validation and the rest are the bar's own."""

    def __init__(self, interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if interval < 0:
            raise ValueError(f"interval must be at least 0 seconds, got {interval}")
        self.interval = interval
        self._updated_at = -math.inf
        self._not_shown: int | None = None  # batch_idx of the epoch's last batch while the bar does not show it

    def on_train_epoch_start(self, trainer: "pl.Trainer", *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._updated_at, self._not_shown = -math.inf, None

    def on_train_batch_end(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = monotonic()
        if now - self._updated_at < self.interval:
            self._not_shown = batch_idx
            return
        self._updated_at, self._not_shown = now, None
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._not_shown is not None:  # Lightning's bars read only the batch index
            super().on_train_batch_end(trainer, pl_module, None, None, self._not_shown)
            self._not_shown = None
        super().on_train_epoch_end(trainer, pl_module)


class TimedRichProgressBar(_UpdatedAtIntervals, RichProgressBar):
    """`RichProgressBar` updated during training at most every `interval` seconds (see `_UpdatedAtIntervals`).

    Args:
        interval: least seconds between two updates of the training bar.
        **kwargs: `RichProgressBar`'s.
    """

    def _get_train_description(self, current_epoch: int) -> str:
        """Lightning's "Epoch N/LAST", without the LAST of a run that `max_epochs: -1` leaves unbounded in epochs (the
        recipes' runs, bounded by steps), which Lightning would write as "Epoch N/-2"."""
        max_epochs = self.trainer.max_epochs
        if max_epochs is None or max_epochs >= 0:
            return super()._get_train_description(current_epoch)
        return f"Epoch {current_epoch}".ljust(len(self.validation_description))  # padded as Lightning's


class TimedTQDMProgressBar(_UpdatedAtIntervals, TQDMProgressBar):
    """`TQDMProgressBar` updated during training at most every `interval` seconds (see `_UpdatedAtIntervals`).

    Args:
        interval: least seconds between two updates of the training bar.
        **kwargs: `TQDMProgressBar`'s.
    """


def timed_progress_bar(interval: float = 0.5) -> ProgressBar:
    """The bar Lightning would choose, Rich's when `rich` is installed, else tqdm's, updated at most every
    `interval` seconds during training."""
    try:
        return TimedRichProgressBar(interval=interval)
    except ModuleNotFoundError:  # RichProgressBar's way of saying that rich is missing
        return TimedTQDMProgressBar(interval=interval)
