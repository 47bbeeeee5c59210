"""Kill and resume: an interrupted run resumed from its last checkpoint equals an uninterrupted one, bitwise.

A tiny Lightning run (dropout, AdamW, `ResumableDataLoader`, the cse callbacks) is interrupted by a crash, SIGTERM or
SIGUSR1 at several points, one of them the end of an epoch; then `cse fit` itself is sent a real SIGTERM in a
subprocess and resumed with `--ckpt_path last`. Its tiny run crosses an epoch boundary (300 sentences, batch 32:
9 batches per epoch, 12 steps) and validates every 4 steps, so resuming covers the position inside the epoch, the
next epoch's order, the LR schedule, the optimizer, dropout's random state and the best-checkpoint choice.
"""

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import TensorDataset

from cse.callbacks.preemption import PreemptionCheckpoint
from cse.callbacks.rng_state import RngStateCheckpoint
from cse.cli import PREEMPTED_EXIT_STATUS, main
from cse.data.resumable import ResumableDataLoader, ResumableSampler

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 12


class Interrupt(Callback):
    """After `step`: raise (a crash: out of memory, a lost node) or send this process a real signal (preemption)."""

    def __init__(self, step: int, how: str = "SIGTERM") -> None:
        self.step = step
        self.how = how

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step != self.step:
            return
        if self.how == "crash":
            raise RuntimeError(f"simulated crash after step {self.step}")
        os.kill(os.getpid(), getattr(signal, self.how))


class DropoutRegressor(pl.LightningModule):
    """Two linear layers with dropout between them; records the indices of each batch it trains on."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
        self.batches: list[list[int]] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        features, index = batch
        self.batches.append(index.tolist())
        return self.net(features).square().mean()

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.AdamW(self.parameters(), lr=0.01)
        scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=16)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _fit_tiny(directory: Path, *callbacks: Callback, ckpt_path: str | None = None) -> DropoutRegressor:
    dataset = TensorDataset(torch.randn(40, 4, generator=torch.Generator().manual_seed(1)), torch.arange(40))
    sampler = ResumableSampler(dataset, seed=0)
    loader = ResumableDataLoader(dataset, 4, sampler=sampler, drop_last=True, generator=torch.Generator())
    checkpoints = ModelCheckpoint(directory, every_n_train_steps=5, save_last=True, enable_version_counter=False)
    trainer = pl.Trainer(
        max_steps=16,  # 10 batches per epoch: the run crosses an epoch boundary
        accelerator="cpu",
        callbacks=[RngStateCheckpoint(), PreemptionCheckpoint(), checkpoints, *callbacks],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    module = DropoutRegressor()
    torch.manual_seed(2)  # a different global state from the one saved: resuming must restore it
    trainer.fit(module, loader, ckpt_path=ckpt_path)
    return module


@pytest.mark.parametrize(
    ("how", "step", "resumed_from"),
    [
        ("SIGTERM", 7, 7),  # saved by PreemptionCheckpoint when the batch ends
        ("SIGUSR1", 12, 12),  # same, through the handler PreemptionCheckpoint adds
        ("SIGINT", 7, 7),  # a first Ctrl-C: the same, through the handler PreemptionCheckpoint adds
        ("crash", 7, 5),  # from the periodic checkpoint, mid-epoch
        ("crash", 12, 10),  # from the periodic checkpoint at the end of the first epoch
    ],
)
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, how, step, resumed_from):
    uninterrupted = _fit_tiny(tmp_path / "reference")
    with pytest.raises(RuntimeError if how == "crash" else SIGTERMException):
        _fit_tiny(tmp_path / "run", Interrupt(step, how))
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL, "Lightning restores the signal handlers when it stops"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    last = tmp_path / "run" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == resumed_from
    resumed = _fit_tiny(tmp_path / "run", ckpt_path=str(last))
    assert resumed.batches == uninterrupted.batches[resumed_from:], "the resumed run repeats or skips batches"
    for name, value in uninterrupted.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name


class BatchLog(Callback):
    """Appends each training batch's step and a digest of its token ids and of the global torch generator's state
    (dropout's masks follow from it) to `path`; draws no random number."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: dict, *args) -> None:
        state = batch["input_ids"].numpy().tobytes() + torch.get_rng_state().numpy().tobytes()
        digest = hashlib.sha1(state).hexdigest()[:12]
        with open(self.path, "a") as handle:
            handle.write(json.dumps([trainer.global_step, digest]) + "\n")


def _cli_args(shrunk_recipe_args: Callable[..., list[str]], directory: Path) -> list[str]:
    """The quickstart recipe shrunk to STEPS steps of batch 32, writing under `directory`, logging every batch."""
    return shrunk_recipe_args(
        "quickstart",
        "--model.learning_rate",
        "1.0e-3",
        "--trainer.logger.init_args.save_dir",
        str(directory / "runs"),
        "--trainer.callbacks+=test_resume.BatchLog",
        f"--trainer.callbacks.path={directory / 'batches.jsonl'}",
        "--ckpt_path",
        "last",  # as a requeued job would always run it: the first run finds none and starts from scratch
        batch_size=32,
        cache_dir=directory.parent / "cache",
        max_steps=STEPS,
        val_check_interval=4,
        num_sanity_val_steps=0,
        enable_model_summary=False,
    )


def _batches(directory: Path) -> list[list]:
    return [json.loads(line) for line in (directory / "batches.jsonl").read_text().splitlines()]


def _checkpoints(directory: Path) -> Path:
    return directory / "runs" / "quickstart" / "version_0" / "checkpoints"


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, weights_only=True)["state_dict"]


