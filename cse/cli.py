"""The `cse` command: a table of commands, each handled by the `run(argv)` of its module in `cse.commands`.

`cse` or `cse --help` lists them; `cse COMMAND --help` is the command's own help. Bad input ends with one `error:` line
and exit status 2, whatever the command; a run that fails on the way (a non-finite loss, a GPU out of memory) with one
`error:` line and exit status 1.
"""

import argparse
import importlib
import os
import signal
import sys
from dataclasses import dataclass

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from cse.callbacks.non_finite_guard import NonFiniteLossError
from cse.config.recipes import config_spelled_out
from cse.errors import InputError, one_line
from cse.first_process import prints_refusal
from cse.library_notices import quiet_library_notices
from cse.out_of_memory import out_of_memory_line

PREEMPTED_EXIT_STATUS = 128 + signal.SIGTERM  # as a shell reports a process ended by SIGTERM


@dataclass(frozen=True)
class Command:
    """Where a command is handled (`run(argv)` of `module`) and its line in `cse --help`.

    `lightning`: a LightningCLI subcommand, whose `run` gets the command's name first. `takes_recipes`: its
    `--config` (or `-c`) names a recipe or YAML file.
    """

    module: str
    summary: str
    lightning: bool = False
    takes_recipes: bool = False


COMMANDS = {
    "fit": Command("cse.commands.fit", "train: cse fit --config RECIPE|FILE [--section.key VALUE ...]", True, True),
    "validate": Command("cse.commands.fit", "STS dev Spearman of the configured model (or --ckpt_path)", True, True),
    "test": Command("cse.commands.fit", "STS Spearman on data.test_file of the configured model", True, True),
    "quickstart": Command(
        "cse.commands.quickstart", "the offline demo: writes its data, fine-tunes MiniLM, exports", takes_recipes=True
    ),
    "eval": Command("cse.commands.evaluate", "the paper's STS (and transfer) evaluation of a model"),
    "export": Command("cse.commands.export", "a checkpoint or run as a model directory with its model card"),
    "encode": Command("cse.commands.encode", "embed the lines of a text file into a .npy array"),
    "search": Command("cse.commands.search", "the nearest lines of a corpus for each query line"),
    "mine": Command("cse.commands.mine", "hard negatives for (anchor, positive) pairs, as triplets cse fit trains on"),
    "label": Command("cse.commands.label", "score sentence pairs with a cross-encoder: silver data cse fit trains on"),
    "sweep": Command(
        "cse.commands.sweep",
        "cse fit once per seed: best dev Spearman per seed, mean and std (ddof=1)",
        takes_recipes=True,
    ),
}


def usage() -> str:
    """What `cse` and `cse --help` print: every command with its summary."""
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    return "\n".join(["usage: cse COMMAND [options]   (cse COMMAND --help for its options)", "", "commands:", *lines])


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `cse` console script."""
    args = sys.argv[1:] if argv is None else argv
    quiet_library_notices()
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return
    command = COMMANDS.get(args[0])
    try:
        if command is None:
            raise InputError(f"unknown command '{args[0]}'; the commands are {', '.join(COMMANDS)} (cse --help)")
        module = importlib.import_module(command.module)
        if command.takes_recipes:
            args = [args[0], *config_spelled_out(args[1:])]
        module.run(args if command.lightning else args[1:])
    except (InputError, MisconfigurationException) as error:  # Lightning's own refusals of settings are one line too
        if prints_refusal(error):  # under torchrun the other processes found the same: said once
            print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(2)
    except argparse.ArgumentError as error:  # jsonargparse: an unknown key, a value of the wrong type
        if prints_refusal(error):
            print(f"error: {one_line(error)} (cse {args[0]} --help lists what is accepted)", file=sys.stderr)
        sys.exit(2)
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except torch.OutOfMemoryError as error:  # a run too large for the GPU: the setting to lower, not a traceback
        print(f"error: {out_of_memory_line(args[0], error)}", file=sys.stderr)
        sys.exit(1)
    except SIGTERMException:  # PreemptionCheckpoint saved last.ckpt; not 0, the run is not finished
        sys.exit(PREEMPTED_EXIT_STATUS)
    except KeyboardInterrupt:  # Ctrl-C outside training (there it is PreemptionCheckpoint's orderly stop)
        print("interrupted", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except BrokenPipeError:  # `cse search ... | head`: the reader left; say nothing more, as Unix filters do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flush would raise again
        sys.exit(128 + signal.SIGPIPE)
    except OSError as error:  # a path that cannot be written or read: the run folder, a checkpoint, a full disk
        if error.filename is None:
            raise
        print(f"error: {error.filename}: {error.strerror}", file=sys.stderr)
        sys.exit(2)
