import math

import pytest
import torch
import torch.nn.functional as F
from devices import CPU_AND_CUDA

from cse.losses.info_nce import InfoNCELoss


def _naive_info_nce(anchor, positive, negative=None, temperature=0.05, weight=0.0, offset=0) -> float:
    """Eq. 1 / Eq. 5 of SimCSE written as a loop over anchors, in float64; anchor i's pair is row offset + i."""
    total = 0.0
    for i in range(anchor.size(0)):
        own = offset + i
        logits = [F.cosine_similarity(anchor[i], positive[j], dim=0).item() / temperature for j in range(len(positive))]
        if negative is not None:
            logits += [
                F.cosine_similarity(anchor[i], negative[j], dim=0).item() / temperature + (weight if j == own else 0.0)
                for j in range(len(negative))
            ]
        log_normalizer = math.log(sum(math.exp(logit) for logit in logits))
        total += log_normalizer - logits[own]
    return total / anchor.size(0)


@pytest.fixture
def embeddings():
    torch.manual_seed(0)
    return torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 8)


@pytest.mark.parametrize("temperature", [0.05, 0.1, 1.0])
def test_matches_naive_loop(embeddings, temperature):
    anchor, positive, _ = embeddings
    loss = InfoNCELoss(temperature)(anchor, positive)
    assert loss.item() == pytest.approx(_naive_info_nce(anchor, positive, temperature=temperature), rel=1e-5)


@pytest.mark.parametrize("weight", [0.0, 0.5, -2.0])
def test_hard_negatives_match_naive_loop(embeddings, weight):
    anchor, positive, negative = embeddings
    loss = InfoNCELoss(0.05, hard_negative_weight=weight)(anchor, positive, negative)
    expected = _naive_info_nce(anchor, positive, negative, temperature=0.05, weight=weight)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_identical_views_of_distinct_sentences_give_low_loss():
    directions = torch.eye(4)
    assert InfoNCELoss(0.05)(directions, directions).item() < 1e-6
    # The same vector for every sentence: all candidates tie, loss = log(B).
    same = torch.ones(4, 3)
    assert InfoNCELoss(0.05)(same, same).item() == pytest.approx(math.log(4), rel=1e-6)


def test_labels_follow_the_actual_batch_size(embeddings):
    anchor, positive, _ = embeddings
    loss = InfoNCELoss(0.05)(anchor[:3], positive[:3])
    assert loss.item() == pytest.approx(_naive_info_nce(anchor[:3], positive[:3]), rel=1e-5)


def test_half_precision_inputs_are_scored_in_float32(embeddings):
    anchor, positive, _ = embeddings
    loss = InfoNCELoss(0.05)(anchor.half(), positive.half())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(_naive_info_nce(anchor.half().float(), positive.half().float()), rel=1e-4)


def test_rejects_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(0.0)


@pytest.mark.parametrize("weight", [-1.0e4, -math.inf])  # -inf: the README's way to remove it
def test_very_negative_weight_removes_each_anchors_own_hard_negative(embeddings, weight):
    anchor, positive, negative = (tensor.requires_grad_() for tensor in embeddings)
    loss = InfoNCELoss(0.05, hard_negative_weight=weight)(anchor, positive, negative)
    loss.backward()
    assert all(tensor.grad.isfinite().all() for tensor in (anchor, positive, negative))
    # Reference: the loop with the own hard negative left out entirely (other rows' negatives stay in the batch).
    total = 0.0
    for i in range(6):
        logits = [F.cosine_similarity(anchor[i], positive[j], dim=0).item() / 0.05 for j in range(6)]
        logits += [F.cosine_similarity(anchor[i], negative[j], dim=0).item() / 0.05 for j in range(6) if j != i]
        total += math.log(sum(math.exp(logit) for logit in logits)) - logits[i]
    assert loss.item() == pytest.approx(total / 6, rel=1e-5)


@pytest.mark.parametrize("with_hard_negatives", [False, True])
def test_equals_sentence_transformers_multiple_negatives_ranking_loss(embeddings, with_hard_negatives):
    from sentence_transformers.sentence_transformer import losses

    anchor, positive, negative = embeddings
    reference = losses.MultipleNegativesRankingLoss(model=None, scale=1 / 0.05)
    columns = [anchor, positive, negative] if with_hard_negatives else [anchor, positive]
    expected = reference.compute_loss_from_embeddings(columns, labels=None)
    actual = InfoNCELoss(0.05)(*columns)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("with_hard_negatives", [False, True])
def test_offset_scores_a_slice_of_anchors_against_the_whole_batch(embeddings, with_hard_negatives):
    anchor, positive, negative = embeddings
    negative = negative if with_hard_negatives else None
    # Rows [2, 4) as one device's anchors; positives and hard negatives of all 6 rows, as gathered under DDP.
    loss = InfoNCELoss(0.05, hard_negative_weight=1.5)(anchor[2:4], positive, negative, offset=2)
    expected = _naive_info_nce(anchor[2:4], positive, negative, weight=1.5, offset=2)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("with_hard_negatives", [False, True])
def test_device_losses_average_to_the_whole_batch_loss(embeddings, with_hard_negatives):
    anchor, positive, negative = embeddings
    negative = negative if with_hard_negatives else None
    loss_fn = InfoNCELoss(0.05, hard_negative_weight=1.5)
    # 3 devices × 2 anchors: what DDP averages equals one batch of 6.
    devices = [loss_fn(anchor[rank * 2 : rank * 2 + 2], positive, negative, offset=rank * 2) for rank in range(3)]
    expected = _naive_info_nce(anchor, positive, negative, weight=1.5)
    assert torch.stack(devices).mean().item() == pytest.approx(expected, rel=1e-5)


def test_float64_embeddings_are_scored_in_float64(embeddings):
    anchor, positive, _ = embeddings
    loss = InfoNCELoss(0.05)(anchor.double(), positive.double())
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(_naive_info_nce(anchor.double(), positive.double()), rel=1e-12)


@pytest.mark.parametrize("device", CPU_AND_CUDA)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_under_autocast_equals_float32_loss_of_the_same_embeddings(embeddings, dtype, device):
    """Half-precision embeddings, as an encoder under autocast (the CPU's, and CUDA's on a GPU) returns them: the
    logits are still float32."""
    anchor, positive, negative = (tensor.to(device, dtype) for tensor in embeddings)
    with torch.autocast(device, dtype=dtype):
        loss = InfoNCELoss(0.05, hard_negative_weight=0.5)(anchor, positive, negative)
    anchor, positive, negative = (tensor.cpu().double() for tensor in (anchor, positive, negative))
    expected = _naive_info_nce(anchor, positive, negative, temperature=0.05, weight=0.5)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected, rel=1e-5)
