"""The training sources of a run: `data.train_file`, or the datasets of a mixture under `data.train_files`."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cse.errors import InputError

SOURCE_KEYS = ("file", "columns")
NO_TRAINING_DATA = "data.train_file: not set; give a training file (or data.train_files for a mixture)"


@dataclass(frozen=True)
class TrainingSource:
    """One training dataset: where it is and its column mapping (None: inferred, see `cse.data.columns`)."""

    file: str
    columns: dict[str, str] | None = None


def training_sources(
    train_file: str | None, columns: dict[str, str] | None, train_files: list[Any] | None
) -> list[TrainingSource]:
    """`train_file` with `columns`, or each entry of `train_files`: a path, or `{file: PATH, columns: {...}}`; neither:
    none (`cse validate|test` need no training data; training without any is refused with `NO_TRAINING_DATA`).

    Raises:
        InputError: both given, or an entry that is not a path or such a mapping.
    """
    if train_files is None:
        return [] if train_file is None else [TrainingSource(train_file, columns)]
    if train_file is not None:
        raise InputError(
            f"data.train_files: given together with data.train_file {train_file}; list every dataset under "
            "data.train_files"
        )
    if columns is not None:
        raise InputError("data.columns: applies to data.train_file; give each dataset of data.train_files its columns")
    if not isinstance(train_files, list) or not train_files:
        raise InputError(
            f"data.train_files: expected a non-empty list of files or {{file, columns}} maps, got {train_files!r}"
        )
    sources = [_source(entry, index) for index, entry in enumerate(train_files)]
    first_index: dict[tuple, int] = {}
    for index, source in enumerate(sources):
        earlier = first_index.setdefault(_dataset_identity(source), index)
        if earlier != index:
            raise InputError(
                f"data.train_files[{index}]: {source.file} is data.train_files[{earlier}] again, with the same columns "
                "(each of its batches would be trained twice an epoch); list each dataset once"
            )
    return sources


def _source(entry: Any, index: int) -> TrainingSource:
    if isinstance(entry, str) and entry:
        return TrainingSource(entry)
    if not isinstance(entry, Mapping) or not isinstance(entry.get("file"), str) or not entry["file"]:
        raise InputError(
            f"data.train_files[{index}]: expected a file or {{file: PATH, columns: {{...}}}}, got {entry!r}"
        )
    unknown = sorted(set(entry) - set(SOURCE_KEYS))
    if unknown:
        raise InputError(f"data.train_files[{index}]: unknown key {unknown[0]!r} (allowed: {', '.join(SOURCE_KEYS)})")
    columns = entry.get("columns")
    if columns is not None and not (isinstance(columns, Mapping) and all(isinstance(v, str) for v in columns.values())):
        raise InputError(
            f"data.train_files[{index}].columns: expected a map such as {{sent0: premise}}, got {columns!r}"
        )
    return TrainingSource(entry["file"], dict(columns) if columns is not None else None)


def _dataset_identity(source: TrainingSource) -> tuple:
    """What makes two sources the same dataset: the file (a local one by its real path, however it is spelled) and
    the columns read from it. The same file under other columns (another pair of its columns) is another dataset."""
    path = Path(source.file).expanduser()
    where = str(path.resolve()) if path.exists() else source.file  # a hub dataset: its name
    return where, tuple(sorted((source.columns or {}).items()))
