"""`cse mine MODEL PAIRS OUTPUT`: hard negatives for (anchor, positive) pairs, written as triplets `cse fit` trains on.

PAIRS is any file `cse fit` reads as pairs (`sent0`, `sent1`; `--columns` maps others). Candidates are the pairs'
positives and the sentences of `--corpus` (one per line), as in sentence-transformers' `mine_hard_negatives`; the rank
window, filters and choice are `cse.inference.hard_negatives`'. OUTPUT (`.csv`, `.tsv` or `.jsonl`) holds one row
`sent0, sent1, hard_neg` per negative, so a pair with N negatives is N triplets; a pair left without one is left out.
The pairs of an anchor come together and share its negatives, each distinct pair once, as in sentence-transformers.
It is written through a temporary file renamed into place: an interrupted run leaves the previous file, or none; an
OUTPUT that is a symbolic link keeps it, the file it leads to replaced.
"""

import argparse
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info

from cse.commands.model_arguments import add_model_arguments, check_model_arguments
from cse.commands.pair_files import FORMATS, checked_output, pair_columns
from cse.data.text_file import check_text_file, csv_line, iter_lines
from cse.data.training_data import announce_warnings, load_examples
from cse.errors import InputError
from cse.inference.api import load_model
from cse.inference.hard_negatives import HardNegativeMiner, MinedPair, MiningCounts, MiningSettings
from cse.whole_file import written_whole


def build_parser() -> argparse.ArgumentParser:
    """`cse mine MODEL PAIRS OUTPUT [--corpus FILE] [--range-min N] [--range-max N] [--margin M] ...`."""
    parser = argparse.ArgumentParser(
        prog="cse mine",
        description="Mine hard negatives for (anchor, positive) pairs: corpus sentences the model ranks near the "
        "anchor, less similar than the positive. Writes triplets sent0,sent1,hard_neg that cse fit trains on.",
        epilog="The options mean what sentence-transformers' mine_hard_negatives (output_format='triplet') means by "
        "them, --margin its absolute_margin, except: the anchor itself is never a negative; texts are compared "
        "normalized (case, spacing, NFKC); --num-negatives is 1 by default (there 3); random draws follow --seed, "
        "not Python's global random; similarity is cosine, with no query or document prompts (README, 'Hard "
        "negatives from your model').",
    )
    add_model_arguments(parser)
    parser.add_argument("pairs", help="pairs in any format cse fit reads (.csv, .tsv, .jsonl, .json, .parquet, ...)")
    parser.add_argument("output", help="the triplets to write: .csv, .tsv or .jsonl (one row per negative)")
    parser.add_argument(
        "--corpus", help="candidate sentences besides the pairs' positives, one per line (.txt); default: none"
    )
    parser.add_argument(
        "--columns", help='which columns are anchor and positive, e.g. \'{"sent0": "q", "sent1": "a"}\''
    )
    parser.add_argument(
        "--on-bad-rows",
        choices=("error", "skip"),
        default="error",
        help="a bad row stops the run (error, default) or is left out (skip)",
    )
    window = parser.add_argument_group(
        "which candidates (cosine similarity s- to the anchor, s+ of the anchor's lowest positive)"
    )
    window.add_argument(
        "--range-min", type=int, default=0, help="skip this many of the candidates that pass the filters (default 0)"
    )
    window.add_argument(
        "--range-max",
        type=int,
        help="consider ranks below this; default: range-min + num-negatives (x10 with --margin, --relative-margin or "
        "--max-score) + the most pairs an anchor has, as sentence-transformers",
    )
    window.add_argument("--num-negatives", type=int, default=1, help="negatives per pair at most (default 1)")
    window.add_argument("--margin", type=float, help="keep s- <= s+ - MARGIN (0: never above the positive)")
    window.add_argument("--relative-margin", type=float, help="keep s- <= s+ - |s+| x R (0.05: 95%% of the positive)")
    window.add_argument("--max-score", type=float, help="keep s- <= MAX_SCORE")
    window.add_argument("--min-score", type=float, help="keep s- >= MIN_SCORE")
    window.add_argument("--sampling-strategy", choices=("top", "random"), default="top", help="default top")
    window.add_argument("--seed", type=int, default=0, help="seed of random sampling (default 0)")
    parser.add_argument("--output-scores", action="store_true", help="add columns positive_score, negative_score")
    parser.add_argument(
        "--chunk-size", type=int, default=16384, help="anchors (and corpus sentences) at a time (default 16384)"
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "faiss", "torch"),
        default="auto",
        help="exact search: faiss when installed (auto, default) or torch",
    )
    return parser


def run(argv: list[str]) -> None:
    started = time.perf_counter()
    args = build_parser().parse_args(argv)
    check_model_arguments(args)
    settings = MiningSettings(**{key: getattr(args, key) for key in MiningSettings.__dataclass_fields__})
    settings.check(lambda name: "--" + name.replace("_", "-"))
    if args.chunk_size < 1:
        raise InputError(f"--chunk-size: must be at least 1, got {args.chunk_size}")
    output = checked_output(Path(args.output), [args.pairs, args.corpus], "triplets")
    columns = pair_columns(args.columns, ("anchor", "positive"))
    anchors, positives = read_pairs(args.pairs, columns, args.on_bad_rows)
    if FORMATS[output.suffix] is not None:
        _check_one_line(args.pairs, anchors, positives)
    corpus = [*read_corpus(Path(args.corpus)), *positives] if args.corpus else positives
    model = load_model(args.model, args.pooler, truncate_dim=args.truncate_dim)
    progress = sys.stderr.isatty()
    miner = HardNegativeMiner(model, corpus, settings, args.batch_size, args.chunk_size, args.backend, progress)
    write_triplets(miner.mine(anchors, positives), output, args.output_scores)
    print(summary(miner.counts, len(miner.corpus), time.perf_counter() - started, output), flush=True)


