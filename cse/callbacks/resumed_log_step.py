"""A resumed run logs each step at its own step, also when it resumes at a validation it skips.

Lightning counts a step for its loggers (`_batches_that_stepped`) after the step's validation. A checkpoint written
at a validation holds the count before it, and Lightning adds the step back when it resumes there and skips that
validation. `last.ckpt` written after the count (by `PeriodicCheckpoint` at the end of a run whose final validation
found no new best, or by Lightning's `on_train_end` after an `EarlyStopping` stop) holds the count after it: resumed,
the step was counted twice, and every row the resumed run logged (train/loss, the validations) was one step late in
`metrics.csv` and the model card's validation log.
"""

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class ResumedLogStep(Callback):
    """At the first batch of a resumed run, sets Lightning's logging step to the optimizer steps done.

    `cse fit` trains with one optimizer and automatic optimization: before each batch, the logging step counts the
    optimizer steps done (with gradient accumulation too), which is `trainer.global_step`. Once done, the hook is set
    to None: Lightning skips it at the later steps (`cse.callbacks.lightning_overhead`).
    """

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, index: int
    ) -> None:
        trainer.fit_loop.epoch_loop._batches_that_stepped = trainer.global_step
        self.on_train_batch_start = None  # type: ignore[method-assign]
