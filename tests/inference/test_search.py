import math
import sys

import pytest
import torch

import cse.inference.search
from cse.errors import InputError
from cse.inference.search import EmbeddingIndex


def _brute_force(corpus: torch.Tensor, queries: torch.Tensor, top_k: int, threshold: float | None = None):
    """Cosine similarity of every (query, sentence) pair in plain Python, sorted: the reference."""

    def cosine(u: list[float], v: list[float]) -> float:
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))

    results = []
    for query in queries.tolist():
        scored = sorted(((cosine(query, row), index) for index, row in enumerate(corpus.tolist())), reverse=True)
        results.append([(index, score) for score, index in scored[:top_k] if threshold is None or score >= threshold])
    return results


def _check(index: EmbeddingIndex, corpus, queries, top_k, threshold=None) -> None:
    expected = _brute_force(corpus, queries, top_k, threshold)
    actual = index.search(queries, top_k, threshold)
    assert [[hit.corpus_id for hit in hits] for hits in actual] == [[i for i, _ in hits] for hits in expected]
    for hits, reference in zip(actual, expected, strict=True):
        assert [hit.score for hit in hits] == pytest.approx([score for _, score in reference], abs=1e-5)


@pytest.fixture
def vectors():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(300, 16, generator=generator), torch.randn(9, 16, generator=generator)


@pytest.mark.parametrize(("top_k", "threshold"), [(1, None), (7, None), (300, None), (500, None), (10, 0.3)])
def test_torch_search_is_exact(vectors, top_k, threshold):
    corpus, queries = vectors
    index = EmbeddingIndex(corpus, backend="torch")
    assert index.backend == "torch" and len(index) == 300
    _check(index, corpus, queries, top_k, threshold)


def test_blocked_search_merges_blocks_exactly(vectors, monkeypatch):
    monkeypatch.setattr(cse.inference.search, "QUERY_CHUNK", 4)  # 9 queries: blocks of 4, 4, 1
    monkeypatch.setattr(cse.inference.search, "CORPUS_CHUNK", 37)  # 300 rows: 9 blocks, the last one short
    corpus, queries = vectors
    _check(EmbeddingIndex(corpus, backend="torch"), corpus, queries, top_k=40)


def test_faiss_search_is_exact(vectors):
    pytest.importorskip("faiss")
    corpus, queries = vectors
    index = EmbeddingIndex(corpus, backend="faiss")
    assert index.backend == "faiss"
    _check(index, corpus, queries, top_k=7)
    _check(index, corpus, queries, top_k=10, threshold=0.3)


def test_faiss_requested_without_faiss_is_an_error(vectors, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    with pytest.raises(InputError, match=r"faiss is not installed \(pip install faiss-cpu\)"):
        EmbeddingIndex(vectors[0], backend="faiss")
    assert EmbeddingIndex(vectors[0]).backend == "torch"  # auto falls back


def test_bad_arguments(vectors):
    corpus, queries = vectors
    index = EmbeddingIndex(corpus, backend="torch")
    with pytest.raises(InputError, match="top_k: must be at least 1, got 0"):
        index.search(queries, top_k=0)
    with pytest.raises(InputError, match=r"do not match the index dimension 16"):
        index.search(torch.randn(2, 8))
    with pytest.raises(InputError, match="non-empty"):
        EmbeddingIndex(torch.empty(0, 16))
    with pytest.raises(InputError, match="choose auto, faiss or torch"):
        EmbeddingIndex(corpus, backend="annoy")


def test_top_k_gives_the_scores_and_rows_of_search(vectors):
    corpus, queries = vectors
    index = EmbeddingIndex(corpus, backend="torch")
    scores, ids = index.top_k(queries, 12)
    assert scores.shape == ids.shape == (9, 12) and ids.dtype == torch.int64
    hits = index.search(queries, 12)
    assert ids.tolist() == [[hit.corpus_id for hit in row] for row in hits]
    assert scores.tolist() == [[hit.score for hit in row] for row in hits]
    assert index.top_k(queries, 1000)[1].shape == (9, 300)  # capped at the corpus size


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_no_queries_give_no_results(vectors, backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    corpus, queries = vectors
    index = EmbeddingIndex(corpus, backend=backend)
    assert index.search(queries[:0], top_k=5) == []
    scores, ids = index.top_k(queries[:0], 5)
    assert scores.shape == ids.shape == (0, 5) and ids.dtype == torch.int64


def test_unit_rows_are_kept_without_a_copy_and_other_rows_are_normalised(vectors):
    corpus, _ = vectors
    unit = torch.nn.functional.normalize(corpus, dim=-1)
    kept = EmbeddingIndex(unit, backend="torch").embeddings
    assert kept.data_ptr() == unit.data_ptr()  # the same memory: a 1M-sentence corpus is not held twice
    index = EmbeddingIndex(corpus, backend="torch")
    assert index.embeddings.data_ptr() != corpus.data_ptr()
    assert torch.equal(corpus, vectors[0])  # the caller's tensor is left as it was
    assert torch.allclose(index.embeddings.norm(dim=-1), torch.ones(300), atol=1e-6)
    half = EmbeddingIndex(unit.double(), backend="torch").embeddings
    assert half.dtype == torch.float32 and torch.allclose(half, unit)
