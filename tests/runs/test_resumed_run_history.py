"""A resumed `cse fit` is one run: one folder, one `metrics.csv` with every step once, one model card listing it all.

The end-to-end run validates every 2 steps and crashes after the validation at step 6, before its checkpoint could
be saved. Its last checkpoint is older (Lightning 2.6 writes `last.ckpt` at a validation only with a new best
checkpoint), so the steps after it and the validation at step 6 were logged and are done again by the resumed run,
which is also given a longer schedule (8 steps instead of 6).
"""

import csv
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from jsonargparse import Namespace
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger

from cse.callbacks.resumed_metrics import ResumedMetrics
from cse.cli import main
from cse.errors import InputError
from cse.runs.metrics_history import continue_metrics
from cse.runs.resume import choose_run_folder, run_to_resume

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEARMAN = "val/stsb_spearman"
CRASH_AT_STEP_6 = ("--trainer.callbacks+=test_resumed_run_history.Crash", "--trainer.callbacks.step=6")


class Crash(Callback):
    """Raises (as a lost node would end the run) after the validation at `step` is logged, before it is checkpointed.

    Lightning runs the `ModelCheckpoint` callbacks' hooks after all others.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"simulated crash after the validation at step {self.step}")


class BestAtFirstBatch(Callback):
    """Records, at the first training batch, the best score and path of the run's best-model checkpoint callback."""

    seen: list[tuple[float | None, str]] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *args) -> None:
        if not BestAtFirstBatch.seen:
            callback = trainer.checkpoint_callback
            score = None if callback.best_model_score is None else float(callback.best_model_score)
            BestAtFirstBatch.seen.append((score, callback.best_model_path))


def _fit_args(
    shrunk_recipe_args: Callable[..., list[str]], max_steps: int, *extra: str, ckpt_path: str = "last"
) -> list[str]:
    """The quickstart recipe shrunk to batch 32 and `max_steps`, validating every 2 steps, logging every step."""
    return shrunk_recipe_args(
        "quickstart",
        "--model.learning_rate",
        "1.0e-3",
        "--ckpt_path",
        ckpt_path,  # `last`: as a requeued job runs it; the first run finds none and starts from scratch
        *extra,
        batch_size=32,
        max_steps=max_steps,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        enable_model_summary=False,
    )


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _card_validation_steps(card: str) -> list[tuple[int, bool]]:
    """(step, bold) of each row of the model card's validation log table."""
    log = card.split("### Validation log", 1)[1].split("\n## ", 1)[0]
    return [(int(step), bool(bold)) for bold, step in re.findall(r"^\| (\*\*)?(\d+)(?:\*\*)? \|", log, re.MULTILINE)]


