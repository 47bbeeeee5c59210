"""`NonFiniteGuard` on a tiny module whose loss turns non-finite at chosen steps, and through `cse fit`."""

import math

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins import MixedPrecision
from torch.utils.data import DataLoader

from cse.callbacks.non_finite_guard import NonFiniteGuard, NonFiniteLossError
from cse.cli import main


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny models train several times faster without thread contention on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ScaledLoss(pl.LightningModule):
    """A linear layer whose loss is multiplied by `factor` at the steps in `bad_steps`."""

    def __init__(self, bad_steps: set[int], factor: float) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.bad_steps = bad_steps
        self.factor = factor
        self.weights_after_step: list[torch.Tensor] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.layer(batch).square().mean()
        return loss * self.factor if self.global_step in self.bad_steps else loss

    def on_train_batch_end(self, *args) -> None:
        self.weights_after_step.append(self.layer.weight.detach().clone())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(module: ScaledLoss, tmp_path, guard: NonFiniteGuard, **options) -> ModelCheckpoint:
    checkpoints = ModelCheckpoint(tmp_path, "{step}", every_n_train_steps=1, save_top_k=-1, save_last=True)
    trainer = pl.Trainer(
        max_steps=8,
        accelerator="cpu",
        callbacks=[guard, checkpoints],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **options,
    )
    torch.manual_seed(0)
    trainer.fit(module, DataLoader(torch.randn(64, 4), batch_size=4))
    return checkpoints


def _saved_steps(tmp_path) -> list[int]:
    return sorted(int(path.stem.removeprefix("step=")) for path in tmp_path.glob("step=*.ckpt"))


def test_fp16_scaler_skips_overflowing_steps_and_a_short_streak_is_tolerated(tmp_path):
    # Torch's GradScaler (Lightning's 16-mixed plugin, here on CPU) skips the optimizer step of an infinite loss.
    module = ScaledLoss(bad_steps={4, 5}, factor=math.inf)
    _fit(module, tmp_path, NonFiniteGuard(max_consecutive_steps=3), plugins=[MixedPrecision("16-mixed", "cpu")])
    weights = module.weights_after_step
    assert len(weights) == 8, "two non-finite steps in a row are below the limit of three"
    assert torch.equal(weights[4], weights[3]) and torch.equal(weights[5], weights[3]), "the scaler skipped them"
    assert not torch.equal(weights[6], weights[5]) and torch.isfinite(weights[-1]).all()


def test_persistent_non_finite_loss_stops_before_its_checkpoint(tmp_path):
    module = ScaledLoss(bad_steps=set(range(3, 100)), factor=math.inf)
    with pytest.raises(NonFiniteLossError) as error:
        _fit(module, tmp_path, NonFiniteGuard(max_consecutive_steps=3), plugins=[MixedPrecision("16-mixed", "cpu")])
    message = str(error.value)
    assert message.startswith("training stopped at step 6: the loss is inf 3 steps in a row") and "\n" not in message
    assert f"{tmp_path / 'last.ckpt'} is from before it" in message
    assert _saved_steps(tmp_path) == [1, 2, 3, 4, 5], "nothing is saved at the step that stopped the run"


def test_fp32_nan_reaching_the_weights_stops_at_once_and_the_last_checkpoint_is_good(tmp_path):
    module = ScaledLoss(bad_steps={4}, factor=math.nan)  # NaN gradients: SGD writes NaN into the weights
    with pytest.raises(NonFiniteLossError, match="at step 5: the loss is nan and the weights are no longer finite"):
        _fit(module, tmp_path, NonFiniteGuard(max_consecutive_steps=3))
    assert not torch.isfinite(module.layer.weight).all()
    assert _saved_steps(tmp_path) == [1, 2, 3, 4]
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4 and all(torch.isfinite(value).all() for value in last["state_dict"].values())


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        NonFiniteGuard(max_consecutive_steps=0)


class PoisonWeightsAt(Callback):
    """Puts a NaN into the encoder's first LayerNorm before the given step, as a diverging run would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                pl_module.encoder.backbone.embeddings.LayerNorm.weight[0] = math.nan


def test_cli_stops_with_one_error_line_and_keeps_the_last_good_checkpoint(
    tiny_model_dir, tiny_data, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        "--config",
        "quickstart",
        "--model.model_name_or_path",
        str(tiny_model_dir),
        "--data.train_file",
        str(tiny_data.train_file),
        "--data.dev_file",
        "null",
        "--data.batch_size",
        "16",
        "--data.cache_dir",
        "cache",
        "--trainer.max_steps",
        "8",
        "--trainer.val_check_interval",
        "4",
        "--trainer.enable_progress_bar",
        "false",
        "--periodic_checkpoint.every_n_train_steps",
        "2",
        "--trainer.callbacks+=test_non_finite_guard.PoisonWeightsAt",
        "--trainer.callbacks.step=5",
    ]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_.value.code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("error: training stopped at step 6: the loss is nan and the weights are no longer")
    checkpoints = tmp_path / "runs" / "quickstart" / "version_0" / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4 and all(torch.isfinite(value).all() for value in last["state_dict"].values())
    assert not (checkpoints.parent / "best_model").exists(), "a failed run exports nothing"
    print(errors[0])