def test_cse_fit_stopped_by_sigterm_resumes_with_ckpt_path_last(shrunk_recipe_args, tmp_path, caplog):
    reference = tmp_path / "uninterrupted"
    main(_cli_args(shrunk_recipe_args, reference))
    assert "--ckpt_path last: no last.ckpt under" in caplog.text

    run = tmp_path / "preempted"
    args = _cli_args(shrunk_recipe_args, run)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cse",
            *args,
            "--trainer.callbacks+=test_resume.Interrupt",
            "--trainer.callbacks.step=5",
        ],
        capture_output=True,
        text=True,
        # One thread, as this module's in-process runs (one_torch_thread): MKL too, which reads MKL_NUM_THREADS first.
        env={
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": str(Path(__file__).parent),
        },
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == PREEMPTED_EXIT_STATUS and "Traceback" not in output, output
    last = _checkpoints(run) / "last.ckpt"
    assert f"stopped by a signal after step 5: saved {last}; run the same command with --ckpt_path" in (output)
    assert torch.load(last, weights_only=True)["global_step"] == 5

    caplog.clear()
    main(args)
    assert f"resuming from {last}" in caplog.text
    seen, expected = _batches(run), _batches(reference)
    assert [step for step, _ in expected] == list(range(STEPS))
    assert seen[5:] == expected[5:] and seen[:5] == expected[:5], "the resumed run repeats or skips batches"
    assert len(seen) == STEPS
    weights, expected_weights = _weights(last), _weights(_checkpoints(reference) / "last.ckpt")
    diff = max((weights[name].double() - value.double()).abs().max().item() for name, value in expected_weights.items())
    print(f"max |weight difference| after resuming: {diff}; batches seen: {len(seen)} of {STEPS}")
    assert diff == 0.0, "CPU kernels are deterministic: the resumed weights must be bitwise equal"
    # Checkpoints continue in the folder resumed from, so the same best checkpoint is kept (and exported).
    assert sorted(path.name for path in last.parent.iterdir()) == sorted(
        path.name for path in (_checkpoints(reference)).iterdir()
    )


