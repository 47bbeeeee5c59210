"""scripts/benchmark.py on the tiny model, and the speed options it measures: no per-step host synchronization,
`model.compile`."""

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from cse.models.simcse import SimCSE

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prints_both_sides_and_ends_with_the_ratio(benchmark, tiny_model_dir, capsys):
    # 12 steps of each (more than one pass over the script's 8 batches), under bf16 autocast on CPU.
    options = ["--steps", "10", "--warmup", "2", "--batch-size", "4", "--precision", "bf16-mixed", "--device", "cpu"]
    benchmark.main(["--model", str(tiny_model_dir), *options])
    lines = capsys.readouterr().out.strip().splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith(("cse ", "floor "))}
    assert set(rows) == {"cse", "floor"} and all(float(row[0]) > 0 for row in rows.values())
    assert "10 timed steps of each after 2 warm-up" in lines[0]
    rate = float(rows["cse"][0])
    projected = re.fullmatch(r"cse: 15,625 steps \(one wiki1m epoch at batch 64\) would take (\d+\.\d) min", lines[-2])
    assert projected and float(projected[1]) == pytest.approx(15_625 / rate / 60, rel=0.01, abs=0.1)
    assert re.fullmatch(r"ratio cse/floor: \d+\.\d\d", lines[-1])


def test_the_floor_does_the_same_work_as_cse(benchmark, tiny_model_dir):
    args = benchmark.parse_args(["--model", str(tiny_model_dir), "--batch-size", "6", "--max-seq-length", "10"])
    module = SimCSE(str(tiny_model_dir), pooler_type="cls").eval()  # no dropout: the two losses must be equal
    batch = benchmark.make_batches(1, 6, 10, module.encoder.backbone.config.vocab_size)[0]
    floor = benchmark.FloorLoop(module, str(tiny_model_dir), DataLoader([batch], batch_size=None), args, 1)
    floor.backbone.eval()
    module.log = lambda *args, **kwargs: None
    module.lr_schedulers = lambda: floor.scheduler
    torch.testing.assert_close(floor.step(), module.training_step(batch, 0).detach(), atol=1e-5, rtol=1e-5)


def test_rejects_fp16_on_cpu(benchmark):
    with pytest.raises(SystemExit):
        benchmark.parse_args(["--model", "m", "--device", "cpu", "--precision", "16-mixed"])


SYNCING = ("item", "tolist", "__bool__", "__float__", "__int__")  # each waits for the device to catch up


def _syncs_in_cse_and_lightning(benchmark, model_dir: Path, steps: int, run_dir: Path, monkeypatch) -> Counter:
    """Calls that turn a tensor into a Python value, made from cse's or Lightning's code, in a fit of `steps` steps
    with the callbacks and logger of `cse fit`."""
    calls: Counter = Counter()
    for name in SYNCING:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if "/lightning/" in caller or "/cse/" in caller:
                calls[f"{_name} in {caller}"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    ids = torch.randint(60, 70, (8, 1, 12))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    trainer = Trainer(
        accelerator="cpu",
        max_steps=steps,
        limit_val_batches=0,
        logger=CSVLogger(run_dir),
        callbacks=benchmark.cse_fit_callbacks(str(run_dir)),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(SimCSE(str(model_dir)), train_dataloaders=DataLoader([batch] * steps, batch_size=None))
    monkeypatch.undo()
    return calls


def test_a_training_step_makes_no_host_device_synchronization(benchmark, tiny_model_dir, tmp_path, monkeypatch):
    # Fits of 1 and 4 steps: whatever Lightning does once per fit cancels; per-step conversions would not.
    # (transformers checks `attention_mask.all()` in every forward, and CPU AdamW reads its step counters:
    # neither is cse's or Lightning's code, and fused AdamW on CUDA has no such read.)
    once = _syncs_in_cse_and_lightning(benchmark, tiny_model_dir, 1, tmp_path / "once", monkeypatch)
    four = _syncs_in_cse_and_lightning(benchmark, tiny_model_dir, 4, tmp_path / "four", monkeypatch)
    assert four == once


def test_compile_option_compiles_the_encoder_in_place(tiny_model_dir, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda function, **options: compiled.append(function) or function)
    eager, module = (SimCSE(str(tiny_model_dir), compile=flag) for flag in (False, True))
    assert len(compiled) == 1 and compiled[0].__self__ is module.encoder  # the encoder's call, not the whole module
    assert module.state_dict().keys() == eager.state_dict().keys()  # checkpoints load in either mode
