"""metrics.csv read as CSVLogger writes it: complete lines only, damage named by file and line."""

import pytest

from cse.errors import InputError
from cse.runs.metrics_file import read_metrics_rows

HEADER = "epoch,step,train/steps_per_sec,val/stsb_spearman\r\n"


def test_rows_carry_their_line_numbers_and_a_missing_file_has_none(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes((HEADER + "0,1,2.5,\r\n0,1,,0.25\r\n").encode())
    metrics = read_metrics_rows(path)
    assert [(line, row["step"], row["val/stsb_spearman"]) for line, row in metrics.rows] == [
        (2, "1", ""),
        (3, "1", "0.25"),
    ]
    assert metrics.incomplete_line is None
    assert read_metrics_rows(tmp_path / "none.csv").rows == []


def test_a_last_line_without_its_newline_is_left_out_and_numbered(tmp_path):
    """`0.0` is what is left of `0.0260` when the run stopped while writing: not a value to report."""
    path = tmp_path / "metrics.csv"
    path.write_bytes((HEADER + "0,1,,0.25\r\n0,3,,0.0").encode())
    metrics = read_metrics_rows(path)
    assert [line for line, _ in metrics.rows] == [2]
    assert metrics.incomplete_line == 3


def test_bytes_that_are_not_utf8_name_their_line(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes((HEADER + "0,1,,0.25\r\n").encode() + b"\xff\xfe\x80garbage\n")
    with pytest.raises(InputError, match=rf"^metrics file {path} line 3: not UTF-8 text \(byte 0xff") as error:
        read_metrics_rows(path)
    assert "\n" not in str(error.value)


def test_a_nul_names_its_line(tmp_path):
    """Python's csv module reads a NUL as a character like any other since 3.11: it was a row like the others."""
    path = tmp_path / "metrics.csv"
    path.write_bytes((HEADER + "0,1,,0.25\r\n0,3,,0.5\x00\x00\r\n").encode())
    with pytest.raises(InputError, match=rf"^metrics file {path} line 3: contains NUL \(a damaged file\)$"):
        read_metrics_rows(path)


def test_a_cell_that_is_no_number_names_file_line_and_column(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes((HEADER + "0,1,3.5,\r\n0,2,inf?,\r\n0,3,-1.0,\r\n").encode())
    metrics = read_metrics_rows(path)
    (_, good), (line, bad), (negative_line, negative) = metrics.rows
    assert metrics.positive(2, good, "train/steps_per_sec") == 3.5
    assert metrics.number(2, good, "val/stsb_spearman") is None
    with pytest.raises(InputError, match=rf"^metrics file {path} line 3: train/steps_per_sec is 'inf\?', not a num"):
        metrics.number(line, bad, "train/steps_per_sec")
    with pytest.raises(InputError, match=r"line 4: train/steps_per_sec is -1.0, not a positive number"):
        metrics.positive(negative_line, negative, "train/steps_per_sec")


def test_a_line_csv_cannot_read_is_named(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes((HEADER + "0,1,,0.25\r\n0,2,\r5,\r\n").encode())  # a lone carriage return inside a line
    with pytest.raises(InputError, match=rf"^metrics file {path} line 3: not CSV"):
        read_metrics_rows(path)
