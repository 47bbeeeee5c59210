import pytest
import torch

from cse.losses.cosine_mse import CosineMSELoss


def test_hand_computed():
    anchor = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    positive = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # cosines 1 and 0
    score = torch.tensor([0.5, 0.5])
    assert CosineMSELoss()(anchor, positive, score).item() == pytest.approx((0.5**2 + 0.5**2) / 2)


def test_equals_sentence_transformers_cosine_similarity_loss():
    from sentence_transformers.sentence_transformer import losses

    torch.manual_seed(0)
    anchor, positive, score = torch.randn(6, 4), torch.randn(6, 4), torch.rand(6)
    reference = losses.CosineSimilarityLoss(model=None)
    expected = reference.compute_loss_from_embeddings([anchor, positive], score)
    torch.testing.assert_close(CosineMSELoss()(anchor, positive, score), expected)
