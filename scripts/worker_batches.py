"""CPU time that the training process spends per batch taken from DataLoader workers: each tensor of the batch in
its own storage (as collated) against cse's one storage per dtype (`cse.data.one_storage`), in one run, alternating.

The loader is the real training loader of `SimCSEDataModule` (tokenized sentences, its sampler and collator, its
pinned memory on CUDA). Between two batches the training process sleeps `--step-ms`, standing for a training step,
so that the workers stay ahead as in a real run. Counted is the CPU time of the training process's threads over the
loop (`time.process_time`: the batch's unpickling, with a handshake with the worker per storage under torch's
default sharing strategy, and on CUDA the pin-memory thread's pinning), not the workers'. On a GPU, whose eager step
is bound by host time, that is time taken from the step: the pin-memory thread holds the GIL that the training loop
needs.

    python scripts/worker_batches.py --batch-size 64 --max-seq-length 32
    python scripts/worker_batches.py --model PATH --mlm-probability 0.15 --rounds 5
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from benchmark_data import make_sentences, sentence_lengths
from benchmark_model import word_tokenizer
from transformers import BertConfig

from cse.data.datamodule import SimCSEDataModule
from cse.models.loading import load_tokenizer

LAYOUTS = ("per tensor", "per dtype")  # storages of a batch: as collated; cse's


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", help="a Hugging Face model directory, for its tokenizer; default a BERT-style tokenizer of words"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch")
    parser.add_argument("--max-seq-length", type=int, default=32, help="tokens of the longest sentence of a batch")
    parser.add_argument("--mlm-probability", type=float, help="also collate MLM inputs and labels (2 more tensors)")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers (the GPU recipes' 2)")
    parser.add_argument("--batches", type=int, default=200, help="timed batches per round and layout")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each layout once per round")
    parser.add_argument("--step-ms", type=float, default=5.0, help="sleep between two batches, milliseconds")
    args = parser.parse_args(argv)
    if min(args.batch_size, args.max_seq_length, args.num_workers, args.batches, args.rounds) < 1:
        parser.error("--batch-size, --max-seq-length, --num-workers, --batches and --rounds must be at least 1")
    if args.step_ms <= 0:
        parser.error("--step-ms must be positive")
    return args


def cpu_per_batch(datamodule: SimCSEDataModule, layout: str, batches: int, step_ms: float) -> float:
    """Milliseconds of this process's CPU time per batch taken, the workers' batches in `layout`."""
    loader = datamodule.train_dataloader()
    if layout == LAYOUTS[0]:
        loader.collate_fn = loader.collate_fn.collate  # the batches as collated
    iterator = iter(loader)
    next(iterator)  # workers started
    time.sleep(1.0)  # and ahead
    start = time.process_time()
    for _ in range(batches):
        time.sleep(step_ms / 1000)
        next(iterator)
    seconds = time.process_time() - start
    del iterator
    return 1000 * seconds / batches


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        if args.model is None:  # a tokenizer of BERT-base's vocabulary size, with the config that loading reads
            config = BertConfig()
            config.save_pretrained(directory)
            word_tokenizer(config.vocab_size, config.max_position_embeddings).save_pretrained(directory)
        tokenizer_dir = args.model or directory
        tokenizer = load_tokenizer(tokenizer_dir)
        shortest = tokenizer.num_special_tokens_to_add() + 1
        lengths = sentence_lengths(args.batches + 1, args.batch_size, args.max_seq_length, shortest)  # (batches, B)
        train_file = Path(directory) / "sentences.txt"
        train_file.write_text("".join(f"{sentence}\n" for sentence in make_sentences(tokenizer, lengths)))
        datamodule = SimCSEDataModule(
            str(train_file),
            tokenizer_name_or_path=tokenizer_dir,
            batch_size=args.batch_size,
            max_seq_length=args.max_seq_length,
            mlm_probability=args.mlm_probability,
            num_workers=args.num_workers,
            cache_dir=str(Path(directory) / "cache"),
            seed=0,
        )
        datamodule.setup("fit")
        tensors = len(next(iter(datamodule.train_dataloader())))
        cpu: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
        for _ in range(args.rounds):
            for layout in LAYOUTS:
                cpu[layout].append(cpu_per_batch(datamodule, layout, args.batches, args.step_ms))
    pinned = "pinned memory" if torch.cuda.is_available() else "no pinned memory (no CUDA)"
    print(
        f"batch {args.batch_size} x length {args.max_seq_length}, {tensors} tensors per batch, {args.num_workers} "
        f"workers, {pinned}; {args.step_ms:g} ms between batches; {args.batches} batches x {args.rounds} "
        "rounds per layout"
    )
    print(f"{'storages':22}{'CPU ms per batch (median of rounds)':>38}   rounds")
    for layout, values in cpu.items():
        rounds = " ".join(f"{value:.3f}" for value in values)
        print(f"{layout:22}{statistics.median(values):>38.3f}   {rounds}")
    saved = statistics.median(cpu[LAYOUTS[0]]) - statistics.median(cpu[LAYOUTS[1]])
    print(f"saved per batch by one storage per dtype: {saved:.3f} ms")


if __name__ == "__main__":
    main()
