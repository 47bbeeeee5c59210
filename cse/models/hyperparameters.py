"""Checks of `SimCSE`'s numeric arguments, one line naming the `model.*` key, before anything is loaded."""

import math

from cse.errors import InputError

# (key, test, what is allowed) of the numeric arguments, checked before anything is loaded.
_RANGES = (
    ("temp", lambda value: value > 0, "> 0"),
    ("learning_rate", lambda value: value > 0, "> 0"),
    ("weight_decay", lambda value: value >= 0, ">= 0"),
    ("warmup_steps", lambda value: value >= 0, ">= 0"),
    ("cosent_scale", lambda value: value > 0, "> 0"),
    ("mlm_weight", lambda value: value >= 0, ">= 0"),
    ("mlm_probability", lambda value: 0 < value < 1, "in (0, 1)"),
    ("mini_batch_size", lambda value: value is None or value >= 1, "null (no chunks) or >= 1"),
)


def check_hyperparameters(hparams: dict) -> None:
    """One line naming the first `model.*` key whose value is out of range, its value and what is allowed."""
    for key, accepts, allowed in _RANGES:
        value = hparams[key]
        finite = value is None or math.isfinite(value)
        if not finite or not accepts(value):
            raise InputError(f"model.{key}: must be {allowed}, got {value}")


def hard_negative_logit_weight(weight: float, alpha: float | None) -> float:
    """`hard_negative_weight`, or ln α when the weight is given as α."""
    if math.isnan(weight) or weight == math.inf:
        raise InputError(
            f"model.hard_negative_weight: must be a number or -inf (removes the hard negative), got {weight}"
        )
    if alpha is None:
        return weight
    if weight != 0.0:
        raise InputError(
            "model.hard_negative_alpha: give either hard_negative_weight (log space) or hard_negative_alpha"
        )
    if alpha <= 0:
        raise InputError(f"model.hard_negative_alpha: must be > 0 (it multiplies a softmax weight), got {alpha}")
    return math.log(alpha)
