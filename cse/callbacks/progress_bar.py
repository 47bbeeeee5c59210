"""Lightning's tqdm progress bar, redrawn during training at most every half second rather than after every batch.

Lightning's bar redraws twice per training batch (the count, then the metrics): about half a millisecond of host
time per step on a 2-core CPU (`scripts/benchmark.py`'s `ratio cse/floor` 0.88 with the bar off, 0.85 with it on),
which an eager GPU step, bound by host time, pays in full, and a compiled one too. A redraw every `interval`
seconds shows the same progress.
"""

import math
from time import monotonic
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar


class TimedProgressBar(TQDMProgressBar):
    """`TQDMProgressBar` whose training bar is redrawn at most every `interval` seconds: at an epoch's first batch,
    then at the first batch `interval` after the last redraw, and at the epoch's end (or the run's) for the last
    batch if it was not drawn. Validation and the rest are Lightning's.

    Args:
        interval: least seconds between two redraws of the training bar.
        **kwargs: `TQDMProgressBar`'s (`refresh_rate`, `process_position`, `leave`).
    """

    def __init__(self, interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if interval < 0:
            raise ValueError(f"interval must be at least 0 seconds, got {interval}")
        self.interval = interval
        self._drawn_at = -math.inf
        self._undrawn: int | None = None  # batch_idx of the epoch's last batch while it is not drawn

    def on_train_epoch_start(self, trainer: "pl.Trainer", *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._drawn_at, self._undrawn = -math.inf, None

    def on_train_batch_end(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = monotonic()
        if now - self._drawn_at < self.interval:
            self._undrawn = batch_idx
            return
        self._drawn_at, self._undrawn = now, None
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._undrawn is not None:  # Lightning's redraw reads only the batch index
            super().on_train_batch_end(trainer, pl_module, None, None, self._undrawn)
            self._undrawn = None
        super().on_train_epoch_end(trainer, pl_module)
