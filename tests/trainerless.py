"""`training_step` called directly, as the model tests do to compare it with a reference (imported as `trainerless`:
pytest puts tests/ on sys.path)."""

import torch
from lightning.pytorch import LightningModule


def without_trainer(module: LightningModule) -> LightningModule:
    """Lets `module.training_step` run outside a Trainer: `log` does nothing, the learning-rate schedule is constant.

    Returns the same module.
    """
    module.log = lambda *args, **kwargs: None
    schedule = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)]), lambda _: 1.0)
    module.lr_schedulers = lambda: schedule
    return module
