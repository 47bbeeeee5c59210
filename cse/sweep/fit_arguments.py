"""The `cse fit` arguments of a sweep: checked once, then the same for every seed but its seed and run folder.

Each seed's run logs into `SWEEP_DIR/seed_S/version_N/` and resumes with `--ckpt_path last`, which looks in
`SWEEP_DIR/seed_S/` only (`cse.runs.resume`): the same command starts a seed, or continues it after an interruption.
"""

import argparse
from pathlib import Path

import torch
import yaml

from cse.commands.parsed_settings import parsed_settings
from cse.config.recipes import resolve_config
from cse.errors import InputError, one_line

# Set by the sweep for each seed; given by the user they would make every seed the same run, or mix their folders.
SWEEP_KEYS = ("seed_everything", "ckpt_path", "trainer.logger")
SEED_FOLDER = "seed_{seed}"


def setting(fit_args: list[str], key: str) -> object:
    """The value of a dotted `key` the arguments give: the last `--key VALUE` or `--key=VALUE`, else the last
    `--config` file holding it, else None (the signature's default). Overrides are read as YAML scalars."""
    found: object = None
    for index, arg in enumerate(fit_args):
        name, _, inline = arg.partition("=")
        value = inline if "=" in arg else (fit_args[index + 1] if index + 1 < len(fit_args) else None)
        if name == "--config" and value is not None:
            found = _config_value(resolve_config(value), key, found)
        elif name == f"--{key}" and value is not None:
            found = yaml.safe_load(value)
    return found


def check_fit_arguments(fit_args: list[str], sequential: bool) -> None:
    """One-line `InputError`s for arguments a sweep cannot run, before any seed starts."""
    for arg in fit_args:
        name = arg.partition("=")[0].removeprefix("--")
        if any(name == key or name.startswith(f"{key}.") for key in SWEEP_KEYS):
            raise InputError(f"--{name}: set by cse sweep for each seed ({', '.join(SWEEP_KEYS)}); leave it out")
    if not any(arg.partition("=")[0] == "--config" for arg in fit_args):
        raise InputError("--config: cse sweep needs the recipe to train, e.g. --config quickstart")
    if not setting(fit_args, "data.dev_file"):
        raise InputError("data.dev_file: not set; cse sweep compares seeds by their best STS-B dev Spearman")
    devices, nodes = setting(fit_args, "trainer.devices"), setting(fit_args, "trainer.num_nodes")
    processes = devices if isinstance(devices, int) else None
    if devices in (None, "auto", -1, "-1"):
        processes = torch.cuda.device_count() or 1
    elif isinstance(devices, list | str):
        processes = len(devices) if isinstance(devices, list) else len([d for d in devices.split(",") if d.strip()])
    if sequential and ((processes or 1) > 1 or (nodes or 1) > 1):
        raise InputError(
            f"trainer.devices: {devices} (num_nodes {nodes or 1}) would start DDP processes, and cse sweep runs its "
            "seeds one after another in one process: set --trainer.devices 1, or run each seed as its own DDP job "
            "with cse sweep --print-jobs"
        )


def seed_fit_arguments(fit_args: list[str], sweep_dir: Path, seed: int) -> list[str]:
    """`cse fit` arguments (after `fit`) of one seed: the user's, then the seed and its run folder, which win."""
    return [
        *fit_args,
        "--seed_everything",
        str(seed),
        "--trainer.logger",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.init_args.save_dir",
        str(sweep_dir),
        "--trainer.logger.init_args.name",
        SEED_FOLDER.format(seed=seed),
        "--trainer.logger.init_args.version",
        "null",  # a fresh seed claims version_0 (cse.runs.resume.choose_run_folder); a resumed one keeps its own
        "--ckpt_path",
        "last",
    ]


class RecordedArgumentsError(InputError):
    """The sweep's recorded `cse fit` arguments no longer parse (a recipe file they name has gone, say)."""


def changed_settings(recorded: list[str], given: list[str]) -> list[str]:
    """The settings on which two lists of `cse fit` arguments differ, as parsed (not as spelled: `--k=v` is `--k v`),
    each as `key: RECORDED -> GIVEN` (`unset` where one list leaves a key out); none when they mean the same run.

    Raises:
        RecordedArgumentsError: `recorded` no longer parses; `given` raises as `cse fit` would.
    """
    if recorded == given:
        return []
    try:
        before = parsed_settings(["fit", *recorded])
    except (InputError, argparse.ArgumentError) as error:
        raise RecordedArgumentsError(
            f"the sweep's recorded cse fit arguments no longer parse: {one_line(error)}"
        ) from None
    after = parsed_settings(["fit", *given])
    unset = object()
    before, after = dict(before.items()), dict(after.items())  # dotted keys of every leaf
    return [
        f"{key}: {_shown(before.get(key, unset), unset)} -> {_shown(after.get(key, unset), unset)}"
        for key in sorted(before.keys() | after.keys())
        if key != "config" and before.get(key, unset) != after.get(key, unset)  # config: the files' spellings
    ]


def _shown(value: object, unset: object) -> str:
    return "unset" if value is unset else repr(value)


def _config_value(path: str, key: str, default: object) -> object:
    try:
        node = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return default  # cse fit reports the file itself
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
