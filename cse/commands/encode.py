"""`cse encode MODEL INPUT.txt OUTPUT.npy`: embed one sentence per line into a float32 array (N, H), or (N, D) with
`--truncate-dim D`.

OUTPUT is checked before the model is loaded (its folder exists, it is not a directory nor an input) and written
whole through a temporary file renamed into place; an OUTPUT that is a symbolic link is written through: the file it
leads to is replaced, in its own folder, and the link stays.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from cse.commands.model_arguments import add_model_arguments, check_model_arguments
from cse.commands.output_file import check_output_file
from cse.commands.sentence_lines import read_sentence_lines
from cse.errors import InputError
from cse.inference.api import load_model
from cse.whole_file import written_whole


def build_parser() -> argparse.ArgumentParser:
    """`cse encode MODEL INPUT.txt OUTPUT.npy [--pooler P] [--normalize] [--batch-size N] [--truncate-dim D]`."""
    parser = argparse.ArgumentParser(
        prog="cse encode",
        description="Embed a text file, one sentence per line, into a .npy array (row i = line i + 1).",
    )
    add_model_arguments(parser)
    parser.add_argument("input", help="UTF-8 text file, one sentence per line")
    parser.add_argument("output", help="the .npy file to write: float32 (N, H), or (N, D) with --truncate-dim")
    parser.add_argument("--normalize", action="store_true", help="L2-normalise each embedding (after truncation)")
    return parser


def run(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    check_model_arguments(args)
    output = Path(args.output)
    if output.suffix != ".npy":
        raise InputError(f"output {output}: must end in .npy")
    check_output_file(output, "output", [args.model, args.input], "embeddings")
    sentences = read_sentence_lines(args.input, "input")
    model = load_model(args.model, args.pooler, truncate_dim=args.truncate_dim)
    embeddings = model.encode(
        sentences, batch_size=args.batch_size, normalize=args.normalize, progress=sys.stderr.isatty()
    )
    save_array(embeddings, output)
    print(f"wrote {output}: {embeddings.shape[0]} x {embeddings.shape[1]} float32", flush=True)


def save_array(array: np.ndarray, path: Path) -> None:
    """`np.save` through a temporary file renamed into place: a crash never leaves a truncated .npy."""
    try:
        with written_whole(path) as temporary, temporary.open("wb") as file:
            np.save(file, array)
    except OSError as error:
        raise InputError(f"output {path}: write failed ({error.strerror or error})") from None
