"""Multinomial logistic regression with an L2 penalty, minimised to its optimum by scipy's L-BFGS (float64).

The transfer probe of SentEval (Conneau & Kiela, 2018) with `nhid: 0`, as SimCSE runs it, is a linear softmax
classifier on frozen sentence embeddings with an L2 weight decay chosen on validation data. SentEval trains it
with Adam (weight decay on every parameter, bias included) and early stopping; here the same convex objective

    min_{W, b}  mean_i CE(softmax(x_i W + b), y_i) + l2 / 2 * (||W||² + ||b||²)

is minimised to its optimum instead, which is deterministic and needs no validation split inside the fit.

Speed: sentence embeddings are badly conditioned, so plain L-BFGS needs hundreds of steps at small penalties.
The problem is solved in the eigenbasis of the (bias-augmented) second-moment matrix XᵀX / N, a rotation that
leaves the penalty unchanged, with each direction scaled by the inverse square root of a bound on its curvature
(eigenvalue / 4 + l2: softmax cross-entropy has curvature at most 1/4 per unit of squared input). This diagonal
preconditioning changes the path of L-BFGS, not the optimum, and cuts the steps about fourfold. The objective and
gradient run in numpy, in float64: a probe fits thousands of small models, where torch's per-op overhead dominates.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from torch import Tensor

MAX_ITERATIONS = 1000
GRADIENT_TOLERANCE = 1.0e-6  # max |gradient| (preconditioned variables) at which L-BFGS stops
RELATIVE_TOLERANCE = 1.0e-12  # ... or relative decrease of the objective in one step


@dataclass(frozen=True)
class LinearClassifier:
    """Logits `features @ weight + bias`: weight (D, C), bias (C,), float64 numpy arrays."""

    weight: np.ndarray
    bias: np.ndarray

    def predict(self, features: Tensor) -> np.ndarray:
        """Class ids (N,) of features (N, D)."""
        return (_as_array(features) @ self.weight + self.bias).argmax(axis=1)

    def accuracy(self, features: Tensor, labels: Tensor) -> float:
        """Fraction in [0, 1] of `labels` (N,) predicted from `features` (N, D)."""
        return float((self.predict(features) == labels.cpu().numpy()).mean())


def fit_logistic_regressions(
    features: Tensor, labels: Tensor, num_classes: int, l2s: Sequence[float]
) -> list[LinearClassifier]:
    """The L2-penalised logistic regression of `labels` on `features`, for each penalty of `l2s` (in its order).

    Args:
        features: (N, D) inputs.
        labels: (N,) class ids in [0, num_classes).
        num_classes: C, the number of classes (labels may miss some, e.g. in a small fold).
        l2s: penalties, each weighting `1/2 * (||W||² + ||b||²)` against the mean cross-entropy; positive.

    Returns:
        One classifier per penalty.
    """
    inputs = _as_array(features)
    num_examples = inputs.shape[0]
    augmented = np.hstack([inputs, np.ones((num_examples, 1))])  # (N, D) -> (N, D+1): the bias as a weight
    eigenvalues, rotation = np.linalg.eigh(augmented.T @ augmented / num_examples)  # (D+1,), (D+1, D+1)
    rotated = augmented @ rotation  # (N, D+1); ||rotation @ w|| = ||w||, so the penalty is unchanged
    targets = np.eye(num_classes)[labels.cpu().numpy()]  # (N, C) one-hot
    curvature_bound = np.clip(eigenvalues, 0.0, None) / 4.0
    rotated_weights: dict[int, np.ndarray] = {}  # (D+1, C) per penalty, in the rotated basis
    start = np.zeros((augmented.shape[1], num_classes))
    for index in sorted(range(len(l2s)), key=lambda index: -l2s[index]):  # strongest first, each warm-starting the next
        scale = 1.0 / np.sqrt(curvature_bound + l2s[index])  # (D+1,) preconditioner: weights = scale * variables
        variables = _minimise(rotated * scale, targets, l2s[index] * scale**2, start / scale[:, None])
        rotated_weights[index] = start = variables * scale[:, None]
    classifiers = []
    for index in range(len(l2s)):
        weights = rotation @ rotated_weights[index]  # (D+1, C) in the original basis
        classifiers.append(LinearClassifier(weights[:-1], weights[-1]))
    return classifiers


def _minimise(inputs: np.ndarray, targets: np.ndarray, penalties: np.ndarray, start: np.ndarray) -> np.ndarray:
    """argmin_V mean CE(softmax(inputs @ V), targets) + 1/2 * sum_i penalties_i * ||V_i||², V (P, C) from `start`."""
    num_examples, num_classes = targets.shape
    shape = start.shape

    def loss_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        variables = flat.reshape(shape)  # (P * C,) -> (P, C)
        logits = inputs @ variables  # (N, C)
        logits -= logits.max(axis=1, keepdims=True)
        log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        loss = -(targets * log_probabilities).sum() / num_examples + 0.5 * (penalties[:, None] * variables**2).sum()
        residuals = (np.exp(log_probabilities) - targets) / num_examples  # d mean CE / d logits, (N, C)
        gradient = inputs.T @ residuals + penalties[:, None] * variables  # (P, C)
        return loss, gradient.ravel()

    result = minimize(
        loss_and_gradient,
        start.ravel(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": MAX_ITERATIONS, "gtol": GRADIENT_TOLERANCE, "ftol": RELATIVE_TOLERANCE},
    )
    return result.x.reshape(shape)


def _as_array(features: Tensor) -> np.ndarray:
    return features.detach().cpu().double().numpy()
