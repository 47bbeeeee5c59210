"""`cse validate|test --ckpt_path`: `last` is the experiment's newest `last.ckpt`, as for `cse fit`; Lightning's own
`last` (the untrained model, with a warning) and `best` (a traceback) looked in the new run's empty folder."""

import csv
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained_run(shrunk_recipe_args, tmp_path_factory) -> tuple[Path, list[str]]:
    """A 3-step quickstart run validated after every step (its folder, and the arguments that made it)."""
    from cse.cli import main

    directory = tmp_path_factory.mktemp("trained")
    args = shrunk_recipe_args("quickstart", max_steps=3, val_check_interval=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        main(args)
    return directory, args


def _error(result) -> str:
    code, _, err = result
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_validate_last_scores_the_last_checkpoint(trained_run, run_cse, tmp_path, monkeypatch):
    directory, args = trained_run
    shutil.copytree(directory, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    with open(next(tmp_path.rglob("metrics.csv")), newline="") as handle:
        logged = [float(row["val/stsb_spearman"]) for row in csv.DictReader(handle) if row["val/stsb_spearman"]]
    code, out, err = run_cse(["validate", *args[1:], "--ckpt_path", "last"])
    assert code == 0, err
    assert f"val/stsb_spearman     │    {logged[-1]}" in out  # the validation of step 3, when last.ckpt was written
    assert logged[-1] != logged[0], "the base model scores otherwise"


def test_validate_last_without_a_run_is_one_line(shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args("quickstart")
    line = _error(run_cse(["validate", *args[1:], "--ckpt_path", "last"]))
    assert line == "error: --ckpt_path last: no last.ckpt under runs/quickstart; give the checkpoint file"


@pytest.mark.parametrize("command", ["validate", "test"])
def test_best_is_one_line(command, trained_run, run_cse, tmp_path, monkeypatch):
    directory, args = trained_run
    monkeypatch.chdir(directory)
    line = _error(
        run_cse(
            [command, *args[1:], "--data.test_file", args[args.index("--data.dev_file") + 1], "--ckpt_path", "best"]
        )
    )
    assert line.startswith("error: --ckpt_path best: cse validate and test take 'last' or a checkpoint file")


def test_test_without_a_test_file_is_one_line(shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _error(run_cse(["test", *shrunk_recipe_args("quickstart")[1:]]))
    assert line == "error: data.test_file: not set; cse test scores the model on that file of scored pairs"
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.csv"))


@pytest.mark.parametrize(("command", "unneeded"), [("validate", "--data.train_file"), ("test", "--data.dev_file")])
def test_validate_and_test_read_only_their_own_file(
    command, unneeded, shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    """They refused to start without the training corpus (and `test` without the dev file), which they never read."""
    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args("quickstart")
    scored = ["--data.test_file", args[args.index("--data.dev_file") + 1]]
    code, out, err = run_cse([command, *args[1:], *scored])
    assert code == 0, err
    metric = next(line for line in out.splitlines() if "stsb_spearman" in line)
    code, out, err = run_cse([command, *args[1:], *scored, unneeded, "no-such-file.txt"])
    assert code == 0, err
    assert next(line for line in out.splitlines() if "stsb_spearman" in line) == metric
