"""`cse sweep --config RECIPE --seeds 1,2,3 [cse fit arguments]`: the same recipe once per seed, and one table.

Each seed trains in its own run folder, `SWEEP_DIR/seed_S/version_N/`, one after another (or, with `--print-jobs`,
as the printed `cse fit` commands run by separate jobs, gathered with `--collect SWEEP_DIR`). Then the table (per seed
the best STS-B dev Spearman and its step, optionally `cse eval` scores; mean and sample std, ddof=1) is written as
`results.md` and `results.csv`, the seeds' validation curves as `validation_curves.png`, and the best seed's best
checkpoint is exported to `SWEEP_DIR/best_model/` with the table and the plot in its model card. A rerun continues:
finished seeds are kept, interrupted ones resume from their `last.ckpt`, missing ones start.
"""

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from cse.callbacks.non_finite_guard import NonFiniteLossError
from cse.commands import evaluate
from cse.commands.fit import run_lightning_cli
from cse.errors import InputError, one_line
from cse.export.checkpoint import export_checkpoint
from cse.runs.layout import BEST_MODEL_DIR
from cse.runs.validation_curve import curve_png
from cse.sweep.fit_arguments import check_fit_arguments, seed_fit_arguments
from cse.sweep.results import SweepTable, card_section, markdown, write_csv
from cse.sweep.seed_runs import EVAL_FILE, SeedResult, find_seed_run, read_seed_result, seeds_in

SETTINGS_FILE = "sweep.json"  # the sweep's cse fit arguments: a rerun must give the same ones
CURVES_FILE = "validation_curves.png"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cse sweep",
        description="Train one recipe once per seed and report the best STS-B dev Spearman of each, their mean and "
        "sample standard deviation (ddof=1). Arguments it does not know are cse fit's (--config ... first).",
        allow_abbrev=False,
    )
    parser.add_argument("--seeds", help="comma-separated seeds, e.g. 1,2,3 (each is the run's seed_everything)")
    parser.add_argument("--sweep-dir", type=Path, default=Path("runs/sweep"), help="default: runs/sweep")
    parser.add_argument("--print-jobs", action="store_true", help="print one cse fit command per seed, run none")
    parser.add_argument("--collect", type=Path, metavar="SWEEP_DIR", help="only gather the finished seeds' table")
    parser.add_argument("--eval-tasks", help="also cse eval each seed's best model on these tasks (e.g. stsb,sickr)")
    parser.add_argument("--eval-mode", choices=("test", "dev"), default="test", help="cse eval --mode (default test)")
    parser.add_argument("--eval-data-dir", default="SentEval/data", help="cse eval --data-dir (default SentEval/data)")
    return parser


def run(argv: list[str]) -> None:
    args, fit_args = build_parser().parse_known_args(argv)
    if args.eval_tasks:
        evaluate.select_tasks(args.eval_tasks, None, args.eval_mode)  # a bad task name: one line, before training
    if args.collect is not None:
        if args.seeds or fit_args or args.print_jobs:
            raise InputError("--collect SWEEP_DIR: takes no --seeds, --print-jobs or cse fit arguments")
        if not args.collect.is_dir():
            raise InputError(f"--collect {args.collect}: no such sweep folder")
        report(args.collect, seeds_in(args.collect), args)
        return
    seeds = parse_seeds(args.seeds)
    check_fit_arguments(fit_args, sequential=not args.print_jobs)
    record_settings(args.sweep_dir, fit_args)
    if args.print_jobs:
        print_jobs(args.sweep_dir, seeds, fit_args)
        return
    failed = {}
    for seed in seeds:
        failure = train_seed(args.sweep_dir, seed, fit_args)
        if failure:
            failed[seed] = failure
    report(args.sweep_dir, sorted(set(seeds) | set(seeds_in(args.sweep_dir))), args)
    if failed:
        lines = "; ".join(f"seed {seed}: {reason}" for seed, reason in failed.items())
        raise InputError(f"{len(failed)} of {len(seeds)} seeds failed ({lines}); rerun the same command to retry them")


def parse_seeds(text: str | None) -> list[int]:
    """`1,2,3` -> [1, 2, 3]: distinct integers, in the order given."""
    try:
        seeds = [int(part) for part in (text or "").split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--seeds {text}: expected comma-separated integers, e.g. 1,2,3") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds {text}: expected distinct comma-separated integers, e.g. 1,2,3")
    return seeds


def record_settings(sweep_dir: Path, fit_args: list[str]) -> None:
    """Write the fit arguments into `sweep.json`, or check that a rerun gives the same ones."""
    path = sweep_dir / SETTINGS_FILE
    if path.is_file():
        recorded = json.loads(path.read_text(encoding="utf-8")).get("fit_args")
        if recorded != fit_args:
            raise InputError(
                f"{sweep_dir}: its seeds were trained with other cse fit arguments ({shlex.join(recorded or [])}); "
                "give the same ones to continue it, or choose another --sweep-dir"
            )
        return
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"fit_args": fit_args}, indent=2) + "\n", encoding="utf-8")


