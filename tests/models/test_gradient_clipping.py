"""Clipping with the fused AdamW under Lightning's mixed-precision plugin, driven by hand as a CUDA run's step would
be: the plugin and its GradScaler as Lightning builds them (on the CPU standing in for CUDA, and on CUDA where there
is a GPU: its own fused kernel and scaler), scaled backward, our `configure_gradient_clipping`, the scaler's step and
update. The reference is written out on the CPU: unscaled gradients, the global-norm clip formula, torch's unfused
single-tensor AdamW."""

import copy

import pytest
import torch
from devices import CPU_AND_CUDA
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.plugins import MixedPrecision
from torch import nn

from cse.models.gradient_clipping import clip_gradients
from cse.models.optimization import build_optimizer

LEARNING_RATE = 1.0e-2
CLIP = 1.0e-3  # far below the gradient norm below, so clipping changes the step
SCALE = 2.0**12


class _Regression(LightningModule):
    def __init__(self, device: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.LayerNorm(32), nn.Linear(32, 4))
        self.to(device)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)


def _inputs(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(8, 16, generator=generator).to(device), torch.randn(8, 4, generator=generator).to(device)


def _attached(module: LightningModule, precision: str, clip: float) -> MixedPrecision:
    """The plugin of a CUDA run of `precision` (a GradScaler for 16-mixed) on `module`'s device, on a Trainer `module`
    is attached to."""
    device = module.device.type
    scaler = torch.amp.GradScaler(device, init_scale=SCALE) if precision == "16-mixed" else None
    plugin = MixedPrecision(precision, device, scaler=scaler)
    accelerator = "gpu" if device == "cuda" else device
    trainer = Trainer(
        accelerator=accelerator, devices=1, plugins=[plugin], gradient_clip_val=clip, logger=False, barebones=True
    )
    module.trainer = trainer
    return plugin


def _scaled_backward(module: _Regression, plugin: MixedPrecision) -> None:
    features, targets = _inputs(module.device.type)
    with plugin.forward_context():
        loss = nn.functional.mse_loss(module.net(features).float(), targets)
    (loss if plugin.scaler is None else plugin.scaler.scale(loss)).backward()  # as the plugin's pre_backward


def _reference_step(module: _Regression, scale: float, clip: float) -> dict[str, torch.Tensor]:
    """Parameters after the step written out: gradients / scale, clipped to global norm `clip`, unfused AdamW."""
    grads = [param.grad.cpu().double() / scale for param in module.parameters()]
    reference = copy.deepcopy(module.net).cpu()  # a parameter's copy has no gradient: they are set below
    total_norm = torch.sqrt(sum((grad**2).sum() for grad in grads))
    factor = min(1.0, clip / (total_norm.item() + 1e-6))  # torch.nn.utils.clip_grad_norm_'s formula
    assert factor < 0.1, "the test's clip value must bind"
    for param, grad in zip(reference.parameters(), grads, strict=True):
        param.grad = (grad * factor).float()
    optimizer = torch.optim.AdamW(reference.parameters(), lr=LEARNING_RATE, weight_decay=0.0, foreach=False)
    optimizer.step()
    return {f"net.{name}": param.detach() for name, param in reference.named_parameters()}


@pytest.mark.parametrize("device", CPU_AND_CUDA)
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_fused_adamw_step_clips_the_unscaled_gradients(precision, device):
    module = _Regression(device)
    plugin = _attached(module, precision, CLIP)
    optimizer, _ = build_optimizer(module, LEARNING_RATE, weight_decay=0.0, warmup_steps=0, total_steps=10)
    assert optimizer.defaults["fused"], "the optimizer of a CUDA run (and of a CPU run) is the fused AdamW"
    _scaled_backward(module, plugin)
    expected = _reference_step(module, SCALE if precision == "16-mixed" else 1.0, CLIP)

    module.configure_gradient_clipping(optimizer, CLIP, "norm")
    if plugin.scaler is not None:
        plugin.scaler.step(optimizer)
        plugin.scaler.update()
    else:
        optimizer.step()

    for name, param in module.named_parameters():
        torch.testing.assert_close(param.detach().cpu(), expected[name], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("device", CPU_AND_CUDA)
def test_overflowing_step_is_skipped_and_the_scale_lowered(device):
    module = _Regression(device)
    plugin = _attached(module, "16-mixed", CLIP)
    optimizer, _ = build_optimizer(module, LEARNING_RATE, weight_decay=0.0, warmup_steps=0, total_steps=10)
    before = {name: param.detach().clone() for name, param in module.named_parameters()}
    _scaled_backward(module, plugin)
    module.net[0].weight.grad[0, 0] = float("inf")  # an fp16 overflow in one gradient

    module.configure_gradient_clipping(optimizer, CLIP, "norm")
    plugin.scaler.step(optimizer)
    plugin.scaler.update()

    for name, param in module.named_parameters():
        assert torch.equal(param.detach(), before[name]), name
    assert plugin.scaler.get_scale() == SCALE * plugin.scaler.get_backoff_factor()


@pytest.mark.parametrize("device", CPU_AND_CUDA)
def test_clipping_by_value_unscales_first(device):
    module = _Regression(device)
    plugin = _attached(module, "16-mixed", 0.0)
    optimizer, _ = build_optimizer(module, LEARNING_RATE, weight_decay=0.0, warmup_steps=0, total_steps=10)
    _scaled_backward(module, plugin)
    unscaled = [param.grad / SCALE for param in module.parameters()]
    limit = 0.5 * min(grad.abs().max().item() for grad in unscaled)

    module.configure_gradient_clipping(optimizer, limit, "value")

    for param, grad in zip(module.parameters(), unscaled, strict=True):
        torch.testing.assert_close(param.grad, grad.clamp(-limit, limit))
