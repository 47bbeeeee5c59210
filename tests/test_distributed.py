"""DDP on CPU (gloo, 2 processes) against one process: N devices × B examples train exactly as one batch of N·B.

One `torch.multiprocessing.spawn` runs every distributed case (spawning costs seconds): each process sets the
variables a launcher such as torchrun sets, so Lightning's `ddp` joins them instead of launching its own.
"""

import contextlib
import csv
import faulthandler
import json
import math
import multiprocessing
import os
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from gloo_processes import free_port, join_gloo_group
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.plugins import MixedPrecision
from sentences import TRIPLETS
from torch.multiprocessing.spawn import ProcessException, ProcessRaisedException
from trainerless import without_trainer
from transformers import AutoConfig, AutoTokenizer

from cse.callbacks.non_finite_guard import NonFiniteGuard, NonFiniteLossError
from cse.cli import main
from cse.commands import fit as fit_command
from cse.config.recipes import recipe_dir
from cse.data.datamodule import SimCSEDataModule
from cse.inference.api import load_model
from cse.models.simcse import SimCSE
from cse.models.word_deletion import NO_WORD
from cse.runs.resume import choose_run_folder

WORLD_SIZE = 2
PER_DEVICE = 3  # examples per device; the reference batch has WORLD_SIZE × PER_DEVICE
RECIPES = ("sup-simcse-bert-base", "sup-simcse-bert-base-ddp")
DEV_PAIRS = 59  # odd: a repeating DistributedSampler would add a pair
# The random tiny BERT's [CLS] embeddings are all alike (cosines tie in float32); mean pooling spreads them enough
# that float32 rounding (batches are padded differently on 1 and 2 devices) cannot reorder them.
VALIDATION_OPTIONS = {"pooler_type": "avg"}
SHARED_PREMISE = 2  # rows per premise in the pairs file of the training-order case, as NLI repeats premises
ORDER_BATCH, ORDER_EPOCHS = 4, 2  # per-device batch and epochs of the training-order case
TRUNCATION = 32  # SimCSEDataModule's default max_seq_length, which the training-order cases keep
LOADER_WORKERS = 2  # DataLoader worker processes in each DDP process, in the cases tokenizing in the workers
MIXTURES = ("proportional", "round_robin")
# Rows of the mixture case's two pairs files: 2 and 4 full global batches of WORLD_SIZE × ORDER_BATCH = 8, 4 rows over.
MIXTURE_SIZES = (20, 36)
PROMPT = {
    "pooler_type": "prompt",
    "prompt_template": "the [X] is [MASK] .",
    "prompt_template_positive": "a [X] , [MASK] .",
    "template_denoising": True,
    "template_denoising_at_inference": True,
}
TSDAE_OPTIONS = {"objective": "tsdae", "tsdae_deletion_ratio": 0.0, "pooler_type": "cls_before_pooler"}
CASES = {  # SimCSE options; "views": columns of TRIPLETS used
    "pairs": {"views": 2, "options": {}},
    "triplets": {"views": 3, "options": {"hard_negative_weight": 1.5}},
    "triplets-gradcache": {"views": 3, "options": {"hard_negative_weight": 1.5, "mini_batch_size": 2}},
    "no-gather": {"views": 2, "options": {"gather_across_devices": False}},
    # Matryoshka (hidden size 32): every prefix's InfoNCE scores the gathered candidates, alone and with GradCache.
    "pairs-matryoshka": {"views": 2, "options": {"matryoshka_dims": [32, 16, 8], "matryoshka_weights": [1, 0.5, 2]}},
    "triplets-matryoshka-gradcache": {
        "views": 3,
        "options": {"hard_negative_weight": 1.5, "mini_batch_size": 2, "matryoshka_dims": [32, 8]},
    },
    # SimCSE++ on sentences: off-dropout negatives gathered, DCL on the global batch's columns; and with GradCache.
    "unsup-simcsepp": {"views": 1, "options": {"off_dropout_negatives": True, "dimension_contrast_weight": 0.1}},
    "unsup-simcsepp-gradcache": {
        "views": 1,
        "options": {"off_dropout_negatives": True, "dimension_contrast_weight": 0.1, "mini_batch_size": 2},
    },
    # PromptBERT: two templates, each minus its template's state (computed on every device), alone and with GradCache;
    # denoised at inference too, since these modules run in eval mode (no dropout).
    "pairs-prompt": {"views": 2, "options": PROMPT},
    "triplets-prompt-gradcache": {"views": 3, "options": PROMPT | {"mini_batch_size": 2}},
    # TSDAE: the cross-entropy's token mean over both processes' sentences (of different token counts), alone and
    # with GradCache's chunks. No word is deleted: the deletion draws of 2 × 3 rows cannot equal those of 6 rows.
    "tsdae": {"views": 1, "options": TSDAE_OPTIONS},
    "tsdae-gradcache": {"views": 1, "options": TSDAE_OPTIONS | {"mini_batch_size": 2}},
}
# ESimCSE's momentum queue with GradCache: 3 steps, so that the queue of 8 (not a multiple of the 6 gathered rows)
# holds two steps' embeddings, the oldest cut; a large learning rate and a low momentum make each step count.
QUEUE_OPTIONS = {"momentum_queue_size": 8, "momentum": 0.5, "learning_rate": 1.0e-3, "mini_batch_size": 2}
QUEUE_STEPS = 3


