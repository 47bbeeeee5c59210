"""A resumed `cse fit` must train what its checkpoint trained: settings that contradict it are refused at start.

Lightning's CLI would replace the `model.*` values of the config with the checkpoint's without a word (a new
temperature or learning rate silently ignored), and it keeps the data module's values as given (a new batch size
would resume at a position counted in batches of another size). Here both are compared with what the checkpoint
saved, and every difference is named in one line.

`cse validate|test --ckpt_path` build the model from the checkpoint's settings (Lightning's rule, kept: the weights
were trained with them); a `model.*` setting given there that differs from the checkpoint's is refused the same way.
"""

from collections.abc import Mapping
from typing import Any

import torch
from jsonargparse import Namespace

from cse.callbacks.step_settings import STEP_SETTINGS_KEY
from cse.errors import InputError

# `model.*` keys that may change on resume: where the base model lives (the weights come from the checkpoint),
# GradCache's chunk size (the same loss and gradients) and compilation (the same step).
MODEL_KEYS_FREE = ("model_name_or_path", "mini_batch_size", "compile")
# `model.*` keys that do nothing in `cse validate|test`: GradCache's chunk size and compilation shape training steps.
MODEL_KEYS_UNUSED_IN_EVALUATION = ("mini_batch_size", "compile")
# `data.*` keys that decide which examples form each step; the others (dev/test files, workers, caching, padding)
# leave the training state's meaning unchanged.
DATA_KEYS_FIXED = (
    *("batch_size", "max_seq_length", "columns", "score_range", "on_bad_rows", "no_duplicates", "seed"),
    *("train_files", "mixture"),  # data.tokenize is free: either way the same batches
    "word_repetition_rate",  # ESimCSE's positives: each sentence's repeated copy
)


def check_resumed_settings(checkpoint: Mapping[str, Any], config: Namespace, ckpt_path: str) -> None:
    """Raise `InputError` naming each `model.*`/`data.*`/`trainer.*` setting of `config` that differs from the
    checkpoint's."""
    saved_model = checkpoint.get("hyper_parameters") or {}
    saved_data = checkpoint.get("datamodule_hyper_parameters") or {}
    differences = [
        f"model.{key} {_plain(saved)!r} (now {_plain(config.model.get(key))!r})"
        for key, saved in saved_model.items()
        if not key.startswith("_") and key not in MODEL_KEYS_FREE and _plain(config.model.get(key)) != _plain(saved)
    ]
    differences += [
        f"data.{key} {_plain(saved_data[key])!r} (now {_plain(config.data.get(key))!r})"
        for key in DATA_KEYS_FIXED
        if key in saved_data and _plain(config.data.get(key)) != _plain(saved_data[key])
    ]
    differences += [  # what one optimizer step is; absent from checkpoints written before it was kept
        f"trainer.{key} {saved!r} (now {config.trainer.get(key)!r})"
        for key, saved in (checkpoint.get(STEP_SETTINGS_KEY) or {}).items()
        if config.trainer.get(key) != saved
    ]
    if differences:
        raise InputError(
            f"--ckpt_path {ckpt_path}: it was trained with {'; '.join(differences)}; resume with the settings it was "
            "trained with, or start a new run"
        )


def check_evaluated_settings(
    checkpoint: Mapping[str, Any], model: Namespace, given: set[str], ckpt_path: str, command: str
) -> None:
    """Raise `InputError` naming each `model.*` setting among `given` (the keys the command line or the user's own
    config files name, `cse.config.given_settings`) whose value in `model` differs from the checkpoint's, for
    `cse COMMAND`. Settings left to their defaults or to a shipped recipe are not compared: the user did not ask for
    them (`cse quickstart` trains a local copy of the model its recipe names by hub id)."""
    saved = checkpoint.get("hyper_parameters") or {}
    differences = [
        f"model.{key} {_plain(model.get(key))!r} (the checkpoint's: {_plain(saved[key])!r})"
        for key in sorted(given)
        if key in saved and key not in MODEL_KEYS_UNUSED_IN_EVALUATION and _plain(model.get(key)) != _plain(saved[key])
    ]
    if differences:
        raise InputError(
            f"--ckpt_path {ckpt_path}: cse {command} uses the model settings it was trained with, but was given "
            f"{'; '.join(differences)}; leave them out, or give the checkpoint's"
        )


def _plain(value: Any) -> Any:
    """Comparable form of a config value: tuples as lists, namespaces and mappings as dicts, floats as given."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def check_resumed_backbone(checkpoint: Mapping[str, Any], module: torch.nn.Module, ckpt_path: str, model: str) -> None:
    """Refuse a checkpoint whose backbone weights do not fit the configured model's (names and shapes), as
    `load_state_dict` would, but in one line instead of its page of missing keys and size mismatches."""
    prefix = "encoder.backbone."
    saved = {
        key: tuple(value.shape)
        for key, value in (checkpoint.get("state_dict") or {}).items()
        if hasattr(value, "shape")
    }
    own = {key: tuple(value.shape) for key, value in module.state_dict().items() if key.startswith(prefix)}
    differences = [
        f"{key.removeprefix(prefix)} {saved.get(key)} (now {shape})"
        for key, shape in own.items()
        if saved.get(key) != shape
    ]
    differences += [
        f"{key.removeprefix(prefix)} (not in the model now)"
        for key in saved.keys() - own.keys()
        if key.startswith(prefix)
    ]
    if differences:
        more = f"; and {len(differences) - 2} more" if len(differences) > 2 else ""
        raise InputError(
            f"--ckpt_path {ckpt_path}: its backbone does not fit model.model_name_or_path {model} "
            f"({'; '.join(sorted(differences)[:2])}{more}); resume with the model it was trained from"
        )
