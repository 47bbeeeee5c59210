"""AdamW with Hugging Face Trainer's weight-decay rule, and SimCSE's linear schedule stepped per optimizer step."""

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup


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


def build_optimizer(
    module: nn.Module, learning_rate: float, weight_decay: float, warmup_steps: int, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (betas 0.9/0.999, eps 1e-8: HF Trainer's defaults, used by SimCSE) and linear warmup then decay to 0.

    Fused AdamW on CUDA (same math, one kernel for all parameters).
    """
    fused = all(param.is_cuda for param in module.parameters() if param.requires_grad)
    optimizer = torch.optim.AdamW(
        parameter_groups(module, weight_decay), lr=learning_rate, betas=(0.9, 0.999), eps=1.0e-8, fused=fused or None
    )
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup_steps, max(total_steps, 1))
