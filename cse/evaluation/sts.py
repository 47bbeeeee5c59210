"""Score STS tasks as SimCSE reports them: cosine similarity against gold scores, Spearman's and Pearson's r.

A year of STS (STS12–16) has several subsets. SentEval's original summary averages the per-subset correlations
(`mean`, and `wmean` weighted by size); SimCSE's fork adds the `all` setting, one correlation over all subsets
concatenated, which is the number in the paper (`results[task]['all']['spearman']['all']` in SimCSE's
`evaluation.py`; see Gao et al., 2021, Appendix B on the settings and why they differ).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.stats import pearsonr, spearmanr
from torch import Tensor

from cse.data.scored_pairs import ScoredPairs

Embed = Callable[[list[str]], Tensor]  # sentences -> (N, H) embeddings


@dataclass(frozen=True)
class Correlation:
    """Spearman's and Pearson's r in [-1, 1] (×100 only when printed)."""

    spearman: float
    pearson: float


@dataclass(frozen=True)
class StsResult:
    """One task's figures: per subset, and over the whole task in SentEval's three settings.

    Attributes:
        subsets: correlation of each subset (for STS-B and SICK-R, the one split evaluated).
        sizes: number of scored pairs of each subset.
        all: one correlation over every subset's pairs concatenated (SimCSE's reported setting).
        mean: unweighted mean of the subsets' correlations (SentEval's original setting).
        wmean: mean weighted by subset size.
    """

    subsets: dict[str, Correlation]
    sizes: dict[str, int]
    all: Correlation
    mean: Correlation
    wmean: Correlation


def correlation(predicted: Tensor, gold: Tensor) -> Correlation:
    """Spearman's and Pearson's r of two (N,) score vectors, computed by scipy as SentEval does."""
    predicted, gold = predicted.double().numpy(), gold.double().numpy()
    return Correlation(float(spearmanr(predicted, gold)[0]), float(pearsonr(predicted, gold)[0]))


def score_sts_task(subsets: dict[str, ScoredPairs], embed: Embed) -> StsResult:
    """Cosine similarity of each pair's embeddings against its gold score, per subset and over the task.

    The cosine is the one validation during training uses. All the task's sentences are embedded in one call, so
    batches by length span subsets (fewer, fuller batches; padding does not change an embedding).
    """
    sentences = [sentence for pairs in subsets.values() for sentence in (*pairs.sentence1, *pairs.sentence2)]
    sizes = {name: len(pairs) for name, pairs in subsets.items()}
    # (2 * total pairs, H) -> per subset: sentence1 embeddings (n, H), then sentence2 embeddings (n, H)
    parts = iter(embed(sentences).split([size for size in sizes.values() for _ in range(2)]))
    predicted = {name: F.cosine_similarity(next(parts), next(parts), dim=-1) for name in subsets}
    gold = {name: torch.tensor(pairs.scores, dtype=torch.float64) for name, pairs in subsets.items()}
    per_subset = {name: correlation(predicted[name], gold[name]) for name in subsets}
    return StsResult(
        subsets=per_subset,
        sizes=sizes,
        all=correlation(torch.cat(list(predicted.values())), torch.cat(list(gold.values()))),
        mean=_weighted_mean(per_subset, {name: 1 for name in subsets}),
        wmean=_weighted_mean(per_subset, sizes),
    )


def _weighted_mean(correlations: dict[str, Correlation], weights: dict[str, int]) -> Correlation:
    total = sum(weights.values())
    return Correlation(
        sum(weights[name] * value.spearman for name, value in correlations.items()) / total,
        sum(weights[name] * value.pearson for name, value in correlations.items()) / total,
    )
