"""`cse label OUTPUT --cross-encoder CE (--pairs FILE | --sentences FILE.txt --sampling S)`: Augmented SBERT's silver
data (Thakur et al., NAACL 2021): unlabelled sentence pairs scored by a cross-encoder, written as scored pairs
`sent0, sent1, score` that `cse fit` trains on (CoSENT, the default loss for scored pairs).

The pairs come from a file `cse fit` reads as pairs (`--pairs`), or are sampled from a corpus of one sentence per line
(`--sentences`) by `cse.inference.pair_sampling`: random, BM25 or embedding top-K partners per sentence. Either way a
pair and its reverse are one pair, self pairs are left out (texts compared by `normalize_text`), and the
cross-encoder scores each remaining pair once; with `--pairs`, one `warning:` line counts the given pairs that
comparison changed (left out, or written with the spelling of a text's first occurrence), and with `--sentences`
one counts the sentences left out as repeats that differ from an earlier one only in case or spaces, when there are
any.
OUTPUT (`.csv`, `.tsv` or `.jsonl`) is written through a temporary file renamed into place: an interrupted run leaves
the previous file, or none; an OUTPUT that is a symbolic link keeps it, the file it leads to replaced.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info

from cse.commands.mine import read_corpus
from cse.commands.pair_files import FORMATS, checked_output, pair_columns
from cse.data.text_file import csv_line
from cse.data.text_identity import normalize_text
from cse.data.training_data import announce_warnings, load_examples
from cse.errors import InputError
from cse.inference.api import load_model
from cse.inference.cross_encoder import load_cross_encoder, score_pairs
from cse.inference.pair_sampling import SAMPLINGS, bm25_pairs, embedding_pairs, random_pairs, unique_pairs
from cse.models.poolers import POOLER_TYPES
from cse.whole_file import written_whole

COLUMNS = ("sent0", "sent1", "score")
DEFAULT_PER_SENTENCE = 3  # top_k of the reference scripts (sentence-transformers, examples/training/data_augmentation)


def build_parser() -> argparse.ArgumentParser:
    """`cse label OUTPUT --cross-encoder CE (--pairs FILE | --sentences FILE.txt --sampling S [--per-sentence K])`."""
    parser = argparse.ArgumentParser(
        prog="cse label",
        description="Score sentence pairs with a cross-encoder (Augmented SBERT's silver data). Writes scored pairs "
        "sent0,sent1,score that cse fit trains on with CoSENT.",
    )
    parser.add_argument("output", help="the scored pairs to write: .csv, .tsv or .jsonl")
    parser.add_argument(
        "--cross-encoder", required=True, help="a sentence-transformers CrossEncoder: local directory or hub id"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="pairs (or sentences) per forward pass (default 32)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", help="pairs to score, in any format cse fit reads (other columns are ignored)")
    source.add_argument("--sentences", help="a .txt corpus, one sentence per line, to sample pairs from")
    parser.add_argument("--columns", help='with --pairs: the two text columns, e.g. \'{"sent0": "q", "sent1": "a"}\'')
    parser.add_argument(
        "--on-bad-rows", choices=("error", "skip"), default="error", help="with --pairs (default error)"
    )
    sampling = parser.add_argument_group("sampling pairs from --sentences (Augmented SBERT §3)")
    sampling.add_argument("--sampling", choices=SAMPLINGS, help="random partners, BM25 top-K or embedding top-K")
    sampling.add_argument(
        "--per-sentence", type=int, help=f"K: partners per sentence (default {DEFAULT_PER_SENTENCE}, as the reference)"
    )
    sampling.add_argument("--model", help="with --sampling embedding: the bi-encoder (cse export, HF model, .ckpt)")
    sampling.add_argument(
        "--pooler",
        choices=POOLER_TYPES,
        help="the bi-encoder's pooling, for models not made by cse or sentence-transformers",
    )
    sampling.add_argument("--seed", type=int, default=0, help="with --sampling random (default 0)")
    sampling.add_argument("--backend", choices=("auto", "faiss", "torch"), default="auto", help="embedding search")
    return parser


def run(argv: list[str]) -> None:
    started = time.perf_counter()
    args = build_parser().parse_args(argv)
    _check_arguments(args)
    output = checked_output(Path(args.output), [args.pairs, args.sentences], "scored pairs")
    if args.pairs is not None:
        columns = pair_columns(args.columns, ("first text", "second text"))
        first, second = read_pairs(args.pairs, columns, args.on_bad_rows)
        texts, candidates = first + second, list(zip(range(len(first)), range(len(first), 2 * len(first)), strict=True))
    else:
        sentences = read_corpus(Path(args.sentences))
        texts = _unique_texts(sentences)
        announce_normalized_sentences(args.sentences, sentences, texts)
        candidates = sample_pairs(texts, args)
    pairs = unique_text_pairs(texts, candidates)
    source = args.pairs or args.sentences
    if args.pairs is not None:
        announce_normalized_pairs(source, texts, candidates, pairs)
    if not pairs:
        raise InputError(f"{source}: nothing to label (no pair of two different sentences)")
    if FORMATS[output.suffix] is not None and any("\n" in text for pair in pairs for text in pair):
        raise InputError(f"{source}: a text holds a line break, which a .csv or .tsv row cannot; write .jsonl")
    model = load_cross_encoder(args.cross_encoder)
    scores = score_pairs(model, pairs, args.batch_size, progress=sys.stderr.isatty())
    write_scored_pairs(pairs, scores.tolist(), output)
    seconds = time.perf_counter() - started
    print(
        f"labelled {len(pairs):,} pairs ({len(candidates) - len(pairs):,} repeated or self pairs left out) from "
        f"{source} with {args.cross_encoder} in {seconds:.1f} s; scores mean {scores.mean():.4f}, min "
        f"{scores.min():.4f}, max {scores.max():.4f}; wrote {output}",
        flush=True,
    )


def read_pairs(source: str, columns: dict[str, str] | None, on_bad_rows: str) -> tuple[list[str], list[str]]:
    """The two texts of every row of a pairs file, read as `cse fit` reads training data."""
    try:
        examples = load_examples(source, columns, on_bad_rows=on_bad_rows)
    except InputError as error:
        raise InputError(str(error).replace("data.columns", "--columns")) from None
    announce_warnings(examples)
    if "sent1" not in examples.mapping.sources:
        raise InputError(
            f"pairs {source}: one text column ('{examples.mapping.sources['sent0']}'); name two with --columns "
            "or sample pairs from it with --sentences"
        )
    return list(examples.dataset["sent0"]), list(examples.dataset["sent1"])


def sample_pairs(sentences: list[str], args: argparse.Namespace) -> list[tuple[int, int]]:
    """Pairs of rows of `sentences` by `args.sampling`, `args.per_sentence` partners per sentence."""
    k = args.per_sentence
    if args.sampling == "random":
        return random_pairs(len(sentences), k, args.seed)
    if args.sampling == "bm25":
        return bm25_pairs(sentences, k)
    return embedding_pairs(load_model(args.model, args.pooler), sentences, k, args.batch_size, args.backend)


def unique_text_pairs(texts: list[str], pairs: list[tuple[int, int]]) -> list[tuple[str, str]]:
    """The text pairs of `pairs` (rows of `texts`), each once whichever way round, none of a text with itself."""
    ids: dict[str, int] = {}
    key = [ids.setdefault(normalize_text(text), len(ids)) for text in texts]  # row -> id of its normalized text
    kept = unique_pairs((key[i], key[j]) for i, j in pairs)
    first_row = {identity: row for row, identity in reversed(list(enumerate(key)))}
    return [(texts[first_row[i]], texts[first_row[j]]) for i, j in kept]


def announce_normalized_pairs(
    source: str, texts: list[str], candidates: list[tuple[int, int]], pairs: list[tuple[str, str]]
) -> None:
    """One `warning:` line when comparing texts by `normalize_text` changed given pairs: of the pairs that comparing
    them as written would keep, those left out (the same text twice, or a repeat) and those written with the
    spelling of a text's first occurrence; nothing when it changed none."""
    ids: dict[str, int] = {}
    key = [ids.setdefault(text, len(ids)) for text in texts]  # row -> id of its exact text
    spelled = list(ids)  # id -> text
    as_written = [(spelled[i], spelled[j]) for i, j in unique_pairs((key[i], key[j]) for i, j in candidates)]
    written = {frozenset(pair) for pair in pairs}
    kept_as_given = sum(frozenset(pair) in written for pair in as_written)
    left_out, respelled = len(as_written) - len(pairs), len(pairs) - kept_as_given
    if left_out or respelled:
        rank_zero_info(
            f"warning: pairs {source}: texts compared case- and space-insensitively changed {left_out + respelled:,} "
            f"pairs: {left_out:,} left out (the same text twice, or a repeat) and {respelled:,} written with the "
            "spelling of a text's first occurrence"
        )


def announce_normalized_sentences(source: str, sentences: list[str], texts: list[str]) -> None:
    """One `warning:` line when comparing sentences by `normalize_text` left out some that an exact comparison keeps
    (`texts` are `sentences` without repeats by `normalize_text`); nothing when it left out none."""
    left_out = len(set(sentences)) - len(texts)
    if left_out:
        rank_zero_info(
            f"warning: sentences {source}: sentences compared case- and space-insensitively left out {left_out:,} "
            "that differ from an earlier one only in case or spaces (the first spelling is kept)"
        )


def write_scored_pairs(pairs: list[tuple[str, str]], scores: list[float], output: Path) -> None:
    """Rows `sent0, sent1, score` into a temporary file renamed onto `output`; scores written exactly (repr)."""
    delimiter = FORMATS[output.suffix]
    try:
        with written_whole(output) as temporary, temporary.open("w", encoding="utf-8", newline="") as file:
            if delimiter is not None:
                file.write(csv_line(COLUMNS, delimiter))
            for (first, second), score in zip(pairs, scores, strict=True):
                if delimiter is None:
                    row = {"sent0": first, "sent1": second, "score": score}
                    file.write(json.dumps(row, ensure_ascii=False) + "\n")
                else:
                    file.write(csv_line((first, second, repr(score)), delimiter))
    except OSError as error:
        raise InputError(f"output {output}: write failed ({error.strerror or error})") from None


