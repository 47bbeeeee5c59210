"""Find SentEval's `downstream` directory and the task files in it, with one-line errors naming the path."""

from pathlib import Path

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


def read_lines(path: Path, encoding: str, task: str, newlines_only: bool = False) -> list[str]:
    """The file's lines, split as SentEval splits that file; undecodable bytes are an `InputError`.

    Args:
        path: the file.
        encoding: SentEval's encoding for it (`utf-8` or `latin-1`).
        task: names the file in errors.
        newlines_only: split at line ends only, as SentEval's `for line in f` (SST, TREC, MRPC); otherwise as its
            `read().splitlines()` (STS, MR, CR, SUBJ, MPQA), which also splits at e.g. form feeds and U+2028.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as io.open
    except UnicodeDecodeError as error:
        line_number = raw[: error.start].count(b"\n") + 1
        raise InputError(f"{task} file {path} line {line_number}: not valid {encoding}") from None
    if not newlines_only:
        return text.splitlines()
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines
