"""`model.matryoshka_dims` and `model.matryoshka_weights` of `SimCSE`: checked at start, and their validation metrics.

Matryoshka representation learning (Kusupati et al., 2022; `cse.losses.matryoshka`) trains the first d coordinates of
the embedding for each d of `matryoshka_dims`. Validation then scores each truncated embedding too:
`val/stsb_spearman` stays the full embedding's (model selection), `val/stsb_spearman_dim{d}` each smaller d's.
"""

import math
from collections.abc import Sequence
from itertools import pairwise

from cse.errors import InputError

EXAMPLE = "[768, 512, 256, 128, 64]"  # sentence-transformers' Matryoshka example (matryoshka_nli.py)
TRUNCATED_SPEARMAN = "stsb_spearman_dim"  # metric name after `split/`, before the dimension


def spearman_by_dimension_name(split: str, dimension: int) -> str:
    """The metric name of the STS Spearman of the embedding truncated to `dimension`, e.g. `val/stsb_spearman_dim64`."""
    return f"{split}/{TRUNCATED_SPEARMAN}{dimension}"


def check_matryoshka_settings(
    dimensions: Sequence[int] | None, weights: Sequence[float] | None, mlp_in_training_only: bool = False
) -> None:
    """One line naming the key when the dimensions or weights cannot be trained (the hidden size is checked apart).

    `mlp_in_training_only`: the pooler's MLP is used in training and dropped at inference (`mlp_only_train`). The loss
    would then train the prefixes of the MLP's output while the exported embedding is its input, whose prefixes are
    not trained; sentence-transformers' `MatryoshkaLoss` truncates the very embedding the model gives at inference.

    Raises:
        InputError: an empty list, a dimension < 1, dimensions not strictly decreasing, weights without dimensions,
            of another length, or not finite and > 0; dimensions with an MLP in training only.
    """
    if dimensions is None:
        if weights is not None:
            raise InputError(
                f"model.matryoshka_weights: {list(weights)} given without model.matryoshka_dims (the dimensions they "
                "weigh); set both, or neither"
            )
        return
    dimensions = list(dimensions)
    if not dimensions:
        raise InputError(f"model.matryoshka_dims: must list at least one dimension, e.g. {EXAMPLE}, or be null (off)")
    if any(dimension < 1 for dimension in dimensions):
        raise InputError(f"model.matryoshka_dims: every dimension must be >= 1, got {dimensions}")
    if any(smaller >= larger for larger, smaller in pairwise(dimensions)):
        raise InputError(
            f"model.matryoshka_dims: must be strictly decreasing, largest first (e.g. {EXAMPLE}), got {dimensions}"
        )
    if weights is not None:
        weights = list(weights)
        if len(weights) != len(dimensions):
            raise InputError(
                f"model.matryoshka_weights: {weights} must hold one weight per dimension of model.matryoshka_dims "
                f"{dimensions} ({len(dimensions)}), or be null (each 1)"
            )
        if not all(math.isfinite(weight) and weight > 0 for weight in weights):
            raise InputError(f"model.matryoshka_weights: every weight must be a finite number > 0, got {weights}")
    if mlp_in_training_only:
        raise InputError(
            f"model.matryoshka_dims: {dimensions} with model.mlp_only_train: true would train the prefixes of the "
            "MLP's output, but the MLP is dropped at inference and the exported embedding's prefixes are untrained; "
            "set model.mlp_only_train: false (the MLP kept and exported) or use a pooler without an MLP"
        )


def check_matryoshka_hidden_size(dimensions: Sequence[int] | None, hidden_size: int, model: str) -> str | None:
    """A warning when the full embedding is not one of the trained prefixes, else None.

    Raises:
        InputError: a dimension larger than the embedding (`hidden_size`).
    """
    if dimensions is None:
        return None
    if dimensions[0] > hidden_size:
        raise InputError(
            f"model.matryoshka_dims: {dimensions[0]} is larger than the embedding of '{model}' (hidden size "
            f"{hidden_size}); use dimensions <= {hidden_size}"
        )
    if dimensions[0] != hidden_size:
        return (
            f"model.matryoshka_dims: {list(dimensions)} leaves out the full embedding ({hidden_size}, the one "
            f"val/stsb_spearman scores and the export gives); its last {hidden_size - dimensions[0]} coordinates are "
            "not trained. Add it first, as sentence-transformers recommends"
        )
    return None


def validated_dimensions(dimensions: Sequence[int] | None, hidden_size: int) -> tuple[int, ...]:
    """The truncations validation scores apart: every trained dimension but the full one (`val/stsb_spearman`)."""
    return tuple(dimension for dimension in dimensions or () if dimension < hidden_size)
