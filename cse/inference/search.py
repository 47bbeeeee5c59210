"""Exact nearest-neighbour search by cosine similarity: faiss (`IndexFlatIP`) when installed, torch otherwise.

Both are exhaustive, so they return the same neighbours (up to float rounding and the order of exact ties); faiss
is only faster on large corpora. Embeddings are L2-normalised, so inner product is cosine similarity.
"""

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from cse.errors import InputError
from cse.inference.arguments import positive_int

Backend = Literal["auto", "faiss", "torch"]
QUERY_CHUNK, CORPUS_CHUNK = 1024, 65536  # bounds the (queries, corpus) score block held at once: 256 MiB


@dataclass(frozen=True)
class SearchHit:
    """One neighbour: its row in the corpus, cosine similarity to the query, and its text when known."""

    corpus_id: int
    score: float
    sentence: str | None = None


class EmbeddingIndex:
    """An exact cosine-similarity index over a corpus of embeddings (N, D).

    Args:
        embeddings: (N, D) corpus embeddings, normalised here. A float32 CPU tensor whose rows are already unit
            vectors is kept as it is, not copied (a corpus of 1M x 384 is 1.5 GB), so do not change it afterwards.
        backend: `faiss`, `torch`, or `auto` (faiss if it imports, else torch).
    """

    def __init__(self, embeddings: Tensor, backend: Backend = "auto") -> None:
        if embeddings.dim() != 2 or embeddings.size(0) == 0:
            raise InputError(f"search index: expected a non-empty (N, D) corpus, got shape {tuple(embeddings.shape)}")
        self.embeddings = _unit_rows(embeddings.detach())  # (N, D)
        self.faiss_index = _faiss_index(self.embeddings, backend)

    def __len__(self) -> int:
        return self.embeddings.size(0)

    @property
    def backend(self) -> str:
        return "torch" if self.faiss_index is None else "faiss"

    def search(self, queries: Tensor, top_k: int = 10, threshold: float | None = None) -> list[list[SearchHit]]:
        """The `top_k` most similar corpus rows of each query (Q, D), best first; `threshold` drops lower scores."""
        scores, ids = self.top_k(queries, top_k)
        return [
            [
                SearchHit(int(corpus_id), float(score))
                for score, corpus_id in zip(row_scores.tolist(), row_ids.tolist(), strict=True)
                if threshold is None or score >= threshold
            ]
            for row_scores, row_ids in zip(scores, ids, strict=True)
        ]

    def top_k(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Cosine similarities and corpus rows of the `k` nearest rows of each query, best first: (Q, k) and (Q, k).

        `k` is capped at the corpus size. The torch search holds at most `QUERY_CHUNK` x `CORPUS_CHUNK` scores at once.
        """
        k = positive_int(k, "top_k")
        if queries.dim() != 2 or queries.size(1) != self.embeddings.size(1):
            raise InputError(
                f"search: queries of shape {tuple(queries.shape)} do not match the index dimension "
                f"{self.embeddings.size(1)}"
            )
        queries = F.normalize(queries.detach().float().cpu(), dim=-1)
        k = min(k, len(self))
        if queries.size(0) == 0:  # no queries: no rows (torch.cat and faiss want at least one)
            return torch.empty(0, k), torch.empty(0, k, dtype=torch.long)
        if self.faiss_index is not None:
            scores, ids = (torch.from_numpy(array) for array in self.faiss_index.search(queries.numpy(), k))
            return scores, ids.long()
        return _exact_top_k(self.embeddings, queries, k)


def _unit_rows(embeddings: Tensor) -> Tensor:
    """`embeddings` with unit rows, as float32 on the CPU: the tensor itself when it is so already, else a copy."""
    if embeddings.dtype == torch.float32 and embeddings.device.type == "cpu" and embeddings.is_contiguous():
        norms = torch.linalg.vector_norm(embeddings, dim=-1)  # (N,): the only allocation of the check
        if torch.allclose(norms, torch.ones_like(norms), rtol=0.0, atol=1e-6):
            return embeddings
    return F.normalize(embeddings.float().cpu(), dim=-1)


def _exact_top_k(corpus: Tensor, queries: Tensor, top_k: int) -> tuple[Tensor, Tensor]:
    """Top-k of queries @ corpus.T, (Q, D) x (N, D) -> (Q, k) scores and ids, in blocks to bound memory."""
    all_scores, all_ids = [], []
    for query_start in range(0, queries.size(0), QUERY_CHUNK):
        block_queries = queries[query_start : query_start + QUERY_CHUNK]
        candidates, candidate_ids = [], []
        for corpus_start in range(0, corpus.size(0), CORPUS_CHUNK):
            block = block_queries @ corpus[corpus_start : corpus_start + CORPUS_CHUNK].T  # (q, c)
            scores, ids = block.topk(min(top_k, block.size(1)), dim=1)
            candidates.append(scores)
            candidate_ids.append(ids + corpus_start)
            del block  # else it lives on while the next block is computed: two blocks, not one
        scores, order = torch.cat(candidates, dim=1).topk(top_k, dim=1)  # best k of every block's best k
        all_scores.append(scores)
        all_ids.append(torch.cat(candidate_ids, dim=1).gather(1, order))
    return torch.cat(all_scores), torch.cat(all_ids)


def _faiss_index(embeddings: Tensor, backend: Backend):
    if backend not in ("auto", "faiss", "torch"):
        raise InputError(f"search backend '{backend}': choose auto, faiss or torch")
    if backend == "torch":
        return None
    try:
        import faiss
    except ImportError:
        if backend == "faiss":
            raise InputError("search backend 'faiss': faiss is not installed (pip install faiss-cpu)") from None
        return None
    index = faiss.IndexFlatIP(embeddings.size(1))  # exhaustive inner product: exact, like the torch path
    index.add(embeddings.numpy())
    return index
