"""Gradient clipping that also works for fused AdamW under Lightning's mixed precision.

Lightning 2.6's `MixedPrecision.clip_gradients` raises for any optimizer that unscales inside its own step
(`_step_supports_amp_scaling`: fused Adam/AdamW), in 16-mixed and bf16-mixed alike, because with such an optimizer it
leaves the fp16 gradients scaled until the step. torch's GradScaler supports unscaling them first, as in its AMP
recipe for clipping: after `scaler.unscale_(optimizer)` the optimizer's stage is UNSCALED, so `scaler.step` hands the
fused kernel no `grad_scale` (nothing to unscale again) and the inf/NaN flag found while unscaling (the step is skipped
on overflow, as without clipping). The fused step is kept: it is the faster step, and clipping reads every gradient
anyway, so unscaling in the same pass costs what the fused kernel's own inf check would.
"""

from lightning.pytorch import LightningModule
from lightning.pytorch.plugins.precision import Precision
from torch.optim import Optimizer


def clip_gradients(
    module: LightningModule,
    optimizer: Optimizer,
    gradient_clip_val: float | None = None,
    gradient_clip_algorithm: str | None = None,
) -> None:
    """`module.clip_gradients`, with the arguments of `LightningModule.configure_gradient_clipping`.

    For an optimizer that unscales in its step, the gradients are unscaled here (16-mixed) and clipped by the
    precision plugin's base method, the same `clip_grad_norm_` (or `clip_grad_value_`) as for any other optimizer.
    """
    if not getattr(optimizer, "_step_supports_amp_scaling", False):
        module.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
        return
    precision = module.trainer.precision_plugin
    clip_val = module.trainer.gradient_clip_val if gradient_clip_val is None else gradient_clip_val
    if not clip_val:
        return
    scaler = getattr(precision, "scaler", None)  # a GradScaler in 16-mixed, None in bf16-mixed and 32-true
    if scaler is not None:
        scaler.unscale_(optimizer)
    algorithm = gradient_clip_algorithm or module.trainer.gradient_clip_algorithm or "norm"
    Precision.clip_gradients(precision, optimizer, clip_val, algorithm)
