"""SimCSE++ (Xu et al., EMNLP 2023, "SimCSE++: Improving Contrastive Learning for Sentence Embeddings from Two
Perspectives") in `SimCSE`: `model.off_dropout_negatives` and `model.dimension_contrast_weight` / `_temp`.

Reference: github.com/Jiahao004/SimCSE-plus-plus, `cl_forward` of simcse/models_re_vicreg.py (commit 899e49b, run by
`run_re_vicreg.sh`). That is the last commit whose script trains SimCSE++: from 4c36662 on, `cl_forward` picks its
negatives by a `--sampling_strategy` the script does not pass (default "None": SimCSE's in-batch negatives; its
"off_dropout" is the formula below), and at the newest commit (51d2db5) the DCL term is commented out.

Each sentence's two dropout views z1, z2 come from the usual training pass; with off-dropout negatives the sentences
are encoded once more with dropout off (z0, with gradient, the pooler's MLP applied as in training) and
`OffDropoutInfoNCELoss` replaces InfoNCE; with a DCL weight λ > 0, λ · `DimensionContrastLoss`(z1, z2) is added. Both
are defined for unsupervised data only.

The reference turns dropout off by putting every `nn.Dropout` in eval mode, which in its transformers 4 BERT turned
off all dropout; transformers 5 drops attention probabilities by the attention module's own `training` flag, so here
the whole backbone is put in eval mode for that pass (same effect), and every module's mode is restored after it.

Under DDP with `gather_across_devices`, the off-dropout embeddings are gathered like InfoNCE's positives, and DCL is
computed on both views of the global batch (its column statistics are those of all N·B sentences) on every device:
N devices of B sentences give the loss and gradients of one batch of N·B. With `mini_batch_size` (GradCache) the
off-dropout pass runs in chunks of that many sentences under the same checkpointing, in eval mode when recomputed.
"""

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from cse.errors import InputError
from cse.losses.dimension_contrast import DimensionContrastLoss
from cse.losses.off_dropout_info_nce import OffDropoutInfoNCELoss
from cse.models.batch import BatchError, Mode
from cse.models.grad_cache import checkpointed_rows


def check_simcsepp_settings(
    off_dropout_negatives: bool, weight: float, temperature: float | None, matryoshka_dims: Sequence[int] | None
) -> None:
    """One line naming the key when SimCSE++'s settings are out of range or combined with what it does not define.

    Raises:
        InputError: a DCL weight not finite and >= 0, a DCL temperature not finite and > 0, or one changed while the
            weight is 0 (DCL off), or SimCSE++ with Matryoshka.
    """
    if not (math.isfinite(weight) and weight >= 0):
        raise InputError(f"model.dimension_contrast_weight: must be a finite number >= 0 (0: DCL off), got {weight}")
    if temperature is not None and not (math.isfinite(temperature) and temperature > 0):
        raise InputError(f"model.dimension_contrast_temp: must be a finite number > 0, got {temperature}")
    if weight == 0 and temperature is not None:
        raise InputError(
            f"model.dimension_contrast_temp: {temperature} given while model.dimension_contrast_weight is 0 (DCL off); "
            "set the weight too (SimCSE++: 0.1), or leave the temperature out"
        )
    if (off_dropout_negatives or weight > 0) and matryoshka_dims is not None:
        key = "off_dropout_negatives" if off_dropout_negatives else "dimension_contrast_weight"
        raise InputError(
            f"model.{key}: SimCSE++ is not defined with model.matryoshka_dims {list(matryoshka_dims)}; use one or the "
            "other"
        )


def check_simcsepp_mode(settings: Mapping[str, Any], mode: Mode) -> None:
    """Refuse SimCSE++ for data that is not unsupervised (the paper defines it for one sentence's dropout views).

    Raises:
        InputError: naming the first SimCSE++ key that is on.
    """
    if mode == "unsupervised":
        return
    for key in ("off_dropout_negatives", "dimension_contrast_weight"):
        if settings[key]:
            raise InputError(
                f"model.{key}: {settings[key]} is SimCSE++, defined for unsupervised data (one sentence per row, its "
                f"two dropout views the positive pair), not for {mode} training data; set it off"
            )


