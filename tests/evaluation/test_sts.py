import math

import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from cse.data.scored_pairs import ScoredPairs
from cse.evaluation.sts import correlation, score_sts_task


def test_spearman_by_hand_and_pearson_by_formula():
    predicted = torch.tensor([0.1, 0.4, 0.35, 0.8])
    gold = torch.tensor([1.0, 2.0, 3.0, 4.0])
    result = correlation(predicted, gold)
    # Ranks 1, 3, 2, 4 against 1, 2, 3, 4: rho = 1 - 6 * sum d^2 / (n (n^2 - 1)) = 1 - 6 * 2 / 60.
    assert result.spearman == pytest.approx(0.8)
    p, g = predicted.double().tolist(), gold.double().tolist()
    mean_p, mean_g = sum(p) / 4, sum(g) / 4
    covariance = sum((a - mean_p) * (b - mean_g) for a, b in zip(p, g, strict=True))
    norm = math.sqrt(sum((a - mean_p) ** 2 for a in p) * sum((b - mean_g) ** 2 for b in g))
    assert result.pearson == pytest.approx(covariance / norm)


def test_ties_match_scipy():
    predicted, gold = torch.tensor([0.5, 0.5, 0.2, 0.9, 0.9]), torch.tensor([3.0, 1.0, 1.0, 5.0, 4.0])
    result = correlation(predicted, gold)
    assert result.spearman == pytest.approx(spearmanr(predicted.numpy(), gold.numpy())[0])
    assert result.pearson == pytest.approx(pearsonr(predicted.numpy(), gold.numpy())[0])


def _fake_embed(sentences: list[str]) -> torch.Tensor:
    """A fixed 3-d vector per sentence, from its characters: deterministic and independent of batching."""
    return torch.tensor([[len(s), s.count("a") + 1.0, sum(map(ord, s)) % 7 - 3.0] for s in sentences])


def _cosine(u: list[float], v: list[float]) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))


def test_all_setting_is_one_correlation_over_the_concatenation():
    subsets = {
        "first": ScoredPairs(["a cat", "dogs", "a a a", "x"], ["a dog", "cats", "b", "xy z"], [4.0, 3.5, 1.0, 0.5]),
        "second": ScoredPairs(["hello", "aa", "q"], ["hallo", "bb b", "qq"], [5.0, 0.0, 2.0]),
    }
    result = score_sts_task(subsets, _fake_embed)

    cosines, golds, per_subset = [], [], {}
    for name, pairs in subsets.items():  # naive loop: one pair at a time
        scores = [
            _cosine(_fake_embed([a])[0].tolist(), _fake_embed([b])[0].tolist())
            for a, b in zip(pairs.sentence1, pairs.sentence2, strict=True)
        ]
        per_subset[name] = (spearmanr(scores, pairs.scores)[0], pearsonr(scores, pairs.scores)[0])
        cosines += scores
        golds += pairs.scores
    for name, (spearman, pearson) in per_subset.items():
        assert result.subsets[name].spearman == pytest.approx(spearman)
        assert result.subsets[name].pearson == pytest.approx(pearson)
    assert result.sizes == {"first": 4, "second": 3}
    assert result.all.spearman == pytest.approx(spearmanr(cosines, golds)[0])
    assert result.all.pearson == pytest.approx(pearsonr(cosines, golds)[0])
    # SentEval's other two settings: the plain and the size-weighted mean of the subsets' correlations.
    (s1, p1), (s2, p2) = per_subset["first"], per_subset["second"]
    assert result.mean.spearman == pytest.approx((s1 + s2) / 2)
    assert result.wmean.spearman == pytest.approx((4 * s1 + 3 * s2) / 7)
    assert result.wmean.pearson == pytest.approx((4 * p1 + 3 * p2) / 7)
    assert result.all.spearman != pytest.approx(result.mean.spearman)  # the settings really differ here
