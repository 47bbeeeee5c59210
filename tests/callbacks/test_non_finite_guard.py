"""`NonFiniteGuard` on a tiny module whose loss turns non-finite at chosen steps, and through `cse fit`."""

import math
import sys

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins import MixedPrecision
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader

from cse.callbacks import non_finite_guard
from cse.callbacks.non_finite_guard import NonFiniteGuard, NonFiniteLossError
from cse.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ScaledLoss(pl.LightningModule):
    """A linear layer whose loss is multiplied by `factor` at the steps in `bad_steps`.

    `bad_steps` holds `global_step` during the step; the guard and the checkpoint names count `global_step` after it,
    one more: `bad_steps={4}` is the loss the guard reports at step 5, the step whose checkpoint is `step=5.ckpt`.
    """

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


def _fit(
    module: ScaledLoss,
    tmp_path,
    guard: NonFiniteGuard,
    *,
    every_n_train_steps: int = 1,
    save_weights_only: bool = False,
    max_steps: int = 8,
    **trainer_options,
) -> None:
    """Trains `module` with `guard` and a checkpoint (`step=N.ckpt` and `last.ckpt`) every `every_n_train_steps`."""
    checkpoints = ModelCheckpoint(
        tmp_path,
        "{step}",
        every_n_train_steps=every_n_train_steps,
        save_top_k=-1,
        save_last=True,
        save_weights_only=save_weights_only,
    )
    trainer = pl.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        callbacks=[guard, checkpoints],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_options,
    )
    torch.manual_seed(0)
    trainer.fit(module, DataLoader(torch.randn(64, 4), batch_size=4))


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


def test_short_streaks_between_checks_do_not_stop_the_run(tmp_path):
    # Checks at steps 5 and 10 only; the losses of steps 6, 7, 9 and 10 are infinite: streaks of two, four in all.
    module = ScaledLoss(bad_steps={5, 6, 8, 9}, factor=math.inf)
    guard = NonFiniteGuard(max_consecutive_steps=3, check_every_n_steps=5)
    _fit(module, tmp_path, guard, every_n_train_steps=5, max_steps=12, plugins=[MixedPrecision("16-mixed", "cpu")])
    assert len(module.weights_after_step) == 12 and _saved_steps(tmp_path) == [5, 10]


@pytest.mark.parametrize("check_every_n_steps", [1, 5])
def test_persistent_non_finite_loss_stops_before_its_checkpoint(tmp_path, check_every_n_steps):
    # A checkpoint every step: the check before each save stops the run whatever check_every_n_steps is.
    module = ScaledLoss(bad_steps=set(range(3, 100)), factor=math.inf)
    guard = NonFiniteGuard(max_consecutive_steps=3, check_every_n_steps=check_every_n_steps)
    with pytest.raises(NonFiniteLossError) as error:
        _fit(module, tmp_path, guard, plugins=[MixedPrecision("16-mixed", "cpu")])
    message = str(error.value)
    assert message.startswith("training stopped at step 6: the loss is inf 3 steps in a row up to step 6 (")
    assert "\n" not in message and f"{tmp_path / 'last.ckpt'} is from before it" in message
    assert _saved_steps(tmp_path) == [1, 2, 3, 4, 5], "nothing is saved at the step that stopped the run"


def test_a_streak_reaching_the_limit_between_checks_stops_the_run_at_the_next_check(tmp_path):
    # The losses of steps 6, 7, 8, ... are infinite: the limit is reached at step 8, read at the check of step 10.
    module = ScaledLoss(bad_steps=set(range(5, 100)), factor=math.inf)
    guard = NonFiniteGuard(max_consecutive_steps=3, check_every_n_steps=5)
    with pytest.raises(NonFiniteLossError) as error:
        _fit(module, tmp_path, guard, every_n_train_steps=5, max_steps=12, plugins=[MixedPrecision("16-mixed", "cpu")])
    assert str(error.value).startswith(
        "training stopped at step 10: the loss is inf 3 steps in a row up to step 8 "
        f"(non_finite_guard.max_consecutive_steps: 3); {tmp_path / 'last.ckpt'} is from before it"
    )
    assert len(module.weights_after_step) == 9 and _saved_steps(tmp_path) == [5]


@pytest.mark.parametrize(("check_every_n_steps", "save_weights_only"), [(1, False), (5, False), (50, True)])
def test_fp32_nan_reaching_the_weights_stops_at_once_and_the_last_checkpoint_is_good(
    tmp_path, check_every_n_steps, save_weights_only
):
    # A weights-only save calls no callback hook: the guard then checks after every batch.
    module = ScaledLoss(bad_steps={4}, factor=math.nan)  # NaN gradients: SGD writes NaN into the weights
    guard = NonFiniteGuard(max_consecutive_steps=3, check_every_n_steps=check_every_n_steps)
    with pytest.raises(NonFiniteLossError, match="at step 5: the loss is nan and the weights are no longer finite"):
        _fit(module, tmp_path, guard, save_weights_only=save_weights_only)
    assert not torch.isfinite(module.layer.weight).all()
    assert _saved_steps(tmp_path) == [1, 2, 3, 4]
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4 and all(torch.isfinite(value).all() for value in last["state_dict"].values())


