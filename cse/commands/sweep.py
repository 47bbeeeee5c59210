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
import re
import shlex
import sys
from pathlib import Path

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from cse.callbacks.non_finite_guard import NonFiniteLossError
from cse.commands import evaluate
from cse.commands.fit import run_lightning_cli
from cse.config.seed_range import SEED_MAX, SEED_MIN, check_seed
from cse.errors import InputError, first_line, one_line
from cse.export.checkpoint import export_checkpoint
from cse.runs.checkpoint_file import load_checkpoint
from cse.runs.layout import BEST_MODEL_DIR, CONFIG_FILE, METRICS_FILE
from cse.runs.resume import newest_last_checkpoint
from cse.runs.validation_curve import curve_png
from cse.sweep.fit_arguments import (
    SEED_FOLDER,
    RecordedArgumentsError,
    changed_settings,
    check_fit_arguments,
    seed_fit_arguments,
)
from cse.sweep.results import SweepTable, card_section, markdown, write_csv
from cse.sweep.seed_runs import EVAL_FILE, SeedResult, find_seed_run, read_seed_result, seeds_in
from cse.whole_file import written_whole

SETTINGS_FILE = "sweep.json"  # the sweep's cse fit arguments: a rerun must give the same ones
CURVES_FILE = "validation_curves.png"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cse sweep",
        description="Train one recipe once per seed and report the best STS-B dev Spearman of each, their mean and "
        "sample standard deviation (ddof=1). Arguments it does not know are cse fit's (--config ... first).",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--seeds",
        help=f"comma-separated seeds in {SEED_MIN}..{SEED_MAX}, e.g. 1,2,3 (each is the run's seed_everything)",
    )
    parser.add_argument("--sweep-dir", type=Path, default=Path("runs/sweep"), help="default: runs/sweep")
    parser.add_argument("--print-jobs", action="store_true", help="print one cse fit command per seed, run none")
    parser.add_argument("--collect", type=Path, metavar="SWEEP_DIR", help="only gather the finished seeds' table")
    parser.add_argument("--eval-tasks", help="also cse eval each seed's best model on these tasks (e.g. stsb,sickr)")
    parser.add_argument("--eval-mode", choices=("test", "dev"), default="test", help="cse eval --mode (default test)")
    parser.add_argument("--eval-data-dir", default="SentEval/data", help="cse eval --data-dir (default SentEval/data)")
    return parser


def run(argv: list[str]) -> None:
    args, fit_args = build_parser().parse_known_args(attached_seeds(argv))
    if args.eval_tasks:
        evaluate.select_tasks(args.eval_tasks, None, args.eval_mode)  # a bad task name: one line, before training
    if args.collect is not None:
        if args.seeds or fit_args or args.print_jobs:
            raise InputError("--collect SWEEP_DIR: takes no --seeds, --print-jobs or cse fit arguments")
        if not args.collect.is_dir():
            raise InputError(f"--collect {args.collect}: no such sweep folder")
        seeds = seeds_in(args.collect)
        unreadable = report(args.collect, seeds, args)
        if unreadable:
            raise InputError(_failures(unreadable, len(seeds), "the table holds the others"))
        return
    seeds = parse_seeds(args.seeds)
    check_fit_arguments(fit_args, sequential=not args.print_jobs)
    if args.sweep_dir.exists() and not args.sweep_dir.is_dir():
        raise InputError(f"--sweep-dir {args.sweep_dir}: is a file; give a folder (made if missing)")
    made_here, recorded_here = not args.sweep_dir.exists(), not (args.sweep_dir / SETTINGS_FILE).exists()
    record_settings(args.sweep_dir, fit_args)
    if args.print_jobs:
        print_jobs(args.sweep_dir, seeds, fit_args)
        return
    failed = {}
    try:
        for seed in seeds:
            failure = train_seed(args.sweep_dir, seed, fit_args)
            if failure:
                failed[seed] = failure
    except (InputError, MisconfigurationException, argparse.ArgumentError):
        if recorded_here and not seeds_in(args.sweep_dir):  # cse fit refused the settings: nothing was trained
            (args.sweep_dir / SETTINGS_FILE).unlink()  # with it kept, the corrected rerun would be refused
            if made_here and not any(args.sweep_dir.iterdir()):
                args.sweep_dir.rmdir()
        raise
    failed |= report(args.sweep_dir, seeds, args)
    if failed:
        raise InputError(_failures(failed, len(seeds), "rerun the same command to retry them"))


