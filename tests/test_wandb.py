"""Weights & Biases as README's "Logging" section configures it: a WandbLogger added after the recipe's CSVLogger.

End to end in offline mode (no account, no network): the run folder, checkpoints, `metrics.csv` and `best_model/`
stay where cse puts them, W&B receives the same metrics and the hyperparameters, `cse fit --ckpt_path last` resumes
into the same folder and W&B run, and `cse export` of the run folder still writes the validation log in the card.
"""

import csv
import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
import wandb
import yaml
from lightning.pytorch.callbacks import Callback

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class CrashAfter(Callback):
    """A crash (a lost node, out of memory) after training step `step`, before that step's checkpoint."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"simulated crash after step {self.step}")


ADD_WANDB = ["--trainer.logger+=lightning.pytorch.loggers.WandbLogger", "--trainer.logger.init_args.project", "cse"]


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):  # not the user's ~/.config, ~/.cache
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    yield
    if wandb.run is not None:
        wandb.finish()


def _finished_run() -> tuple[str, dict, dict]:
    """The id, summary and config of the W&B run the CLI left open (Lightning does not finish it), then finish it."""
    run = wandb.run
    assert run is not None, "no W&B run was started"
    run_id, summary, config = run.id, dict(run.summary), dict(run.config)
    wandb.finish()
    return run_id, summary, config


def _spearman_column(run_dir: Path) -> list[float]:
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    return [float(row["val/stsb_spearman"]) for row in rows if row["val/stsb_spearman"]]


def test_wandb_logger_beside_the_csv_logger(offline_wandb, shrunk_recipe_args, run_cse, tmp_path):
    wandb_args = [*ADD_WANDB, "--trainer.logger.init_args.save_dir", "runs"]
    # 6 steps, validated every 2 and checkpointed every 2; the first try crashes after step 3 (last.ckpt: step 2).
    args = shrunk_recipe_args(
        "quickstart", "--periodic_checkpoint.every_n_train_steps", "2", num_sanity_val_steps=0, log_every_n_steps=1
    )
    crash = ["--trainer.callbacks+=test_wandb.CrashAfter", "--trainer.callbacks.step", "3"]
    with pytest.raises(RuntimeError, match="simulated crash after step 3"):
        run_cse([*args, *wandb_args, *crash])
    run_dir = tmp_path / "runs" / "quickstart" / "version_0"
    assert sorted(path.name for path in (run_dir / "checkpoints").iterdir()) == ["best-step=2.ckpt", "last.ckpt"]
    run_id, summary, config = _finished_run()
    assert [summary["val/stsb_spearman"]] == pytest.approx(_spearman_column(run_dir))
    assert {"train/loss", "train/lr", "val/stsb_pearson"} <= summary.keys()
    assert config["temp"] == 0.05 and config["pooler_type"] == "cls"  # the LightningModule's hyperparameters
    assert len(list((tmp_path / "runs" / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))) == 1

    # Resumed into the same run folder and, given its id, the same W&B run; the CSV history is kept.
    resume = ["--trainer.logger.init_args.id", run_id, "--trainer.logger.init_args.resume", "allow"]
    code, out, err = run_cse([*args, *wandb_args, *resume, "--ckpt_path", "last"])
    assert code == 0, err
    assert out.strip().splitlines()[-1].endswith(f"best model: {run_dir / 'best_model'}")
    assert [path.name for path in (tmp_path / "runs" / "quickstart").iterdir()] == ["version_0"]
    resumed_id, summary, _ = _finished_run()
    assert resumed_id == run_id
    spearman = _spearman_column(run_dir)
    assert len(spearman) == 3 and summary["val/stsb_spearman"] == pytest.approx(spearman[-1])

    code, _, err = run_cse(["export", str(run_dir), "exported"])
    assert code == 0, err
    card = (tmp_path / "exported" / "README.md").read_text()
    validation_log = [line.split(" | ")[0].strip("|* ") for line in card.splitlines() if re.match(r"\| \**\d", line)]
    assert validation_log == ["2", "4", "6"], card


def test_readme_logging_examples_configure_both_loggers(run_cse, tmp_path):
    """The README's command line and YAML block give the CSVLogger first (the run folder), then W&B's."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Logging", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"```bash\n(.*?)```", section, re.DOTALL)[1].replace("\\\n", " ").split("#")[0].split()
    assert command[:4] == ["cse", "fit", "--config", "quickstart"] and "--trainer.logger+=" in command[4]
    (tmp_path / "logging.yaml").write_text(re.search(r"```yaml\n(.*?)```", section, re.DOTALL)[1])
    for args in (command[1:], ["fit", "--config", "quickstart", "--config", str(tmp_path / "logging.yaml")]):
        code, out, err = run_cse([*args, "--print_config"])
        assert code == 0, err
        loggers = yaml.safe_load(out)["trainer"]["logger"]
        assert [logger["class_path"].rsplit(".", 1)[1] for logger in loggers] == ["CSVLogger", "WandbLogger"], args
        assert loggers[0]["init_args"]["save_dir"] == loggers[1]["init_args"]["save_dir"] == "runs"
        assert loggers[1]["init_args"]["project"] == "cse"
