"""Training speed of `cse` against the hand-written PyTorch loop it should not be slower than, and against
sentence-transformers' trainer, in one run.

All sides train unsupervised SimCSE on the same sentences, in the same batches (B sentences, each encoded twice: 2B
rows padded to the same length L_k at step k), with the same model, dtype, learning rate 3e-5 (linear decay, no
warmup, no weight decay), temperature 0.05 and gradient clipping (`--gradient-clip-val`).

Sentences: text made of whole words of the model's vocabulary, one token each, so that a sentence of n words is
n + 2 tokens with [CLS] and [SEP] on every side (checked against the tokenizer before anything runs). In each batch
the lengths are drawn uniformly from L/2 + 1 to L tokens (`--max-seq-length` L) and the first sentence has L, so
every batch is padded to L (rounded up to a multiple of 8 by cse's data module, and so by the floor; not by
sentence-transformers). They are written one per line in the order that makes cse's shuffled sampler yield
exactly these batches; the other sides take the same batches in the same order. A random model
(`--random-init-config`) gets a BERT-style tokenizer whose vocabulary is letter strings.

- cse: what `cse fit` runs. The real `SimCSEDataModule` reads the `.txt` file from a temporary directory (its
  tokenization and cache happen before the clock starts; its per-step work is sampling, collation with padding to
  the batch's longest, pinned memory on CUDA, `--num-workers` workers), and the real `SimCSE` LightningModule
  (`cls` pooler with its MLP) is trained by a Lightning `Trainer` with the callbacks and the CSV logger that
  `cse fit` adds to every run (validation and the progress bar off; `cse fit`'s bar updates at most twice a second):
  device transfer, training_step, backward, clipping, AdamW step, scheduler step, and all of Lightning's and cse's
  per-step work.
- floor: the same model (backbone without its own pooler, [CLS] + the same MLP, same initial weights) as a plain
  loop, getting its batches as a careful hand-written loop would: tokenized once up front (ids and mask; no
  token_type_ids, BERT's default zeros), each batch cut to its longest sentence (as cse pads), from a DataLoader
  with pinned memory on CUDA and `--num-workers` workers; then one forward of the duplicated batch, InfoNCE,
  backward, clipping, AdamW (cse's settings and cse's rule for the fused kernel, `cse.models.optimization.fuses`),
  linear decay.
- sentence-transformers (`--compare-sentence-transformers`, after the other two, in the same process): its
  `SentenceTransformerTrainer` on (anchor, positive) = (s, s) pairs of the same sentences, batches in the same order,
  `MultipleNegativesRankingLoss(scale=20)` (= temperature 0.05), `Transformer` (max_seq_length L) + CLS `Pooling` +
  `Dense(H, H, Tanh)`: the architecture of cse's `cls` pooler with its MLP (BERT's own pooler also runs there, as
  sentence-transformers loads the model with it; its output is unused). As in any run of it, its per-step work
  includes tokenizing both columns in its collator and encoding them in two forward passes of B rows (it merges
  only the columns after the anchor into one pass), clipping, the fused AdamW that its trainer picks, and all of
  the Hugging Face Trainer's per-step work; fp16 for 16-mixed, bf16 for bf16-mixed.

With `--compile MODE` every side compiles its encoder with `torch.compile` in that mode, and cse and the floor pad
every batch to L: cse through `model.compile` and `data.pad_to_max_length` (as `cse fit` does), the floor its
backbone + MLP, sentence-transformers its whole model (`torch_compile_mode`).

cse and the floor alternate in blocks of `--block` steps (cse, floor, cse, ...), so both see the same machine state;
the first `--warmup` steps of each are not timed. A cse block is timed from the end of one floor block to the start of
the next, so everything Lightning does between steps counts against cse. sentence-transformers' blocks are timed
from one block's last `on_step_end` to the next one's. On CUDA the clock waits for the GPU at block edges only. The
last line is `ratio cse/floor: X.XX`, cse's steps/s over the floor's (1.00: no overhead); before it,
`ratio cse/sentence-transformers: X.XX` with `--compare-sentence-transformers`.

The pieces, one module each beside this script: `benchmark_data` (the sentences and each side's batches),
`benchmark_floor` (the hand-written loop), `benchmark_clock` (the alternation and its timings), `benchmark_peer`
(sentence-transformers), `benchmark_model` (`--model` or `--random-init-config`).

    python scripts/benchmark.py --model PATH --steps 20 --batch-size 64 --max-seq-length 32
    python scripts/benchmark.py --model PATH --device cuda --precision 16-mixed --compare-sentence-transformers
    python scripts/benchmark.py --random-init-config bert-base --device cuda --precision bf16-mixed --steps 50
"""

import argparse
import gc
import importlib.util
import resource
import statistics
import tempfile
import typing
import warnings
from pathlib import Path

