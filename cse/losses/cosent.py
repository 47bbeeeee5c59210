"""CoSENT: a ranking loss on the cosine similarities of scored pairs (Su, 2022; sentence-transformers' CoSENTLoss).

For every two pairs i, j with gold score_i > score_j it penalises cos_j > cos_i:
loss = log(1 + Σ_{score_i > score_j} exp(λ (cos_j − cos_i))). Only the order of the gold scores matters, so no score
scaling is needed. Relations: the default loss for scored pairs in `cse`; `CosineMSELoss` regresses the cosine
onto the score instead.
"""

import torch
from torch import Tensor, nn

from cse.losses.cosine import paired_cosine


class CoSENTLoss(nn.Module):
    """Args:
    scale: λ, the inverse temperature of the pairwise ranking terms; 20 in CoSENT and sentence-transformers.
    """

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, anchor: Tensor, positive: Tensor, score: Tensor) -> Tensor:
        """Scalar loss of B scored pairs: anchor (B, H), positive (B, H), score (B,)."""
        cosine = paired_cosine(anchor, positive) * self.scale  # (B,)
        differences = cosine[:, None] - cosine[None, :]  # (B, B): [i, j] = λ (cos_i − cos_j)
        wrong_order = score[:, None] < score[None, :]  # pairs where i should be less similar than j
        differences = differences.masked_fill(~wrong_order, float("-inf"))
        zero = torch.zeros(1, device=differences.device, dtype=differences.dtype)  # the "1 +" inside the log
        return torch.logsumexp(torch.cat([zero, differences.flatten()]), dim=0)
