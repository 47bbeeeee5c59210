"""`cse validate|test --ckpt_path`: `last` is the experiment's newest `last.ckpt`, as for `cse fit`; Lightning's own
`last` (the untrained model, with a warning) and `best` (a traceback) looked in the new run's empty folder."""

import csv
import logging
import shutil
from pathlib import Path

import pytest
import torch

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


def test_validate_without_a_dev_file_is_one_line(shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    """It validated on nothing: Lightning's warning that the list of batches is empty, and exit status 0."""
    monkeypatch.chdir(tmp_path)
    line = _error(run_cse(["validate", *shrunk_recipe_args("quickstart")[1:], "--data.dev_file", "null"]))
    assert line == "error: data.dev_file: not set; cse validate scores the model on that file of scored pairs"
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.csv"))


@pytest.mark.parametrize(("command", "unneeded"), [("validate", "--data.train_file"), ("test", "--data.dev_file")])
def test_validate_and_test_read_only_their_own_file(
    command, unneeded, shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    """They refused to start without the training corpus (and `test` without the dev file), which they never read:
    a missing file, or none given."""
    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args("quickstart")
    scored = ["--data.test_file", args[args.index("--data.dev_file") + 1]]
    code, out, err = run_cse([command, *args[1:], *scored])
    assert code == 0, err
    metric = next(line for line in out.splitlines() if "stsb_spearman" in line)
    for value in ("no-such-file.txt", "null"):
        code, out, err = run_cse([command, *args[1:], *scored, unneeded, value])
        assert code == 0, err
        assert next(line for line in out.splitlines() if "stsb_spearman" in line) == metric


def test_fit_without_training_data_is_one_line_before_the_model_loads(
    shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    """A model that cannot load shows that the refusal comes first."""
    monkeypatch.chdir(tmp_path)
    args = [*shrunk_recipe_args("quickstart"), "--data.train_file", "null"]
    assert "no-such-model" in _error(run_cse([*args[:-2], "--model.model_name_or_path", "no-such-model"]))
    line = _error(run_cse([*args, "--model.model_name_or_path", "no-such-model"]))
    assert line == "error: data.train_file: not set; give a training file (or data.train_files for a mixture)"


def _checkpoint_trained_with(directory: Path, tmp_path: Path, **hyperparameters) -> Path:
    """A copy of the run's last.ckpt whose model settings say it was trained with `hyperparameters`."""
    checkpoint = torch.load(next(directory.rglob("last.ckpt")), weights_only=True)
    checkpoint["hyper_parameters"].update(hyperparameters)
    torch.save(checkpoint, tmp_path / "trained.ckpt")
    return tmp_path / "trained.ckpt"


@pytest.mark.parametrize("command", ["validate", "test"])
@pytest.mark.parametrize(
    ("options", "refused"),
    [
        ([], None),  # the recipe's settings, as it was trained: the checkpoint's temperature left to it
        (["--model.pooler_type", "avg"], "model.pooler_type 'avg' (the checkpoint's: 'cls')"),
        (["--model.pooler_type=cls", "--model.mlp_only_train", "true"], None),  # the checkpoint's values
        (["--model.temp", "0.05"], "model.temp 0.05 (the checkpoint's: 0.1)"),  # given, though the default
        (["--config", "model.yaml"], "model.pooler_type 'avg' (the checkpoint's: 'cls')"),  # a config file's
        (["--model.compile", "true"], None),  # shapes training steps only
    ],
)
def test_model_settings_given_that_differ_from_the_checkpoint_are_refused(
    command, options, refused, trained_run, run_cse, tmp_path, monkeypatch
):
    """Lightning builds the model from the checkpoint's settings and silently ignored a given one that differs."""
    directory, args = trained_run
    checkpoint = _checkpoint_trained_with(directory, tmp_path, temp=0.1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.yaml").write_text("model:\n  pooler_type: avg\n")
    scored = ["--data.test_file", args[args.index("--data.dev_file") + 1]]
    result = run_cse([command, *args[1:], *scored, *options, "--ckpt_path", str(checkpoint)])
    if refused is None:
        assert result.code == 0, result.err
        assert "stsb_spearman" in result.out
    else:
        assert _error(result) == (
            f"error: --ckpt_path {checkpoint}: cse {command} uses the model settings it was trained with, but was "
            f"given {refused}; leave them out, or give the checkpoint's"
        )


@pytest.mark.parametrize("command", ["validate", "test"])
def test_validate_and_test_write_nothing(command, trained_run, run_cse, tmp_path, monkeypatch):
    """Their logger's `version_N/` held only what they print (metrics.csv), config.yaml and hparams.yaml, and took
    the number the experiment's next `cse fit` would have had."""
    directory, args = trained_run
    shutil.copytree(directory, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    scored = ["--data.test_file", args[args.index("--data.dev_file") + 1]]
    code, out, err = run_cse([command, *args[1:], *scored, "--ckpt_path", "last"])
    assert code == 0 and "stsb_spearman" in out, err
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    assert [path.name for path in (tmp_path / "runs" / "quickstart").iterdir()] == ["version_0"]


def test_a_logger_added_after_the_run_folders_gets_the_validation(trained_run, run_cse, tmp_path, monkeypatch):
    """Only the run folder's logger (the first) is left out: one the user adds after it (W&B, TensorBoard, here a
    second CSVLogger) still receives the scores, equal to the printed ones."""
    directory, args = trained_run
    shutil.copytree(directory, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    added = ["--trainer.logger+=lightning.pytorch.loggers.CSVLogger", "--trainer.logger.init_args.save_dir", "added"]
    code, out, err = run_cse(["validate", *args[1:], *added, "--ckpt_path", "last"])
    assert code == 0, err
    [metrics] = (tmp_path / "added").rglob("metrics.csv")
    with open(metrics, newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert f"val/stsb_spearman     │    {row['val/stsb_spearman']}" in out
    assert [path.name for path in (tmp_path / "runs" / "quickstart").iterdir()] == ["version_0"]


def test_the_printed_line_names_the_checkpoint_step_or_the_base_model(
    trained_run, run_cse, tmp_path, monkeypatch, caplog
):
    """validate's trainer is at step 0 whatever it loads: its line said `val at step 0` of a step-3 checkpoint."""
    directory, args = trained_run
    shutil.copytree(directory, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    step = torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=True)["global_step"]
    for extra, expected in (
        [["--ckpt_path", "last"], f"val of the checkpoint of step {step}: "],
        [[], "val of the base model: "],
    ):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            code, _, err = run_cse(["validate", *args[1:], *extra])
        assert code == 0 and step > 0, err
        said = [record.getMessage() for record in caplog.records if "STS Spearman" in record.getMessage()]
        assert len(said) == 1 and said[0].startswith(expected), said


def _without_model_path(args: list[str]) -> list[str]:
    """`args` less their `--model.model_name_or_path PATH`: the model path left to the recipe."""
    index = args.index("--model.model_name_or_path")
    return args[:index] + args[index + 2 :]


@pytest.mark.parametrize("command", ["validate", "test"])
def test_a_recipes_model_id_gives_way_to_the_checkpoints(command, trained_run, run_cse, tmp_path, monkeypatch):
    """`cse quickstart` trains the installed MiniLM's path while its recipe names the hub id: `cse validate -c
    quickstart --ckpt_path last` was refused over that id. A recipe's value is not one the user gave: the checkpoint's
    model and tokenizer (the hub id cannot be loaded offline) score the checkpoint, as the fit logged it."""
    directory, args = trained_run
    shutil.copytree(directory, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    with open(next(tmp_path.rglob("metrics.csv")), newline="") as handle:
        logged = [float(row["val/stsb_spearman"]) for row in csv.DictReader(handle) if row["val/stsb_spearman"]]
    scored = ["--data.test_file", args[args.index("--data.dev_file") + 1]]
    code, out, err = run_cse([command, *_without_model_path(args[1:]), *scored, "--ckpt_path", "last"])
    assert code == 0, err
    split = {"validate": "val", "test": "test"}[command]  # test's file is the dev file: the same score
    assert f"│    {logged[-1]}" in next(line for line in out.splitlines() if f"{split}/stsb_spearman" in line), out


@pytest.mark.parametrize("how", ["option", "config file"])
def test_a_model_path_the_user_gives_that_differs_from_the_checkpoints_is_refused(
    how, trained_run, run_cse, tmp_path, monkeypatch
):
    """On the command line or in the user's own config file, a model path other than the checkpoint's (here a copy of
    the same model) is still refused: the user asked for another model than the one that would be scored."""
    directory, args = trained_run
    shutil.copytree(directory, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    trained = args[args.index("--model.model_name_or_path") + 1]
    copy = shutil.copytree(trained, tmp_path / "copy")
    (tmp_path / "own.yaml").write_text(f"model:\n  model_name_or_path: {copy}\n")
    given = ["--model.model_name_or_path", str(copy)] if how == "option" else ["--config", "own.yaml"]
    line = _error(run_cse(["validate", *_without_model_path(args[1:]), *given, "--ckpt_path", "last"]))
    checkpoint = next(Path("runs").rglob("last.ckpt"))
    assert line == (
        f"error: --ckpt_path {checkpoint}: cse validate uses the model settings it was trained with, but was given "
        f"model.model_name_or_path {str(copy)!r} (the checkpoint's: {trained!r}); leave them out, or give the "
        "checkpoint's"
    )
