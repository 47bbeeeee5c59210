"""A run's `metrics.csv` as Lightning's CSVLogger writes it: its rows with their line numbers, damage as one line.

CSVLogger writes whole lines, each ending in a newline. A last line without one was being written when the run
stopped (or the file was copied short): its last value may be cut (`0.0` of `0.0260`), so the line is left out and
its number kept for whoever reports the log. Bytes that are not UTF-8, a NUL, or a cell that is not the number it
should be are a damaged file: an `InputError` naming the file and the line.
"""

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from cse.errors import InputError


@dataclass(frozen=True)
class MetricsRows:
    """The complete rows of a metrics file, as (line number, {column: cell}); `incomplete_line` the left-out one."""

    path: Path
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    incomplete_line: int | None = None

    def number(self, line: int, row: dict[str, str], column: str) -> float | None:
        """The float in `row[column]` (None when empty); an `InputError` naming file and line when it is none."""
        cell = row.get(column)
        if not cell:
            return None
        try:
            return float(cell)
        except (TypeError, ValueError):
            raise InputError(f"metrics file {self.path} line {line}: {column} is {cell!r}, not a number") from None

    def positive(self, line: int, row: dict[str, str], column: str) -> float | None:
        """`number`, which must be finite and above 0 (a speed, a duration)."""
        value = self.number(line, row, column)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"metrics file {self.path} line {line}: {column} is {value}, not a positive number")
        return value


def read_metrics_rows(path: Path) -> MetricsRows:
    """The rows of `path` (none when there is no such file), its incomplete last line left out.

    Raises:
        InputError: the file cannot be read, is not UTF-8 text, holds a NUL, or is not CSV; naming the file and line.
    """
    if not path.is_file():
        return MetricsRows(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"metrics file {path}: cannot be read ({error.strerror or error})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputError(
            f"metrics file {path} line {line}: not UTF-8 text (byte {data[error.start]:#04x}: a damaged file)"
        ) from None
    nul = text.find("\x00")  # Python >= 3.11's csv module reads it as a character like any other
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise InputError(f"metrics file {path} line {line}: contains NUL (a damaged file)")
    parts = text.split("\n")  # lines as CSVLogger ends them; str.splitlines would also split at \f, \x1c, ...
    incomplete = len(parts) if parts[-1] else None
    reader = csv.DictReader(part + "\n" for part in parts[:-1])
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as error:
        raise InputError(f"metrics file {path} line {reader.line_num + 1}: not CSV ({error})") from None
    return MetricsRows(path, rows, incomplete)
