"""Training speed of `cse` against the hand-written PyTorch loop it should not be slower than, in one run.

cse: the real `SimCSE` LightningModule trained by a Lightning `Trainer` with the callbacks and the CSV logger
that `cse fit` adds to every run (validation and the progress bar off): data loading, device transfer,
training_step, backward, AdamW step, scheduler step, and all of Lightning's and cse's per-step work. Floor: the
same model (backbone without its own pooler, [CLS] + the same MLP, same weights), batches, dtype and optimizer
(AdamW with cse's settings, fused on CUDA; linear decay), written as a plain loop: each sentence twice in one
forward (unsupervised SimCSE), InfoNCE at temperature 0.05, backward, step.

The two alternate in blocks of `--block` steps (cse, floor, cse, ...), so both see the same machine state; the first
`--warmup` steps of each are not timed. A cse block is timed from the end of one floor block to the start of the
next, so everything Lightning does between steps counts against cse. On CUDA the clock waits for the GPU at block
edges only. The last line is `ratio cse/floor: X.XX`, cse's steps/s over the floor's (1.00: no overhead).

    python scripts/benchmark.py --model PATH --steps 20 --batch-size 64 --max-seq-length 32
    python scripts/benchmark.py --random-init-config bert-base --device cuda --precision bf16-mixed --steps 50
"""

import argparse
import contextlib
import resource
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn
from torch.utils.data import DataLoader
from transformers import AutoModel, BertConfig, BertModel, get_linear_schedule_with_warmup

from cse.callbacks.non_finite_guard import NonFiniteGuard
from cse.callbacks.preemption import PreemptionCheckpoint
from cse.callbacks.rng_state import RngStateCheckpoint
from cse.cli import PERIODIC_CHECKPOINT_STEPS
from cse.models.simcse import SimCSE

