"""Rows written once, in chunks, to a memory-mapped Arrow file, with a small JSON note of what writing them learned.

Memory stays at one chunk however long the source: rows stream from an iterator into `datasets`' `ArrowWriter`,
and the result is opened memory-mapped. The file is written under a temporary name and renamed only once every row
was read and its notes written (`cse.whole_file`), so a failed read (a bad row, an interruption) leaves no cache file
behind, and a file under the final name is always complete. Processes racing to write the same file each write their
own temporary file; the last rename wins, with the same content.
"""

import json
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path

from datasets import Dataset, Features, Value
from datasets.arrow_writer import ArrowWriter

from cse.whole_file import written_whole

CHUNK_ROWS = 10_000  # rows per Arrow record batch (not datasets' 1,000: see cse.data.corpus), and held while writing


def cached_table(
    path: Path, columns: dict[str, str], rows: Iterable[dict], notes: Callable[[], dict]
) -> tuple[Dataset, dict]:
    """The Arrow file `path`, memory-mapped, and its notes; written from `rows` first unless it exists.

    Args:
        path: the cache file (`*.arrow`); its notes go beside it with the suffix `.json`.
        columns: name -> `datasets.Value` dtype (`"string"`, `"float64"`) of every row's fields, in order.
        rows: the rows, consumed only when `path` does not exist yet; an exception from it leaves no file.
        notes: called once `rows` is exhausted; JSON-serializable facts about them, returned again on every hit.
    """
    cached = _open(path)
    if cached is not None:
        return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as temporary:  # renamed last: a file under this name is complete and has its notes
        features = Features({name: Value(dtype) for name, dtype in columns.items()})
        with ArrowWriter(features=features, path=str(temporary), writer_batch_size=CHUNK_ROWS) as writer:
            for chunk in _chunks(rows, CHUNK_ROWS):
                writer.write_batch({name: [row[name] for row in chunk] for name in columns})
            writer.finalize()
        with written_whole(_notes_path(path)) as notes_file:
            notes_file.write_text(json.dumps(notes()))
    return _open(path)


def _open(path: Path) -> tuple[Dataset, dict] | None:
    """The cached table and its notes, or None when either is missing or the notes cannot be read."""
    if not path.is_file():
        return None
    try:
        notes = json.loads(_notes_path(path).read_text())
    except (OSError, ValueError):
        return None
    return Dataset.from_file(str(path)), notes


def _notes_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _chunks(rows: Iterable[dict], size: int) -> Iterable[list[dict]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk
