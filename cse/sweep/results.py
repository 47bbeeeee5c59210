"""A sweep's table: per seed its best STS-B dev Spearman (and step), `cse eval` scores and speed, then the mean and
the sample standard deviation (ddof=1) over seeds; as Markdown, CSV, and the section of the best model's card.

Spearman ×100 as the paper prints it. The spread over seeds is what tells a change from noise: SimCSE's authors
report about 2 points between seeds of unsupervised BERT-base (princeton-nlp/SimCSE issue #63).
"""

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

from cse.runs.validation_curve import PLOT_INSTALL_HINT
from cse.sweep.seed_runs import SeedResult

DEV_COLUMN = "STS-B dev"
STD = "std (ddof=1)"


@dataclass(frozen=True)
class SweepTable:
    """Columns of scores ×100 (`STS-B dev`, then `cse eval` tasks) and steps/s, per seed; the best seed's index."""

    results: list[SeedResult]
    columns: list[str]

    @classmethod
    def of(cls, results: list[SeedResult]) -> "SweepTable":
        tasks = list(dict.fromkeys(task for result in results for task in result.eval_scores))
        return cls(sorted(results, key=lambda result: result.seed), [DEV_COLUMN, *tasks, "steps/s"])

    def values(self, result: SeedResult) -> dict[str, float | None]:
        """One seed's row: Spearman ×100 (eval scores are ×100 already) and steps/s."""
        row: dict[str, float | None] = {DEV_COLUMN: 100 * result.best_spearman}
        row |= {task: result.eval_scores.get(task) for task in self.columns[1:-1]}
        return row | {"steps/s": result.steps_per_sec}

    def mean(self) -> dict[str, float | None]:
        return {column: _statistic(statistics.fmean, self._column(column)) for column in self.columns}

    def std(self) -> dict[str, float | None]:
        """Sample standard deviation (ddof=1); None with fewer than two seeds."""
        return {column: _statistic(statistics.stdev, self._column(column), least=2) for column in self.columns}

    @property
    def best(self) -> SeedResult:
        """The seed of the highest best STS-B dev Spearman (the first of equal ones)."""
        return max(self.results, key=lambda result: result.best_spearman)

    def _column(self, column: str) -> list[float]:
        return [value for result in self.results if (value := self.values(result)[column]) is not None]


def markdown(table: SweepTable) -> str:
    """The table as Markdown: a row per seed, then mean and std (ddof=1)."""
    header = ["seed", "best step", *(f"{c} ×100" if c != "steps/s" else c for c in table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in table.results:
        cells = [str(result.seed), str(result.best_step), *map(_cell, table.values(result).values())]
        lines.append("| " + " | ".join(cells) + " |")
    for name, row in (("mean", table.mean()), (STD, table.std())):
        lines.append("| " + " | ".join([name, "", *map(_cell, row.values())]) + " |")
    return "\n".join(lines)


def write_csv(table: SweepTable, path: Path) -> None:
    """The table as CSV: `seed, run, best_step, <column>...` (scores ×100), then the `mean` and `std_ddof1` rows."""
    names = [_csv_name(column) for column in table.columns]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seed", "run", "best_step", *names])
        for result in table.results:
            writer.writerow([result.seed, str(result.run_dir), result.best_step, *table.values(result).values()])
        writer.writerow(["mean", "", "", *_csv_values(table.mean())])
        writer.writerow(["std_ddof1", "", "", *_csv_values(table.std())])


def card_section(table: SweepTable, plot_file: str | None) -> str:
    """The model card's section on the sweep the model comes from."""
    best, seeds = table.best, len(table.results)
    plot = (
        f"![STS-B dev Spearman ×100 against optimizer steps, one line per seed]({plot_file})"
        if plot_file
        else f"(No plot of the seeds' validation curves: matplotlib is not installed; `{PLOT_INSTALL_HINT}`.)"
    )
    return "\n".join(
        [
            "## Results over seeds (`cse sweep`)",
            "",
            f"This model is the best checkpoint of seed {best.seed}, the highest STS-B dev Spearman of {seeds} "
            "seeds trained with the same settings. Per seed, its best STS-B dev Spearman during training (and that "
            "step); then the mean and the sample standard deviation (ddof=1) over seeds.",
            "",
            markdown(table),
            "",
            plot,
        ]
    )


def _statistic(function, values: list[float], least: int = 1) -> float | None:
    return function(values) if len(values) >= least else None


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _csv_name(column: str) -> str:
    if column == "steps/s":
        return "steps_per_sec"
    return column.lower().replace("-", "").replace(" ", "_").replace(".", "") + "_spearman_x100"


def _csv_values(row: dict[str, float | None]) -> list[str | float]:
    return ["" if value is None else value for value in row.values()]
