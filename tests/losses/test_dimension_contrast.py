"""Dimension-wise contrastive learning (DCL, SimCSE++, Xu et al., 2023) against a plain Python loop over dimensions
and `nn.BatchNorm1d`, as the reference's `cls.bn` (github.com/Jiahao004/SimCSE-plus-plus, models_re_vicreg.py)."""

import math
import statistics

import pytest
import torch

from cse.losses.dimension_contrast import DimensionContrastLoss, standardized_columns


def _standardized(column: list[float]) -> list[float]:
    mean, variance = statistics.fmean(column), statistics.pvariance(column)  # biased, as BatchNorm in training
    return [(value - mean) / math.sqrt(variance + 1e-5) for value in column]


def _loop(anchor: torch.Tensor, positive: torch.Tensor, temperature: float) -> float:
    """mean over dimensions d of -C_dd + log Σ_e exp(C_de), C_de = Σ_n a_nd p_ne / N / T over standardized columns."""
    first = [_standardized(column) for column in anchor.T.tolist()]  # H columns of N values
    second = [_standardized(column) for column in positive.T.tolist()]
    rows = len(first[0])
    losses = []
    for d, column in enumerate(first):
        logits = [sum(a * b for a, b in zip(column, other, strict=True)) / rows / temperature for other in second]
        losses.append(-logits[d] + math.log(sum(math.exp(logit) for logit in logits)))
    return sum(losses) / len(losses)


@pytest.mark.parametrize(("rows", "hidden", "temperature"), [(6, 4, 5.0), (9, 7, 0.5)])
def test_loss_is_the_loop_over_dimensions(rows, hidden, temperature):
    torch.manual_seed(rows)
    anchor = torch.randn(rows, hidden, dtype=torch.float64) * 3 + 1
    positive = anchor + 0.3 * torch.randn(rows, hidden, dtype=torch.float64)
    loss = DimensionContrastLoss(temperature)(anchor, positive)
    assert loss.item() == pytest.approx(_loop(anchor, positive, temperature), rel=1e-10)


def test_columns_are_standardized_as_batch_norm_without_affine_parameters_in_training():
    torch.manual_seed(0)
    embeddings = torch.randn(10, 6) * torch.arange(1, 7) + 2
    expected = torch.nn.BatchNorm1d(6, affine=False).train()(embeddings)
    torch.testing.assert_close(standardized_columns(embeddings), expected, atol=1e-6, rtol=0)


def test_half_precision_embeddings_give_a_float32_loss():
    torch.manual_seed(1)
    anchor, positive = torch.randn(8, 4), torch.randn(8, 4)
    loss = DimensionContrastLoss()(anchor.half(), positive.half())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(DimensionContrastLoss()(anchor, positive).item(), abs=1e-3)


def test_a_temperature_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        DimensionContrastLoss(-1.0)
