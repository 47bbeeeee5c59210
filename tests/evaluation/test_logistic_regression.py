import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import logsumexp

from cse.evaluation.logistic_regression import fit_logistic_regressions


def _reference_fit(features: np.ndarray, labels: np.ndarray, num_classes: int, l2: float) -> np.ndarray:
    """The objective written out directly, minimised by scipy's BFGS with numeric gradients from zero."""
    n, d = features.shape
    targets = np.eye(num_classes)[labels]

    def objective(flat: np.ndarray) -> float:
        weights = flat.reshape(d + 1, num_classes)
        logits = features @ weights[:-1] + weights[-1]
        cross_entropy = -(targets * (logits - logsumexp(logits, axis=1, keepdims=True))).sum() / n
        return cross_entropy + 0.5 * l2 * (weights**2).sum()

    result = minimize(objective, np.zeros((d + 1) * num_classes), method="BFGS", options={"gtol": 1e-9})
    return result.x.reshape(d + 1, num_classes)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_matches_direct_minimisation_of_the_objective(num_classes):
    rng = np.random.default_rng(0)
    # Badly scaled, correlated features with an offset: what the preconditioning is for.
    features = rng.normal(size=(80, 5)) @ rng.normal(size=(5, 5)) * np.array([5.0, 1.0, 0.2, 1.0, 3.0]) + 2.0
    labels = (features[:, 0] + rng.normal(size=80) > 2.0).astype(int) + (num_classes == 3) * (features[:, 1] > 0)
    l2s = [1.0e-2, 1.0e-3, 1.0e-1]
    fits = fit_logistic_regressions(torch.tensor(features, dtype=torch.float32), torch.tensor(labels), num_classes, l2s)
    for l2, fit in zip(l2s, fits, strict=True):
        expected = _reference_fit(features.astype(np.float32).astype(np.float64), labels, num_classes, l2)
        np.testing.assert_allclose(fit.weight, expected[:-1], atol=2e-3, rtol=2e-3)
        np.testing.assert_allclose(fit.bias, expected[-1], atol=2e-3, rtol=2e-3)


def test_each_penalty_is_fitted_independently_of_the_others():
    rng = np.random.default_rng(1)
    features = torch.tensor(rng.normal(size=(60, 4)))
    labels = torch.tensor((rng.normal(size=60) + features[:, 0].numpy() > 0).astype(int))
    together = fit_logistic_regressions(features, labels, 2, [1.0e-4, 1.0e-2])
    alone = fit_logistic_regressions(features, labels, 2, [1.0e-4])[0]
    np.testing.assert_allclose(together[0].weight, alone.weight, atol=1e-4, rtol=1e-4)
    assert np.linalg.norm(together[1].weight) < np.linalg.norm(together[0].weight)  # the stronger penalty shrinks


def test_predict_and_accuracy():
    features = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])
    labels = torch.tensor([1, 0, 0])
    fit = fit_logistic_regressions(features, labels, 2, [1.0e-3])[0]
    assert fit.predict(features).tolist() == [1, 0, 0]
    assert fit.accuracy(features, torch.tensor([1, 1, 0])) == pytest.approx(2 / 3)
