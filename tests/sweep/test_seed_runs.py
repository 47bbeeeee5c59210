"""A finished seed's figures from its metrics.csv, against values computed by hand: a NaN validation is no best,
a seed with only NaN ones or a damaged file is a one-line error naming the file (and line)."""

import math

import pytest

from cse.errors import InputError
from cse.sweep.seed_runs import SeedRun, read_seed_result

HEADER = "epoch,step,train/steps_per_sec,val/stsb_spearman\r\n"


def _seed(tmp_path, rows: str) -> SeedRun:
    run_dir = tmp_path / "seed_1" / "version_0"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.csv").write_bytes((HEADER + rows).encode())
    return SeedRun(1, "finished", run_dir)


def test_a_nan_validation_is_never_the_best_even_first(tmp_path):
    result = read_seed_result(_seed(tmp_path, "0,1,,nan\r\n0,3,,0.25\r\n0,5,,0.5\r\n0,7,,nan\r\n"))
    assert (result.best_step, result.best_spearman) == (6, 0.5)
    assert [step for step, _ in result.curve] == [2, 4, 6, 8] and math.isnan(result.curve[0][1])


def test_a_seed_with_only_nan_validations_has_no_best(tmp_path):
    run = _seed(tmp_path, "0,1,,nan\r\n0,3,,nan\r\n")
    with pytest.raises(
        InputError, match=f"^metrics file {run.run_dir / 'metrics.csv'}: every val/stsb_spearman is nan"
    ):
        read_seed_result(run)


def test_speed_is_logged_steps_over_the_windows_time_without_the_first(tmp_path):
    """Rows at steps 9, 19, 39 at 2, 4 and 5 steps/s: windows of 10 steps at 4/s and 20 at 5/s -> 30 / 6.5 s."""
    result = read_seed_result(_seed(tmp_path, "0,9,2.0,\r\n0,19,4.0,\r\n0,19,,0.3\r\n0,39,5.0,\r\n"))
    assert result.steps_per_sec == pytest.approx(30 / (10 / 4 + 20 / 5))


def test_a_speed_cell_that_is_no_number_names_file_and_line(tmp_path):
    run = _seed(tmp_path, "0,9,2.0,\r\n0,19,inf?,\r\n0,19,,0.3\r\n")
    with pytest.raises(InputError, match=rf"^metrics file {run.run_dir / 'metrics.csv'} line 3: train/steps_per_sec"):
        read_seed_result(run)


def test_a_last_line_cut_short_is_left_out_and_numbered(tmp_path):
    result = read_seed_result(_seed(tmp_path, "0,1,,0.25\r\n0,3,,0.0"))
    assert result.curve == [(2, 0.25)] and result.incomplete_metrics_line == 3
