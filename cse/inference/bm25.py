"""Okapi BM25 between the sentences of a corpus, exact, as rank_bm25's `BM25Okapi` computes it (k1 1.5, b 0.75,
epsilon 0.25: its defaults; github.com/dorianbrown/rank_bm25, rank_bm25.py).

For a query q (its words, repeats counted) and a document d of |d| words, in a corpus of N documents averaging avgdl:

    score(q, d) = sum over words w of q:  idf(w) * f(w, d) * (k1 + 1) / (f(w, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(w) = ln(N - n(w) + 0.5) - ln(n(w) + 0.5), n(w) the documents holding w; a negative idf (w in more than half
             of the documents) becomes epsilon x the mean idf of the vocabulary.

Words are the `\\w+` runs of `normalize_text(text)` (NFKC, case-folded), close to Elasticsearch's standard analyzer
that Augmented SBERT's reference code samples with (sentence-transformers, examples/training/data_augmentation/
train_sts_indomain_bm25.py).
"""

import math
import re
from collections import Counter

import numpy as np
from scipy import sparse

from cse.data.text_identity import normalize_text

K1, B, EPSILON = 1.5, 0.75, 0.25  # rank_bm25's BM25Okapi defaults
QUERY_CHUNK = 256  # queries scored at once: a (256, N) float64 block
WORD = re.compile(r"\w+")


def bm25_words(text: str) -> list[str]:
    """The words BM25 counts in `text`, in order, repeats kept."""
    return WORD.findall(normalize_text(text))


class OkapiBM25:
    """BM25 weights of every (document, word) of a corpus, to score queries against all documents at once.

    Args:
        documents: the corpus; each is split by `bm25_words`.
    """

    def __init__(self, documents: list[str], k1: float = K1, b: float = B, epsilon: float = EPSILON) -> None:
        self.documents = list(documents)
        counts = [Counter(bm25_words(document)) for document in documents]
        self.vocabulary: dict[str, int] = {}
        rows, columns, frequencies = [], [], []
        for row, document in enumerate(counts):
            for word, frequency in document.items():
                rows.append(row)
                columns.append(self.vocabulary.setdefault(word, len(self.vocabulary)))
                frequencies.append(frequency)
        n = len(documents)
        lengths = np.array([sum(document.values()) for document in counts], dtype=np.float64)  # (N,)
        average_length = lengths.mean() if n else 0.0
        document_frequency = np.bincount(columns, minlength=len(self.vocabulary))  # (V,)
        idf = np.log(n - document_frequency + 0.5) - np.log(document_frequency + 0.5)  # (V,)
        if len(idf):
            idf[idf < 0] = epsilon * idf.mean()  # rank_bm25's floor: the mean is taken before the floor
        self.idf = idf
        tf = np.array(frequencies, dtype=np.float64)
        row_index = np.array(rows, dtype=np.int64)
        norm = k1 * (1 - b + b * lengths / average_length) if average_length > 0 else np.full(n, k1)  # (N,)
        weights = idf[columns] * tf * (k1 + 1) / (tf + norm[row_index]) if len(tf) else tf
        self.weights = sparse.csr_array((weights, (row_index, columns)), shape=(n, len(self.vocabulary)))  # (N, V)

    def __len__(self) -> int:
        return self.weights.shape[0]

    def scores(self, queries: list[str]) -> np.ndarray:
        """BM25 of every query against every document: (Q, N) float64."""
        rows, columns = [], []
        for row, query in enumerate(queries):
            for word in bm25_words(query):
                if (column := self.vocabulary.get(word)) is not None:
                    rows.append(row)
                    columns.append(column)
        counts = sparse.csr_array(  # (Q, V): a repeated query word counts each time, as rank_bm25 loops over it
            (np.ones(len(rows)), (np.array(rows, dtype=np.int64), np.array(columns, dtype=np.int64))),
            shape=(len(queries), len(self.vocabulary)),
        )
        return (counts @ self.weights.T).toarray()  # (Q, V) x (V, N) -> (Q, N)

    def top_k_others(self, k: int) -> list[list[int]]:
        """For each document as the query, the `k` other documents of highest BM25, best first (ties: lower row
        first); only documents sharing a word with it (score > 0), as a search engine returns only matches."""
        documents = self.documents
        neighbours: list[list[int]] = []
        for start in range(0, len(documents), QUERY_CHUNK):
            block = self.scores(documents[start : start + QUERY_CHUNK])  # (q, N)
            for offset, row_scores in enumerate(block):
                row_scores[start + offset] = -math.inf  # never the query itself
                order = np.argsort(-row_scores, kind="stable")[:k]
                neighbours.append([int(i) for i in order if row_scores[i] > 0])
        return neighbours
