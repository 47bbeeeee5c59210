"""Every shipped recipe (`configs/*.yaml`, so new ones are covered too) runs `cse fit --trainer.fast_dev_run true`, and
trains, resumes and exports with the precision plugin, clipping and optimizer of a GPU run, with a tiny model of the
recipe's family and generated data in place of its model and data paths: on the CPU through the plugin Lightning
builds for CUDA, and on a CUDA GPU itself where there is one (`scripts/gpu_followup.sh tests`)."""

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from cuda_syncs import watching_training_steps
from devices import CPU_AND_CUDA

from cse.cli import main
from cse.config.recipes import recipe_dir, recipe_names
from cse.models import simcse

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The tiny model (a fixture) that stands in for each recipe's model: one of its family, so that the recipe runs with
# that family's tokenizer (RoBERTa's <s> ... </s> and no token_type_ids, XLM-R's unigram pieces) and pooler.
TINY_MODELS = {
    "bert-base-uncased": "tiny_model_dir",
    "sentence-transformers/all-MiniLM-L6-v2": "tiny_model_dir",
    "roberta-base": "tiny_roberta_dir",
    "roberta-large": "tiny_roberta_dir",
    "xlm-roberta-base": "tiny_xlmr_dir",
}


def _tiny_inputs(config: dict, request: pytest.FixtureRequest, directory: Path) -> tuple[Path, Path, Path]:
    """The tiny model, training file and dev file that stand in for the recipe's."""
    model = config["model"]["model_name_or_path"]
    assert model in TINY_MODELS, f"no tiny model stands in for {model}: add one of its family to TINY_MODELS"
    suffix = Path(config["data"]["train_file"]).suffix
    data = request.getfixturevalue("korean_data" if suffix == ".jsonl" else "tiny_data")
    train_file = _training_file(suffix, data, directory)
    return request.getfixturevalue(TINY_MODELS[model]), train_file, data.dev_file


def _tiny_model_settings(config: dict) -> list[str]:
    """Overrides of the recipe's settings that the tiny model (hidden size 32) cannot take, scaled to it: Matryoshka
    dimensions (as many as the recipe's, halving from 32)."""
    dimensions = config["model"].get("matryoshka_dims")
    return ["--model.matryoshka_dims", json.dumps([32 >> i for i in range(len(dimensions))])] if dimensions else []


def _training_file(suffix: str, data, directory: Path) -> Path:
    """Generated training data in the recipe's format: sentences (.txt), NLI-style triplets (.csv) or scored pairs in
    KLUE-STS's layout (.jsonl, the Korean data)."""
    if suffix in (".txt", ".jsonl"):
        return data.train_file
    if suffix == ".csv":
        lines = Path(data.train_file).read_text().splitlines()
        path = directory / "triplets.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sent0", "sent1", "hard_neg"])
            writer.writerows((a, a.lower(), b) for a, b in zip(lines[:50], lines[50:100], strict=True))
        return path
    raise AssertionError(f"no generated training data for a {suffix} recipe: add it to this test")


