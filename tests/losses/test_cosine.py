"""Similarities in float32 under autocast (the CPU's standing in for CUDA's, and CUDA's on a GPU), against SimCSE's
own formula (`nn.CosineSimilarity` on broadcast rows)."""

import pytest
import torch
import torch.nn.functional as F
from devices import CPU_AND_CUDA

from cse.losses.cosine import cosine_matrix, paired_cosine

HALF_DTYPES = [torch.bfloat16, torch.float16]


def _simcse_similarity(rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """SimCSE's `Similarity` without the temperature: cos(x.unsqueeze(1), y.unsqueeze(0)), here in float64."""
    return F.cosine_similarity(rows.double().unsqueeze(1), columns.double().unsqueeze(0), dim=-1)  # (B, N)


@pytest.fixture
def embeddings() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(16, 64), torch.randn(24, 64)


@pytest.mark.parametrize("device", CPU_AND_CUDA)
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_cosine_matrix_is_float32_under_autocast(embeddings, dtype, device):
    rows, columns = (tensor.to(device, dtype) for tensor in embeddings)  # as an encoder under autocast returns them
    with torch.autocast(device, dtype=dtype):
        similarity = cosine_matrix(rows, columns)
        plain_matmul = F.normalize(rows.float(), dim=-1) @ F.normalize(columns.float(), dim=-1).T
    expected = _simcse_similarity(rows, columns)
    assert similarity.dtype == torch.float32 and similarity.device.type == device
    assert (similarity.double() - expected).abs().max().item() < 1e-6
    # What autocast makes of the same product: rounded to the half type, far from SimCSE's float32 similarity.
    assert (plain_matmul.double() - expected).abs().max().item() > 1e-4


@pytest.mark.parametrize("device", CPU_AND_CUDA)
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_paired_cosine_is_float32_under_autocast(embeddings, dtype, device):
    first, second = (tensor[:16].to(device, dtype) for tensor in embeddings)
    with torch.autocast(device, dtype=dtype):
        cosine = paired_cosine(first, second)
    expected = F.cosine_similarity(first.double(), second.double(), dim=-1)
    assert cosine.dtype == torch.float32
    assert (cosine.double() - expected).abs().max().item() < 1e-6


def test_float64_stays_float64(embeddings):
    rows, columns = (tensor.double() for tensor in embeddings)
    assert cosine_matrix(rows, columns).dtype == torch.float64
    assert (cosine_matrix(rows, columns) - _simcse_similarity(rows, columns)).abs().max().item() < 1e-12
