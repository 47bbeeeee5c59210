"""Matryoshka representation learning (Kusupati et al., 2022): a loss summed over nested prefixes of the embedding.

The first d coordinates of every embedding are trained to be an embedding on their own, for each d of
`dimensions`: loss = Σ_d w_d · loss(embeddings[..., :d]). A model trained so can be truncated at inference (to 64
of 768 dimensions, say) at a small cost in quality, and its full embedding stays as good. The paper weights every
prefix 1 (c_m = 1, §3); its dimensions are halvings of the hidden size.

Relations: sentence-transformers' `MatryoshkaLoss(model, loss, matryoshka_dims, matryoshka_weights)` with
`n_dims_per_step = -1` (every prefix at every step), which truncates each embedding and normalizes it before the
inner loss; every loss here scores cosine similarities, which normalize anyway, so truncating is enough. Wraps any
loss on embeddings: `InfoNCELoss` (in-batch negatives, gathered across devices or not) and the scored-pair losses
`CoSENTLoss` and `CosineMSELoss` (sentence-transformers' Matryoshka STS example wraps CoSENT).
"""

from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn


class MatryoshkaLoss(nn.Module):
    """`loss` on the first d coordinates of the embeddings, for each d of `dimensions`, weighted and summed.

    Args:
        loss: a loss on embeddings, e.g. `InfoNCELoss(0.05)`; called once per dimension.
        dimensions: prefix lengths, strictly decreasing and positive, e.g. (768, 512, 256, 128, 64); the largest
            is usually the embedding's full size H.
        weights: one weight per dimension, > 0; None weighs each 1 (the paper's and sentence-transformers' default).
    """

    def __init__(self, loss: nn.Module, dimensions: Sequence[int], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        dimensions = tuple(dimensions)
        weights = (1.0,) * len(dimensions) if weights is None else tuple(weights)
        if not dimensions or any(d <= 0 for d in dimensions):
            raise ValueError(f"dimensions must be positive and at least one, got {list(dimensions)}")
        if any(smaller >= larger for larger, smaller in pairwise(dimensions)):
            raise ValueError(f"dimensions must be strictly decreasing, got {list(dimensions)}")
        if len(weights) != len(dimensions) or any(w <= 0 for w in weights):
            raise ValueError(f"weights must be {len(dimensions)} numbers > 0 (one per dimension), got {list(weights)}")
        self.loss = loss
        self.dimensions = dimensions
        self.weights = weights

    def forward(self, *embeddings: Tensor | None, **options) -> Tensor:
        """Σ_d w_d · loss(*each embedding's first d coordinates, **options).

        Args:
            *embeddings: the inner loss's positional arguments, each (..., H) embeddings or None: anchor (B, H),
                positive (N, H) and the optional hard negative (N, H) for InfoNCE; anchor and positive for the
                scored-pair losses. A dimension d > H is an error.
            **options: the inner loss's other arguments, passed unchanged (InfoNCE's `offset`, a pair loss's
                `score` (B,)).

        Returns:
            Scalar loss.
        """
        sizes = {tensor.size(-1) for tensor in embeddings if tensor is not None}
        if self.dimensions[0] > min(sizes):
            raise ValueError(f"dimension {self.dimensions[0]} exceeds the embeddings' size {min(sizes)}")
        total = 0.0
        for dimension, weight in zip(self.dimensions, self.weights, strict=True):
            prefixes = [None if tensor is None else tensor[..., :dimension] for tensor in embeddings]  # (..., d)
            total = total + weight * self.loss(*prefixes, **options)
        return total
