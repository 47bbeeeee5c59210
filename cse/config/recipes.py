"""Find the shipped YAML recipes, in an installed wheel (`cse/configs`) or a source checkout (`configs/`)."""

from pathlib import Path

from cse.errors import InputError


def recipe_dir() -> Path:
    """The directory holding the shipped recipes."""
    package = Path(__file__).resolve().parents[1]  # cse/
    for candidate in (package / "configs", package.parent / "configs"):
        if candidate.is_dir():
            return candidate
    raise InputError("the shipped recipes were not found (reinstall cse)")


def recipe_names() -> list[str]:
    return sorted(path.stem for path in recipe_dir().glob("*.yaml"))


CONFIG_SHORT_OPTION = "-c"  # jsonargparse's short form of --config


def config_spelled_out(args: list[str]) -> list[str]:
    """`args` with jsonargparse's `-c FILE` (or `-c=FILE`) written `--config FILE`, the one spelling that recipe
    names, the sweep's checks and the given-settings reader look for."""
    return [
        "--config" + arg.removeprefix(CONFIG_SHORT_OPTION)
        if arg == CONFIG_SHORT_OPTION or arg.startswith(f"{CONFIG_SHORT_OPTION}=")
        else arg
        for arg in args
    ]


def resolve_config(value: str) -> str:
    """A `--config` value as given when it is a file, else the path of the shipped recipe of that name."""
    if Path(value).exists() or value.startswith(("{", "[")):
        return value
    candidate = recipe_dir() / f"{value.removesuffix('.yaml')}.yaml"
    if candidate.is_file():
        return str(candidate)
    raise InputError(
        f"--config {value}: no such file, and no shipped recipe of that name ({', '.join(recipe_names())})"
    )
