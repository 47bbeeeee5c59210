r"""Line-oriented text files: checks with errors that name the file and line, and the one way cse splits lines.

A record ends at `\n` and nowhere else. `\r\n` is a line end too (the `\r` is dropped), so a file written on
Windows reads line for line as on Linux. Every other character is text of its line, however `str.splitlines()`
would treat it: a lone `\r`, a form feed, a vertical tab, `\x1c`-`\x1e`, U+0085, U+2028, U+2029 (tokenizers see
them as whitespace or symbols; they never split a record). A UTF-8 byte-order mark at the start of a file is not
text and is dropped. A file whose only line ends are lone `\r` (classic Mac OS) is refused: it would be one record.
"""

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cse.errors import InputError

QUOTE = '"'
CHECK_BLOCK_BYTES = 2**20
CSV_PROBLEMS = {  # csv's messages, in words about rows that are one line each
    "unexpected end of data": "a quoted field is not closed on this line (a missing quote? a row must be one line)",
    "expected after": 'text after the closing quote of a field (a quote inside a quoted field is written "")',
    "new-line character": r"a lone carriage return (\r) inside an unquoted field; lines end at \n or \r\n",
}


def check_text_file(path: Path, what: str) -> None:
    """Raise `InputError` unless `path` is a non-empty UTF-8 text file.

    Args:
        path: the file to check.
        what: how the error names it, e.g. "corpus" or "dev file".
    """
    check_non_empty_file(path, what)
    with path.open("rb") as handle:
        valid = _is_utf8_without_nul(handle)  # the common case, in large blocks
        handle.seek(0)
        if valid and _ends_lines_at_carriage_returns(handle):
            raise carriage_return_lines_error(path, what)
    if not valid:
        raise first_bad_line_error(path, what)


def carriage_return_lines_error(path: Path, what: str) -> InputError:
    """The error for a file that holds a `\\r` and no `\\n`: lines ended as on classic Mac OS, one line here."""
    return InputError(
        f"{what} {path}: its lines end in a lone carriage return (\\r, classic Mac OS) and cse ends lines at \\n or "
        f"\\r\\n only, so the whole file would be one line; convert it first, e.g. "
        f"tr '\\r' '\\n' < {path.name} > fixed{path.suffix}"
    )


def first_bad_line_error(path: Path, what: str) -> InputError:
    """The error naming the first line of `path` that holds a NUL byte or is not UTF-8, with the byte and its column;
    for a file found bad by a block check, which does not know the line."""
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            if b"\x00" in line:
                return InputError(
                    f"{what} {path} line {line_number}: contains NUL bytes; this looks like a binary file"
                )
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return InputError(
                    f"{what} {path} line {line_number}: not valid UTF-8 (byte {line[error.start]:#04x} at column "
                    f"{error.start + 1})"
                )
    return InputError(f"{what} {path}: changed while it was read; run again")  # every line is good now


def check_non_empty_file(path: Path, what: str) -> None:
    """Raise `InputError` unless `path` is a file holding at least one byte (`what` as in `check_text_file`)."""
    if not path.exists():
        raise InputError(f"{what} {path}: no such file")
    if path.is_dir():
        raise InputError(f"{what} {path}: is a directory; expected a file")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {path}: file is empty")


def iter_lines(path: Path, encoding: str = "utf-8") -> Iterator[str]:
    r"""Every line of a text file, without its line end, split as the module docstring says: line i + 1 of the file
    is item i.

    Args:
        path: the file (decodable in `encoding`; `check_text_file` first for UTF-8 files).
        encoding: `utf-8` (a leading byte-order mark dropped) or e.g. `latin-1`.
    """
    # newline="\n": lines end at "\n" only and "\r" is kept (universal newlines would also split at a lone "\r").
    with path.open(encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="\n") as handle:
        for line in handle:
            yield strip_line_end(line)


def split_lines(text: str) -> list[str]:
    """`text` split into lines as `iter_lines` splits a file (no item after a final line end)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def strip_line_end(line: str) -> str:
    r"""`line` without its `\n` or `\r\n`."""
    return line.removesuffix("\n").removesuffix("\r")


def csv_fields(line: str, delimiter: str = ",") -> list[str]:
    """The fields of one csv line, quotes parsed strictly: a quoted field must close on its line.

    Raises:
        ValueError: saying what is wrong with the line (the caller adds file and line number).
    """
    try:
        return next(csv.reader([line], delimiter=delimiter, strict=True), [])
    except csv.Error as error:
        problem = next((words for key, words in CSV_PROBLEMS.items() if key in str(error)), str(error))
        raise ValueError(problem) from None


def csv_line(fields: list[str] | tuple[str, ...], delimiter: str = ",") -> str:
    r"""`fields` as one line ending in `\n` that `csv_fields` reads back: a field holding the delimiter, a quote or `\r`
    is quoted, its quotes doubled (`csv.writer` with `lineterminator="\n"` would leave a `\r` unquoted).

    Raises:
        ValueError: a field holds `\n`, which no row of cse's line-oriented files can.
    """
    special = (delimiter, QUOTE, "\r")
    for field in fields:
        if "\n" in field:
            raise ValueError(f"a line break (\\n) in {field[:40]!r}: a row must be one line")
    quoted = (QUOTE + f.replace(QUOTE, QUOTE * 2) + QUOTE if any(c in f for c in special) else f for f in fields)
    return delimiter.join(quoted) + "\n"


def _is_utf8_without_nul(handle: BinaryIO) -> bool:
    """Whether the rest of `handle` is valid UTF-8 free of NUL bytes, read `CHECK_BLOCK_BYTES` at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()  # a character cut at a block boundary is completed by the next
    try:
        while block := handle.read(CHECK_BLOCK_BYTES):
            if b"\x00" in block:
                return False
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _ends_lines_at_carriage_returns(handle: BinaryIO) -> bool:
    """Whether the rest of `handle` holds a `\\r` and no `\\n`; read up to its first `\\n` only (the first block of
    a usual file)."""
    carriage_return = False
    while block := handle.read(CHECK_BLOCK_BYTES):
        if b"\n" in block:
            return False
        carriage_return = carriage_return or b"\r" in block
    return carriage_return
