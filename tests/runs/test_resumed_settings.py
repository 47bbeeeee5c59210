"""`cse fit --ckpt_path` with settings that contradict the checkpoint, or a damaged checkpoint: refused at start, in
one line, with nothing on disk changed; settings that do not change what is trained may differ."""

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained_run(shrunk_recipe_args, tmp_path_factory) -> tuple[Path, list[str]]:
    """A 2-step quickstart run (its folder and the arguments that made it), trained once for the module."""
    from cse.cli import main

    directory = tmp_path_factory.mktemp("trained")
    args = shrunk_recipe_args("quickstart", "--trainer.max_epochs", "-1", max_steps=2, val_check_interval=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        main(args)
    return directory, args


def _files(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def _resume(trained_run, tmp_path, monkeypatch, run_cse, *changes: str, ckpt_path: str = "last"):
    directory, args = trained_run
    shutil.copytree(directory, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    result = run_cse([*args, "--trainer.max_steps", "4", "--ckpt_path", ckpt_path, *changes])
    return result, before


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        (("--model.temp", "0.1"), "model.temp 0.05 (now 0.1)"),
        (("--model.pooler_type", "avg", "--model.mlp_only_train", "false"), "model.pooler_type 'cls' (now 'avg')"),
        (("--data.batch_size", "8"), "data.batch_size 16 (now 8)"),
        (("--data.no_duplicates", "true"), "data.no_duplicates False (now True)"),
        (("--data.word_repetition_rate", "0.32"), "data.word_repetition_rate None (now 0.32)"),
        # validations were counted in batches of the old step: at other steps than asked, the final one unvalidated
        (("--trainer.accumulate_grad_batches", "2"), "trainer.accumulate_grad_batches 1 (now 2)"),
    ],
)
def test_settings_that_contradict_the_checkpoint_are_refused(
    changes, named, trained_run, tmp_path, monkeypatch, run_cse
):
    (code, _, err), before = _resume(trained_run, tmp_path, monkeypatch, run_cse, *changes)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("error: --ckpt_path runs/quickstart/version_0/checkpoints/last.ckpt: it was trained")
    assert named in errors[0]
    assert _files(tmp_path) == before


@pytest.fixture(scope="module")
def trained_mixture_run(shrunk_recipe_args, tiny_data, tmp_path_factory) -> tuple[Path, list[str]]:
    """A 2-step quickstart run of two train files taking turns `proportional`ly (the default), trained once."""
    from cse.cli import main

    directory = tmp_path_factory.mktemp("trained-mixture")
    lines = Path(tiny_data.train_file).read_text().splitlines(keepends=True)
    halves = [directory / "first.txt", directory / "second.txt"]
    for half, part in zip(halves, (lines[: len(lines) // 2], lines[len(lines) // 2 :]), strict=True):
        half.write_text("".join(part))
    mixture = ["--data.train_file", "null", "--data.train_files", f"[{halves[0]}, {halves[1]}]"]
    args = shrunk_recipe_args("quickstart", "--trainer.max_epochs", "-1", *mixture, max_steps=2, val_check_interval=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        main(args)
    return directory, args


def test_a_mixture_other_than_the_checkpoints_is_refused(trained_mixture_run, tmp_path, monkeypatch, run_cse):
    """`data.mixture` decides which file each step's batch comes from: resuming a `proportional` run `round_robin`
    would continue another order. (A run of one train file refuses `round_robin` before any checkpoint is read.)"""
    (code, _, err), before = _resume(
        trained_mixture_run, tmp_path, monkeypatch, run_cse, "--data.mixture", "round_robin"
    )
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err, err
    assert errors == [
        "error: --ckpt_path runs/quickstart/version_0/checkpoints/last.ckpt: it was trained with data.mixture "
        "'proportional' (now 'round_robin'); resume with the settings it was trained with, or start a new run"
    ]
    assert _files(tmp_path) == before


def test_settings_that_leave_the_training_unchanged_may_differ(trained_run, tmp_path, monkeypatch, run_cse):
    (code, out, err), _ = _resume(
        trained_run,
        tmp_path,
        monkeypatch,
        run_cse,
        "--model.mini_batch_size",
        "4",
        "--data.eval_batch_size",
        "7",
        "--data.tokenize",
        "in_workers",
    )
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("trained 2 steps in ")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda data: data[:1000], "truncated (its zip archive has no end: an interrupted write or copy?)"),
        (lambda data: b"", "file is empty"),
        (lambda data: b"not a checkpoint\n", "not a PyTorch checkpoint (torch.save writes a zip archive)"),
    ],
)
def test_a_damaged_checkpoint_file_is_one_line(damage, expected, trained_run, tmp_path, monkeypatch, run_cse):
    directory, _ = trained_run
    last = directory / "runs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt"
    (tmp_path / "damaged.ckpt").write_bytes(damage(last.read_bytes()))
    (code, _, err), before = _resume(trained_run, tmp_path, monkeypatch, run_cse, ckpt_path="damaged.ckpt")
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"error: checkpoint damaged.ckpt: {expected}"
    assert _files(tmp_path) == before


def test_a_checkpoint_of_another_architecture_is_one_line(trained_run, tiny_model_dir, tmp_path, monkeypatch, run_cse):
    """Lightning's load_state_dict printed a page of missing keys and size mismatches under a traceback."""
    config = BertConfig.from_pretrained(tiny_model_dir)
    config.num_hidden_layers, config.intermediate_size = 3, 41
    wider = tmp_path / "other-model"
    BertModel(config).save_pretrained(wider)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(wider)
    (code, _, err), before = _resume(
        trained_run, tmp_path, monkeypatch, run_cse, "--model.model_name_or_path", str(wider)
    )
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    checkpoint = torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=True)["state_dict"]
    saved = tuple(checkpoint["encoder.backbone.encoder.layer.0.intermediate.dense.bias"].shape)
    assert errors[0].startswith(
        "error: --ckpt_path runs/quickstart/version_0/checkpoints/last.ckpt: its backbone does not fit "
        f"model.model_name_or_path {wider} (encoder.layer.0.intermediate.dense.bias {saved} (now (41,));"
    )
    assert errors[0].endswith("more); resume with the model it was trained from")
    assert _files(tmp_path) == before
