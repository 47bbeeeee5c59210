"""The validation curve: drawn from metrics.csv into the run folder and the exported model card, with matplotlib; the
card keeps the table and says how to get the plot without it."""

import csv
import sys

import pytest

from cse.export.checkpoint import export_checkpoint
from cse.runs import validation_curve
from cse.runs.validation_curve import CURVE_FILE, PLOT_INSTALL_HINT, curve_figure, curve_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _metrics_curve(run_dir) -> list[tuple[int, float]]:
    """(step, Spearman) read from metrics.csv by csv alone: its 0-based step + 1 is the optimizer steps done."""
    with (run_dir / "metrics.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("val/stsb_spearman")]
    return [(int(row["step"]) + 1, float(row["val/stsb_spearman"])) for row in rows]


@pytest.fixture
def recorded_figures(monkeypatch) -> list:
    """Every figure the module draws, kept to inspect its data."""
    figures = []

    def recording(*args, **kwargs):
        figures.append(curve_figure(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(validation_curve, "curve_figure", recording)
    return figures


def test_one_line_per_curve_in_percent_against_steps():
    curves = {"seed 1": [(2, 0.5), (4, 0.625)], "seed 2": [(2, 0.25), (4, -0.125), (6, 0.75)]}
    lines = curve_figure(curves).axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["seed 1", "seed 2"]
    assert [list(line.get_xdata()) for line in lines] == [[2, 4], [2, 4, 6]]
    assert [list(line.get_ydata()) for line in lines] == [[50.0, 62.5], [25.0, -12.5, 75.0]]
    assert curve_png(curves).startswith(PNG_SIGNATURE)
    assert curve_png({"seed 1": []}) is None


def test_fit_writes_the_curve_and_the_export_puts_it_in_the_card(fitted_run, recorded_figures, tmp_path):
    expected = _metrics_curve(fitted_run)
    assert expected, "the fixture's run logged no validation"
    assert (fitted_run / CURVE_FILE).read_bytes().startswith(PNG_SIGNATURE)
    assert (fitted_run / "best_model" / CURVE_FILE).is_file()

    out = export_checkpoint(fitted_run, tmp_path / "model")
    (line,) = recorded_figures[-1].axes[0].get_lines()
    assert list(zip(line.get_xdata(), line.get_ydata(), strict=True)) == [(s, 100 * r) for s, r in expected]
    assert (out / CURVE_FILE).read_bytes().startswith(PNG_SIGNATURE)
    card = (out / "README.md").read_text()
    assert f"]({CURVE_FILE})" in card and PLOT_INSTALL_HINT not in card
    for step, spearman in expected:  # the numbers stay in the card's table
        assert f"| **{step}** | **{100 * spearman:.2f}** |" in card or f"| {step} | {100 * spearman:.2f} |" in card


def test_without_matplotlib_the_card_keeps_the_table_and_says_how_to_get_the_plot(fitted_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib...` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert curve_png({"run": _metrics_curve(fitted_run)}) is None
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_bytes((fitted_run / "metrics.csv").read_bytes())
    assert validation_curve.write_run_curve(run_dir) is None and not (run_dir / CURVE_FILE).exists()

    out = export_checkpoint(fitted_run, tmp_path / "model")
    assert not (out / CURVE_FILE).exists()
    card = (out / "README.md").read_text()
    assert PLOT_INSTALL_HINT in card and f"]({CURVE_FILE})" not in card
    step, spearman = _metrics_curve(fitted_run)[-1]
    assert f"{100 * spearman:.2f}" in card
