import math

import pytest
import torch
import torch.nn.functional as F

from cse.losses.cosent import CoSENTLoss


def _naive_cosent(anchor, positive, score, scale=20.0) -> float:
    cosine = [F.cosine_similarity(anchor[i], positive[i], dim=0).item() for i in range(len(score))]
    total = 1.0
    for i in range(len(score)):
        for j in range(len(score)):
            if score[i] > score[j]:  # pair i should be more similar than pair j
                total += math.exp(scale * (cosine[j] - cosine[i]))
    return math.log(total)


@pytest.fixture
def pairs():
    torch.manual_seed(0)
    return torch.randn(7, 5), torch.randn(7, 5), torch.tensor([0.0, 1.5, 3.0, 3.0, 5.0, 2.2, 4.1])


@pytest.mark.parametrize("scale", [1.0, 20.0])
def test_matches_naive_double_loop(pairs, scale):
    anchor, positive, score = pairs
    assert CoSENTLoss(scale)(anchor, positive, score).item() == pytest.approx(
        _naive_cosent(anchor, positive, score, scale), rel=1e-5
    )


def test_depends_only_on_the_order_of_scores(pairs):
    anchor, positive, score = pairs
    loss = CoSENTLoss()
    assert loss(anchor, positive, score).item() == pytest.approx(
        loss(anchor, positive, score / 5 - 0.3).item(), rel=1e-6
    )


def test_all_equal_scores_give_zero_loss(pairs):
    anchor, positive, _ = pairs
    assert CoSENTLoss()(anchor, positive, torch.ones(7)).item() == 0.0


def test_equals_sentence_transformers_cosent(pairs):
    from sentence_transformers.sentence_transformer import losses

    anchor, positive, score = pairs
    expected = losses.CoSENTLoss(model=None, scale=20.0).compute_loss_from_embeddings([anchor, positive], score)
    torch.testing.assert_close(CoSENTLoss(20.0)(anchor, positive, score), expected)
