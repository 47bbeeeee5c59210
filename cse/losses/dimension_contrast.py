"""Dimension-wise contrastive learning (DCL): SimCSE++'s second change (Xu et al., EMNLP 2023, §4).

InfoNCE contrasts the rows (sentences) of the batch; DCL contrasts its columns (embedding dimensions): each column
of the two views' batch matrices is standardized over the batch (a `BatchNorm1d` without affine parameters, in
training mode: batch mean, biased variance, eps 1e-5), their H × H cross-correlation C = Z1ᵀ Z2 / N is divided by a
temperature, and dimension d of view 1 must pick dimension d of view 2 among all H: loss = mean_d (logsumexp_e C_de
- C_dd). It pushes the dimensions apart (decorrelation), against the rank bottleneck of the embedding.

Follows the reference `cl_forward` (github.com/Jiahao004/SimCSE-plus-plus, simcse/models_re_vicreg.py, commit 899e49b,
the "covariance" term). The reference divides C by the per-device batch size even after gathering N devices' rows;
here it is divided by the rows it sums over (N·B gathered), so N devices give the loss of one batch of N·B, as one.
"""

import contextlib

import torch
from torch import Tensor, nn

BATCH_NORM_EPS = 1e-5  # nn.BatchNorm1d's default, the reference's `cls.bn`


class DimensionContrastLoss(nn.Module):
    """InfoNCE over the embedding dimensions of two views, each dimension standardized over the batch.

    Relations: Barlow Twins (Zbontar et al., 2021) and SCD regress the same cross-correlation onto the identity;
    DCL instead takes a softmax over each row of it.

    Args:
        temperature: divides the cross-correlation; 5 in SimCSE++ with off-dropout negatives (the reference's
            `sw_temp` default, whose help says 20 for DCL alone).
    """

    def __init__(self, temperature: float = 5.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, anchor: Tensor, positive: Tensor) -> Tensor:
        """Mean loss over the H dimensions.

        Args:
            anchor: (N, H), the first view of N sentences (the whole batch, every device's when gathered).
            positive: (N, H), the second view of the same sentences.

        Returns:
            Scalar loss.
        """
        with _no_autocast(anchor.device.type):  # the standardization and the matmul in float32 at least
            first, second = standardized_columns(anchor), standardized_columns(positive)
            correlation = first.T @ second / anchor.size(0) / self.temperature  # (H, N) @ (N, H) -> (H, H)
            return (torch.logsumexp(correlation, dim=1) - correlation.diagonal()).mean()


def standardized_columns(embeddings: Tensor) -> Tensor:
    """Each column minus its batch mean, over its biased standard deviation (eps 1e-5), (N, H) -> (N, H), at least
    float32: `nn.BatchNorm1d(H, affine=False)` in training mode."""
    embeddings = embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
    mean = embeddings.mean(dim=0)  # (H,)
    variance = embeddings.var(dim=0, unbiased=False)  # (H,)
    return (embeddings - mean) / torch.sqrt(variance + BATCH_NORM_EPS)


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()
