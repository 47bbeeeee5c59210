"""scripts/largest_batch.py on the tiny model: the doubling search, its table, and where it stops."""

import importlib.util
import re
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def largest_batch(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))  # it imports benchmark_model.py as a module of the script directory
    spec = importlib.util.spec_from_file_location("largest_batch", SCRIPTS / "largest_batch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(output: str) -> dict[int, list[str]]:
    return {int(line.split()[0]): line.split()[1:] for line in output.splitlines() if re.match(r"\s*\d+\s", line)}


def test_doubles_up_to_the_limit_training_each_batch_in_chunks(largest_batch, tiny_model_dir, capsys, monkeypatch):
    chunk_sizes = []
    original = largest_batch.SimCSE.training_step

    def recording_step(self, batch, batch_idx):
        chunk_sizes.append((batch["input_ids"].size(0), self.hparams.mini_batch_size))
        return original(self, batch, batch_idx)

    monkeypatch.setattr(largest_batch.SimCSE, "training_step", recording_step)
    options = ["--start", "4", "--max-batch-size", "20", "--mini-batch-size", "2", "--device", "cpu"]
    largest_batch.main(["--model", str(tiny_model_dir), "--max-seq-length", "8", *options])
    output = capsys.readouterr().out
    rows = _rows(output)
    assert list(rows) == [4, 8, 16] and all(float(row[0]) > 0 for row in rows.values())
    assert output.strip().splitlines()[-1] == "largest batch: 16"
    assert chunk_sizes == [(4, 2), (4, 2), (8, 2), (8, 2), (16, 2), (16, 2)]  # 2 steps each, GradCache on


def test_stops_at_the_first_batch_out_of_memory(largest_batch, monkeypatch):
    args = largest_batch.parse_args(["--model", "m", "--start", "2", "--device", "cpu"])

    def train(args, model_dir, batch_size):
        if batch_size >= 16:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return 0.5, 100.0

    monkeypatch.setattr(largest_batch, "train", train)
    lines = largest_batch.search(args, "m")
    assert list(_rows("\n".join(lines))) == [2, 4, 8, 16]
    assert lines[-2].split() == ["16", "out", "of", "memory"] and lines[-1] == "largest batch: 8"
