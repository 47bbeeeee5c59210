"""The command-line arguments by which `cse encode` and `cse search` name a model and run it."""

import argparse

from cse.errors import InputError
from cse.models.poolers import POOLER_TYPES


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL, `--pooler`, `--batch-size` and `--truncate-dim`; call it before adding the command's other positional
    arguments."""
    parser.add_argument("model", help="a cse export directory, Hugging Face model directory or hub id, or a .ckpt")
    parser.add_argument(
        "--pooler",
        choices=POOLER_TYPES,
        help="how to pool (needed for models made by neither cse nor sentence-transformers, whose Pooling is read)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per forward pass (default 64)")
    parser.add_argument(
        "--truncate-dim",
        type=int,
        metavar="D",
        help="keep the first D dimensions of each embedding (a model trained with Matryoshka, model.matryoshka_dims)",
    )


def check_model_arguments(args: argparse.Namespace) -> None:
    """Raise `InputError` for a `--batch-size` or `--truncate-dim` below 1 (the model's size is checked on loading)."""
    if args.batch_size < 1:
        raise InputError(f"--batch-size: must be at least 1, got {args.batch_size}")
    if args.truncate_dim is not None and args.truncate_dim < 1:
        raise InputError(f"--truncate-dim: must be at least 1, got {args.truncate_dim}")