@pytest.mark.parametrize("recipe", recipe_names())
def test_recipe_runs_one_fast_dev_batch(recipe, request, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((recipe_dir() / f"{recipe}.yaml").read_text())
    model_dir, train_file, dev_file = _tiny_inputs(config, request, tmp_path)
    main(
        [
            "fit",
            "--config",
            recipe,
            "--model.model_name_or_path",
            str(model_dir),
            "--data.train_file",
            str(train_file),
            "--data.dev_file",
            str(dev_file),
            "--data.batch_size",
            "8",
            "--data.cache_dir",
            "cache",
            # one CPU process, whatever devices or strategy the recipe asks for
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "1",
            "--trainer.strategy",
            "auto",
            "--trainer.fast_dev_run",
            "true",
            *_tiny_model_settings(config),
        ]
    )
    out = capsys.readouterr().out
    assert "Traceback" not in out
    assert not list(tmp_path.rglob("*.ckpt")), "fast_dev_run writes no checkpoint"


@pytest.mark.parametrize("recipe", recipe_names())
def test_recipe_names_the_devices_its_batch_is_meant_for(recipe):
    """Lightning's default, `devices: auto`, takes every visible GPU: on a machine with 8, a recipe's batch of B would
    train as 8 processes and, gathered, one batch of 8B, with the learning rate and steps of B. A recipe says 1, or
    the number of processes its DDP batch is split over."""
    trainer = yaml.safe_load((recipe_dir() / f"{recipe}.yaml").read_text())["trainer"]
    expected = 1 if trainer.get("strategy") in (None, "auto") else trainer.get("devices")
    assert trainer.get("devices") == expected and isinstance(expected, int) and expected >= 1, trainer


def _gpu_run_args(device: str, precision: str) -> list[str]:
    """Trainer arguments of a one-GPU run in `precision` ("16-mixed", "bf16-mixed"): on "cuda" the GPU itself; on
    "cpu" the CPU with the precision plugin Lightning builds for a CUDA run (a GradScaler for 16-mixed)."""
    if device == "cuda":
        return ["--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.precision", precision]
    init_args = {"precision": precision, "device": "cpu"}
    plugin = json.dumps({"class_path": "lightning.pytorch.plugins.MixedPrecision", "init_args": init_args})
    on_cpu = ["--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.precision", "null"]
    return [*on_cpu, "--trainer.plugins", plugin]


class _ClipSpy:
    """Records, for every clipping call of `SimCSE.configure_gradient_clipping`: whether the optimizer is fused, the
    clipping value, the device type of the weights and whether the precision plugin scales the loss (a GradScaler)."""

    def __init__(self, clip: Callable) -> None:
        self.clip = clip
        self.calls: list[tuple[bool, float, str, bool]] = []

    def __call__(self, module, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        scaled = getattr(module.trainer.precision_plugin, "scaler", None) is not None
        fused = bool(optimizer.defaults["fused"])
        self.calls.append((fused, module.trainer.gradient_clip_val, module.device.type, scaled))
        self.clip(module, optimizer, gradient_clip_val, gradient_clip_algorithm)


@pytest.mark.parametrize("device", CPU_AND_CUDA)
@pytest.mark.parametrize("precision", ["recipe", "bf16-mixed"])
@pytest.mark.parametrize("recipe", recipe_names())
def test_recipe_trains_resumes_and_exports_in_cuda_mixed_precision(
    recipe, precision, device, shrunk_recipe_args, request, run_cse, tmp_path, monkeypatch
):
    """A GPU run of the recipe: its precision through Lightning's MixedPrecision plugin, its clipping, the fused
    AdamW; trains, validates, checkpoints, resumes from last.ckpt and exports, and no step waits for the GPU."""
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((recipe_dir() / f"{recipe}.yaml").read_text())
    precision = config["trainer"]["precision"] if precision == "recipe" else precision
    model_dir, train_file, dev_file = _tiny_inputs(config, request, tmp_path)
    spy = _ClipSpy(simcse.clip_gradients)
    monkeypatch.setattr(simcse, "clip_gradients", spy)
    args = shrunk_recipe_args(
        recipe, model_dir=model_dir, batch_size=8, max_steps=4, val_check_interval=2, num_sanity_val_steps=0
    )
    args += ["--data.train_file", str(train_file), "--data.dev_file", str(dev_file), *_tiny_model_settings(config)]
    # max_epochs -1: Lightning counts the epoch of a checkpoint written when max_steps stopped the run as complete
    args += ["--trainer.strategy", "auto", "--trainer.max_epochs", "-1", *_gpu_run_args(device, precision)]

    with watching_training_steps(simcse.SimCSE, monkeypatch) as watched:
        first = run_cse(args)
        resumed = run_cse([*args, "--trainer.max_steps", "6", "--ckpt_path", "last"])
    # After each fit's first step (which makes Lightning's logged-metric states), no step waits for the GPU in cse's
    # or Lightning's code: on CUDA the host queues the next steps while the GPU runs this one.
    waits = watched.own_code_waits()
    assert list(waits) == [0, 1, 2, 3, 4, 5]
    assert not any(waits[step] for step in (1, 2, 3, 5)), waits

    assert (first.code, resumed.code) == (0, 0), first.err + resumed.err
    assert spy.calls == [(True, config["trainer"]["gradient_clip_val"], device, precision == "16-mixed")] * 6
    run_dir = tmp_path / "runs" / recipe / "version_0"
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    assert resumed.out.strip().splitlines()[-1].endswith(f"; best model: {run_dir / 'best_model'}")
    assert (run_dir / "best_model" / "model.safetensors").is_file()


@pytest.mark.parametrize("device", CPU_AND_CUDA)
@pytest.mark.parametrize("recipe", ["unsup-simcse-bert-base", "sup-simcse-bert-base"])
def test_gradcache_and_mlm_steps_wait_for_no_gpu(
    recipe, device, shrunk_recipe_args, request, tiny_mlm_dir, run_cse, tmp_path, monkeypatch
):
    """What no recipe turns on, GradCache chunks (`model.mini_batch_size`) and the MLM auxiliary loss, in the
    recipe's CUDA precision plugin: no step after the first waits for the GPU in cse's or Lightning's code."""
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((recipe_dir() / f"{recipe}.yaml").read_text())
    _, train_file, _ = _tiny_inputs(config, request, tmp_path)
    args = shrunk_recipe_args(
        recipe, model_dir=tiny_mlm_dir, batch_size=8, max_steps=3, val_check_interval=2, num_sanity_val_steps=0
    )
    args += ["--data.train_file", str(train_file), "--trainer.strategy", "auto"]
    args += _gpu_run_args(device, config["trainer"]["precision"])
    args += ["--model.mini_batch_size", "3", "--model.do_mlm", "true"]

    with watching_training_steps(simcse.SimCSE, monkeypatch) as watched:
        result = run_cse(args)

    assert result.code == 0, result.err
    waits = watched.own_code_waits()
    assert list(waits) == [0, 1, 2] and not (waits[1] or waits[2]), waits


@pytest.mark.parametrize("accumulate", [1, 2])
def test_sup_recipe_validates_every_interval_of_optimizer_steps_across_epochs(
    accumulate, shrunk_recipe_args, tiny_data, run_cse, tmp_path, monkeypatch
):
    """As SimCSE's --eval_steps (HF Trainer's global step): over 3 epochs of 6 batches, every 4 optimizer steps."""
    monkeypatch.chdir(tmp_path)
    train_file = _training_file(".csv", tiny_data, tmp_path)  # 50 triplets: 6 batches of 8 per epoch
    args = shrunk_recipe_args("sup-simcse-bert-base", batch_size=8, max_steps=-1, val_check_interval=4)
    args += ["--data.train_file", str(train_file), "--trainer.num_sanity_val_steps", "0"]
    args += ["--trainer.accumulate_grad_batches", str(accumulate)]

    result = run_cse(args)

    assert result.code == 0, result.err
    with (tmp_path / "runs" / "sup-simcse-bert-base" / "version_0" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    validated_at = [int(row["step"]) + 1 for row in rows if row["val/stsb_spearman"]]  # the CSV counts from 0
    optimizer_steps = 3 * 6 // accumulate
    assert validated_at == list(range(4, optimizer_steps + 1, 4))  # per epoch it would be 4, 10, 16 (accumulate 1)
