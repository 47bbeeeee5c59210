"""`config.yaml`, every configuration key of a `cse fit` run, written in its folder once every setting is checked."""

import lightning.pytorch as pl
from lightning.pytorch.cli import SaveConfigCallback


class RunConfigFile(SaveConfigCallback):
    """LightningCLI's `config.yaml`, written by `cse fit` when fitting starts (`on_fit_start`) instead of at `setup`;
    `cse validate|test` write none (they log nowhere: their result is what they print).

    The data module refuses settings that depend on the training data (a batch larger than the data, a validation
    interval longer than an epoch) and the model those that depend on its mode (a batch of 1 for InfoNCE) in their own
    `setup`, which Lightning calls after the callbacks': a refused run left a new run folder with only this file in it,
    or replaced a resumed run's with settings that never trained. `on_fit_start` comes after every setup hook and
    before anything else is written (the logger's files, checkpoints).
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Nothing at `setup` (see the class)."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().setup(trainer, pl_module, "fit")
