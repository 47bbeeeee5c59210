"""The validation curve of a run (or of a sweep's runs): STS-B dev Spearman ×100 against optimizer steps, as a PNG.

matplotlib is optional (`pip install 'cse[plot]'`): without it no PNG is drawn and the model card keeps the table.
"""

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from cse.runs.finished_run import read_validations
from cse.runs.layout import METRICS_FILE

CURVE_FILE = "validation_curve.png"
PLOT_INSTALL_HINT = "pip install 'cse[plot]'"  # matplotlib; see pyproject.toml


def curve_figure(curves: Mapping[str, Sequence[tuple[int, float]]], title: str = "STS-B dev"):
    """A matplotlib `Figure` with one line per curve: label -> [(optimizer step, Spearman in [-1, 1]), ...].

    Raises:
        ImportError: matplotlib is not installed.
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    axes = figure.add_subplot()
    for label, points in curves.items():
        axes.plot([step for step, _ in points], [100 * spearman for _, spearman in points], marker="o", label=label)
    axes.set(xlabel="optimizer step", ylabel="Spearman ×100", title=title)
    axes.grid(alpha=0.3)
    if len(curves) > 1:
        axes.legend()
    figure.tight_layout()
    return figure


def curve_png(curves: Mapping[str, Sequence[tuple[int, float]]], title: str = "STS-B dev") -> bytes | None:
    """`curve_figure` as PNG bytes; None when matplotlib is not installed or there is nothing to draw."""
    if not any(curves.values()):
        return None
    try:
        figure = curve_figure(curves, title)
    except ImportError:
        return None
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")  # Figure.savefig makes its own Agg canvas
    return buffer.getvalue()


def run_curve(run_dir: str | Path) -> list[tuple[int, float]]:
    """[(optimizer step, val/stsb_spearman), ...] of a run folder's `metrics.csv`, in step order."""
    return [(v.step, v.spearman) for v in read_validations(Path(run_dir) / METRICS_FILE)]


def write_run_curve(run_dir: str | Path) -> Path | None:
    """Write `validation_curve.png` into the run folder; None (nothing written) without matplotlib or validations."""
    png = curve_png({"STS-B dev": run_curve(run_dir)})
    if png is None:
        return None
    path = Path(run_dir) / CURVE_FILE
    path.write_bytes(png)
    return path
