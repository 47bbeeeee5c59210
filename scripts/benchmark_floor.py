"""The floor: the training step of cse written by hand as a plain PyTorch loop, the speed that cse should not fall
below. Same model (backbone without its own pooler, [CLS] + cse's MLP with its initial weights), same loss and
optimizer settings as cse's defaults."""

import argparse
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from transformers import AutoModel, get_linear_schedule_with_warmup

from cse.models.optimization import fuses
from cse.models.simcse import SimCSE

TEMPERATURE = 0.05  # SimCSE Table D.1, cse's default
LEARNING_RATE = 3.0e-5  # cse's default
AUTOCAST_DTYPES = {"32-true": None, "16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}


def cycle(loader: DataLoader) -> Iterator[dict[str, Tensor]]:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


class FloorLoop:
    """The hand-written training step: one forward of the duplicated batch, InfoNCE, backward, clipping, AdamW,
    schedule; batches hold (B, L) `input_ids` and `attention_mask`."""

    def __init__(
        self, module: SimCSE, model_dir: str, loader: DataLoader, args: argparse.Namespace, total_steps: int
    ) -> None:
        self.device = torch.device(args.device)
        self.backbone = AutoModel.from_pretrained(model_dir).train()
        self.backbone.pooler = None  # [CLS] + MLP below, as cse: BERT's own pooler is not computed
        hidden = self.backbone.config.hidden_size
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.mlp[0].load_state_dict(module.encoder.mlp.dense.state_dict())  # the same weights as cse's MLP
        self.backbone.to(self.device)
        self.mlp.to(self.device)
        self.parameters = [*self.backbone.parameters(), *self.mlp.parameters()]
        self.optimizer = torch.optim.AdamW(
            self.parameters,
            lr=LEARNING_RATE,
            betas=(0.9, 0.999),
            eps=1.0e-8,
            weight_decay=0.0,
            fused=fuses(self.parameters) or None,
        )  # cse's defaults: no weight decay (SimCSE), HF Trainer's betas and eps; fused where cse fuses
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, 0, total_steps)
        self.dtype = AUTOCAST_DTYPES[args.precision]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.clip = args.gradient_clip_val
        self.batches = cycle(loader)
        # As cse compiles its encoder's forward: static shapes, this function alone, the loss eager.
        self.encode = torch.compile(self._encode, mode=args.compile, dynamic=False) if args.compile else self._encode

    def _encode(self, ids: Tensor, mask: Tensor) -> Tensor:
        """(N, L) ids and mask -> (N, H) embeddings: [CLS] through the MLP."""
        hidden = self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state  # (N, L, H)
        return self.mlp(hidden[:, 0])

    def step(self) -> Tensor:
        """One training step; returns the loss."""
        batch = next(self.batches)
        ids = batch["input_ids"].to(self.device, non_blocking=True)
        mask = batch["attention_mask"].to(self.device, non_blocking=True)
        size = ids.size(0)
        # (B, L) -> (2B, L): rows 2i and 2i + 1 are sentence i, as cse's training_step orders them
        ids, mask = ids.repeat_interleave(2, dim=0), mask.repeat_interleave(2, dim=0)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            embeddings = self.encode(ids, mask).view(size, 2, -1).float()  # (2B, H) -> (B, 2, H)
        first, second = F.normalize(embeddings[:, 0], dim=-1), F.normalize(embeddings[:, 1], dim=-1)
        loss = F.cross_entropy(first @ second.T / TEMPERATURE, torch.arange(size, device=self.device))
        self.scaler.scale(loss).backward()
        if self.clip:
            self.scaler.unscale_(self.optimizer)  # no-op unless fp16: clip the true gradients
            torch.nn.utils.clip_grad_norm_(self.parameters, self.clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()
