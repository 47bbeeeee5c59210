"""Refuse, in one line, the successors of SimCSE switched on together where no paper defines the combination, and a
method's setting given without the key that switches the method on (it would be ignored: plain SimCSE, silently), or
a contrastive setting under TSDAE's objective.

SimCSE++ replaces InfoNCE's negatives (off-dropout) and adds DCL; ESimCSE's queue adds momentum-encoded negatives;
PromptBERT changes what is encoded (the sentence inside a template); TSDAE replaces the contrastive objective. Each
paper trains one of them alone, and the combinations would silently drop a part (SimCSE++'s loss ignores the queue,
its off-dropout pass has no template).
"""

from collections.abc import Callable, Mapping
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


def check_word_repetition(hparams: Mapping[str, Any], rate: float | None) -> None:
    """Raises InputError when ESimCSE's word repetition (`data.word_repetition_rate`: each sentence's positive is a
    second, longer view of it) is on with SimCSE++ or TSDAE, which take one view of each sentence."""
    for method, key in active_methods(hparams).items():
        if rate is not None and method in ("SimCSE++", "TSDAE"):
            raise InputError(
                f"data.word_repetition_rate: {rate} (ESimCSE's repeated positive) is not defined together with "
                f"{method} (model.{key}), which trains on one view of each sentence; set it to null"
            )


def check_method_combinations(hparams: Mapping[str, Any]) -> None:
    """Raises InputError naming both keys when two of SimCSE++, ESimCSE's queue, PromptBERT and TSDAE are on."""
    methods = active_methods(hparams)
    if len(methods) > 1:
        (first, first_key), (second, second_key) = list(methods.items())[:2]
        raise InputError(
            f"model.{second_key}: {second} is not defined together with {first} (model.{first_key}); turn one off"
        )


# (a setting, the key whose value turns its method on, whether that value is on, the value to give it)
_SWITCHED: tuple[tuple[str, str, Callable[[Any], bool], str], ...] = (
    ("momentum", "momentum_queue_size", lambda size: size > 0, "160 (ESimCSE)"),
    ("tsdae_deletion_ratio", "objective", lambda objective: objective == "tsdae", "tsdae"),
    ("mlm_weight", "do_mlm", bool, "true"),
    ("mlm_probability", "do_mlm", bool, "true"),
    # TSDAE's loss is its decoder's cross-entropy: the contrastive and scored-pair losses' settings do nothing there.
    *(
        (key, "objective", lambda objective: objective != "tsdae", "contrastive")
        for key in ("temp", "hard_negative_weight", "hard_negative_alpha", "scored_loss", "cosent_scale")
    ),
)


def check_method_switches(hparams: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Raises InputError naming the key when a method's setting differs from its default (`defaults`: the signature's)
    while the method is off."""
    for key, switch, is_on, on in _SWITCHED:
        if hparams[key] != defaults[key] and not is_on(hparams[switch]):
            value = str(hparams[switch]).lower() if isinstance(hparams[switch], bool) else hparams[switch]
            raise InputError(
                f"model.{key}: {hparams[key]} has no effect with model.{switch}: {value} (its method is off); set "
                f"model.{switch}: {on} to use it, or leave model.{key} out"
            )