def read_pairs(source: str, columns: dict[str, str] | None, on_bad_rows: str) -> tuple[list[str], list[str]]:
    """Anchors and positives of a pairs file, read as `cse fit` reads training data; other columns are ignored (a
    warning says so for hard negatives, which the output replaces)."""
    try:
        examples = load_examples(source, columns, on_bad_rows=on_bad_rows)
    except InputError as error:
        raise InputError(str(error).replace("data.columns", "--columns")) from None
    announce_warnings(examples)
    mapping = examples.mapping.sources
    if "score" in mapping:
        raise InputError(
            f"pairs {source}: scored pairs (score column '{mapping['score']}'), not (anchor, positive) pairs; to mine "
            f'for them anyway, name the two texts: --columns \'{{"sent0": "{mapping["sent0"]}", "sent1": '
            f'"{mapping["sent1"]}"}}\''
        )
    if "sent1" not in mapping:
        raise InputError(
            f"pairs {source}: one text column ('{mapping['sent0']}'); mining needs (anchor, positive) pairs: "
            'name both with --columns \'{"sent0": ANCHOR, "sent1": POSITIVE}\''
        )
    if "hard_neg" in mapping:
        rank_zero_info(
            f"warning: pairs {source}: its hard negatives (column '{mapping['hard_neg']}') are not kept; the output "
            "holds the mined ones instead"
        )
    return list(examples.dataset["sent0"]), list(examples.dataset["sent1"])


def read_corpus(path: Path) -> list[str]:
    """The non-blank lines of a `.txt` corpus, stripped."""
    if path.suffix != ".txt":
        raise InputError(f"corpus {path}: must be a .txt file, one sentence per line")
    check_text_file(path, what="corpus")
    sentences = [line.strip() for line in iter_lines(path) if line.strip()]
    if not sentences:
        raise InputError(f"corpus {path}: no sentences (only blank lines)")
    return sentences


def write_triplets(pairs: Iterable[MinedPair], output: Path, scores: bool = False) -> None:
    """One row per negative, written as the pairs come, into a temporary file renamed onto `output` at the end.

    Raises:
        InputError: no pair got a negative (nothing is written), or the file cannot be written.
    """
    delimiter = FORMATS[output.suffix]
    columns = ("sent0", "sent1", "hard_neg", *(("positive_score", "negative_score") if scores else ()))
    rows = 0
    try:
        with written_whole(output) as temporary:
            with temporary.open("w", encoding="utf-8", newline="") as file:
                if delimiter is not None:
                    file.write(csv_line(columns, delimiter))
                for pair in pairs:
                    for negative, score in pair.negatives:
                        values = (pair.anchor, pair.positive, negative)
                        values += (f"{pair.positive_score:.6f}", f"{score:.6f}") if scores else ()
                        if delimiter is None:
                            row = _typed(dict(zip(columns, values, strict=True)))
                            file.write(json.dumps(row, ensure_ascii=False) + "\n")
                        else:
                            file.write(csv_line(values, delimiter))
                        rows += 1
            if rows == 0:  # nothing is renamed onto the output
                raise InputError(
                    "no pair got a hard negative, so nothing was written: widen the window (--range-max), lower "
                    "--range-min, or loosen the filters (--margin, --relative-margin, --max-score, --min-score)"
                )
    except OSError as error:
        raise InputError(f"output {output}: write failed ({error.strerror or error})") from None


def summary(counts: MiningCounts, corpus_size: int, seconds: float, output: Path) -> str:
    """The last line `cse mine` prints: pairs read and given negatives, mean scores, what the filters refused."""
    without = counts.pairs - counts.pairs_with_negatives
    line = (
        f"mined {counts.negatives:,} hard negatives for {counts.pairs_with_negatives:,} of {counts.pairs:,} pairs "
        f"({without:,} without one) from {corpus_size:,} corpus sentences in {seconds:.1f} s; mean cosine: positives "
        f"{counts.positive_score_sum / counts.pairs:.4f}, negatives {counts.negative_score_sum / counts.negatives:.4f}"
    )
    refused = {name: count for name, count in counts.refused.items() if count}
    if refused:
        each = ", ".join(f"--{name.replace('_', '-')} {count:,}" for name, count in refused.items())
        line += f"; candidates refused: {each}"
    return line + f"; wrote {output}"


def _typed(row: dict[str, str]) -> dict[str, str | float]:
    """A JSON row with its scores as numbers."""
    return {key: float(value) if key.endswith("_score") else value for key, value in row.items()}


def _check_one_line(source: str, anchors: list[str], positives: list[str]) -> None:
    for number, (anchor, positive) in enumerate(zip(anchors, positives, strict=True), start=1):
        if "\n" in anchor or "\n" in positive:
            raise InputError(
                f"pairs {source} pair {number}: a text holds a line break, which a .csv or .tsv row cannot; "
                "write the triplets as .jsonl"
            )
