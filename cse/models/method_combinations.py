"""Refuse, in one line, the successors of SimCSE switched on together where no paper defines the combination.

SimCSE++ replaces InfoNCE's negatives (off-dropout) and adds DCL; ESimCSE's queue adds momentum-encoded negatives;
PromptBERT changes what is encoded (the sentence inside a template); TSDAE replaces the contrastive objective. Each
paper trains one of them alone, and the combinations would silently drop a part (SimCSE++'s loss ignores the queue,
its off-dropout pass has no template).
"""

from collections.abc import Mapping
from typing import Any

from cse.errors import InputError


def active_methods(hparams: Mapping[str, Any]) -> dict[str, str]:
    """Method name -> the `model.*` key that switches it on, for each successor whose option is on."""
    methods = {}
    if hparams.get("off_dropout_negatives") or hparams.get("dimension_contrast_weight", 0) > 0:
        key = "off_dropout_negatives" if hparams.get("off_dropout_negatives") else "dimension_contrast_weight"
        methods["SimCSE++"] = key
    if hparams.get("momentum_queue_size", 0) > 0:
        methods["ESimCSE's momentum queue"] = "momentum_queue_size"
    if hparams.get("pooler_type") == "prompt":
        methods["PromptBERT"] = "pooler_type"
    if hparams.get("objective") == "tsdae":
        methods["TSDAE"] = "objective"
    return methods


def check_method_combinations(hparams: Mapping[str, Any]) -> None:
    """Raises InputError naming both keys when two of SimCSE++, ESimCSE's queue, PromptBERT and TSDAE are on."""
    methods = active_methods(hparams)
    if len(methods) > 1:
        (first, first_key), (second, second_key) = list(methods.items())[:2]
        raise InputError(
            f"model.{second_key}: {second} is not defined together with {first} (model.{first_key}); turn one off"
        )
