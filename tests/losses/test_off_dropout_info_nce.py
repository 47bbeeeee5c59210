"""Off-dropout InfoNCE (SimCSE++, Xu et al., 2023) against a plain Python loop over the reference's formula
(github.com/Jiahao004/SimCSE-plus-plus, simcse/models_re_vicreg.py, commit 899e49b)."""

import math

import pytest
import torch
import torch.nn.functional as F

from cse.losses.off_dropout_info_nce import OffDropoutInfoNCELoss

TEMPERATURE = 0.05


def _cosine(first: list[float], second: list[float]) -> float:
    dot = sum(a * b for a, b in zip(first, second, strict=True))
    return dot / math.sqrt(sum(a * a for a in first)) / math.sqrt(sum(b * b for b in second))


def _loop(anchor, positive, off_dropout, offset: int) -> float:
    """Mean over anchors i of -s⁺_i + log(exp(s⁺_i) + Σ_j exp(cos(z0_i, z0_j) / τ + [j = i] ln 1e-45))."""
    losses = []
    for i, (first, second) in enumerate(zip(anchor.tolist(), positive.tolist(), strict=True)):
        own = off_dropout[offset + i].tolist()
        positive_logit = _cosine(first, second) / TEMPERATURE
        terms = [math.exp(positive_logit)]
        for j, other in enumerate(off_dropout.tolist()):
            shift = math.log(1e-45) if j == offset + i else 0.0
            terms.append(math.exp(_cosine(own, other) / TEMPERATURE + shift))
        losses.append(-positive_logit + math.log(sum(terms)))
    return sum(losses) / len(losses)


@pytest.mark.parametrize(("devices", "rank"), [(1, 0), (3, 2)])
def test_loss_is_the_reference_formula_on_one_or_gathered_batches(devices, rank):
    torch.manual_seed(0)
    size, hidden = 4, 8
    anchor, positive = torch.randn(size, hidden, dtype=torch.float64), torch.randn(size, hidden, dtype=torch.float64)
    off_dropout = torch.randn(devices * size, hidden, dtype=torch.float64)  # every device's sentences
    offset = rank * size
    loss = OffDropoutInfoNCELoss(TEMPERATURE)(anchor, positive, off_dropout, offset=offset)
    assert loss.item() == pytest.approx(_loop(anchor, positive, off_dropout, offset), rel=1e-12)


def test_the_anchors_own_off_dropout_pair_counts_for_nothing():
    """The ln(1e-45) shift removes the pair j = i: the loss is cross-entropy over the positive and j ≠ i alone."""
    torch.manual_seed(1)
    anchor, positive, off_dropout = (torch.randn(5, 6, dtype=torch.float64) for _ in range(3))
    loss = OffDropoutInfoNCELoss(0.1)(anchor, positive, off_dropout)
    unit = F.normalize(off_dropout, dim=-1)
    expected = []
    for i in range(5):
        others = torch.cat([unit[:i], unit[i + 1 :]])  # (4, H): the other sentences only
        logits = torch.cat([F.cosine_similarity(anchor[i], positive[i], dim=0)[None], others @ unit[i]]) / 0.1
        expected.append(F.cross_entropy(logits[None], torch.tensor([0])))
    assert loss.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-12)


def test_half_precision_embeddings_are_scored_in_float32():
    torch.manual_seed(2)
    anchor, positive, off_dropout = (torch.randn(4, 8) for _ in range(3))
    expected = OffDropoutInfoNCELoss()(anchor, positive, off_dropout)
    loss = OffDropoutInfoNCELoss()(anchor.half(), positive.half(), off_dropout.half())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected.item(), abs=0.05)  # only the inputs' fp16 rounding


def test_a_temperature_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        OffDropoutInfoNCELoss(0.0)
