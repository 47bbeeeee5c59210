import pytest

from cse.evaluation.sts import Correlation, StsResult
from cse.evaluation.table import format_sts_details, format_table, format_transfer_details, sts_scores, transfer_scores
from cse.evaluation.transfer import TransferResult


def _result(spearman_all: float, subsets: dict[str, float]) -> StsResult:
    return StsResult(
        subsets={name: Correlation(value, value / 2) for name, value in subsets.items()},
        sizes={name: 10 * (index + 1) for index, name in enumerate(subsets)},
        all=Correlation(spearman_all, 0.5),
        mean=Correlation(0.1, 0.2),
        wmean=Correlation(0.3, 0.4),
    )


def test_table_is_prettytable_layout():
    assert format_table({"STS12": 68.404, "SICKRelatedness": 72.2349, "Avg.": 70.32}) == (
        "+-------+-----------------+-------+\n"
        "| STS12 | SICKRelatedness |  Avg. |\n"
        "+-------+-----------------+-------+\n"
        "| 68.40 |      72.23      | 70.32 |\n"
        "+-------+-----------------+-------+"
    )


def test_sts_scores_are_all_setting_spearman_and_average_of_printed_figures():
    results = {"STS12": _result(0.68404, {"a": 0.1, "b": 0.2}), "STSBenchmark": _result(0.82418, {"test": 0.82418})}
    scores = sts_scores(results)
    assert list(scores) == ["STS12", "STSBenchmark", "Avg."]
    assert scores["STS12"] == pytest.approx(68.404) and scores["STSBenchmark"] == pytest.approx(82.418)
    assert scores["Avg."] == 75.41  # (68.40 + 82.42) / 2, as SimCSE averages the printed figures
    assert sts_scores({}) == {}


def test_transfer_scores_use_test_accuracy_or_dev_accuracy_in_dev_mode():
    results = {"MR": TransferResult(80.0, 78.5, 100, 100), "TREC": TransferResult(90.26, 91.0, 50, 20)}
    assert transfer_scores(results, "test") == {"MR": 78.5, "TREC": 91.0, "Avg.": 84.75}
    assert transfer_scores(results, "dev") == {"MR": 80.0, "TREC": 90.26, "Avg.": 85.13}
    assert "TREC" in format_transfer_details(results) and "90.26" in format_transfer_details(results)


def test_details_list_subsets_and_settings_for_multi_subset_tasks():
    text = format_sts_details(
        {"STS12": _result(0.5, {"MSRpar": 0.25, "MSRvid": 0.75}), "SICK": _result(0.9, {"dev": 0.9})}
    )
    rows = [line.split() for line in text.splitlines()[1:]]
    assert rows == [
        ["STS12", "MSRpar", "10", "25.00", "12.50"],
        ["STS12", "MSRvid", "20", "75.00", "37.50"],
        ["STS12", "all", "30", "50.00", "50.00"],
        ["STS12", "mean", "30", "10.00", "20.00"],
        ["STS12", "wmean", "30", "30.00", "40.00"],
        ["SICK", "dev", "10", "90.00", "45.00"],
    ]
