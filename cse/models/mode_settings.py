"""Settings that do nothing, or nothing useful, with the training data's mode: refused or warned about at start.

The mode follows the data's columns (`cse.data.columns`), so these are checked once the data is read: a batch of one
example gives InfoNCE no negatives (its loss is 0 whatever the model), and a hard-negative weight or a scored-pair
loss set for data without hard negatives or scores would be silently ignored. Unsupervised SimCSE also needs a
model whose training forward is random: its positive pair is one sentence seen through two dropout masks. And
accumulated batches are not one larger batch for a loss that compares the examples of a batch with each other.
"""

from collections.abc import Mapping
from typing import Any

from torch import nn

from cse.errors import InputError
from cse.models.batch import Mode


def check_settings_for_mode(
    settings: Mapping[str, Any],
    defaults: Mapping[str, Any],
    mode: Mode,
    batch_size: int,
    gathered_processes: int,
    encoder_has_dropout: bool = True,
    accumulate_grad_batches: int = 1,
) -> list[str]:
    """Warnings (one line each) about `model.*` settings without effect in `mode`.

    Args:
        settings: the model's arguments (`SimCSE.hparams`).
        defaults: their signature defaults, to tell which were set.
        mode: `unsupervised`, `pairs`, `triplets` or `scored` (`cse.models.batch.Mode`).
        batch_size: examples per batch and process.
        gathered_processes: processes whose candidates each anchor is scored against (1 without gathering).
        encoder_has_dropout: whether the encoder drops anything in training (`has_dropout`).
        accumulate_grad_batches: the trainer's, batches whose gradients one optimizer step sums.

    Raises:
        InputError: a batch too small for the objective to learn anything.
    """
    if mode == "scored":
        if batch_size < 2 and settings["scored_loss"] == "cosent":
            raise InputError("data.batch_size: CoSENT ranks the pairs of a batch against each other; use at least 2")
    elif batch_size * gathered_processes < 2:
        raise InputError(
            "data.batch_size: 1 example per batch gives InfoNCE no in-batch negatives (its loss is 0 whatever the "
            "model); use at least 2 (SimCSE: 64 unsupervised, 512 supervised)"
        )
    changed = {key for key in defaults if key in settings and settings[key] != defaults[key]}
    unused = set()
    if mode != "triplets":
        unused |= changed & {"hard_negative_weight", "hard_negative_alpha"}
    if mode == "scored":
        unused |= changed & {"temp", "gather_across_devices"}
    else:
        unused |= changed & {"scored_loss", "cosent_scale"}
    warnings = [f"model.{key}: has no effect on {mode} training data; it is ignored" for key in sorted(unused)]
    if mode == "unsupervised" and not encoder_has_dropout:
        warnings.append(
            f"model.model_name_or_path: '{settings['model_name_or_path']}' drops nothing in training (every dropout "
            "probability in its config is 0, as in ModernBERT's), so unsupervised SimCSE's two views of each sentence "
            "are identical (SimCSE §3: without dropout noise the representation collapses); set its dropout "
            "probabilities to 0.1 (BERT's) in its config.json"
        )
    accumulation = _accumulation_warning(accumulate_grad_batches, batch_size, mode, settings["scored_loss"])
    return warnings if accumulation is None else [*warnings, accumulation]


def _accumulation_warning(accumulate: int, batch_size: int, mode: Mode, scored_loss: str) -> str | None:
    """A warning when `trainer.accumulate_grad_batches` > 1 splits what the objective compares within a batch.

    InfoNCE scores each anchor against its batch's candidates, CoSENT ranks the pairs of its batch: k accumulated
    batches of B give k losses over B examples each, not the loss of one batch of kB (an anchor meets B - 1 in-batch
    negatives, not kB - 1). GradCache (`model.mini_batch_size`) gives that loss in the same memory. Cosine MSE is a
    mean over pairs, which accumulation keeps.
    """
    if accumulate <= 1 or (mode == "scored" and scored_loss != "cosent"):
        return None
    return (
        f"trainer.accumulate_grad_batches: {accumulate} sums the gradients of {accumulate} batches of {batch_size}, "
        f"each compared only within itself, not one batch of {accumulate * batch_size}; for that, set data.batch_size "
        f"{accumulate * batch_size} and model.mini_batch_size {batch_size} (GradCache: the same memory)"
    )


def has_dropout(module: nn.Module) -> bool:
    """Whether a training forward of `module` is random: one of its dropout layers drops with p > 0."""
    return any(isinstance(layer, nn.Dropout) and layer.p > 0 for layer in module.modules())
