"""Supervised SimCSE in `cse` next to sentence-transformers' MultipleNegativesRankingLoss, same data and budget.

Both train the same model on the same (anchor, positive, hard negative) triplets for the same number of steps,
batch size, learning rate (linear decay, no warmup, no weight decay, clipping 1.0), temperature 0.05 = scale 20,
max length and seed, in fp32; both are scored by `cse`'s STS evaluation on the same dev file (final model, no
model selection). Needs `pip install accelerate` for sentence-transformers' trainer.

    python scripts/compare_sentence_transformers.py --model PATH --train-file nli.csv --dev-file sts-dev.csv
"""

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch.nn.functional as F
from scipy.stats import spearmanr

from cse.data.scored_pairs import read_scored_pairs
from cse.inference.loading import encode_sentences, load_encoder


def sts_spearman(model_dir: str, dev_file: str, pooler: str) -> float:
    """STS Spearman ×100 of a Hugging Face directory, pooled as in training."""
    encoder, tokenizer = load_encoder(model_dir, pooler)
    pairs = read_scored_pairs(dev_file)
    first = encode_sentences(encoder, tokenizer, pairs.sentence1)
    second = encode_sentences(encoder, tokenizer, pairs.sentence2)
    return 100 * spearmanr(F.cosine_similarity(first, second).numpy(), pairs.scores).statistic


def train_cse(args: argparse.Namespace, out: Path) -> tuple[str, float]:
    command = [
        sys.executable,
        "-m",
        "cse",
        "fit",
        "--config",
        "sup-simcse-bert-base",
        "--model.model_name_or_path",
        args.model,
        "--model.pooler_type",
        args.pooler,
        "--model.learning_rate",
        str(args.lr),
        "--data.train_file",
        args.train_file,
        "--data.dev_file",
        args.dev_file,
        "--data.batch_size",
        str(args.batch_size),
        "--data.max_seq_length",
        str(args.max_seq_length),
        "--data.cache_dir",
        str(out / "cache"),
        "--trainer.max_steps",
        str(args.steps),
        "--trainer.val_check_interval",
        str(args.steps),
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger.init_args.save_dir",
        str(out / "runs"),
        "--seed_everything",
        str(args.seed),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"cse fit failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1].split("best model: ")[-1], seconds


def train_sentence_transformers(args: argparse.Namespace, out: Path) -> tuple[str, float]:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    with open(args.train_file, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    data = Dataset.from_dict({name: [row[name] for row in rows] for name in ("sent0", "sent1", "hard_neg")})
    model = SentenceTransformer(args.model, device="cpu")
    model.max_seq_length = args.max_seq_length
    training = SentenceTransformerTrainingArguments(
        output_dir=str(out / "st"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        seed=args.seed,
        dataloader_drop_last=True,
        save_strategy="no",
        report_to=[],
        logging_steps=args.steps,
        use_cpu=True,
    )
    loss = MultipleNegativesRankingLoss(model, scale=1 / 0.05)
    start = time.perf_counter()
    SentenceTransformerTrainer(model=model, args=training, train_dataset=data, loss=loss).train()
    seconds = time.perf_counter() - start
    model.save(str(out / "st-model"))
    return str(out / "st-model"), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Hugging Face / sentence-transformers model directory")
    parser.add_argument("--train-file", required=True, help="csv with sent0,sent1,hard_neg (SimCSE's NLI layout)")
    parser.add_argument("--dev-file", required=True, help="STS dev file (STS-B SentEval layout or headered)")
    parser.add_argument("--pooler", default="avg", help="pooler of both models (avg = sentence-transformers' mean)")
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5.0e-5)
    parser.add_argument("--max-seq-length", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        before = sts_spearman(args.model, args.dev_file, args.pooler)
        cse_dir, cse_seconds = train_cse(args, out)
        st_dir, st_seconds = train_sentence_transformers(args, out)
        rows = [
            ("before training", before, None),
            ("cse (InfoNCE, hard negatives)", sts_spearman(cse_dir, args.dev_file, args.pooler), cse_seconds),
            ("sentence-transformers MNRL", sts_spearman(st_dir, args.dev_file, args.pooler), st_seconds),
        ]
    print(f"{args.steps} steps, batch {args.batch_size}, lr {args.lr}, seed {args.seed}, length {args.max_seq_length}")
    print(f"{'model':<32} {'STS dev Spearman':>16} {'train seconds':>14}")
    for name, spearman, seconds in rows:
        print(f"{name:<32} {spearman:>16.2f} {'' if seconds is None else f'{seconds:.0f}':>14}")


if __name__ == "__main__":
    main()
