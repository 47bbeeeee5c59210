"""scripts/epoch_projection.py recovers the rate, the compilation and the validation cost a run was made of."""

import csv
import re

import pytest

RATE, COMPILATION, STEPS, LOG_EVERY, VALIDATE_EVERY = 50.0, 30.0, 1000, 50, 125
VALIDATION_SECONDS = [0.4, 5.0, 0.3, 0.5, 4.5, 0.35, 0.45, 0.6]  # after steps 125, 250, ..., 1000 (new bests: ~5 s)


def _write_metrics(path) -> None:
    """The metrics.csv of a run trained at RATE steps/s, its first window COMPILATION s longer, with a validation of
    VALIDATION_SECONDS after every VALIDATE_EVERY steps: rows as `cse fit` writes them (step N in row N - 1)."""
    validations = {VALIDATE_EVERY * (index + 1): seconds for index, seconds in enumerate(VALIDATION_SECONDS)}
    rows = []
    for end in range(LOG_EVERY, STEPS + 1, LOG_EVERY):
        wall = LOG_EVERY / RATE + (COMPILATION if end == LOG_EVERY else 0.0)
        wall += sum(seconds for step, seconds in validations.items() if end - LOG_EVERY <= step < end)
        rows.append({"step": end - 1, "train/steps_per_sec": LOG_EVERY / wall, "val/seconds": ""})
    rows += [{"step": step - 1, "train/steps_per_sec": "", "val/seconds": s} for step, s in validations.items()]
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, ["step", "train/steps_per_sec", "val/seconds"])
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: row["step"]))


def test_the_projection_is_compilation_plus_steps_at_the_rate_plus_the_validations(script_module, tmp_path, capsys):
    projection = script_module("epoch_projection")
    _write_metrics(tmp_path / "metrics.csv")
    figures = projection.project(*projection.read_rows(str(tmp_path / "metrics.csv")), 15_625, 125)
    mean_validation = sum(VALIDATION_SECONDS) / len(VALIDATION_SECONDS)
    assert figures["steady"] == pytest.approx(RATE)
    assert figures["extra"] == pytest.approx(COMPILATION)
    assert figures["validation"] == pytest.approx(mean_validation)
    expected = COMPILATION + 15_625 / RATE + 125 * mean_validation
    assert figures["seconds"] == pytest.approx(expected)

    projection.main([str(tmp_path / "metrics.csv")])
    line = capsys.readouterr().out.splitlines()[-1]
    minutes, rate = re.fullmatch(
        r"projected: 15,625 steps with a validation every 125 in ([\d.]+) min, ([\d.]+) .*", line
    ).groups()
    assert float(minutes) == round(expected / 60, 1) and float(rate) == round(15_625 / expected, 1)


def test_a_run_too_short_to_project_is_one_line(script_module, tmp_path):
    projection = script_module("epoch_projection")
    (tmp_path / "metrics.csv").write_text("step,train/steps_per_sec,val/seconds\n49,10.0,\n")
    with pytest.raises(SystemExit, match="two logging steps and a validation"):
        projection.main([str(tmp_path / "metrics.csv")])