def _check_arguments(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise InputError(f"--batch-size: must be at least 1, got {args.batch_size}")
    if args.pairs is not None:
        for name in ("sampling", "per_sentence", "model", "pooler"):
            if getattr(args, name) is not None:
                raise InputError(f"--{name.replace('_', '-')}: only with --sentences; --pairs are scored as they are")
        return
    if args.columns is not None:
        raise InputError("--columns: only with --pairs; --sentences is one sentence per line")
    if args.sampling is None:
        raise InputError(f"--sentences: needs --sampling ({', '.join(SAMPLINGS)})")
    args.per_sentence = DEFAULT_PER_SENTENCE if args.per_sentence is None else args.per_sentence
    if args.per_sentence < 1:
        raise InputError(f"--per-sentence: must be at least 1, got {args.per_sentence}")
    if (args.sampling == "embedding") != (args.model is not None):
        raise InputError(
            f"--model: the bi-encoder of --sampling embedding, and only of it; got --sampling {args.sampling}"
            + ("" if args.model else " without --model")
        )


def _unique_texts(sentences: list[str]) -> list[str]:
    """`sentences` without repeats by `normalize_text`, the first of each kept."""
    first: dict[str, str] = {}
    for sentence in sentences:
        first.setdefault(normalize_text(sentence), sentence)
    return list(first.values())