TEMPERATURE = 0.05  # SimCSE Table D.1, cse's default
LEARNING_RATE = 3.0e-5  # cse's default
AUTOCAST_DTYPES = {"32-true": None, "16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}
RANDOM_INIT_CONFIGS = {"bert-base": BertConfig}  # BertConfig's defaults are bert-base-uncased's shape
WIKI1M_EPOCH_STEPS = 15_625  # unsupervised SimCSE: 1,000,000 Wikipedia sentences / batch 64, one epoch


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """`--model PATH` or `--random-init-config NAME`, one of them required (see `model_directory`)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a Hugging Face model directory")
    source.add_argument(
        "--random-init-config", choices=sorted(RANDOM_INIT_CONFIGS), help="a random model of this shape"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each before the timed ones")
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch (each encoded twice)")
    parser.add_argument("--max-seq-length", type=int, default=32, help="tokens of the longest sentence of a batch")
    parser.add_argument("--precision", choices=sorted(AUTOCAST_DTYPES), default="32-true")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--block",
        type=int,
        help="steps of one side before switching to the other; default 5 on CUDA, where the clock waits for the GPU "
        "only between blocks so that the CPU queues work ahead as in a real run, and 1 on CPU",
    )
    args = parser.parse_args(argv)
    if args.block is None:
        args.block = 5 if args.device == "cuda" else 1
    if args.precision == "16-mixed" and args.device == "cpu":
        parser.error("--precision 16-mixed needs --device cuda (on CPU use bf16-mixed)")
    if min(args.steps, args.batch_size, args.max_seq_length, args.block) < 1 or args.warmup < 0:
        parser.error("--steps, --batch-size, --max-seq-length and --block must be at least 1, --warmup at least 0")
    return args


def make_batches(count: int, batch_size: int, length: int, vocab_size: int, seed: int = 0) -> list[dict[str, Tensor]]:
    """Unsupervised batches as cse's collator makes them: (B, 1, L) ids and mask, padded to the longest sentence."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        ids = torch.randint(vocab_size // 10, vocab_size, (batch_size, 1, length), generator=generator)  # no specials
        lengths = torch.randint(length // 2 + 1, length + 1, (batch_size, 1, 1), generator=generator)
        lengths[0] = length  # the longest sentence sets the padded length
        mask = (torch.arange(length) < lengths).long()  # (B, 1, 1) vs (L,) -> (B, 1, L)
        batches.append({"input_ids": ids * mask, "attention_mask": mask})
    return batches


def cycle(loader: DataLoader) -> Iterator[dict[str, Tensor]]:
    while True:
        yield from loader


class FloorLoop:
    """The hand-written training step: one forward of the duplicated batch, InfoNCE, backward, AdamW, schedule."""

    def __init__(
        self, module: SimCSE, model_dir: str, loader: DataLoader, args: argparse.Namespace, total_steps: int
    ) -> None:
        self.device = torch.device(args.device)
        self.backbone = AutoModel.from_pretrained(model_dir).train()
        self.backbone.pooler = None  # [CLS] + MLP below, as cse: BERT's own pooler is not computed
        hidden = self.backbone.config.hidden_size
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.mlp[0].load_state_dict(module.encoder.mlp.dense.state_dict())  # the same weights as cse's MLP
        self.backbone.to(self.device)
        self.mlp.to(self.device)
        parameters = [*self.backbone.parameters(), *self.mlp.parameters()]
        fused = True if self.device.type == "cuda" else None  # cse's rule (cse.models.optimization)
        self.optimizer = torch.optim.AdamW(
            parameters, lr=LEARNING_RATE, betas=(0.9, 0.999), eps=1.0e-8, weight_decay=0.0, fused=fused
        )  # cse's defaults: no weight decay (SimCSE), HF Trainer's betas and eps
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, 0, total_steps)
        self.dtype = AUTOCAST_DTYPES[args.precision]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.batches = cycle(loader)

    def step(self) -> Tensor:
        """One training step; returns the loss."""
        batch = next(self.batches)
        ids = batch["input_ids"].to(self.device, non_blocking=True)
        mask = batch["attention_mask"].to(self.device, non_blocking=True)
        size, _, length = ids.shape
        ids, mask = ids.expand(size, 2, length).reshape(-1, length), mask.expand(size, 2, length).reshape(-1, length)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            hidden = self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state  # (2B, L, H)
            embeddings = self.mlp(hidden[:, 0]).view(size, 2, -1).float()  # (2B, H) -> (B, 2, H)
        first, second = F.normalize(embeddings[:, 0], dim=-1), F.normalize(embeddings[:, 1], dim=-1)
        loss = F.cross_entropy(first @ second.T / TEMPERATURE, torch.arange(size, device=self.device))
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()


class Alternate(Callback):
    """After every `block` cse steps, `block` floor steps; records the time (and peak CUDA memory) of each block."""

    def __init__(self, floor: FloorLoop, block: int, warmup_blocks: int) -> None:
        self.floor = floor
        self.block = block
        self.warmup_blocks = warmup_blocks
        self.block_times: dict[str, list[float]] = {"cse": [], "floor": []}  # seconds per timed block
        self.peak_bytes = {"cse": 0, "floor": 0}
        self._floor_end = 0.0
        self._steps = 0  # cse steps so far (batch_idx restarts with every pass over the batches)

    def on_train_start(self, trainer, pl_module) -> None:
        self._floor_end = self._now()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._steps += 1
        if self._steps % self.block:
            return
        cse_end = self._now()
        self._record("cse", cse_end - self._floor_end)
        for _ in range(self.block):
            self.floor.step()
        self._floor_end = self._now()
        self._record("floor", self._floor_end - cse_end)

    def _record(self, side: str, seconds: float) -> None:
        if self._steps // self.block > self.warmup_blocks:
            self.block_times[side].append(seconds)
            if self.floor.device.type == "cuda":
                self.peak_bytes[side] = max(self.peak_bytes[side], torch.cuda.max_memory_allocated())
        if self.floor.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def _now(self) -> float:
        if self.floor.device.type == "cuda":
            torch.cuda.synchronize()  # the block's kernels are done: wall time is its whole cost
        return time.perf_counter()


def cse_fit_callbacks(directory: str) -> list[Callback]:
    """The callbacks `cse fit` adds to every run (see `cse.cli`), with their defaults; checkpoints go to `directory`.

    Without a dev set the best-model checkpoint has nothing to monitor, as in `cse fit` without `data.dev_file`; no
    `last.ckpt` is written when the benchmark ends, which is after the clock stops anyway.
    """
    return [
        ModelCheckpoint(directory),
        ModelCheckpoint(directory, every_n_train_steps=PERIODIC_CHECKPOINT_STEPS, save_top_k=0),
        NonFiniteGuard(),
        RngStateCheckpoint(),
        PreemptionCheckpoint(),
    ]


def run(args: argparse.Namespace, model_dir: str, run_dir: str) -> Alternate:
    torch.manual_seed(0)
    module = SimCSE(model_dir, pooler_type="cls", temp=TEMPERATURE, learning_rate=LEARNING_RATE)
    vocab_size = module.encoder.backbone.config.vocab_size
    warmup_blocks, timed_blocks = -(-args.warmup // args.block), -(-args.steps // args.block)  # rounded up
    steps = (warmup_blocks + timed_blocks) * args.block
    batches = make_batches(min(steps, 8), args.batch_size, args.max_seq_length, vocab_size)
    pin = args.device == "cuda"
    # One epoch of `steps` batches (the few distinct ones repeated), as a real epoch spans thousands of steps: the
    # epoch-end work (a checkpoint without a dev set) comes after the last timed step. cse's loader, and the floor's.
    order = [step % len(batches) for step in range(steps)]
    loaders = [DataLoader(batches, batch_size=None, sampler=order, pin_memory=pin) for _ in range(2)]
    alternate = Alternate(FloorLoop(module, model_dir, loaders[1], args, steps), args.block, warmup_blocks)
    trainer = Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu",
        devices=1,
        precision=args.precision,
        max_steps=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=CSVLogger(run_dir),  # writes train/loss and train/lr every 50 steps, as in `cse fit`
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[alternate, *cse_fit_callbacks(run_dir)],
    )
    trainer.fit(module, train_dataloaders=loaders[0])
    return alternate


@contextlib.contextmanager
def model_directory(args: argparse.Namespace) -> Iterator[str]:
    """`--model`, or a randomly initialized model of `--random-init-config` saved to a temporary directory."""
    if args.model is not None:
        yield args.model
        return
    with tempfile.TemporaryDirectory() as directory:
        torch.manual_seed(0)
        BertModel(RANDOM_INIT_CONFIGS[args.random_init_config]()).save_pretrained(directory)
        yield directory


def report(args: argparse.Namespace, model: str, alternate: Alternate) -> list[str]:
    """The table; the last line is the ratio of steps/s."""
    rate = {side: alternate.block * len(times) / sum(times) for side, times in alternate.block_times.items()}
    on_cuda = args.device == "cuda"
    timed = alternate.block * len(alternate.block_times["cse"])
    warmup = alternate.block * alternate.warmup_blocks
    threads = "" if on_cuda else f", {torch.get_num_threads()} threads"
    lines = [
        f"model {model}, {args.device}{threads}, {args.precision}, batch {args.batch_size} sentences x 2 views, "
        f"length {args.max_seq_length}; {timed} timed steps of each after {warmup} warm-up, in blocks of {args.block}",
        f"{'':8}{'steps/s':>10}{'mean ms':>10}{'median ms':>11}" + (f"{'peak MiB':>10}" if on_cuda else ""),
    ]
    for side, times in alternate.block_times.items():
        memory = f"{alternate.peak_bytes[side] / 2**20:>10.0f}" if on_cuda else ""
        mean, median = (1000 * function(times) / alternate.block for function in (statistics.mean, statistics.median))
        lines.append(f"{side:8}{rate[side]:>10.2f}{mean:>10.1f}{median:>11.1f}{memory}")
    if on_cuda:
        lines.append("peak MiB: CUDA memory allocated during each side's steps; both models stay resident throughout")
    else:
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        lines.append(f"peak RSS of the process (both models resident): {peak_rss:.0f} MiB")
    minutes = WIKI1M_EPOCH_STEPS / rate["cse"] / 60
    lines.append(f"cse: {WIKI1M_EPOCH_STEPS:,} steps (one wiki1m epoch at batch 64) would take {minutes:.1f} min")
    lines.append(f"ratio cse/floor: {rate['cse'] / rate['floor']:.2f}")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module="lightning")  # no val_dataloader, few batches: expected here
    with model_directory(args) as model_dir, tempfile.TemporaryDirectory() as run_dir:
        alternate = run(args, model_dir, run_dir)
    print("\n".join(report(args, args.model or f"random {args.random_init_config}", alternate)), flush=True)


if __name__ == "__main__":
    main()
