"""Read training rows from any supported source, each with its location for error messages.

Local `.csv`/`.tsv`/`.jsonl` are parsed line by line so an error can name the line; `.json`, `.parquet`,
a `datasets.save_to_disk` directory and hub datasets are read through `datasets` and located by row number.
"""

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from datasets import Dataset, load_dataset, load_from_disk

from cse.data.text_file import check_text_file
from cse.errors import InputError, first_line

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


class RowError(ValueError):
    """A bad row: `location` (e.g. "line 7") and what is wrong with it."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location


def read_rows(source: str, cache_dir: str | None = None) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    """The column names of `source` and an iterator over (location, row).

    A ragged csv line is yielded as a `RowError` instead of a row, so the caller can fail or skip it.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return _arrow_rows(_load_saved_dataset(path))
    if path.exists() or path.suffix:
        if path.suffix not in TABLE_SUFFIXES:
            raise InputError(
                f"training file {path}: unsupported format '{path.suffix}' (use .txt, {', '.join(TABLE_SUFFIXES)})"
            )
        if path.suffix == ".parquet":
            return _arrow_rows(Dataset.from_parquet(str(path), cache_dir=cache_dir))
        check_text_file(path, what="training file")
        if path.suffix in (".csv", ".tsv"):
            return _delimited_rows(path, "\t" if path.suffix == ".tsv" else ",")
        if path.suffix == ".jsonl":
            return _json_lines(path)
        return _arrow_rows(Dataset.from_json(str(path), cache_dir=cache_dir))
    return _arrow_rows(_load_hub_dataset(source, cache_dir))


def _delimited_rows(path: Path, delimiter: str) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    handle = path.open(encoding="utf-8", newline="")
    reader = csv.reader(handle, delimiter=delimiter)
    header = next(reader, None)
    if not header:
        handle.close()
        raise InputError(f"training file {path}: no header line")

    def rows() -> Iterator[tuple[str, dict]]:
        with handle:
            for fields in reader:
                location = f"line {reader.line_num}"
                if not fields:
                    continue
                if len(fields) != len(header):
                    yield location, RowError(location, f"{len(fields)} fields, the header has {len(header)}")
                else:
                    yield location, dict(zip(header, fields, strict=True))

    return header, rows()


def _json_lines(path: Path) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    with path.open(encoding="utf-8") as handle:
        first = next((line for line in handle if line.strip()), "{}")
    try:
        header = list(json.loads(first))
    except (json.JSONDecodeError, TypeError):
        header = []

    def rows() -> Iterator[tuple[str, dict]]:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                location = f"line {number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    yield location, RowError(location, f"not valid JSON ({error.msg})")
                    continue
                yield location, row if isinstance(row, dict) else RowError(location, "not a JSON object")

    return header, rows()


def _arrow_rows(dataset: Dataset) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    return list(dataset.column_names), ((f"row {index + 1}", row) for index, row in enumerate(dataset))


def _load_saved_dataset(path: Path) -> Dataset:
    try:
        loaded = load_from_disk(str(path))
    except FileNotFoundError:
        raise InputError(f"training data {path}: a directory, but not one written by datasets' save_to_disk") from None
    if isinstance(loaded, Dataset):
        return loaded
    if "train" not in loaded:
        raise InputError(f"training data {path}: a DatasetDict without a 'train' split ({', '.join(loaded)})")
    return loaded["train"]


def _load_hub_dataset(name: str, cache_dir: str | None) -> Dataset:
    try:
        return load_dataset(name, split="train", cache_dir=cache_dir)
    except Exception as error:  # datasets raises many types (ConnectionError, DatasetNotFoundError, ValueError, ...)
        reason = first_line(error)
        raise InputError(
            f"training data '{name}': not a local file, and loading it from the hub failed: {reason}"
        ) from None
