"""A resumed run continues the training loader's saved position even when the loader was built before the restore.

Lightning hands the checkpoint's training-loader states to the loaders only when it builds them after the restore
(`_FitLoop.setup_data`). With a finite `trainer.max_epochs`, `SimCSE.configure_optimizers` reads
`trainer.estimated_stepping_batches`, which builds the loader before the checkpoint's loop state is restored; Lightning
then drops the saved position (Lightning-AI/pytorch-lightning issue #20550) and the resumed run starts its epoch over,
training again on batches it has already seen. Every recipe with `max_epochs` resumed mid-epoch so.
"""

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class LoaderPositionRestore(Callback):
    """Hands the checkpoint's loader states that Lightning left pending to the training loaders when training starts.

    `ResumableDataLoader` reads its state at the first batch, so this is in time. Lightning's own method does the
    loading: it does nothing when there is no pending state (a fresh run, or Lightning already loaded it).
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.fit_loop._load_combined_loader_states()