def print_jobs(sweep_dir: Path, seeds: list[int], fit_args: list[str]) -> None:
    """One `cse fit` line per unfinished seed; each resumes its own last.ckpt when rerun (requeued)."""
    for seed in seeds:
        state = find_seed_run(sweep_dir, seed)
        if state.state == "finished":
            print(f"# seed {seed}: finished in {state.run_dir}")
        else:
            print(shlex.join(["cse", "fit", *seed_fit_arguments(fit_args, sweep_dir, seed)]))
    print(f"# when they have finished: cse sweep --collect {shlex.quote(str(sweep_dir))}")


def train_seed(sweep_dir: Path, seed: int, fit_args: list[str]) -> str | None:
    """Train (or resume) `seed` unless it has finished; the reason it failed as one line, else None.

    Bad settings and a GPU out of memory stop the sweep (every seed would meet them again); so do SIGTERM and Ctrl-C,
    after saying what is kept.
    """
    state = find_seed_run(sweep_dir, seed)
    if state.state == "finished":
        print(f"seed {seed}: finished in {state.run_dir}, kept", flush=True)
        return None
    action = "resuming its last.ckpt" if state.state == "interrupted" else "training"
    print(f"seed {seed}: {action}", flush=True)
    try:
        run_lightning_cli(["fit", *seed_fit_arguments(fit_args, sweep_dir, seed)])
    except (InputError, MisconfigurationException, argparse.ArgumentError, torch.OutOfMemoryError):
        raise
    except (SIGTERMException, KeyboardInterrupt):
        print(
            f"sweep interrupted in seed {seed}: its last.ckpt and the finished seeds are kept; rerun to continue",
            file=sys.stderr,
            flush=True,
        )
        raise
    except (NonFiniteLossError, RuntimeError, OSError) as error:
        print(f"seed {seed} failed: {one_line(error)}", file=sys.stderr, flush=True)
        return one_line(error, 200)
    return None


def report(sweep_dir: Path, seeds: list[int], args: argparse.Namespace) -> SweepTable | None:
    """Evaluate (once) and tabulate the finished seeds, draw their curves, export the best; say what is missing."""
    results: list[SeedResult] = []
    for seed in seeds:
        state = find_seed_run(sweep_dir, seed)
        if state.state != "finished":
            print(f"seed {seed}: {state.state}, not in the table", file=sys.stderr, flush=True)
            continue
        if args.eval_tasks:
            evaluate_seed(state.run_dir, args)
        results.append(read_seed_result(state))
    if not results:
        raise InputError(f"{sweep_dir}: no finished seed to report")
    table = SweepTable.of(results)
    (sweep_dir / "results.md").write_text(markdown(table) + "\n", encoding="utf-8")
    write_csv(table, sweep_dir / "results.csv")
    png = curve_png({f"seed {result.seed}": result.curve for result in table.results}, "STS-B dev, by seed")
    if png is not None:
        (sweep_dir / CURVES_FILE).write_bytes(png)
    best = table.best
    eval_json = best.run_dir / EVAL_FILE
    export_checkpoint(
        best.run_dir,
        sweep_dir / BEST_MODEL_DIR,
        eval_json=eval_json if eval_json.is_file() else None,
        overwrite=True,
        appendix=card_section(table, CURVES_FILE if png is not None else None),
        extra_files={CURVES_FILE: png} if png is not None else None,
    )
    print(markdown(table))
    print(
        f"results: {sweep_dir / 'results.md'}, {sweep_dir / 'results.csv'}; best model (seed {best.seed}): "
        f"{sweep_dir / BEST_MODEL_DIR}",
        flush=True,
    )
    return table


def evaluate_seed(run_dir: Path, args: argparse.Namespace) -> None:
    """`cse eval` of the seed's exported best model into `sweep_eval.json`, unless done with the same settings."""
    path = run_dir / EVAL_FILE
    settings = {"tasks": args.eval_tasks, "mode": args.eval_mode, "data_dir": str(args.eval_data_dir)}
    if path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("sweep") == settings:
        return
    model = run_dir / BEST_MODEL_DIR
    staged = run_dir / f".{EVAL_FILE}"
    evaluate.run(
        [
            str(model),
            "--tasks",
            args.eval_tasks,
            "--mode",
            args.eval_mode,
            "--data-dir",
            str(args.eval_data_dir),
            "--json",
            str(staged),
        ]
    )
    content = json.loads(staged.read_text(encoding="utf-8"))
    staged.write_text(json.dumps({**content, "sweep": settings}, indent=2) + "\n", encoding="utf-8")
    staged.replace(path)
