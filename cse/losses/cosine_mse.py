"""Cosine-MSE: regress the cosine similarity of each pair onto its gold score.

Relations: sentence-transformers' `CosineSimilarityLoss` (MSE between cos(u, v) and the label). Scores must be on
the cosine's scale, e.g. STS 0–5 mapped to [0, 1] with `data.score_range: [0, 5]`. `CoSENTLoss` needs no scaling.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from cse.losses.cosine import paired_cosine


class CosineMSELoss(nn.Module):
    def forward(self, anchor: Tensor, positive: Tensor, score: Tensor) -> Tensor:
        """Mean squared error of cos(anchor_i, positive_i) against score_i: (B, H), (B, H), (B,) -> scalar."""
        cosine = paired_cosine(anchor, positive)  # (B,)
        return F.mse_loss(cosine, score.float())
