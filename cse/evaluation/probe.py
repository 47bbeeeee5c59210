"""SentEval's protocols for the transfer probe: which data chooses the L2 penalty and which data is scored.

Conneau & Kiela (2018), `senteval/tools/validation.py`, as SimCSE runs them (Gao et al., 2021, Appendix E):
- `inner_kfold_probe` (MR, CR, SUBJ, MPQA, which have no split): k-fold cross-validation; within each training
  part, an inner k-fold cross-validation chooses the penalty. Accuracy: mean over the outer test folds.
- `kfold_probe` (TREC, MRPC): k-fold cross-validation on the train split chooses the penalty; then one fit on the
  whole train split is scored on the test split.
- `split_probe` (SST2): the dev split chooses the penalty; the test split is scored.
Accuracies are ×100 and rounded to two decimals before they are compared or averaged, as SentEval does; the first
of equal scores wins (`np.argmax`). Folds are stratified and shuffled with SentEval's seed, but drawn by torch,
not scikit-learn, so they are not SentEval's exact folds.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from cse.errors import InputError
from cse.evaluation.logistic_regression import fit_logistic_regressions

# The penalties of SentEval's PyTorch classifier (`usepytorch`, as SimCSE): its weight decay grid.
L2_GRID: tuple[float, ...] = (1.0e-5, 1.0e-4, 1.0e-3, 1.0e-2)
SEED = 1111  # SentEval's default seed
FOLDS = 10  # SentEval's `kfold` in SimCSE's test mode (its dev mode uses 5)


@dataclass(frozen=True)
class ProbeResult:
    """Accuracies ×100: `devacc` on the data that chose the penalty, `acc` on test data (the paper's number)."""

    devacc: float
    acc: float


def stratified_folds(labels: Tensor, k: int = FOLDS, seed: int = SEED) -> list[Tensor]:
    """`k` disjoint index sets covering range(N), each holding about 1/k of every class, shuffled with `seed`."""
    if len(labels) < k:
        raise InputError(f"{k}-fold cross-validation needs at least {k} examples, got {len(labels)}")
    labels = labels.cpu()
    generator = torch.Generator().manual_seed(seed)
    fold_of = torch.empty(len(labels), dtype=torch.long)
    dealt = 0
    for label in labels.unique():
        members = (labels == label).nonzero().squeeze(1)
        members = members[torch.randperm(len(members), generator=generator)]
        fold_of[members] = (torch.arange(len(members)) + dealt) % k  # deal round-robin, continuing across classes
        dealt += len(members)
    return [(fold_of == fold).nonzero().squeeze(1) for fold in range(k)]


def cross_validation_scores(
    features: Tensor, labels: Tensor, num_classes: int, k: int = FOLDS, seed: int = SEED
) -> list[float]:
    """Mean held-out accuracy ×100 over `k` stratified folds, for each penalty of `L2_GRID`."""
    accuracies = []  # [fold][penalty]
    for held_out in stratified_folds(labels, k, seed):
        train = _complement(held_out, len(labels))
        fits = fit_logistic_regressions(features[train], labels[train], num_classes, L2_GRID)
        accuracies.append([fit.accuracy(features[held_out], labels[held_out]) for fit in fits])
    return [_accuracy_percent(sum(fold[index] for fold in accuracies) / k) for index in range(len(L2_GRID))]


def kfold_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
    k: int = FOLDS,
    seed: int = SEED,
) -> ProbeResult:
    """SentEval's `KFoldClassifier`: the penalty by k-fold cross-validation on train, then train → test."""
    scores = cross_validation_scores(train_features, train_labels, num_classes, k, seed)
    best = _first_best(scores)
    (classifier,) = fit_logistic_regressions(train_features, train_labels, num_classes, [L2_GRID[best]])
    return ProbeResult(scores[best], _accuracy_percent(classifier.accuracy(test_features, test_labels)))


def inner_kfold_probe(
    features: Tensor, labels: Tensor, num_classes: int, k: int = FOLDS, seed: int = SEED
) -> ProbeResult:
    """SentEval's `InnerKFoldClassifier`: `kfold_probe` on each of `k` outer folds, averaged."""
    results = []
    for held_out in stratified_folds(labels, k, seed):
        train = _complement(held_out, len(labels))
        results.append(
            kfold_probe(features[train], labels[train], features[held_out], labels[held_out], num_classes, k, seed)
        )
    return ProbeResult(
        round(sum(result.devacc for result in results) / k, 2), round(sum(result.acc for result in results) / k, 2)
    )


def split_probe(splits: dict[str, tuple[Tensor, Tensor]], num_classes: int) -> ProbeResult:
    """SentEval's `SplitClassifier`: fit on `train` for each penalty, choose it on `dev`, score `test`.

    Args:
        splits: `train`, `dev` and `test`, each (features (N, D), labels (N,)).
        num_classes: C.
    """
    fits = fit_logistic_regressions(*splits["train"], num_classes, L2_GRID)
    scores = [_accuracy_percent(fit.accuracy(*splits["dev"])) for fit in fits]
    best = _first_best(scores)
    return ProbeResult(scores[best], _accuracy_percent(fits[best].accuracy(*splits["test"])))


def _complement(indices: Tensor, size: int) -> Tensor:
    mask = torch.ones(size, dtype=torch.bool)
    mask[indices] = False
    return mask.nonzero().squeeze(1)


def _first_best(scores: list[float]) -> int:
    return max(range(len(scores)), key=scores.__getitem__)  # the first maximum, as np.argmax


def _accuracy_percent(fraction: float) -> float:
    return round(100 * fraction, 2)