def _batch(model_dir: Path, views: int) -> dict[str, torch.Tensor]:
    """The reference batch: (N·B, k, L) tokens, all padded to one length so each device's rows are a slice, and
    each token's word index (TSDAE's `word_ids`, `NO_WORD` on special tokens and padding, as the collator)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = [row[view] for row in TRIPLETS for view in range(views)]
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    words = [[NO_WORD if word is None else word for word in tokens.word_ids(index)] for index in range(len(texts))]
    batch = dict(tokens) | {"word_ids": torch.tensor(words)}
    return {key: value.view(len(TRIPLETS), views, -1) for key, value in batch.items()}  # (Bk, L) -> (B, k, L)


def _device_rows(batch: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    """The examples device `rank` trains on: rows [rank·B, rank·B + B) of the reference batch."""
    return {key: value[rank * PER_DEVICE : (rank + 1) * PER_DEVICE] for key, value in batch.items()}


def _module(model_dir: Path, options: dict) -> SimCSE:
    torch.manual_seed(0)  # the MLP head is initialized randomly: the same seed in every process
    return SimCSE(str(model_dir), **{"pooler_type": "cls"} | options).eval()  # no dropout: deterministic


class _GradientRecorder(Callback):
    """Saves the first step's loss and the (DDP-averaged) gradients just before the optimizer uses them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.result: dict = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step == 0:
            assert not any(module.training for module in pl_module.modules())
            grads = {name: param.grad.clone() for name, param in pl_module.named_parameters() if param.grad is not None}
            self.result["grads"] = grads

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == 1:  # the first step is done
            self.result["loss"] = outputs["loss"].detach()
            torch.save(self.result, self.path)


class _QueueRecorder(Callback):
    """Saves the gradients before the optimizer step of step `step`, then that step's loss and the queue after it."""

    def __init__(self, path: Path, step: int) -> None:
        self.path = path
        self.step = step
        self.result: dict = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step == self.step:
            grads = {name: param.grad.clone() for name, param in pl_module.named_parameters() if param.grad is not None}
            self.result["grads"] = grads

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step + 1:
            self.result |= {"loss": outputs["loss"].detach(), "queue": pl_module.momentum_queue.queued().clone()}
            torch.save(self.result, self.path)


def _fit_queue_case(model_dir: Path, batch: dict[str, torch.Tensor], path: Path, **trainer_options) -> None:
    """QUEUE_STEPS steps on the same (anchor, positive) batch, recording the last step."""
    examples = [{key: value[index] for key, value in batch.items()} for index in range(len(batch["input_ids"]))]
    loader = torch.utils.data.DataLoader(examples * QUEUE_STEPS, batch_size=len(examples))
    recorder = _QueueRecorder(path, QUEUE_STEPS - 1)
    trainer = _trainer(max_steps=QUEUE_STEPS, precision="64-true", callbacks=[recorder], **trainer_options)
    trainer.fit(_module(model_dir, QUEUE_OPTIONS), train_dataloaders=loader)


class _BatchRecorder(Callback):
    """Saves, per epoch, the rows of every training batch as tuples of their texts' token ids, read from the batch
    the module is about to train on (before `training_step`, which could change it), and the most child processes
    (the DataLoader's workers) seen alive during training."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.epochs: list[list[list[tuple]]] = []
        self.loader_processes = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epochs.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()  # (B, k, L)
        rows = []
        for row_ids, row_mask in zip(ids, mask, strict=True):  # (k, L) each: one example's texts
            rows.append(tuple(tuple(text[keep].tolist()) for text, keep in zip(row_ids, row_mask, strict=True)))
        self.epochs[-1].append(rows)
        self.loader_processes = max(self.loader_processes, len(multiprocessing.active_children()))

    def on_train_end(self, trainer, pl_module) -> None:
        torch.save({"epochs": self.epochs, "loader_processes": self.loader_processes}, self.path)


class _OverflowOnRankZero(LightningModule):
    """A linear layer whose loss is infinite on rank 0 from step 2 on, and finite on the other ranks."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.layer(batch).square().mean()
        return loss * math.inf if self.global_rank == 0 and self.global_step >= 2 else loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _non_finite_on_one_rank(rank: int, out_dir: Path) -> None:
    """fp16's gradient scaler skips the overflowing steps on every rank (the gradients are all-reduced), so only
    rank 0's guard sees a streak; a rank left waiting would get the process group's timeout error, not hang."""
    guard = NonFiniteGuard(max_consecutive_steps=3, check_every_n_steps=2)
    trainer = _trainer(
        strategy="ddp",
        devices=WORLD_SIZE,
        plugins=[MixedPrecision("16-mixed", "cpu")],
        precision=None,
        max_steps=12,
        callbacks=[guard],
    )
    torch.manual_seed(0)
    try:
        trainer.fit(_OverflowOnRankZero(), torch.utils.data.DataLoader(torch.randn(64, 4), batch_size=2))
        outcome = "finished"
    except NonFiniteLossError as error:
        outcome = f"NonFiniteLossError: {error}"
    except Exception as error:  # noqa: BLE001 -- what a rank left waiting gets instead, to be reported
        outcome = f"{type(error).__name__}: {error}"
    (out_dir / f"non-finite-{rank}.txt").write_text(outcome)


