"""InfoNCE with off-dropout negatives: SimCSE++'s first change (Xu et al., EMNLP 2023, §3).

Unsupervised SimCSE scores each sentence's two dropout views (the positive pair) against the other sentences' dropout
views, so the negatives carry dropout noise too. SimCSE++ keeps the dropout positive pair and takes the negatives
from one more pass of the sentences with dropout off: the logits of anchor i are its positive, cos(z1_i, z2_i) / τ,
and cos(z0_i, z0_j) / τ for every other sentence j, z0 being the off-dropout embeddings (anchor i's own off-dropout
embedding z0_i stands in for the anchor on the negative side). As the reference `cl_forward`
(github.com/Jiahao004/SimCSE-plus-plus, simcse/models_re_vicreg.py, commit 899e49b), the pair j = i is not removed but
its logit is lowered by ln(1e-45) (the reference's `SMALL_NUM`), and the loss is the mean of -s⁺ + logsumexp.
"""

import math

import torch
from torch import Tensor, nn

from cse.losses.cosine import cosine_matrix, paired_cosine
from cse.losses.info_nce import own_columns

OWN_PAIR_LOGIT_SHIFT = math.log(1e-45)  # the reference's SMALL_NUM = np.log(1e-45), added to the pair j = i


class OffDropoutInfoNCELoss(nn.Module):
    """Cross-entropy of each dropout positive pair against the off-dropout similarities of the anchor's sentence.

    Relations: `InfoNCELoss` (unsupervised SimCSE) is the same objective with the dropout views as negatives,
    cos(z1_i, z2_j) for j ≠ i. The positive is scaled by the reference's `pos_ratio`, 1 in its SimCSE++ script
    (`run_re_vicreg.sh`), so not at all here.

    Args:
        temperature: τ; 0.05, SimCSE's, in SimCSE++ (`run_re_vicreg.sh --temp 0.05`).
    """

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, anchor: Tensor, positive: Tensor, off_dropout: Tensor, offset: int = 0) -> Tensor:
        """Mean loss over anchors.

        Args:
            anchor: (B, H), the first dropout view of each sentence.
            positive: (B, H), the second dropout view: row i is anchor i's positive.
            off_dropout: (M, H) off-dropout embeddings of every sentence scored against (M = B on one device,
                N·B gathered from N devices); row offset + i is anchor i's own sentence.
            offset: row of anchor 0's sentence in `off_dropout`: 0 for one batch, rank · B when gathered.

        Returns:
            Scalar loss.
        """
        size = anchor.size(0)
        positive_logit = paired_cosine(anchor, positive) / self.temperature  # (B,), float32 even under autocast
        own = off_dropout[offset : offset + size]  # (B, H): each anchor's sentence without dropout
        negative_logits = cosine_matrix(own, off_dropout) / self.temperature  # (B, M)
        rows = torch.arange(offset, offset + size, device=anchor.device)  # (B,)
        own_pair = own_columns(rows, off_dropout.size(0)).to(negative_logits.dtype)  # (B, M), 1 at column offset + i
        logits = torch.cat([negative_logits + OWN_PAIR_LOGIT_SHIFT * own_pair, positive_logit[:, None]], dim=1)
        return (torch.logsumexp(logits, dim=1) - positive_logit).mean()  # (B, M + 1) -> scalar