def test_resumed_fit_continues_its_run_folder_and_metrics(shrunk_recipe_args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "runs" / "quickstart" / "version_0"
    with pytest.raises(RuntimeError, match="simulated crash after the validation at step 6"):
        # 7 steps: step 6 is not the final one, whose last.ckpt PeriodicCheckpoint writes before its validation.
        main(_fit_args(shrunk_recipe_args, 7, *CRASH_AT_STEP_6))
    before = _rows(run_dir)
    assert [int(row["step"]) + 1 for row in before if row[SPEARMAN]] == [2, 4, 6]
    resumed_from = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert resumed_from in (2, 4)
    capsys.readouterr()

    main(_fit_args(shrunk_recipe_args, 8))  # requeued, with a longer schedule
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith(f"trained {8 - resumed_from} steps in ")  # the steps after the checkpoint
    assert Path(out[-1].split("; best model: ")[-1]) == (run_dir / "best_model").resolve()
    assert sorted(path.name for path in run_dir.parent.iterdir()) == ["version_0"], "one run, one folder"
    assert "max_steps: 8" in (run_dir / "config.yaml").read_text()

    rows = _rows(run_dir)
    validations = [int(row["step"]) + 1 for row in rows if row[SPEARMAN]]
    assert validations == [2, 4, 6, 8], "each validation of both parts, once"
    assert [int(row["step"]) + 1 for row in rows if row["train/loss"]] == list(range(1, 9)), "each step once"
    # The rows up to the checkpoint's step are the interrupted part's own; those of later steps were replaced.
    kept = [row for row in before if int(row["step"]) < resumed_from]
    assert rows[: len(kept)] == kept and len(kept) < len(before)

    card = (run_dir / "best_model" / "README.md").read_text()
    best_step = int(re.search(r"`best-step=(\d+)\.ckpt`", card).group(1))
    assert _card_validation_steps(card) == [(step, step == best_step) for step in validations]
    spearman = {int(row["step"]) + 1: float(row[SPEARMAN]) for row in rows if row[SPEARMAN]}
    assert f"| **{best_step}** | **{100 * spearman[best_step]:.2f}** |" in card
    assert f"| STS dev of this checkpoint (×100) | Spearman {100 * spearman[best_step]:.2f}" in card

    main(_fit_args(shrunk_recipe_args, 2, ckpt_path="null"))  # a new run: a new folder
    assert sorted(path.name for path in run_dir.parent.iterdir()) == ["version_0", "version_1"]
    assert _rows(run_dir) == rows and (run_dir.parent / "version_1" / "best_model").is_dir()


def _checkpoint(path: Path, global_step: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": global_step}, path)
    return path


def test_run_to_resume_names_the_folder_of_the_checkpoint_in_this_experiment(tmp_path):
    root = tmp_path / "runs" / "exp"
    assert run_to_resume("last", root) is None  # nothing to resume yet: a new folder
    older = _checkpoint(root / "version_0" / "checkpoints" / "last.ckpt", 8)
    _checkpoint(root / "version_1" / "checkpoints" / "last.ckpt", 4)
    _checkpoint(root / "version_1" / "checkpoints" / "best-step=2.ckpt", 2)
    os.utime(older, (time.time() + 60, time.time() + 60))
    assert run_to_resume("last", root) == "version_0"  # the newest last.ckpt, as `resume_checkpoint` finds it
    assert run_to_resume(str(root / "version_1" / "checkpoints" / "best-step=2.ckpt"), root) == "version_1"
    assert run_to_resume(os.path.relpath(older, Path.cwd()), root) == "version_0"
    other = _checkpoint(tmp_path / "runs" / "other" / "version_0" / "checkpoints" / "last.ckpt", 8)
    loose = _checkpoint(tmp_path / "model.ckpt", 8)
    for ckpt_path in (None, "best", "hpc", str(other), str(loose), str(tmp_path / "missing.ckpt")):
        assert run_to_resume(ckpt_path, root) is None, ckpt_path


def _logger(class_name: str, save_dir: Path, version: object = None) -> Namespace:
    init_args = Namespace(save_dir=str(save_dir), name="exp", version=version)
    return Namespace(class_path=f"lightning.pytorch.loggers.{class_name}", init_args=init_args)


def _fit_config(logger: object, ckpt_path: str | None = "last", dirpath: str | None = None) -> Namespace:
    return Namespace(
        trainer=Namespace(logger=logger),
        ckpt_path=ckpt_path,
        checkpoint=Namespace(dirpath=dirpath),
        periodic_checkpoint=Namespace(dirpath=dirpath),
    )


@pytest.mark.parametrize(
    ("logger", "ckpt_path", "dirpath", "version"),
    [
        (lambda runs: _logger("CSVLogger", runs), "last", None, "version_1"),
        (lambda runs: _logger("TensorBoardLogger", runs), "last", None, "version_1"),
        (lambda runs: [_logger("CSVLogger", runs), _logger("TensorBoardLogger", runs)], "last", None, "version_1"),
        (lambda runs: _logger("CSVLogger", runs, "mine"), "last", None, "mine"),  # the user's version
        (lambda runs: _logger("WandbLogger", runs), "last", None, None),  # a run id, not a folder
        (lambda runs: _logger("CSVLogger", runs), None, None, 2),  # a fresh run: the next folder, claimed
        (lambda runs: _logger("CSVLogger", runs), "last", "fixed", None),  # Lightning's own lookup
        (lambda runs: _logger("CSVLogger", runs / "elsewhere"), "last", None, 0),  # no checkpoint there: a new run
        (lambda runs: False, "last", None, None),
    ],
)
def test_resumed_fit_config_logs_into_the_folder_of_its_checkpoint(logger, ckpt_path, dirpath, version, tmp_path):
    _checkpoint(tmp_path / "runs" / "exp" / "version_1" / "checkpoints" / "last.ckpt", 4)
    config = _fit_config(logger(tmp_path / "runs"), ckpt_path, dirpath)
    choose_run_folder(config)
    loggers = config.trainer.logger if isinstance(config.trainer.logger, list) else [config.trainer.logger]
    if loggers[0]:
        assert loggers[0].init_args.version == version
    assert all(other.init_args.version is None for other in loggers[1:])


def _continue_metrics(logger: CSVLogger, checkpoint: Path) -> None:
    """What a resumed `cse fit` does with the metrics file before it trains: keep its rows, then start fitting."""
    kept_aside = continue_metrics(logger, str(checkpoint))
    ResumedMetrics(kept_aside).on_fit_start(None, None)


def test_continue_metrics_keeps_the_rows_up_to_the_checkpoint_and_appends(tmp_path):
    run_dir = tmp_path / "exp" / "version_0"
    checkpoint = _checkpoint(run_dir / "checkpoints" / "last.ckpt", 4)
    (run_dir / "metrics.csv").write_text(
        "epoch,step,train/loss,val/stsb_spearman\n"
        "0,1,0.9,\n0,1,,0.25\n0,3,0.7,\n0,3,,0.5\n"  # steps 2 and 4: before the checkpoint
        "0,5,0.5,\n0,5,,0.75\n"  # step 6: logged before a crash, repeated by the resumed run
    )
    logger = CSVLogger(tmp_path, name="exp", version="version_0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _continue_metrics(logger, checkpoint)
    assert not [warning for warning in caught if "will be deleted" in str(warning.message)]
    logger.log_metrics({"train/loss": 0.4}, step=4)  # the resumed run's step 5: no validation column in its rows
    logger.save()
    assert (run_dir / "metrics.csv").read_text().splitlines() == [
        "epoch,step,train/loss,val/stsb_spearman",
        "0,1,0.9,",
        "0,1,,0.25",
        "0,3,0.7,",
        "0,3,,0.5",
        ",4,0.4,",
    ]


def test_rows_survive_a_crash_before_they_are_written_back(tmp_path, monkeypatch):
    run_dir = tmp_path / "exp" / "version_0"
    checkpoint = _checkpoint(run_dir / "checkpoints" / "last.ckpt", 4)
    history = "epoch,step,train/loss,val/stsb_spearman\n0,1,0.9,\n0,1,,0.25\n"
    (run_dir / "metrics.csv").write_text(history)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(CSVLogger, "save", crash)
        with pytest.raises(OSError, match="disk full"):
            _continue_metrics(CSVLogger(tmp_path, name="exp", version="version_0"), checkpoint)
    assert not (run_dir / "metrics.csv").exists(), "the logger deleted it"
    _continue_metrics(CSVLogger(tmp_path, name="exp", version="version_0"), checkpoint)  # the next resume
    assert (run_dir / "metrics.csv").read_text().splitlines() == history.splitlines()
    assert sorted(path.name for path in run_dir.iterdir()) == ["checkpoints", "metrics.csv"]


DAMAGED_METRICS = {  # the file's bytes, its damaged line, what is wrong there
    "not UTF-8": (b"epoch,step,train/loss\n0,1,0.9\n0,3,caf\xe9\n", 3, "not UTF-8 text (byte 0xe9"),
    "NUL": (b"epoch,step,train/loss\n0,1,0.9\x00\n", 2, "contains NUL"),
    "no step": (b"epoch,step,train/loss\n0,1,0.9\n0,,0.7\n", 3, "step is '', not an integer"),
    "ragged row": (b"epoch,step,train/loss\n0,1,0.9,0.2\n", 2, "not as many cells as the header"),
}


@pytest.mark.parametrize("aside", [False, True], ids=["metrics.csv", "kept-aside"])
@pytest.mark.parametrize("damage", list(DAMAGED_METRICS))
def test_a_damaged_metrics_file_is_refused_in_one_line_and_left_as_it_was(tmp_path, damage, aside):
    """Read before it is moved: the file stays where it is, byte for byte (also the one a crashed resume kept aside)."""
    run_dir = tmp_path / "exp" / "version_0"
    checkpoint = _checkpoint(run_dir / "checkpoints" / "last.ckpt", 4)
    content, line, what = DAMAGED_METRICS[damage]
    damaged = run_dir / (".metrics.csv.resumed" if aside else "metrics.csv")
    damaged.write_bytes(content)
    with pytest.raises(InputError) as error:
        _continue_metrics(CSVLogger(tmp_path, name="exp", version="version_0"), checkpoint)
    message = str(error.value)
    assert message.startswith(f"metrics file {damaged} line {line}: {what}") and "\n" not in message, message
    assert f"--ckpt_path {checkpoint} keeps the run's metrics from it" in message
    assert sorted(path.name for path in run_dir.iterdir()) == sorted(["checkpoints", damaged.name])
    assert damaged.read_bytes() == content


def test_resuming_a_run_with_a_damaged_metrics_file_is_one_line(fitted_run, run_cse, shrunk_recipe_args, tmp_path):
    run_dir = tmp_path / "runs" / "quickstart" / "version_0"
    shutil.copytree(fitted_run, run_dir)
    content = (run_dir / "metrics.csv").read_bytes() + b"0,2,\xff\n"
    (run_dir / "metrics.csv").write_bytes(content)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    args = ["--trainer.logger.init_args.save_dir", str(tmp_path / "runs"), "--ckpt_path", str(checkpoint)]
    code, _, err = run_cse(shrunk_recipe_args("quickstart", *args, cache_dir=tmp_path / "cache", max_steps=4))
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err, err
    line = content.count(b"\n")
    assert error.startswith(f"error: metrics file {run_dir / 'metrics.csv'} line {line}: not UTF-8 text"), err
    assert (run_dir / "metrics.csv").read_bytes() == content
    assert not (run_dir / ".metrics.csv.resumed").exists()


def test_a_resumed_run_refused_at_setup_leaves_its_config_and_metrics_as_they_were(
    fitted_run, run_cse, shrunk_recipe_args, tmp_path
):
    """A validation interval longer than an epoch is refused once the data is read (the data module's setup): the
    run's config.yaml was replaced by the refused settings and its metrics.csv cut to the checkpoint's steps."""
    run_dir = tmp_path / "runs" / "quickstart" / "version_0"
    shutil.copytree(fitted_run, run_dir)
    rows = _rows(run_dir)
    with (run_dir / "metrics.csv").open("a", newline="") as handle:  # as a run that crashed after its checkpoint
        csv.DictWriter(handle, fieldnames=list(rows[0])).writerow({**rows[-1], "step": "5"})
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    args = ["--trainer.logger.init_args.save_dir", str(tmp_path / "runs"), "--ckpt_path", str(checkpoint)]
    args = shrunk_recipe_args("quickstart", *args, cache_dir=tmp_path / "cache", max_steps=100, val_check_interval=50)
    code, _, err = run_cse(args)
    assert code == 2 and "error: trainer.val_check_interval: 50 is more than the 18 training batches" in err, err
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


def _validations(caplog: pytest.LogCaptureFixture, *run_dirs: Path) -> dict[int, float]:
    """Step -> Spearman of every validation: the steps as `cse fit` printed them (a run resumed from the checkpoint
    written at the end of a run logs its rows one step later in metrics.csv), the values from metrics.csv, in order."""
    steps = [int(step) for step in re.findall(r"\bval at step (\d+):", caplog.text)]
    values = [float(row[SPEARMAN]) for run_dir in run_dirs for row in _rows(run_dir) if row[SPEARMAN]]
    assert len(steps) == len(values)
    return dict(zip(steps, values, strict=True))


def test_a_moved_run_folder_resumes_with_its_best_model(shrunk_recipe_args, tmp_path, monkeypatch, capsys, caplog):
    """Lightning forgets the best score when the checkpoint folder's path changed; the moved folder's best checkpoint
    file is found again, so model selection goes on across both parts as in an uninterrupted run."""
    monkeypatch.chdir(tmp_path)
    main(_fit_args(shrunk_recipe_args, 4, "--trainer.max_epochs", "-1"))
    os.rename(tmp_path / "runs", tmp_path / "moved")
    moved = tmp_path / "moved" / "quickstart" / "version_0"
    capsys.readouterr()
    BestAtFirstBatch.seen.clear()

    spy = "--trainer.callbacks+=test_resumed_run_history.BestAtFirstBatch"
    main(
        _fit_args(
            shrunk_recipe_args, 8, "--trainer.max_epochs", "-1", spy, ckpt_path=str(moved / "checkpoints" / "last.ckpt")
        )
    )

    assert "best model: " in capsys.readouterr().out.strip().splitlines()[-1]
    # The resumed part logs into a new folder.
    scores = _validations(caplog, moved, tmp_path / "runs" / "quickstart" / "version_0")
    assert sorted(scores) == [2, 4, 6, 8]
    first_best = max((2, 4), key=scores.get)  # restored when the resumed part starts, its file in the moved folder
    best_path = str(moved / "checkpoints" / f"best-step={first_best}.ckpt")
    assert BestAtFirstBatch.seen == [(pytest.approx(scores[first_best]), best_path)]
    best_files = sorted(path.name for path in (moved / "checkpoints").glob("best-step=*.ckpt"))
    assert best_files == [f"best-step={max(scores, key=scores.get)}.ckpt"]


def test_a_copied_checkpoint_whose_best_is_gone_trains_to_the_end(shrunk_recipe_args, tmp_path, monkeypatch, caplog):
    """The best checkpoint it records is not there: this run's own validations choose the model it exports."""
    monkeypatch.chdir(tmp_path)
    main(_fit_args(shrunk_recipe_args, 4, "--trainer.max_epochs", "-1"))
    (tmp_path / "copy").mkdir()
    os.rename(
        tmp_path / "runs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt", tmp_path / "copy" / "last.ckpt"
    )
    os.rename(tmp_path / "runs", tmp_path / "deleted")

    main(_fit_args(shrunk_recipe_args, 8, "--trainer.max_epochs", "-1", ckpt_path="copy/last.ckpt"))

    warnings = [record.getMessage() for record in caplog.records if record.getMessage().startswith("warning: ")]
    assert len(warnings) == 1 and "(runs/quickstart/version_0/checkpoints/best-step=" in warnings[0]
    assert warnings[0].endswith("is not there any more; this run keeps the best of its own validations")
    run_dir = tmp_path / "runs" / "quickstart" / "version_0"
    scores = _validations(caplog, tmp_path / "deleted" / "quickstart" / "version_0", run_dir)
    scores = {step: score for step, score in scores.items() if step > 4}  # this run's own
    assert sorted(scores) == [6, 8]
    assert sorted(path.name for path in (run_dir / "checkpoints").glob("best-step=*.ckpt")) == [
        f"best-step={max(scores, key=scores.get)}.ckpt"
    ]
    assert (run_dir / "best_model" / "model.safetensors").is_file()