def test_broken_weights_between_checks_stop_the_run_before_the_next_save(tmp_path):
    # Checkpoints at steps 3, 6, 9; periodic checks would come 5 steps after the last one. The weights break at 7.
    module = ScaledLoss(bad_steps={6}, factor=math.nan)
    guard = NonFiniteGuard(max_consecutive_steps=3, check_every_n_steps=5)
    with pytest.raises(NonFiniteLossError) as error:
        _fit(module, tmp_path, guard, every_n_train_steps=3, max_steps=12)
    assert str(error.value).startswith(
        "training stopped at step 9: the loss is nan and the weights are no longer finite "
        f"(first non-finite loss at step 7); {tmp_path / 'last.ckpt'} is from before it"
    )
    assert _saved_steps(tmp_path) == [3, 6], "no checkpoint of the broken weights"
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6 and all(torch.isfinite(value).all() for value in last["state_dict"].values())


# Every way a tensor's value reaches the host; each waits for the device to finish the work queued before it.
HOST_READS = ("item", "tolist", "cpu", "numpy", "to", "__bool__", "__int__", "__float__", "__index__")


def test_the_guard_reads_the_device_only_at_its_checks(tmp_path, monkeypatch):
    """Each host read done by the guard's own code is recorded with its step (finite losses: no weight check)."""
    module = ScaledLoss(bad_steps=set(), factor=1.0)
    reads: list[tuple[str, int]] = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def counted(tensor, *args, _original=original, _name=name, **kwargs):
            if sys._getframe(1).f_code.co_filename == non_finite_guard.__file__:
                reads.append((_name, module.trainer.global_step))
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    guard = NonFiniteGuard(check_every_n_steps=5)
    _fit(module, tmp_path, guard, every_n_train_steps=7, max_steps=20)
    # A check 5 batches after the last one, one before each save (steps 7 and 14), and one when training ends.
    assert reads == [("tolist", step) for step in (5, 7, 12, 14, 19, 20)]


class _OpCounter(TorchDispatchMode):
    """Records the aten operators that run inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


class _CountGuardOps(Callback):
    """Counts the operators of the guard's `on_train_batch_end` at each step; runs the guard itself."""

    def __init__(self, guard: NonFiniteGuard) -> None:
        self.guard = guard
        self.ops_by_step: list[list[str]] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.guard.on_train_start(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with _OpCounter() as counter:
            self.guard.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self.ops_by_step.append(counter.ops)


def test_each_step_between_checks_costs_the_device_one_copy(tmp_path):
    # Host-bound GPU steps pay every kernel launch: the guard's per-step work is one copy of the loss into its buffer.
    module = ScaledLoss(bad_steps=set(), factor=1.0)
    counter = _CountGuardOps(NonFiniteGuard(check_every_n_steps=4))
    trainer = pl.Trainer(
        max_steps=6,
        accelerator="cpu",
        callbacks=[counter],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(torch.randn(64, 4), batch_size=4))
    views = {"aten.detach", "aten.select", "aten.slice"}  # no kernel, no copy
    kernels = [[op for op in ops if op not in views] for ops in counter.ops_by_step]
    assert kernels == [["aten.copy_"]] * 6
    assert ["aten.slice" in ops for ops in counter.ops_by_step] == [False, False, False, True, False, False], (
        "the buffer is read at step 4 only"
    )


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_consecutive_steps must be at least 1"):
        NonFiniteGuard(max_consecutive_steps=0)
    with pytest.raises(ValueError, match="check_every_n_steps must be at least 1"):
        NonFiniteGuard(check_every_n_steps=0)


class PoisonWeightsAt(Callback):
    """Puts a NaN into the encoder's first LayerNorm before the given step, as a diverging run would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                pl_module.encoder.backbone.embeddings.LayerNorm.weight[0] = math.nan


def test_cli_stops_with_one_error_line_and_keeps_the_last_good_checkpoint(
    shrunk_recipe_args, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    args = shrunk_recipe_args(
        "quickstart",
        "--data.dev_file",
        "null",
        "--periodic_checkpoint.every_n_train_steps",
        "2",
        "--trainer.callbacks+=test_non_finite_guard.PoisonWeightsAt",
        "--trainer.callbacks.step=5",
        max_steps=8,
        val_check_interval=4,
    )
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_.value.code == 1 and len(errors) == 1 and "Traceback" not in err, err
    # The default check_every_n_steps (50) is far off: the check before the periodic save at step 6 stops the run.
    assert errors[0].startswith(
        "error: training stopped at step 6: the loss is nan and the weights are no longer finite (first non-finite "
        "loss at step 6)"
    )
    checkpoints = tmp_path / "runs" / "quickstart" / "version_0" / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4 and all(torch.isfinite(value).all() for value in last["state_dict"].values())
    assert not (checkpoints.parent / "best_model").exists(), "a failed run exports nothing"
    print(errors[0])
