"""A resumed run trains each step at its own schedule's learning rate, also its first step.

The learning rate schedule is built for the resumed run's length (`trainer.max_steps`), and Lightning restores the
scheduler's step count into it, but the optimizer's learning rate is the checkpoint's: the rate of the old schedule
at that step. A finished run trained on with a larger `trainer.max_steps` ran its first step at the old schedule's
final rate (0 after SimCSE's linear decay), and only then followed the new one.
"""

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from torch.optim.lr_scheduler import LambdaLR


class ResumedLearningRate(Callback):
    """When training starts, sets each learning rate of a `LambdaLR`-scheduled optimizer to its schedule's value at
    the restored step (the value it holds already when the schedule is unchanged)."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for config in trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if not isinstance(scheduler, LambdaLR):
                continue
            pairs = zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
            rates = [base * rate(scheduler.last_epoch) for base, rate in pairs]
            for group, lr in zip(scheduler.optimizer.param_groups, rates, strict=True):
                group["lr"] = lr
            scheduler._last_lr = rates  # what get_last_lr() reports, and `train/lr` logs, for this step
