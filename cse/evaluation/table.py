"""The figures `cse eval` reports and prints: the paper's tables (Gao et al., 2021, Tables 5 and 7) and details.

The table figure of an STS task is Spearman's r ×100 in SimCSE's `all` setting (one correlation over the task's
subsets concatenated; for STS-B and SICK-R the one split evaluated); of a transfer task, the probe's accuracy ×100
(`acc` on test data in `test` mode, `devacc` in `dev` mode, as SimCSE's `evaluation.py` prints them).
"""

from cse.evaluation.sts import Correlation, StsResult
from cse.evaluation.transfer import TransferResult

AVERAGE = "Avg."


def sts_scores(results: dict[str, StsResult]) -> dict[str, float]:
    """Table figures by task header, then their average under `Avg.`; empty without results."""
    return _with_average({task: 100 * result.all.spearman for task, result in results.items()})


def transfer_scores(results: dict[str, TransferResult], mode: str) -> dict[str, float]:
    """Table figures by task header (`acc`, or `devacc` in dev mode), then `Avg.`; empty without results."""
    return _with_average({task: result.devacc if mode == "dev" else result.acc for task, result in results.items()})


def format_table(scores: dict[str, float]) -> str:
    """One table as SimCSE prints it with PrettyTable: a header row and a row of figures with two decimals."""
    headers, cells = list(scores), [f"{value:.2f}" for value in scores.values()]
    widths = [max(len(header), len(cell)) + 2 for header, cell in zip(headers, cells, strict=True)]
    rule = "+" + "+".join("-" * width for width in widths) + "+"

    def row(items: list[str]) -> str:
        return "|" + "|".join(item.center(width) for item, width in zip(items, widths, strict=True)) + "|"

    return "\n".join([rule, row(headers), rule, row(cells), rule])


def format_sts_details(results: dict[str, StsResult]) -> str:
    """Per-subset Spearman and Pearson ×100 with pair counts; `all`, `mean` and `wmean` for tasks with subsets."""
    lines = [f"{'task':<16} {'subset':<18} {'pairs':>6} {'Spearman':>9} {'Pearson':>9}"]
    for task, result in results.items():
        for subset, correlation in result.subsets.items():
            lines.append(_detail_line(task, subset, result.sizes[subset], correlation))
        if len(result.subsets) > 1:
            total = sum(result.sizes.values())
            for setting in ("all", "mean", "wmean"):
                lines.append(_detail_line(task, setting, total, getattr(result, setting)))
    return "\n".join(lines)


def format_transfer_details(results: dict[str, TransferResult]) -> str:
    """Dev and test accuracy ×100 of each transfer task with SentEval's example counts."""
    lines = [f"{'task':<16} {'devacc':>8} {'acc':>8} {'ndev':>7} {'ntest':>7}"]
    for task, result in results.items():
        lines.append(f"{task:<16} {result.devacc:8.2f} {result.acc:8.2f} {result.ndev:7d} {result.ntest:7d}")
    return "\n".join(lines)


def _detail_line(task: str, subset: str, pairs: int, correlation: Correlation) -> str:
    return f"{task:<16} {subset:<18} {pairs:6d} {100 * correlation.spearman:9.2f} {100 * correlation.pearson:9.2f}"


def _with_average(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    # SimCSE's evaluation.py averages the printed two-decimal figures, so the printed average matches the paper's.
    printed = [float(f"{score:.2f}") for score in scores.values()]
    return {**scores, AVERAGE: round(sum(printed) / len(printed), 2)}