def attached_seeds(argv: list[str]) -> list[str]:
    """`argv` with `--seeds -1,2` written `--seeds=-1,2`, so that `parse_seeds` names the seed out of range.

    argparse takes a value that starts with `-` and is not one number (`-1,2`) for an option, and would answer
    `--seeds: expected one argument`.
    """
    for index, (arg, value) in enumerate(zip(argv, argv[1:], strict=False)):
        if arg == "--seeds" and re.fullmatch(r"-\d[\d,\s-]*", value):
            return [*argv[:index], f"--seeds={value}", *argv[index + 2 :]]
    return argv


def parse_seeds(text: str | None) -> list[int]:
    """`1,2,3` -> [1, 2, 3]: distinct integers that seed_everything accepts (0 to 2**32 - 1), in the order given."""
    try:
        seeds = [int(part) for part in (text or "").split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--seeds {text}: expected comma-separated integers, e.g. 1,2,3") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds {text}: expected distinct comma-separated integers, e.g. 1,2,3")
    return [check_seed(seed, f"--seeds {text}") for seed in seeds]


def record_settings(sweep_dir: Path, fit_args: list[str]) -> None:
    """Write the fit arguments into `sweep.json`, or check that a rerun gives the same ones."""
    path = sweep_dir / SETTINGS_FILE
    if path.is_file():
        recorded = recorded_fit_args(path)
        try:
            changed = changed_settings(recorded, fit_args)
        except RecordedArgumentsError as error:  # the given arguments' own errors are theirs, not sweep.json's
            raise InputError(
                f"{path}: {error} ({shlex.join(recorded)}); restore what it names, or choose another --sweep-dir"
            ) from None
        if changed:
            raise InputError(
                f"{sweep_dir}: its seeds were trained with other cse fit arguments ({shlex.join(recorded)}; "
                f"{'; '.join(changed)}); give the same ones to continue it, or choose another --sweep-dir"
            )
        return
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as temporary:
        temporary.write_text(json.dumps({"fit_args": fit_args}, indent=2) + "\n", encoding="utf-8")