import torch
from benchmark_clock import Alternate, Timings
from benchmark_data import SEED, floor_loader, make_sentences, sentence_lengths, write_in_sampler_order
from benchmark_floor import AUTOCAST_DTYPES, LEARNING_RATE, TEMPERATURE, FloorLoop
from benchmark_model import add_model_arguments, model_directory
from benchmark_peer import PEER, run_sentence_transformers
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from cse.callbacks.lightning_overhead import NoProfiler, leave_out_unused_hooks
from cse.callbacks.non_finite_guard import NonFiniteGuard
from cse.callbacks.periodic_checkpoint import PeriodicCheckpoint
from cse.callbacks.preemption import PreemptionCheckpoint
from cse.callbacks.rng_state import RngStateCheckpoint
from cse.callbacks.throughput import ThroughputLog
from cse.commands.fit import PERIODIC_CHECKPOINT_STEPS
from cse.data.datamodule import SimCSEDataModule
from cse.models.loading import load_tokenizer
from cse.models.simcse import CompileMode, SimCSE

WIKI1M_EPOCH_STEPS = 15_625  # unsupervised SimCSE: 1,000,000 Wikipedia sentences / batch 64, one epoch


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
    parser.add_argument(
        "--num-workers",
        type=int,
        help="DataLoader worker processes of every side; default 2 on CUDA (as the GPU recipes), 0 on CPU",
    )
    parser.add_argument(
        "--compile",
        choices=typing.get_args(CompileMode),
        help="torch.compile every side's encoder in this mode, batches padded to --max-seq-length (fixed shapes): "
        "cse's `model.compile` and `data.pad_to_max_length`, the floor's backbone + MLP, sentence-transformers' "
        "`torch_compile_mode`; default eager",
    )
    parser.add_argument(
        "--gradient-clip-val",
        type=float,
        default=1.0,
        help="gradient norm clipping of every side, as the shipped recipes and Hugging Face Trainer's default; 0: "
        "none (sentence-transformers' trainer still computes the norm)",
    )
    parser.add_argument(
        "--compare-sentence-transformers",
        action="store_true",
        help=f"also time {PEER}' trainer on the same model, batches and length (needs --model and "
        "sentence-transformers[train])",
    )
    args = parser.parse_args(argv)
    if args.block is None:
        args.block = 5 if args.device == "cuda" else 1
    if args.num_workers is None:
        args.num_workers = 2 if args.device == "cuda" else 0
    if args.precision == "16-mixed" and args.device == "cpu":
        parser.error("--precision 16-mixed needs --device cuda (on CPU use bf16-mixed)")
    if min(args.steps, args.batch_size, args.max_seq_length, args.block) < 1 or args.warmup < 0:
        parser.error("--steps, --batch-size, --max-seq-length and --block must be at least 1, --warmup at least 0")
    if args.num_workers < 0 or args.gradient_clip_val < 0:
        parser.error("--num-workers and --gradient-clip-val must be at least 0")
    if args.compare_sentence_transformers:
        if args.model is None:
            parser.error("--compare-sentence-transformers needs --model (a directory that sentence-transformers loads)")
        if args.device == "cpu" and args.precision != "32-true":
            parser.error("--compare-sentence-transformers on CPU needs --precision 32-true")
        missing = [name for name in ("sentence_transformers", "accelerate") if importlib.util.find_spec(name) is None]
        if missing:
            parser.error(
                f"--compare-sentence-transformers needs {', '.join(missing)}: "
                "pip install 'sentence-transformers[train]'"
            )
    return args


def cse_fit_callbacks(directory: str) -> list[Callback]:
    """The callbacks `cse fit` adds to every run (see `cse.cli`), with its settings; checkpoints go to `directory`.

    Without a dev set the best-model checkpoint has nothing to monitor, as in `cse fit` without `data.dev_file`; both
    checkpoints write `last.ckpt` (the periodic one every `PERIODIC_CHECKPOINT_STEPS` steps), the best-model one also
    at the end, after the clock stops.
    """
    return [
        ModelCheckpoint(directory, save_last=True, enable_version_counter=False),
        PeriodicCheckpoint(
            directory,
            every_n_train_steps=PERIODIC_CHECKPOINT_STEPS,
            save_top_k=0,
            save_last=True,
            enable_version_counter=False,
        ),
        NonFiniteGuard(),
        RngStateCheckpoint(),
        PreemptionCheckpoint(),
        ThroughputLog(),
    ]


