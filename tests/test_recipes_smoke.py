"""Every shipped recipe (`configs/*.yaml`, so new ones are covered too) runs `cse fit --trainer.fast_dev_run true`
with a tiny model and generated data in place of its model and data paths."""

import csv
from pathlib import Path

import pytest
import yaml

from cse.cli import main
from cse.recipes import recipe_dir, recipe_names

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _training_file(suffix: str, data, directory: Path) -> Path:
    """Generated training data in the recipe's format: sentences (.txt) or NLI-style triplets (.csv)."""
    if suffix == ".txt":
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
def test_recipe_runs_one_fast_dev_batch(recipe, tiny_model_dir, tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((recipe_dir() / f"{recipe}.yaml").read_text())
    train_file = _training_file(Path(config["data"]["train_file"]).suffix, tiny_data, tmp_path)
    main(
        [
            "fit",
            "--config",
            recipe,
            "--model.model_name_or_path",
            str(tiny_model_dir),
            "--data.train_file",
            str(train_file),
            "--data.dev_file",
            str(tiny_data.dev_file),
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
        ]
    )
    out = capsys.readouterr().out
    assert "Traceback" not in out
    assert not list(tmp_path.rglob("*.ckpt")), "fast_dev_run writes no checkpoint"
