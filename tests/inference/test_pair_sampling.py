"""Augmented SBERT's pair sampling: random (seeded, no self pairs), embedding top-k against a brute-force cosine sort,
and the dedupe of a pair and its reverse."""

import pytest
import torch

from cse import load_model
from cse.inference.pair_sampling import embedding_pairs, random_pairs, unique_pairs

SENTENCES = ["the dog is in the park", "a man plays a guitar", "a girl", "the boy is playing", "a dog"]
SENTENCES += ["the woman is in the park", "a man is playing", "the girl plays the guitar"]


@pytest.mark.parametrize(("size", "k"), [(8, 3), (5, 4), (3, 10), (1, 2)])
def test_random_pairs_are_seeded_distinct_and_never_self(size, k):
    pairs = random_pairs(size, k, seed=3)
    assert pairs == random_pairs(size, k, seed=3)
    assert all(i != j for i, j in pairs)
    for i in range(size):
        partners = [j for first, j in pairs if first == i]
        assert len(partners) == len(set(partners)) == min(k, size - 1)
        assert set(partners) <= set(range(size)) - {i}
    if min(k, size - 1) == size - 1:  # every other row
        assert {(i, j) for i, j in pairs} == {(i, j) for i in range(size) for j in range(size) if i != j}


def test_random_pairs_change_with_the_seed():
    assert random_pairs(50, 3, seed=0) != random_pairs(50, 3, seed=1)


def test_unique_pairs_keeps_the_first_of_a_pair_and_its_reverse():
    pairs = [(0, 1), (1, 0), (2, 2), (1, 2), (0, 1), (2, 1), (3, 0)]
    assert unique_pairs(pairs) == [(0, 1), (1, 2), (3, 0)]


@pytest.mark.parametrize("k", [1, 3, 7])
def test_embedding_pairs_are_a_brute_force_cosine_top_k(tiny_model_dir, k):
    model = load_model(tiny_model_dir, "avg")
    vectors = torch.nn.functional.normalize(model.encode(SENTENCES, convert_to="torch"), dim=-1)
    similarity = vectors @ vectors.T  # (N, N)
    expected = []
    for i in range(len(SENTENCES)):
        others = sorted((j for j in range(len(SENTENCES)) if j != i), key=lambda j: -similarity[i, j].item())
        expected += [(i, j) for j in others[:k]]
    assert embedding_pairs(model, SENTENCES, k, batch_size=3, backend="torch") == expected
