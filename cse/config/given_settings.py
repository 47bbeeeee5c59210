"""The keys of a config section (`model`) that a command line names, itself or in the user's own `--config` files: the
settings given, told from the signature defaults that LightningCLI fills in for all others and from a shipped recipe's
values (`cse validate -c quickstart` did not ask for the hub id its recipe names: `cse quickstart` trains a local copy).

jsonargparse cannot tell them itself here: its parse without defaults (`parse_args(defaults=False)`) fails on
LightningCLI's argument links, whose sources it leaves unset.
"""

from pathlib import Path

import yaml

from cse.config.recipes import recipe_dir


def given_keys(args: list[str], section: str) -> set[str]:
    """The first-level keys of `section` that `args` give: `--section.KEY VALUE` (or `=VALUE`, `+=VALUE`), the
    `section:` mapping of each `--config FILE` (or inline mapping) other than a shipped recipe, and a `--section FILE`
    (or inline mapping)."""
    keys: set[str] = set()
    values = iter(args)
    for arg in values:
        option, has_value, value = arg.partition("=")
        if option in ("--config", f"--{section}"):
            text = value if has_value else next(values, "")
            if option == "--config" and _is_shipped_recipe(text):
                continue
            keys |= _mapping_keys(text, section if option == "--config" else None)
        elif option.startswith(f"--{section}."):
            keys.add(option.removeprefix(f"--{section}.").split(".")[0].removesuffix("+"))
    return keys


def _mapping_keys(value: str, section: str | None) -> set[str]:
    """The keys of the mapping `section` (None: the whole mapping) in a YAML file or an inline YAML/JSON mapping."""
    path = Path(value)
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8") if path.is_file() else value)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return set()  # not readable: jsonargparse refuses it itself
    if section is not None:
        content = content.get(section) if isinstance(content, dict) else None
    return {str(key) for key in content} if isinstance(content, dict) else set()


def _is_shipped_recipe(value: str) -> bool:
    """Whether a `--config` value (a recipe's name resolved to its path, `cse.config.recipes`) is a shipped recipe."""
    path = Path(value)
    return path.suffix == ".yaml" and path.is_file() and path.resolve().parent == recipe_dir().resolve()
