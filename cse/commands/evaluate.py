"""`cse eval MODEL`: SimCSE's evaluation (Gao et al., 2021, §B and Appendix E) on SentEval's data.

Mirrors SimCSE's `evaluation.py`: `--mode test` reports STS12–16 (the `all` setting), STS-B and SICK-R test sets
and the transfer tasks' test accuracy; `--mode dev` reports the STS-B and SICK-R dev sets (and the transfer
tasks' dev accuracy), for model selection. Embeddings come from the same loader and encoder as validation in
training (`cse.inference.loading`), and STS-B/SICK-R are read by the same reader.
"""

import argparse
import json
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

from cse.commands.output_file import check_output_file
from cse.errors import InputError
from cse.evaluation.data_dir import resolve_data_dir
from cse.evaluation.probe import FOLDS
from cse.evaluation.sts import Correlation, StsResult, score_sts_task
from cse.evaluation.sts_tasks import SPLIT_FILES, STS_TASKS, STS_YEARS, read_sts_task
from cse.evaluation.table import format_sts_details, format_table, format_transfer_details, sts_scores, transfer_scores
from cse.evaluation.transfer import TransferResult, check_folds, evaluate_transfer_task
from cse.evaluation.transfer_tasks import TRANSFER_TASKS, read_transfer_task
from cse.inference.arguments import default_device
from cse.inference.loading import encode_sentences, load_encoder
from cse.models.poolers import POOLER_TYPES
from cse.whole_file import written_whole

TASK_NAMES = {
    "sts12": "STS12",
    "sts13": "STS13",
    "sts14": "STS14",
    "sts15": "STS15",
    "sts16": "STS16",
    "stsb": "STSBenchmark",
    "sickr": "SICKRelatedness",
    "mr": "MR",
    "cr": "CR",
    "subj": "SUBJ",
    "mpqa": "MPQA",
    "sst2": "SST2",
    "trec": "TREC",
    "mrpc": "MRPC",
}
TASK_SETS = {"sts": STS_TASKS, "transfer": TRANSFER_TASKS, "full": STS_TASKS + TRANSFER_TASKS}
PAPER_ORDER = STS_TASKS + TRANSFER_TASKS
# SentEval's own names are accepted too, in any case (`STSBenchmark`, `SICKRelatedness`, as SimCSE's --tasks).
TASK_LOOKUP = {**TASK_NAMES, **{task.lower(): task for task in PAPER_ORDER}}
FOLDS_BY_MODE = {"test": FOLDS, "dev": 5}  # SimCSE's evaluation.py: kfold 10 in test (full) mode, 5 in dev (fast) mode


def build_parser() -> argparse.ArgumentParser:
    """The `cse eval` arguments; `--help` describes each."""
    parser = argparse.ArgumentParser(
        prog="cse eval",
        description=(
            "Evaluate sentence embeddings as SimCSE does (Gao et al., 2021): STS tasks by Spearman's r x 100 of "
            "cosine similarities (STS12-16 in the 'all' setting), transfer tasks by the accuracy x 100 of a "
            "logistic-regression probe with SentEval's protocol. Prints the paper's tables and per-subset figures."
        ),
    )
    parser.add_argument("model", help="a Hugging Face model directory (e.g. a cse export), a hub id, or a cse .ckpt")
    parser.add_argument(
        "--pooler",
        choices=POOLER_TYPES,
        help="how to pool, as in training; needed for models made by neither cse nor sentence-transformers (whose "
        "Pooling module is read); leave out for .ckpt files (cls on a model without pooler weights is an error)",
    )
    tasks = parser.add_mutually_exclusive_group()
    tasks.add_argument(
        "--tasks",
        help=f"comma-separated tasks among {','.join(TASK_NAMES)} (default: the 'sts' task set)",
    )
    tasks.add_argument(
        "--task-set",
        choices=tuple(TASK_SETS),
        help="sts: STS12-16, STS-B, SICK-R; transfer: MR, CR, SUBJ, MPQA, SST2, TREC, MRPC; full: both "
        "(in dev mode, sts means STS-B and SICK-R)",
    )
    parser.add_argument(
        "--mode",
        choices=("test", "dev"),
        default="test",
        help="test: the paper's test figures; dev: STS-B and SICK-R dev sets (STS12-16 have none) and transfer dev "
        "accuracy, for model selection (default: test)",
    )
    parser.add_argument(
        "--data-dir",
        default="SentEval/data",
        help="SentEval's data directory or its downstream/ subdirectory: STS/STS12-en-test/..., "
        "STS/STSBenchmark/sts-{dev,test}.csv, SICK/SICK_{trial,test_annotated}.txt, MR/, CR/, SUBJ/, MPQA/, "
        "SST/binary/, TREC/, MRPC/ (default: SentEval/data)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help='write all figures (x 100) to this file: {"scores": {table header: Spearman x 100, ..., "Avg.": ...}, '
        '"transfer_scores": {...}, "sts": per-subset details, "transfer": per-task details}; in an existing folder, '
        "outside the model and data directories (a symbolic link is kept, the file it leads to written)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per forward pass (default: 64)")
    parser.add_argument(
        "--max-length",
        type=int,
        help="truncate sentences to this many tokens (default: the model's limit only, as SimCSE's evaluation; "
        "a sentence-transformers directory's max_seq_length)",
    )
    return parser


