"""A resumed run's `metrics.csv` as it was, kept aside until fitting starts: put back when the run is refused."""

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from cse.runs.layout import METRICS_FILE


class ResumedMetrics(Callback):
    """Removes the original `metrics.csv` that `cse.runs.metrics_history.continue_metrics` set aside once fitting
    starts (`on_fit_start`, after every setup hook, where the data module and the model refuse settings); before that,
    an exception (a refused setting, Ctrl-C) puts it back in place of the rows written back, as it was.

    Args:
        kept_aside: the file set aside, beside the run's `metrics.csv`.
    """

    def __init__(self, kept_aside: Path) -> None:
        self.kept_aside = kept_aside

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.kept_aside.unlink(missing_ok=True)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.kept_aside.is_file():
            self.kept_aside.replace(self.kept_aside.with_name(METRICS_FILE))
