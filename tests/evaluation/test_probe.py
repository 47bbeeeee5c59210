import pytest
import torch

from cse.errors import InputError
from cse.evaluation.logistic_regression import fit_logistic_regressions
from cse.evaluation.probe import (
    L2_GRID,
    cross_validation_scores,
    inner_kfold_probe,
    kfold_probe,
    split_probe,
    stratified_folds,
)


def _blobs(n: int, separation: float, seed: int, dims: int = 4, classes: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clouds, one per class, `separation` apart along the first axes."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    features = torch.randn(n, dims, generator=generator)
    features[:, :classes] += separation * torch.nn.functional.one_hot(labels, classes)
    return features, labels


def test_stratified_folds_partition_and_balance():
    labels = torch.tensor([0] * 30 + [1] * 13 + [2] * 7)
    folds = stratified_folds(labels, k=5, seed=3)
    assert sorted(torch.cat(folds).tolist()) == list(range(50))
    for label, count in ((0, 30), (1, 13), (2, 7)):
        per_fold = [(labels[fold] == label).sum().item() for fold in folds]
        assert max(per_fold) - min(per_fold) <= 1 and sum(per_fold) == count
    assert [len(fold) for fold in folds] == [10] * 5
    assert all(torch.equal(a, b) for a, b in zip(folds, stratified_folds(labels, k=5, seed=3), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(folds, stratified_folds(labels, k=5, seed=4), strict=True))
    with pytest.raises(InputError, match="at least 5 examples"):
        stratified_folds(labels[:4], k=5)


def test_separable_task_is_learned_and_random_labels_are_at_chance():
    features, labels = _blobs(120, separation=6.0, seed=0)
    assert inner_kfold_probe(features, labels, 2, k=3).acc > 97.0
    shuffled = labels[torch.randperm(120, generator=torch.Generator().manual_seed(1))]
    chance = inner_kfold_probe(features, shuffled, 2, k=3)
    assert 30.0 < chance.acc < 70.0 and 30.0 < chance.devacc < 70.0


def test_cross_validation_scores_match_a_naive_loop():
    features, labels = _blobs(60, separation=1.0, seed=2, classes=3)
    scores = cross_validation_scores(features, labels, 3, k=4, seed=5)
    folds = stratified_folds(labels, k=4, seed=5)
    for index, l2 in enumerate(L2_GRID):
        accuracies = []
        for held_out in folds:
            train = [i for i in range(60) if i not in set(held_out.tolist())]
            (fit,) = fit_logistic_regressions(features[train], labels[train], 3, [l2])
            correct = sum(int(fit.predict(features[i : i + 1])[0] == labels[i].item()) for i in held_out.tolist())
            accuracies.append(correct / len(held_out))
        assert scores[index] == pytest.approx(round(100 * sum(accuracies) / 4, 2), abs=0.01)


def test_kfold_probe_refits_on_train_with_the_best_penalty():
    features, labels = _blobs(90, separation=1.5, seed=3)
    train, test = slice(0, 60), slice(60, 90)
    result = kfold_probe(features[train], labels[train], features[test], labels[test], 2, k=3)
    scores = cross_validation_scores(features[train], labels[train], 2, k=3)
    best = scores.index(max(scores))  # first maximum
    (fit,) = fit_logistic_regressions(features[train], labels[train], 2, [L2_GRID[best]])
    assert result.devacc == max(scores)
    assert result.acc == round(100 * fit.accuracy(features[test], labels[test]), 2)


def test_split_probe_chooses_the_penalty_on_dev():
    features, labels = _blobs(90, separation=1.5, seed=4)
    splits = {"train": (features[:50], labels[:50]), "dev": (features[50:70], labels[50:70])}
    splits["test"] = (features[70:], labels[70:])
    result = split_probe(splits, 2)
    fits = fit_logistic_regressions(features[:50], labels[:50], 2, L2_GRID)
    dev = [round(100 * fit.accuracy(*splits["dev"]), 2) for fit in fits]
    assert result.devacc == max(dev)
    assert result.acc == round(100 * fits[dev.index(max(dev))].accuracy(*splits["test"]), 2)


def test_inner_kfold_averages_kfold_probes_over_outer_folds():
    features, labels = _blobs(60, separation=1.0, seed=5)
    result = inner_kfold_probe(features, labels, 2, k=3, seed=7)
    outer = []
    for held_out in stratified_folds(labels, k=3, seed=7):
        train = torch.tensor([i for i in range(60) if i not in set(held_out.tolist())])
        outer.append(kfold_probe(features[train], labels[train], features[held_out], labels[held_out], 2, k=3, seed=7))
    assert result.devacc == round(sum(r.devacc for r in outer) / 3, 2)
    assert result.acc == round(sum(r.acc for r in outer) / 3, 2)
