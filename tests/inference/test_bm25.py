"""Okapi BM25 against a hand computation (rank_bm25's BM25Okapi formula, k1 1.5, b 0.75, epsilon 0.25) and its top-k
against a brute-force sort."""

import math

import numpy as np
import pytest

from cse.inference.bm25 import OkapiBM25, bm25_words

# 4 documents of 3, 4, 2 and 2 words: avgdl 11/4. "the" is in 3 of 4 (negative idf, floored), "cat" and "sat" in 2
# (idf ln(2.5) - ln(2.5) = 0), the other four words (dog, down, a, bird) in 1 (idf ln(3.5 / 1.5) = ln(7/3)).
CORPUS = ["The cat sat.", "the dog sat down", "a CAT", "the bird"]
RARE = math.log(7 / 3)
FLOOR = 0.25 * (math.log(1.5 / 3.5) + 4 * RARE) / 7  # epsilon x the mean idf of the 7 words, before flooring


def _term(idf: float, tf: int, length: int, k1: float = 1.5, b: float = 0.75) -> float:
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / 2.75))


def test_words_are_case_folded_word_runs():
    assert bm25_words("The cat  sat. CAT!") == ["the", "cat", "sat", "cat"]


def test_scores_equal_a_hand_computation():
    index = OkapiBM25(CORPUS)
    scores = index.scores(["the dog", "dog dog", "cat sat", "fish"])
    the = [_term(FLOOR, 1, 3), _term(FLOOR, 1, 4), 0.0, _term(FLOOR, 1, 2)]
    expected = [
        the[0:1] + [the[1] + _term(RARE, 1, 4)] + the[2:],
        [0.0, 2 * _term(RARE, 1, 4), 0.0, 0.0],  # a repeated query word counts twice, as rank_bm25 loops over it
        [0.0] * 4,  # words in half the documents: idf 0
        [0.0] * 4,  # not in the corpus
    ]
    assert scores.shape == (4, 4)
    assert scores == pytest.approx(np.array(expected), abs=1e-12)


def test_top_k_others_is_a_brute_force_sort_without_the_query_and_non_matches():
    sentences = ["the dog is in the park", "a dog in a park", "the man plays", "a man plays a guitar", "the park"]
    sentences += ["a girl", "a boy plays the guitar in the park", "dogs", "the man is in the park"]
    index = OkapiBM25(sentences)
    for k in (1, 2, 4, 20):
        expected = []
        for i, query in enumerate(sentences):
            scores = [(index.scores([query])[0, j], j) for j in range(len(sentences)) if j != i]
            ranked = sorted(scores, key=lambda pair: (-pair[0], pair[1]))  # best first, ties by row
            expected.append([j for score, j in ranked if score > 0][:k])
        assert index.top_k_others(k) == expected
    assert index.top_k_others(2)[7] == []  # "dogs" shares no word
