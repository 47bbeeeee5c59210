"""Find SentEval's `downstream` directory and the task files in it, with one-line errors naming the path."""

from pathlib import Path

from cse.data.text_file import split_lines
from cse.errors import InputError

DOWNSTREAM = "downstream"  # SentEval's data/downstream: SimCSE's PATH_TO_DATA + '/downstream/...'


def resolve_data_dir(data_dir: str | Path) -> Path:
    """The directory holding `STS/`, `SICK/`, `MR/`, …: `data_dir` itself or its `downstream/` subdirectory.

    SentEval's own data directory (`SentEval/data`, as SimCSE's `evaluation.py` uses it) keeps the tasks under
    `downstream/`; pointing at either works.
    """
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise InputError(f"data dir {path}: {'is a file' if path.exists() else 'no such directory'}")
    return path / DOWNSTREAM if (path / DOWNSTREAM).is_dir() else path


def task_file(data_dir: Path, relative: str, task: str) -> Path:
    """`data_dir / relative`, which must be a file; the error names the task and the missing path."""
    path = data_dir / relative
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "no such file"
        raise InputError(f"{task} file {path}: {problem} (expected SentEval's layout under --data-dir {data_dir})")
    return path


def read_lines(path: Path, encoding: str, task: str) -> list[str]:
    r"""The file's lines, split at `\n` (or `\r\n`) only, as `cse.data.text_file` splits every file cse reads.

    SentEval splits some files with `read().splitlines()`, which also splits at form feeds, U+2028, U+0085 (a byte
    0x85 in a latin-1 file) and the like: that would cut a sentence in two and shift every pair after it against
    its gold score. In a file without them (and without a lone `\r`, which SentEval's universal newlines end a line
    at and cse keeps as text) the lines are SentEval's. A UTF-8 byte-order mark is dropped; undecodable bytes are an
    `InputError` naming the line.

    Args:
        path: the file.
        encoding: SentEval's encoding for it (`utf-8` or `latin-1`).
        task: names the file in errors.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as error:
        line_number = raw[: error.start].count(b"\n") + 1
        raise InputError(f"{task} file {path} line {line_number}: not valid {encoding}") from None
    return split_lines(text)
