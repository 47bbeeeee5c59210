"""Read a text file of one sentence per line, for `cse encode` and `cse search`: row i is line i + 1."""

from pathlib import Path

from cse.data.text_file import check_text_file
from cse.errors import InputError


def read_sentence_lines(path: str | Path, what: str) -> list[str]:
    """Every line of a UTF-8 file as a sentence (line ends removed); a blank line is an error naming it.

    Blank lines are refused rather than skipped or embedded as empty text, so that output rows stay aligned
    with input lines.

    Args:
        path: the file.
        what: how errors name it, e.g. "input" or "corpus".
    """
    path = Path(path)
    check_text_file(path, what=what)
    lines = path.read_text(encoding="utf-8").splitlines()
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            raise InputError(f"{what} {path} line {line_number}: blank line; put one sentence on every line")
    if not lines:
        raise InputError(f"{what} {path}: no sentences")
    return lines
