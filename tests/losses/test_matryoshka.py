"""Matryoshka loss against a naive loop over prefixes and against sentence-transformers' own `MatryoshkaLoss`."""

import math

import pytest
import torch
import torch.nn.functional as F
from sentence_transformers.sentence_transformer.losses import CoSENTLoss as STCoSENTLoss
from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss as STMatryoshkaLoss
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch import nn

from cse.losses.cosent import CoSENTLoss
from cse.losses.cosine_mse import CosineMSELoss
from cse.losses.info_nce import InfoNCELoss
from cse.losses.matryoshka import MatryoshkaLoss

HIDDEN = 16
DIMENSIONS = (16, 8, 4, 2)


@pytest.fixture
def embeddings() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return tuple(torch.randn(3, 6, HIDDEN, dtype=torch.float64).unbind(0))


def _naive_prefix_info_nce(anchor, positive, negative, dimensions, weights, temperature, weight, offset) -> float:
    """Σ_d w_d · InfoNCE of the first d coordinates, as loops over prefixes and anchors (SimCSE Eq. 1 / Eq. 5)."""
    total = 0.0
    for d, w in zip(dimensions, weights, strict=True):
        per_anchor = 0.0
        for i in range(anchor.size(0)):
            own = offset + i
            cosines = [F.cosine_similarity(anchor[i, :d], row[:d], dim=0).item() for row in positive]
            logits = [cosine / temperature for cosine in cosines]
            if negative is not None:
                for j, row in enumerate(negative):
                    cosine = F.cosine_similarity(anchor[i, :d], row[:d], dim=0).item()
                    logits.append(cosine / temperature + (weight if j == own else 0.0))
            per_anchor += math.log(sum(math.exp(logit) for logit in logits)) - logits[own]
        total += w * per_anchor / anchor.size(0)
    return total


@pytest.mark.parametrize("hard_negatives", [False, True])
@pytest.mark.parametrize("weights", [None, (1.0, 0.5, 2.0, 0.25)])
def test_is_the_weighted_sum_of_per_prefix_info_nce(embeddings, hard_negatives, weights):
    anchor, positive, negative = embeddings
    negative = negative if hard_negatives else None
    loss = MatryoshkaLoss(InfoNCELoss(0.05, hard_negative_weight=0.7), DIMENSIONS, weights)(anchor, positive, negative)
    expected = _naive_prefix_info_nce(
        anchor, positive, negative, DIMENSIONS, weights or (1.0,) * 4, temperature=0.05, weight=0.7, offset=0
    )
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_anchors_of_one_device_against_gathered_candidates(embeddings):
    """The DDP call: this device's 2 anchors are rows [2, 4) of 6 gathered candidates (`offset`)."""
    anchor, positive, negative = embeddings
    loss = MatryoshkaLoss(InfoNCELoss(0.05), DIMENSIONS)(anchor[2:4], positive, negative, offset=2)
    expected = _naive_prefix_info_nce(
        anchor[2:4], positive, negative, DIMENSIONS, (1.0,) * 4, temperature=0.05, weight=0.0, offset=2
    )
    assert loss.item() == pytest.approx(expected, rel=1e-10)


class _Embeddings(nn.Module):
    """A stand-in `SentenceTransformer` whose forward returns the embeddings it is given: sentence-transformers'
    losses then run on exactly our embeddings."""

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"sentence_embedding": features["embedding"]}

    def get_embedding_dimension(self) -> int:
        return HIDDEN


def _sentence_transformers_loss(inner: str, weights) -> STMatryoshkaLoss:
    model = _Embeddings()
    loss = MultipleNegativesRankingLoss(model, scale=1 / 0.05) if inner == "mnrl" else STCoSENTLoss(model, scale=20.0)
    return STMatryoshkaLoss(model, loss, list(DIMENSIONS), weights)


@pytest.mark.parametrize("columns", [2, 3])
@pytest.mark.parametrize("weights", [None, [1.0, 0.5, 2.0, 0.25]])
def test_equals_sentence_transformers_matryoshka_of_multiple_negatives_ranking(embeddings, columns, weights):
    """Loss and gradients with respect to every embedding: InfoNCE at temperature τ is MNRL at scale 1/τ."""
    ours = [tensor.clone().requires_grad_() for tensor in embeddings[:columns]]
    theirs = [tensor.clone().requires_grad_() for tensor in embeddings[:columns]]
    loss = MatryoshkaLoss(InfoNCELoss(0.05), DIMENSIONS, weights)(*ours)
    expected = _sentence_transformers_loss("mnrl", weights)([{"embedding": t} for t in theirs], torch.zeros(6))
    loss.backward()
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    for mine, reference in zip(ours, theirs, strict=True):
        assert torch.allclose(mine.grad, reference.grad, rtol=1e-8, atol=1e-12)


def test_equals_sentence_transformers_matryoshka_of_cosent(embeddings):
    anchor, positive, _ = embeddings
    score = torch.tensor([0.1, 0.9, 0.4, 0.4, 0.0, 0.7], dtype=torch.float64)
    loss = MatryoshkaLoss(CoSENTLoss(20.0), DIMENSIONS)(anchor, positive, score=score)
    expected = _sentence_transformers_loss("cosent", None)([{"embedding": anchor}, {"embedding": positive}], score)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)


def test_wraps_cosine_mse_prefix_by_prefix(embeddings):
    anchor, positive, _ = embeddings
    score = torch.linspace(-1, 1, 6, dtype=torch.float64)
    loss = MatryoshkaLoss(CosineMSELoss(), (16, 4), (1.0, 3.0))(anchor, positive, score=score)
    expected = sum(
        w * ((F.cosine_similarity(anchor[:, :d], positive[:, :d]) - score) ** 2).mean() for d, w in ((16, 1), (4, 3))
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)  # CosineMSELoss takes the score in float32


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_embeddings_under_autocast_are_scored_in_float32(embeddings, dtype):
    anchor, positive = (tensor.to(dtype) for tensor in embeddings[:2])  # as the encoder returns them under autocast
    with torch.autocast("cpu", dtype=dtype):
        loss = MatryoshkaLoss(InfoNCELoss(0.05), DIMENSIONS)(anchor, positive)
    expected = _naive_prefix_info_nce(
        anchor.double(), positive.double(), None, DIMENSIONS, (1.0,) * 4, temperature=0.05, weight=0.0, offset=0
    )
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("dimensions", "weights", "message"),
    [
        ((), None, "at least one"),
        ((8, 0), None, "positive"),
        ((8, 16), None, "strictly decreasing"),
        ((8, 8), None, "strictly decreasing"),
        ((16, 8), (1.0,), "weights must be 2 numbers"),
        ((16, 8), (1.0, 0.0), "weights must be 2 numbers > 0"),
    ],
)
def test_invalid_dimensions_and_weights_are_refused(dimensions, weights, message):
    with pytest.raises(ValueError, match=message):
        MatryoshkaLoss(InfoNCELoss(0.05), dimensions, weights)


def test_a_dimension_beyond_the_embedding_is_refused(embeddings):
    with pytest.raises(ValueError, match="dimension 32 exceeds the embeddings' size 16"):
        MatryoshkaLoss(InfoNCELoss(0.05), (32, 8))(*embeddings[:2])