def _trainer(**options) -> Trainer:
    defaults = {"accelerator": "cpu", "precision": "32-true", "logger": False, "enable_checkpointing": False}
    return Trainer(enable_progress_bar=False, enable_model_summary=False, **defaults | options)


def _worker(
    rank: int,
    port: int,
    model_dir: Path,
    train_file: str,
    dev_file: str,
    pairs_file: str,
    mixture_files: list[str],
    fit_args: list[str],
    out_dir: Path,
) -> None:
    progress = _Progress(out_dir, rank)
    join_gloo_group(rank, WORLD_SIZE, port, timeout_s=60)
    distributed = {"strategy": "ddp", "devices": WORLD_SIZE}
    progress.begin("gradient cases")
    for name, case in CASES.items():
        local = _device_rows(_batch(model_dir, case["views"]), rank)
        examples = [{key: value[index] for key, value in local.items()} for index in range(PER_DEVICE)]
        loader = torch.utils.data.DataLoader(examples * 2, batch_size=PER_DEVICE)  # two steps: the second runs too
        recorder = _GradientRecorder(out_dir / f"{name}-{rank}.pt")
        # float64: float32 rounding (batches of 3 and 6 take different kernels) stays far below the tolerance.
        trainer = _trainer(
            max_steps=2, precision="64-true", use_distributed_sampler=False, callbacks=[recorder], **distributed
        )
        trainer.fit(_module(model_dir, case["options"]), train_dataloaders=loader)
    progress.begin("momentum queue")
    local = _device_rows(_batch(model_dir, 2), rank)
    _fit_queue_case(model_dir, local, out_dir / f"queue-{rank}.pt", use_distributed_sampler=False, **distributed)
    progress.begin("training order")
    for no_duplicates in (False, True):  # the training order: the data module's samplers as Lightning uses them
        data = SimCSEDataModule(
            pairs_file, tokenizer_name_or_path=str(model_dir), batch_size=ORDER_BATCH, no_duplicates=no_duplicates
        )
        recorder = _BatchRecorder(out_dir / f"order-{no_duplicates}-{rank}.pt")
        trainer = _trainer(max_epochs=ORDER_EPOCHS, callbacks=[recorder], **distributed)
        trainer.fit(_module(model_dir, {}), data)
    progress.begin("tokenization in workers, mixtures")
    # Loader workers fork, as in the processes torchrun starts on Linux: this spawned process's default would start
    # each worker as a fresh interpreter importing torch and transformers again (seconds each).
    multiprocessing.set_start_method("fork", force=True)
    # The shuffled training-order case again, tokenized in the workers; then the mixtures, each step from one file.
    worker_cases = {"in-workers": {"train_file": pairs_file}}
    worker_cases |= {mixture: {"train_files": mixture_files, "mixture": mixture} for mixture in MIXTURES}
    for name, options in worker_cases.items():
        data = SimCSEDataModule(
            tokenizer_name_or_path=str(model_dir),
            batch_size=ORDER_BATCH,
            tokenize="in_workers",
            num_workers=LOADER_WORKERS,
            **options,
        )
        recorder = _BatchRecorder(out_dir / f"workers-{name}-{rank}.pt")
        trainer = _trainer(max_epochs=ORDER_EPOCHS, callbacks=[recorder], **distributed)
        trainer.fit(_module(model_dir, {}), data)
    progress.begin("cse fit")
    with open(out_dir / f"fit-{rank}.out", "w") as output, contextlib.redirect_stdout(output):
        main(fit_args)  # `cse fit` itself, each process joining the DDP group as under torchrun
    progress.begin("validation")
    data = SimCSEDataModule(train_file, dev_file=dev_file, tokenizer_name_or_path=str(model_dir), eval_batch_size=4)
    trainer = _trainer(**distributed)
    metrics = trainer.validate(_module(model_dir, VALIDATION_OPTIONS), data, verbose=False)[0]
    torch.save({"metrics": metrics, "pairs": len(trainer.val_dataloaders.sampler)}, out_dir / f"validate-{rank}.pt")
    progress.begin("non-finite loss on one process")
    _non_finite_on_one_rank(rank, out_dir)  # last: it ends in an exception
    progress.begin("shutdown")
    torch.distributed.barrier()  # neither process closes its connections while the other still uses them
    torch.distributed.destroy_process_group()
    progress.begin("done")


