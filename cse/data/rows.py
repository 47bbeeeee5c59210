"""Read training rows from any supported source, each with its location for error messages.

Local `.csv`/`.tsv`/`.jsonl` are parsed line by line, one row per line (lines split as `cse.data.text_file` says:
at `\\n` or `\\r\\n` only, a byte-order mark dropped), so an error names the line and a broken quote cannot swallow
the rows after it. `.json` is parsed whole, `.parquet` by pyarrow, a `datasets.save_to_disk` directory and hub
datasets through `datasets`; their rows are located by number. A file that cannot be parsed at all (truncated,
not of its format) is an `InputError` naming it.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
from datasets import Dataset, load_dataset, load_from_disk

from cse.data.text_file import check_text_file, csv_fields, iter_lines
from cse.errors import InputError, first_line

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
SAVED_DATASET_FILES = ("dataset_dict.json", "state.json")  # what `save_to_disk` writes at the top of its directory
JSON_TYPES = {dict: "object", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class RowError(ValueError):
    """A bad row: `location` (e.g. "line 7") and what is wrong with it."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location


def read_rows(source: str, cache_dir: str | None = None) -> tuple[list[str], Iterator[tuple[str, dict]], list[str]]:
    """The column names of `source`, an iterator over (location, row), and the files that hold a hub dataset's
    version (`datasets`' Arrow cache files, new for each revision it downloads; empty for local sources).

    A row that cannot be parsed (a ragged csv line, a bad quote, a line that is not a JSON object) is yielded as a
    `RowError` instead of a row, so the caller can fail or skip it.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return *_arrow_rows(_load_saved_dataset(path), f"training data {path}"), []
    if path.exists() or path.suffix:
        if path.suffix not in TABLE_SUFFIXES:
            raise InputError(
                f"training file {path}: unsupported format '{path.suffix}' (use .txt, {', '.join(TABLE_SUFFIXES)})"
            )
        if path.suffix == ".parquet":
            return *_parquet_rows(path), []
        check_text_file(path, what="training file")
        if path.suffix in (".csv", ".tsv"):
            return *_delimited_rows(path, "\t" if path.suffix == ".tsv" else ","), []
        if path.suffix == ".jsonl":
            return *_json_lines(path), []
        return *_json_rows(path), []
    dataset = _load_hub_dataset(source, cache_dir)
    return *_arrow_rows(dataset, f"training data '{source}'"), [file["filename"] for file in dataset.cache_files]


def _delimited_rows(path: Path, delimiter: str) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    """Rows keyed by the header's names, stripped of surrounding spaces (`sent0, sent1` names `sent1`)."""
    lines = enumerate(iter_lines(path), start=1)
    first = next(lines, (1, ""))[1]
    delimiter = _header_delimiter(first, delimiter)
    try:
        header = [field.strip() for field in csv_fields(first, delimiter)]
    except ValueError as problem:
        raise InputError(f"training file {path} line 1: the header line cannot be read ({problem})") from None
    if not any(header):
        raise InputError(f"training file {path} line 1: no header line")
    named = [name for name in header if name]  # unnamed columns: trailing delimiters of spreadsheet exports
    if len(set(named)) < len(named):
        twice = next(name for index, name in enumerate(named) if name in named[:index])
        raise InputError(f"training file {path} line 1: column '{twice}' appears twice in the header")

    def rows() -> Iterator[tuple[str, dict | RowError]]:
        for number, line in lines:
            location = f"line {number}"
            if not line.strip():
                continue
            try:
                fields = csv_fields(line, delimiter)
            except ValueError as problem:
                yield location, RowError(location, str(problem))
                continue
            if len(fields) != len(header):
                yield location, RowError(location, f"{len(fields)} fields, the header has {len(header)}")
            else:
                yield location, dict(zip(header, fields, strict=True))

    return header, rows()


def _header_delimiter(line: str, delimiter: str) -> str:
    """The delimiter of a table whose header is `line`: the suffix's `delimiter`, unless the header holds none of it
    but the other one. A tab-separated `.csv` (as SentEval's STS files) or a comma-separated `.tsv` is then read as
    its header shows, as the dev reader does; a one-column header (a sentences table, commas in its rows) has neither
    and keeps the suffix's, and a row that does not split like the header is a bad row naming its line."""
    other = "," if delimiter == "\t" else "\t"
    return other if delimiter not in line and other in line else delimiter