@contextmanager
def dropout_off(module: nn.Module) -> Iterator[None]:
    """`module` and all its submodules in eval mode inside the block, each module's own mode restored after it."""
    modes = [(layer, layer.training) for layer in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for layer, training in modes:
            layer.training = training


def off_dropout_embeddings(encoder: nn.Module, tokens: dict[str, Tensor], chunk_rows: int | None) -> Tensor:
    """The encoder's embeddings with its backbone in eval mode (no dropout), with gradient: (R, L) -> (R, H).

    The encoder's own mode is kept, so its pooler MLP applies as in training (the reference applies it). In chunks of
    `chunk_rows` under GradCache's checkpointing; the recomputation in the backward pass is in eval mode too.
    """

    def encode(**inputs: Tensor) -> Tensor:
        with dropout_off(encoder.backbone):
            return encoder(**inputs)

    return checkpointed_rows(encode, tokens, chunk_rows)


class SimCSEPlusPlusLoss(nn.Module):
    """SimCSE++'s objective on the dropout views of a batch of sentences.

    Args:
        info_nce: unsupervised SimCSE's loss, used when off-dropout negatives are off.
        temperature: τ of the off-dropout InfoNCE (`model.temp`).
        off_dropout_negatives: score the dropout positive pairs against off-dropout negatives.
        dimension_contrast_weight: λ of DCL; 0 leaves it out.
        dimension_contrast_temp: DCL's temperature; None: `DimensionContrastLoss`'s default (SimCSE++'s 5).
    """

    def __init__(
        self,
        info_nce: nn.Module,
        temperature: float,
        off_dropout_negatives: bool,
        dimension_contrast_weight: float,
        dimension_contrast_temp: float | None,
    ) -> None:
        super().__init__()
        self.info_nce = info_nce
        self.off_dropout_loss = OffDropoutInfoNCELoss(temperature) if off_dropout_negatives else None
        self.dimension_contrast_weight = dimension_contrast_weight
        dcl_options = {} if dimension_contrast_temp is None else {"temperature": dimension_contrast_temp}
        self.dimension_contrast = DimensionContrastLoss(**dcl_options)

    def forward(
        self,
        views: Tensor,
        tokens: dict[str, Tensor],
        encoder: nn.Module,
        chunk_rows: int | None,
        gather: Callable[..., Tensor] | None,
        rank: int,
    ) -> Tensor:
        """The loss of this device's sentences.

        Args:
            views: (B, 2, H), each sentence's two dropout views.
            tokens: the batch's (B, 1, L) token tensors, encoded again without dropout for the negatives.
            encoder: the `SentenceEncoder` that encoded `views`.
            chunk_rows: sentences per chunk of the off-dropout pass (GradCache), or None.
            gather: `LightningModule.all_gather` when every device's rows are gathered, else None.
            rank: this device's rank: its sentences are rows [rank·B, rank·B + B) of a gathered batch.
        """
        if tokens["input_ids"].size(1) != 1:
            raise BatchError(
                "SimCSE++ (model.off_dropout_negatives, model.dimension_contrast_weight) needs unsupervised"
                " batches of (B, 1, L) sentences"
            )
        anchor, positive = views[:, 0], views[:, 1]  # (B, H) each
        offset = rank * anchor.size(0) if gather is not None else 0
        if self.off_dropout_loss is not None:
            flat = {key: value[:, 0] for key, value in tokens.items()}  # (B, 1, L) -> (B, L)
            off_dropout = _gathered(off_dropout_embeddings(encoder, flat, chunk_rows), gather)  # (NB, H)
            loss = self.off_dropout_loss(anchor, positive, off_dropout, offset=offset)
        else:
            loss = self.info_nce(anchor, _gathered(positive, gather), None, offset=offset)
        if self.dimension_contrast_weight > 0:  # on the global batch: the same value on every device
            loss = loss + self.dimension_contrast_weight * self.dimension_contrast(
                _gathered(anchor, gather), _gathered(positive, gather)
            )
        return loss


def _gathered(rows: Tensor, gather: Callable[..., Tensor] | None) -> Tensor:
    """Every device's (B, H) rows, (N, B, H) -> (NB, H), with gradients flowing back to their device; `rows` itself
    without gathering. At least float32, as `SimCSE._loss` gathers (gloo has no bfloat16 reduce)."""
    if gather is None:
        return rows
    rows = rows.to(torch.promote_types(rows.dtype, torch.float32))
    return gather(rows, sync_grads=True).flatten(0, 1)