class _Progress:
    """Records which phase a spawned process is in, and sends its stderr to a file, so that a crash can be told."""

    def __init__(self, out_dir: Path, rank: int) -> None:
        self.phases = out_dir / f"progress-{rank}.txt"
        self.log = (out_dir / f"stderr-{rank}.log").open("w")
        os.dup2(self.log.fileno(), 2)  # C++ messages (gloo's "terminate called ...") land there too

    def begin(self, phase: str) -> None:
        with self.phases.open("a") as file:
            file.write(phase + "\n")
        # Armed anew for each phase: Lightning's teardown resets the SIGABRT handler to the default, and `enable`
        # alone keeps what it believes is still installed.
        faulthandler.disable()
        faulthandler.enable(self.log, all_threads=True)  # a crash leaves every thread's Python stack in the log


def _spawn_report(error: Exception, out_dir: Path) -> str:
    """One line saying how the spawned processes ended: the error, each rank's last phase, and what its stderr says
    of a crash (a C++ `terminate`, and the innermost Python frames faulthandler wrote)."""
    ranks = []
    for rank in range(WORLD_SIZE):
        progress = out_dir / f"progress-{rank}.txt"
        phase = progress.read_text().splitlines()[-1] if progress.exists() else "start"
        log = out_dir / f"stderr-{rank}.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        crash = [line.strip() for line in lines if any(key in line for key in ("terminate", "what()", "Fatal"))]
        current = next((index for index, line in enumerate(lines) if line.startswith("Current thread")), len(lines))
        frames = [line.strip() for line in lines[current + 1 : current + 4]]  # innermost first
        ranks.append(f"rank {rank} last began '{phase}'; " + " / ".join(crash[:3] + frames))
    if isinstance(error, ProcessRaisedException):  # its message is the traceback: keep the exception line
        summary = f"process {error.error_index} raised {str(error).strip().splitlines()[-1]}"
    else:
        summary = str(error)  # "process 0 terminated with signal SIGABRT"
    return f"{summary} | " + " | ".join(ranks)


def _write_pairs_file(model_dir: Path, corpus_file: Path, path: Path) -> None:
    """40 (premise, hypothesis) rows, each premise in SHARED_PREMISE rows; all texts tokenize differently."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    distinct = {}
    for sentence in corpus_file.read_text().splitlines():
        distinct.setdefault(tuple(tokenizer(sentence)["input_ids"]), sentence)
    sentences = list(distinct.values())
    rows = [(sentences[index // SHARED_PREMISE], sentences[40 + index]) for index in range(40)]
    path.write_text("sent0\tsent1\n" + "".join(f"{premise}\t{hypothesis}\n" for premise, hypothesis in rows))


def _write_mixture_files(model_dir: Path, corpus_file: Path, out_dir: Path) -> list[str]:
    """Two pairs files of MIXTURE_SIZES rows; no two of their texts tokenize alike (truncated as trained), so that a
    trained row tells its file."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    distinct = {}
    for sentence in corpus_file.read_text().splitlines():
        distinct.setdefault(tuple(tokenizer(sentence, truncation=True, max_length=TRUNCATION)["input_ids"]), sentence)
    sentences = iter(distinct.values())
    paths = [out_dir / f"mixture-{index}.tsv" for index in range(len(MIXTURE_SIZES))]
    for path, size in zip(paths, MIXTURE_SIZES, strict=True):
        path.write_text("sent0\tsent1\n" + "".join(f"{next(sentences)}\t{next(sentences)}\n" for _ in range(size)))
    return [str(path) for path in paths]


@pytest.fixture(scope="module")
def ddp_results(tiny_model_dir, tiny_data, shrunk_recipe_args, tmp_path_factory) -> tuple[Path, str, Path]:
    """Runs every case in 2 DDP processes once; returns the model, the odd-sized dev file and the results."""
    out_dir = tmp_path_factory.mktemp("ddp")
    lines = Path(tiny_data.dev_file).read_text().splitlines()
    dev_file = out_dir / "dev.tsv"
    dev_file.write_text("\n".join(lines[: 1 + DEV_PAIRS]) + "\n")  # header + DEV_PAIRS pairs
    pairs_file = out_dir / "pairs.tsv"
    _write_pairs_file(tiny_model_dir, Path(tiny_data.train_file), pairs_file)
    mixture_files = _write_mixture_files(tiny_model_dir, Path(tiny_data.train_file), out_dir)
    fit_args = shrunk_recipe_args(
        "quickstart",
        "--trainer.logger.init_args.save_dir",
        str(out_dir / "runs"),
        cache_dir=out_dir / "cache",
        max_steps=4,
        accelerator="cpu",
        strategy="ddp",
        devices=WORLD_SIZE,
    )
    files = (str(tiny_data.train_file), str(dev_file), str(pairs_file), mixture_files)
    args = (free_port(), tiny_model_dir, *files, fit_args, out_dir)
    try:
        torch.multiprocessing.spawn(_worker, args=args, nprocs=WORLD_SIZE, join=True)
    except ProcessException as error:
        raise RuntimeError(_spawn_report(error, out_dir)) from error
    return tiny_model_dir, str(dev_file), out_dir