def run(args: argparse.Namespace, model_dir: str, run_dir: str) -> tuple[Timings, list[str]]:
    """Time cse and the floor, alternating; returns the timings and the sentences in batch order."""
    warmup_blocks, timed_blocks = -(-args.warmup // args.block), -(-args.steps // args.block)  # rounded up
    steps = (warmup_blocks + timed_blocks) * args.block
    timings = Timings(args.block, warmup_blocks, args.device == "cuda")
    tokenizer = load_tokenizer(model_dir)
    shortest = tokenizer.num_special_tokens_to_add() + 1
    lengths = sentence_lengths(steps, args.batch_size, args.max_seq_length, shortest, seed=SEED)
    sentences = make_sentences(tokenizer, lengths, seed=SEED)
    # One epoch of `steps` batches, as a real epoch spans thousands of steps: the epoch-end work (a checkpoint without
    # a dev set) comes after the last timed step.
    train_file = Path(run_dir) / "sentences.txt"
    write_in_sampler_order(sentences, train_file)
    data = SimCSEDataModule(
        str(train_file),
        tokenizer_name_or_path=model_dir,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        num_workers=args.num_workers,
        pad_to_max_length=args.compile is not None,  # fixed shapes for the compiled graph, as the CLI sets it
        cache_dir=str(Path(run_dir) / "cache"),
        seed=SEED,
    )
    torch.manual_seed(0)
    module = SimCSE(
        model_dir, pooler_type="cls", temp=TEMPERATURE, learning_rate=LEARNING_RATE, compile=args.compile or False
    )
    loader = floor_loader(tokenizer, sentences, args, data.pad_to_multiple_of, data.pad_to_max_length)
    alternate = Alternate(FloorLoop(module, model_dir, loader, args, steps), timings)
    trainer = Trainer(
        accelerator="gpu" if args.device == "cuda" else "cpu",
        devices=1,
        precision=args.precision,
        max_steps=steps,
        gradient_clip_val=args.gradient_clip_val or None,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=CSVLogger(run_dir),  # writes train/loss and train/lr every 50 steps, as in `cse fit`
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[alternate, *cse_fit_callbacks(str(Path(run_dir) / "checkpoints"))],
        profiler=NoProfiler(),  # as `cse fit`, with its per-step hooks left out below
    )
    leave_out_unused_hooks(trainer.callbacks, module)
    trainer.fit(module, datamodule=data)
    return timings, sentences


def report(args: argparse.Namespace, model: str, timings: Timings) -> list[str]:
    """The table; the last line is the ratio of steps/s of cse over the floor."""
    rate = {side: timings.block * len(times) / sum(times) for side, times in timings.block_times.items()}
    timed = timings.block * len(timings.block_times["cse"])
    warmup = timings.block * timings.warmup_blocks
    threads = "" if timings.cuda else f", {torch.get_num_threads()} threads"
    lines = [
        f"model {model}, {args.device}{threads}, {args.precision}, batch {args.batch_size} sentences x 2 views, "
        f"length {args.max_seq_length}, {args.num_workers} workers, clipping {args.gradient_clip_val:g}; {timed} "
        f"timed steps of each after {warmup} warm-up, in blocks of {args.block}",
        f"{'':22}{'steps/s':>10}{'mean ms':>10}{'median ms':>11}" + (f"{'peak MiB':>10}" if timings.cuda else ""),
    ]
    for side, times in timings.block_times.items():
        memory = f"{timings.peak_bytes[side] / 2**20:>10.0f}" if timings.cuda else ""
        mean, median = (1000 * function(times) / timings.block for function in (statistics.mean, statistics.median))
        lines.append(f"{side:22}{rate[side]:>10.2f}{mean:>10.1f}{median:>11.1f}{memory}")
    after = f"; {PEER} alone after them" if PEER in rate else ""
    if timings.cuda:
        lines.append(
            f"peak MiB: CUDA memory allocated during each side's steps; cse and floor resident together{after}"
        )
    else:
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        lines.append(f"peak RSS of the process: {peak_rss:.0f} MiB (cse and floor resident together{after})")
    minutes = WIKI1M_EPOCH_STEPS / rate["cse"] / 60
    lines.append(f"cse: {WIKI1M_EPOCH_STEPS:,} steps (one wiki1m epoch at batch 64) would take {minutes:.1f} min")
    if PEER in rate:
        lines.append(f"ratio cse/{PEER}: {rate['cse'] / rate[PEER]:.2f}")
    lines.append(f"ratio cse/floor: {rate['cse'] / rate['floor']:.2f}")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module="lightning")  # no val_dataloader, few batches: expected here
    with model_directory(args) as model_dir, tempfile.TemporaryDirectory() as run_dir:
        timings, sentences = run(args, model_dir, run_dir)
        if args.compare_sentence_transformers:
            gc.collect()  # cse's and the floor's models and optimizer states are gone before the peer's are made
            if timings.cuda:
                torch.cuda.empty_cache()
            run_sentence_transformers(args, model_dir, run_dir, timings, sentences)
    print("\n".join(report(args, args.model or f"random {args.random_init_config}", timings)), flush=True)


if __name__ == "__main__":
    main()
