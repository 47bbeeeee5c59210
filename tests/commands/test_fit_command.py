"""End-to-end: the `cse` entry point on the shipped recipes, shrunk by overrides to a tiny model and data."""

import csv
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from cse.models.simcse import SimCSE
from cse.runs.background_checkpoint_io import BackgroundCheckpointIO, WholeFileCheckpointIO


@pytest.mark.parametrize("recipe", ["unsup-simcse-bert-base", "quickstart"])
def test_fit_keeps_best_checkpoint_and_exports_it(recipe, shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = []  # the checkpoints written through cse's background writer
    write = BackgroundCheckpointIO.save_checkpoint
    monkeypatch.setattr(
        BackgroundCheckpointIO,
        "save_checkpoint",
        lambda io, checkpoint, path, **options: (
            written.append(Path(path).name),
            write(io, checkpoint, path, **options),
        ),
    )
    code, out, err = run_cse(shrunk_recipe_args(recipe, "--model.learning_rate", "1.0e-3", log_every_n_steps=1))
    assert code == 0, err
    last_line = out.strip().splitlines()[-1]
    throughput = re.fullmatch(
        r"trained 6 steps in \d+ s: ([\d.]+) steps/s, ([\d,.]+) sentences/s, (\d+)% of the time validating; "
        r"best model: (.+)",
        last_line,
    )
    assert throughput, last_line
    steps_per_sec, sentences_per_sec = float(throughput[1]), float(throughput[2].replace(",", ""))
    assert sentences_per_sec == pytest.approx(16 * steps_per_sec, rel=0.02, abs=1)  # batch 16, one text each
    assert 0 < int(throughput[3]) < 100  # three validations, each with a checkpoint, among six steps
    exported = Path(throughput[4])
    run_dir = exported.parent
    assert run_dir.parent == tmp_path / "runs" / recipe

    # The best checkpoint is the validation with the highest Spearman; last.ckpt is kept as well.
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    validations = [(float(row["val/stsb_spearman"]), int(row["step"])) for row in rows if row.get("val/stsb_spearman")]
    assert len(validations) == 3
    best_step = max(validations)[1] + 1  # the CSV's step is 0-based; checkpoint names use trainer.global_step
    checkpoints = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert checkpoints == sorted([f"best-step={best_step}.ckpt", "last.ckpt"])  # earlier bests removed, no temporary
    assert f"best-step={best_step}.ckpt" in written and "last.ckpt" in written

    # train/lr decays every step (linear schedule stepped per optimizer step, not per epoch).
    rates = [float(row["train/lr"]) for row in rows if row.get("train/lr")]
    assert len(set(rates)) == len(rates) and rates == sorted(rates, reverse=True)

    # Throughput over each logging interval (every step here): 16 sentences per step, batch 16 of single sentences.
    speeds = [
        (float(row["train/steps_per_sec"]), float(row["train/sentences_per_sec"]))
        for row in rows
        if row.get("train/steps_per_sec")
    ]
    assert len(speeds) == 6 and all(sentences == pytest.approx(16 * steps) for steps, sentences in speeds)
    # Each validation's seconds (checkpoints included) in a row of its step, the last one's too (after training).
    validation_seconds = {int(row["step"]): float(row["val/seconds"]) for row in rows if row.get("val/seconds")}
    assert sorted(validation_seconds) == sorted(step for _, step in validations)
    assert all(seconds > 0 for seconds in validation_seconds.values())

    # The exported directory loads in transformers without warnings and gives the best checkpoint's embeddings.
    module = SimCSE.load_from_checkpoint(run_dir / "checkpoints" / f"best-step={best_step}.ckpt").eval()
    tokenizer = AutoTokenizer.from_pretrained(exported)
    model, info = AutoModel.from_pretrained(exported, output_loading_info=True)
    assert not any(info.values()), info
    batch = dict(tokenizer(["a man is in the park", "a dog"], padding=True, return_tensors="pt"))
    with torch.no_grad():
        expected = module(batch)
        output = model.eval()(**batch)
    if module.hparams.pooler_type == "avg":
        mask = batch["attention_mask"].unsqueeze(-1)
        actual = (output.last_hidden_state * mask).sum(1) / mask.sum(1)
    else:  # unsup recipe: cls with mlp_only_train -> the [CLS] state
        actual = output.last_hidden_state[:, 0]
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)
    # Both recipes ask for 16-mixed (the paper's fp16); without a GPU the run falls back to 32-true.
    if not torch.cuda.is_available():
        assert "precision: 32-true" in (run_dir / "config.yaml").read_text()


def test_print_config_shows_simcse_keys(run_cse):
    code, out, _ = run_cse(["fit", "--config", "unsup-simcse-bert-base", "--model.temp", "0.1", "--print_config"])
    assert code == 0
    for expected in ("temp: 0.1", "mlp_only_train: true", "val_check_interval: 125", "monitor: val/stsb_spearman"):
        assert expected in out


