"""Two `cse fit` runs started at the same moment in one folder each get their own run folder."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonargparse import Namespace

from cse.runs import resume
from cse.runs.resume import choose_run_folder


def _config(save_dir: Path) -> Namespace:
    logger = Namespace(class_path="lightning.pytorch.loggers.CSVLogger", init_args=Namespace(save_dir=str(save_dir)))
    logger.init_args.name, logger.init_args.version = "exp", None
    return Namespace(
        trainer=Namespace(logger=logger),
        ckpt_path=None,
        checkpoint=Namespace(dirpath=None),
        periodic_checkpoint=Namespace(dirpath=None),
    )


def test_runs_that_list_the_folders_at_once_claim_different_versions(tmp_path, monkeypatch):
    """Both list the experiment before either creates its folder (`_next_version` gives both 0): mkdir decides."""
    monkeypatch.setattr(resume, "_next_version", lambda root: 0)
    first, second = _config(tmp_path), _config(tmp_path)
    created = [choose_run_folder(first), choose_run_folder(second)]
    assert created == [[tmp_path / "exp" / "version_0", tmp_path / "exp"], [tmp_path / "exp" / "version_1"]]
    folders = [folder for folder, *_ in created]
    assert [config.trainer.logger.init_args.version for config in (first, second)] == [0, 1]
    assert all(folder.is_dir() for folder in folders)


def test_two_fits_started_together_write_two_run_folders(shrunk_recipe_args, tmp_path):
    args = shrunk_recipe_args("quickstart", max_steps=2, val_check_interval=1, num_sanity_val_steps=0)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "cse", *args, "--model.learning_rate", learning_rate],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for learning_rate in ("1.0e-4", "2.0e-4")
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    folders = sorted((tmp_path / "runs" / "quickstart").iterdir())
    assert [folder.name for folder in folders] == ["version_0", "version_1"]
    rates = set()
    for folder in folders:  # each folder holds one run's config, metrics and checkpoints
        config = yaml.safe_load((folder / "config.yaml").read_text())
        rates.add(config["model"]["learning_rate"])
        with (folder / "metrics.csv").open() as handle:
            assert [row["step"] for row in csv.DictReader(handle) if row["val/stsb_spearman"]] == ["0", "1"]
        assert (folder / "best_model" / "model.safetensors").is_file()
    assert rates == {1.0e-4, 2.0e-4}


@pytest.mark.usefixtures("one_torch_thread")
def test_a_run_that_fails_at_start_leaves_no_empty_folder(shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cse(shrunk_recipe_args("quickstart", "--data.train_file", "missing.txt"))
    assert result.code == 2
    assert not list((tmp_path / "runs" / "quickstart").glob("version_*"))


def _refused_leaving_the_run_as_it_was(run_cse, args: list[str], run_dir: Path, error: str) -> None:
    """`cse ARGS` exits 2 with `error` as its last line, and every file of `run_dir` is as it was."""
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    code, _, err = run_cse(args)
    assert code == 2 and err.strip().splitlines()[-1] == error
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


def test_a_version_that_holds_a_run_is_refused_unless_resumed(shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    """A second run given the same `version` replaced the first one's checkpoints, best_model/ and config.yaml."""
    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args("quickstart", "--trainer.logger.init_args.version", "mine", max_steps=2)
    assert run_cse(args).code == 0
    _refused_leaving_the_run_as_it_was(
        run_cse,
        args,
        tmp_path / "runs" / "quickstart" / "mine",
        "error: trainer.logger.init_args.version: mine: runs/quickstart/mine holds a run already (checkpoints/); "
        "resume it with --ckpt_path last, or give another version (or none, for the next free one)",
    )
    code, out, err = run_cse([*args, "--trainer.max_steps", "3", "--ckpt_path", "last"])
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("trained 1 step in ")


def test_without_a_logger_a_folder_that_holds_a_run_is_refused_unless_resumed(
    shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    """With `trainer.logger: false` every run's folder is `trainer.default_root_dir`: a second run replaced the first
    one's config.yaml, last.ckpt and best_model/, and removed its best checkpoint."""
    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args("quickstart", "--trainer.logger", "false", "--trainer.default_root_dir", "out")
    assert run_cse([*args, "--trainer.max_steps", "2"]).code == 0
    assert (tmp_path / "out" / "best_model" / "model.safetensors").is_file()
    _refused_leaving_the_run_as_it_was(
        run_cse,
        args,
        tmp_path / "out",
        "error: trainer.logger: False: without a logger the run folder is trainer.default_root_dir (out), which holds "
        "a run already (checkpoints/); resume it with --ckpt_path last, or give another trainer.default_root_dir",
    )
    code, out, err = run_cse([*args, "--trainer.max_steps", "4", "--ckpt_path", "last"])
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("trained 2 steps in ")
