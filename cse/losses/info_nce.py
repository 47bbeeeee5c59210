"""InfoNCE over cosine similarities: the SimCSE training objective (Gao et al., 2021, Eq. 1 and Eq. 5).

Relations: with `hard_negative_weight = 0` this equals sentence-transformers' `MultipleNegativesRankingLoss`
with `scale = 1 / temperature`. Unsupervised SimCSE uses it with (anchor, positive) = the two dropout views
of one sentence; supervised SimCSE with (premise, entailment, contradiction) triplets. With `offset`, one
device's anchors are scored against the positives and hard negatives gathered from all devices, so N devices
of B anchors give the loss of one batch of N·B (SimCSE's `cl_forward` gathers under DDP as well).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cse.losses.cosine import cosine_matrix


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

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor | None = None, offset: int = 0) -> Tensor:
        """Mean loss over anchors.

        Args:
            anchor: (B, H); anchor i's positive is `positive[offset + i]`.
            positive: (N, H), N ≥ offset + B; every other row is an in-batch negative for anchor i.
            negative: (N, H) hard negatives, `negative[offset + i]` belonging to anchor i, or None.
            offset: row of anchor 0 in `positive` and `negative`: 0 for one batch (N = B); rank · B when they
                are gathered from all devices (N = world size · B) and the anchors are this device's.

        Returns:
            Scalar loss.
        """
        # From the actual batch, never the configured size; shifted to this device's rows of a gathered batch.
        labels = torch.arange(offset, offset + anchor.size(0), device=anchor.device)  # (B,)
        logits = cosine_matrix(anchor, positive) / self.temperature  # (B, N), float32 even under autocast
        if negative is not None:
            negative_logits = cosine_matrix(anchor, negative) / self.temperature  # (B, N)
            # Weight only each anchor's own hard negative: column offset + i of row i.
            # Selected, not added times a 0/1 mask: a weight of -inf (the negative removed) times 0 would be NaN.
            own = own_columns(labels, negative_logits.size(1))  # (B, N)
            weighted = torch.where(own, negative_logits + self.hard_negative_weight, negative_logits)
            logits = torch.cat([logits, weighted], dim=1)  # -> (B, 2N)
        return F.cross_entropy(logits, labels)


def own_columns(columns: Tensor, width: int) -> Tensor:
    """(B, width) booleans, row i true at column `columns[i]` (B,) only: `F.one_hot`'s pattern, compared on the
    device (`F.one_hot` reads the largest index back to the host on the CPU)."""
    return columns[:, None] == torch.arange(width, device=columns.device)