def _json_lines(path: Path) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    def rows() -> Iterator[tuple[str, dict | RowError]]:
        for number, line in enumerate(iter_lines(path), start=1):
            if not line.strip():
                continue
            location = f"line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                yield location, RowError(location, f"not valid JSON at column {error.colno} ({error.msg})")
                continue
            except ValueError as error:  # e.g. an integer of more digits than Python converts
                yield location, RowError(location, f"not valid JSON ({first_line(error)})")
                continue
            yield location, row if isinstance(row, dict) else RowError(location, "not a JSON object")

    first, problem = None, None
    for _, row in rows():  # the header: the keys of the first line that is a JSON object
        if isinstance(row, dict):
            first = row
            break
        problem = problem or row
    if first is None:
        raise InputError(f"training file {path} {problem}" if problem else f"training file {path}: no rows")
    return list(first), rows()


def _json_rows(path: Path) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    """A `.json` file: an array of objects, an object of equal-length column arrays, or JSON lines."""
    text = "\n".join(iter_lines(path))
    try:
        data = json.loads(text)
    except ValueError as error:  # JSONDecodeError, or an integer of more digits than Python converts
        if not isinstance(error, json.JSONDecodeError):
            raise InputError(f"training file {path}: not valid JSON ({first_line(error)})") from None
        if error.msg == "Extra data" and text.lstrip().startswith("{"):  # JSON lines in a .json file
            return _json_lines(path)
        raise InputError(
            f"training file {path} line {error.lineno}: not valid JSON at column {error.colno} ({error.msg})"
        ) from None
    if isinstance(data, dict) and data and all(isinstance(values, list) for values in data.values()):
        lengths = {len(values) for values in data.values()}
        if len(lengths) != 1:
            raise InputError(f"training file {path}: columns of different lengths ({sorted(lengths)})")
        data = [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]
    if not isinstance(data, list):
        raise InputError(
            f"training file {path}: expected an array of row objects or an object of column arrays, "
            f"found a JSON {JSON_TYPES.get(type(data), type(data).__name__)}"
        )
    header = list(dict.fromkeys(key for row in data if isinstance(row, dict) for key in row))

    def rows() -> Iterator[tuple[str, dict | RowError]]:
        for index, row in enumerate(data, start=1):
            location = f"row {index}"
            yield location, row if isinstance(row, dict) else RowError(location, "not a JSON object")

    return header, rows()


def _parquet_rows(path: Path) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    if not path.is_file():
        raise InputError(f"training file {path}: no such file")
    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for a file that is not parquet
        raise InputError(f"training file {path}: not a readable parquet file ({first_line(error)})") from None

    def rows() -> Iterator[tuple[str, dict]]:
        index = 0
        try:
            for batch in parquet.iter_batches(batch_size=1024):
                for row in batch.to_pylist():
                    index += 1
                    yield f"row {index}", row
        except Exception as error:  # a corrupt page: pyarrow raises OSError, ArrowInvalid, ...
            raise InputError(
                f"training file {path} row {index + 1}: parquet data cannot be read ({first_line(error)})"
            ) from None

    return list(parquet.schema_arrow.names), rows()


def _arrow_rows(dataset: Dataset, what: str) -> tuple[list[str], Iterator[tuple[str, dict]]]:
    def rows() -> Iterator[tuple[str, dict]]:
        index = 0
        try:
            for index, row in enumerate(dataset, start=1):
                yield f"row {index}", row
        except Exception as error:  # a damaged Arrow file: pyarrow raises ArrowInvalid, OSError, ...
            raise InputError(f"{what} row {index + 1}: cannot be read ({first_line(error)})") from None

    return list(dataset.column_names), rows()


def _load_saved_dataset(path: Path) -> Dataset:
    if not any((path / name).is_file() for name in SAVED_DATASET_FILES):
        raise InputError(
            f"training data {path}: a directory, but not one written by datasets' save_to_disk "
            f"(no {' or '.join(SAVED_DATASET_FILES)})"
        )
    try:
        loaded = load_from_disk(str(path))
    except FileNotFoundError as error:
        missing = f"{error.filename} is missing" if error.filename else first_line(error).split(". ")[0]
        missing = missing.replace(str(path.resolve()), str(path))  # datasets names files by their absolute path
        raise InputError(f"training data {path}: an incomplete save_to_disk directory ({missing})") from None
    except Exception as error:  # a damaged file: pyarrow's ArrowInvalid, json's JSONDecodeError, ...
        raise InputError(
            f"training data {path}: a damaged save_to_disk directory ({type(error).__name__}: {first_line(error)})"
        ) from None
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