def recorded_fit_args(path: Path) -> list[str]:
    """The `fit_args` list of a `sweep.json`; a one-line `InputError` naming the file when it is damaged."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = f"not valid JSON ({first_line(error)})"
    else:
        fit_args = content.get("fit_args") if isinstance(content, dict) else None
        if isinstance(fit_args, list) and all(isinstance(arg, str) for arg in fit_args):
            return fit_args
        problem = 'no "fit_args" list of strings'
    raise InputError(
        f"{path}: {problem}; it records the sweep's cse fit arguments: restore it, or delete it and rerun with the "
        f"same cse fit arguments as its seeds (in each seed's {CONFIG_FILE})"
    )


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
    if state.state == "interrupted":
        folder = sweep_dir / SEED_FOLDER.format(seed=seed)
        try:  # what `--ckpt_path last` resumes; a damaged one would stop the sweep as a bad setting
            load_checkpoint(newest_last_checkpoint(folder), metadata_only=True)
        except InputError as error:
            reason = f"{error}; delete {folder} to train this seed from the start"
            print(f"seed {seed} failed: {reason}", file=sys.stderr, flush=True)
            return reason
    action = "resuming its last.ckpt" if state.state == "interrupted" else "training"
    print(f"seed {seed}: {action}", flush=True)
    try:
        run_lightning_cli(["fit", *seed_fit_arguments(fit_args, sweep_dir, seed)])
    except (InputError, MisconfigurationException, argparse.ArgumentError, torch.OutOfMemoryError):
        raise
    except (SIGTERMException, KeyboardInterrupt):
        print(
            f"sweep interrupted in seed {seed}: its last.ckpt and the finished seeds are kept; run this cse sweep "
            "command again to continue (it resumes the seed itself: no --ckpt_path)",
            file=sys.stderr,
            flush=True,
        )
        raise
    except (NonFiniteLossError, RuntimeError, OSError) as error:
        print(f"seed {seed} failed: {one_line(error)}", file=sys.stderr, flush=True)
        return one_line(error, 200)
    return None


def report(sweep_dir: Path, seeds: list[int], args: argparse.Namespace) -> dict[int, str]:
    """Evaluate (once) and tabulate the finished seeds of `seeds`, draw their curves, export the best; say what is
    missing. The seeds whose results cannot be read (a damaged metrics.csv, only NaN validations), with why."""
    others = sorted(set(seeds_in(sweep_dir)) - set(seeds))
    if others:
        print(
            f"{sweep_dir} also holds {', '.join(SEED_FOLDER.format(seed=seed) for seed in others)}, not in --seeds: "
            f"not in the table (cse sweep --collect {shlex.quote(str(sweep_dir))} tabulates every seed)",
            file=sys.stderr,
            flush=True,
        )
    results: list[SeedResult] = []
    unreadable: dict[int, str] = {}
    for seed in seeds:
        state = find_seed_run(sweep_dir, seed)
        if state.state != "finished":
            print(f"seed {seed}: {state.state}, not in the table", file=sys.stderr, flush=True)
            continue
        if args.eval_tasks:
            evaluate_seed(state.run_dir, args)
        try:
            result = read_seed_result(state)
        except InputError as error:
            unreadable[seed] = f"{error}; mend it, or delete {state.run_dir.parent} to train this seed again"
            print(f"seed {seed}: {unreadable[seed]}; not in the table", file=sys.stderr, flush=True)
            continue
        if result.incomplete_metrics_line is not None:
            print(
                f"seed {seed}: line {result.incomplete_metrics_line} of {state.run_dir / METRICS_FILE}, its last, is "
                "incomplete (the run stopped while writing it): left out",
                file=sys.stderr,
                flush=True,
            )
        results.append(result)
    if not results:
        reasons = "".join(f"; seed {seed}: {reason}" for seed, reason in unreadable.items())
        raise InputError(f"{sweep_dir}: no finished seed to report{reasons}")
    table = SweepTable.of(results)
    with written_whole(sweep_dir / "results.md") as temporary:
        temporary.write_text(markdown(table) + "\n", encoding="utf-8")
    with written_whole(sweep_dir / "results.csv") as temporary:
        write_csv(table, temporary)
    png = curve_png({f"seed {result.seed}": result.curve for result in table.results}, "STS-B dev, by seed")
    if png is not None:
        with written_whole(sweep_dir / CURVES_FILE) as temporary:
            temporary.write_bytes(png)
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
    return unreadable


def _failures(failed: dict[int, str], seeds: int, advice: str) -> str:
    """The sweep's last line when seeds failed: each seed's reason, then what to do."""
    reasons = "; ".join(f"seed {seed}: {reason}" for seed, reason in failed.items())
    return f"{len(failed)} of {seeds} seeds failed ({reasons}); {advice}"


def evaluate_seed(run_dir: Path, args: argparse.Namespace) -> None:
    """`cse eval` of the seed's exported best model into `sweep_eval.json`, unless done with the same settings."""
    path = run_dir / EVAL_FILE
    settings = {"tasks": args.eval_tasks, "mode": args.eval_mode, "data_dir": str(args.eval_data_dir)}
    if path.is_file() and _evaluated_with(path) == settings:
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


def _evaluated_with(path: Path) -> object:
    """The settings a `sweep_eval.json` was evaluated with; None when damaged, so that the seed is evaluated again."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return content.get("sweep") if isinstance(content, dict) else None
