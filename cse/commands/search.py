r"""`cse search MODEL CORPUS.txt QUERIES.txt`: the nearest corpus sentences of each query, as TSV on stdout.

Columns: `query`, `rank` (1 = most similar), `score` (cosine similarity), `line` (the corpus line number) and
`sentence`; a header first. Fields holding a tab, a quote or a carriage return are quoted as in CSV (a lone `\r`
is text of its corpus line, and unquoted, CSV readers would end the row there).
"""

import argparse
import sys

from cse.commands.model_arguments import add_model_arguments, check_model_arguments
from cse.commands.sentence_lines import read_sentence_lines
from cse.inference.api import load_model
from cse.inference.arguments import cosine_threshold, positive_int

COLUMNS = ("query", "rank", "score", "line", "sentence")
QUOTE, QUOTED = '"', ("\t", '"', "\r", "\n")


def build_parser() -> argparse.ArgumentParser:
    """`cse search MODEL CORPUS.txt QUERIES.txt [--top-k K] [--threshold T] [--pooler P] [--batch-size N]
    [--truncate-dim D]`."""
    parser = argparse.ArgumentParser(
        prog="cse search",
        description="Find the corpus sentences most similar to each query (cosine similarity), as TSV on stdout.",
    )
    add_model_arguments(parser)
    parser.add_argument("corpus", help="UTF-8 text file, one sentence per line")
    parser.add_argument("queries", help="UTF-8 text file, one query per line")
    parser.add_argument("--top-k", type=int, default=10, help="neighbours per query (default 10)")
    parser.add_argument(
        "--threshold", type=float, help="keep only neighbours with cosine similarity >= T, a number in [-1, 1]"
    )
    return parser


def run(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    positive_int(args.top_k, "--top-k")
    cosine_threshold(args.threshold, "--threshold")
    check_model_arguments(args)
    corpus = read_sentence_lines(args.corpus, "corpus")
    queries = read_sentence_lines(args.queries, "queries")
    model = load_model(args.model, args.pooler, truncate_dim=args.truncate_dim)
    model.build_index(corpus, batch_size=args.batch_size, progress=sys.stderr.isatty())
    results = model.search(queries, top_k=args.top_k, threshold=args.threshold, batch_size=args.batch_size)
    sys.stdout.write(tsv_row(COLUMNS))
    for query, hits in zip(queries, results, strict=True):
        for rank, hit in enumerate(hits, start=1):
            sys.stdout.write(tsv_row((query, rank, f"{hit.score:.6f}", hit.corpus_id + 1, hit.sentence)))
    sys.stdout.flush()


def tsv_row(fields: tuple) -> str:
    r"""One TSV line: a field holding a tab, quote, `\r` or `\n` is quoted, its quotes doubled, as CSV readers expect.

    (`csv.writer` with `lineterminator="\n"` would leave a `\r` unquoted.)
    """
    texts = (str(field) for field in fields)
    return "\t".join(f'"{t.replace(QUOTE, QUOTE * 2)}"' if any(c in t for c in QUOTED) else t for t in texts) + "\n"