def run(argv: list[str]) -> None:
    """`cse eval MODEL [--pooler P] [--tasks ...|--task-set ...] [--mode test|dev] [--data-dir DIR] [--json OUT]`."""
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise InputError(f"--batch-size: must be at least 1, got {args.batch_size}")
    if args.max_length is not None and args.max_length < 2:
        raise InputError(f"--max-length: must be at least 2 (room for the special tokens), got {args.max_length}")
    if args.json is not None:  # before the evaluation, not after it; never over the model or the data
        check_output_file(args.json, "--json", [args.model, args.data_dir], "report")
    tasks = select_tasks(args.tasks, args.task_set, args.mode)
    data_dir = resolve_data_dir(args.data_dir)
    # Read every file before loading the model: a missing or malformed file fails in seconds, not after an hour.
    sts_data = {task: read_sts_task(data_dir, task, args.mode) for task in tasks if task in STS_TASKS}
    transfer_data = {task: read_transfer_task(data_dir, task) for task in tasks if task in TRANSFER_TASKS}
    for task, splits in transfer_data.items():
        check_folds(task, splits, FOLDS_BY_MODE[args.mode])

    encoder, tokenizer = load_encoder(args.model, args.pooler, args.max_length)
    device = default_device()  # CUDA, else Apple's MPS, else the CPU
    embed = partial(encode_sentences, encoder, tokenizer, batch_size=args.batch_size, device=device)
    sts_results: dict[str, StsResult] = {}
    for task, subsets in sts_data.items():
        _progress(f"{task}: {sum(len(pairs) for pairs in subsets.values())} pairs")
        sts_results[task] = score_sts_task(subsets, embed)
    transfer_results: dict[str, TransferResult] = {}
    for task, splits in transfer_data.items():
        _progress(f"{task}: embedding and fitting the probe")
        transfer_results[task] = evaluate_transfer_task(task, splits, embed, FOLDS_BY_MODE[args.mode])

    report = build_report(sts_results, transfer_results, args.mode)
    print(f"------ {args.mode} ------")
    if sts_results:
        print(format_sts_details(sts_results))
        print(format_table(report["scores"]))
    if transfer_results:
        print(format_transfer_details(transfer_results))
        print(format_table(report["transfer_scores"]))
    if args.json is not None:
        report = {
            "model": str(args.model),
            "pooler": args.pooler,
            "mode": args.mode,
            "data_dir": str(data_dir),
            **report,
        }
        _write_json(args.json, report)


def select_tasks(tasks: str | None, task_set: str | None, mode: str) -> list[str]:
    """Task headers in the paper's order, from `--tasks` or `--task-set` (default `sts`) and `--mode`."""
    if tasks is None:
        selected = TASK_SETS[task_set or "sts"]
        return [task for task in selected if mode == "test" or task not in STS_YEARS]
    names = [name.strip().lower() for name in tasks.split(",") if name.strip()]
    unknown = [name for name in names if name not in TASK_LOOKUP]
    if unknown or not names:
        raise InputError(
            f"--tasks {tasks}: unknown task {', '.join(unknown) or '(none)'}; choose from {','.join(TASK_NAMES)}"
        )
    selected = {TASK_LOOKUP[name] for name in names}
    if mode == "dev" and selected & set(STS_YEARS):
        years = ", ".join(sorted(name for name in names if TASK_LOOKUP[name] in STS_YEARS))
        raise InputError(
            f"--tasks {tasks}: {years} have test data only; --mode dev evaluates "
            f"{', '.join(name for name, task in TASK_NAMES.items() if task in SPLIT_FILES)} and the transfer tasks"
        )
    return [task for task in PAPER_ORDER if task in selected]


def build_report(
    sts_results: dict[str, StsResult], transfer_results: dict[str, TransferResult], mode: str
) -> dict[str, dict]:
    """Everything `--json` writes besides the run's settings; figures ×100."""
    return {
        "scores": sts_scores(sts_results),
        "transfer_scores": transfer_scores(transfer_results, mode),
        "sts": {
            task: {
                "subsets": {
                    subset: {**_correlation_percent(correlation), "pairs": result.sizes[subset]}
                    for subset, correlation in result.subsets.items()
                },
                "all": _correlation_percent(result.all),
                "mean": _correlation_percent(result.mean),
                "wmean": _correlation_percent(result.wmean),
            }
            for task, result in sts_results.items()
        },
        "transfer": {task: asdict(result) for task, result in transfer_results.items()},
    }


def _correlation_percent(correlation: Correlation) -> dict[str, float]:
    return {"spearman": 100 * correlation.spearman, "pearson": 100 * correlation.pearson}


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _write_json(path: Path, report: dict) -> None:
    try:
        with written_whole(path) as temporary:
            temporary.write_text(json.dumps(report, indent=2) + "\n")
    except OSError as error:
        raise InputError(f"--json {path}: write failed ({error.strerror or error})") from None
