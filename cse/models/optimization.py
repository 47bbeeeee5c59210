"""AdamW with Hugging Face Trainer's weight-decay rule, and SimCSE's linear schedule stepped per optimizer step."""

from typing import Literal, get_args

import torch
from torch import nn
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

from cse.errors import InputError

Schedule = Literal["linear", "constant"]
SCHEDULES = get_args(Schedule)

# Device types with torch's fused AdamW kernel (one kernel for all parameters, the same math as the default
# multi-tensor implementation): about 5x faster optimizer steps on 2 CPU cores for 22M parameters. torch 2.13 lists
# AdamW's fused kernel on cpu, cuda and mps (`supports_fused_on` of its optimizer tests). Apple's MPS kernel ignores
# a GradScaler's grad_scale and found_inf, which is safe in cse: fp16 (16-mixed) runs in 32-true without a CUDA GPU
# (`cse.config.hardware`), so nothing scales the gradients there.
FUSED_ADAMW_DEVICE_TYPES = ("cuda", "cpu", "mps")


def parameter_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decay for weights, none for biases and LayerNorm parameters (as HF Trainer).

    Frozen parameters (requires_grad False) are left out.
    """
    no_decay: set[str] = set()
    for module_name, submodule in module.named_modules():
        for param_name, _ in submodule.named_parameters(recurse=False):
            if isinstance(submodule, nn.LayerNorm) or param_name == "bias":
                no_decay.add(f"{module_name}.{param_name}" if module_name else param_name)
    trainable = [(name, param) for name, param in module.named_parameters() if param.requires_grad]
    return [
        {"params": [param for name, param in trainable if name not in no_decay], "weight_decay": weight_decay},
        {"params": [param for name, param in trainable if name in no_decay], "weight_decay": 0.0},
    ]


def fuses(parameters: list[torch.Tensor]) -> bool:
    """Whether AdamW over `parameters` uses the fused kernel: all of them on one device type that has it."""
    device_types = {param.device.type for param in parameters}
    return len(device_types) == 1 and device_types <= set(FUSED_ADAMW_DEVICE_TYPES)


def check_schedule(schedule: str) -> None:
    """One line naming `model.lr_schedule` when it is not one of `SCHEDULES`."""
    if schedule not in SCHEDULES:
        raise InputError(f"model.lr_schedule: must be one of {', '.join(SCHEDULES)}, got {schedule!r}")


def build_optimizer(
    module: nn.Module,
    learning_rate: float,
    weight_decay: float,
    warmup_steps: int,
    total_steps: int,
    schedule: Schedule = "linear",
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (betas 0.9/0.999, eps 1e-8: HF Trainer's defaults, used by SimCSE) and linear warmup, then a linear
    decay to 0 (`linear`, SimCSE's) or the peak rate kept (`constant`, sentence-transformers' `constantlr`).

    Fused AdamW wherever torch has it (CUDA, CPU and Apple's MPS). Lightning's mixed precision refuses to clip the
    gradients of a fused optimizer; `cse.models.gradient_clipping` clips them the way torch's GradScaler supports.
    """
    groups = parameter_groups(module, weight_decay)
    fused = fuses([param for group in groups for param in group["params"]])
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.999), eps=1.0e-8, fused=fused or None)
    if schedule == "constant":
        return optimizer, get_constant_schedule_with_warmup(optimizer, warmup_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup_steps, max(total_steps, 1))
