"""A whole epoch's time projected from a shorter `cse fit` run's metrics.csv: a wiki1m epoch (15,625 steps with a
validation every 125) does not fit in the GPU time a check gets, a run of 1,000 steps does.

`cse fit` logs `train/steps_per_sec` every `log_every_n_steps` steps, over the wall time since the last logging step
(validations in between included), and each validation's `val/seconds` in the row of its step. Rows count from 0: the
logging step and the validation after optimizer step N are in row N - 1, and that validation's time falls in the next
window. From those rows:
- each window's training time is its wall time less the validations in it; the steady rate is the steps over that
  time, the first window left out (it holds `torch.compile`'s compilation, or the first steps' warm-up);
- the first window's extra time is its training time less its steps at the steady rate;
- a validation costs the mean of the run's `val/seconds` (those that found a new best, which write their checkpoints,
  and the others).

Projected: extra + epoch steps / steady rate + (epoch steps / validation interval) × mean validation.

    python scripts/epoch_projection.py runs/unsup-simcse-bert-base/version_0/metrics.csv
"""

import argparse
import csv
import statistics

WIKI1M_EPOCH_STEPS = 15_625  # 1,000,000 sentences / batch 64
VALIDATION_INTERVAL = 125  # SimCSE's eval_steps


def read_rows(path: str) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(row, train/steps_per_sec) of each logging step and (row, val/seconds) of each validation, in row order."""
    windows, validations = [], []
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            if row.get("train/steps_per_sec"):
                windows.append((int(row["step"]), float(row["train/steps_per_sec"])))
            if row.get("val/seconds"):
                validations.append((int(row["step"]), float(row["val/seconds"])))
    return sorted(windows), sorted(validations)


def project(
    windows: list[tuple[int, float]], validations: list[tuple[int, float]], epoch_steps: int, interval: int
) -> dict[str, float]:
    """The steady rate, the first window's extra seconds, the mean validation and the projected epoch's seconds."""
    if len(windows) < 2 or not validations:
        raise SystemExit("metrics.csv needs two logging steps and a validation at least (a longer run)")
    edges = [-1] + [row for row, _ in windows]  # window k: training rows (edges[k-1], edges[k]]
    training = []  # (steps, seconds) of each window, validations taken out
    for start, (end, rate) in zip(edges, windows, strict=False):
        steps = end - start
        inside = sum(seconds for row, seconds in validations if start <= row < end)
        training.append((steps, steps / rate - inside))
    steady = sum(steps for steps, _ in training[1:]) / sum(seconds for _, seconds in training[1:])
    first_steps, first_seconds = training[0]
    extra = first_seconds - first_steps / steady
    validation = statistics.mean(seconds for _, seconds in validations)
    seconds = extra + epoch_steps / steady + epoch_steps // interval * validation
    return {"steady": steady, "extra": extra, "validation": validation, "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", help="metrics.csv of a cse fit run")
    parser.add_argument("--epoch-steps", type=int, default=WIKI1M_EPOCH_STEPS)
    parser.add_argument("--validation-interval", type=int, default=VALIDATION_INTERVAL)
    args = parser.parse_args(argv)
    figures = project(*read_rows(args.metrics), args.epoch_steps, args.validation_interval)
    print(
        f"steady {figures['steady']:.2f} steps/s between validations; first window {figures['extra']:.1f} s more; "
        f"a validation {figures['validation']:.2f} s on average"
    )
    print(
        f"projected: {args.epoch_steps:,} steps with a validation every {args.validation_interval} in "
        f"{figures['seconds'] / 60:.1f} min, {args.epoch_steps / figures['seconds']:.1f} steps/s over the run"
    )


if __name__ == "__main__":
    main()