def _mixture_options(train_file: Path, directory: Path) -> list[str]:
    """Two halves of `train_file` as a `data.train_files` mixture, tokenized in the loader (`data.tokenize`)."""
    lines = train_file.read_text().splitlines(keepends=True)
    halves = [directory / "first.txt", directory / "second.txt"]
    for half, part in zip(halves, (lines[: len(lines) // 2], lines[len(lines) // 2 :]), strict=True):
        half.write_text("".join(part))
    files = f"[{halves[0]}, {{file: {halves[1]}}}]"
    return ["--data.train_file", "null", "--data.train_files", files, "--data.tokenize", "in_workers"]


PROMPT_OPTIONS = ["--model.pooler_type", "prompt", "--model.prompt_template", "the [X] is [MASK] ."]
PROMPT_OPTIONS += ["--model.prompt_template_positive", "a [X] , [MASK] .", "--model.template_denoising", "true"]


OBJECTIVES = {  # model options of the resumed runs
    "infonce": [],
    "matryoshka": ["--model.matryoshka_dims", "[32, 16, 8]", "--model.mlp_only_train", "false"],
    "simcsepp": ["--model.off_dropout_negatives", "true", "--model.dimension_contrast_weight", "0.1"],
    "promptbert": PROMPT_OPTIONS,
    # ESimCSE: word repetition drawn in 2 worker processes, and a queue of 40 (not a multiple of the batch).
    "esimcse": ["--data.word_repetition_rate", "0.32", "--model.momentum_queue_size", "40", "--data.num_workers", "2"],
    # every paper recipe sets max_epochs: the learning-rate schedule's `estimated_stepping_batches` then builds the
    # loader before the checkpoint is restored, and Lightning drops its saved position (#20550)
    "max_epochs": ["--trainer.max_epochs", "2"],
    "mixture_in_workers": [],  # two halves of the training file (`_mixture_options`): the resumed run crosses an epoch
}


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_cse_fit_resumed_before_a_validation_it_skips_is_exact(shrunk_recipe_args, tiny_data, tmp_path, objective):
    """A crash after step 6 resumes from the periodic last.ckpt of step 4, written just before step 4's validation.
    The resumed run does not repeat that validation, but Lightning still opens its loader; the weights at the end
    must equal an uninterrupted run's. With Matryoshka too (InfoNCE summed over prefixes, each validated), and
    SimCSE++ (an off-dropout pass between the dropout passes of consecutive steps, DCL), PromptBERT (two templates,
    template denoising) and ESimCSE (the repeated positives, the momentum backbone and its queue, all in the compared
    state), and a mixture of two datasets tokenized in the loader."""
    options = ["--checkpoint.save_last", "false", "--periodic_checkpoint.every_n_train_steps", "4"]
    options += OBJECTIVES[objective]
    options += _mixture_options(tiny_data.train_file, tmp_path) if objective == "mixture_in_workers" else []
    reference = tmp_path / "uninterrupted"
    main(_cli_args(shrunk_recipe_args, reference) + options)
    run = tmp_path / "crashed"
    args = _cli_args(shrunk_recipe_args, run) + options
    crash = ["--trainer.callbacks+=test_resume.Interrupt", "--trainer.callbacks.step=6"]
    crash.append("--trainer.callbacks.how=crash")
    with pytest.raises(RuntimeError):
        main(args + crash)
    last = _checkpoints(run) / "last.ckpt"
    saved = torch.load(last, weights_only=False)
    assert saved["global_step"] == 4
    if objective == "mixture_in_workers":
        assert len(saved["datamodule_hyper_parameters"]["train_files"]) == 2
        assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["batches"] == 4
    main(args)
    assert _batches(run)[6:] == _batches(reference)[4:], "the same batches under the same dropout masks"
    weights, expected_weights = _weights(last), _weights(_checkpoints(reference) / "last.ckpt")
    assert weights.keys() == expected_weights.keys()
    assert ("momentum_queue._extra_state" in weights) == ("--model.momentum_queue_size" in OBJECTIVES[objective])
    for name, value in expected_weights.items():  # tensors, and the queue's counts (a dict)
        assert torch.equal(weights[name], value) if isinstance(value, torch.Tensor) else weights[name] == value, name


NO_DEV_FILE = ["--data.dev_file", "null"]
EPOCHS = ["--trainer.max_steps", "-1", "--trainer.max_epochs"]
EXTENDED_RUNS = {  # id: (options of both runs, options of the first run only)
    # ends between the validations of steps 4 and 8
    "max_steps": ([], ["--trainer.max_steps", "6"]),
    # ends at its first validation, a new best: the last.ckpt that the best checkpoint wrote at that step is kept
    "at_its_first_validation": ([], ["--trainer.max_steps", "4"]),
    # the best checkpoint callback (no monitor) writes at the epoch's end, Lightning's `on_train_end` once more
    "no_dev_file": (NO_DEV_FILE, ["--trainer.max_steps", "6"]),
    # the same under a recipe's max_epochs 1: Lightning counted the one epoch as done and trained 0 steps
    "no_dev_file_max_epochs": ([*NO_DEV_FILE, "--trainer.max_epochs", "1"], ["--trainer.max_steps", "6"]),
    # a new best at the final validation writes last.ckpt, then `PeriodicCheckpoint.on_train_end` wrote it again
    "best_at_the_end": (["--checkpoint.save_top_k", "-1"], ["--trainer.max_steps", "8"]),
    # a finished epoch: the next run trains the next one, as Lightning resumes an epoch-bounded run
    "max_epochs": ([*NO_DEV_FILE, *EPOCHS, "2"], [*EPOCHS, "1"]),
}


@pytest.mark.parametrize("case", list(EXTENDED_RUNS))
def test_a_finished_run_trained_on_with_more_steps_goes_on_with_its_epoch(shrunk_recipe_args, tmp_path, case):
    """The `last.ckpt` written at a run's end resumes inside its epoch: Lightning counted the epoch of a checkpoint
    written there as done, and a run resumed with a larger `max_steps` trained nothing (or, under `max_epochs` -1,
    skipped the rest of the epoch). The batches after it are those of a run that never stopped, with or without a dev
    file; the final checkpoint of a run bounded by `max_epochs` resumes with the next epoch."""
    options, first = EXTENDED_RUNS[case]
    reference = tmp_path / "uninterrupted"
    main(_cli_args(shrunk_recipe_args, reference) + options)
    expected = _batches(reference)

    run = tmp_path / "extended"
    args = _cli_args(shrunk_recipe_args, run) + options
    main([*args, *first])
    first_steps = len(_batches(run))
    assert torch.load(_checkpoints(run) / "last.ckpt", weights_only=True)["global_step"] == first_steps
    assert 0 < first_steps < len(expected)
    main(args)
    assert torch.load(_checkpoints(run) / "last.ckpt", weights_only=True)["global_step"] == len(expected)
    assert _batches(run) == expected, "the resumed run repeats or skips batches"


def test_a_run_resumed_at_a_validation_it_skips_logs_each_step_at_its_own_step(shrunk_recipe_args, tmp_path):
    """A run whose final step validates without a new best gets its `last.ckpt` from `PeriodicCheckpoint` at the
    epoch's end (as does an `EarlyStopping` stop), after Lightning counted the step for its loggers; resumed, Lightning
    counted it again while skipping that validation, and every row of the resumed part, train/loss and the validations,
    went into metrics.csv (and the model card's log) one step late."""
    options = ["--checkpoint.save_last", "false"]  # last.ckpt from PeriodicCheckpoint only, new best or not
    options += ["--trainer.log_every_n_steps", "1", "--trainer.check_val_every_n_epoch", "null"]  # every 4 steps
    run = tmp_path / "extended"
    args = _cli_args(shrunk_recipe_args, run) + options
    main([*args, "--trainer.max_steps", "8"])
    assert torch.load(_checkpoints(run) / "last.ckpt", weights_only=True)["global_step"] == 8
    main(args)
    with (_checkpoints(run).parent / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows if row["train/loss"]] == list(range(STEPS)), "each step once, its own"
    validations = [int(row["step"]) + 1 for row in rows if row["val/stsb_spearman"]]
    assert validations == list(range(4, STEPS + 1, 4))


def test_a_finished_run_trained_on_with_more_steps_takes_its_new_schedule_from_the_first_step(
    shrunk_recipe_args, tmp_path
):
    """The optimizer's learning rate came from the checkpoint: the first step after a finished 4-step run, resumed
    for 8, trained at the 4-step schedule's final rate (0), then the 8-step schedule took over."""
    run = tmp_path / "extended"
    args = _cli_args(shrunk_recipe_args, run) + ["--trainer.log_every_n_steps", "1", "--trainer.max_steps", "8"]
    main([*args[:-1], "4"])
    main(args)
    with (_checkpoints(run).parent / "metrics.csv").open(newline="") as handle:
        rates = {int(row["step"]): float(row["train/lr"]) for row in csv.DictReader(handle) if row["train/lr"]}
    assert rates[3] == pytest.approx(1.0e-3 * 1 / 4)  # the first run's last step, on its own schedule
    for step in range(4, 8):  # the linear decay from 1e-3 to 0 over 8 steps (no warmup), from the first step resumed
        assert rates[step] == pytest.approx(1.0e-3 * (8 - step) / 8), step


def test_a_signal_saves_last_ckpt_where_ckpt_path_last_finds_it_beside_a_checkpoint_callback_of_the_users(
    shrunk_recipe_args, tmp_path
):
    """A ModelCheckpoint of `trainer.callbacks` with a folder of its own is Lightning's `trainer.checkpoint_callback`:
    a signal saved last.ckpt in that folder, and `--ckpt_path last` then resumed the run's older last.ckpt."""
    run = tmp_path / "run"
    mine = ["--trainer.callbacks+=ModelCheckpoint", f"--trainer.callbacks.dirpath={tmp_path / 'mine'}"]
    mine += ["--trainer.callbacks.monitor=val/stsb_pearson", "--trainer.callbacks.mode=max"]
    args = _cli_args(shrunk_recipe_args, run) + mine
    with pytest.raises(SystemExit) as stop:
        main([*args, "--trainer.callbacks+=test_resume.Interrupt", "--trainer.callbacks.step=6"])
    assert stop.value.code == PREEMPTED_EXIT_STATUS
    assert torch.load(_checkpoints(run) / "last.ckpt", weights_only=True)["global_step"] == 6
    assert not (tmp_path / "mine" / "last.ckpt").exists()
    main(args)
    assert [step for step, _ in _batches(run)] == list(range(STEPS)), "each step once: resumed after step 6"


def test_a_resumed_run_is_not_warned_that_its_checkpoint_folder_holds_checkpoints(shrunk_recipe_args, tmp_path):
    """Lightning warned "Checkpoint directory ... exists and is not empty" at every resume into the run's own folder;
    a fresh run whose checkpoint folder already holds files is still warned."""
    args = _cli_args(shrunk_recipe_args, tmp_path)
    main([*args, "--trainer.max_steps", "4"])
    with warnings.catch_warnings(record=True) as resumed:
        warnings.simplefilter("always")
        main([*args, "--trainer.max_steps", "5"])
    assert torch.load(_checkpoints(tmp_path) / "last.ckpt", weights_only=True)["global_step"] == 5
    with warnings.catch_warnings(record=True) as fresh:
        warnings.simplefilter("always")
        at = args.index("--ckpt_path")
        main(
            [
                *args[:at],
                *args[at + 2 :],
                "--checkpoint.dirpath",
                str(_checkpoints(tmp_path)),
                "--trainer.max_steps",
                "4",
            ]
        )
    not_empty = [
        [str(w.message) for w in caught if "exists and is not empty" in str(w.message)] for caught in (resumed, fresh)
    ]
    assert not_empty[0] == [] and len(not_empty[1]) == 1, not_empty
