"""Checks that a path is a readable UTF-8 text file, with errors that name the file and line."""

from pathlib import Path

from cse.errors import InputError


def check_text_file(path: Path, what: str) -> None:
    """Raise `InputError` unless `path` is a non-empty UTF-8 text file.

    Args:
        path: the file to check.
        what: how the error names it, e.g. "corpus" or "dev file".
    """
    if not path.exists():
        raise InputError(f"{what} {path}: no such file")
    if path.is_dir():
        raise InputError(f"{what} {path}: is a directory; expected a file")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {path}: file is empty")
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            if b"\x00" in line:
                raise InputError(f"{what} {path} line {line_number}: contains NUL bytes; this looks like a binary file")
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(
                    f"{what} {path} line {line_number}: not valid UTF-8 (byte {line[error.start]:#04x} at column "
                    f"{error.start + 1})"
                ) from None
