"""The settings a `cse` command line parses to, with nothing built, seeded or written (`cse sweep` compares the
recorded arguments of a sweep with those given again as settings, not as text)."""

from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser

from cse.commands.fit import SimCSECLI, run_lightning_cli


def parsed_settings(args: list[str]) -> Namespace:
    """The settings `cse SUBCOMMAND ARGS` runs with (`args` starts with the subcommand), parsed and type-checked as
    `run_lightning_cli` parses them, with nothing built, seeded or written: spellings that mean the same (`--k=v` and
    `--k v`, a recipe's name and its path, overrides in another order) give equal settings. The config files read
    are under `config`. Bad arguments raise as they do for `run_lightning_cli`."""
    try:
        run_lightning_cli(args, _ParseOnlyCLI)
    except _Parsed as parsed:
        return parsed.settings
    raise AssertionError("LightningCLI returned without parsing its arguments")


class _Parsed(Exception):
    """Raised with the parsed settings, to leave `LightningCLI.__init__` before it seeds or builds anything."""

    def __init__(self, settings: Namespace) -> None:
        super().__init__("parsed")
        self.settings = settings


class _ParseOnlyCLI(SimCSECLI):
    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        raise _Parsed(self.config[self.config.subcommand])