def _single_process(model_dir: Path, case: dict, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Loss and gradients of one process on the given batch, without a Trainer (so nothing is gathered)."""
    module = without_trainer(_module(model_dir, case["options"]).double())
    loss = module.training_step(batch, 0)
    loss.backward()
    grads = {name: param.grad for name, param in module.named_parameters() if param.requires_grad}
    assert all(grad is not None for grad in grads.values())  # every trainable parameter takes part
    return loss.detach(), grads


def _max_difference(first: dict, second: dict) -> float:
    assert first.keys() == second.keys()
    return max((first[name] - second[name]).abs().max().item() for name in first)


@pytest.mark.parametrize(
    "name",
    [
        "pairs",
        "triplets",
        "triplets-gradcache",
        "pairs-matryoshka",
        "triplets-matryoshka-gradcache",
        "unsup-simcsepp",
        "unsup-simcsepp-gradcache",
        "pairs-prompt",
        "triplets-prompt-gradcache",
        "tsdae",
        "tsdae-gradcache",
    ],
)
def test_ddp_loss_and_every_gradient_equal_one_process_on_the_whole_batch(ddp_results, name):
    model_dir, _, out_dir = ddp_results
    case = CASES[name]
    ranks = [torch.load(out_dir / f"{name}-{rank}.pt") for rank in range(WORLD_SIZE)]
    expected_loss, expected_grads = _single_process(model_dir, case, _batch(model_dir, case["views"]))
    # Each device's loss is the mean over its own anchors; their mean is the whole batch's loss.
    ddp_loss = torch.stack([result["loss"] for result in ranks]).mean()
    assert (ddp_loss - expected_loss).abs().item() < 1e-6
    # DDP averages the gradients over devices: exactly the whole batch's gradient, for every parameter (float64:
    # also within 1e-9 of the largest gradient, so that a small but wrong term could not hide under 1e-6).
    difference = _max_difference(ranks[0]["grads"], expected_grads)
    assert difference < 1e-6 and difference < 1e-9 * max(grad.abs().max().item() for grad in expected_grads.values())
    assert _max_difference(ranks[0]["grads"], ranks[1]["grads"]) == 0.0


def test_ddp_momentum_queue_equals_one_process_on_the_whole_batch(ddp_results, tmp_path):
    """ESimCSE: each process enqueues the gathered momentum embeddings, so both hold the queue of one process on the
    concatenated batch, and the loss and gradients with the queued negatives are that process's (GradCache on)."""
    model_dir, _, out_dir = ddp_results
    _fit_queue_case(model_dir, _batch(model_dir, 2), tmp_path / "queue.pt", devices=1)
    expected = torch.load(tmp_path / "queue.pt")
    ranks = [torch.load(out_dir / f"queue-{rank}.pt") for rank in range(WORLD_SIZE)]
    assert expected["queue"].shape == (8, 32)
    assert torch.equal(ranks[0]["queue"], ranks[1]["queue"]), "every process must hold the same queue"
    assert (ranks[0]["queue"] - expected["queue"]).abs().max().item() < 1e-9
    ddp_loss = torch.stack([result["loss"] for result in ranks]).mean()
    assert (ddp_loss - expected["loss"]).abs().item() < 1e-6
    assert _max_difference(ranks[0]["grads"], expected["grads"]) < 1e-6


def test_tsdae_on_two_devices_is_the_token_mean_of_both_not_the_mean_of_their_means(ddp_results):
    """The devices' sentences hold different numbers of predicted tokens, so the mean of each device's own token mean
    differs from the whole batch's token mean, which the DDP loss equals (above): the weighting across processes
    matters here and is right."""
    model_dir, _, out_dir = ddp_results
    case = CASES["tsdae"]
    batch = _batch(model_dir, case["views"])
    tokens = [_device_rows(batch, rank)["attention_mask"][:, 0, 1:].sum().item() for rank in range(WORLD_SIZE)]
    assert tokens[0] != tokens[1]
    own_means = torch.stack([_single_process(model_dir, case, _device_rows(batch, rank))[0] for rank in (0, 1)])
    whole = _single_process(model_dir, case, batch)[0]
    ddp_loss = torch.stack([torch.load(out_dir / f"tsdae-{rank}.pt")["loss"] for rank in range(WORLD_SIZE)]).mean()
    assert (own_means.mean() - whole).abs().item() > 1e-3 and (ddp_loss - whole).abs().item() < 1e-6
    expected = sum(mean * count for mean, count in zip(own_means, tokens, strict=True)) / sum(tokens)
    assert (ddp_loss - expected).abs().item() < 1e-6  # the token-weighted mean of the devices' own means


def test_without_gathering_each_device_keeps_its_own_negatives(ddp_results):
    model_dir, _, out_dir = ddp_results
    case = CASES["no-gather"]
    batch = _batch(model_dir, case["views"])
    expected = torch.stack([_single_process(model_dir, case, _device_rows(batch, rank))[0] for rank in (0, 1)]).mean()
    ddp_loss = torch.stack([torch.load(out_dir / f"no-gather-{rank}.pt")["loss"] for rank in range(WORLD_SIZE)]).mean()
    assert (ddp_loss - expected).abs().item() < 1e-6


def test_validation_on_two_devices_scores_each_dev_pair_once(ddp_results, tiny_data, tmp_path):
    model_dir, dev_file, out_dir = ddp_results
    data = SimCSEDataModule(
        str(tiny_data.train_file), dev_file=dev_file, tokenizer_name_or_path=str(model_dir), eval_batch_size=4
    )
    expected = _trainer(devices=1).validate(_module(model_dir, VALIDATION_OPTIONS), data, verbose=False)[0]
    results = [torch.load(out_dir / f"validate-{rank}.pt") for rank in range(WORLD_SIZE)]
    assert [result["pairs"] for result in results] == [30, 29]  # no pair repeated to even out the devices
    for result in results:  # torchmetrics gathers every device's scores: the same value on each
        assert result["metrics"]["val/stsb_spearman"] == pytest.approx(expected["val/stsb_spearman"], abs=1e-6)


@pytest.mark.parametrize("no_duplicates", [False, True])
def test_devices_train_on_disjoint_shares_reshuffled_every_epoch(ddp_results, no_duplicates):
    out_dir = ddp_results[2]
    ranks = [torch.load(out_dir / f"order-{no_duplicates}-{rank}.pt")["epochs"] for rank in range(WORLD_SIZE)]
    for epoch in range(ORDER_EPOCHS):
        steps = [ranks[rank][epoch] for rank in range(WORLD_SIZE)]
        assert len(steps[0]) == len(steps[1]) > 0, "every device must take the same number of steps"
        rows = [row for device in steps for batch in device for row in batch]
        assert len(set(rows)) == len(rows), "a row was trained twice in one epoch (on two devices, or twice on one)"
        if not no_duplicates:
            assert len(rows) == 40 // (WORLD_SIZE * ORDER_BATCH) * WORLD_SIZE * ORDER_BATCH, "the data is covered"
        else:  # the 2 devices' batches of a step are one batch of 8 for InfoNCE: no text twice in it
            for step in zip(*steps, strict=True):
                texts = [text for batch in step for row in batch for text in row]
                assert len(set(texts)) == len(texts), "a premise repeats in one step's global batch"
    for device in ranks:
        assert device[0] != device[1], "each epoch must have its own order"


def _file_rows(model_dir: Path, path: Path) -> list[tuple]:
    """The rows of a pairs file as `_BatchRecorder` saves them, tokenized here text by text: per text, its token ids."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lines = path.read_text().splitlines()[1:]  # after the header
    return [
        tuple(tuple(tokenizer(text, truncation=True, max_length=TRUNCATION)["input_ids"]) for text in line.split("\t"))
        for line in lines
    ]


def test_two_workers_on_each_device_tokenize_every_row_once_per_epoch_as_ahead(ddp_results):
    """`tokenize: in_workers` under DDP: 2 processes × 2 loader workers train on every row of the file once per epoch,
    reshuffled each epoch, in exactly the batches (token ids) of the shuffled training-order case, tokenized ahead."""
    model_dir, _, out_dir = ddp_results
    ranks = [torch.load(out_dir / f"workers-in-workers-{rank}.pt") for rank in range(WORLD_SIZE)]
    expected = _file_rows(model_dir, out_dir / "pairs.tsv")
    assert len(set(expected)) == len(expected) == 40 and 40 % (WORLD_SIZE * ORDER_BATCH) == 0, "no row is dropped"
    for epoch in range(ORDER_EPOCHS):
        steps = [ranks[rank]["epochs"][epoch] for rank in range(WORLD_SIZE)]
        assert len(steps[0]) == len(steps[1]), "every device must take the same number of steps"
        assert sorted(row for device in steps for batch in device for row in batch) == sorted(expected)
    for rank, device in enumerate(ranks):
        assert device["loader_processes"] == LOADER_WORKERS, "the batches were not made in worker processes"
        assert device["epochs"][0] != device["epochs"][1], "each epoch must have its own order"
        ahead = torch.load(out_dir / f"order-False-{rank}.pt")  # auto: ahead for a small file; no workers
        assert ahead["loader_processes"] == 0
        assert device["epochs"] == ahead["epochs"]


@pytest.mark.parametrize("mixture", MIXTURES)
def test_mixture_on_two_devices_takes_each_step_from_one_dataset(ddp_results, mixture):
    """`train_files` under DDP with 2 loader workers per process: both devices' batches of a step come from one file,
    no row twice in an epoch; proportional takes every full global batch of each file once per epoch, round robin
    alternates the files until the smaller one has no full global batch left."""
    model_dir, _, out_dir = ddp_results
    files = [_file_rows(model_dir, out_dir / f"mixture-{index}.tsv") for index in range(len(MIXTURE_SIZES))]
    file_of = {row: index for index, rows in enumerate(files) for row in rows}
    assert [len(rows) for rows in files] == list(MIXTURE_SIZES) and len(file_of) == sum(MIXTURE_SIZES)
    ranks = [torch.load(out_dir / f"workers-{mixture}-{rank}.pt") for rank in range(WORLD_SIZE)]
    global_batch = WORLD_SIZE * ORDER_BATCH
    full = [size // global_batch for size in MIXTURE_SIZES]  # full global batches of each file: 2, 4
    for epoch in range(ORDER_EPOCHS):
        steps = [ranks[rank]["epochs"][epoch] for rank in range(WORLD_SIZE)]
        assert len(steps[0]) == len(steps[1]), "every device must take the same number of steps"
        step_files = []
        for step in zip(*steps, strict=True):  # the 2 devices' batches of one step
            rows = [row for batch in step for row in batch]
            assert len(rows) == global_batch and all(row in file_of for row in rows), "not rows of the files"
            assert len({file_of[row] for row in rows}) == 1, "one step's global batch mixes files"
            step_files.append(file_of[rows[0]])
        rows = [row for device in steps for batch in device for row in batch]
        assert len(set(rows)) == len(rows), "a row was trained twice in one epoch"
        if mixture == "proportional":
            assert Counter(step_files) == dict(enumerate(full))
        else:
            assert step_files == list(range(len(MIXTURE_SIZES))) * min(full)
    for device in ranks:
        assert device["loader_processes"] == LOADER_WORKERS
        assert device["epochs"][0] != device["epochs"][1], "each epoch must have its own order"


def test_cse_fit_on_two_processes_exports_the_best_model_once(ddp_results):
    model_dir, _, out_dir = ddp_results
    outputs = [(out_dir / f"fit-{rank}.out").read_text() for rank in range(WORLD_SIZE)]
    run_dir = out_dir / "runs" / "quickstart" / "version_0"
    assert [path.name for path in run_dir.parent.iterdir()] == ["version_0"], "one run folder for both processes"
    assert outputs[0].strip().splitlines()[-1].endswith(f"; best model: {(run_dir / 'best_model').resolve()}")
    assert "best model:" not in outputs[1], "only the first process exports"
    validations = [row for row in csv.DictReader((run_dir / "metrics.csv").open()) if row["val/stsb_spearman"]]
    assert [int(row["step"]) + 1 for row in validations] == [2, 4]
    best = max(validations, key=lambda row: float(row["val/stsb_spearman"]))
    assert f"best-step={int(best['step']) + 1}.ckpt" in {path.name for path in (run_dir / "checkpoints").iterdir()}
    embedder = load_model(run_dir / "best_model", device="cpu")
    assert embedder.encode(["a dog runs"]).shape == (1, AutoConfig.from_pretrained(model_dir).hidden_size)


def test_a_non_finite_streak_on_one_process_stops_every_process(ddp_results):
    out_dir = ddp_results[2]
    outcomes = [(out_dir / f"non-finite-{rank}.txt").read_text() for rank in range(WORLD_SIZE)]
    # Rank 0's losses of the batches ending steps 3, 4, 5 are infinite: its streak reaches 3 at step 5, and the
    # check after step 6 (every 2 steps) stops both ranks.
    assert outcomes[0].startswith(
        "NonFiniteLossError: training stopped at step 6: the loss is inf 3 steps in a row up to step 5"
    ), outcomes[0]
    assert outcomes[1].startswith(
        "NonFiniteLossError: training stopped at step 6: the loss of another process is not finite"
    ), outcomes[1]


def test_data_parallel_is_refused_in_one_line(tiny_model_dir, tiny_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", "quickstart", "--model.model_name_or_path", str(tiny_model_dir)]
    args += ["--data.train_file", str(tiny_data.train_file), "--trainer.strategy", "dp"]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: trainer.strategy: DataParallel ('dp') is not supported; use 'ddp' with trainer.devices set to the "
        "number of GPUs, which also takes in-batch negatives from every GPU (see docs/multi_gpu.md)"
    ]


def test_ddp_recipe_is_the_supervised_recipe_on_four_gpus_of_128(capsys):
    single, ddp = (yaml.safe_load((recipe_dir() / f"{name}.yaml").read_text()) for name in RECIPES)
    launch = {key: ddp["trainer"].pop(key) for key in ("accelerator", "devices", "strategy")}
    assert launch == {"accelerator": "gpu", "devices": 4, "strategy": "ddp"}
    assert single["trainer"].pop("devices") == 1
    assert 4 * ddp["data"].pop("batch_size") == single["data"].pop("batch_size") == 512
    ddp["trainer"]["logger"]["init_args"]["name"] = "sup-simcse-bert-base"
    assert ddp == single
    try:  # the recipe parses: every key exists
        main(["fit", "--config", RECIPES[1], "--print_config"])
    except SystemExit as exit_:
        assert not exit_.code
    assert "gather_across_devices: true" in capsys.readouterr().out


def _bad_input_worker(rank: int, port: int, args: list[str], out_dir: Path) -> None:
    """`cse ARGS` in one of WORLD_SIZE processes joined as under torchrun (after importing Lightning); writes all its
    stderr (Lightning's log and transformers' progress bars too), the run folders it claimed and how it ended."""
    join_gloo_group(rank, WORLD_SIZE, port, timeout_s=30)
    os.chdir(out_dir)
    claimed: list[str] = []

    def claim(config) -> list[Path]:
        folders = choose_run_folder(config)
        claimed.extend(str(folder) for folder in folders)
        return folders

    fit_command.choose_run_folder = claim  # recorded as called: a process of its own, ending with the case
    with open(out_dir / f"bad-{rank}.err", "w") as err:
        os.dup2(err.fileno(), 2)  # the file descriptor: Lightning's log handler holds the stderr of its import
        try:
            main(args)
            outcome = "returned"
        except SystemExit as exit_:
            outcome = f"exit {exit_.code}"
        except Exception as error:  # noqa: BLE001 -- what a process left waiting gets instead, to be reported
            outcome = f"{type(error).__name__}: {error}"
        sys.stderr.flush()
    (out_dir / f"bad-{rank}.txt").write_text(outcome)
    (out_dir / f"claimed-{rank}.json").write_text(json.dumps(claimed))


@pytest.mark.parametrize("case", ["missing file", "batch larger than each process's data", "queue on pairs"])
def test_bad_training_data_is_one_error_line_and_every_process_exits(shrunk_recipe_args, tiny_data, tmp_path, case):
    """Only the first process reads the training data ahead (`prepare_data`): the others waited for it at Lightning's
    barrier, and got the closed connection's traceback when it stopped with its error line. A check every process
    makes (the batch size against the data, the model's settings against its mode) printed its line once per
    process."""
    missing = tmp_path / "missing.txt"
    if case == "missing file":
        overrides, expected = ["--data.train_file", str(missing)], f"error: corpus {missing}: no such file"
    elif case == "queue on pairs":  # refused by the model's `setup`, after the data module's
        pairs = tmp_path / "pairs.tsv"
        pairs.write_text("sent0\tsent1\n" + "".join(f"a dog {index}\ta cat {index}\n" for index in range(100)))
        overrides = ["--data.train_file", str(pairs), "--model.momentum_queue_size", "16"]
        expected = (
            "error: model.momentum_queue_size: ESimCSE's momentum queue is defined for single sentences "
            "(unsupervised), but the training data has pairs; set it to 0"
        )
    else:
        overrides = ["--data.batch_size", "200"]  # 2 × 200 > the 300 sentences of tiny_data
        expected = (
            f"error: data.batch_size: 200 on each of {WORLD_SIZE} processes is larger than the training data "
            f"{tiny_data.train_file} (300 examples); no full batch can be formed"
        )
    args = shrunk_recipe_args("quickstart", *overrides, accelerator="cpu", devices=WORLD_SIZE)
    args += ["--trainer.strategy", "ddp", "--trainer.precision", "32-true"]
    torch.multiprocessing.spawn(_bad_input_worker, args=(free_port(), args, tmp_path), nprocs=WORLD_SIZE, join=True)
    outcomes = [(tmp_path / f"bad-{rank}.txt").read_text() for rank in range(WORLD_SIZE)]
    errors = [(tmp_path / f"bad-{rank}.err").read_text() for rank in range(WORLD_SIZE)]
    assert outcomes == ["exit 2"] * WORLD_SIZE, outcomes
    assert [line for line in errors[0].splitlines() if line.startswith("error:")] == [expected]
    assert "error:" not in errors[1], "the line is printed once, by the first process"
    assert not any("Traceback" in text for text in errors)
    assert not (tmp_path / "runs").exists(), "a refused run leaves no folder"
    for said in ("Seed set to 42", "Loading weights"):  # and so every line Lightning and transformers print alike
        assert said in errors[0] and said not in errors[1], f"{said!r}: the first process alone says it"
    claimed = [json.loads((tmp_path / f"claimed-{rank}.json").read_text()) for rank in range(WORLD_SIZE)]
    assert claimed[0] and not claimed[1], f"the first process alone claims (and removes) the run folder: {claimed}"