@pytest.mark.parametrize(
    ("setup", "override", "message"),
    [
        (lambda d: None, ("--data.train_file", "missing.txt"), "corpus missing.txt: no such file"),
        (
            lambda d: (d / "empty.txt").write_text(""),
            ("--data.train_file", "empty.txt"),
            "corpus empty.txt: file is empty",
        ),
        (lambda d: (d / "blank.txt").write_text("\n \n"), ("--data.train_file", "blank.txt"), "no sentences"),
        (lambda d: (d / "bin.txt").write_bytes(b"\x7fELF\x00\x01"), ("--data.train_file", "bin.txt"), "binary"),
        (
            lambda d: (d / "adir").mkdir(),
            ("--data.train_file", "adir"),
            "adir: a directory, but not one written by datasets' save_to_disk",
        ),
        (
            lambda d: (d / "dev.tsv").write_text("sentence1\tsentence2\na\tb\n"),
            ("--data.dev_file", "dev.tsv"),
            "no score column",
        ),
        (
            lambda d: (d / "dev.tsv").write_text("sentence1\tsentence2\tscore\na\tb\tfive\n"),
            ("--data.dev_file", "dev.tsv"),
            "dev.tsv line 2: score 'five' is not a number",
        ),
        (
            lambda d: None,
            ("--model.model_name_or_path", "./no/such/model"),
            "model './no/such/model': no such directory",
        ),
        (
            lambda d: None,
            ("--model.model_name_or_path", "someone/not-downloaded"),
            "model 'someone/not-downloaded': not a local model directory",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(setup, override, message, shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    setup(tmp_path)
    code, _, err = run_cse(shrunk_recipe_args("quickstart", *override, log_every_n_steps=1))
    assert code == 2
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.ckpt"))


def test_unknown_config_key_is_reported_by_the_parser(run_cse):
    code, _, err = run_cse(["fit", "--config", "quickstart", "--model.temperature", "0.1"])
    assert code == 2 and "temperature" in err


def test_console_script_prints_no_traceback(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "cse", "fit", "--config", "quickstart", "--data.train_file", "nope.txt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def _triplet_file(directory: Path) -> Path:
    """Generated NLI-like triplets: the positive rewords the anchor, the hard negative is another sentence."""
    lines = (directory / "train.txt").read_text().splitlines() if (directory / "train.txt").exists() else []
    path = directory / "triplets.csv"
    rows = ["sent0,sent1,hard_neg"] + [f"{a},{a.lower()},{b}" for a, b in zip(lines[:120], lines[120:240], strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_model_under_the_home_folder_trains(shrunk_recipe_args, run_cse, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    shutil.copytree(tiny_model_dir, tmp_path / "home" / "models" / "tiny")
    args = shrunk_recipe_args("quickstart", "--model.model_name_or_path", "~/models/tiny", max_steps=2)
    code, out, err = run_cse(args)
    assert code == 0, err
    run_dir = Path(out.strip().splitlines()[-1].split("best model: ")[-1]).parent
    assert f"model_name_or_path: {tmp_path / 'home' / 'models' / 'tiny'}" in (run_dir / "config.yaml").read_text()


def test_supervised_recipe_trains_on_triplets(shrunk_recipe_args, run_cse, tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.txt").write_text(Path(tiny_data.train_file).read_text().replace(",", ""))
    triplets = _triplet_file(tmp_path)
    args = shrunk_recipe_args(
        "sup-simcse-bert-base",
        "--data.train_file",
        str(triplets),
        "--data.no_duplicates",
        "true",
        "--model.hard_negative_alpha",
        "2.0",
        log_every_n_steps=1,
    )
    code, out, err = run_cse(args)
    assert code == 0, err
    run_dir = Path(out.strip().splitlines()[-1].split("best model: ")[-1]).parent
    config = (run_dir / "config.yaml").read_text()
    assert "hard_negative_alpha: 2.0" in config and "no_duplicates: true" in config
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert sum(1 for row in rows if row.get("train/loss")) == 6


def test_scored_pairs_with_nested_scores_train_with_cosent(
    shrunk_recipe_args, run_cse, tiny_data, tmp_path, monkeypatch
):
    import json

    monkeypatch.chdir(tmp_path)
    pairs = [line.split("\t") for line in Path(tiny_data.dev_file).read_text().splitlines()[1:]]
    path = tmp_path / "klue.jsonl"
    path.write_text(
        "".join(json.dumps({"sentence1": a, "sentence2": b, "labels": {"label": float(s)}}) + "\n" for a, b, s in pairs)
    )
    args = shrunk_recipe_args(
        "quickstart",
        "--data.train_file",
        str(path),
        "--data.batch_size",
        "8",
        "--data.columns",
        '{"sent0": "sentence1", "sent1": "sentence2", "score": "labels.label"}',
        "--data.score_range",
        "[0, 5]",
        log_every_n_steps=1,
    )
    code, out, err = run_cse(args)
    assert code == 0, err
    assert "; best model: " in out.strip().splitlines()[-1]


def test_bad_row_in_training_csv_is_one_line(shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("sent0,sent1\na b,c d\ne f,g h,extra\n")
    code, _, err = run_cse(shrunk_recipe_args("quickstart", "--data.train_file", "bad.csv", log_every_n_steps=1))
    assert code == 2 and "error: training data bad.csv line 3: 3 fields, the header has 2" in err


def test_settings_without_effect_are_warned_about_and_training_goes_on(
    shrunk_recipe_args, run_cse, tmp_path, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args("quickstart", "--model.hard_negative_weight", "1.0", "--model.warmup_steps", "6")
    code, _, err = run_cse(args)
    assert code == 0, err
    warnings = [record.getMessage() for record in caplog.records if record.getMessage().startswith("warning: ")]
    assert warnings == [
        "warning: model.hard_negative_weight: has no effect on unsupervised training data; it is ignored",
        "warning: model.warmup_steps: 6 is not below the run's 6 steps, so the learning rate never reaches "
        "model.learning_rate",
    ]


def test_accumulated_batches_are_warned_about_and_training_goes_on(
    shrunk_recipe_args, run_cse, tmp_path, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cse(shrunk_recipe_args("quickstart", "--trainer.accumulate_grad_batches", "2", max_steps=2))
    assert code == 0, err
    warnings = [record.getMessage() for record in caplog.records if record.getMessage().startswith("warning: ")]
    assert warnings == [
        "warning: trainer.accumulate_grad_batches: 2 sums the gradients of 2 batches of 16, each compared only within "
        "itself, not one batch of 32; for that, set data.batch_size 32 and model.mini_batch_size 16 (GradCache: the "
        "same memory)"
    ]


def test_a_checkpoint_write_that_fails_ends_the_run_in_one_line(shrunk_recipe_args, run_cse, tmp_path, monkeypatch):
    # The background writer meets the error in its thread; the training thread reports it at the next write, or
    # `cse fit` once training has ended (the last write), as it would report a write that failed in place.
    monkeypatch.chdir(tmp_path)
    save = WholeFileCheckpointIO.save_checkpoint
    writes = []

    def save_or_full_disk(io, checkpoint, path, storage_options=None):
        writes.append(path)
        if len(writes) in failing:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        save(io, checkpoint, path, storage_options)

    monkeypatch.setattr(WholeFileCheckpointIO, "save_checkpoint", save_or_full_disk)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGUSR1)}
    failing = set()
    assert run_cse(shrunk_recipe_args("quickstart")).code == 0
    count, writes[:] = len(writes), []
    for failing in (set(range(1, count + 1)), {count}):  # every write, or only the last one
        code, out, err = run_cse(shrunk_recipe_args("quickstart"))
        assert code == 2
        failed = writes[min(failing) - 1]
        assert err.strip().splitlines()[-1] == f"error: {failed}: No space left on device"
        assert "Traceback" not in err and "best model" not in out  # nothing exported
        # Lightning's teardown ran to its end: the signal handlers it installed are gone
        assert {number: signal.getsignal(number) for number in handlers} == handlers
        writes[:] = []


def test_a_checkpoint_callback_of_the_users_does_not_change_the_exported_model(
    shrunk_recipe_args, run_cse, tmp_path, monkeypatch
):
    """`trainer.callbacks` with a ModelCheckpoint of its own (here keeping the lowest Spearman) comes before cse's in
    the trainer's callbacks, so Lightning's `trainer.checkpoint_callback` is that one: the run exported its choice as
    the best model. The export is cse's best by Spearman; the user's checkpoints are kept beside it."""
    monkeypatch.chdir(tmp_path)
    worst = ["--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.monitor=val/stsb_spearman"]
    worst += ["--trainer.callbacks.mode=min", "--trainer.callbacks.filename=worst-{step}"]
    code, _, err = run_cse(shrunk_recipe_args("quickstart", *worst, "--model.learning_rate", "1.0e-3"))
    assert code == 0, err
    run_dir = tmp_path / "runs" / "quickstart" / "version_0"
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    validations = [(float(row["val/stsb_spearman"]), int(row["step"]) + 1) for row in rows if row["val/stsb_spearman"]]
    best_step, worst_step = max(validations)[1], min(validations)[1]
    assert best_step != worst_step
    assert (run_dir / "checkpoints" / f"worst-step={worst_step}.ckpt").is_file()
    card = (run_dir / "best_model" / "README.md").read_text()
    assert f"| Exported checkpoint | `best-step={best_step}.ckpt`, after {best_step} optimizer steps |" in card
