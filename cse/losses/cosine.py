"""Cosine similarities in float32 whatever autocast is active, as SimCSE's (Gao et al., 2021) `Similarity`.

SimCSE scores with `nn.CosineSimilarity`, which autocast runs in float32 (it is on autocast's float32 list). A
normalized matrix product is a matmul, which autocast would run in float16 or bfloat16: logits of 1/τ = 20 times a
cosine rounded to 3 significant digits. So autocast is switched off here and the embeddings are cast up.
"""

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor


def cosine_matrix(rows: Tensor, columns: Tensor) -> Tensor:
    """Pairwise cosine similarity, (B, H) × (N, H) -> (B, N), in float32 (float64 stays float64)."""
    with _no_autocast(rows.device.type):
        rows, columns = _at_least_float32(rows), _at_least_float32(columns)
        return F.normalize(rows, dim=-1) @ F.normalize(columns, dim=-1).T


def paired_cosine(first: Tensor, second: Tensor) -> Tensor:
    """Cosine similarity of each row pair, (B, H) × (B, H) -> (B,), in float32 (float64 stays float64)."""
    with _no_autocast(first.device.type):
        return F.cosine_similarity(_at_least_float32(first), _at_least_float32(second), dim=-1)


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _at_least_float32(embeddings: Tensor) -> Tensor:
    """Half-precision embeddings (mixed precision) in float32; float32 and float64 unchanged."""
    return embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
