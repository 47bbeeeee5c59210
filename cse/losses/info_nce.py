"""InfoNCE over cosine similarities: the SimCSE training objective (Gao et al., 2021, Eq. 1 and Eq. 5).

Relations: with `hard_negative_weight = 0` this equals sentence-transformers' `MultipleNegativesRankingLoss`
with `scale = 1 / temperature`. Unsupervised SimCSE uses it with (anchor, positive) = the two dropout views
of one sentence; supervised SimCSE with (premise, entailment, contradiction) triplets.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class InfoNCELoss(nn.Module):
    """Cross-entropy of each anchor against every positive (and hard negative) in the batch.

    Args:
        temperature: τ in Eq. 1; 0.05 in SimCSE (Table D.1).
        hard_negative_weight: added to the logit of each anchor's own hard negative, in log space: the
            softmax weight of that negative is multiplied by exp(weight). 0 (the paper's default) leaves it
            as any other negative; it is SimCSE's `hard_negative_weight` (Appendix B: α with ln α).
    """

    def __init__(self, temperature: float = 0.05, hard_negative_weight: float = 0.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.hard_negative_weight = hard_negative_weight

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor | None = None) -> Tensor:
        """Mean loss over anchors.

        Args:
            anchor: (B, H); row i's positive is `positive[i]`.
            positive: (B, H); every other row is an in-batch negative for anchor i.
            negative: (B, H) hard negatives, `negative[i]` belonging to anchor i, or None.

        Returns:
            Scalar loss.
        """
        anchor, positive = anchor.float(), positive.float()  # similarities in fp32 under mixed precision
        logits = _cosine_matrix(anchor, positive) / self.temperature  # (B, B)
        if negative is not None:
            negative_logits = _cosine_matrix(anchor, negative.float()) / self.temperature  # (B, B)
            # Weight only each anchor's own hard negative (the diagonal of the anchor × negative block).
            negative_logits = negative_logits + self.hard_negative_weight * torch.eye(
                negative_logits.size(0), negative_logits.size(1), device=logits.device, dtype=logits.dtype
            )
            logits = torch.cat([logits, negative_logits], dim=1)  # (B, B) + (B, B) -> (B, 2B)
        labels = torch.arange(anchor.size(0), device=anchor.device)  # from the actual batch, not the configured one
        return F.cross_entropy(logits, labels)


def _cosine_matrix(rows: Tensor, columns: Tensor) -> Tensor:
    """Pairwise cosine similarity, (B, H) × (N, H) -> (B, N)."""
    return F.normalize(rows, dim=-1) @ F.normalize(columns, dim=-1).T
