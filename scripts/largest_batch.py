"""The largest unsupervised SimCSE batch that trains on one device with GradCache, with its speed and peak memory.

Each batch size from `--start`, doubling up to `--max-batch-size`, trains `--steps` steps of the real `SimCSE`
LightningModule under a Lightning `Trainer` with `model.mini_batch_size` = `--mini-batch-size` (each sentence twice
in the batch, as unsupervised SimCSE). The search stops at the first batch that runs out of memory. On CUDA the
peak is `torch.cuda.max_memory_allocated` of that batch's steps; on CPU it is the process's peak RSS so far (the
batches grow, so it is the latest one's). The last line is `largest batch: N`.

    python scripts/largest_batch.py --random-init-config bert-base --device cuda --precision 16-mixed \\
        --mini-batch-size 128 --start 1024 --max-batch-size 262144
"""

import argparse
import gc
import resource
import time
import warnings

import torch
from benchmark_model import add_model_arguments, model_directory
from lightning.pytorch import Callback, Trainer
from torch.utils.data import DataLoader

from cse.models.batch import TrainingBatch
from cse.models.simcse import SimCSE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--mini-batch-size", type=int, default=128, help="sentences per GradCache chunk")
    parser.add_argument("--start", type=int, default=512, help="the first batch size tried")
    parser.add_argument("--max-batch-size", type=int, default=2**20, help="stop doubling past this")
    parser.add_argument("--steps", type=int, default=2, help="training steps per batch size (the last one is timed)")
    parser.add_argument("--max-seq-length", type=int, default=32, help="tokens per sentence")
    parser.add_argument("--precision", choices=["32-true", "16-mixed", "bf16-mixed"], default="32-true")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if min(args.mini_batch_size, args.start, args.steps, args.max_seq_length) < 1:
        parser.error("--mini-batch-size, --start, --steps and --max-seq-length must be at least 1")
    if args.precision == "16-mixed" and args.device == "cpu":
        parser.error("--precision 16-mixed needs --device cuda (on CPU use bf16-mixed)")
    return args


def make_batches(count: int, batch_size: int, length: int, vocab_size: int, seed: int = 0) -> list[TrainingBatch]:
    """Unsupervised batches of random ids as cse's collator makes them: (B, 1, L) ids and mask, padded to the longest
    sentence (no text needed: only the memory and speed of the step count here)."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        ids = torch.randint(vocab_size // 10, vocab_size, (batch_size, 1, length), generator=generator)  # no specials
        lengths = torch.randint(length // 2 + 1, length + 1, (batch_size, 1, 1), generator=generator)
        lengths[0] = length  # the longest sentence sets the padded length
        mask = (torch.arange(length) < lengths).long()  # (B, 1, 1) vs (L,) -> (B, 1, L)
        batches.append(TrainingBatch(input_ids=ids * mask, attention_mask=mask))
    return batches


class LastStepTimer(Callback):
    """Seconds of the last training step, the device's queue drained at both ends."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = _now(pl_module.device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seconds = _now(pl_module.device) - self._start


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def train(args: argparse.Namespace, model_dir: str, batch_size: int) -> tuple[float, float]:
    """(seconds of the last step, peak MiB) of `args.steps` steps at `batch_size`; raises OutOfMemoryError."""
    torch.manual_seed(0)
    module = SimCSE(model_dir, pooler_type="cls", mini_batch_size=args.mini_batch_size)
    vocab_size = module.encoder.backbone.config.vocab_size
    batches = make_batches(1, batch_size, args.max_seq_length, vocab_size) * args.steps
    timer = LastStepTimer()
    trainer = Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu",
        devices=1,
        precision=args.precision,
        max_steps=args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None, pin_memory=args.device == "cuda"))
    if args.device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return timer.seconds, peak


def search(args: argparse.Namespace, model_dir: str) -> list[str]:
    """Lines of the table, one per batch size tried, and the result last."""
    lines = [
        f"{args.device}, {args.precision}, length {args.max_seq_length}, GradCache chunks of {args.mini_batch_size} "
        f"sentences x 2 views",
        f"{'batch':>8}{'s/step':>10}{'sentences/s':>13}{'peak MiB':>10}",
    ]
    largest, batch_size = 0, args.start
    while batch_size <= args.max_batch_size:
        try:
            seconds, peak = train(args, model_dir, batch_size)
        except torch.OutOfMemoryError:
            lines.append(f"{batch_size:>8}  out of memory")
            break
        finally:
            gc.collect()
            if args.device == "cuda":
                torch.cuda.empty_cache()
        lines.append(f"{batch_size:>8}{seconds:>10.2f}{batch_size / seconds:>13.0f}{peak:>10.0f}")
        largest, batch_size = batch_size, batch_size * 2
    lines.append(f"largest batch: {largest}" + ("" if largest else " (none fits; lower --start)"))
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module="lightning")  # no val_dataloader, few batches: expected here
    with model_directory(args) as model_dir:
        print("\n".join(search(args, model_dir)), flush=True)


if __name__ == "__main__":
    main()
