"""Unlabelled sentence pairs for a cross-encoder to label: Augmented SBERT's sampling strategies (Thakur et al.,
NAACL 2021, §3), each taking up to K partners per sentence of a corpus.

- `random`: K partners drawn uniformly from the other sentences (seeded).
- `bm25`: the K other sentences of highest Okapi BM25 with the sentence as query (`cse.inference.bm25`), those
  sharing a word with it; the reference code asks Elasticsearch for them (sentence-transformers,
  examples/training/data_augmentation/train_sts_indomain_bm25.py).
- `embedding`: the K other sentences nearest by cosine similarity of a bi-encoder's embeddings (semantic search;
  train_sts_indomain_semantic.py there takes the top K + 1 and drops the sentence itself, as here).

Pairs are row indices into the corpus; `unique_pairs` keeps each pair once whichever way round.
"""

import random
from collections.abc import Iterable
from typing import Literal

import torch

from cse.inference.api import EmbeddingModel
from cse.inference.bm25 import OkapiBM25
from cse.inference.search import Backend, EmbeddingIndex

Sampling = Literal["random", "bm25", "embedding"]
SAMPLINGS = ("random", "bm25", "embedding")


def random_pairs(size: int, k: int, seed: int = 0) -> list[tuple[int, int]]:
    """For each row i of a corpus of `size`, min(k, size - 1) distinct partners j != i, drawn by `Random(seed)`."""
    rng = random.Random(seed)
    pairs = []
    for i in range(size):
        partners = rng.sample(range(size - 1), min(k, size - 1))  # from the size - 1 other rows: j >= i means j + 1
        pairs.extend((i, j + (j >= i)) for j in partners)
    return pairs


def bm25_pairs(sentences: list[str], k: int) -> list[tuple[int, int]]:
    """(i, j) for the `k` other sentences j of highest BM25 with sentence i as the query, best first."""
    neighbours = OkapiBM25(sentences).top_k_others(k)
    return [(i, j) for i, row in enumerate(neighbours) for j in row]


def embedding_pairs(
    model: EmbeddingModel, sentences: list[str], k: int, batch_size: int = 64, backend: Backend = "auto"
) -> list[tuple[int, int]]:
    """(i, j) for the `k` other sentences j nearest to sentence i by cosine similarity of `model`'s embeddings."""
    embeddings = model.encode(sentences, batch_size, normalize=True, convert_to="torch")  # (N, H)
    _, ids = EmbeddingIndex(torch.as_tensor(embeddings), backend).top_k(embeddings, k + 1)  # (N, k + 1)
    return [(i, j) for i, row in enumerate(ids.tolist()) for j in [j for j in row if j != i][:k]]


def unique_pairs(pairs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """`pairs` in order without self pairs, each pair once: (j, i) after (i, j) is left out."""
    seen: set[tuple[int, int]] = set()
    kept = []
    for i, j in pairs:
        key = (min(i, j), max(i, j))
        if i != j and key not in seen:
            seen.add(key)
            kept.append((i, j))
    return kept
